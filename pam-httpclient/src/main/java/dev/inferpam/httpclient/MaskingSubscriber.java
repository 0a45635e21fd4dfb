package dev.inferpam.httpclient;

import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * The caller's body subscriber behind the exchange's masking: each piece from the upstream goes
 * through {@link ResponseMasking#push} (when the plan masks) and what it releases is passed on and
 * reported delivered; a piece that releases nothing is replaced by asking the upstream for one
 * more; the held-back tail goes after the upstream's end, when the caller has demand for it. The
 * exchange ends once: at the end (complete), on an error or a cancel (incomplete).
 */
final class MaskingSubscriber<T> implements HttpResponse.BodySubscriber<T> {
  private final HttpResponse.BodySubscriber<T> caller;
  private final ResponsePlan.Relay relay;
  private final ResponseMasking masking;
  private final Consumer<Boolean> end;
  private final AtomicBoolean ended = new AtomicBoolean();
  private final ReentrantLock lock = new ReentrantLock();
  private Flow.Subscription upstream;

  /** The caller's outstanding demand, and the tail waiting for it once the upstream ended. */
  private long demand;

  private byte[] tail;
  private boolean tailDue;

  MaskingSubscriber(
      HttpResponse.BodySubscriber<T> caller, ResponsePlan.Relay relay, Consumer<Boolean> end) {
    this.caller = caller;
    this.relay = relay;
    this.masking = relay.masking();
    this.end = end;
  }

  @Override
  public CompletionStage<T> getBody() {
    return caller.getBody();
  }

  @Override
  public void onSubscribe(Flow.Subscription subscription) {
    upstream = subscription;
    caller.onSubscribe(
        new Flow.Subscription() {
          @Override
          public void request(long n) {
            if (n <= 0) {
              upstream.request(n); // the upstream signals the error
              return;
            }
            boolean deliverTail;
            lock.lock();
            try {
              demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
              deliverTail = tailDue;
              if (deliverTail) tailDue = false;
            } finally {
              lock.unlock();
            }
            if (deliverTail) {
              finishWith(tail);
            } else {
              upstream.request(n);
            }
          }

          @Override
          public void cancel() {
            upstream.cancel();
            finish(false);
          }
        });
  }

  @Override
  public void onNext(List<ByteBuffer> item) {
    byte[] in = PamHttpClient.bytes(item);
    byte[] out;
    try {
      out = masking == null ? in : masking.push(in, 0, in.length);
    } catch (IOException e) {
      upstream.cancel();
      onError(e);
      return;
    }
    if (out.length == 0) {
      upstream.request(1); // nothing released: this piece does not use the caller's demand
      return;
    }
    take();
    relay.delivered(out, 0, out.length);
    caller.onNext(List.of(ByteBuffer.wrap(out)));
  }

  private void take() {
    lock.lock();
    try {
      if (demand != Long.MAX_VALUE) demand--;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void onError(Throwable error) {
    finish(false);
    caller.onError(error);
  }

  @Override
  public void onComplete() {
    byte[] rest;
    try {
      rest = masking == null ? new byte[0] : masking.finish();
    } catch (IOException e) {
      onError(e);
      return;
    }
    if (rest.length == 0) {
      finishWith(rest);
      return;
    }
    boolean now;
    lock.lock();
    try {
      now = demand > 0;
      if (!now) {
        tail = rest;
        tailDue = true;
      }
    } finally {
      lock.unlock();
    }
    if (now) finishWith(rest);
  }

  private void finishWith(byte[] rest) {
    if (rest.length > 0) {
      take();
      relay.delivered(rest, 0, rest.length);
      caller.onNext(List.of(ByteBuffer.wrap(rest)));
    }
    finish(true);
    caller.onComplete();
  }

  private void finish(boolean complete) {
    if (ended.compareAndSet(false, true)) end.accept(complete);
  }
}
