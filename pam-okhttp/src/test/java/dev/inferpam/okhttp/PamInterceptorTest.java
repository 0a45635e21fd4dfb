package dev.inferpam.okhttp;

import static dev.inferpam.testsupport.Policies.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PamInterceptorTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-28T12:00:00Z"), ZoneOffset.UTC);

  static final String ALICE = "alice-key-0001";
  static final String CI = "ci-key-0002";
  static final String RESEARCHER = "research-key-0003";
  static final String OLD = "old-key-0004";

  @StartStop final MockWebServer server = new MockWebServer();

  final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  OkHttpClient client;

  static String policy(String extra) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
            - {name: ci-bot, sha256: %s, groups: [ci]}
            - {name: researcher, sha256: %s, groups: [ml-research]}
            - {name: old, sha256: %s, groups: [ml-engineers], expires: "2026-01-01T00:00:00Z"}
        entitlements:
          - groups: [ml-engineers, ml-research]
            models: ["llama-3.1-*"]
            operations: [chat, completion, embedding]
          - groups: [ci]
            models: ["llama-3.1-8b"]
            operations: [chat]
        allow:
          - groups: ["*"]
            methods: [GET]
            paths: ["/v1/models"]
        block:
          presets: [ollama-admin]
        parameters:
          deny: [logprobs, logit_bias]
          max: {max_tokens: 4096}
          exempt-groups: [ml-research]
        """
            .formatted(sha256(ALICE), sha256(CI), sha256(RESEARCHER), sha256(OLD))
        + extra;
  }

  PamEngine engine(String policyText, CredentialProvider credentials) {
    Recorder recorder = records::add;
    return PamEngine.builder()
        .policy(Policy.parse(policyText))
        .clock(CLOCK)
        .credentialProvider(credentials)
        .recorder(recorder)
        .build();
  }

  @BeforeEach
  void setUp() {
    client =
        clientFor(
            engine(policy(""), () -> new Credential("Authorization", "Bearer upstream-secret")));
  }

  OkHttpClient clientFor(PamEngine engine) {
    return PamInterceptor.of(engine)
        .install(new OkHttpClient.Builder())
        .readTimeout(10, TimeUnit.SECONDS)
        .build();
  }

  Response post(String path, String key, String body) throws IOException {
    Request.Builder b =
        new Request.Builder().url(server.url(path)).post(RequestBody.create(body, JSON));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return client.newCall(b.build()).execute();
  }

  static String chat(String model, String extra) {
    return "{\"model\":\""
        + model
        + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
        + extra
        + "}";
  }

  static JsonNode error(Response r) throws IOException {
    JsonNode n = MAPPER.readTree(r.body().string());
    return n.get("error");
  }

  @Test
  void allowedRequestReachesServerWithUpstreamCredentialOnly() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{\"id\":\"x\"}").build());
    String body = chat("llama-3.1-8b", "");
    Request request =
        new Request.Builder()
            .url(server.url("/v1/chat/completions"))
            .header("X-Api-Key", ALICE)
            .post(RequestBody.create(body, JSON))
            .build();
    try (Response r = client.newCall(request).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo("{\"id\":\"x\"}");
    }
    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo("Bearer upstream-secret");
    assertThat(seen.getHeaders().get("X-Api-Key")).isNull();
    assertThat(seen.getBody().utf8()).isEqualTo(body);
    assertThat(records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.decision().outcome()).isEqualTo("allow");
              assertThat(rec.decision().rule()).isEqualTo("entitlements[0]");
              assertThat(rec.principal().subject()).isEqualTo("alice");
              assertThat(rec.response().status()).isEqualTo(200);
              assertThat(rec.response().complete()).isTrue();
              assertThat(rec.response().body()).isEqualTo("{\"id\":\"x\"}");
              assertThat(rec.request().headers().get("x-api-key")).containsExactly("[REDACTED]");
              assertThat(rec.toString()).doesNotContain(ALICE).doesNotContain("upstream-secret");
            });
  }

  @Test
  void callerNeverSeesTheUpstreamCredentialThroughTheResponse() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Response r = post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.request().header("Authorization")).isEqualTo("Bearer " + ALICE);
      assertThat(r.networkResponse()).isNull();
      assertThat(r.priorResponse()).isNull();
    }
    assertThat(server.takeRequest().getHeaders().get("Authorization"))
        .isEqualTo("Bearer upstream-secret");
  }

  @Test
  void missingCredentialIs401WithChallengeAndNeverReachesServer() throws Exception {
    try (Response r = post("/v1/chat/completions", null, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate")).startsWith("Bearer error=\"invalid_token\"");
      JsonNode e = error(r);
      assertThat(e.get("type").asText()).isEqualTo("pam_error");
      assertThat(e.get("code").asText()).isEqualTo("unauthenticated");
      assertThat(e.get("request_id").asText()).hasSize(26);
    }
    assertThat(server.getRequestCount()).isZero();
    assertThat(records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.decision().outcome()).isEqualTo("deny");
              assertThat(rec.decision().code()).isEqualTo("unauthenticated");
              assertThat(rec.response().status()).isEqualTo(401);
            });
  }

  @ParameterizedTest(name = "{0} {1} -> {3} {4}")
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/chat/completions | unknown-key | llama-3.1-8b |401| unauthenticated",
        "/v1/chat/completions | " + OLD + " | llama-3.1-8b |401| unauthenticated",
        "/v1/chat/completions | " + CI + " | llama-3.1-70b |403| not_entitled",
        "/v1/embeddings | " + CI + " | llama-3.1-8b |403| not_entitled",
        "/v1/chat/completions | " + ALICE + " | gpt-4o |403| not_entitled",
        "/api/pull | " + ALICE + " | llama-3.1-8b |403| blocked",
        "/api/%70ull | " + ALICE + " | llama-3.1-8b |403| blocked",
        "/v1/unknown | " + ALICE + " | llama-3.1-8b |403| not_allowed",
        "/API/PULL | " + ALICE + " | llama-3.1-8b |403| not_allowed",
        "/api/pull;x=1 | " + ALICE + " | llama-3.1-8b |400| bad_path",
        "/api%2fpull | " + ALICE + " | llama-3.1-8b |400| bad_path",
        "/api%2Fpull | " + ALICE + " | llama-3.1-8b |400| bad_path",
        "/api/pull%00 | " + ALICE + " | llama-3.1-8b |400| bad_path",
        "/api/pull/ | " + ALICE + " | llama-3.1-8b |400| bad_path",
      })
  void deniedRequestsGetTheirCodeAndNeverReachTheServer(
      String path, String key, String model, int status, String code) throws Exception {
    try (Response r = post(path, key, chat(model, ""))) {
      assertThat(r.code()).isEqualTo(status);
      assertThat(error(r).get("code").asText()).isEqualTo(code);
    }
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void expiredKeySaysSo() throws Exception {
    try (Response r = post("/v1/chat/completions", OLD, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate")).contains("expired");
      assertThat(r.header("WWW-Authenticate")).doesNotContain(OLD);
    }
  }

  @Test
  void deniedParameterIsNamed() throws Exception {
    try (Response r =
        post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", ",\"logprobs\":true"))) {
      assertThat(r.code()).isEqualTo(403);
      JsonNode e = error(r);
      assertThat(e.get("code").asText()).isEqualTo("parameter_denied");
      assertThat(e.get("message").asText()).contains("logprobs");
    }
    try (Response r =
        post(
            "/v1/chat/completions",
            ALICE,
            chat("llama-3.1-8b", ",\"max_completion_tokens\":9000"))) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("message").asText())
          .contains("max_completion_tokens")
          .contains("4096");
    }
    // a nested spelling (Ollama's options.num_predict) and a denied parameter under options
    try (Response r =
        post(
            "/v1/chat/completions",
            ALICE,
            chat("llama-3.1-8b", ",\"options\":{\"num_predict\":9000}"))) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("message").asText()).contains("options.num_predict").contains("4096");
    }
    try (Response r =
        post(
            "/v1/chat/completions",
            ALICE,
            chat("llama-3.1-8b", ",\"options\":{\"logprobs\":true}"))) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("message").asText()).contains("logprobs");
    }
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void exemptGroupMayUseDeniedParameters() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Response r =
        post(
            "/v1/chat/completions",
            RESEARCHER,
            chat("llama-3.1-8b", ",\"logprobs\":true,\"max_tokens\":9000"))) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(server.getRequestCount()).isEqualTo(1);
  }

  @Test
  void malformedJsonIs400() throws Exception {
    try (Response r = post("/v1/chat/completions", ALICE, "{\"model\":")) {
      assertThat(r.code()).isEqualTo(400);
      assertThat(error(r).get("code").asText()).isEqualTo("bad_request");
    }
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void aGzipBodyIsCheckedDecodedAndForwardedDecoded() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    String body = chat("llama-3.1-8b", "");
    try (Response r =
        client
            .newCall(
                new Request.Builder()
                    .url(server.url("/v1/chat/completions"))
                    .header("Authorization", "Bearer " + ALICE)
                    .header("Content-Encoding", "gzip")
                    .post(RequestBody.create(gzip(body), JSON))
                    .build())
            .execute()) {
      assertThat(r.code()).isEqualTo(200);
    }
    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getBody().utf8()).isEqualTo(body);
    assertThat(seen.getHeaders().get("Content-Encoding")).isNull();
    assertThat(seen.getHeaders().get("Content-Length")).isEqualTo(Integer.toString(body.length()));

    // Compressed or not, a denied parameter is refused, and an encoding it cannot read is 415.
    try (Response r =
        client
            .newCall(
                new Request.Builder()
                    .url(server.url("/v1/chat/completions"))
                    .header("Authorization", "Bearer " + ALICE)
                    .header("Content-Encoding", "gzip")
                    .post(
                        RequestBody.create(gzip(chat("llama-3.1-8b", ",\"logprobs\":true")), JSON))
                    .build())
            .execute()) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("code").asText()).isEqualTo("parameter_denied");
    }
    try (Response r =
        client
            .newCall(
                new Request.Builder()
                    .url(server.url("/v1/chat/completions"))
                    .header("Authorization", "Bearer " + ALICE)
                    .header("Content-Encoding", "br")
                    .post(RequestBody.create(body, JSON))
                    .build())
            .execute()) {
      assertThat(r.code()).isEqualTo(415);
      assertThat(error(r).get("code").asText()).isEqualTo("unsupported_encoding");
    }
    assertThat(server.getRequestCount()).isEqualTo(1);
  }

  static byte[] gzip(String text) throws IOException {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    try (java.util.zip.GZIPOutputStream gz = new java.util.zip.GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  @Test
  void oversizedBodyIs413WithoutReadingItAll() throws Exception {
    client = clientFor(engine(policy("request: {max-body: 1KiB}\n"), CredentialProvider.NONE));
    try (Response r =
        post(
            "/v1/chat/completions",
            ALICE,
            chat("llama-3.1-8b", ",\"pad\":\"" + "x".repeat(2000) + "\""))) {
      assertThat(r.code()).isEqualTo(413);
      assertThat(error(r).get("code").asText()).isEqualTo("body_too_large");
    }
    // A body of unknown length that never ends: only limit + 1 bytes are ever pulled from it.
    long[] written = {0};
    RequestBody endless =
        new RequestBody() {
          @Override
          public MediaType contentType() {
            return JSON;
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            byte[] chunk = new byte[256];
            for (int i = 0; i < 1_000_000; i++) {
              sink.write(chunk);
              written[0] += chunk.length;
            }
          }
        };
    Request request =
        new Request.Builder()
            .url(server.url("/v1/chat/completions"))
            .header("Authorization", "Bearer " + ALICE)
            .post(endless)
            .build();
    try (Response r = client.newCall(request).execute()) {
      assertThat(r.code()).isEqualTo(413);
    }
    assertThat(written[0]).isLessThan(64 * 1024);
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void allowRuleLetsNonInferencePathThrough() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{\"data\":[]}").build());
    Request request =
        new Request.Builder()
            .url(server.url("/v1/models"))
            .header("Authorization", "Bearer " + CI)
            .build();
    try (Response r = client.newCall(request).execute()) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(server.takeRequest().getHeaders().get("Authorization"))
        .isEqualTo("Bearer upstream-secret");
  }

  @Test
  void tokenSupplierAddsTheCallersCredential() throws Exception {
    PamEngine engine =
        engine(policy(""), () -> new Credential("Authorization", "Bearer upstream-secret"));
    client =
        PamInterceptor.withTokenSupplier(engine, () -> ALICE)
            .install(new OkHttpClient.Builder())
            .build();
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Response r =
        client
            .newCall(
                new Request.Builder()
                    .url(server.url("/v1/chat/completions"))
                    .post(RequestBody.create(chat("llama-3.1-8b", ""), JSON))
                    .build())
            .execute()) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(server.takeRequest().getHeaders().get("Authorization"))
        .isEqualTo("Bearer upstream-secret");
  }

  @Test
  void missingUpstreamCredentialRefusesRatherThanForwardingBare() throws Exception {
    client =
        clientFor(
            engine(
                policy(""),
                () -> {
                  throw new CredentialProvider.CredentialUnavailableException(
                      "environment variable X is not set");
                }));
    try (Response r = post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(503);
      assertThat(error(r).get("code").asText()).isEqualTo("upstream_credential_unavailable");
    }
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void streamedResponsePassesThroughAndIsRecordedWhenRead() throws Exception {
    String sse =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
            + "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n";
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "text/event-stream")
            .chunkedBody(sse, 16)
            .build());
    try (Response r =
        post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", ",\"stream\":true"))) {
      assertThat(records).isEmpty();
      assertThat(r.body().string()).isEqualTo(sse);
    }
    assertThat(records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.response().streamed()).isTrue();
              assertThat(rec.response().complete()).isTrue();
              assertThat(rec.response().body()).isEqualTo(sse);
              assertThat(rec.response().bytes()).isEqualTo(sse.length());
            });
  }

  @Test
  void responseClosedEarlyIsRecordedIncomplete() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("x".repeat(100_000)).build());
    try (Response r = post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", ""))) {
      r.body().source().require(10);
    }
    assertThat(records)
        .singleElement()
        .satisfies(rec -> assertThat(rec.response().complete()).isFalse());
  }

  @Test
  void deadUpstreamIsAnIOExceptionAndARecord() throws Exception {
    server.close();
    assertThatThrownBy(() -> post("/v1/chat/completions", ALICE, chat("llama-3.1-8b", "")))
        .isInstanceOf(IOException.class);
    assertThat(records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.decision().outcome()).isEqualTo("allow");
              assertThat(rec.response().complete()).isFalse();
            });
  }
}
