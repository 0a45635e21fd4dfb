package dev.inferpam.httpclient;

import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;

/** Bodies the engine answers itself, handed to a caller's body subscriber. */
final class Bodies {
  private Bodies() {}

  /** Gives {@code subscriber} {@code body} as a whole body, as its demand allows. */
  static void feed(HttpResponse.BodySubscriber<?> subscriber, byte[] body) {
    AtomicBoolean done = new AtomicBoolean();
    subscriber.onSubscribe(
        new Flow.Subscription() {
          @Override
          public void request(long n) {
            if (n > 0 && done.compareAndSet(false, true)) {
              if (body.length > 0) subscriber.onNext(List.of(ByteBuffer.wrap(body)));
              subscriber.onComplete();
            }
          }

          @Override
          public void cancel() {
            done.set(true);
          }
        });
  }

  /**
   * A subscriber that drains the upstream body and gives {@code caller} {@code body} instead, once
   * the upstream body has ended.
   */
  static <T> HttpResponse.BodySubscriber<T> replacing(
      HttpResponse.BodySubscriber<T> caller, byte[] body) {
    return new HttpResponse.BodySubscriber<>() {
      @Override
      public CompletionStage<T> getBody() {
        return caller.getBody();
      }

      @Override
      public void onSubscribe(Flow.Subscription subscription) {
        subscription.request(Long.MAX_VALUE);
      }

      @Override
      public void onNext(List<ByteBuffer> item) {}

      @Override
      public void onError(Throwable error) {
        feed(caller, body);
      }

      @Override
      public void onComplete() {
        feed(caller, body);
      }
    };
  }
}
