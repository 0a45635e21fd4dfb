package dev.inferpam.httpclient;

import java.io.ByteArrayOutputStream;
import java.net.http.HttpRequest;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;

/** Reads a request's body publisher into bytes, the way the client would send it. */
final class RequestBodies {
  private RequestBodies() {}

  static CompletableFuture<byte[]> read(HttpRequest request) {
    CompletableFuture<byte[]> out = new CompletableFuture<>();
    if (request.bodyPublisher().isEmpty()) {
      out.complete(new byte[0]);
      return out;
    }
    request
        .bodyPublisher()
        .get()
        .subscribe(
            new Flow.Subscriber<ByteBuffer>() {
              private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

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
                out.complete(bytes.toByteArray());
              }
            });
    return out;
  }
}
