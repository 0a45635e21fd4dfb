package dev.inferpam.benchmarks;

import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import dev.inferpam.core.internal.recording.RecordCodec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
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
 * What the default JSONL recorder costs, in {@code batched} durability (group commit: an fsync
 * every 5 ms or 256 lines, the defaults), writing to a real directory under
 * {@code java.io.tmpdir} (removed at the end of the run). Every record is the same prebuilt
 * allowed chat completion with a 1 KB JSON request body and a 1 KB JSON response body: a line of
 * about 2.9 KB once the bodies' quotes are escaped and the chain is appended. Building the record
 * is the engine's work, not the recorder's, and is not measured.
 *
 * <ul>
 *   <li>{@link #enqueue}: what a request thread pays: {@code admit()} when the exchange begins
 *       plus {@code record()} when it ends, i.e. handing the record to the writer thread (which
 *       encodes it; callers encode only when the writer falls behind). Sampled per call ({@code Mode.SampleTime}), so JMH
 *       reports p50, p99 and the tail. Target p99 &le; 10 µs.
 *   <li>{@link #encodeOnly}: for comparison: encoding the same line without a recorder, paced the
 *       same way (what a request thread would pay if it encoded its own line).
 *   <li>{@link #throughput}: sustained durable records per second: each call admits and records
 *       {@value #RECORDS_PER_FLUSH} records as fast as one thread can, then waits in
 *       {@code flush()} until all of them are written and fsynced. The flush is inside the
 *       measured call, so a record is only counted once it is on disk (and the pipeline drains
 *       every 10,000 records, which makes the figure a little conservative). Target &ge; 50,000
 *       records/s.
 * </ul>
 *
 * <p><b>Why {@link #enqueue} is paced.</b> A request thread calling {@code record()} in a tight
 * loop outruns any disk: the bounded queue fills and {@code admit()} refuses (as it should, with
 * 503), and the run would measure a full queue, not the request path. So arrivals are paced,
 * outside the measured call, to a fixed rate ({@code rate}, default 20,000 records/s, well below
 * what {@link #throughput} sustains), with the writer thread writing and fsyncing concurrently on
 * the other core. Arrivals follow a fixed schedule: after a stall (a GC pause, a descheduled
 * thread) the late ones follow back to back, as queued requests would. The queue is large
 * (100,000 records, five seconds of arrivals) so that a slow fsync on a shared disk does not fill
 * it, and {@code queue-full-wait} is 0: should it fill anyway, {@code admit()} throws and the run
 * fails rather than quietly measuring something else. {@code -p rate=50000} measures at the
 * throughput target, on a disk that sustains it.
 *
 * <p>Single producer thread by default: with two cores, one thread encodes while the writer
 * thread hashes and writes. {@code -t N} shares the recorder between N request threads.
 *
 * <p>Disk use: every record measured is written; at 60,000 records/s that is about 180 MB/s, so
 * a run needs a few GB free under {@code java.io.tmpdir} ({@code -jvmArgsAppend
 * -Djava.io.tmpdir=DIR} writes elsewhere; a tmpfs there measures the CPU side without the disk).
 */
@Threads(1)
@Fork(1)
// paced at 20,000 calls/s, enqueue's tail was still settling (JIT) after three 2 s warm-up
// iterations on two cores
@Warmup(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
public class RecordingBenchmark {

  /** Records per {@link #throughput} call; each call ends with one flush. */
  static final int RECORDS_PER_FLUSH = 10_000;

  /** Records the recorder may hold: five seconds of {@link #enqueue} arrivals at the default rate. */
  static final int QUEUE_CAPACITY = 100_000;

  /** Size of each body, in UTF-8 bytes. */
  static final int BODY_BYTES = 1024;

  /** One recorder in its own temporary directory, shared by all benchmark threads. */
  @State(Scope.Benchmark)
  public static class Sink {
    Path dir;
    JsonlRecorder recorder;
    SessionRecord record;

    @Setup(Level.Trial)
    public void start() throws IOException {
      dir =
          Files.createTempDirectory(
              Path.of(System.getProperty("java.io.tmpdir")), "inferpam-recbench-");
      // JMH skips the teardown of a failed run: the directory must not outlive the JVM either way
      Path created = dir;
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      deleteTree(created);
                    } catch (IOException | RuntimeException e) {
                      System.err.println("could not remove " + created + ": " + e);
                    }
                  },
                  "recbench-cleanup"));
      // defaults but for the queue: large, and refusing at once when full (see the class comment)
      Policy.Recording config =
          new Policy.Recording(
              dir,
              Policy.Bodies.FULL,
              Policy.Durability.BATCHED,
              null,
              Policy.Recording.DEFAULT_SEGMENT_BYTES,
              QUEUE_CAPACITY,
              Policy.Recording.DEFAULT_BATCH_INTERVAL,
              Policy.Recording.DEFAULT_BATCH_SIZE,
              Duration.ZERO);
      recorder = new JsonlRecorder(config, Clock.systemUTC());
      record = exchange();
      check();
    }

    /** Proves the measured path really writes the whole line: one record, read back from disk. */
    private void check() throws IOException {
      recorder.admit();
      recorder.record(record);
      recorder.flush();
      List<Recordings.Entry> entries = Recordings.open(dir).entries();
      if (entries.size() != 1)
        throw new IllegalStateException("expected 1 line on disk, found " + entries.size());
      SessionRecord back = entries.get(0).record();
      if (!record.request().body().equals(back.request().body())
          || !record.response().body().equals(back.response().body())) {
        throw new IllegalStateException("the line read back does not hold the bodies");
      }
      if (!Recordings.open(dir).verify().ok())
        throw new IllegalStateException("the chain does not verify");
    }

    /** Nothing measured in one iteration is left unwritten for the next. */
    @TearDown(Level.Iteration)
    public void drain() throws IOException {
      recorder.flush();
    }

    @TearDown(Level.Trial)
    public void stop() throws IOException {
      try {
        if (recorder != null) recorder.close();
      } finally {
        deleteTree(dir);
      }
    }
  }

  /** Paces calls to {@code rate} per second, per thread, outside the measurement. */
  @State(Scope.Thread)
  public static class Arrivals {
    /** Arrivals per second and thread. */
    @Param("20000")
    public long rate;

    private long interval;
    private long next;

    @Setup(Level.Iteration)
    public void schedule() {
      if (rate <= 0) throw new IllegalArgumentException("rate must be positive, was " + rate);
      interval = TimeUnit.SECONDS.toNanos(1) / rate;
      next = System.nanoTime();
    }

    @Setup(Level.Invocation)
    public void await() {
      while (System.nanoTime() < next) Thread.onSpinWait();
      next += interval;
    }
  }

  @Benchmark
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public void enqueue(Sink sink, Arrivals arrivals) throws IOException {
    sink.recorder.admit();
    sink.recorder.record(sink.record);
  }

  @Benchmark
  @BenchmarkMode(Mode.SampleTime)
  @OutputTimeUnit(TimeUnit.MICROSECONDS)
  public byte[] encodeOnly(Sink sink, Arrivals arrivals) {
    return RecordCodec.bodyBytes(sink.record);
  }

  @Benchmark
  @BenchmarkMode(Mode.Throughput)
  @OutputTimeUnit(TimeUnit.SECONDS)
  @OperationsPerInvocation(RECORDS_PER_FLUSH)
  public void throughput(Sink sink) throws IOException {
    JsonlRecorder recorder = sink.recorder;
    SessionRecord record = sink.record;
    for (int i = 0; i < RECORDS_PER_FLUSH; i++) {
      recorder.admit();
      recorder.record(record);
    }
    recorder.flush();
  }

  // ------------------------------------------------------------------------------------ data

  /** An allowed chat completion with 1 KB request and response bodies, as the engine records it. */
  static SessionRecord exchange() {
    Instant time = Instant.parse("2026-11-28T22:00:00.123Z");
    Principal alice =
        new Principal(
            "alice", Set.of("ml-team", "engineering"), Principal.VIA_API_KEY, null, Map.of());
    SessionRecord.Request request =
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "gpt-4o-mini",
            Map.of(
                "authorization",
                List.of("[REDACTED]"),
                "content-type",
                List.of("application/json"),
                "accept",
                List.of("application/json"),
                "user-agent",
                List.of("OpenAI/Python 1.54.0")),
            BODY_BYTES,
            json(
                "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"",
                "\"}]}"));
    SessionRecord.Response response =
        new SessionRecord.Response(
            200,
            false,
            BODY_BYTES,
            true,
            json(
                "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\",\"choices\":"
                    + "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
                "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":212,\"completion_tokens\":198}}"),
            Map.of(),
            Map.of("prompt_tokens", 212L, "completion_tokens", 198L));
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        "01JDQ5X7R8C9M2N4P6T8V0W2Y4",
        time,
        1234,
        alice,
        request,
        new SessionRecord.DecisionSummary("allow", "chat-for-ml-team", null, null),
        null,
        response);
  }

  /** {@code head + text + tail}, with prose text so that the whole is exactly 1 KB of UTF-8. */
  private static String json(String head, String tail) {
    String words =
        "The quick brown fox jumps over the lazy dog, then summarises the quarterly report. ";
    StringBuilder text = new StringBuilder();
    int room = BODY_BYTES - head.length() - tail.length();
    while (text.length() < room) text.append(words);
    text.setLength(room);
    String body = head + text + tail;
    if (body.getBytes(StandardCharsets.UTF_8).length != BODY_BYTES)
      throw new AssertionError("body size");
    return body;
  }

  private static void deleteTree(Path dir) throws IOException {
    if (dir == null || !Files.exists(dir)) return;
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator)
        Files.deleteIfExists(p);
    }
  }
}
