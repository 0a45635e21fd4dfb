package dev.inferpam.core;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Records as a store holds them, for reading: a JSONL directory ({@link Recordings}) or, with
 * module {@code pam-postgres}, the table of {@code recording.store: postgres}. The {@code replay}
 * commands read through this.
 *
 * <p>Close it when done: a database store holds connections.
 */
public interface StoredRecords extends AutoCloseable {
  /**
   * The exchange records, oldest first by the exchange's {@code time}, optionally only those of
   * one subject and from a time on (see {@link Recordings#list}).
   */
  List<Recordings.Entry> list(String subject, Instant since) throws IOException;

  /** The exchange record with this id (the first, should there be several). */
  Optional<Recordings.Entry> find(String id) throws IOException;

  /** Every exchange and intent record with this id, in the order they were stored. */
  List<Recordings.Entry> lines(String id) throws IOException;

  /**
   * Recomputes every hash and link and reports what breaks the chain (or chains: a database
   * store keeps one per writer).
   */
  Recordings.Verification verify() throws IOException;

  /** Where the records are, for messages (never a password). */
  String location();

  /** Releases what reading holds. */
  @Override
  default void close() {}

  /**
   * The store the policy's {@code recording} section writes to, opened for reading: its
   * directory, or the database of {@code state.postgres} (its schema checked, never migrated).
   *
   * @throws IOException     when the directory is missing
   * @throws PolicyException when the policy has no {@code recording} section, or the database
   *     cannot be used; the message never holds the URL or password
   */
  static StoredRecords of(Policy policy) throws IOException {
    Objects.requireNonNull(policy, "policy");
    Policy.Recording recording = policy.recording();
    if (recording == null)
      throw new PolicyException("recording: the policy has no recording section");
    if (recording.store() == Policy.RecordingStore.DIRECTORY)
      return Recordings.open(recording.directory());
    Policy.Postgres pg = policy.state().postgres();
    Policy.Postgres readOnly =
        new Policy.Postgres(
            pg.urlFromEnv(),
            pg.urlFromFile(),
            pg.user(),
            pg.userFromEnv(),
            pg.passwordFromEnv(),
            pg.passwordFromFile(),
            pg.timeout(),
            false,
            pg.pollInterval());
    StateBackend.SharedState shared = StateBackends.postgres(readOnly, Clock.systemUTC());
    StoredRecords records;
    try {
      records = shared.storedRecords();
    } catch (RuntimeException e) {
      shared.close();
      throw e;
    }
    return new StoredRecords() {
      @Override
      public List<Recordings.Entry> list(String subject, Instant since) throws IOException {
        return records.list(subject, since);
      }

      @Override
      public Optional<Recordings.Entry> find(String id) throws IOException {
        return records.find(id);
      }

      @Override
      public List<Recordings.Entry> lines(String id) throws IOException {
        return records.lines(id);
      }

      @Override
      public Recordings.Verification verify() throws IOException {
        return records.verify();
      }

      @Override
      public String location() {
        return records.location();
      }

      @Override
      public void close() {
        try {
          records.close();
        } finally {
          shared.close();
        }
      }
    };
  }

  /** A JSONL recording directory; see {@link Recordings#open}. */
  static StoredRecords of(Path directory) throws IOException {
    return Recordings.open(directory);
  }
}
