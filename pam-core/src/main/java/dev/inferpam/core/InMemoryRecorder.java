package dev.inferpam.core;

import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link Recorder} that keeps records in memory, in the order they were handed over (intents
 * included), for tests and for applications that ship records elsewhere themselves.
 *
 * <p>Bounded: it holds at most {@code capacity} records (default {@value #DEFAULT_CAPACITY}).
 * When full, {@link #admit()}, {@link #record} and {@link #intent} throw {@code IOException}
 * {@code "recording queue full"} until {@link #clear()} makes room; a record whose exchange was
 * admitted is always stored, because {@code admit()} reserves its place.
 *
 * <p><b>Thread-safety:</b> thread-safe; {@link #records()} returns a snapshot.
 */
public final class InMemoryRecorder implements Recorder {
  /** Records held at most by {@link #InMemoryRecorder()}. */
  public static final int DEFAULT_CAPACITY = 100_000;

  private final int capacity;
  private final ReentrantLock lock = new ReentrantLock();
  private final List<SessionRecord> records = new ArrayList<>(); // guarded by lock
  private int reserved; // guarded by lock: admitted exchanges whose record has not arrived yet

  /** A recorder holding at most {@value #DEFAULT_CAPACITY} records. */
  public InMemoryRecorder() {
    this(DEFAULT_CAPACITY);
  }

  /**
   * A recorder holding at most {@code capacity} records.
   *
   * @throws IllegalArgumentException when {@code capacity} is not positive
   */
  public InMemoryRecorder(int capacity) {
    if (capacity <= 0) throw new IllegalArgumentException("capacity must be > 0, was " + capacity);
    this.capacity = capacity;
  }

  /** Reserves room for one record; throws when the recorder is full. */
  @Override
  public void admit() throws IOException {
    lock.lock();
    try {
      if (records.size() + reserved >= capacity) throw new IOException("recording queue full");
      reserved++;
    } finally {
      lock.unlock();
    }
  }

  /** Stores {@code record}, using a reservation made by {@link #admit()} when there is one. */
  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    lock.lock();
    try {
      if (reserved > 0) {
        reserved--;
      } else if (records.size() + reserved >= capacity) {
        throw new IOException("recording queue full");
      }
      records.add(record);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Builds {@code record} at once, on the calling thread, and stores it like {@link #record}. A
   * record that cannot be built is not stored: the exception is thrown and the reservation made
   * for it by {@link #admit()} is released.
   */
  @Override
  public void recordLater(PendingRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    SessionRecord built;
    try {
      built = record.build();
    } catch (RuntimeException e) {
      lock.lock();
      try {
        if (reserved > 0) reserved--;
      } finally {
        lock.unlock();
      }
      throw e;
    }
    record(built);
  }

  /** Stores an intent record like any other; it is at once as durable as this recorder gets. */
  @Override
  public void intent(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    lock.lock();
    try {
      if (records.size() + reserved >= capacity) throw new IOException("recording queue full");
      records.add(record);
    } finally {
      lock.unlock();
    }
  }

  /** A snapshot of the records stored so far, oldest first. */
  public List<SessionRecord> records() {
    lock.lock();
    try {
      return List.copyOf(records);
    } finally {
      lock.unlock();
    }
  }

  /** Removes every stored record (reservations stay). */
  public void clear() {
    lock.lock();
    try {
      records.clear();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Does nothing: there is nothing to flush or release, and a test may hand the same recorder to
   * several engines, closing each.
   */
  @Override
  public void close() {}

  @Override
  public String toString() {
    lock.lock();
    try {
      return "InMemoryRecorder[" + records.size() + "/" + capacity + "]";
    } finally {
      lock.unlock();
    }
  }
}
