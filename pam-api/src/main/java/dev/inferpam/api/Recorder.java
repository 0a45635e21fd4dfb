package dev.inferpam.api;

import java.io.IOException;

/**
 * Stores {@link SessionRecord}s. The engine captures streamed responses as they pass and hands
 * the recorder one finished record per exchange, so a recorder never holds a stream open.
 *
 * <p><b>Thread-safety:</b> {@link #record} is called concurrently from many request threads;
 * implementations must be thread-safe and must keep records in the order of their calls per
 * thread. An {@link IOException} means the record was not stored: the engine fails closed for
 * new requests (503 {@code recording_unavailable}).
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
   * Stores, durably, an intent record written before a request is forwarded (strict durability).
   * The default stores it like any record.
   */
  default void intent(SessionRecord record) throws IOException {
    record(record);
  }

  /** Makes every record handed over so far durable. Default: nothing to do. */
  default void flush() throws IOException {}

  /** Flushes and releases resources. Default: {@link #flush()}. */
  @Override
  default void close() throws IOException {
    flush();
  }

  /** A recorder that drops everything (for tests and for deployments that record elsewhere). */
  Recorder NOOP = record -> {};
}
