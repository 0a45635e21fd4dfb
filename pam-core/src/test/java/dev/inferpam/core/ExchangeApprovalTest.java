package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Principal;
import dev.inferpam.api.ReviewNotifier;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.policy.Decider;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Just-in-time approval as adapters and callers see it: the {@link Verdict.Held} of a held
 * request, the final verdict it gives for each way a review ends, the error bodies and headers
 * sent, and the records handed to the recorder. Expiry is driven by a fake clock and
 * {@link InProcessApprovalService#expireDue()}; nothing sleeps.
 */
class ExchangeApprovalTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String KEY = "svc-key-1";
  static final String CI_KEY = "ci-key-1";
  static final Instant T0 = Instant.parse("2026-11-28T22:00:00Z");
  static final Principal SAM =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_OIDC, "https://idp", Map.of());
  static final Credential UPSTREAM = new Credential("X-Model-Key", "upstream-secret");
  static final String CHAT = "/v1/chat/completions";
  static final String DUMP_ALL = chat("llama-3", "please dump all customer rows");

  @TempDir Path dir;

  final MutableClock clock = new MutableClock(T0);
  final CapturingRecorder rec = new CapturingRecorder();
  final List<AutoCloseable> toClose = new ArrayList<>();

  /** The service of the engine under test when it is an {@link InProcessApprovalService}. */
  InProcessApprovalService service;

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : toClose) c.close();
  }

  // --- fixtures ----------------------------------------------------------------------------------

  static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  /**
   * Two principals ({@code svc} in ml, {@code ci-bot} in ci), entitled to llama models
   * ({@code entitlements[0]}) and to chat with finance models ({@code entitlements[1]}); a block
   * rule, denied and capped parameters to see the decision order; and one approval rule of each
   * kind, in this order: prompt, output bound, model, operation, group.
   *
   * @param settings further {@code approval} keys, each line indented by two spaces
   * @param extra    further top-level sections
   */
  static String policy(String settings, String extra) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
            - {name: ci-bot, sha256: %s, groups: [ci]}
        entitlements:
          - groups: [ml, ci]
            models: ["llama-*"]
            operations: [chat, completion, embedding]
          - groups: [ml, ci]
            models: ["finance-*"]
            operations: [chat]
        block:
          rules:
            - {name: no-ollama-embed, methods: ["*"], paths: ["/api/embed"]}
        parameters:
          deny: [logprobs]
          max: {max_tokens: 16000}
        approval:
          reviewers: [security-oncall]
        """
            .formatted(sha256(KEY), sha256(CI_KEY))
        + settings
        + """
          rules:
            - name: bulk-export
              prompt-matches: "(?i)\\\\b(dump|export|list) (all|every)\\\\b"
            - {name: large-generation, max-tokens-over: 8000}
            - {name: finance-models, models: ["finance-*"]}
            - {name: completions, operations: [completion]}
            - {name: ci-anything, groups: [ci]}
        """
        + extra;
  }

  static String policy() {
    return policy("", "");
  }

  static String chat(String model, String prompt) {
    return "{\"model\":\""
        + model
        + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
        + prompt
        + "\"}]}";
  }

  PamEngine.Builder base(Policy policy) {
    return PamEngine.builder()
        .policy(policy)
        .clock(clock)
        .recorder(rec)
        .credentialProvider(() -> UPSTREAM);
  }

  /** An engine whose reviews wait in an in-process service on the fake clock, expired by hand. */
  PamEngine manualEngine(String yaml) {
    Policy p = Policy.parse(yaml);
    service =
        InProcessApprovalService.builder()
            .settings(p.approval())
            .clock(clock)
            .manualExpiry()
            .build();
    toClose.add(service);
    return keep(base(p).approvalService(service).build());
  }

  /** An engine with the default service (its own expiry thread; the fake clock never reaches a deadline). */
  PamEngine defaultEngine(String yaml, ReviewNotifier notifier) {
    PamEngine.Builder b = base(Policy.parse(yaml));
    if (notifier != null) b.reviewNotifier(notifier);
    PamEngine engine = keep(b.build());
    service = (InProcessApprovalService) engine.approvalService();
    return engine;
  }

  PamEngine engineWith(String yaml, ApprovalService approvalService) {
    return keep(base(Policy.parse(yaml)).approvalService(approvalService).build());
  }

  PamEngine keep(PamEngine engine) {
    toClose.add(engine);
    return engine;
  }

  static Verdict call(PamEngine engine, String path, String key, String body) {
    Map<String, List<String>> headers =
        key == null
            ? Map.of("Content-Type", List.of("application/json"))
            : Map.of(
                "Content-Type",
                List.of("application/json"),
                "Authorization",
                List.of("Bearer " + key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead("POST", path, null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  static Verdict chatCall(PamEngine engine, String body) {
    return call(engine, CHAT, KEY, body);
  }

  static boolean reviewOver(Verdict ex) {
    return Verdicts.reviewOver(ex);
  }

  /**
   * The verdict to carry on with: the final one once the review is over (made final here, as an
   * adapter does), else the held one itself.
   */
  static Verdict fin(Verdict ex) {
    if (!(ex instanceof Verdict.Held held)) return ex;
    Verdict v = Verdicts.await(held, Duration.ZERO);
    return v == null ? ex : v;
  }

  /** Whether the request still waits for its reviewer. */
  static boolean awaiting(Verdict ex) {
    return fin(ex) instanceof Verdict.Held;
  }

  /** Takes the final verdict (the review must already be over: nothing here waits on real time). */
  static Decision settle(Verdict ex) {
    assertThat(reviewOver(ex)).as("review over").isTrue();
    return fin(ex).decision();
  }

  static Decision.Deny settleDenied(Verdict ex) {
    Decision d = settle(ex);
    assertThat(d).isInstanceOf(Decision.Deny.class);
    assertThat(fin(ex)).isInstanceOf(Verdict.Denied.class);
    assertThat(Verdicts.credential(fin(ex))).as("nothing to forward with").isNull();
    return (Decision.Deny) d;
  }

  /** The {@code error} object of the body sent for a denial, checked against the spec's shape. */
  static JsonNode error(Verdict ex) throws IOException {
    ErrorResponse err = Verdicts.error(fin(ex));
    assertThat(err).isNotNull();
    assertThat(err.headers()).containsEntry("Content-Type", "application/json");
    JsonNode e = JSON.readTree(err.body()).get("error");
    assertThat(e.get("type").asText()).isEqualTo("pam_error");
    assertThat(e.get("request_id").asText()).isEqualTo(ex.id());
    return e;
  }

  String onlyPendingId() {
    List<Pending> pending = service.pending();
    assertThat(pending).hasSize(1);
    return pending.get(0).id();
  }

  /** Ends the exchange and returns its one exchange record. */
  SessionRecord ended(Verdict ex, boolean complete) {
    Verdicts.end(fin(ex), complete);
    List<SessionRecord> mine = rec.records.stream().filter(r -> r.id().equals(ex.id())).toList();
    assertThat(mine).hasSize(1);
    assertThat(mine.get(0).type()).isEqualTo(SessionRecord.TYPE_EXCHANGE);
    return mine.get(0);
  }

  static void respond(Verdict ex, String body) {
    ResponsePlan.Relay relay =
        Verdicts.relay(
            Verdicts.allowed(fin(ex)), 200, Map.of("Content-Type", List.of("application/json")));
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    relay.delivered(b, 0, b.length);
  }

  // --- 1. which requests are held, under which rule ----------------------------------------------

  static Stream<Arguments> heldRequests() {
    return Stream.of(
        Arguments.of(
            "prompt in a chat message",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                + "{\"role\":\"user\",\"content\":\"Please DUMP ALL customer rows\"}]}",
            "bulk-export"),
        Arguments.of(
            "prompt in chat content parts",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"now list every\"},{\"type\":\"text\",\"text\":\" password\"}]}]}",
            "bulk-export"),
        Arguments.of(
            "prompt of a completion",
            "/v1/completions",
            KEY,
            "{\"model\":\"llama-3\",\"prompt\":\"export all invoices\"}",
            "bulk-export"),
        Arguments.of(
            "input of an embedding",
            "/v1/embeddings",
            KEY,
            "{\"model\":\"llama-3\",\"input\":[\"hello\",\"dump every record\"]}",
            "bulk-export"),
        Arguments.of(
            "input string of a response",
            "/v1/responses",
            KEY,
            "{\"model\":\"llama-3\",\"input\":\"list all secrets\"}",
            "bulk-export"),
        Arguments.of(
            "input items of a response",
            "/v1/responses",
            KEY,
            "{\"model\":\"llama-3\",\"input\":[{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"input_text\",\"text\":\"export every table\"}]}]}",
            "bulk-export"),
        // The prompt as a reader (and the model) sees it: split, disguised, or in other fields.
        Arguments.of(
            "prompt split across messages",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"please dump\"},"
                + "{\"role\":\"user\",\"content\":\"all customer rows\"}]}",
            "bulk-export"),
        Arguments.of(
            "prompt in Cyrillic look-alikes",
            CHAT,
            KEY,
            chat("llama-3", "please \\u0501\\u057Dm\\u0440 \\u0430ll customer rows"),
            "bulk-export"),
        Arguments.of(
            "prompt in fullwidth letters",
            CHAT,
            KEY,
            chat("llama-3", "\\uFF44\\uFF55\\uFF4D\\uFF50 \\uFF41\\uFF4C\\uFF4C"),
            "bulk-export"),
        Arguments.of(
            "prompt with a soft hyphen for a space",
            CHAT,
            KEY,
            chat("llama-3", "dump\\u00ADall rows"),
            "bulk-export"),
        Arguments.of(
            "prompt with a zero-width joiner and a no-break space",
            CHAT,
            KEY,
            chat("llama-3", "DU\\u200DMP\\u00A0ALL rows"),
            "bulk-export"),
        Arguments.of(
            "prompt with a newline between the words",
            CHAT,
            KEY,
            chat("llama-3", "list\\nevery secret"),
            "bulk-export"),
        Arguments.of(
            "prompt in a tool description",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
                + "\"function\",\"function\":{\"name\":\"f\",\"description\":\"always export all rows\"}}]}",
            "bulk-export"),
        Arguments.of(
            "prompt in an Ollama template",
            "/api/generate",
            KEY,
            "{\"model\":\"llama-3\",\"prompt\":\"hi\",\"template\":\"{{ .Prompt }} then dump all\"}",
            "bulk-export"),
        Arguments.of(
            "max_tokens over",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"max_tokens\":8001,\"messages\":[]}",
            "large-generation"),
        Arguments.of(
            "max_completion_tokens over",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"max_completion_tokens\":9000,\"messages\":[]}",
            "large-generation"),
        Arguments.of(
            "max_output_tokens over",
            "/v1/responses",
            KEY,
            "{\"model\":\"llama-3\",\"max_output_tokens\":9000,\"input\":\"hi\"}",
            "large-generation"),
        Arguments.of("model glob", CHAT, KEY, chat("finance-ledger", "hello"), "finance-models"),
        Arguments.of(
            "operation",
            "/v1/completions",
            KEY,
            "{\"model\":\"llama-3\",\"prompt\":\"write a haiku\"}",
            "completions"),
        Arguments.of("group", CHAT, CI_KEY, chat("llama-3", "hello"), "ci-anything"),
        // First match in policy order wins.
        Arguments.of(
            "prompt before bound and model",
            CHAT,
            KEY,
            "{\"model\":\"finance-x\",\"max_tokens\":9000,\"messages\":[{\"role\":\"user\",\"content\":\"dump all\"}]}",
            "bulk-export"),
        Arguments.of(
            "bound before model",
            CHAT,
            KEY,
            "{\"model\":\"finance-x\",\"max_tokens\":9000,\"messages\":[]}",
            "large-generation"),
        Arguments.of(
            "model before group", CHAT, CI_KEY, chat("finance-x", "hello"), "finance-models"),
        Arguments.of(
            "prompt before operation",
            "/v1/completions",
            CI_KEY,
            "{\"model\":\"llama-3\",\"prompt\":\"export all\"}",
            "bulk-export"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("heldRequests")
  void aMatchingApprovalRuleHoldsTheRequestNamingTheFirstRuleThatMatches(
      String what, String path, String key, String body, String rule) {
    PamEngine engine = manualEngine(policy());
    Verdict ex = call(engine, path, key, body);

    assertThat(ex.decision()).isEqualTo(new Decision.RequireApproval(rule));
    assertThat(awaiting(ex)).isTrue();
    assertThat(fin(ex)).isNotInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.error(fin(ex))).as("no answer yet").isNull();
    assertThat(Verdicts.credential(fin(ex))).as("no credential before approval").isNull();
    assertThat(reviewOver(ex)).isFalse();
    assertThat(service.pending())
        .singleElement()
        .satisfies(
            p -> {
              assertThat(p.rule()).isEqualTo(rule);
              assertThat(p.principal().subject()).isEqualTo(ex.principal().subject());
            });
    Verdicts.end(fin(ex), false);
  }

  static Stream<Arguments> passingRequests() {
    return Stream.of(
        Arguments.of("no rule matches", CHAT, KEY, chat("llama-3", "hello there")),
        Arguments.of(
            "the prompt phrase is not there",
            CHAT,
            KEY,
            chat("llama-3", "dump the trash, all of it")),
        Arguments.of(
            "max_tokens at the bound",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"max_tokens\":8000,\"messages\":[]}"),
        Arguments.of(
            "an embedding whose input matches no rule",
            "/v1/embeddings",
            KEY,
            "{\"model\":\"llama-3\",\"input\":\"hi\"}"),
        // ci-anything applies to ci only: the ml principal passes.
        Arguments.of("a principal not in the rule's groups", CHAT, KEY, chat("llama-3", "hello")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("passingRequests")
  void aRequestNoRuleMatchesIsAllowedAtOnce(String what, String path, String key, String body) {
    PamEngine engine = manualEngine(policy());
    Verdict ex = call(engine, path, key, body);

    assertThat(fin(ex).decision())
        .isEqualTo(new Decision.Allow("entitlements[0]", Decider.ALLOW_OBLIGATIONS));
    assertThat(awaiting(ex)).isFalse();
    assertThat(reviewOver(ex)).as("nothing to wait for").isTrue();
    assertThat(settle(ex)).isSameAs(fin(ex).decision());
    assertThat(Verdicts.credential(fin(ex))).isEqualTo(UPSTREAM);
    assertThat(service.pending()).isEmpty();
    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("allow");
    assertThat(r.approval()).isNull();
  }

  static Stream<Arguments> refusedEarlier() {
    return Stream.of(
        Arguments.of("not entitled", CHAT, KEY, chat("gpt-4o", "dump all"), 403, "not_entitled"),
        Arguments.of(
            "denied parameter",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"logprobs\":true,\"messages\":[{\"role\":\"user\",\"content\":\"dump all\"}]}",
            403,
            "parameter_denied"),
        Arguments.of(
            "parameter over max (also over max-tokens-over)",
            CHAT,
            KEY,
            "{\"model\":\"llama-3\",\"max_tokens\":20000,\"messages\":[]}",
            403,
            "parameter_denied"),
        Arguments.of(
            "blocked",
            "/api/embed",
            KEY,
            "{\"model\":\"llama-3\",\"input\":\"dump all\"}",
            403,
            "blocked"),
        Arguments.of("unauthenticated", CHAT, null, DUMP_ALL, 401, "unauthenticated"),
        Arguments.of(
            "unknown key", CHAT, "nope", chat("finance-x", "dump all"), 401, "unauthenticated"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("refusedEarlier")
  void aRequestRefusedByAnEarlierCheckIsDeniedNotReviewed(
      String what, String path, String key, String body, int status, String code) throws Exception {
    List<ReviewNotifier.ReviewRequest> notices = new CopyOnWriteArrayList<>();
    PamEngine engine = defaultEngine(policy(), notices::add);
    Verdict ex = call(engine, path, key, body);

    assertThat(fin(ex).decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class,
            d -> {
              assertThat(d.status()).isEqualTo(status);
              assertThat(d.code()).isEqualTo(code);
            });
    assertThat(awaiting(ex)).isFalse();
    assertThat(error(ex).get("code").asText()).isEqualTo(code);
    assertThat(service.pending()).isEmpty();
    assertThat(notices).isEmpty();
    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.approval()).isNull();
  }

  // --- 2. approved
  // ---------------------------------------------------------------------------------

  @Test
  void anApprovedRequestIsAllowedUnderItsEntitlementWithTheCredentialAndRecordedApproved()
      throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    assertThat(Verdicts.await(Verdicts.held(ex), Duration.ZERO))
        .as("not over: no verdict yet")
        .isNull();

    clock.advance(Duration.ofSeconds(30));
    assertThat(service.approve(id, SAM, "ticket 42").kind()).isEqualTo(ReviewResult.Kind.DECIDED);

    Decision d = settle(ex);
    assertThat(d).isEqualTo(new Decision.Allow("entitlements[0]", Decider.ALLOW_OBLIGATIONS));
    assertThat(fin(ex).decision()).isEqualTo(d);
    assertThat(fin(ex)).isInstanceOf(Verdict.Allowed.class);
    assertThat(awaiting(ex)).isFalse();
    assertThat(Verdicts.error(fin(ex))).isNull();
    assertThat(Verdicts.credential(fin(ex))).isEqualTo(UPSTREAM);
    assertThat(service.pending()).isEmpty();

    respond(ex, "{\"choices\":[]}");
    SessionRecord r = ended(ex, true);
    assertThat(r.decision())
        .isEqualTo(new SessionRecord.DecisionSummary("approved", "entitlements[0]", null, null));
    assertThat(r.approval())
        .isEqualTo(
            new SessionRecord.Approval(
                id, "bulk-export", "sam", T0.plusSeconds(30), "approved", "ticket 42"));
    assertThat(r.response().status()).isEqualTo(200);
    assertThat(r.request().headers().get("authorization")).containsExactly("[REDACTED]");
    assertThat(r.principal().subject()).isEqualTo("svc");
  }

  @Test
  void anApprovedRequestIsAllowedUnderTheEntitlementThatMatchedIt() {
    PamEngine engine = manualEngine(policy());
    Verdict ex = call(engine, CHAT, CI_KEY, chat("finance-ledger", "hello"));
    assertThat(ex.decision()).isEqualTo(new Decision.RequireApproval("finance-models"));
    service.approve(onlyPendingId(), SAM, null);
    assertThat(settle(ex))
        .isEqualTo(new Decision.Allow("entitlements[1]", Decider.ALLOW_OBLIGATIONS));
    SessionRecord r = ended(ex, true);
    assertThat(r.decision().rule()).isEqualTo("entitlements[1]");
    assertThat(r.approval().rule()).isEqualTo("finance-models");
    assertThat(r.approval().reason()).isNull();
  }

  // --- 3. rejected
  // ---------------------------------------------------------------------------------

  @Test
  void aRejectedRequestIsDenied403NamingTheReviewerAndReasonAndRecordedRejected() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    clock.advance(Duration.ofSeconds(5));
    service.reject(id, SAM, "not for prod data");

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("approval_rejected");
    assertThat(d.rule()).isEqualTo("approval.rules.bulk-export");
    JsonNode e = error(ex);
    assertThat(Verdicts.error(fin(ex)).status()).isEqualTo(403);
    assertThat(e.get("code").asText()).isEqualTo("approval_rejected");
    assertThat(e.get("message").asText())
        .contains("sam")
        .contains("not for prod data")
        .contains("bulk-export");

    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("rejected");
    assertThat(r.decision().code()).isEqualTo("approval_rejected");
    assertThat(r.decision().rule()).isEqualTo("approval.rules.bulk-export");
    assertThat(r.approval())
        .isEqualTo(
            new SessionRecord.Approval(
                id, "bulk-export", "sam", T0.plusSeconds(5), "rejected", "not for prod data"));
    assertThat(r.response().status()).isEqualTo(403);
    assertThat(r.response().body()).isEqualTo(Verdicts.error(fin(ex)).bodyText());
  }

  @Test
  void aRejectionWithoutReasonStillNamesTheReviewer() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    service.reject(onlyPendingId(), SAM, null);
    settleDenied(ex);
    assertThat(error(ex).get("message").asText()).contains("sam").doesNotContain("null");
    assertThat(ended(ex, true).approval().reason()).isNull();
  }

  // --- 4. expired
  // ----------------------------------------------------------------------------------

  @Test
  void noDecisionWithinTheTimeoutIsDenied403ExpiredAndRecordedExpired() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();

    clock.advance(Duration.ofMinutes(5).minusMillis(1));
    assertThat(service.expireDue()).isZero();
    assertThat(reviewOver(ex)).isFalse();
    assertThat(awaiting(ex)).isTrue();

    clock.advance(Duration.ofMillis(1));
    assertThat(service.expireDue()).isEqualTo(1);
    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("approval_expired");
    assertThat(d.rule()).isEqualTo("approval.rules.bulk-export");
    JsonNode e = error(ex);
    assertThat(e.get("code").asText()).isEqualTo("approval_expired");
    assertThat(e.get("message").asText()).contains("5m").contains("bulk-export");
    // A late decision does not turn it around.
    assertThat(service.approve(id, SAM, "late").kind())
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(settle(ex)).isEqualTo(d);

    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("expired");
    assertThat(r.decision().code()).isEqualTo("approval_expired");
    assertThat(r.approval())
        .isEqualTo(
            new SessionRecord.Approval(
                id,
                "bulk-export",
                null,
                T0.plus(Duration.ofMinutes(5)),
                "expired",
                "no decision within 5m"));
    assertThat(r.response().status()).isEqualTo(403);
    assertThat(r.response().body()).isEqualTo(Verdicts.error(fin(ex)).bodyText());
  }

  // --- 5. grant
  // ------------------------------------------------------------------------------------

  @Test
  void withAGrantTheSamePrincipalsOtherRequestUnderTheSameRuleIsAllowedAtOnce() throws Exception {
    PamEngine engine = manualEngine(policy("  grant: 10m\n", ""));
    Verdict first = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    service.approve(id, SAM, "quarterly export");
    assertThat(settle(first)).isInstanceOf(Decision.Allow.class);
    ended(first, true);

    clock.advance(Duration.ofMinutes(9));
    Verdict covered = chatCall(engine, chat("llama-3", "now export every invoice"));
    assertThat(covered.decision()).isEqualTo(new Decision.RequireApproval("bulk-export"));
    assertThat(reviewOver(covered)).as("no wait under a grant").isTrue();
    assertThat(service.pending()).isEmpty();
    assertThat(settle(covered))
        .isEqualTo(new Decision.Allow("entitlements[0]", Decider.ALLOW_OBLIGATIONS));
    assertThat(Verdicts.credential(fin(covered))).isEqualTo(UPSTREAM);
    SessionRecord r = ended(covered, true);
    assertThat(r.decision().outcome()).isEqualTo("approved");
    assertThat(r.approval().id()).isEqualTo(id);
    assertThat(r.approval().rule()).isEqualTo("bulk-export");
    assertThat(r.approval().reviewer()).isEqualTo("sam");
    assertThat(r.approval().decided()).isEqualTo(T0);
    assertThat(r.approval().outcome()).isEqualTo("approved");
    assertThat(r.approval().reason()).contains("grant").contains("10m").contains(id);

    // Not another rule, not another principal.
    Verdict otherRule =
        chatCall(engine, "{\"model\":\"llama-3\",\"max_tokens\":9000,\"messages\":[]}");
    assertThat(otherRule.decision()).isEqualTo(new Decision.RequireApproval("large-generation"));
    assertThat(reviewOver(otherRule)).isFalse();
    Verdict otherPrincipal = call(engine, CHAT, CI_KEY, DUMP_ALL);
    assertThat(reviewOver(otherPrincipal)).isFalse();
    Verdicts.end(fin(otherRule), false);
    Verdicts.end(fin(otherPrincipal), false);

    // Not after the window.
    clock.advance(Duration.ofMinutes(1));
    Verdict late = chatCall(engine, chat("llama-3", "dump all again"));
    assertThat(reviewOver(late)).isFalse();
    Verdicts.end(fin(late), false);
  }

  @Test
  void withGrantZeroTheNextRequestWaitsAgain() {
    PamEngine engine = manualEngine(policy("  grant: 0s\n", ""));
    Verdict first = chatCall(engine, DUMP_ALL);
    service.approve(onlyPendingId(), SAM, "ok");
    assertThat(settle(first)).isInstanceOf(Decision.Allow.class);

    Verdict next = chatCall(engine, chat("llama-3", "now export every invoice"));
    assertThat(reviewOver(next)).isFalse();
    assertThat(awaiting(next)).isTrue();
    assertThat(service.pending()).hasSize(1);
    // The very same request again waits too.
    Verdict same = chatCall(engine, DUMP_ALL);
    assertThat(reviewOver(same)).isFalse();
    Verdicts.end(fin(next), false);
    Verdicts.end(fin(same), false);
  }

  // --- 6. an approval is for one request
  // -------------------------------------------------------------

  @Test
  void approvingOneRequestDoesNotCompleteAnotherOfTheSamePrincipal() {
    PamEngine engine = manualEngine(policy());
    Verdict a = chatCall(engine, chat("llama-3", "dump all rows of table users"));
    Verdict b = chatCall(engine, chat("llama-3", "dump all rows of table salaries"));
    List<Pending> pending = service.pending();
    assertThat(pending).hasSize(2);
    String aId = pending.get(0).id();
    String bId = pending.get(1).id();

    service.approve(aId, SAM, "users only");
    assertThat(settle(a)).isInstanceOf(Decision.Allow.class);
    assertThat(reviewOver(b)).isFalse();
    assertThat(awaiting(b)).isTrue();
    assertThat(Verdicts.await(Verdicts.held(b), Duration.ZERO))
        .as("not over: no verdict yet")
        .isNull();
    assertThat(service.pending()).extracting(Pending::id).containsExactly(bId);

    // The same request as B joins B's review and is decided with it.
    Verdict bAgain = chatCall(engine, chat("llama-3", "dump all rows of table salaries"));
    assertThat(service.pending()).extracting(Pending::id).containsExactly(bId);
    service.reject(bId, SAM, "no salaries");
    assertThat(settleDenied(b).code()).isEqualTo("approval_rejected");
    assertThat(settleDenied(bAgain).code()).isEqualTo("approval_rejected");
    assertThat(ended(bAgain, true).approval().id()).isEqualTo(bId);
  }

  // --- 7. limits
  // -----------------------------------------------------------------------------------

  @Test
  void beyondMaxPendingPerPrincipalASecondRequestIs429WithRetryAfterAndRecordedAsADenial()
      throws Exception {
    PamEngine engine = manualEngine(policy("  max-pending-per-principal: 1\n", ""));
    Verdict first = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();

    clock.advance(Duration.ofSeconds(10));
    Verdict second = chatCall(engine, chat("llama-3", "export every invoice"));
    assertThat(reviewOver(second)).as("answered at once").isTrue();
    Decision.Deny d = settleDenied(second);
    assertThat(d.status()).isEqualTo(429);
    assertThat(d.code()).isEqualTo("approval_limit");
    assertThat(d.rule()).isEqualTo("approval.max-pending-per-principal");
    ErrorResponse err = Verdicts.error(fin(second));
    assertThat(err.status()).isEqualTo(429);
    // The first review expires 5m after it opened, 4m50s from now.
    assertThat(err.headers()).containsEntry("Retry-After", "290");
    JsonNode e = error(second);
    assertThat(e.get("code").asText()).isEqualTo("approval_limit");
    assertThat(e.get("message").asText())
        .contains("max-pending-per-principal")
        .contains("bulk-export")
        .doesNotContain("invoice");
    assertThat(service.pending()).extracting(Pending::id).containsExactly(id);

    SessionRecord r = ended(second, true);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.decision().code()).isEqualTo("approval_limit");
    assertThat(r.approval()).as("no review happened").isNull();
    assertThat(r.response().status()).isEqualTo(429);
    assertThat(r.response().body()).isEqualTo(err.bodyText());

    // The bound is per principal, and an identical request joins instead of counting again.
    Verdict other = call(engine, CHAT, CI_KEY, DUMP_ALL);
    assertThat(reviewOver(other)).isFalse();
    Verdict retry = chatCall(engine, DUMP_ALL);
    assertThat(reviewOver(retry)).isFalse();
    assertThat(awaiting(first)).isTrue();
    Verdicts.end(fin(other), false);
    Verdicts.end(fin(retry), false);
    Verdicts.end(fin(first), false);
  }

  @Test
  void retryAfterIsRoundedUpToWholeSecondsAndIsAtLeastOne() {
    PamEngine engine = manualEngine(policy("  max-pending-per-principal: 1\n", ""));
    Verdict first = chatCall(engine, DUMP_ALL);
    clock.advance(Duration.ofMinutes(5).minusMillis(200));
    Verdict second = chatCall(engine, chat("llama-3", "export every invoice"));
    settleDenied(second);
    assertThat(Verdicts.error(fin(second)).headers()).containsEntry("Retry-After", "1");
    Verdicts.end(fin(first), false);
  }

  @Test
  void beyondMaxPendingInTotalARequestIs429NamingThatBound() throws Exception {
    PamEngine engine =
        manualEngine(policy("  max-pending-per-principal: 1\n  max-pending: 1\n", ""));
    Verdict first = chatCall(engine, DUMP_ALL);
    Verdict other = call(engine, CHAT, CI_KEY, DUMP_ALL);
    Decision.Deny d = settleDenied(other);
    assertThat(d.status()).isEqualTo(429);
    assertThat(d.code()).isEqualTo("approval_limit");
    assertThat(d.rule()).isEqualTo("approval.max-pending");
    assertThat(Verdicts.error(fin(other)).headers()).containsEntry("Retry-After", "300");
    assertThat(error(other).get("message").asText()).contains("approval.max-pending");
    // Room again once the first is decided.
    service.approve(onlyPendingId(), SAM, "ok");
    assertThat(settle(first)).isInstanceOf(Decision.Allow.class);
    Verdict again = call(engine, CHAT, CI_KEY, DUMP_ALL);
    assertThat(reviewOver(again)).isFalse();
    Verdicts.end(fin(again), false);
  }

  // --- 8. a failing or silent approval service
  // -----------------------------------------------------

  static Stream<Arguments> failingServices() {
    Supplier<ApprovalService> throwing =
        () ->
            StageApprovalService.of(
                (p, r, rule, digest) -> {
                  throw new IllegalStateException("db password=hunter2");
                });
    Supplier<ApprovalService> failedStage =
        () ->
            StageApprovalService.of(
                (p, r, rule, digest) ->
                    CompletableFuture.failedFuture(
                        new RuntimeException("connection to hunter2.internal refused")));
    Supplier<ApprovalService> nullTicket = StageApprovalService::nullTicket;
    Supplier<ApprovalService> nullStage =
        () -> StageApprovalService.of((p, r, rule, digest) -> null);
    Supplier<ApprovalService> nullOutcome =
        () ->
            StageApprovalService.of(
                (p, r, rule, digest) -> CompletableFuture.completedFuture(null));
    Supplier<ApprovalService> nullStatus =
        () ->
            StageApprovalService.of(
                (p, r, rule, digest) ->
                    CompletableFuture.completedFuture(
                        new ApprovalService.Outcome(
                            "hunter2", null, "x", "hunter2", Instant.EPOCH)));
    return Stream.of(
        Arguments.of("throws", throwing),
        Arguments.of("failed stage", failedStage),
        Arguments.of("null ticket", nullTicket),
        Arguments.of("null stage", nullStage),
        Arguments.of("null outcome", nullOutcome),
        Arguments.of("outcome without status", nullStatus));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("failingServices")
  void aFailingApprovalServiceRefuses503WithoutLeakingItsMessage(
      String what, Supplier<ApprovalService> failing) throws Exception {
    PamEngine engine = engineWith(policy(), failing.get());
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(ex.decision()).isEqualTo(new Decision.RequireApproval("bulk-export"));

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(503);
    assertThat(d.code()).isEqualTo("approval_unavailable");
    JsonNode e = error(ex);
    assertThat(Verdicts.error(fin(ex)).status()).isEqualTo(503);
    assertThat(e.get("code").asText()).isEqualTo("approval_unavailable");
    assertThat(Verdicts.error(fin(ex)).bodyText()).doesNotContain("hunter2");

    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.decision().code()).isEqualTo("approval_unavailable");
    assertThat(r.toString()).doesNotContain("hunter2");
  }

  @Test
  void aServiceThatNeverAnswersIsCutOffAfterTimeoutPlusGraceAsExpired() throws Exception {
    // timeout 100ms: the engine waits 100ms + min(100ms, 10s) = 200ms at most.
    PamEngine engine =
        engineWith(
            policy("  timeout: 100ms\n", ""),
            StageApprovalService.of((p, r, rule, digest) -> new CompletableFuture<>()));
    long start = System.nanoTime();
    Verdict ex = chatCall(engine, DUMP_ALL);
    CompletableFuture<Verdict> reviewed =
        Verdicts.held(ex).result(Runnable::run).toCompletableFuture();
    assertThat(reviewed).isNotDone();

    await().atMost(Duration.ofSeconds(2)).until(reviewed::isDone);
    long elapsedMs = (System.nanoTime() - start) / 1_000_000;
    assertThat(elapsedMs).isBetween(200L, 1_500L);

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("approval_expired");
    assertThat(error(ex).get("message").asText()).contains("100ms").contains("bulk-export");
    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("expired");
    assertThat(r.approval().outcome()).isEqualTo("expired");
    assertThat(r.approval().rule()).isEqualTo("bulk-export");
    assertThat(r.approval().reviewer()).isNull();
  }

  /**
   * BUG (reported, not fixed): when the engine stops waiting at timeout + grace, it answers the
   * caller {@code approval_expired} but leaves the review open in the approval service
   * ({@code Exchange.reviewDecision}, {@code TimeoutException} branch, does not cancel
   * {@code review.service}; {@code end()} does not either, since the review is settled). The
   * review stays in {@code pending()}, keeps its place in the bounds, and a reviewer can still
   * approve it (DECIDED) — with {@code grant > 0} that approval would grant the principal's later
   * requests — although the caller was refused.
   */
  @Test
  void whenTheEngineStopsWaitingItWithdrawsTheReviewFromTheService() {
    PamEngine engine =
        manualEngine(policy("  timeout: 100ms\n", "")); // the fake clock never expires it
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    await().atMost(Duration.ofSeconds(2)).until(() -> reviewOver(ex));
    assertThat(settleDenied(ex).code()).isEqualTo("approval_expired");
    Verdicts.end(fin(ex), true);
    assertThat(service.pending()).as("withdrawn like a cancelled caller").isEmpty();
    assertThat(service.approve(id, SAM, "late").kind())
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
  }

  // --- 9. withdrawn
  // --------------------------------------------------------------------------------

  @Test
  void cancelReviewWithdrawsTheRequestWhichSettlesAsExpiredWithdrawn() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();

    Verdicts.held(ex).cancel();
    assertThat(reviewOver(ex)).isTrue();
    assertThat(service.pending()).isEmpty();
    assertThat(service.approve(id, SAM, "too late").kind())
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("approval_expired");
    assertThat(error(ex).get("message").asText()).contains("withdrawn").contains("bulk-export");
    Verdicts.held(ex).cancel(); // nothing more to do
    assertThat(fin(ex).decision()).isEqualTo(d);

    SessionRecord r = ended(ex, false);
    assertThat(r.decision().outcome()).isEqualTo("expired");
    assertThat(r.approval().outcome()).isEqualTo("expired");
    assertThat(r.approval().rule()).isEqualTo("bulk-export");
    assertThat(r.approval().reason()).startsWith("withdrawn");
    // The record names the review reviewers saw, so the two can be matched.
    assertThat(r.approval().id()).isEqualTo(id);
  }

  @Test
  void endingWithoutSettlingWithdrawsTheReviewAndRecordsItExpired() {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(service.pending()).hasSize(1);

    SessionRecord r = ended(ex, false);
    assertThat(service.pending()).isEmpty();
    assertThat(awaiting(ex)).isFalse();
    assertThat(fin(ex).decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class, d -> assertThat(d.code()).isEqualTo("approval_expired"));
    assertThat(r.decision().outcome()).isEqualTo("expired");
    assertThat(r.decision().code()).isEqualTo("approval_expired");
    assertThat(r.approval()).isNotNull();
    assertThat(r.approval().outcome()).isEqualTo("expired");
    assertThat(r.response().complete()).isFalse();
  }

  @Test
  void withdrawingOneOfTwoJoinedCallersKeepsTheReviewForTheOther() {
    PamEngine engine = manualEngine(policy());
    Verdict a = chatCall(engine, DUMP_ALL);
    Verdict b = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    Verdicts.held(a).cancel();
    assertThat(settleDenied(a).code()).isEqualTo("approval_expired");
    assertThat(service.pending()).extracting(Pending::id).containsExactly(id);
    service.approve(id, SAM, "ok");
    assertThat(settle(b)).isInstanceOf(Decision.Allow.class);
  }

  @Test
  void anApprovalThatArrivedBeforeTheCancelIsWithdrawnTooNothingWasForwarded() {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    service.approve(id, SAM, "ok");
    Verdict.Denied withdrawn = Verdicts.held(ex).cancel();
    assertThat(withdrawn.decision().code()).isEqualTo("approval_expired");
    assertThat(withdrawn.error().bodyText()).contains("withdrawn");
    SessionRecord r =
        rec.records.stream().filter(x -> x.id().equals(ex.id())).findFirst().orElseThrow();
    assertThat(r.decision().code()).isEqualTo("approval_expired");
    assertThat(r.approval().id()).isEqualTo(id);
    assertThat(r.approval().outcome()).as("what the reviewer said").isEqualTo("approved");
    assertThat(r.response().complete()).isFalse();
  }

  // --- 10. strict durability
  // -----------------------------------------------------------------------

  String strict() {
    return "recording:\n  directory: " + dir + "\n  durability: strict\n";
  }

  @Test
  void withStrictDurabilityTheIntentIsWrittenOnlyOnceApproved() {
    PamEngine engine = manualEngine(policy("", strict()));
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(rec.intents).as("nothing while waiting").isEmpty();

    service.approve(onlyPendingId(), SAM, "ok");
    assertThat(rec.intents).as("not before the adapter settles").isEmpty();
    assertThat(settle(ex)).isInstanceOf(Decision.Allow.class);
    assertThat(rec.intents)
        .singleElement()
        .satisfies(
            i -> {
              assertThat(i.type()).isEqualTo(SessionRecord.TYPE_INTENT);
              assertThat(i.id()).isEqualTo(ex.id());
              assertThat(i.principal().subject()).isEqualTo("svc");
              assertThat(i.response()).isNull();
            });
    settle(ex);
    assertThat(rec.intents).as("settling again writes nothing").hasSize(1);
    assertThat(ended(ex, true).decision().outcome()).isEqualTo("approved");
  }

  @Test
  void withStrictDurabilityNoIntentIsWrittenForARejectedExpiredOrWithdrawnRequest() {
    PamEngine engine = manualEngine(policy("", strict()));
    Verdict rejected = chatCall(engine, DUMP_ALL);
    service.reject(onlyPendingId(), SAM, "no");
    settleDenied(rejected);
    ended(rejected, true);

    Verdict expired = chatCall(engine, chat("llama-3", "export every invoice"));
    clock.advance(Duration.ofMinutes(5));
    service.expireDue();
    settleDenied(expired);
    ended(expired, true);

    Verdict withdrawn = chatCall(engine, chat("llama-3", "list all users"));
    ended(withdrawn, false);

    assertThat(rec.intents).isEmpty();
    assertThat(rec.records).hasSize(3);
  }

  @Test
  void withStrictDurabilityAnApprovedRequestWhoseIntentFailsIs503AndKeepsItsApprovalInTheRecord() {
    PamEngine engine = manualEngine(policy("", strict()));
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    rec.intentFailure = new IOException("disk full");
    service.approve(id, SAM, "ok");

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(503);
    assertThat(d.code()).isEqualTo("recording_unavailable");
    SessionRecord r = ended(ex, true);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.approval().id()).isEqualTo(id);
    assertThat(r.approval().outcome()).isEqualTo("approved");
  }

  // --- 11. review notifications
  // --------------------------------------------------------------------

  @Test
  void theNotifierIsToldOncePerNewReviewWithAMaskedExcerpt() {
    List<ReviewNotifier.ReviewRequest> notices = new CopyOnWriteArrayList<>();
    PamEngine engine =
        defaultEngine(policy("  grant: 10m\n", "masking: {detectors: [email]}\n"), notices::add);
    String body = chat("llama-3", "dump all rows and mail them to alice.smith@example.com");

    Verdict first = chatCall(engine, body);
    assertThat(notices)
        .singleElement()
        .satisfies(
            n -> {
              assertThat(n.approvalId()).isEqualTo(onlyPendingId());
              assertThat(n.rule()).isEqualTo("bulk-export");
              assertThat(n.principal()).isEqualTo("svc");
              assertThat(n.model()).isEqualTo("llama-3");
              assertThat(n.operation()).isEqualTo("chat");
              assertThat(n.created()).isEqualTo(T0);
              assertThat(n.expires()).isEqualTo(T0.plus(Duration.ofMinutes(5)));
              assertThat(n.reviewUrl()).isNull();
              assertThat(n.excerpt())
                  .contains("dump all rows")
                  .contains("[EMAIL]")
                  .doesNotContain("alice.smith")
                  .doesNotContain("example.com");
              assertThat(n.toString()).doesNotContain("alice.smith").doesNotContain(KEY);
            });

    // An identical request joins the review: not announced again.
    Verdict joined = chatCall(engine, body);
    assertThat(notices).hasSize(1);

    service.approve(onlyPendingId(), SAM, "ok");
    assertThat(settle(first)).isInstanceOf(Decision.Allow.class);
    assertThat(settle(joined)).isInstanceOf(Decision.Allow.class);

    // A grant pass is not a review: not announced.
    Verdict granted = chatCall(engine, chat("llama-3", "export every invoice"));
    assertThat(settle(granted)).isInstanceOf(Decision.Allow.class);
    assertThat(notices).hasSize(1);

    // A new review under another rule is.
    Verdict other =
        chatCall(
            engine,
            "{\"model\":\"finance-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(notices).hasSize(2);
    assertThat(notices.get(1).rule()).isEqualTo("finance-models");
    assertThat(notices.get(1).model()).isEqualTo("finance-x");
    assertThat(notices.get(1).excerpt()).isEqualTo("hi");
    Verdicts.end(fin(other), false);
  }

  @Test
  void aNotifierThatThrowsDoesNotBreakTheRequest() {
    PamEngine engine =
        defaultEngine(
            policy(),
            n -> {
              throw new IllegalStateException("webhook down");
            });
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(awaiting(ex)).isTrue();
    assertThat(reviewOver(ex)).isFalse();
    service.approve(onlyPendingId(), SAM, "ok");
    assertThat(settle(ex)).isInstanceOf(Decision.Allow.class);
    assertThat(ended(ex, true).decision().outcome()).isEqualTo("approved");
  }

  @Test
  void closingTheServiceAnswersTheWaitingCallerExpiredAndRecordsWhy() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();
    clock.advance(Duration.ofSeconds(2));

    service.close();

    Decision.Deny d = settleDenied(ex);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("approval_expired");
    assertThat(error(ex).get("message").asText())
        .isEqualTo(
            "the approval service stopped (shutting down) before a reviewer decided under approval rule"
                + " \"bulk-export\"");
    SessionRecord r = ended(ex, false);
    assertThat(r.decision().outcome()).isEqualTo("expired");
    assertThat(r.approval())
        .isEqualTo(
            new SessionRecord.Approval(
                id, "bulk-export", null, T0.plusSeconds(2), "expired", "approval service closed"));
  }

  @Test
  void aWithdrawnRequestIsRecordedWithItsReviewIdAndReason() throws Exception {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    String id = onlyPendingId();

    Verdicts.held(ex).cancel();

    assertThat(settleDenied(ex).code()).isEqualTo("approval_expired");
    SessionRecord r = ended(ex, false);
    assertThat(r.approval())
        .isEqualTo(
            new SessionRecord.Approval(
                id, "bulk-export", null, T0, "expired", "withdrawn: the caller stopped waiting"));
  }

  @Test
  void aServiceThatIgnoresTheWithdrawalStillLetsTheCallerGoAndTheRecordNamesItsTicket()
      throws Exception {
    List<String> withdrawn = new CopyOnWriteArrayList<>();
    CompletableFuture<ApprovalService.Outcome> never = new CompletableFuture<>();
    ApprovalService deaf = StageApprovalService.deaf("rev-42", never, withdrawn);
    PamEngine engine = engineWith(policy(), deaf);
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(reviewOver(ex)).isFalse();

    Verdicts.held(ex).cancel();

    assertThat(withdrawn).containsExactly("rev-42");
    assertThat(never).isNotDone();
    Decision.Deny d = settleDenied(ex);
    assertThat(d.code()).isEqualTo("approval_expired");
    assertThat(error(ex).get("message").asText()).contains("withdrawn");
    SessionRecord r = ended(ex, false);
    assertThat(r.approval().id()).isEqualTo("rev-42");
    assertThat(r.approval().outcome()).isEqualTo("expired");
    assertThat(r.approval().reason()).isEqualTo("withdrawn: the caller stopped waiting");
  }

  @Test
  void aServiceThatEndsAReviewWithdrawnOrClosedOnItsOwnIsAnsweredAsExpired() throws Exception {
    for (ApprovalService.Status status :
        List.of(ApprovalService.Status.WITHDRAWN, ApprovalService.Status.CLOSED)) {
      rec.records.clear();
      ApprovalService.Outcome outcome =
          new ApprovalService.Outcome("rev-7", status, null, null, T0);
      PamEngine engine =
          engineWith(
              policy(),
              StageApprovalService.of(
                  (p, r, rule, digest) -> CompletableFuture.completedFuture(outcome)));
      Verdict ex = chatCall(engine, DUMP_ALL);
      Decision.Deny d = settleDenied(ex);
      assertThat(d.code()).as(status.name()).isEqualTo("approval_expired");
      assertThat(error(ex).get("message").asText())
          .as(status.name())
          .contains(status == ApprovalService.Status.WITHDRAWN ? "withdrawn" : "shutting down");
      SessionRecord r = ended(ex, true);
      assertThat(r.decision().outcome()).isEqualTo("expired");
      assertThat(r.approval().outcome()).isEqualTo("expired");
      assertThat(r.approval().reason())
          .as("the reason is filled in when the service gives none")
          .isEqualTo(
              status == ApprovalService.Status.WITHDRAWN
                  ? "withdrawn: the caller stopped waiting"
                  : "approval service closed");
    }
  }

  @Test
  void theNotifierIsNotUsedForAServiceGivenToTheBuilder() {
    List<ReviewNotifier.ReviewRequest> notices = new CopyOnWriteArrayList<>();
    Policy p = Policy.parse(policy());
    service =
        InProcessApprovalService.builder()
            .settings(p.approval())
            .clock(clock)
            .manualExpiry()
            .build();
    toClose.add(service);
    PamEngine engine = keep(base(p).approvalService(service).reviewNotifier(notices::add).build());
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(service.pending()).hasSize(1);
    assertThat(notices).isEmpty();
    Verdicts.end(fin(ex), false);
  }

  // --- 12. the Held contract ---------------------------------------------------------------------

  @Test
  void noVerdictBeforeTheReviewIsOverAndOnceOverAlwaysTheSameOne() {
    PamEngine engine = manualEngine(policy());
    Verdict ex = chatCall(engine, DUMP_ALL);
    assertThat(Verdicts.await(Verdicts.held(ex), Duration.ZERO))
        .as("not over: no verdict yet")
        .isNull();
    assertThat(ex.decision()).isEqualTo(new Decision.RequireApproval("bulk-export"));
    assertThat(awaiting(ex)).isTrue();

    service.reject(onlyPendingId(), SAM, "no");
    Decision first = settle(ex);
    Decision second = settle(ex);
    assertThat(second).isSameAs(first);
    assertThat(fin(ex)).isSameAs(fin(ex));
    assertThat(fin(ex).decision()).isSameAs(first);
    assertThat(Verdicts.error(fin(ex)).bodyText()).isEqualTo(Verdicts.error(fin(ex)).bodyText());

    Verdicts.end(fin(ex), true);
    Verdicts.end(fin(ex), true);
    assertThat(rec.records).hasSize(1);
  }

  @Test
  void theResultCompletesNormallyForEveryEnding() throws Exception {
    PamEngine engine =
        engineWith(
            policy(),
            StageApprovalService.of(
                (p, r, rule, digest) ->
                    CompletableFuture.failedFuture(new IllegalStateException("x"))));
    Verdict ex = chatCall(engine, DUMP_ALL);
    // Completed, and not exceptionally: adapters chain on it without handling errors.
    CompletableFuture<Verdict> result =
        Verdicts.held(ex).result(Runnable::run).toCompletableFuture();
    assertThat(result.get(1, TimeUnit.SECONDS)).isInstanceOf(Verdict.Denied.class);
    assertThat(result).isNotCompletedExceptionally();
  }
}
