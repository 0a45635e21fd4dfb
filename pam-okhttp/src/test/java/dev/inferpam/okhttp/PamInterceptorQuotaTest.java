package dev.inferpam.okhttp;

import static dev.inferpam.testsupport.Policies.sha256;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testkit.CapturingRecorder;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Quotas in the client-side interceptor: a request over its budget is answered with a synthetic
 * 429 without calling the server, and a streamed answer is charged once the caller has consumed
 * it (from its final usage chunk, or by the bytes estimate without one), so the next request
 * sees what is left.
 */
class PamInterceptorQuotaTest {
  private static final MediaType JSON = MediaType.get("application/json");
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final String ALICE = "alice-quota-key-0001";

  /** 15 s into a minute, 43185 s before the end of the UTC day. */
  private static final Instant START = Instant.parse("2026-11-28T12:00:15Z");

  private static final String SECONDS_TO_MIDNIGHT = "43185";

  @StartStop final MockWebServer server = new MockWebServer();

  private final CapturingRecorder recorder = new CapturingRecorder();
  private final MutableClock clock = new MutableClock(START);
  private PamEngine engine;
  private OkHttpClient client;

  @AfterEach
  void tearDown() {
    if (client != null) {
      client.dispatcher().executorService().shutdown();
      client.connectionPool().evictAll();
    }
    if (engine != null) engine.close();
  }

  private void start(String limits) {
    String policy =
        """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
        limits:
        """
                .formatted(sha256(ALICE))
            + limits;
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .clock(clock)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .recorder(recorder)
            .build();
    client =
        PamInterceptor.of(engine)
            .install(new OkHttpClient.Builder())
            .readTimeout(10, TimeUnit.SECONDS)
            .build();
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void requestOverTheMinutesBudgetIsASynthetic429WithRetryAfterAndServerNeverCalled()
      throws Exception {
    start(
        """
          - groups: ["*"]
            requests-per-minute: 2
        """);
    for (int i = 1; i <= 2; i++) {
      server.enqueue(json("{\"n\":" + i + "}"));
      try (Response r = post(chat("call " + i, ""))) {
        assertThat(r.code()).isEqualTo(200);
        assertThat(r.body().string()).isEqualTo("{\"n\":" + i + "}");
      }
      assertThat(last().quotaRemaining()).containsEntry("requests_per_minute", 2L - i);
    }

    try (Response r = post(chat("call 3", ""))) {
      assertThat(r.code()).isEqualTo(429);
      assertThat(r.header("Retry-After")).isEqualTo("45");
      assertThat(r.header("Content-Type")).startsWith("application/json");
      JsonNode error = MAPPER.readTree(r.body().string()).path("error");
      assertThat(error.path("type").asText()).isEqualTo("pam_error");
      assertThat(error.path("code").asText()).isEqualTo("quota_exceeded");
      assertThat(error.path("message").asText()).contains("limits[0]", "requests-per-minute");
      assertThat(error.path("request_id").asText()).isEqualTo(last().id());
    }
    assertThat(server.getRequestCount()).isEqualTo(2);
    SessionRecord refused = last();
    assertThat(refused.decision().outcome()).isEqualTo("deny");
    assertThat(refused.decision().code()).isEqualTo("quota_exceeded");
    assertThat(refused.decision().rule()).isEqualTo("limits[0].requests-per-minute");
    assertThat(refused.response().status()).isEqualTo(429);
    assertThat(refused.request().body()).contains("call 3");

    clock.advance(Duration.ofSeconds(45));
    server.enqueue(json("{\"n\":3}"));
    try (Response r = post(chat("call 4", ""))) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(server.getRequestCount()).isEqualTo(3);
  }

  @Test
  void aCallTheUpstreamNeverAnsweredIsNotChargedTokens() throws Exception {
    start(
        """
          - groups: ["*"]
            tokens-per-day: 1000
        """);
    // Nothing listens on the server's port once it is closed: the connection is refused.
    String url = server.url("/v1/chat/completions").toString();
    server.close();
    Request request =
        new Request.Builder()
            .url(url)
            .header("Authorization", "Bearer " + ALICE)
            .post(RequestBody.create(chat("nobody home", ""), JSON))
            .build();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> client.newCall(request).execute())
        .isInstanceOf(IOException.class);
    SessionRecord failed = last();
    assertThat(failed.decision().outcome()).isEqualTo("allow");
    assertThat(failed.response().status()).isEqualTo(502);
    assertThat(failed.quotaRemaining()).containsEntry("tokens_per_day", 1000L);
  }

  @Test
  void streamedAnswerWithAUsageChunkIsChargedOnceConsumed() throws Exception {
    start(
        """
          - groups: ["*"]
            tokens-per-day: 100
        """);
    server.enqueue(
        sse(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":40,\"total_tokens\":70}}\n\n"
                + "data: [DONE]\n\n"));

    try (Response r =
        post(chat("stream", "\"stream\":true,\"stream_options\":{\"include_usage\":true}"))) {
      assertThat(r.code()).isEqualTo(200);
      BufferedSource events = r.body().source();
      assertThat(events.readUtf8LineStrict()).contains("\"Hi\"");
      // Nothing is charged before the caller has consumed the stream.
      assertThat(recorder.records).isEmpty();
      events.readUtf8(); // the rest, to the end
    }
    SessionRecord streamed = last();
    assertThat(streamed.response().streamed()).isTrue();
    assertThat(streamed.response().complete()).isTrue();
    assertThat(streamed.response().usage())
        .containsEntry("prompt_tokens", 30L)
        .containsEntry("completion_tokens", 40L);
    assertThat(streamed.quotaRemaining()).containsEntry("tokens_per_day", 30L);

    // What is left now bounds the next request's max_tokens...
    try (Response r = post(chat("too much", "\"max_tokens\":31"))) {
      assertThat(r.code()).isEqualTo(429);
      assertThat(r.header("Retry-After")).isEqualTo(SECONDS_TO_MIDNIGHT);
      assertThat(MAPPER.readTree(r.body().string()).path("error").path("code").asText())
          .isEqualTo("quota_exceeded");
    }
    assertThat(server.getRequestCount()).isEqualTo(1);

    // ...and once a second stream spends it, the next request is refused outright.
    server.enqueue(
        sse(
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20}}\n\n"
                + "data: [DONE]\n\n"));
    try (Response r = post(chat("the rest", "\"stream\":true,\"max_tokens\":30"))) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    assertThat(last().quotaRemaining()).containsEntry("tokens_per_day", 0L);
    try (Response r = post(chat("one more", ""))) {
      assertThat(r.code()).isEqualTo(429);
      assertThat(MAPPER.readTree(r.body().string()).path("error").path("message").asText())
          .contains("used up");
    }
    assertThat(server.getRequestCount()).isEqualTo(2);
  }

  @Test
  void streamedAnswerWithoutUsageIsChargedByTheBytesEstimate() throws Exception {
    start(
        """
          - groups: ["*"]
            tokens-per-day: 1000
        """);
    String events =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Once upon a time\"}}]}\n\n"
            + "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            + "data: [DONE]\n\n";
    server.enqueue(sse(events));
    String body = chat("a story", "\"stream\":true");
    long estimate =
        ceilQuarter(body.getBytes(StandardCharsets.UTF_8).length)
            + ceilQuarter(events.getBytes(StandardCharsets.UTF_8).length);

    try (Response r = post(body)) {
      assertThat(r.body().string()).isEqualTo(events);
    }
    SessionRecord first = last();
    assertThat(first.response().usage()).isEmpty();
    assertThat(first.quotaRemaining()).containsEntry("tokens_per_day", 1000 - estimate);

    // A long stream without usage takes the budget past its bound; the next request is refused.
    server.enqueue(
        sse(
            "data: {\"choices\":[{\"delta\":{\"content\":\""
                + "y".repeat(4000)
                + "\"}}]}\n\n"
                + "data: [DONE]\n\n"));
    try (Response r = post(chat("a long story", "\"stream\":true"))) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    assertThat(last().quotaRemaining()).containsEntry("tokens_per_day", 0L);
    try (Response r = post(chat("again", "\"stream\":true"))) {
      assertThat(r.code()).isEqualTo(429);
      assertThat(r.header("Retry-After")).isEqualTo(SECONDS_TO_MIDNIGHT);
    }
    assertThat(server.getRequestCount()).isEqualTo(2);
    assertThat(last().decision().rule()).isEqualTo("limits[0].tokens-per-day");
  }

  // ---------------------------------------------------------------------------------------------

  private Response post(String body) throws IOException {
    Request request =
        new Request.Builder()
            .url(server.url("/v1/chat/completions"))
            .header("Authorization", "Bearer " + ALICE)
            .post(RequestBody.create(body, JSON))
            .build();
    return client.newCall(request).execute();
  }

  /** The last exchange recorded; the interceptor records when the caller finishes the body. */
  private SessionRecord last() {
    assertThat(recorder.records).isNotEmpty();
    return recorder.records.get(recorder.records.size() - 1);
  }

  private static String chat(String prompt, String extraFields) {
    return "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\""
        + prompt
        + "\"}]"
        + (extraFields.isEmpty() ? "" : "," + extraFields)
        + "}";
  }

  private static MockResponse json(String body) {
    return new MockResponse.Builder()
        .code(200)
        .addHeader("Content-Type", "application/json")
        .body(body)
        .build();
  }

  private static MockResponse sse(String events) {
    return new MockResponse.Builder()
        .code(200)
        .addHeader("Content-Type", "text/event-stream")
        .body(events)
        .build();
  }

  private static long ceilQuarter(long bytes) {
    return (bytes + 3) / 4;
  }
}
