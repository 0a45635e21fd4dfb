package dev.inferpam.core.internal.recording;

import dev.inferpam.api.SessionRecord;
import java.util.function.Supplier;
import org.slf4j.Logger;

/**
 * A record on its way to disk in a {@link JsonlRecorder}. It is encoded (its line up to
 * {@code ,"prev":}, UTF-8) by the thread that first writes it — the writer, or the caller when
 * the writer is behind — so a request thread only hands the record over; the bytes are kept for a
 * rewrite after a failure.
 *
 * <p><b>Thread-safety:</b> handed from a caller to the writer through the recorder's queue (whose
 * lock orders the two); encoded by one thread at a time.
 */
final class QueuedRecord {
  private final String id;

  /** Gives the record, once; built on the thread that first encodes (see {@link JsonlRecorder#recordLater}). */
  private Supplier<SessionRecord> record;

  private byte[] body;
  private boolean unencodable;

  /** An intent line of strict durability: made durable at once. */
  final boolean intent;

  /** Memory this record holds until it is durable, estimated from its bodies. */
  final long size;

  /** Its place in the order of hand-over, from 1; set when enqueued. */
  long seq;

  QueuedRecord(SessionRecord record, boolean intent) {
    this(record.id(), () -> record, intent, estimate(record));
  }

  QueuedRecord(String id, Supplier<SessionRecord> record, boolean intent, long size) {
    this.id = id;
    this.record = record;
    this.intent = intent;
    this.size = size;
  }

  private static long estimate(SessionRecord r) {
    long size = 1024;
    if (r.request() != null && r.request().body() != null) size += r.request().body().length();
    if (r.response() != null && r.response().body() != null) size += r.response().body().length();
    return size;
  }

  /** The encoded line start, or {@code null} if the record cannot be encoded (a bug, logged once). */
  byte[] body(Logger log) {
    if (body == null && !unencodable) {
      try {
        body = RecordCodec.bodyBytes(record.get());
      } catch (RuntimeException e) {
        unencodable = true;
        // only the exception's type: its message could quote the record's content
        log.error(
            "inferpam: record of exchange {} cannot be encoded and is not written: {}",
            id,
            e.getClass().getName());
      }
      record = null;
    }
    return body;
  }
}
