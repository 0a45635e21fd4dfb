package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.CI_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The gateway in process, in front of MockWebServer, driven by a plain OkHttp client. */
class GatewayTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private MockWebServer upstream;
  private Gateway gateway;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    gateway = Gateway.start(TestPolicies.engine(records::add), upstream.url("/"), "127.0.0.1", 0);
    client = new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10)).build();
  }

  @AfterEach
  void tearDown() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    gateway.close();
    upstream.close();
  }

  @Test
  void aRequestJettyRefusesItselfGetsTheJsonErrorShapeNotAnHtmlPage() throws Exception {
    Request huge =
        new Request.Builder()
            .url(gateway.uri() + "/v1/models")
            .header("X-Padding", "x".repeat(64 * 1024))
            .build();
    try (Response r = client.newCall(huge).execute()) {
      assertThat(r.code()).isEqualTo(431);
      assertThat(r.header("Content-Type")).startsWith("application/json");
      JsonNode error = JSON.readTree(r.body().string()).path("error");
      assertThat(error.path("type").asText()).isEqualTo("pam_error");
      assertThat(error.path("code").asText()).isEqualTo("request_too_large");
      assertThat(error.path("message").asText()).isEqualTo("request header fields too large");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void listensOnTheChosenFreePort() {
    assertThat(gateway.port()).isPositive();
    assertThat(gateway.uri()).hasToString("http://127.0.0.1:" + gateway.port());
  }

  @Test
  void allowedChatReachesUpstreamWithUpstreamCredentialInsteadOfCallersKey() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Content-Type", "application/json")
            .addHeader("X-Model-Server", "mock")
            .body("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello\"}}]}")
            .build());
    // Odd spacing, key order and non-ASCII: the upstream must get these exact bytes.
    String body =
        "{ \"messages\":[{\"role\":\"user\",\"content\":\"grüß dich \\u00e9\"}],   \"model\":\"llama-3.1-8b\"}\n";

    Request request =
        new Request.Builder()
            .url(
                gatewayUrl("/v1/chat/completions")
                    .newBuilder()
                    .encodedQuery("api-version=2024-10-01&x=a%20b")
                    .build())
            .header("Authorization", "Bearer " + ALICE_KEY)
            .header("X-Request-Id", "notebook-7")
            .post(RequestBody.create(body.getBytes(StandardCharsets.UTF_8), JSON_TYPE))
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.header("X-Model-Server")).isEqualTo("mock");
      assertThat(response.body().string()).contains("\"content\":\"hello\"");
    }

    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen).isNotNull();
    assertThat(seen.getMethod()).isEqualTo("POST");
    assertThat(seen.getTarget()).isEqualTo("/v1/chat/completions?api-version=2024-10-01&x=a%20b");
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
    assertThat(seen.getHeaders().toMultimap().toString()).doesNotContain(ALICE_KEY);
    assertThat(seen.getHeaders().get("X-Request-Id")).isEqualTo("notebook-7");
    assertThat(seen.getHeaders().get("Content-Type")).startsWith("application/json");
    assertThat(seen.getBody().toByteArray()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void callerKeyInXApiKeyIsNotForwardedEither() throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    Request request =
        new Request.Builder()
            .url(gatewayUrl("/v1/chat/completions"))
            .header("X-Api-Key", CI_KEY)
            .post(RequestBody.create(chat("llama-3.1-8b", ""), JSON_TYPE))
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(200);
    }
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().get("X-Api-Key")).isNull();
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
  }

  @Test
  void allowRuleLetsModelListThroughWithUpstreamCredential() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder().code(200).body("{\"object\":\"list\",\"data\":[]}").build());
    Request request =
        new Request.Builder()
            .url(gatewayUrl("/v1/models"))
            .header("Authorization", "Bearer " + CI_KEY)
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.body().string()).isEqualTo("{\"object\":\"list\",\"data\":[]}");
    }
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getMethod()).isEqualTo("GET");
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
  }

  @Test
  void upstreamErrorStatusIsPassedThrough() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(503)
            .addHeader("Retry-After", "7")
            .body("{\"error\":\"overloaded\"}")
            .build());
    try (Response response =
        client.newCall(chatRequest(ALICE_KEY, chat("llama-3.1-8b", ""))).execute()) {
      assertThat(response.code()).isEqualTo(503);
      assertThat(response.header("Retry-After")).isEqualTo("7");
      assertThat(response.body().string()).isEqualTo("{\"error\":\"overloaded\"}");
    }
  }

  @Test
  void missingCredentialIs401AndNeverReachesUpstream() throws Exception {
    try (Response response =
        client.newCall(chatRequest(null, chat("llama-3.1-8b", ""))).execute()) {
      assertThat(response.code()).isEqualTo(401);
      assertThat(response.header("WWW-Authenticate")).startsWith("Bearer");
      assertError(response, "unauthenticated");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void blockedModelPullIs403AndNeverReachesUpstream() throws Exception {
    Request request =
        new Request.Builder()
            .url(gatewayUrl("/api/pull"))
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(RequestBody.create("{\"model\":\"llama3.1:405b\"}", JSON_TYPE))
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(403);
      assertError(response, "blocked");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void modelOutsideEntitlementIs403AndNeverReachesUpstream() throws Exception {
    try (Response response =
        client.newCall(chatRequest(CI_KEY, chat("gpt-4o-mini", ""))).execute()) {
      assertThat(response.code()).isEqualTo(403);
      assertError(response, "not_entitled");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void deniedParameterIs403AndNeverReachesUpstream() throws Exception {
    try (Response response =
        client
            .newCall(chatRequest(ALICE_KEY, chat("llama-3.1-8b", "\"logprobs\":true")))
            .execute()) {
      assertThat(response.code()).isEqualTo(403);
      assertError(response, "parameter_denied");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void deniedRequestsAreRecorded() throws Exception {
    try (Response response =
        client.newCall(chatRequest(CI_KEY, chat("gpt-4o-mini", ""))).execute()) {
      assertThat(response.code()).isEqualTo(403);
    }
    SessionRecord record = records.poll(5, TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.decision().code()).isEqualTo("not_entitled");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/v1/chat%2Fcompletions",
        "//v1/chat/completions",
        "/v1/chat/completions;x=1",
        "/v1/./chat/completions",
        "/x/../v1/chat/completions",
        "/v1/%2e/chat/completions",
        "/v1/chat/completions/",
        "/api/pu%6cl%5c",
        "/v1/chat%25completions",
      })
  void ambiguousPathsReachTheFilterAndAreRefusedWithJson(String target) throws Exception {
    String body = chat("llama-3.1-8b", "");
    String raw =
        "POST "
            + target
            + " HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\n"
            + "Authorization: Bearer "
            + ALICE_KEY
            + "\r\n"
            + "Content-Type: application/json\r\n"
            + "Content-Length: "
            + body.getBytes(StandardCharsets.UTF_8).length
            + "\r\n"
            + "Connection: close\r\n\r\n"
            + body;
    String answer = rawExchange(raw);
    assertThat(answer).startsWith("HTTP/1.1 400 ");
    assertThat(answer).contains("\"code\":\"bad_path\"");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void unreachableUpstreamIs502WithJsonErrorAndNoDetails() throws Exception {
    MockWebServer gone = new MockWebServer();
    gone.start(InetAddress.getLoopbackAddress(), 0);
    HttpUrl goneUrl = gone.url("/").newBuilder().host("127.0.0.1").build();
    gone.close();
    try (Gateway toNowhere = Gateway.start(TestPolicies.engine(r -> {}), goneUrl, "127.0.0.1", 0)) {
      Request request =
          chatRequest(ALICE_KEY, chat("llama-3.1-8b", ""))
              .newBuilder()
              .url(
                  HttpUrl.get(toNowhere.uri())
                      .newBuilder()
                      .encodedPath("/v1/chat/completions")
                      .build())
              .build();
      try (Response response = client.newCall(request).execute()) {
        assertThat(response.code()).isEqualTo(502);
        assertThat(response.header("Content-Type")).startsWith("application/json");
        String text = response.body().string();
        JsonNode error = JSON.readTree(text).path("error");
        assertThat(error.path("type").asText()).isEqualTo("pam_error");
        assertThat(error.path("code").asText()).isEqualTo("upstream_unavailable");
        assertThat(error.path("request_id").asText()).isNotBlank();
        assertThat(text)
            .doesNotContain(String.valueOf(goneUrl.port()))
            .doesNotContain("upstream-secret")
            .doesNotContain("Exception")
            .doesNotContain("at dev.");
      }
    }
  }

  /**
   * {@code request.error-shape: native}: Ollama's clients read {@code "error"} as a string, so on
   * {@code /api/...} the gateway's refusals and its own errors carry the message there and the
   * code beside it, on both fronts; OpenAI paths keep the common shape.
   */
  @ParameterizedTest
  @org.junit.jupiter.params.provider.EnumSource(Gateway.Server.class)
  void nativeErrorShapeGivesOllamaPathsAStringError(Gateway.Server server) throws Exception {
    MockWebServer gone = new MockWebServer();
    gone.start(InetAddress.getLoopbackAddress(), 0);
    HttpUrl goneUrl = gone.url("/").newBuilder().host("127.0.0.1").build();
    gone.close();
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY + "request:\n  error-shape: native\n"))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(r -> {})
            .givenPartsNeverWait()
            .build();
    try (Gateway gw =
        Gateway.start(engine, goneUrl, "127.0.0.1", 0, Gateway.DEFAULT_MAX_THREADS, server)) {
      HttpUrl base = HttpUrl.get(gw.uri());
      JsonNode down = errorAt(base, "/api/chat", chat("llama-3.1-8b", ""), 502);
      assertThat(down.path("error").asText()).isEqualTo("the upstream model server is unavailable");
      assertThat(down.path("code").asText()).isEqualTo("upstream_unavailable");
      assertThat(down.path("type").asText()).isEqualTo("pam_error");
      assertThat(down.path("request_id").asText()).isNotBlank();

      JsonNode blocked = errorAt(base, "/api/pull", "{\"model\":\"llama-3.1-8b\"}", 403);
      assertThat(blocked.path("error").isTextual()).isTrue();
      assertThat(blocked.path("code").asText()).isEqualTo("blocked");

      JsonNode openai =
          errorAt(base, "/v1/chat/completions", chat("llama-3.1-8b", "\"logprobs\": true"), 403);
      assertThat(openai.path("error").path("code").asText()).isEqualTo("parameter_denied");
    }
  }

  private JsonNode errorAt(HttpUrl base, String path, String body, int status) throws IOException {
    Request request =
        chatRequest(ALICE_KEY, body)
            .newBuilder()
            .url(base.newBuilder().encodedPath(path).build())
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).as(path).isEqualTo(status);
      assertThat(response.header("Content-Type")).startsWith("application/json");
      return JSON.readTree(response.body().string());
    }
  }

  @Test
  void closeIsIdempotentAndClosesTheEngine() throws Exception {
    // The engine flushes a recorder it was given (it closes only what it built itself).
    AtomicBoolean flushed = new AtomicBoolean();
    AtomicBoolean closed = new AtomicBoolean();
    Recorder recorder =
        new Recorder() {
          @Override
          public void record(SessionRecord record) {}

          @Override
          public void flush() {
            flushed.set(true);
          }

          @Override
          public void close() {
            closed.set(true);
          }
        };
    Gateway other = Gateway.start(TestPolicies.engine(recorder), upstream.url("/"), "127.0.0.1", 0);
    other.close();
    assertThat(flushed).isTrue();
    assertThat(closed).as("a given recorder is the caller's to close").isFalse();
    flushed.set(false);
    other.close();
    assertThat(flushed).isFalse();
  }

  private HttpUrl gatewayUrl(String path) {
    return HttpUrl.get(gateway.uri()).newBuilder().encodedPath(path).build();
  }

  private Request chatRequest(String key, String json) {
    Request.Builder b =
        new Request.Builder()
            .url(gatewayUrl("/v1/chat/completions"))
            .post(RequestBody.create(json, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return b.build();
  }

  private static void assertError(Response response, String code) throws IOException {
    JsonNode error = JSON.readTree(response.body().string()).path("error");
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo(code);
    assertThat(error.path("request_id").asText()).isNotBlank();
  }

  /** Sends bytes exactly as given (OkHttp would normalise the path) and reads to the end. */
  private String rawExchange(String raw) throws IOException {
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(raw.getBytes(StandardCharsets.UTF_8));
      out.flush();
      InputStream in = socket.getInputStream();
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }
}
