package dev.inferpam.core.internal.recording;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.Collection;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The room of a {@link JsonlRecorder}: at most {@code capacity} records held (queued, or written
 * but not yet durable), and no new exchange while the records held weigh more than
 * {@code maxHeldBytes} (estimated from their bodies), so that large bodies cannot pile up in memory
 * behind a slow disk.
 *
 * <p>{@link #admit()} reserves room for one record; the next {@link #take} uses the reservation,
 * so an admitted exchange is never refused. Without a reservation {@code take} waits for room.
 * The writer gives room back with {@link #release} once records are durable.
 *
 * <p><b>Thread-safety:</b> all methods may be called from any thread.
 */
final class RecordAdmission {
  private final Semaphore room;
  private final Duration queueFullWait;
  private final long maxHeldBytes;

  /** Reservations made by {@link #admit()} and not yet used. */
  private final AtomicInteger reserved = new AtomicInteger();

  /** Estimated bytes of the records held (queued, pending, or written and not yet durable). */
  private final AtomicLong heldBytes = new AtomicLong();

  /**
   * @param capacity      records held at most ({@code recording.queue-capacity})
   * @param queueFullWait how long {@link #admit()} waits for room ({@code recording.queue-full-wait})
   * @param maxHeldBytes  bytes of records held beyond which {@link #admit()} refuses
   */
  RecordAdmission(int capacity, Duration queueFullWait, long maxHeldBytes) {
    this.room = new Semaphore(capacity);
    this.queueFullWait = queueFullWait;
    this.maxHeldBytes = maxHeldBytes;
  }

  /**
   * Reserves room for one record: at once, or after waiting at most {@code queue-full-wait}.
   *
   * @throws IOException {@code "recording queue full"} when there is no room in time, or too many
   *     bytes are held
   */
  void admit() throws IOException {
    if (heldBytes.get() > maxHeldBytes) throw new IOException("recording queue full");
    if (!tryRoom()) throw new IOException("recording queue full");
    reserved.incrementAndGet();
  }

  private boolean tryRoom() throws IOException {
    if (room.tryAcquire()) return true;
    long waitNanos = queueFullWait.toNanos();
    if (waitNanos <= 0) return false;
    try {
      return room.tryAcquire(waitNanos, TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for room in the recording queue");
    }
  }

  /**
   * Room for a record handed over: a reservation made by {@link #admit()} when there is one, else
   * room within {@code wait}.
   *
   * @throws IOException {@code "recording queue full"} when there is none in time
   */
  void take(Duration wait) throws IOException {
    if (reserved.getAndUpdate(n -> n > 0 ? n - 1 : 0) == 0) acquire(wait);
  }

  /**
   * Room for one record within {@code wait}, reservations aside (intent lines).
   *
   * @throws IOException {@code "recording queue full"} when there is none in time
   */
  void acquire(Duration wait) throws IOException {
    try {
      if (!room.tryAcquire(wait.toNanos(), TimeUnit.NANOSECONDS))
        throw new IOException("recording queue full");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for room in the recording queue");
    }
  }

  /** Room taken for a record that was then not enqueued. */
  void giveBack() {
    room.release();
  }

  /** A record was enqueued: its bytes count as held until {@link #release}. */
  void held(QueuedRecord record) {
    heldBytes.addAndGet(record.size);
  }

  /** {@code records} are durable: their room and bytes are free again. */
  void release(Collection<QueuedRecord> records) {
    int n = records.size();
    if (n == 0) return;
    long bytes = 0;
    for (QueuedRecord r : records) bytes += r.size;
    heldBytes.addAndGet(-bytes);
    room.release(n);
  }
}
