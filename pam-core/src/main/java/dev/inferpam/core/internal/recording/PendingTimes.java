package dev.inferpam.core.internal.recording;

/**
 * When each record not yet durable was handed over, oldest first, by its place in the order of
 * hand-over; for {@link dev.inferpam.api.Recorder#lagNanos()}. Records become durable in that
 * order, so the oldest is always at the head.
 *
 * <p><b>Thread-safety:</b> none; the recorder's lock guards it. {@link #oldest()} is published
 * through the recorder's own volatile field.
 */
final class PendingTimes {
  /** {@link #oldest()} when nothing is pending. */
  static final long NONE = Long.MIN_VALUE;

  private long[] seqs = new long[64];
  private long[] nanos = new long[64];
  private int head;
  private int size;

  /** Record {@code seq} was handed over at {@code at} ({@link System#nanoTime()}). */
  void add(long seq, long at) {
    if (size == seqs.length) grow();
    int i = (head + size) & (seqs.length - 1);
    seqs[i] = seq;
    nanos[i] = at;
    size++;
  }

  /** Every record up to {@code seq} is durable. */
  void durableUpTo(long seq) {
    while (size > 0 && seqs[head] <= seq) {
      head = (head + 1) & (seqs.length - 1);
      size--;
    }
  }

  /** When the oldest pending record was handed over, or {@link #NONE}. */
  long oldest() {
    return size == 0 ? NONE : nanos[head];
  }

  int size() {
    return size;
  }

  private void grow() {
    int n = seqs.length;
    long[] s = new long[n * 2];
    long[] t = new long[n * 2];
    for (int k = 0; k < size; k++) {
      s[k] = seqs[(head + k) & (n - 1)];
      t[k] = nanos[(head + k) & (n - 1)];
    }
    seqs = s;
    nanos = t;
    head = 0;
  }

  /** The lag for {@code oldest} as {@link #oldest()} gave it, at {@code now}: 0 when none. */
  static long lag(long oldest, long now) {
    return oldest == NONE ? 0 : Math.max(0, now - oldest);
  }
}
