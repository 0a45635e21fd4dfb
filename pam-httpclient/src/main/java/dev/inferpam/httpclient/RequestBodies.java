package dev.inferpam.httpclient;

import dev.inferpam.core.adapter.BodyCapture;
import java.net.http.HttpRequest;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/**
 * Reads a request's body publisher the way the client would send it, keeping at most the engine's
 * limit and one byte more (a larger body is refused 413 without being held).
 */
final class RequestBodies {
  private RequestBodies() {}

  static CompletableFuture<BodyCapture> read(HttpRequest request, long limit) {
    CompletableFuture<BodyCapture> out = new CompletableFuture<>();
    BodyCapture bytes = new BodyCapture(limit);
    if (request.bodyPublisher().isEmpty()) {
      out.complete(bytes);
      return out;
    }
    request
        .bodyPublisher()
        .get()
        .subscribe(
            new Flow.Subscriber<ByteBuffer>() {
              @Override
              public void onSubscribe(Flow.Subscription subscription) {
                subscription.request(Long.MAX_VALUE);
              }

              @Override
              public void onNext(ByteBuffer item) {
                byte[] b = new byte[item.remaining()];
                item.get(b);
                bytes.write(b, 0, b.length);
              }

              @Override
              public void onError(Throwable error) {
                out.completeExceptionally(error);
              }

              @Override
              public void onComplete() {
                out.complete(bytes);
              }
            });
    return out;
  }
}
