package dev.inferpam.benchmarks;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.postgres.PostgresRecorder;
import dev.inferpam.postgres.PostgresRecords;
import dev.inferpam.postgres.PostgresState;
import dev.inferpam.testsupport.PostgresServer;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the PostgreSQL recorder ({@code recording.store: postgres}) costs, against a PostgreSQL
 * this benchmark starts on 127.0.0.1 (Debian's {@code postgresql}, a fresh cluster in a temporary
 * directory, {@code fsync} on: a commit waits for the WAL to reach the disk). The records are
 * {@link RecordingBenchmark}'s: an allowed chat completion with 1 KB request and response bodies,
 * a line of about 2.9 KB. The server has the tests' settings ({@link
 * PostgresServer#DEFAULT_SETTINGS}: 32 MB of shared buffers); {@code -p database=sized} runs it
 * against one with more memory and WAL room ({@link #SIZED}), {@code -p database=fixture,sized}
 * against both, one after the other.
 *
 * <ul>
 *   <li>{@link #batchedThroughput}: durable records per second in {@code batched} durability
 *       (group commits of {@code batch-size} 256 rows at most, every 5 ms at the latest, the
 *       defaults): each call admits and records {@value #RECORDS_PER_FLUSH} records as fast as
 *       one thread can, then waits in {@code flush()} until all of them are committed. Target
 *       &ge; 20,000 records/s.
 *   <li>{@link #strictIntent}: what {@code strict} durability adds to a request: {@code admit()},
 *       then {@code intent()}, which returns once the intent row is committed, then the exchange's
 *       {@code record()} (queued). Eight request threads at once, as concurrent requests: their
 *       intents share group commits. Sampled per call; target p50 &le; 2 ms.
 * </ul>
 *
 * <p>Run: {@code java -jar pam-benchmarks/target/benchmarks.jar PostgresRecordingBenchmark}
 * (about a minute). The table grows by every record measured (about 3 KB each, plus indexes): a
 * run writes a few GB into the temporary cluster, which is deleted at the end.
 */
@Fork(1)
@Warmup(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
public class PostgresRecordingBenchmark {

  /** Records per {@link #batchedThroughput} call; each call ends with one flush. */
  static final int RECORDS_PER_FLUSH = 10_000;

  /** Records the recorder may hold. */
  static final int QUEUE_CAPACITY = 100_000;

  /**
   * The server settings of {@code -p database=sized}: memory and WAL room for a write-heavy
   * table. Durability is PostgreSQL's default: {@code fsync}, {@code
   * synchronous_commit} and {@code full_page_writes} on; checkpoints every 5 minutes at most
   * ({@code checkpoint_timeout}'s default) or every 4 GB of WAL.
   */
  static final Map<String, String> SIZED =
      Map.of("shared_buffers", "256MB", "wal_buffers", "16MB", "max_wal_size", "4GB");

  /** One database and recorder, shared by all benchmark threads. */
  public abstract static class Store {
    PostgresServer server;
    PostgresState state;
    PostgresRecorder recorder;
    SessionRecord record;
    SessionRecord intent;

    @Setup(Level.Trial)
    public void start() throws Exception {
      server =
          PostgresServer.start(
              switch (database()) {
                case "sized" -> SIZED;
                case "fixture" -> Map.of();
                default ->
                    throw new IllegalArgumentException(
                        "database: expected sized or fixture, was " + database());
              });
      // JMH skips the teardown of a failed run: the cluster must not outlive the JVM either way
      PostgresServer created = server;
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      created.close();
                    } catch (java.nio.file.NoSuchFileException closedAlready) {
                      // the teardown removed it
                    } catch (IOException | RuntimeException e) {
                      System.err.println("could not remove the benchmark's PostgreSQL: " + e);
                    }
                  },
                  "pgbench-cleanup"));
      state =
          PostgresState.connect(
              server.jdbcUrl(),
              PostgresServer.SUPERUSER,
              PostgresServer.SUPERUSER_PASSWORD,
              Duration.ofSeconds(5),
              true);
      Policy.Durability mode = durability();
      recorder =
          PostgresRecorder.builder(state)
              .settings(
                  new Policy.Recording(
                      null,
                      Policy.Bodies.FULL,
                      mode,
                      null,
                      0,
                      QUEUE_CAPACITY,
                      Policy.Recording.DEFAULT_BATCH_INTERVAL,
                      Policy.Recording.DEFAULT_BATCH_SIZE,
                      Duration.ZERO,
                      Policy.RecordingStore.POSTGRES))
              .build();
      record = RecordingBenchmark.exchange();
      intent =
          new SessionRecord(
              SessionRecord.TYPE_INTENT,
              record.id(),
              record.time(),
              0,
              record.principal(),
              record.request(),
              null,
              null,
              null);
      check();
    }

    /** The recorder's durability. */
    abstract Policy.Durability durability();

    /**
     * The PostgreSQL it runs against: {@code sized} ({@link #SIZED}) or {@code fixture} (the
     * tests' {@link PostgresServer#DEFAULT_SETTINGS}: 32 MB of shared buffers, the default 1 GB
     * {@code max_wal_size} and {@code wal_buffers} of 1 MB, 1/32 of the shared buffers).
     */
    abstract String database();

    /** Proves the measured path writes whole lines that verify: one record read back. */
    void check() throws IOException {
      recorder.admit();
      recorder.intent(intent);
      recorder.record(record);
      recorder.flush();
      PostgresRecords rows = PostgresRecords.of(state);
      SessionRecord back = rows.find(record.id()).orElseThrow().record();
      if (!record.request().body().equals(back.request().body())
          || !record.response().body().equals(back.response().body()))
        throw new IllegalStateException("the row read back does not hold the bodies");
      Recordings.Verification v = rows.verify();
      if (!v.ok()) throw new IllegalStateException("the chain does not verify: " + v);
    }

    /** Nothing measured in one iteration is left uncommitted for the next. */
    @TearDown(Level.Iteration)
    public void drain() throws IOException {
      recorder.flush();
    }

    @TearDown(Level.Trial)
    public void stop() throws IOException {
      try {
        if (recorder != null) recorder.close();
      } finally {
        if (state != null) state.close();
        if (server != null) server.close();
      }
    }
  }

  /** {@code recording.durability: batched}. */
  @State(Scope.Benchmark)
  public static class Batched extends Store {
    /** {@code fixture} (the default) or {@code sized}: see {@link Store#database()}. */
    @Param({"fixture"})
    public String database = "fixture";

    @Override
    String database() {
      return database;
    }

    @Override
    Policy.Durability durability() {
      return Policy.Durability.BATCHED;
    }
  }

  /** {@code recording.durability: strict}. */
  @State(Scope.Benchmark)
  public static class Strict extends Store {
    /** {@code fixture} (the default) or {@code sized}: see {@link Store#database()}. */
    @Param({"fixture"})
    public String database = "fixture";

    @Override
    String database() {
      return database;
    }

    @Override
    Policy.Durability durability() {
      return Policy.Durability.STRICT;
    }
  }

  @Benchmark
  @Threads(1)
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.SECONDS)
  @OperationsPerInvocation(RECORDS_PER_FLUSH)
  public void batchedThroughput(Batched store) throws IOException {
    PostgresRecorder recorder = store.recorder;
    SessionRecord record = store.record;
    for (int i = 0; i < RECORDS_PER_FLUSH; i++) {
      recorder.admit();
      recorder.record(record);
    }
    recorder.flush();
  }

  @Benchmark
  @Threads(8)
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public void strictIntent(Strict store) throws IOException {
    store.recorder.admit();
    store.recorder.intent(store.intent);
    store.recorder.record(store.record);
  }
}
