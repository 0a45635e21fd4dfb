package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.CI_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.limitsPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Quotas through the gateway, on an engine clock the test moves: requests per minute refused 429
 * {@code quota_exceeded} with {@code Retry-After} before they reach the upstream, tokens charged
 * from JSON usage, from the final SSE usage chunk and, without usage, by the bytes estimate, a
 * {@code max_tokens} larger than what is left refused up front, and {@code GET /pam/quota}
 * showing callers their own budgets.
 */
class GatewayQuotaTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final String MODEL = "llama-3.1-8b";
  private static final Duration WAIT = Duration.ofSeconds(10);

  /** 15 s into a minute, 11 h 59 min 45 s before the end of the UTC day. */
  private static final Instant START = Instant.parse("2026-11-28T12:00:15Z");

  private static final long SECONDS_TO_MIDNIGHT = 43_185;

  private static final String THREE_PER_MINUTE =
      limitsPolicy(
          """
        - groups: ["*"]
          requests-per-minute: 3
      """);
  private static final String THOUSAND_TOKENS_A_DAY =
      limitsPolicy(
          """
        - groups: ["*"]
          requests-per-minute: 100
          tokens-per-day: 1000
      """);

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private final MutableClock clock = new MutableClock(START);
  private final List<AutoCloseable> toClose = new ArrayList<>();
  private MockWebServer upstream;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    client = new OkHttpClient.Builder().readTimeout(WAIT).callTimeout(WAIT.multipliedBy(2)).build();
  }

  @AfterEach
  void tearDown() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
    upstream.close();
  }

  // -----------------------------------------------------------------------------------------------
  // requests per minute

  @Test
  void fourthRequestInAMinuteIs429QuotaExceededWithRetryAfterAndNeverReachesUpstream()
      throws Exception {
    Gateway gateway = start(THREE_PER_MINUTE);
    for (int i = 1; i <= 3; i++) {
      upstream.enqueue(jsonAnswer("{\"n\":" + i + "}"));
      String body = chat("request " + i, "");
      Answer ok = post(gateway, ALICE_KEY, body);
      assertThat(ok.code).as(ok.body).isEqualTo(200);
      assertThat(recordOf(body).quotaRemaining())
          .containsExactlyEntriesOf(Map.of("requests_per_minute", 3L - i));
    }

    String fourth = chat("request 4", "");
    Answer refused = post(gateway, ALICE_KEY, fourth);

    assertThat(refused.code).isEqualTo(429);
    assertThat(refused.headers.get("Retry-After")).isEqualTo("45");
    assertThat(refused.headers.get("Content-Type")).startsWith("application/json");
    JsonNode error = refused.json().path("error");
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo("quota_exceeded");
    assertThat(error.path("message").asText()).contains("limits[0]", "requests-per-minute");
    assertThat(upstream.getRequestCount()).isEqualTo(3);

    SessionRecord record = recordOf(fourth);
    assertThat(record.decision().outcome()).isEqualTo("deny");
    assertThat(record.decision().code()).isEqualTo("quota_exceeded");
    assertThat(record.decision().rule()).isEqualTo("limits[0].requests-per-minute");
    assertThat(record.response().status()).isEqualTo(429);
    assertThat(record.id()).isEqualTo(error.path("request_id").asText());
    for (int i = 0; i < 3; i++) {
      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(seen.getBody().utf8()).isNotEqualTo(fourth);
    }
  }

  @Test
  void theNextMinuteLetsRequestsPassAgain() throws Exception {
    Gateway gateway = start(THREE_PER_MINUTE);
    for (int i = 1; i <= 3; i++) {
      upstream.enqueue(jsonAnswer("{}"));
      assertThat(post(gateway, ALICE_KEY, chat("minute one " + i, "")).code).isEqualTo(200);
    }
    assertThat(post(gateway, ALICE_KEY, chat("minute one 4", "")).code).isEqualTo(429);

    clock.advance(Duration.ofSeconds(44));
    Answer stillRefused = post(gateway, ALICE_KEY, chat("minute one 5", ""));
    assertThat(stillRefused.code).isEqualTo(429);
    assertThat(stillRefused.headers.get("Retry-After")).isEqualTo("1");

    clock.advance(Duration.ofSeconds(1)); // 12:01:00
    upstream.enqueue(jsonAnswer("{\"again\":true}"));
    String body = chat("minute two 1", "");
    Answer passes = post(gateway, ALICE_KEY, body);

    assertThat(passes.code).isEqualTo(200);
    assertThat(passes.body).isEqualTo("{\"again\":true}");
    assertThat(upstream.getRequestCount()).isEqualTo(4);
    assertThat(recordOf(body).quotaRemaining()).containsEntry("requests_per_minute", 2L);
  }

  @Test
  void budgetsArePerPrincipal() throws Exception {
    Gateway gateway = start(THREE_PER_MINUTE);
    for (int i = 1; i <= 3; i++) {
      upstream.enqueue(jsonAnswer("{}"));
      assertThat(post(gateway, ALICE_KEY, chat("alice " + i, "")).code).isEqualTo(200);
    }
    assertThat(post(gateway, ALICE_KEY, chat("alice 4", "")).code).isEqualTo(429);

    upstream.enqueue(jsonAnswer("{}"));
    String body = chat("ci 1", "");
    assertThat(post(gateway, CI_KEY, body).code).isEqualTo(200);
    assertThat(recordOf(body).quotaRemaining()).containsEntry("requests_per_minute", 2L);
  }

  // -----------------------------------------------------------------------------------------------
  // tokens

  @Test
  void tokensFromJsonUsageAreCharged() throws Exception {
    Gateway gateway = start(THOUSAND_TOKENS_A_DAY);
    upstream.enqueue(
        jsonAnswer(
            "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                + "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,\"total_tokens\":150}}"));
    String body = chat("count me", "");

    assertThat(post(gateway, ALICE_KEY, body).code).isEqualTo(200);

    SessionRecord record = recordOf(body);
    assertThat(record.response().usage())
        .containsEntry("prompt_tokens", 100L)
        .containsEntry("completion_tokens", 50L);
    assertThat(record.quotaRemaining())
        .containsEntry("tokens_per_day", 850L)
        .containsEntry("requests_per_minute", 99L);
    assertTokensPerDay(quota(gateway, ALICE_KEY), 150, 850);
  }

  @Test
  void tokensFromTheFinalSseUsageChunkAreCharged() throws Exception {
    Gateway gateway = start(THOUSAND_TOKENS_A_DAY);
    upstream.enqueue(
        sseAnswer(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
                + "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
                + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n"
                + "data: [DONE]\n\n"));
    String body = chat("stream me", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");

    Answer streamed = post(gateway, ALICE_KEY, body);

    assertThat(streamed.code).isEqualTo(200);
    assertThat(streamed.headers.get("Content-Type")).startsWith("text/event-stream");
    assertThat(streamed.body).contains("\"lo\"").endsWith("data: [DONE]\n\n");
    SessionRecord record = recordOf(body);
    assertThat(record.response().streamed()).isTrue();
    assertThat(record.response().usage())
        .containsEntry("prompt_tokens", 12L)
        .containsEntry("completion_tokens", 34L);
    assertThat(record.quotaRemaining()).containsEntry("tokens_per_day", 954L);
    assertTokensPerDay(quota(gateway, ALICE_KEY), 46, 954);
  }

  @Test
  void sseStreamWithoutUsageIsChargedByTheBytesEstimate() throws Exception {
    Gateway gateway = start(THOUSAND_TOKENS_A_DAY);
    String events =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Once upon\"}}]}\n\n"
            + "data: {\"choices\":[{\"delta\":{\"content\":\" a time, there was a stream\"}}]}\n\n"
            + "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            + "data: [DONE]\n\n";
    upstream.enqueue(sseAnswer(events));
    String body = chat("tell me a story", "\"stream\":true");
    long requestBytes = body.getBytes(StandardCharsets.UTF_8).length;
    long responseBytes = events.getBytes(StandardCharsets.UTF_8).length;
    long estimate = ceilDiv(requestBytes, 4) + ceilDiv(responseBytes, 4);

    Answer streamed = post(gateway, ALICE_KEY, body);

    assertThat(streamed.code).isEqualTo(200);
    assertThat(streamed.body).isEqualTo(events);
    SessionRecord record = recordOf(body);
    assertThat(record.response().usage()).isEmpty();
    assertThat(record.response().bytes()).isEqualTo(responseBytes);
    assertThat(record.request().bytes()).isEqualTo(requestBytes);
    assertThat(record.quotaRemaining()).containsEntry("tokens_per_day", 1000 - estimate);
    assertTokensPerDay(quota(gateway, ALICE_KEY), estimate, 1000 - estimate);
  }

  @Test
  void maxTokensLargerThanWhatIsLeftIsRefusedBeforeReachingUpstream() throws Exception {
    Gateway gateway = start(THOUSAND_TOKENS_A_DAY);
    upstream.enqueue(jsonAnswer("{\"usage\":{\"prompt_tokens\":600,\"completion_tokens\":100}}"));
    assertThat(post(gateway, ALICE_KEY, chat("spend 700", "")).code).isEqualTo(200);
    recordOf(chat("spend 700", ""));

    String tooLarge = chat("want 301", "\"max_tokens\":301");
    Answer refused = post(gateway, ALICE_KEY, tooLarge);

    assertThat(refused.code).isEqualTo(429);
    assertThat(refused.headers.get("Retry-After")).isEqualTo(Long.toString(SECONDS_TO_MIDNIGHT));
    assertThat(refused.json().path("error").path("code").asText()).isEqualTo("quota_exceeded");
    assertThat(refused.json().path("error").path("message").asText())
        .contains("301", "300", "tokens-per-day");
    assertThat(upstream.getRequestCount()).isEqualTo(1);
    SessionRecord record = recordOf(tooLarge);
    assertThat(record.decision().code()).isEqualTo("quota_exceeded");
    assertThat(record.decision().rule()).isEqualTo("limits[0].tokens-per-day");
    // Refused before it was counted: neither its request nor any token.
    JsonNode budget = quota(gateway, ALICE_KEY).path("limits").get(0);
    assertThat(budget.path("requests_per_minute").path("used").asLong()).isEqualTo(1);
    assertTokensPerDay(quota(gateway, ALICE_KEY), 700, 300);

    upstream.enqueue(jsonAnswer("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":290}}"));
    String fits = chat("want 300", "\"max_tokens\":300");
    assertThat(post(gateway, ALICE_KEY, fits).code).isEqualTo(200);
    assertThat(upstream.getRequestCount()).isEqualTo(2);
    assertThat(recordOf(fits).quotaRemaining()).containsEntry("tokens_per_day", 0L);
  }

  @Test
  void aSpentTokenBudgetRefusesTheNextRequestUntilTheNextUtcDay() throws Exception {
    Gateway gateway = start(THOUSAND_TOKENS_A_DAY);
    // A stream whose tokens (by the estimate) take the budget past its bound.
    upstream.enqueue(
        sseAnswer(
            "data: {\"choices\":[{\"delta\":{\"content\":\""
                + "x".repeat(4000)
                + "\"}}]}\n\n"
                + "data: [DONE]\n\n"));
    String big = chat("a long one", "\"stream\":true");
    assertThat(post(gateway, ALICE_KEY, big).code).isEqualTo(200);
    assertThat(recordOf(big).quotaRemaining()).containsEntry("tokens_per_day", 0L);
    JsonNode day = quota(gateway, ALICE_KEY).path("limits").get(0).path("tokens_per_day");
    assertThat(day.path("used").asLong()).isGreaterThan(1000);
    assertThat(day.path("remaining").asLong()).isZero();

    Answer refused = post(gateway, ALICE_KEY, chat("one more", ""));
    assertThat(refused.code).isEqualTo(429);
    assertThat(refused.headers.get("Retry-After")).isEqualTo(Long.toString(SECONDS_TO_MIDNIGHT));
    assertThat(refused.json().path("error").path("message").asText()).contains("used up");
    assertThat(upstream.getRequestCount()).isEqualTo(1);

    clock.advance(Duration.ofSeconds(SECONDS_TO_MIDNIGHT));
    upstream.enqueue(jsonAnswer("{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"));
    assertThat(post(gateway, ALICE_KEY, chat("new day", "")).code).isEqualTo(200);
    JsonNode newDay = quota(gateway, ALICE_KEY).path("limits").get(0).path("tokens_per_day");
    assertThat(newDay.path("used").asLong()).isEqualTo(2);
    assertThat(newDay.path("resets").asText()).isEqualTo("2026-11-30T00:00:00Z");
  }

  // -----------------------------------------------------------------------------------------------
  // GET /pam/quota

  @Test
  void quotaEndpointShowsAliceHerOwnBudgets() throws Exception {
    Gateway gateway =
        start(
            limitsPolicy(
                """
          - groups: ["*"]
            requests-per-minute: 60
            tokens-per-day: 200000
          - groups: [ml-engineers]
            models: ["gpt-4o-mini"]
            operations: [chat]
            tokens-per-minute: 5000
          - groups: [ci]
            requests-per-minute: 1
        """));
    upstream.enqueue(jsonAnswer("{\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":22}}"));
    String body = chat("hello", "");
    assertThat(post(gateway, ALICE_KEY, body).code).isEqualTo(200);
    recordOf(body);

    Answer answer = get(gateway, "/pam/quota", ALICE_KEY);

    assertThat(answer.code).as(answer.body).isEqualTo(200);
    assertThat(answer.headers.get("Cache-Control")).isEqualTo("no-store");
    assertThat(answer.headers.get("Content-Type")).startsWith("application/json");
    assertThat(answer.json())
        .isEqualTo(
            JSON.readTree(
                """
        {"principal":"alice","limits":[
          {"rule":"limits[0]","models":[],"operations":[],
           "requests_per_minute":{"limit":60,"used":1,"remaining":59,"resets":"2026-11-28T12:01:00Z"},
           "tokens_per_day":{"limit":200000,"used":42,"remaining":199958,"resets":"2026-11-29T00:00:00Z"}},
          {"rule":"limits[1]","models":["gpt-4o-mini"],"operations":["chat"],
           "tokens_per_minute":{"limit":5000,"used":0,"remaining":5000,"resets":"2026-11-28T12:01:00Z"}}]}
        """));
    // Reading it is neither forwarded, recorded, nor counted.
    assertThat(upstream.getRequestCount()).isEqualTo(1);
    assertThat(records).hasSize(1);
    assertThat(
            get(gateway, "/pam/quota", ALICE_KEY)
                .json()
                .path("limits")
                .get(0)
                .path("requests_per_minute")
                .path("used")
                .asLong())
        .isEqualTo(1);
  }

  @Test
  void quotaEndpointWithoutAKeyIs401WithBearerChallenge() throws Exception {
    Gateway gateway = start(THREE_PER_MINUTE);

    for (String key : new String[] {null, "not-a-key"}) {
      Answer answer = get(gateway, "/pam/quota", key);
      assertThat(answer.code).isEqualTo(401);
      assertThat(answer.headers.get("WWW-Authenticate")).startsWith("Bearer");
      assertThat(answer.headers.get("Cache-Control")).isEqualTo("no-store");
      assertThat(answer.json().path("error").path("code").asText()).isEqualTo("unauthenticated");
      assertThat(answer.body).doesNotContain("limits").doesNotContain("not-a-key");
    }
    Answer post = send(gateway, "POST", "/pam/quota", ALICE_KEY, "{}");
    assertThat(post.code).isEqualTo(405);
    assertThat(post.headers.get("Allow")).isEqualTo("GET");
    assertThat(get(gateway, "/pam/quota/alice", ALICE_KEY).code).isEqualTo(404);
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void quotaEndpointOfAPolicyWithoutLimitsIsAnEmptyList() throws Exception {
    Gateway gateway = start(TestPolicies.POLICY);

    Answer answer = get(gateway, "/pam/quota", ALICE_KEY);

    assertThat(answer.code).isEqualTo(200);
    assertThat(answer.json()).isEqualTo(JSON.readTree("{\"principal\":\"alice\",\"limits\":[]}"));
    upstream.enqueue(jsonAnswer("{}"));
    String body = chat("unlimited", "");
    assertThat(post(gateway, ALICE_KEY, body).code).isEqualTo(200);
    assertThat(recordOf(body).quotaRemaining()).isEmpty();
  }

  // -----------------------------------------------------------------------------------------------
  // fixtures

  private Gateway start(String policyYaml) throws IOException {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policyYaml))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .clock(clock)
            .build();
    Gateway gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
    toClose.add(() -> gateway.close(Duration.ofSeconds(5)));
    return gateway;
  }

  private static MockResponse jsonAnswer(String body) {
    return new MockResponse.Builder()
        .code(200)
        .addHeader("Content-Type", "application/json")
        .body(body)
        .build();
  }

  private static MockResponse sseAnswer(String events) {
    return new MockResponse.Builder()
        .code(200)
        .addHeader("Content-Type", "text/event-stream")
        .body(events)
        .build();
  }

  private static String chat(String prompt, String extraFields) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", MODEL);
    root.putArray("messages").addObject().put("role", "user").put("content", prompt);
    String json = root.toString();
    return extraFields.isEmpty()
        ? json
        : json.substring(0, json.length() - 1) + "," + extraFields + "}";
  }

  private Answer post(Gateway gateway, String key, String body) throws IOException {
    return send(gateway, "POST", "/v1/chat/completions", key, body);
  }

  private Answer get(Gateway gateway, String path, String key) throws IOException {
    return send(gateway, "GET", path, key, null);
  }

  private Answer send(Gateway gateway, String method, String path, String key, String body)
      throws IOException {
    HttpUrl url = HttpUrl.get(gateway.uri()).newBuilder().encodedPath(path).build();
    Request.Builder b =
        new Request.Builder()
            .url(url)
            .method(method, body == null ? null : RequestBody.create(body, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    try (Response r = client.newCall(b.build()).execute()) {
      return new Answer(r.code(), r.headers(), r.body().string());
    }
  }

  private JsonNode quota(Gateway gateway, String key) throws IOException {
    Answer answer = get(gateway, "/pam/quota", key);
    assertThat(answer.code).as(answer.body).isEqualTo(200);
    return answer.json();
  }

  private static void assertTokensPerDay(JsonNode quota, long used, long remaining) {
    JsonNode day = quota.path("limits").get(0).path("tokens_per_day");
    assertThat(day.path("limit").asLong()).isEqualTo(1000);
    assertThat(day.path("used").asLong()).as("used").isEqualTo(used);
    assertThat(day.path("remaining").asLong()).as("remaining").isEqualTo(remaining);
    assertThat(day.path("resets").asText()).isEqualTo("2026-11-29T00:00:00Z");
  }

  private static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  /**
   * The record of the exchange with this request body; exchanges end (and are charged) after
   * their response has gone out, so this waits for it.
   */
  private SessionRecord recordOf(String body) {
    return await()
        .atMost(WAIT)
        .pollInterval(Duration.ofMillis(10))
        .until(
            () ->
                records.stream()
                    .filter(r -> SessionRecord.TYPE_EXCHANGE.equals(r.type()))
                    .filter(r -> body.equals(r.request().body()))
                    .reduce((x, y) -> y)
                    .orElse(null),
            r -> r != null);
  }

  record Answer(int code, Headers headers, String body) {
    JsonNode json() throws IOException {
      return JSON.readTree(body);
    }
  }
}
