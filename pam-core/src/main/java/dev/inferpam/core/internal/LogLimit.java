package dev.inferpam.core.internal;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Keeps a log line that every request could write during an outage (the recorder or the quota
 * store away) to one per interval: the first is written, then at most one per interval, saying
 * how many were left out since. Thousands of identical lines per second would bury the line that
 * says why, and cost the disk; the meters ({@code inferpam.failures}) still count every one.
 *
 * <p><b>Thread-safety:</b> lock-free; one instance per kind of line, shared by all threads.
 */
public final class LogLimit {
  private final long intervalNanos;
  private final LongSupplier nanoTime;
  private final AtomicLong next;
  private final AtomicLong skipped = new AtomicLong();

  /** One line per {@code interval}, timed by {@link System#nanoTime()}. */
  public LogLimit(Duration interval) {
    this(interval, System::nanoTime);
  }

  /** As {@link #LogLimit(Duration)}, timed by {@code nanoTime} (tests). */
  public LogLimit(Duration interval, LongSupplier nanoTime) {
    this.intervalNanos = interval.toNanos();
    if (intervalNanos <= 0) throw new IllegalArgumentException("interval must be > 0");
    this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
    this.next = new AtomicLong(nanoTime.getAsLong());
  }

  /**
   * Whether to write the line now.
   *
   * @return {@code -1} to leave it out; else how many were left out since the last one written
   */
  public long admit() {
    long now = nanoTime.getAsLong();
    long due = next.get();
    if (now - due >= 0 && next.compareAndSet(due, now + intervalNanos)) {
      return skipped.getAndSet(0);
    }
    skipped.incrementAndGet();
    return -1;
  }

  /** The words to add to a line that {@link #admit} let through after leaving {@code skipped} out. */
  public static String since(long skipped) {
    return skipped <= 0 ? "" : " (" + skipped + " more like it left out of the log since the last)";
  }
}
