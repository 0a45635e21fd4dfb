package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The policy's {@code limits} as callers and auditors see them, through {@link PamEngine#begin}:
 * the 429 {@code quota_exceeded} answer with its {@code Retry-After}, which requests count
 * against which entry, how tokens are charged from what the upstream reported (or estimated),
 * where limits sit in the decision order, the {@code quota_remaining} of records and
 * {@link PamEngine#quotaStatus}. Time is a {@link MutableClock}; nothing sleeps.
 */
class ExchangeQuotaTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String ALICE = "alice-key";
  static final String BOB = "bob-key";

  /** In {@code ml} and {@code contractors}. */
  static final String CAROL = "carol-key";

  /** 20 seconds into a UTC minute. */
  static final Instant T0 = Instant.parse("2026-11-28T22:00:20Z");

  static final Instant NEXT_MINUTE = Instant.parse("2026-11-28T22:01:00Z");
  static final Instant MIDNIGHT = Instant.parse("2026-11-29T00:00:00Z");
  static final Credential UPSTREAM = new Credential("X-Model-Key", "upstream-secret");
  static final String CHAT = "/v1/chat/completions";
  static final Principal SAM =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_OIDC, "https://idp", Map.of());

  final MutableClock clock = new MutableClock(T0);
  final CapturingRecorder rec = new CapturingRecorder();
  final List<AutoCloseable> toClose = new ArrayList<>();

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
   * Three principals ({@code alice} and {@code bob} in ml, {@code carol} in ml and contractors),
   * entitled to llama and gpt models; an allow rule for {@code GET /v1/models}; a block rule, a
   * denied and a capped parameter to see the decision order.
   *
   * @param limits the entries under {@code limits:}, each line indented by two spaces
   * @param extra  further top-level sections
   */
  static String policy(String limits, String extra) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml]}
            - {name: bob, sha256: %s, groups: [ml]}
            - {name: carol, sha256: %s, groups: [ml, contractors]}
        entitlements:
          - groups: [ml]
            models: ["llama-*", "gpt-*"]
            operations: [chat, completion, embedding]
        allow:
          - groups: ["*"]
            methods: [GET]
            paths: ["/v1/models"]
        block:
          rules:
            - {name: no-tokenize, methods: ["*"], paths: ["/tokenize"]}
        parameters:
          deny: [logprobs]
          max: {max_tokens: 16000}
        limits:
        """
            .formatted(sha256(ALICE), sha256(BOB), sha256(CAROL))
        + limits
        + extra;
  }

  PamEngine engine(String limits) {
    return engine(limits, "");
  }

  PamEngine engine(String limits, String extra) {
    return keep(base(policy(limits, extra)).build());
  }

  PamEngine.Builder base(String yaml) {
    return PamEngine.builder()
        .policy(Policy.parse(yaml))
        .clock(clock)
        .recorder(rec)
        .credentialProvider(() -> UPSTREAM);
  }

  PamEngine keep(PamEngine engine) {
    toClose.add(engine);
    return engine;
  }

  static Verdict call(PamEngine engine, String method, String path, String key, String body) {
    Map<String, List<String>> headers =
        key == null
            ? Map.of("Content-Type", List.of("application/json"))
            : Map.of(
                "Content-Type",
                List.of("application/json"),
                "Authorization",
                List.of("Bearer " + key));
    byte[] bytes = body == null ? null : body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead(method, path, null, headers, "127.0.0.1"),
        bytes == null ? null : new ByteArrayInputStream(bytes),
        bytes == null ? 0 : bytes.length);
  }

  static Verdict post(PamEngine engine, String path, String key, String body) {
    return call(engine, "POST", path, key, body);
  }

  static Verdict chat(PamEngine engine, String key) {
    return post(engine, CHAT, key, chatBody("llama-3"));
  }

  static String chatBody(String model) {
    return "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
  }

  static String chatBody(String model, String bound, long value) {
    return "{\"model\":\""
        + model
        + "\",\""
        + bound
        + "\":"
        + value
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
  }

  /**
   * An OpenAI chat completion with its {@code usage}: prompt and completion tokens only, so that
   * what is charged is their sum and not a {@code total_tokens} (see {@link #charges()} for that).
   */
  static String completion(long prompt, long completion) {
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
        + "\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":"
        + prompt
        + ",\"completion_tokens\":"
        + completion
        + "}}";
  }

  /** Reports a 200 response of {@code type} delivered in {@code chunks}; returns the bytes delivered. */
  static long respond(Verdict ex, String type, String... chunks) {
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, Map.of("content-type", List.of(type)));
    long n = 0;
    for (String chunk : chunks) {
      byte[] b = chunk.getBytes(StandardCharsets.UTF_8);
      relay.delivered(b, 0, b.length);
      n += b.length;
    }
    return n;
  }

  /** Answers an allowed exchange with a JSON completion using {@code prompt + completion} tokens, and ends it. */
  SessionRecord answer(Verdict ex, long prompt, long completion) {
    assertThat((ex instanceof Verdict.Allowed)).as("allowed: %s", ex.decision()).isTrue();
    respond(ex, "application/json", completion(prompt, completion));
    return ended(ex);
  }

  /** Ends the exchange and returns its one exchange record. */
  SessionRecord ended(Verdict ex) {
    Verdicts.end(ex, true);
    List<SessionRecord> mine = rec.records.stream().filter(r -> r.id().equals(ex.id())).toList();
    assertThat(mine).hasSize(1);
    return mine.get(0);
  }

  /** The {@code error} object sent for a denial, checked against the spec's shape. */
  static JsonNode error(Verdict ex) throws IOException {
    ErrorResponse err = Verdicts.error(ex);
    assertThat(err).isNotNull();
    assertThat(err.headers()).containsEntry("Content-Type", "application/json");
    JsonNode e = JSON.readTree(err.body()).get("error");
    assertThat(e.get("type").asText()).isEqualTo("pam_error");
    assertThat(e.get("request_id").asText()).isEqualTo(ex.id());
    return e;
  }

  /**
   * Checks that {@code ex} was refused 429 {@code quota_exceeded} by {@code rule} with
   * {@code Retry-After: retryAfter}, that nothing can be forwarded, and returns the message.
   */
  static String assertQuotaExceeded(Verdict ex, String rule, long retryAfter) throws IOException {
    assertThat(ex.decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class,
            d -> {
              assertThat(d.status()).isEqualTo(429);
              assertThat(d.code()).isEqualTo("quota_exceeded");
              assertThat(d.rule()).isEqualTo(rule);
            });
    assertThat(ex).isNotInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.credential(ex)).as("nothing to forward with").isNull();
    ErrorResponse err = Verdicts.error(ex);
    assertThat(err.status()).isEqualTo(429);
    assertThat(err.headers()).containsEntry("Retry-After", Long.toString(retryAfter));
    JsonNode e = error(ex);
    assertThat(e.get("code").asText()).isEqualTo("quota_exceeded");
    String message = e.get("message").asText();
    assertThat(message).contains(rule.substring(0, rule.indexOf('.')));
    return message;
  }

  static Principal principal(String subject, String... groups) {
    return Principal.of(subject, Set.of(groups), Principal.VIA_API_KEY);
  }

  static QuotaStatus.Budget budget(List<QuotaStatus> status, String rule, String bound) {
    return status.stream()
        .filter(s -> s.rule().equals(rule))
        .findFirst()
        .orElseThrow()
        .budgets()
        .stream()
        .filter(b -> b.bound().equals(bound))
        .findFirst()
        .orElseThrow();
  }

  long used(PamEngine engine, String subject, String rule, String bound) {
    return budget(engine.quotaStatus(principal(subject, "ml")), rule, bound).used();
  }

  // --- 1. requests per minute
  // ----------------------------------------------------------------------

  @Test
  void theRequestPastRequestsPerMinuteIsRefused429WithRetryAfterToTheEndOfTheMinute()
      throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], requests-per-minute: 3}\n");
    for (int i = 0; i < 3; i++) answer(chat(engine, ALICE), 1, 1);

    Verdict fourth = chat(engine, ALICE);

    String message = assertQuotaExceeded(fourth, "limits[0].requests-per-minute", 40);
    assertThat(message)
        .contains("limits[0]")
        .contains("requests-per-minute")
        .contains("3 requests")
        .contains("retry in 40s");
    SessionRecord r = ended(fourth);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.decision().code()).isEqualTo("quota_exceeded");
    assertThat(r.decision().rule()).isEqualTo("limits[0].requests-per-minute");
    assertThat(r.decision().message()).isEqualTo(message);
    assertThat(r.response().status()).isEqualTo(429);
    assertThat(r.principal().subject()).isEqualTo("alice");
    assertThat(r.request().model()).isEqualTo("llama-3");
    // Refused before admission: no budget was taken, so the record says nothing of what is left.
    assertThat(r.quotaRemaining()).isEmpty();
  }

  static Stream<Arguments> retryAfterSeconds() {
    return Stream.of(
        Arguments.of("2026-11-28T22:00:00Z", 60),
        Arguments.of("2026-11-28T22:00:20Z", 40),
        Arguments.of("2026-11-28T22:00:20.500Z", 40), // 39.5 s left: rounded up
        Arguments.of("2026-11-28T22:00:59Z", 1),
        Arguments.of("2026-11-28T22:00:59.999Z", 1));
  }

  @ParameterizedTest(name = "at {0}: Retry-After {1}")
  @MethodSource("retryAfterSeconds")
  void retryAfterIsTheWholeSecondsLeftOfTheMinuteAtLeastOne(String now, long expected)
      throws Exception {
    clock.set(Instant.parse(now));
    PamEngine engine = engine("  - {groups: [\"*\"], requests-per-minute: 1}\n");
    answer(chat(engine, ALICE), 1, 1);

    Verdict refused = chat(engine, ALICE);

    assertQuotaExceeded(refused, "limits[0].requests-per-minute", expected);
    Verdicts.end(refused, true);
  }

  @Test
  void theNextMinuteStartsAFreshCountAndRefusedRequestsCountedNothing() throws Exception {
    clock.set(Instant.parse("2026-11-28T22:00:59Z"));
    PamEngine engine = engine("  - {groups: [\"*\"], requests-per-minute: 2}\n");
    answer(chat(engine, ALICE), 1, 1);
    answer(chat(engine, ALICE), 1, 1);
    for (int i = 0; i < 5; i++) {
      Verdict refused = chat(engine, ALICE);
      assertQuotaExceeded(refused, "limits[0].requests-per-minute", 1);
      Verdicts.end(refused, true);
    }

    clock.set(NEXT_MINUTE);
    SessionRecord first = answer(chat(engine, ALICE), 1, 1);
    assertThat(first.quotaRemaining()).isEqualTo(Map.of("requests_per_minute", 1L));
    SessionRecord second = answer(chat(engine, ALICE), 1, 1);
    assertThat(second.quotaRemaining()).isEqualTo(Map.of("requests_per_minute", 0L));
    Verdict third = chat(engine, ALICE);
    assertQuotaExceeded(third, "limits[0].requests-per-minute", 60);
    Verdicts.end(third, true);
  }

  // --- 2. tokens: what is charged
  // ------------------------------------------------------------------

  @Test
  void chargesPromptPlusCompletionTokensFromTheJsonUsage() {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 1000}\n");

    SessionRecord r = answer(chat(engine, ALICE), 41, 120);

    // 1000 - (41 + 120); counting only the completion would leave 880.
    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 839L));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isEqualTo(161);
    assertThat(r.response().usage())
        .containsEntry("prompt_tokens", 41L)
        .containsEntry("completion_tokens", 120L);
  }

  @Test
  void anEngineThatRecordsNothingStillChargesTheTokensTheUpstreamReported() {
    // No recording section and no recorder: nothing keeps the response, but limits still read its
    // usage.
    PamEngine engine =
        keep(
            PamEngine.builder()
                .policy(
                    Policy.parse(policy("  - {groups: [\"*\"], tokens-per-minute: 1000}\n", "")))
                .clock(clock)
                .credentialProvider(() -> UPSTREAM)
                .build());

    Verdict json = chat(engine, ALICE);
    respond(json, "application/json", completion(41, 120));
    Verdicts.end(json, true);
    Verdict stream = chat(engine, ALICE);
    respond(stream, "text/event-stream", SSE_CHUNKS, SSE_CHUNKS_2, SSE_USAGE, SSE_DONE);
    Verdicts.end(stream, true);

    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isEqualTo(161 + 21);
    assertThat(rec.records).as("the test's recorder was not given to this engine").isEmpty();
  }

  static final String SSE_CHUNKS =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],"
          + "\"usage\":null}\n\n";
  static final String SSE_CHUNKS_2 =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}],"
          + "\"usage\":null}\n\n";
  static final String SSE_USAGE =
      "data: {\"id\":\"c1\",\"choices\":[],"
          + "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n";
  static final String SSE_DONE = "data: [DONE]\n\n";

  @Test
  void chargesTheFinalUsageChunkOfAStream() {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 1000}\n");
    Verdict ex =
        post(
            engine,
            CHAT,
            ALICE,
            "{\"model\":\"llama-3\",\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true},\"messages\":[]}");

    respond(
        ex,
        "text/event-stream",
        SSE_CHUNKS,
        SSE_CHUNKS_2,
        SSE_USAGE.substring(0, 30),
        SSE_USAGE.substring(30),
        SSE_DONE);
    SessionRecord r = ended(ex);

    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 1000L - 21));
    assertThat(r.response().streamed()).isTrue();
  }

  @Test
  void estimatesAStreamWithoutUsageAtOneTokenPerFourBytesOfRequestAndResponse() {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 1000}\n");
    String body =
        "{\"model\":\"llama-3\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"héllo\"}]}";
    Verdict ex = post(engine, CHAT, ALICE, body);

    long responseBytes = respond(ex, "text/event-stream", SSE_CHUNKS, SSE_CHUNKS_2, SSE_DONE);
    SessionRecord r = ended(ex);

    long requestBytes = body.getBytes(StandardCharsets.UTF_8).length;
    long estimate = ceilDiv(requestBytes, 4) + ceilDiv(responseBytes, 4);
    assertThat(r.response().usage()).isEmpty();
    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 1000L - estimate));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isEqualTo(estimate);
  }

  static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  static final String NDJSON_PARTS =
      "{\"model\":\"llama-3\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
          + "\"done\":false}\n";

  static Stream<Arguments> charges() {
    String openaiJson =
        completion(41, 120)
            .replace(
                "\"completion_tokens\":120}",
                "\"completion_tokens\":120,\"total_tokens\":161,\"prompt_tokens_details\":{\"cached_tokens\":0}}");
    String anthropicSse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
            + "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
            + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"
            + "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n"
            + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    String responsesSse =
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
            + "\"delta\":\"Hi\"}\n\n"
            + "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\","
            + "\"usage\":{\"input_tokens\":30,\"output_tokens\":70,\"total_tokens\":100}}}\n\n";
    String ollama =
        NDJSON_PARTS
            + "{\"model\":\"llama-3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
            + "\"done\":true,\"prompt_eval_count\":26,\"eval_count\":290}\n";
    String reasoning =
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,"
            + "\"total_tokens\":50}}";
    String onlyTotal = "{\"choices\":[],\"usage\":{\"total_tokens\":77}}";
    return Stream.of(
        Arguments.of(
            "OpenAI JSON usage with total_tokens", CHAT, "application/json", openaiJson, 161L),
        Arguments.of(
            "OpenAI JSON usage without total_tokens",
            CHAT,
            "application/json",
            completion(41, 120),
            161L),
        Arguments.of(
            "OpenAI stream, final usage chunk",
            CHAT,
            "text/event-stream",
            SSE_CHUNKS + SSE_USAGE + SSE_DONE,
            21L),
        Arguments.of(
            "Anthropic stream, message_start + cumulative message_delta",
            "/v1/messages",
            "text/event-stream",
            anthropicSse,
            25L + 15),
        Arguments.of(
            "Responses API stream, response.completed",
            "/v1/responses",
            "text/event-stream",
            responsesSse,
            100L),
        Arguments.of(
            "Ollama NDJSON, counts on the done line",
            "/api/chat",
            "application/x-ndjson",
            ollama,
            316L),
        Arguments.of(
            "total_tokens larger than the parts (reasoning)",
            CHAT,
            "application/json",
            reasoning,
            50L),
        Arguments.of("only total_tokens", CHAT, "application/json", onlyTotal, 77L));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("charges")
  void chargesWhatTheUpstreamReported(
      String what, String path, String type, String response, long tokens) {
    PamEngine engine =
        engine("  - {groups: [\"*\"], tokens-per-minute: 100000, tokens-per-day: 200000}\n");
    Verdict ex = post(engine, path, ALICE, chatBody("llama-3"));
    assertThat((ex instanceof Verdict.Allowed)).as("allowed: %s", ex.decision()).isTrue();

    // Delivered in pieces of 7 bytes, as a stream would be.
    byte[] b = response.getBytes(StandardCharsets.UTF_8);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, Map.of("content-type", List.of(type)));
    for (int off = 0; off < b.length; off += 7)
      relay.delivered(b, off, Math.min(7, b.length - off));
    SessionRecord r = ended(ex);

    assertThat(r.quotaRemaining())
        .isEqualTo(
            Map.of("tokens_per_minute", 100_000 - tokens, "tokens_per_day", 200_000 - tokens));
  }

  @Test
  void estimatesThePromptWhenOnlyTheCompletionWasReported() {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-day: 100000}\n");
    // Ollama leaves out prompt_eval_count when the prompt came from its cache.
    String body =
        "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + "x".repeat(400)
            + "\"}]}";
    Verdict ex = post(engine, "/api/chat", ALICE, body);

    respond(ex, "application/x-ndjson", NDJSON_PARTS, "{\"done\":true,\"eval_count\":290}\n");
    SessionRecord r = ended(ex);

    long prompt = ceilDiv(body.getBytes(StandardCharsets.UTF_8).length, 4);
    assertThat(prompt).isGreaterThan(100);
    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_day", 100_000 - 290 - prompt));
  }

  @Test
  void chargesAnEmbeddingWhatTheUpstreamReportedNotItsVectorBytes() {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-day: 100000}\n");
    Verdict ex =
        post(engine, "/v1/embeddings", ALICE, "{\"model\":\"llama-3\",\"input\":\"hello world\"}");
    StringBuilder vector = new StringBuilder();
    for (int i = 0; i < 1536; i++) vector.append(i == 0 ? "" : ",").append("-0.0123456789");
    respond(
        ex,
        "application/json",
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
            + "\"embedding\":["
            + vector
            + "]}],\"model\":\"llama-3\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}");
    SessionRecord r = ended(ex);

    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_day", 100_000L - 8));
  }

  @Test
  void anExchangeWhoseResponseNeverBeganChargesNoTokens() {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 5, tokens-per-minute: 1000}\n");
    Verdict ex = chat(engine, ALICE);
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);

    Verdicts.end(ex, false); // the upstream could not be reached
    SessionRecord r = rec.records.get(rec.records.size() - 1);

    assertThat(r.quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 4L, "tokens_per_minute", 1000L));
  }

  @Test
  void tokensAreChargedToTheWindowInWhichTheExchangeEnds() {
    clock.set(Instant.parse("2026-11-28T22:00:59Z"));
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 1000}\n");
    Verdict ex = chat(engine, ALICE);
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);

    clock.set(NEXT_MINUTE.plusSeconds(5)); // a long generation: it ends in the next minute
    SessionRecord r = answer(ex, 41, 120);

    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 839L));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isEqualTo(161);
  }

  // --- 3. tokens: running out
  // ----------------------------------------------------------------------

  @Test
  void onceTokensPerMinuteAreUsedUpRequestsAreRefusedUntilTheNextMinute() throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 200}\n");
    SessionRecord first = answer(chat(engine, ALICE), 41, 120);
    assertThat(first.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 39L));
    // 39 left: admitted (it sets no output bound), and charged in full afterwards.
    SessionRecord second = answer(chat(engine, ALICE), 41, 120);
    assertThat(second.quotaRemaining()).isEqualTo(Map.of("tokens_per_minute", 0L));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isEqualTo(322);

    Verdict refused = chat(engine, ALICE);

    String message = assertQuotaExceeded(refused, "limits[0].tokens-per-minute", 40);
    assertThat(message)
        .contains("200 tokens")
        .contains("limits[0] tokens-per-minute")
        .contains("used up");
    SessionRecord r = ended(refused);
    assertThat(r.decision().code()).isEqualTo("quota_exceeded");
    assertThat(r.decision().rule()).isEqualTo("limits[0].tokens-per-minute");
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute"))
        .as("a refusal charges nothing")
        .isEqualTo(322);

    clock.set(NEXT_MINUTE);
    assertThat(answer(chat(engine, ALICE), 41, 120).quotaRemaining())
        .isEqualTo(Map.of("tokens_per_minute", 39L));
  }

  @Test
  void onceTokensPerDayAreUsedUpRequestsAreRefusedUntilUtcMidnight() throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-day: 300}\n");
    answer(chat(engine, ALICE), 100, 100);
    answer(chat(engine, ALICE), 100, 100);

    Verdict refused = chat(engine, ALICE);
    // 22:00:20 -> midnight: 1 h 59 min 40 s.
    String message = assertQuotaExceeded(refused, "limits[0].tokens-per-day", 7180);
    assertThat(message).contains("300 tokens").contains("tokens-per-day");
    Verdicts.end(refused, true);

    clock.set(Instant.parse("2026-11-28T23:59:59.500Z"));
    Verdict lastSecond = chat(engine, ALICE);
    assertQuotaExceeded(lastSecond, "limits[0].tokens-per-day", 1);
    Verdicts.end(lastSecond, true);

    clock.set(MIDNIGHT);
    SessionRecord r = answer(chat(engine, ALICE), 100, 100);
    assertThat(r.quotaRemaining()).isEqualTo(Map.of("tokens_per_day", 100L));
  }

  @Test
  void theDayIsTheUtcDayWhateverTheClocksZone() throws Exception {
    // Kiritimati is UTC+14: its midnight comes at 10:00 UTC, which must not reset the day.
    MutableClock kiritimati =
        new MutableClock(Instant.parse("2026-11-28T09:59:00Z"), ZoneId.of("Pacific/Kiritimati"));
    PamEngine engine =
        keep(
            PamEngine.builder()
                .policy(Policy.parse(policy("  - {groups: [\"*\"], tokens-per-day: 100}\n", "")))
                .clock(kiritimati)
                .recorder(rec)
                .credentialProvider(() -> UPSTREAM)
                .build());
    answer(chat(engine, ALICE), 50, 60);

    kiritimati.set(Instant.parse("2026-11-28T10:00:30Z")); // 00:00:30 on the 29th in Kiritimati
    Verdict refused = chat(engine, ALICE);
    assertQuotaExceeded(refused, "limits[0].tokens-per-day", 14 * 3600 - 30);
    Verdicts.end(refused, true);

    kiritimati.set(MIDNIGHT);
    assertThat(answer(chat(engine, ALICE), 1, 1).quotaRemaining())
        .isEqualTo(Map.of("tokens_per_day", 98L));
  }

  static Stream<Arguments> outputBounds() {
    return Stream.of(
        Arguments.of("max_tokens", CHAT, "max_tokens"),
        Arguments.of("max_completion_tokens", CHAT, "max_completion_tokens"),
        Arguments.of("max_output_tokens", "/v1/responses", "max_output_tokens"),
        Arguments.of("options.num_predict", "/api/chat", "options.num_predict"));
  }

  static String withBound(String bound, long value) {
    if (bound.equals("options.num_predict")) {
      return "{\"model\":\"llama-3\",\"options\":{\"num_predict\":" + value + "},\"messages\":[]}";
    }
    return chatBody("llama-3", bound, value);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("outputBounds")
  void aRequestAskingForMoreOutputThanIsLeftIsRefusedBeforeForwardingWhileOneThatFitsPasses(
      String what, String path, String bound) throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 10, tokens-per-minute: 1000}\n");
    answer(chat(engine, ALICE), 41, 120); // 839 left

    Verdict tooLarge = post(engine, path, ALICE, withBound(bound, 840));
    String message = assertQuotaExceeded(tooLarge, "limits[0].tokens-per-minute", 40);
    assertThat(message)
        .contains("840")
        .contains("839 left")
        .contains("limits[0] tokens-per-minute");
    Verdicts.end(tooLarge, true);

    Verdict fits = post(engine, path, ALICE, withBound(bound, 839));
    assertThat(fits instanceof Verdict.Allowed).as("allowed: %s", fits.decision()).isTrue();
    assertThat(Verdicts.credential(fits)).isEqualTo(UPSTREAM);
    SessionRecord r = answer(fits, 0, 0);
    // The refused request counted no request either: two were admitted.
    assertThat(r.quotaRemaining()).containsEntry("requests_per_minute", 8L);
  }

  @Test
  void aRequestAskingForMoreOutputThanTheWholeBudgetIsRefusedInAFreshWindow() throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-day: 1000}\n");

    Verdict ex = post(engine, CHAT, ALICE, chatBody("llama-3", "max_tokens", 1001));

    assertQuotaExceeded(ex, "limits[0].tokens-per-day", 7180);
    Verdicts.end(ex, true);
    assertThat(
            post(engine, CHAT, ALICE, chatBody("llama-3", "max_tokens", 1000))
                instanceof Verdict.Allowed)
        .isTrue();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"-1", "-2", "\"100000\"", "true"})
  void anOutputBoundTheUpstreamMayReadAsUnlimitedIsRefusedUnderATokenBudget(String value)
      throws Exception {
    // Ollama reads a negative num_predict as "no end"; pydantic coerces "100000"; none of them
    // may buy more output than is left, even where no parameters.max refuses them first.
    String yaml = policy("  - {groups: [\"*\"], tokens-per-day: 1000}\n", "");
    assertThat(yaml).contains("  max: {max_tokens: 16000}\n");
    PamEngine engine = keep(base(yaml.replace("  max: {max_tokens: 16000}\n", "")).build());
    String body =
        "{\"model\":\"llama-3\",\"options\":{\"num_predict\":" + value + "},\"messages\":[]}";

    Verdict ex = post(engine, "/api/chat", ALICE, body);

    String message = assertQuotaExceeded(ex, "limits[0].tokens-per-day", 7180);
    assertThat(message).contains("an unbounded output").contains("1000 left");
    Verdicts.end(ex, true);
  }

  // --- 4. which entries apply
  // ----------------------------------------------------------------------

  @Test
  void theTightestOfSeveralMatchingEntriesWinsAndARefusalCountsNoneOfThem() throws Exception {
    PamEngine engine =
        engine(
            """
          - {groups: ["*"], requests-per-minute: 100}
          - {groups: [contractors], requests-per-minute: 2}
        """);
    SessionRecord first = answer(chat(engine, CAROL), 1, 1);
    assertThat(first.quotaRemaining())
        .as("the least left over the entries")
        .isEqualTo(Map.of("requests_per_minute", 1L));
    answer(chat(engine, CAROL), 1, 1);

    Verdict third = chat(engine, CAROL);

    String message = assertQuotaExceeded(third, "limits[1].requests-per-minute", 40);
    assertThat(message).contains("limits[1]").contains("2 requests");
    Verdicts.end(third, true);
    List<QuotaStatus> status = engine.quotaStatus(principal("carol", "ml", "contractors"));
    assertThat(budget(status, "limits[0]", "requests_per_minute").used())
        .as("the refused request was given back to limits[0]")
        .isEqualTo(2);
    assertThat(budget(status, "limits[1]", "requests_per_minute").used()).isEqualTo(2);

    // alice is not a contractor: only the loose entry applies to her.
    for (int i = 0; i < 10; i++) answer(chat(engine, ALICE), 1, 1);
    assertThat(used(engine, "alice", "limits[0]", "requests_per_minute")).isEqualTo(10);
  }

  @Test
  void theTightestEntryWinsWhateverItsPlaceInTheList() throws Exception {
    PamEngine engine =
        engine(
            """
          - {groups: [contractors], requests-per-minute: 1}
          - {groups: ["*"], requests-per-minute: 100}
        """);
    answer(chat(engine, CAROL), 1, 1);
    Verdict second = chat(engine, CAROL);
    assertQuotaExceeded(second, "limits[0].requests-per-minute", 40);
    Verdicts.end(second, true);
  }

  @Test
  void anEntryWithModelsLimitsOnlyThoseModels() throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], models: [\"gpt-*\"], requests-per-minute: 1}\n");
    answer(post(engine, CHAT, ALICE, chatBody("gpt-4o")), 1, 1);
    Verdict second = post(engine, CHAT, ALICE, chatBody("gpt-4o-mini"));
    assertQuotaExceeded(second, "limits[0].requests-per-minute", 40);
    Verdicts.end(second, true);

    for (int i = 0; i < 5; i++) {
      SessionRecord r = answer(post(engine, CHAT, ALICE, chatBody("llama-3")), 1, 1);
      assertThat(r.quotaRemaining()).as("no entry applies").isEmpty();
    }
  }

  @Test
  void anEntryWithOperationsLimitsOnlyThoseOperations() throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], operations: [embedding], requests-per-minute: 1}\n");
    String embed = "{\"model\":\"llama-3\",\"input\":\"hi\"}";
    answer(post(engine, "/v1/embeddings", ALICE, embed), 1, 0);
    Verdict second = post(engine, "/v1/embeddings", ALICE, embed);
    assertQuotaExceeded(second, "limits[0].requests-per-minute", 40);
    Verdicts.end(second, true);

    for (int i = 0; i < 5; i++)
      assertThat(answer(chat(engine, ALICE), 1, 1).quotaRemaining()).isEmpty();
    assertThat(
            answer(
                    post(
                        engine,
                        "/v1/completions",
                        ALICE,
                        "{\"model\":\"llama-3\",\"prompt\":\"hi\"}"),
                    1,
                    1)
                .quotaRemaining())
        .isEmpty();
  }

  @Test
  void requestsThroughAnAllowRuleAreNotLimitedAndTakeNothing() {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 1, tokens-per-minute: 10}\n");
    for (int i = 0; i < 5; i++) {
      Verdict models = call(engine, "GET", "/v1/models", ALICE, null);
      assertThat(models.decision().rule()).isEqualTo("allow[0]");
      respond(
          models,
          "application/json",
          "{\"object\":\"list\",\"data\":["
              + "{\"id\":\"llama-3\"},".repeat(50)
              + "{\"id\":\"gpt-4o\"}]}");
      SessionRecord r = ended(models);
      assertThat(r.decision().outcome()).isEqualTo("allow");
      assertThat(r.quotaRemaining()).isEmpty();
    }
    assertThat(used(engine, "alice", "limits[0]", "requests_per_minute")).isZero();
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isZero();
    assertThat(chat(engine, ALICE) instanceof Verdict.Allowed).isTrue();
  }

  @Test
  void principalsInNoneOfAnEntrysGroupsAreNotLimitedByIt() {
    PamEngine engine = engine("  - {groups: [contractors], requests-per-minute: 1}\n");
    for (int i = 0; i < 5; i++)
      assertThat(answer(chat(engine, ALICE), 1, 1).quotaRemaining()).isEmpty();
    assertThat(engine.quotaStatus(principal("alice", "ml"))).isEmpty();
  }

  @Test
  void eachPrincipalHasItsOwnBudget() throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 2, tokens-per-day: 1000}\n");
    answer(chat(engine, ALICE), 400, 500);
    answer(chat(engine, ALICE), 1, 1);
    Verdict third = chat(engine, ALICE);
    assertQuotaExceeded(third, "limits[0].requests-per-minute", 40);
    Verdicts.end(third, true);

    SessionRecord bobs = answer(chat(engine, BOB), 41, 120);
    assertThat(bobs.quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 1L, "tokens_per_day", 839L));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_day")).isEqualTo(902);
  }

  // --- 5. records
  // ------------------------------------------------------------------------------------

  @Test
  void eachRecordCarriesWhatIsLeftAfterItsExchange() throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 3, tokens-per-day: 1395}\n");

    assertThat(answer(chat(engine, ALICE), 41, 120).quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 2L, "tokens_per_day", 1234L));
    assertThat(answer(chat(engine, ALICE), 100, 134).quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 1L, "tokens_per_day", 1000L));
    assertThat(answer(chat(engine, ALICE), 500, 600).quotaRemaining())
        .as("never below 0")
        .isEqualTo(Map.of("requests_per_minute", 0L, "tokens_per_day", 0L));

    Verdict denied = chat(engine, ALICE);
    assertQuotaExceeded(denied, "limits[0].tokens-per-day", 7180);
    SessionRecord r = ended(denied);
    assertThat(r.decision())
        .isEqualTo(
            new SessionRecord.DecisionSummary(
                "deny",
                "limits[0].tokens-per-day",
                "quota_exceeded",
                ((Decision.Deny) denied.decision()).message()));
    assertThat(r.response().status()).isEqualTo(429);
    assertThat(r.quotaRemaining()).isEmpty();
  }

  // --- 6. decision order
  // -----------------------------------------------------------------------------

  static Stream<Arguments> refusedEarlier() {
    return Stream.of(
        Arguments.of(
            "unauthenticated", "POST", CHAT, null, chatBody("llama-3"), 401, "unauthenticated"),
        Arguments.of(
            "blocked", "POST", "/tokenize", ALICE, "{\"model\":\"llama-3\"}", 403, "blocked"),
        Arguments.of("not allowed", "GET", "/v1/files", ALICE, null, 403, "not_allowed"),
        Arguments.of(
            "not entitled", "POST", CHAT, ALICE, chatBody("mistral-7b"), 403, "not_entitled"),
        Arguments.of(
            "denied parameter",
            "POST",
            CHAT,
            ALICE,
            "{\"model\":\"llama-3\",\"logprobs\":true,\"messages\":[]}",
            403,
            "parameter_denied"),
        // Over parameters.max and over the token budget: the parameter check comes first.
        Arguments.of(
            "parameter over max",
            "POST",
            CHAT,
            ALICE,
            chatBody("llama-3", "max_tokens", 20_000),
            403,
            "parameter_denied"),
        Arguments.of("malformed body", "POST", CHAT, ALICE, "{\"model\":", 400, "bad_request"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("refusedEarlier")
  void aRequestRefusedByAnEarlierCheckTakesNoQuota(
      String what, String method, String path, String key, String body, int status, String code)
      throws Exception {
    PamEngine engine =
        engine("  - {groups: [\"*\"], requests-per-minute: 1, tokens-per-minute: 1000}\n");
    for (int i = 0; i < 3; i++) {
      Verdict refused = call(engine, method, path, key, body);
      assertThat(Verdicts.error(refused).status()).isEqualTo(status);
      assertThat(error(refused).get("code").asText()).isEqualTo(code);
      SessionRecord r = ended(refused);
      assertThat(r.decision().code()).isEqualTo(code);
      assertThat(r.quotaRemaining()).isEmpty();
    }

    SessionRecord ok = answer(chat(engine, ALICE), 1, 1);
    assertThat(ok.quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 0L, "tokens_per_minute", 998L));
  }

  static final String APPROVAL =
      """
      approval:
        reviewers: [security-oncall]
        rules:
          - {name: gpt-review, models: ["gpt-*"]}
      """;

  InProcessApprovalService service;

  PamEngine approvalEngine(String limits, List<String> notices) {
    Policy p = Policy.parse(policy(limits, APPROVAL));
    service =
        InProcessApprovalService.builder()
            .settings(p.approval())
            .clock(clock)
            .manualExpiry()
            .onReview(pending -> notices.add(pending.id()))
            .build();
    toClose.add(service);
    return keep(base(policy(limits, APPROVAL)).approvalService(service).build());
  }

  @Test
  void limitsAreCheckedBeforeApprovalSoARequestOverQuotaIsNeverReviewed() throws Exception {
    List<String> notices = new CopyOnWriteArrayList<>();
    PamEngine engine = approvalEngine("  - {groups: [\"*\"], requests-per-minute: 1}\n", notices);
    answer(chat(engine, ALICE), 1, 1);

    Verdict needsReview = post(engine, CHAT, ALICE, chatBody("gpt-4o"));

    assertQuotaExceeded(needsReview, "limits[0].requests-per-minute", 40);
    assertThat(needsReview).isNotInstanceOf(Verdict.Held.class);
    assertThat(service.pending()).as("no reviewer was bothered").isEmpty();
    assertThat(notices).isEmpty();
    SessionRecord r = ended(needsReview);
    assertThat(r.decision().code()).isEqualTo("quota_exceeded");
    assertThat(r.approval()).isNull();
  }

  @Test
  void aRequestWaitingForReviewHoldsItsPlaceInRequestsPerMinute() throws Exception {
    List<String> notices = new CopyOnWriteArrayList<>();
    PamEngine engine = approvalEngine("  - {groups: [\"*\"], requests-per-minute: 1}\n", notices);

    Verdict held = post(engine, CHAT, ALICE, chatBody("gpt-4o"));
    assertThat(held).isInstanceOf(Verdict.Held.class);
    Verdict next = chat(engine, ALICE);
    assertQuotaExceeded(next, "limits[0].requests-per-minute", 40);
    Verdicts.end(next, true);

    service.approve(service.pending().get(0).id(), SAM, "ok");
    assertThat(Verdicts.reviewOver(held)).isTrue();
    Verdict settled = Verdicts.result(Verdicts.held(held));
    assertThat(settled.decision()).isInstanceOf(Decision.Allow.class);
    SessionRecord r = answer(settled, 41, 120);
    assertThat(r.decision().outcome()).isEqualTo("approved");
    assertThat(r.quotaRemaining()).isEqualTo(Map.of("requests_per_minute", 0L));
  }

  @Test
  void aRequestRejectedInReviewAfterAdmissionChargesNoTokens() throws Exception {
    List<String> notices = new CopyOnWriteArrayList<>();
    PamEngine engine =
        approvalEngine(
            "  - {groups: [\"*\"], requests-per-minute: 10, tokens-per-minute: 1000}\n", notices);
    Verdict held = post(engine, CHAT, ALICE, chatBody("gpt-4o"));
    assertThat(held).isInstanceOf(Verdict.Held.class);

    service.reject(service.pending().get(0).id(), SAM, "no");
    assertThat(Verdicts.reviewOver(held)).isTrue();
    Verdict settled = Verdicts.result(Verdicts.held(held));
    Decision d = settled.decision();
    assertThat(d)
        .isInstanceOfSatisfying(
            Decision.Deny.class, deny -> assertThat(deny.code()).isEqualTo("approval_rejected"));
    SessionRecord r = ended(settled);

    assertThat(r.decision().code()).isEqualTo("approval_rejected");
    // The request was counted when admitted (before the review); no token reached a model.
    assertThat(r.quotaRemaining())
        .isEqualTo(Map.of("requests_per_minute", 9L, "tokens_per_minute", 1000L));
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isZero();
  }

  @Test
  void anAllowedRequestThatCannotGetTheUpstreamCredentialChargesNoTokens() throws Exception {
    PamEngine engine =
        keep(
            PamEngine.builder()
                .policy(
                    Policy.parse(
                        policy(
                            "  - {groups: [\"*\"], requests-per-minute: 10, tokens-per-minute: 1000}\n",
                            "")))
                .clock(clock)
                .recorder(rec)
                .credentialProvider(
                    () -> {
                      throw new CredentialUnavailableException("OPENAI_API_KEY is not set");
                    })
                .build());

    Verdict ex = chat(engine, ALICE);

    assertThat(Verdicts.error(ex).status()).isEqualTo(503);
    assertThat(error(ex).get("code").asText()).isEqualTo("upstream_credential_unavailable");
    SessionRecord r = ended(ex);
    assertThat(r.quotaRemaining()).containsEntry("tokens_per_minute", 1000L);
    assertThat(used(engine, "alice", "limits[0]", "tokens_per_minute")).isZero();
  }

  // --- 7. a failing store
  // ----------------------------------------------------------------------------

  /** A store that throws on every call, with a message that must never reach a caller. */
  static final class BrokenStore implements QuotaStore {
    final AtomicInteger calls = new AtomicInteger();

    RuntimeException fail() {
      calls.incrementAndGet();
      return new IllegalStateException("redis://:hunter2@10.0.0.5:6379 connection refused");
    }

    @Override
    public long addIfWithin(String key, long window, long amount, long limit, Instant windowEnd) {
      throw fail();
    }

    @Override
    public long add(String key, long window, long amount, Instant windowEnd) {
      throw fail();
    }

    @Override
    public long get(String key, long window) {
      throw fail();
    }
  }

  @Test
  void aStoreThatFailsAtAdmissionRefusesTheRequest503WithoutItsMessage() throws Exception {
    BrokenStore store = new BrokenStore();
    PamEngine engine =
        keep(
            base(policy("  - {groups: [contractors], requests-per-minute: 10}\n", ""))
                .quotaStore(store)
                .build());

    Verdict ex = chat(engine, CAROL);

    assertThat(ex.decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class,
            d -> {
              assertThat(d.status()).isEqualTo(503);
              assertThat(d.code()).isEqualTo("quota_unavailable");
              assertThat(d.rule()).isEqualTo("limits");
            });
    assertThat(Verdicts.credential(ex)).isNull();
    JsonNode e = error(ex);
    assertThat(e.get("code").asText()).isEqualTo("quota_unavailable");
    assertThat(e.get("message").asText())
        .isEqualTo("quota state is unavailable, the request was not forwarded");
    assertThat(Verdicts.error(ex).bodyText())
        .doesNotContain("hunter2")
        .doesNotContain("redis")
        .doesNotContain("10.0.0.5");
    SessionRecord r = ended(ex);
    assertThat(r.decision().code()).isEqualTo("quota_unavailable");
    assertThat(r.decision().message()).doesNotContain("hunter2");
    assertThat(store.calls.get()).isPositive();

    // A request no entry applies to never asks the store.
    int before = store.calls.get();
    assertThat(answer(chat(engine, ALICE), 1, 1).decision().outcome()).isEqualTo("allow");
    assertThat(store.calls.get()).isEqualTo(before);
  }

  @Test
  void aStoreThatFailsWhileChargingLosesTheTokensButNotTheRecord() {
    QuotaStore memory = new InMemoryQuotaStore(clock);
    QuotaStore chargingFails =
        new QuotaStore() {
          @Override
          public long addIfWithin(
              String key, long window, long amount, long limit, Instant windowEnd) {
            return memory.addIfWithin(key, window, amount, limit, windowEnd);
          }

          @Override
          public long add(String key, long window, long amount, Instant windowEnd) {
            throw new IllegalStateException("store down");
          }

          @Override
          public long get(String key, long window) {
            return memory.get(key, window);
          }
        };
    PamEngine engine =
        keep(
            base(policy(
                    "  - {groups: [\"*\"], requests-per-minute: 5, tokens-per-minute: 1000}\n", ""))
                .quotaStore(chargingFails)
                .build());

    SessionRecord r = answer(chat(engine, ALICE), 41, 120);

    assertThat(r.decision().outcome()).isEqualTo("allow");
    assertThat(r.response().status()).isEqualTo(200);
    assertThat(r.quotaRemaining())
        .as("the charge is one call to the store: when it fails, nothing is known of what is left")
        .isEmpty();
  }

  // --- 8. quotaStatus
  // --------------------------------------------------------------------------------

  @Test
  void quotaStatusListsTheEntriesOfThePrincipalWithLimitUsedRemainingAndReset() {
    PamEngine engine =
        engine(
            """
          - {groups: ["*"], requests-per-minute: 60, tokens-per-day: 200000}
          - {groups: [contractors], models: ["gpt-*"], operations: [chat], requests-per-minute: 2, tokens-per-minute: 500}
          - {groups: [ops], tokens-per-minute: 5}
        """);
    answer(chat(engine, CAROL), 41, 120);
    answer(post(engine, CHAT, CAROL, chatBody("gpt-4o")), 300, 300);

    List<QuotaStatus> carol = engine.quotaStatus(principal("carol", "ml", "contractors"));

    assertThat(carol).extracting(QuotaStatus::rule).containsExactly("limits[0]", "limits[1]");
    QuotaStatus all = carol.get(0);
    assertThat(all.models()).isEmpty();
    assertThat(all.operations()).isEmpty();
    assertThat(all.budgets())
        .containsExactly(
            new QuotaStatus.Budget("requests_per_minute", 60, 2, NEXT_MINUTE),
            new QuotaStatus.Budget("tokens_per_day", 200_000, 161 + 600, MIDNIGHT));
    assertThat(all.budgets().get(0).remaining()).isEqualTo(58);
    assertThat(all.budgets().get(1).remaining()).isEqualTo(200_000 - 761);
    QuotaStatus gpt = carol.get(1);
    assertThat(gpt.models()).containsExactly("gpt-*");
    assertThat(gpt.operations()).containsExactly("chat");
    assertThat(gpt.budgets())
        .containsExactly(
            new QuotaStatus.Budget("requests_per_minute", 2, 1, NEXT_MINUTE),
            new QuotaStatus.Budget("tokens_per_minute", 500, 600, NEXT_MINUTE));
    assertThat(gpt.budgets().get(1).remaining()).as("over-run shows as 0 left").isZero();

    assertThat(engine.quotaStatus(principal("alice", "ml")))
        .extracting(QuotaStatus::rule)
        .containsExactly("limits[0]");
    assertThat(
            budget(engine.quotaStatus(principal("alice", "ml")), "limits[0]", "requests_per_minute")
                .used())
        .isZero();
    assertThat(engine.quotaStatus(principal("nobody", "ops")))
        .extracting(QuotaStatus::rule)
        .containsExactly("limits[0]", "limits[2]");

    clock.set(NEXT_MINUTE);
    List<QuotaStatus> later = engine.quotaStatus(principal("carol", "ml", "contractors"));
    assertThat(later.get(0).budgets())
        .containsExactly(
            new QuotaStatus.Budget("requests_per_minute", 60, 0, NEXT_MINUTE.plusSeconds(60)),
            new QuotaStatus.Budget("tokens_per_day", 200_000, 761, MIDNIGHT));
  }

  @Test
  void quotaStatusIsEmptyWithoutLimits() {
    PamEngine engine =
        keep(
            base("""
        version: 1
        entitlements:
          - {groups: [ml], models: ["*"], operations: [chat]}
        """)
                .build());
    assertThat(engine.quotaStatus(principal("alice", "ml"))).isEmpty();
  }

  // --- 9. concurrency
  // ------------------------------------------------------------------------------

  @Test
  void sixteenThreadsGetExactlyTheRequestsPerMinuteAdmitted() throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], requests-per-minute: 50}\n");
    int threads = 16;
    int each = 20;
    AtomicInteger allowed = new AtomicInteger();
    AtomicInteger refused = new AtomicInteger();
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      start.await();
                      for (int i = 0; i < each; i++) {
                        Verdict ex = chat(engine, ALICE);
                        if ((ex instanceof Verdict.Allowed)) {
                          allowed.incrementAndGet();
                          respond(ex, "application/json", completion(1, 1));
                        } else if (Verdicts.error(ex).status() == 429) {
                          refused.incrementAndGet();
                        }
                        Verdicts.end(ex, true);
                      }
                      return null;
                    }));
      }
      start.countDown();
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdownNow();
    }

    assertThat(allowed.get()).isEqualTo(50);
    assertThat(refused.get()).isEqualTo(threads * each - 50);
    assertThat(rec.records).hasSize(threads * each);
    assertThat(rec.records.stream().filter(r -> "quota_exceeded".equals(r.decision().code())))
        .hasSize(270);
    assertThat(used(engine, "alice", "limits[0]", "requests_per_minute")).isEqualTo(50);
  }

  /**
   * Tokens are known only when an exchange ends, so admission can compare a token budget only
   * with what has been charged so far, and it reserves nothing. Every exchange admitted while the
   * budget still had room is charged in full afterwards: the budget can be over-run by at most the
   * tokens of the exchanges admitted before the charges that used it up — here all {@code K},
   * admitted together before any of them ended. Once charged, the next request is refused.
   */
  @Test
  void tokensOverRunTheBudgetByAtMostWhatTheExchangesInFlightUsed() throws Exception {
    PamEngine engine = engine("  - {groups: [\"*\"], tokens-per-minute: 1000}\n");
    answer(chat(engine, ALICE), 400, 500); // 100 left
    int k = 8;
    long perRequest = 161;
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(k);
    List<Verdict> inFlight = new ArrayList<>();
    try {
      List<Future<Verdict>> begun = new ArrayList<>();
      for (int i = 0; i < k; i++) {
        // Each asks for at most 100 tokens of output: what is left, so each fits on its own.
        begun.add(
            pool.submit(
                () -> {
                  start.await();
                  return post(engine, CHAT, ALICE, chatBody("llama-3", "max_tokens", 100));
                }));
      }
      start.countDown();
      for (Future<Verdict> f : begun) inFlight.add(f.get());
    } finally {
      pool.shutdownNow();
    }
    assertThat(inFlight)
        .allSatisfy(
            ex ->
                assertThat((ex instanceof Verdict.Allowed))
                    .as("admitted: nothing charged yet")
                    .isTrue());

    for (Verdict ex : inFlight) answer(ex, 41, 120);

    long used = used(engine, "alice", "limits[0]", "tokens_per_minute");
    assertThat(used).isEqualTo(900 + k * perRequest);
    assertThat(used - 1000).as("over-run").isPositive().isLessThanOrEqualTo(k * perRequest);
    Verdict after = chat(engine, ALICE);
    assertQuotaExceeded(after, "limits[0].tokens-per-minute", 40);
    Verdicts.end(after, true);
  }
}
