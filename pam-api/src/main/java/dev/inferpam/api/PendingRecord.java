package dev.inferpam.api;

import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * An exchange record handed to a {@link Recorder} before it is built: building it (masking the
 * request body for the record, encoding what was captured) is left to whichever thread the
 * recorder chooses, so that the request's thread only hands it over. The engine gives every
 * exchange's record to {@link Recorder#recordLater} in this form.
 *
 * <p><b>Building.</b> {@link #build()} builds the record the first time it is called, on the
 * calling thread, and returns that same record on every later call; the builder is dropped once
 * it has run, so a record held for long holds no more than the built record. If building fails,
 * every call throws the same {@link RuntimeException}: the record cannot be stored (a bug, which
 * the recorder logs with the exception's type only, since its message could quote the record's
 * content). Nothing an adapter reports after the record was handed over reaches it.
 *
 * <p><b>Thread-safety:</b> thread-safe; {@link #build()} may be called from any thread, also
 * concurrently (one call builds, the others wait for it).
 */
public final class PendingRecord {
  private final String id;
  private final long estimatedSize;
  private Supplier<SessionRecord> builder;
  private volatile SessionRecord built;
  private RuntimeException failure;
  private final ReentrantLock lock = new ReentrantLock();

  private PendingRecord(
      String id, long estimatedSize, Supplier<SessionRecord> builder, SessionRecord built) {
    this.id = id;
    this.estimatedSize = estimatedSize;
    this.builder = builder;
    this.built = built;
  }

  /**
   * A record that {@code builder} builds when first asked.
   *
   * @param id            the exchange id, the id the built record will have (for logs)
   * @param estimatedSize roughly the memory the built record will hold, in bytes (its bodies);
   *                      a negative value counts as 0
   * @param builder       builds the record; called at most once, on whichever thread first calls
   *                      {@link #build()}
   * @throws NullPointerException when {@code id} or {@code builder} is null
   */
  public static PendingRecord of(String id, long estimatedSize, Supplier<SessionRecord> builder) {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(builder, "builder");
    return new PendingRecord(id, Math.max(0, estimatedSize), builder, null);
  }

  /**
   * A record that is already built (its size estimated from its bodies).
   *
   * @throws NullPointerException when {@code record} is null
   */
  public static PendingRecord of(SessionRecord record) {
    Objects.requireNonNull(record, "record");
    long size = 0;
    if (record.request().body() != null) size += record.request().body().length();
    if (record.response() != null && record.response().body() != null)
      size += record.response().body().length();
    return new PendingRecord(record.id(), size, null, record);
  }

  /** The exchange id: the {@link SessionRecord#id()} of the built record. */
  public String id() {
    return id;
  }

  /** Roughly the memory the built record holds, in bytes (its bodies); never negative. */
  public long estimatedSize() {
    return estimatedSize;
  }

  /**
   * The record: built now by the first call, the same instance afterwards.
   *
   * @throws RuntimeException what the builder threw (the same exception on every call), or
   *     {@link NullPointerException} when it built nothing
   */
  public SessionRecord build() {
    SessionRecord r = built;
    if (r != null) return r;
    lock.lock();
    try {
      if (built != null) return built;
      if (failure != null) throw failure;
      try {
        r = Objects.requireNonNull(builder.get(), "the record builder returned null");
      } catch (RuntimeException e) {
        failure = e;
        builder = null;
        throw e;
      }
      builder = null;
      built = r;
      return r;
    } finally {
      lock.unlock();
    }
  }

  /** Whether {@link #build()} has built the record (or failed to). */
  public boolean isBuilt() {
    if (built != null) return true;
    lock.lock();
    try {
      return failure != null;
    } finally {
      lock.unlock();
    }
  }

  /** Names the exchange only: never the record's content. */
  @Override
  public String toString() {
    return "PendingRecord[" + id + (built != null ? ", built" : "") + "]";
  }
}
