package dev.inferpam.core.adapter;

import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Where an adapter on a non-blocking client (a reactive {@code WebClient}, an SDK's asynchronous
 * calls) runs work that may wait: a decision when {@link dev.inferpam.core.PamEngine#decidesWithoutWaiting()}
 * is false, an end when {@code endsWithoutWaiting()} is false, a verdict made final after a
 * review. Never an event loop or the common pool.
 */
public final class AdapterThreads {
  private AdapterThreads() {}

  private static final Executor WAITING = create();

  /**
   * Virtual threads, one per task, on Java 21+; on 17, a shared cached pool of daemon threads
   * named {@code inferpam-adapter-N} (idle ones end after a minute).
   */
  public static Executor forWaiting() {
    return WAITING;
  }

  private static Executor create() {
    try {
      return (Executor) Executors.class.getMethod("newVirtualThreadPerTaskExecutor").invoke(null);
    } catch (ReflectiveOperationException e) {
      AtomicInteger n = new AtomicInteger();
      ExecutorService pool =
          Executors.newCachedThreadPool(
              task -> {
                Thread t = new Thread(task, "inferpam-adapter-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
              });
      return pool;
    }
  }

  /** How often a blocking wait for a review looks at its thread's interrupt flag. */
  private static final java.time.Duration INTERRUPT_POLL = java.time.Duration.ofMillis(50);

  /**
   * Waits on the calling thread (parked: a virtual thread unmounts) until the review is over and
   * returns the final verdict, for adapters whose client call blocks. Bounded by the engine, and
   * by {@link Verdict.Held#timeout()} as a backstop (the request is then withdrawn). An interrupt
   * withdraws the request from review and throws, the interrupt flag set again.
   *
   * @throws java.io.InterruptedIOException when the thread is interrupted while waiting
   */
  public static Verdict awaitReview(Verdict.Held held) throws java.io.InterruptedIOException {
    long deadline = System.nanoTime() + held.timeout().toNanos();
    try {
      while (System.nanoTime() - deadline < 0) {
        Verdict verdict = held.await(INTERRUPT_POLL);
        if (verdict != null) return verdict;
      }
      return held.cancel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      held.cancel();
      java.io.InterruptedIOException interrupted =
          new java.io.InterruptedIOException("interrupted while waiting for approval");
      interrupted.initCause(e);
      throw interrupted;
    }
  }
}
