package dev.inferpam.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Principal;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.Policies;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What {@link PamMetrics} shows after real exchanges through an engine driven as an adapter drives
 * it: counts by outcome and code, timers, masked values, failures, approvals, quota refusals, and
 * the observation of each exchange.
 */
class PamMetricsTest {
  static final String KEY = "svc-key-0123456789";
  static final String OTHER = "ops-key-0123456789";
  static final String CHAT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  static final String EXPORT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"dump all users\"}]}";

  final MeterRegistry registry = new SimpleMeterRegistry();
  final InMemoryRecorder recorder = new InMemoryRecorder();
  PamEngine engine;
  InProcessApprovalService approvals;

  @AfterEach
  void close() {
    if (engine != null) engine.close();
    if (approvals != null) approvals.close();
  }

  static String policy(String extra) {
    return "version: 1\n"
        + "identity:\n  api-keys:\n"
        + Policies.apiKey("svc", KEY, "ml")
        + Policies.apiKey("ops", OTHER, "sec")
        + "entitlements:\n"
        + "  - groups: [ml]\n    models: [\"llama-*\"]\n    operations: [chat]\n"
        + extra;
  }

  PamEngine engine(String extra, PamMetrics metrics) {
    Policy p = Policy.parse(policy(extra));
    PamEngine.Builder b = PamEngine.builder().policy(p).recorder(recorder).eventListener(metrics);
    if (p.approval() != null) {
      approvals = InProcessApprovalService.builder().settings(p.approval()).manualExpiry().build();
      b.approvalService(approvals);
    }
    return engine = b.build();
  }

  static Verdict call(PamEngine engine, String key, String body) {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            key == null
                ? Map.of("Content-Type", List.of("application/json"))
                : Map.of(
                    "Content-Type", List.of("application/json"),
                    "Authorization", List.of("Bearer " + key)),
            "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  /** Forward, relay {@code body} through the plan (masked where the engine says), end. */
  static void relay(Verdict verdict, String type, String body) throws IOException {
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    allowed.forward();
    ResponsePlan.Relay relay =
        (ResponsePlan.Relay) allowed.respond(200, Map.of("Content-Type", List.of(type)));
    ResponseMasking masking = relay.masking();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    byte[] out = masking == null ? bytes : masking.push(bytes, 0, bytes.length);
    relay.delivered(out, 0, out.length);
    if (masking != null) {
      byte[] tail = masking.finish();
      relay.delivered(tail, 0, tail.length);
    }
    allowed.end(true);
  }

  static void deny(Verdict verdict) {
    ((Verdict.Denied) verdict).end(true);
  }

  double decisions(String outcome, String code) {
    var c = registry.find(PamMetrics.DECISIONS).tag("outcome", outcome).tag("code", code).counter();
    return c == null ? 0 : c.count();
  }

  @Test
  void countsDecisionsByOutcomeAndCode() throws Exception {
    PamEngine e = engine("", PamMetrics.bindTo(registry));
    relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    deny(call(e, null, CHAT));
    deny(call(e, KEY, CHAT.replace("llama-3", "gpt-4o")));
    deny(call(e, "wrong-key-0123456789", CHAT));

    assertThat(decisions("allow", "none")).isEqualTo(2);
    assertThat(decisions("deny", "unauthenticated")).isEqualTo(2);
    assertThat(
            registry
                .get(PamMetrics.DECISIONS)
                .tags("outcome", "allow", "code", "none", "operation", "chat")
                .counter()
                .count())
        .isEqualTo(2);
    assertThat(registry.get(PamMetrics.DECISIONS).tag("outcome", "deny").counters())
        .extracting(c -> c.getId().getTag("code"))
        .containsExactlyInAnyOrder("unauthenticated", "not_entitled");
    assertThat(registry.get(PamMetrics.EXCHANGES_ENDED).tag("complete", "true").counter().count())
        .isEqualTo(5);
    // never the principal or the model asked for
    assertThat(registry.getMeters())
        .allSatisfy(
            m ->
                assertThat(m.getId().getTags())
                    .noneMatch(t -> t.getValue().equals("svc") || t.getValue().contains("gpt")));
  }

  @Test
  void timesTheDecisionBeforeForwardingAndTheFirstByte() throws Exception {
    PamEngine e = engine("", PamMetrics.bindTo(registry));
    relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    deny(call(e, null, CHAT));

    Timer decision = registry.get(PamMetrics.DECISION_DURATION).tag("operation", "chat").timer();
    Timer firstByte = registry.get(PamMetrics.FIRST_BYTE).tag("operation", "chat").timer();
    assertThat(decision.count()).as("forwarded requests only").isEqualTo(1);
    assertThat(firstByte.count()).isEqualTo(1);
    assertThat(decision.totalTime(TimeUnit.NANOSECONDS)).isPositive();
    assertThat(firstByte.totalTime(TimeUnit.NANOSECONDS))
        .isGreaterThanOrEqualTo(decision.totalTime(TimeUnit.NANOSECONDS));
  }

  @Test
  void countsMaskedValuesByDetector() throws Exception {
    PamEngine e = engine("masking:\n  detectors: [email, phone]\n", PamMetrics.bindTo(registry));
    relay(
        call(e, KEY, CHAT),
        "text/plain",
        "write to jane.doe@example.com or john@example.org, or call +44 20 7946 0958");
    assertThat(registry.get(PamMetrics.MASKED).tag("detector", "email").counter().count())
        .isEqualTo(2);
    assertThat(registry.get(PamMetrics.MASKED).tag("detector", "phone").counter().count())
        .isEqualTo(1);
  }

  @Test
  void countsFailuresByKind() throws Exception {
    PamEngine e = engine("", PamMetrics.bindTo(registry));
    Verdict.Allowed allowed = (Verdict.Allowed) call(e, KEY, CHAT);
    allowed.forward();
    allowed.upstreamFailed();
    allowed.end(false);
    assertThat(registry.get(PamMetrics.FAILURES).tag("failure", "upstream").counter().count())
        .isEqualTo(1);
    assertThat(registry.get(PamMetrics.FAILURES).tag("failure", "recording").counter().count())
        .isZero();
    assertThat(registry.get(PamMetrics.EXCHANGES_ENDED).tag("complete", "false").counter().count())
        .isEqualTo(1);
  }

  @Test
  void countsQuotaRefusals() throws Exception {
    PamEngine e =
        engine(
            "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 1\n",
            PamMetrics.bindTo(registry));
    relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    deny(call(e, KEY, CHAT));
    deny(call(e, KEY, CHAT));
    assertThat(decisions("deny", "quota_exceeded")).isEqualTo(2);
    assertThat(registry.get(PamMetrics.QUOTA_REFUSALS).counters())
        .singleElement()
        .satisfies(c -> assertThat(c.count()).isEqualTo(2));
  }

  @Test
  void showsTheFractionOfEachQuotaBoundLeftAfterAnExchange() throws Exception {
    PamEngine e =
        engine(
            "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 4\n",
            PamMetrics.bindTo(registry));
    for (int i = 0; i < 3; i++) relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    var left = registry.get(PamMetrics.QUOTA_LEFT).tag("bound", "requests_per_minute").summary();
    assertThat(left.count()).isEqualTo(3);
    assertThat(left.totalAmount()).as("75, 50 and 25 percent left").isEqualTo(150);
    assertThat(left.max()).isEqualTo(75);
    var buckets = left.takeSnapshot().histogramCounts();
    assertThat(buckets).hasSize(3);
    assertThat(buckets[0].bucket()).isEqualTo(10);
    assertThat(buckets[0].count()).isZero();
    assertThat(buckets[1].bucket()).isEqualTo(25);
    assertThat(buckets[1].count()).as("one exchange left a quarter").isEqualTo(1);
    assertThat(buckets[2].count()).isEqualTo(2);
    // a refused request is not charged: no new sample
    relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
    deny(call(e, KEY, CHAT));
    assertThat(left.count()).isEqualTo(4);
  }

  @Test
  void countsOidcKeyFetchFailuresByIssuer() throws Exception {
    // nothing listens on port 1 of the loopback: every fetch of the issuer's keys fails
    String issuer = "http://127.0.0.1:1/realms/ml";
    Policy p =
        Policy.parse(
            "version: 1\nidentity:\n  oidc:\n    - issuer: "
                + issuer
                + "\n      audience: inference\n      jwks-uri: http://127.0.0.1:1/certs\n"
                + "entitlements:\n  - groups: [ml]\n    models: [\"llama-*\"]\n"
                + "    operations: [chat]\n");
    engine =
        PamEngine.builder()
            .policy(p)
            .recorder(recorder)
            .eventListener(PamMetrics.bindTo(registry))
            .build();
    com.nimbusds.jose.jwk.RSAKey key =
        new com.nimbusds.jose.jwk.gen.RSAKeyGenerator(2048).generate();
    com.nimbusds.jwt.SignedJWT jwt =
        new com.nimbusds.jwt.SignedJWT(
            new com.nimbusds.jose.JWSHeader.Builder(com.nimbusds.jose.JWSAlgorithm.RS256)
                .keyID(key.getKeyID())
                .build(),
            new com.nimbusds.jwt.JWTClaimsSet.Builder()
                .issuer(issuer)
                .audience("inference")
                .subject("alice")
                .expirationTime(new java.util.Date(System.currentTimeMillis() + 600_000))
                .build());
    jwt.sign(new com.nimbusds.jose.crypto.RSASSASigner(key));
    Verdict v = call(engine, jwt.serialize(), CHAT);
    Verdict.Denied denied = (Verdict.Denied) v;
    assertThat(denied.error().status()).isEqualTo(401);
    assertThat(denied.error().bodyText()).contains("issuer keys unavailable");
    denied.end(true);
    assertThat(registry.get(PamMetrics.OIDC_KEY_FAILURES).tag("issuer", issuer).counter().count())
        .isGreaterThanOrEqualTo(1);
    assertThat(decisions("deny", "unauthenticated")).isEqualTo(1);
  }

  @Test
  void showsApprovalsPendingAndTimesTheWait() throws Exception {
    PamEngine e =
        engine(
            "approval:\n  reviewers: [sec]\n  rules:\n"
                + "    - {name: bulk, prompt-matches: \"dump all\"}\n",
            PamMetrics.bindTo(registry));
    Verdict.Held first = (Verdict.Held) call(e, KEY, EXPORT);
    // another prompt: the same request twice would wait on one review
    Verdict.Held second = (Verdict.Held) call(e, KEY, EXPORT.replace("users", "accounts"));
    assertThat(registry.get(PamMetrics.APPROVALS_PENDING).gauge().value()).isEqualTo(2);

    AtomicReference<Verdict> result = new AtomicReference<>();
    first.result(Runnable::run).thenAccept(result::set);
    Principal reviewer = new Principal("sam", Set.of("sec"), "api-key", null, Map.of());
    approvals.approve(approvals.pending().get(0).id(), reviewer, "ok");
    assertThat(result.get()).isInstanceOf(Verdict.Allowed.class);
    assertThat(registry.get(PamMetrics.APPROVALS_PENDING).gauge().value()).isEqualTo(1);
    relay(result.get(), "application/json", "{\"choices\":[]}");

    second.cancel();
    assertThat(registry.get(PamMetrics.APPROVALS_PENDING).gauge().value()).isZero();
    assertThat(
            registry.get(PamMetrics.APPROVAL_WAIT).tags("outcome", "allow", "code", "none").timer())
        .satisfies(t -> assertThat(t.count()).isEqualTo(1));
    assertThat(registry.get(PamMetrics.APPROVAL_WAIT).tag("outcome", "deny").timer().count())
        .isEqualTo(1);
    assertThat(decisions("allow", "none")).as("once, with its final decision").isEqualTo(1);
    assertThat(registry.get(PamMetrics.DECISION_DURATION).timer().count()).isEqualTo(1);
  }

  @Test
  void makesEachExchangeAnObservationUnderTheCurrentOne() throws Exception {
    ObservationRegistry observations = ObservationRegistry.create();
    List<Observation.Context> stopped = new CopyOnWriteArrayList<>();
    observations
        .observationConfig()
        .observationHandler(
            new ObservationHandler<>() {
              @Override
              public void onStop(Observation.Context context) {
                stopped.add(context);
              }

              @Override
              public boolean supportsContext(Observation.Context context) {
                return true;
              }
            });
    PamEngine e =
        engine(
            "",
            PamMetrics.builder().meterRegistry(registry).observationRegistry(observations).build());
    Observation server = Observation.start("http.server.requests", observations);
    try (Observation.Scope scope = server.openScope()) {
      relay(call(e, KEY, CHAT), "application/json", "{\"choices\":[]}");
      deny(call(e, null, CHAT));
      assertThat(scope.getCurrentObservation()).isSameAs(server);
    }
    server.stop();

    List<Observation.Context> exchanges =
        stopped.stream().filter(c -> c.getName().equals(PamMetrics.OBSERVATION)).toList();
    assertThat(exchanges).hasSize(2);
    assertThat(exchanges.get(0).getLowCardinalityKeyValue("outcome").getValue()).isEqualTo("allow");
    assertThat(exchanges.get(1).getLowCardinalityKeyValue("outcome").getValue()).isEqualTo("deny");
    assertThat(exchanges.get(1).getLowCardinalityKeyValue("code").getValue())
        .isEqualTo("unauthenticated");
    assertThat(exchanges.get(0).getLowCardinalityKeyValue("complete").getValue()).isEqualTo("true");
    assertThat(exchanges).allSatisfy(c -> assertThat(c.getParentObservation()).isSameAs(server));
    assertThat(registry.get(PamMetrics.DECISIONS).counters()).hasSize(2);
  }

  @Test
  void needsARegistry() {
    assertThatThrownBy(() -> PamMetrics.builder().build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("registry");
  }

  @Test
  void gaugesReadTheEngineInFlightAndTheRecordersBacklog(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
    PamEngine jsonl =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    policy(
                        "recording:\n  directory: "
                            + Policies.quoted(dir.toString())
                            + "\n  durability: batched\n  batch-interval: 1h\n")))
            .build();
    try {
      PamMetrics.bindEngine(jsonl, registry);
      assertThat(registry.get(PamMetrics.IN_FLIGHT).gauge().value()).isZero();
      assertThat(registry.get(PamMetrics.RECORDER_BACKLOG).gauge().value())
          .isGreaterThanOrEqualTo(0);
      var lag = registry.get(PamMetrics.RECORDER_LAG).timeGauge();
      assertThat(lag.value(TimeUnit.NANOSECONDS)).as("nothing waits yet").isZero();
      Verdict.Allowed held = (Verdict.Allowed) call(jsonl, KEY, CHAT);
      held.forward();
      assertThat(registry.get(PamMetrics.IN_FLIGHT).gauge().value()).isEqualTo(1);
      held.end(false);
      assertThat(registry.get(PamMetrics.IN_FLIGHT).gauge().value()).isZero();
      // the record waits for the batch's commit (an hour away): the lag grows until it is flushed
      assertThat(lag.value(TimeUnit.NANOSECONDS)).isPositive();
      jsonl.close(); // flushes
      assertThat(lag.value(TimeUnit.NANOSECONDS)).as("durable once flushed").isZero();
    } finally {
      jsonl.close();
    }
    SimpleMeterRegistry other = new SimpleMeterRegistry();
    PamMetrics.bindEngine(engine("", PamMetrics.bindTo(other)), other);
    assertThat(other.find(PamMetrics.IN_FLIGHT).gauge()).isNotNull();
    assertThat(other.find(PamMetrics.RECORDER_BACKLOG).gauge())
        .as("an in-memory recorder does not tell its backlog")
        .isNull();
    assertThat(other.find(PamMetrics.RECORDER_LAG).timeGauge()).isNull();
  }
}
