package dev.inferpam.api;

import java.io.IOException;

/**
 * Stores {@link SessionRecord}s. The engine captures streamed responses as they pass and hands
 * the recorder one record per exchange once the exchange has ended, so a recorder never holds a
 * stream open.
 *
 * <p><b>What the engine calls.</b> {@link #admit()} when an exchange begins; with
 * {@code recording.durability: strict}, {@link #intent} before an allowed request goes on; and
 * {@link #recordLater} once the exchange has ended, denials included. {@code recordLater} hands
 * over a {@link PendingRecord} that is not built yet: a recorder with its own writer thread
 * builds it there ({@link PendingRecord#build()}), off the request's path; the default builds it
 * at once and calls {@link #record}, which is all a simple recorder implements.
 *
 * <p><b>Thread-safety:</b> every method is called concurrently from many request threads;
 * implementations must be thread-safe and must keep records in the order of their calls per
 * thread ({@code record} and {@code recordLater} alike). An {@link IOException} means the record
 * was not stored: the engine fails closed for new requests (503 {@code recording_unavailable}).
 *
 * <p>{@code pam-testkit}'s {@code RecorderContract} checks an implementation against this
 * contract.
 */
public interface Recorder extends AutoCloseable {

  /**
   * Called when an exchange begins, before it is forwarded or answered. Throwing refuses the
   * request with 503 {@code recording_unavailable}: a recorder whose queue is full or whose disk
   * failed says so here, so that no exchange goes unrecorded. A recorder that admits an exchange
   * must not drop its record later. Default: always available.
   */
  default void admit() throws IOException {}

  /** Stores one exchange record. */
  void record(SessionRecord record) throws IOException;

  /**
   * Stores one exchange record that is built when the recorder chooses, on the thread it
   * chooses, by calling {@link PendingRecord#build()} exactly as often as it needs (the record is
   * built once). The durability rules are those of {@link #record}: a record admitted by
   * {@link #admit()} is stored, never dropped for want of room.
   *
   * <p>A record whose build fails ({@code build()} throws) cannot be stored: the recorder either
   * lets the exception out of this call (building on the caller's thread) or logs the
   * exception's type (building later); either way it releases the room {@link #admit()}
   * reserved for it and goes on storing other records.
   *
   * <p>Default: builds the record now, on the calling thread, and calls {@link #record}.
   */
  default void recordLater(PendingRecord record) throws IOException {
    record(record.build());
  }

  /**
   * Stores, durably, an intent record written before a request is forwarded (strict durability).
   * The default stores it like any record.
   */
  default void intent(SessionRecord record) throws IOException {
    record(record);
  }

  /** Makes every record handed over so far durable. Default: nothing to do. */
  default void flush() throws IOException {}

  /**
   * How many records were handed to this recorder and are not yet stored durably (its queue),
   * for a gauge; {@code -1} when the recorder does not tell. Cheap and never blocks. Default:
   * {@code -1}.
   */
  default long backlog() {
    return -1;
  }

  /**
   * How long the oldest record handed to this recorder and not yet stored durably has waited, in
   * nanoseconds, for a gauge: 0 when every record is durable, and growing while the store is
   * away; {@code -1} when the recorder does not tell. Cheap and never blocks. Default: {@code -1}.
   */
  default long lagNanos() {
    return -1;
  }

  /** Flushes and releases resources. Default: {@link #flush()}. */
  @Override
  default void close() throws IOException {
    flush();
  }

  /** A recorder that drops everything (for tests and for deployments that record elsewhere). */
  Recorder NOOP = record -> {};
}
