package dev.inferpam.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.InMemoryQuotaStore;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.quotas.Quotas;
import dev.inferpam.redis.RedisQuotaStore;
import dev.inferpam.testsupport.RedisServer;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the policy's {@code limits} cost per request: {@code Quotas.admit} when the exchange
 * begins (the entry matched, both token budgets read and the request's {@code max_tokens}
 * checked against them, the request counted) plus {@code Quotas.charge} when it ends (the
 * exchange's 410 tokens added to both token budgets, what is left read back), against the
 * default {@link InMemoryQuotaStore}.
 *
 * <p>One {@code limits} entry, {@code groups: ["*"]}, with all three bounds
 * ({@code requests-per-minute}, {@code tokens-per-minute}, {@code tokens-per-day}), and one
 * principal, so every call works on the same three counters. The bounds are {@value #BOUND}:
 * requests are counted at admission, so at millions of calls a second a realistic bound would
 * soon refuse, and the run would measure refusals. The clock is fixed, so no window ends during
 * the run (a window roll is a new counter once a minute; not measured). The request body is a
 * parsed chat completion with {@code max_tokens: 256}; the usage is an OpenAI {@code usage}
 * ({@code prompt_tokens} 212, {@code completion_tokens} 198, {@code total_tokens} 410), as
 * {@code UsageExtractor} reads it. Setup makes one request and fails the run unless it was
 * admitted and charged, and every measured call fails if it is refused.
 *
 * <ul>
 *   <li>{@link #onePrincipal8Threads}: eight request threads, all the same principal: the worst
 *       contention, every thread on the same three counters. Target &le; 2 µs per request.
 *   <li>{@link #onePrincipal8ThreadsThroughput}: the eight threads as throughput, from which the
 *       processor time per request follows;</li>
 *   <li>{@link #onePrincipal1Thread}: the same, one thread: the cost without contention, for
 *       reference.
 * </ul>
 *
 * <p>With eight threads on fewer cores, each thread also waits its turn for a core, so the time
 * per call grows with oversubscription: on two cores, 4&times; the CPU time per call with no
 * contention at all. The CPU time per request is then the score &times; cores / 8. On two cores
 * the eight-thread figure also switches between two levels, about 2&times; apart, for stretches
 * of several iterations (with nothing else running, and no GC or JIT work to match): its error
 * is wide, so run it more than once before comparing.
 *
 * <p>Run: {@code java -jar pam-benchmarks/target/benchmarks.jar QuotaBenchmark} (about 105 s).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(1)
// With eight busy threads on two cores the JIT gets little CPU: the eight-thread figure was still
// falling after ten 2 s warm-up iterations, and steady after fifteen.
@Warmup(iterations = 15, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 10, time = 2, timeUnit = TimeUnit.SECONDS)
public class QuotaBenchmark {

  /** Every bound: high enough that no run comes near it (2^60, about 1.2 &times; 10^18). */
  static final long BOUND = 1L << 60;

  /** The principal's subject. */
  static final String SUBJECT = "alice";

  static final String OPERATION = "chat";
  static final String MODEL = "gpt-4o-mini";

  /** Tokens each exchange is charged: its usage's prompt plus completion tokens. */
  static final long TOKENS_PER_REQUEST = 410;

  /** Request and response sizes: used only for an estimate, not needed with a full usage. */
  static final long REQUEST_BYTES = 1024;

  static final long RESPONSE_BYTES = 1024;

  /** The time the clock is fixed at: mid-minute, mid-day (UTC). */
  static final Instant NOW = Instant.parse("2026-11-28T22:00:30Z");

  /** One policy's quotas and store, shared by all benchmark threads, as request threads share them. */
  @State(Scope.Benchmark)
  public static class Budget {
    /**
     * {@code memory}: the in-memory store; {@code redis}: {@code RedisQuotaStore} against a
     * {@code redis-server} this benchmark starts on 127.0.0.1 (one Lua script per admission and
     * per charge, a loopback round trip each).
     */
    @Param({"memory"})
    public String store = "memory";

    QuotaStore counters;
    RedisServer redis;
    Quotas quotas;
    Principal principal;
    JsonNode body;
    Map<String, Long> usage;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      Clock clock = Clock.fixed(NOW, ZoneOffset.UTC);
      counters =
          switch (store) {
            case "memory" -> new InMemoryQuotaStore(clock);
            case "redis" -> {
              redis = RedisServer.start();
              yield RedisQuotaStore.connect(
                  redis.url(), Duration.ofSeconds(2), "bench:" + System.nanoTime() + ":", clock);
            }
            default ->
                throw new IllegalArgumentException("store must be memory or redis: " + store);
          };
      quotas =
          new Quotas(
              List.of(new Policy.Limit(Set.of("*"), List.of(), Set.of(), BOUND, BOUND, BOUND)),
              counters,
              clock);
      principal =
          new Principal(
              SUBJECT,
              Set.of("ml-team", "engineering"),
              Principal.VIA_OIDC,
              "https://idp.example.com",
              Map.of());
      body =
          new ObjectMapper()
              .readTree(
                  "{\"model\":\""
                      + MODEL
                      + "\",\"max_tokens\":256,\"temperature\":0.2,"
                      + "\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
                      + "{\"role\":\"user\",\"content\":\"Summarise the quarterly report in three bullet points.\"}]}");
      // as UsageExtractor hands it over: an insertion-ordered map of what the response reported
      usage = new LinkedHashMap<>();
      usage.put("prompt_tokens", 212L);
      usage.put("completion_tokens", 198L);
      usage.put("total_tokens", 410L);

      // proves a measured call is admitted, counted and charged
      Map<String, Long> left = request(this);
      Map<String, Long> expected =
          Map.of(
              "requests_per_minute",
              BOUND - 1,
              "tokens_per_minute",
              BOUND - TOKENS_PER_REQUEST,
              "tokens_per_day",
              BOUND - TOKENS_PER_REQUEST);
      if (!left.equals(expected))
        throw new IllegalStateException("expected " + expected + " left, got " + left);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      if (counters instanceof AutoCloseable c) c.close();
      if (redis != null) redis.close();
    }
  }

  /** One request's quota work: admission, then accounting; what is left, as the record shows it. */
  static Map<String, Long> request(Budget b) {
    Quotas.Check check = b.quotas.admit(b.principal, OPERATION, MODEL, b.body);
    if (check.admission() == null)
      throw new IllegalStateException("not admitted: " + check.refusal());
    return b.quotas.charge(check.admission(), true, b.usage, REQUEST_BYTES, RESPONSE_BYTES).left();
  }

  @Benchmark
  @Threads(8)
  public Map<String, Long> onePrincipal8Threads(Budget b) {
    return request(b);
  }

  @Benchmark
  @Threads(1)
  public Map<String, Long> onePrincipal1Thread(Budget b) {
    return request(b);
  }

  /**
   * The eight threads again, as requests per microsecond of all threads together: on a machine
   * with fewer cores than threads, the average time per call above includes each thread's wait
   * for a core; {@code cores / throughput} is the processor time one request costs.
   */
  @Benchmark
  @Threads(8)
  @BenchmarkMode(Mode.Throughput)
  public Map<String, Long> onePrincipal8ThreadsThroughput(Budget b) {
    return request(b);
  }
}
