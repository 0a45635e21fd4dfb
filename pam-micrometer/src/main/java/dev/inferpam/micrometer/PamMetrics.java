package dev.inferpam.micrometer;

import dev.inferpam.api.Decision;
import dev.inferpam.core.ExchangeInfo;
import dev.inferpam.core.ExchangeListener;
import dev.inferpam.core.PamEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.TimeGauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Meters and observations of every exchange an engine decides: an {@link ExchangeListener} to give
 * to {@link dev.inferpam.core.PamEngine.Builder#eventListener}.
 *
 * <pre>{@code
 * PamMetrics metrics = PamMetrics.bindTo(meterRegistry);
 * PamEngine engine = PamEngine.builder().policy(policy).eventListener(metrics).build();
 * }</pre>
 *
 * <p>The meters (all named {@code inferpam.*}; their tags are low-cardinality: outcome, error
 * code, operation, detector, failure, quota rule — never the principal, the model asked for or
 * anything of the prompt; {@code docs/metrics.md} lists them):
 *
 * <ul>
 *   <li>{@value #DECISIONS} (counter): final decisions, tags {@code outcome} ({@code allow},
 *       {@code deny}), {@code code} (the denial's code, {@code none} for an allowance) and
 *       {@code operation} ({@code chat}, {@code completion}, {@code embedding}, {@code infer},
 *       {@code none}). A request held for review counts once, with its final decision.</li>
 *   <li>{@value #DECISION_DURATION} (timer): the time inferpam adds before a request goes
 *       upstream: from the request's head received to the adapter taking the request to forward,
 *       reading the request body included, a reviewer's wait excluded; tag {@code operation}.</li>
 *   <li>{@value #FIRST_BYTE} (timer): from the request's head received to the upstream's response
 *       head (status and headers); tag {@code operation}.</li>
 *   <li>{@value #MASKED} (counter): values masked in responses, tag {@code detector}.</li>
 *   <li>{@value #FAILURES} (counter): tag {@code failure}: {@code upstream} (no answer),
 *       {@code masking}, {@code recording} (the recorder refused or failed to take a record),
 *       {@code quotas} (the quota store failed and the request went on uncounted).</li>
 *   <li>{@value #APPROVALS_PENDING} (gauge): requests of this engine waiting for a reviewer now.</li>
 *   <li>{@value #APPROVAL_WAIT} (timer): how long reviewed requests waited, tags {@code outcome}
 *       and {@code code} of the decision that ended the wait.</li>
 *   <li>{@value #QUOTA_REFUSALS} (counter): requests refused 429 {@code quota_exceeded}, tag
 *       {@code rule} (the policy's {@code limits} entry and bound).</li>
 *   <li>{@value #EXCHANGES_ENDED} (counter): exchanges ended, tag {@code complete}.</li>
 *   <li>{@value #QUOTA_LEFT} (distribution summary, percent): what the caller had left of each
 *       quota bound after a charged exchange, the least over the limit entries that apply, tag
 *       {@code bound} ({@code tokens_per_day}, ...); its histogram counts exchanges that left at
 *       most 10, 25 and 50 percent.</li>
 *   <li>{@value #OIDC_KEY_FAILURES} (counter): OIDC discovery documents or key sets that could
 *       not be fetched or read, tag {@code issuer} (as the policy names it).</li>
 *   <li>with {@link #bindEngine}: {@value #IN_FLIGHT} and {@value #RECORDER_BACKLOG} (gauges) and
 *       {@value #RECORDER_LAG} (time gauge).</li>
 * </ul>
 *
 * <p>With an {@link ObservationRegistry} ({@link Builder#observationRegistry}) each exchange is
 * also an {@link Observation} named {@value #OBSERVATION}, started at the engine's first decision
 * (as a child of the observation current on that thread: a server request's, or a client call's)
 * and stopped when the exchange ends; tracing handlers (micrometer-tracing) make it a span.
 *
 * <p><b>Cost:</b> meters are registered once and cached per tag combination; an exchange costs a
 * few counter and timer updates and no allocation, but for {@link #masked} (one iteration of the
 * counts) and, only with observations on or for a request held for review, one map entry.
 *
 * <p><b>Thread-safety:</b> thread-safe; one instance serves every exchange of one engine (an
 * engine's listener is set once). Give each engine its own instance: the pending-approvals gauge
 * counts the reviews of the exchanges this instance hears.
 */
public final class PamMetrics implements ExchangeListener {
  /** Final decisions. */
  public static final String DECISIONS = "inferpam.decisions";

  /** The time inferpam adds before forwarding. */
  public static final String DECISION_DURATION = "inferpam.decision.duration";

  /** Time to the upstream's response head. */
  public static final String FIRST_BYTE = "inferpam.first.byte";

  /** Values masked, by detector. */
  public static final String MASKED = "inferpam.masked.values";

  /** Failures, by kind. */
  public static final String FAILURES = "inferpam.failures";

  /** Requests waiting for a reviewer. */
  public static final String APPROVALS_PENDING = "inferpam.approvals.pending";

  /** Time reviewed requests waited. */
  public static final String APPROVAL_WAIT = "inferpam.approval.wait";

  /** Quota refusals. */
  public static final String QUOTA_REFUSALS = "inferpam.quota.refusals";

  /** Exchanges ended. */
  public static final String EXCHANGES_ENDED = "inferpam.exchanges.ended";

  /** The observation of one exchange. */
  public static final String OBSERVATION = "inferpam.exchange";

  /** Gauge: exchanges forwarded and not yet ended ({@link #bindEngine}). */
  public static final String IN_FLIGHT = "inferpam.exchanges.in.flight";

  /** Gauge: records handed to the recorder and not yet durable ({@link #bindEngine}). */
  public static final String RECORDER_BACKLOG = "inferpam.recorder.backlog";

  /**
   * Time gauge: how long the oldest record handed to the recorder and not yet durable has waited
   * ({@link #bindEngine}).
   */
  public static final String RECORDER_LAG = "inferpam.recorder.lag";

  /** What callers have left of a quota bound after each charged exchange, in percent. */
  public static final String QUOTA_LEFT = "inferpam.quota.left";

  /** OIDC discovery documents or key sets that could not be fetched, by issuer. */
  public static final String OIDC_KEY_FAILURES = "inferpam.oidc.key.fetch.failures";

  /**
   * The service-level boundaries of {@value #QUOTA_LEFT}, in percent: its histogram counts
   * exchanges that left their caller at most a tenth, a quarter and half of a bound.
   */
  private static final double[] QUOTA_LEFT_BOUNDARIES = {10, 25, 50};

  /** Tag values of {@code operation}, by index; see {@link #operationIndex}. */
  private static final String[] OPERATIONS = {
    "chat", "completion", "embedding", "infer", "none", "other"
  };

  private static final String NONE = "none";

  private static final Observation.Event HELD = Observation.Event.of("inferpam.held");
  private static final Observation.Event FORWARDED = Observation.Event.of("inferpam.forwarded");
  private static final Observation.Event FIRST_BYTE_EVENT =
      Observation.Event.of("inferpam.first-byte");

  private final MeterRegistry meters;
  private final ObservationRegistry observations;

  // Lazily registered; a race registers the same meter twice, which Micrometer answers with the
  // one it has.
  private final Counter[] allowed = new Counter[OPERATIONS.length];
  private final Map<String, Counter[]> denied = new ConcurrentHashMap<>();
  private final Timer[] decisionTimes = new Timer[OPERATIONS.length];
  private final Timer[] firstBytes = new Timer[OPERATIONS.length];
  private final Map<String, Counter> masked = new ConcurrentHashMap<>();
  private final Map<String, Counter> quotaRefusals = new ConcurrentHashMap<>();
  private final Map<String, Timer> approvalWaits = new ConcurrentHashMap<>();
  private final Map<String, DistributionSummary> quotaLeft = new ConcurrentHashMap<>();
  private final Map<String, Counter> keyFailures = new ConcurrentHashMap<>();
  private final EnumMap<Failure, Counter> failures = new EnumMap<>(Failure.class);
  private final Counter endedComplete;
  private final Counter endedIncomplete;
  private final AtomicInteger pending = new AtomicInteger();

  /** Exchanges held for review, by id, until they end. */
  private final Map<String, Held> held = new ConcurrentHashMap<>();

  /** Open observations, by exchange id. */
  private final Map<String, Observation> open = new ConcurrentHashMap<>();

  /** A held exchange: when it was held, and how long it waited once decided. */
  private static final class Held {
    final long heldAt;
    volatile long waited = -1;

    Held(long heldAt) {
      this.heldAt = heldAt;
    }
  }

  private PamMetrics(Builder b) {
    this.meters = b.meters;
    this.observations = b.observations;
    if (meters != null) {
      for (Failure f : Failure.values()) {
        failures.put(
            f,
            Counter.builder(FAILURES)
                .description("Exchange failures by kind")
                .tag("failure", f.name().toLowerCase(java.util.Locale.ROOT))
                .register(meters));
      }
      endedComplete = ended(true);
      endedIncomplete = ended(false);
      Gauge.builder(APPROVALS_PENDING, pending, AtomicInteger::get)
          .description("Requests waiting for a reviewer")
          .register(meters);
    } else {
      endedComplete = null;
      endedIncomplete = null;
    }
  }

  private Counter ended(boolean complete) {
    return Counter.builder(EXCHANGES_ENDED)
        .description("Exchanges ended, complete or broken off")
        .tag("complete", Boolean.toString(complete))
        .register(meters);
  }

  /**
   * Meters of the engine's exchanges in {@code registry}, without observations.
   *
   * @throws NullPointerException when {@code registry} is null
   */
  public static PamMetrics bindTo(MeterRegistry registry) {
    return builder().meterRegistry(registry).build();
  }

  /**
   * Gauges read from a built {@code engine}: {@value #IN_FLIGHT} ({@link
   * PamEngine#exchangesInFlight()}), {@value #RECORDER_BACKLOG} ({@link
   * PamEngine#recorderBacklog()}) and {@value #RECORDER_LAG} ({@link
   * PamEngine#recorderLagNanos()}), the last two not registered when the recorder does not tell. The registry
   * holds the engine weakly: a closed, dropped engine does not stay reachable through it.
   */
  public static void bindEngine(PamEngine engine, MeterRegistry registry) {
    Objects.requireNonNull(engine, "engine");
    Objects.requireNonNull(registry, "registry");
    Gauge.builder(IN_FLIGHT, engine, PamEngine::exchangesInFlight)
        .description("exchanges forwarded and not yet ended")
        .register(registry);
    if (engine.recorderBacklog() >= 0) {
      Gauge.builder(RECORDER_BACKLOG, engine, PamEngine::recorderBacklog)
          .description("records handed to the recorder and not yet durable")
          .register(registry);
    }
    if (engine.recorderLagNanos() >= 0) {
      TimeGauge.builder(
              RECORDER_LAG, engine, TimeUnit.NANOSECONDS, e -> Math.max(0, e.recorderLagNanos()))
          .description("how long the oldest record not yet durable has waited")
          .register(registry);
    }
  }

  /** A builder; at least one of the two registries is required. */
  public static Builder builder() {
    return new Builder();
  }

  /** Builds a {@link PamMetrics}. Not thread-safe. */
  public static final class Builder {
    private MeterRegistry meters;
    private ObservationRegistry observations;

    private Builder() {}

    /** Where the meters go. */
    public Builder meterRegistry(MeterRegistry registry) {
      this.meters = Objects.requireNonNull(registry, "registry");
      return this;
    }

    /**
     * Makes each exchange an {@link Observation} named {@value #OBSERVATION} in {@code registry}
     * (a span where micrometer-tracing is set up). {@link ObservationRegistry#NOOP} is taken as
     * none.
     */
    public Builder observationRegistry(ObservationRegistry registry) {
      this.observations = Objects.requireNonNull(registry, "registry");
      return this;
    }

    /**
     * @throws IllegalStateException when neither registry was given
     */
    public PamMetrics build() {
      if (meters == null && observations == null)
        throw new IllegalStateException("a meter registry or an observation registry is required");
      if (observations != null && observations.isNoop()) observations = null;
      return new PamMetrics(this);
    }
  }

  // --- events ---------------------------------------------------------------------------------

  @Override
  public void decided(ExchangeInfo exchange, Decision decision) {
    if (observations != null) observe(exchange, decision);
    if (decision instanceof Decision.RequireApproval) {
      held.put(exchange.id(), new Held(System.nanoTime()));
      pending.incrementAndGet();
      return;
    }
    boolean allow = decision instanceof Decision.Allow;
    String code = allow ? NONE : ((Decision.Deny) decision).code();
    if (!held.isEmpty()) {
      Held h = held.get(exchange.id());
      if (h != null && h.waited < 0) {
        h.waited = System.nanoTime() - h.heldAt;
        pending.decrementAndGet();
        if (meters != null) approvalWait(allow, code).record(h.waited, TimeUnit.NANOSECONDS);
      }
    }
    if (meters == null) return;
    int op = operationIndex(exchange.operation());
    if (allow) {
      Counter c = allowed[op];
      if (c == null) allowed[op] = c = decisions("allow", NONE, op);
      c.increment();
      return;
    }
    Counter[] byOp = denied.computeIfAbsent(code, k -> new Counter[OPERATIONS.length]);
    Counter c = byOp[op];
    if (c == null) byOp[op] = c = decisions("deny", code, op);
    c.increment();
    if ("quota_exceeded".equals(code)) {
      String rule = String.valueOf(decision.rule());
      quotaRefusals
          .computeIfAbsent(
              rule,
              r ->
                  Counter.builder(QUOTA_REFUSALS)
                      .description("Requests refused for a quota")
                      .tag("rule", r)
                      .register(meters))
          .increment();
    }
  }

  @Override
  public void forwarded(ExchangeInfo exchange) {
    if (observations != null) event(exchange, FORWARDED);
    if (meters == null) return;
    long took = System.nanoTime() - exchange.startNanos();
    if (!held.isEmpty()) {
      Held h = held.get(exchange.id());
      if (h != null && h.waited >= 0) took -= h.waited;
    }
    int op = operationIndex(exchange.operation());
    Timer t = decisionTimes[op];
    if (t == null)
      decisionTimes[op] =
          t =
              Timer.builder(DECISION_DURATION)
                  .description("Time inferpam adds before forwarding a request (review excluded)")
                  .tag("operation", OPERATIONS[op])
                  .register(meters);
    t.record(Math.max(0, took), TimeUnit.NANOSECONDS);
  }

  @Override
  public void firstByte(ExchangeInfo exchange, int status) {
    if (observations != null) event(exchange, FIRST_BYTE_EVENT);
    if (meters == null) return;
    int op = operationIndex(exchange.operation());
    Timer t = firstBytes[op];
    if (t == null)
      firstBytes[op] =
          t =
              Timer.builder(FIRST_BYTE)
                  .description("Time from the request's head to the upstream's response head")
                  .tag("operation", OPERATIONS[op])
                  .register(meters);
    t.record(System.nanoTime() - exchange.startNanos(), TimeUnit.NANOSECONDS);
  }

  @Override
  public void masked(ExchangeInfo exchange, Map<String, Integer> counts) {
    if (meters == null || counts.isEmpty()) return;
    for (Map.Entry<String, Integer> e : counts.entrySet()) {
      Integer n = e.getValue();
      if (n == null || n <= 0) continue;
      masked
          .computeIfAbsent(
              e.getKey(),
              d ->
                  Counter.builder(MASKED)
                      .description("Values masked in responses, by detector")
                      .tag("detector", d)
                      .register(meters))
          .increment(n);
    }
  }

  @Override
  public void failed(ExchangeInfo exchange, Failure failure) {
    if (observations != null) {
      Observation o = open.get(exchange.id());
      if (o != null)
        o.lowCardinalityKeyValue("failure", failure.name().toLowerCase(java.util.Locale.ROOT));
    }
    if (meters != null) failures.get(failure).increment();
  }

  @Override
  public void quotaCharged(ExchangeInfo exchange, Map<String, Double> fractionLeft) {
    if (meters == null) return;
    for (Map.Entry<String, Double> e : fractionLeft.entrySet()) {
      Double left = e.getValue();
      if (left == null) continue;
      DistributionSummary d = quotaLeft.get(e.getKey());
      if (d == null)
        d =
            quotaLeft.computeIfAbsent(
                e.getKey(),
                bound ->
                    DistributionSummary.builder(QUOTA_LEFT)
                        .description(
                            "Fraction of a quota bound the caller had left after an exchange")
                        .tag("bound", bound)
                        .baseUnit("percent")
                        .serviceLevelObjectives(QUOTA_LEFT_BOUNDARIES)
                        .register(meters));
      // in percent: Micrometer's histograms count whole values, so fractions would all land in
      // the first bucket above 1
      d.record(left * 100);
    }
  }

  @Override
  public void keyFetchFailed(String issuer) {
    if (meters == null) return;
    keyFailures
        .computeIfAbsent(
            String.valueOf(issuer),
            i ->
                Counter.builder(OIDC_KEY_FAILURES)
                    .description("OIDC discovery documents or key sets that could not be fetched")
                    .tag("issuer", i)
                    .register(meters))
        .increment();
  }

  @Override
  public void ended(ExchangeInfo exchange, boolean complete) {
    if (!held.isEmpty()) {
      Held h = held.remove(exchange.id());
      if (h != null && h.waited < 0) pending.decrementAndGet();
    }
    if (meters != null) (complete ? endedComplete : endedIncomplete).increment();
    if (observations != null) {
      Observation o = open.remove(exchange.id());
      if (o != null) {
        o.lowCardinalityKeyValue("complete", Boolean.toString(complete));
        o.stop();
      }
    }
  }

  // --- helpers --------------------------------------------------------------------------------

  private Counter decisions(String outcome, String code, int op) {
    return Counter.builder(DECISIONS)
        .description("Final decisions on requests")
        .tag("outcome", outcome)
        .tag("code", code)
        .tag("operation", OPERATIONS[op])
        .register(meters);
  }

  private Timer approvalWait(boolean allow, String code) {
    Timer t = approvalWaits.get(code);
    if (t != null) return t;
    return approvalWaits.computeIfAbsent(
        code,
        c ->
            Timer.builder(APPROVAL_WAIT)
                .description("Time requests waited for a reviewer")
                .tag("outcome", allow ? "allow" : "deny")
                .tag("code", c)
                .register(meters));
  }

  /** The index of {@code operation} in {@link #OPERATIONS}, without allocating. */
  private static int operationIndex(String operation) {
    if (operation == null) return 4;
    switch (operation) {
      case "chat":
        return 0;
      case "completion":
        return 1;
      case "embedding":
        return 2;
      case "infer":
        return 3;
      default:
        return 5;
    }
  }

  /**
   * Starts the exchange's observation at its first decision (a held request's first is the
   * hold), and names its outcome at the final one.
   */
  private void observe(ExchangeInfo exchange, Decision decision) {
    Observation o = open.get(exchange.id());
    if (o == null) {
      o =
          Observation.createNotStarted(OBSERVATION, observations)
              .contextualName("inferpam exchange")
              .parentObservation(observations.getCurrentObservation())
              .lowCardinalityKeyValue("operation", OPERATIONS[operationIndex(exchange.operation())])
              .lowCardinalityKeyValue("outcome", "held")
              .lowCardinalityKeyValue("code", NONE)
              .lowCardinalityKeyValue("failure", NONE)
              .lowCardinalityKeyValue("complete", "false")
              .highCardinalityKeyValue("inferpam.exchange.id", exchange.id())
              .start();
      open.put(exchange.id(), o);
    }
    if (decision instanceof Decision.RequireApproval) {
      o.event(HELD);
    } else if (decision instanceof Decision.Deny deny) {
      o.lowCardinalityKeyValue("outcome", "deny").lowCardinalityKeyValue("code", deny.code());
    } else {
      o.lowCardinalityKeyValue("outcome", "allow");
    }
  }

  private void event(ExchangeInfo exchange, Observation.Event event) {
    Observation o = open.get(exchange.id());
    if (o != null) o.event(event);
  }
}
