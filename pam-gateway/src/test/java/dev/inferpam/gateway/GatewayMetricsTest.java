package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.micrometer.PamMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /pam/metrics}: the engine's meters ({@link PamMetrics}) in Prometheus's text format,
 * for authenticated callers, after real calls through the gateway; and a caller's
 * {@code traceparent} reaching the upstream as it was sent. Runs on both fronts.
 */
class GatewayMetricsTest {
  private static final MediaType JSON = MediaType.get("application/json");
  private static final String TRACEPARENT =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private MockWebServer upstream;
  private Gateway gateway;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY + "masking:\n  detectors: [email]\n"))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .givenPartsNeverWait()
            .eventListener(PamMetrics.bindTo(registry))
            .build();
    gateway =
        Gateway.start(
            engine,
            upstream.url("/"),
            "127.0.0.1",
            0,
            Gateway.DEFAULT_MAX_THREADS,
            registry::scrape);
    client = new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10)).build();
  }

  @AfterEach
  void tearDown() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    gateway.close();
    upstream.close();
  }

  private Response chat(String key, String extra, String... headers) throws IOException {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
            + extra
            + "}";
    Request.Builder request =
        new Request.Builder()
            .url(gateway.uri() + "/v1/chat/completions")
            .post(RequestBody.create(body, JSON));
    if (key != null) request.header("Authorization", "Bearer " + key);
    for (int i = 0; i < headers.length; i += 2) request.header(headers[i], headers[i + 1]);
    return client.newCall(request.build()).execute();
  }

  private void answer(String content) {
    upstream.enqueue(
        new MockResponse.Builder()
            .addHeader("Content-Type", "application/json")
            .body("{\"choices\":[{\"message\":{\"content\":\"" + content + "\"}}]}")
            .build());
  }

  private Response metrics(String key) throws IOException {
    Request.Builder request = new Request.Builder().url(gateway.uri() + "/pam/metrics");
    if (key != null) request.header("Authorization", "Bearer " + key);
    return client.newCall(request.build()).execute();
  }

  private String scrape() throws IOException {
    try (Response r = metrics(ALICE_KEY)) {
      assertThat(r.code()).isEqualTo(200);
      return r.body().string();
    }
  }

  @Test
  void metricsShowTheDecisionsMadeThroughTheGateway() throws Exception {
    answer("write to jane.doe@example.com");
    answer("hello");
    try (Response r = chat(ALICE_KEY, "")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).doesNotContain("jane.doe@example.com");
    }
    try (Response r = chat(ALICE_KEY, "")) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    try (Response r = chat(ALICE_KEY, ",\"logprobs\":true")) {
      assertThat(r.code()).isEqualTo(403);
    }
    try (Response r = chat(null, "")) {
      assertThat(r.code()).isEqualTo(401);
    }

    try (Response r = metrics(ALICE_KEY)) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Type")).startsWith("text/plain");
      assertThat(r.header("Cache-Control")).isEqualTo("no-store");
      String text = r.body().string();
      assertThat(text)
          .contains(
              "inferpam_decisions_total{code=\"none\",operation=\"chat\",outcome=\"allow\"} 2.0")
          .contains(
              "inferpam_decisions_total{code=\"parameter_denied\",operation=\"chat\",outcome=\"deny\"} 1.0")
          .contains(
              "inferpam_decisions_total{code=\"unauthenticated\",operation=\"none\",outcome=\"deny\"} 1.0")
          .contains("inferpam_decision_duration_seconds_count{operation=\"chat\"} 2")
          .contains("inferpam_first_byte_seconds_count{operation=\"chat\"} 2")
          .doesNotContain("alice")
          .doesNotContain(ALICE_KEY);
    }
    // counted when each exchange ends, which may come just after its client read the answer
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(scrape())
                    .contains("inferpam_masked_values_total{detector=\"email\"} 1.0")
                    .contains("inferpam_exchanges_ended_total{complete=\"true\"} 4.0"));
    assertThat(scrape())
        .as("reading the metrics decides nothing")
        .contains(
            "inferpam_decisions_total{code=\"none\",operation=\"chat\",outcome=\"allow\"} 2.0");
  }

  @Test
  void metricsNeedAnAuthenticatedCallerAndGetOrHead() throws Exception {
    try (Response r = metrics(null)) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate")).startsWith("Bearer");
      assertThat(r.body().string()).contains("\"code\":\"unauthenticated\"");
    }
    try (Response r = metrics("not-a-key-0123456789")) {
      assertThat(r.code()).isEqualTo(401);
    }
    Request post =
        new Request.Builder()
            .url(gateway.uri() + "/pam/metrics")
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(RequestBody.create("", JSON))
            .build();
    try (Response r = client.newCall(post).execute()) {
      assertThat(r.code()).isEqualTo(405);
      assertThat(r.header("Allow")).isEqualTo("GET, HEAD");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void theCallersTraceContextReachesTheUpstream() throws Exception {
    answer("hello");
    try (Response r =
        chat(
            ALICE_KEY,
            "",
            "traceparent",
            TRACEPARENT,
            "tracestate",
            "vendor=opaque",
            "baggage",
            "tenant=blue")) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen).isNotNull();
    assertThat(seen.getHeaders().get("traceparent")).isEqualTo(TRACEPARENT);
    assertThat(seen.getHeaders().get("tracestate")).isEqualTo("vendor=opaque");
    assertThat(seen.getHeaders().get("baggage")).isEqualTo("tenant=blue");
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(UPSTREAM_AUTHORIZATION);
  }
}
