package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.CI_KEY;
import static dev.inferpam.servlet.TestPolicy.EXPIRED_KEY;
import static dev.inferpam.servlet.TestPolicy.RESEARCH_KEY;
import static dev.inferpam.servlet.TestPolicy.chat;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.Verdict;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link PamFilter} in a real Jetty, called by a real OkHttp client. */
class PamFilterTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");

  private static TestServer server;
  private static OkHttpClient client;

  @BeforeAll
  static void start() throws Exception {
    server = new TestServer(false);
    client =
        new OkHttpClient.Builder()
            .readTimeout(Duration.ofSeconds(10))
            .retryOnConnectionFailure(false)
            .build();
  }

  @AfterAll
  static void stop() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    server.close();
  }

  @BeforeEach
  void reset() {
    server.seen.clear();
    server.records.clear();
    server.invocations.set(0);
  }

  /** The answer as a user sees it. */
  record Answer(int status, String body, Response response) {
    String header(String name) {
      return response.header(name);
    }
  }

  private static Answer call(Request request) throws IOException {
    try (Response response = client.newCall(request).execute()) {
      return new Answer(response.code(), response.body().string(), response);
    }
  }

  private static Request.Builder post(String path, String body) {
    return new Request.Builder()
        .url(server.url(path))
        .post(RequestBody.create(body.getBytes(StandardCharsets.UTF_8), JSON_TYPE));
  }

  private static Request.Builder postAs(String key, String path, String body) {
    return post(path, body).header("Authorization", "Bearer " + key);
  }

  /** Asserts the body is exactly the documented error shape and returns its {@code error}. */
  private static JsonNode error(Answer answer, int status, String code) throws IOException {
    assertThat(answer.status()).as(answer.body()).isEqualTo(status);
    assertThat(answer.header("Content-Type")).startsWith("application/json");
    JsonNode root = TestServer.JSON.readTree(answer.body());
    assertThat(fieldNames(root)).containsExactly("error");
    JsonNode error = root.get("error");
    assertThat(fieldNames(error))
        .containsExactlyInAnyOrder("type", "code", "message", "request_id");
    assertThat(error.get("type").asText()).isEqualTo("pam_error");
    assertThat(error.get("code").asText()).isEqualTo(code);
    assertThat(error.get("message").isTextual()).isTrue();
    assertThat(error.get("request_id").asText()).isNotBlank();
    assertThat(answer.body()).doesNotContain(CI_KEY, RESEARCH_KEY, EXPIRED_KEY, "upstream-secret");
    return error;
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new java.util.ArrayList<>();
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) names.add(it.next());
    return names;
  }

  private static void assertServletNotInvoked() {
    assertThat(server.invocations.get()).as("servlet invocations").isZero();
    assertThat(server.seen).isEmpty();
  }

  @Test
  void allowedChatReachesTheServletWithTheExactBodyAndWithoutTheCallersCredential()
      throws Exception {
    String body = chat("\"temperature\": 0.2 , \"user\":\"ünïcødé ✓\"");

    Answer answer = call(postAs(CI_KEY, "/v1/chat/completions", body).build());

    assertThat(answer.status()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.body()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
    assertThat(seen.contentLength()).isEqualTo(body.getBytes(StandardCharsets.UTF_8).length);
    assertThat(seen.authorization()).isNull();
    assertThat(TestServer.lower(seen.headerNames()))
        .doesNotContain("authorization", "x-api-key")
        .contains("content-type");
    assertThat(seen.exchange()).isInstanceOf(Verdict.Allowed.class);
    Verdict.Allowed exchange = (Verdict.Allowed) seen.exchange();
    assertThat(exchange.forward().setHeaders())
        .isEqualTo(Map.of("Authorization", TestPolicy.UPSTREAM_SECRET));
    assertThat(exchange.forward().setHeaders().toString())
        .doesNotContain(TestPolicy.UPSTREAM_SECRET);
    assertThat(exchange.principal().subject()).isEqualTo("nightly-ci");
    JsonNode echo = TestServer.JSON.readTree(answer.body());
    assertThat(echo.get("authorization").asBoolean()).isFalse();
    assertThat(echo.get("body").asText()).isEqualTo(body);

    SessionRecord record = server.awaitRecord(exchange.id());
    assertThat(record.decision().outcome()).isEqualTo("allow");
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().complete()).isTrue();
    assertThat(record.response().bytes())
        .isEqualTo(answer.body().getBytes(StandardCharsets.UTF_8).length);
    assertThat(record.response().body()).isEqualTo(answer.body());
  }

  @Test
  void aGzipBodyIsCheckedAndReplayedDecodedWithoutContentEncoding() throws Exception {
    String body = chat("");
    java.io.ByteArrayOutputStream gz = new java.io.ByteArrayOutputStream();
    try (java.util.zip.GZIPOutputStream out = new java.util.zip.GZIPOutputStream(gz)) {
      out.write(body.getBytes(StandardCharsets.UTF_8));
    }
    Answer answer =
        call(
            new Request.Builder()
                .url(server.url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + CI_KEY)
                .header("Content-Encoding", "gzip")
                .post(RequestBody.create(gz.toByteArray(), JSON_TYPE))
                .build());

    assertThat(answer.status()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.body()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
    assertThat(seen.contentLength()).isEqualTo(body.getBytes(StandardCharsets.UTF_8).length);
    assertThat(TestServer.lower(seen.headerNames())).doesNotContain("content-encoding");
    assertThat(TestServer.JSON.readTree(answer.body()).get("body").asText()).isEqualTo(body);

    Answer refused =
        call(
            new Request.Builder()
                .url(server.url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + CI_KEY)
                .header("Content-Encoding", "br")
                .post(RequestBody.create(gz.toByteArray(), JSON_TYPE))
                .build());
    error(refused, 415, "unsupported_encoding");
    assertThat(server.seen).isEmpty();
  }

  @Test
  void apiKeyHeaderIsHiddenFromTheApplicationToo() throws Exception {
    Answer answer =
        call(post("/v1/chat/completions", chat("")).header("X-Api-Key", CI_KEY).build());

    assertThat(answer.status()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.apiKey()).isNull();
    assertThat(TestServer.lower(seen.headerNames())).doesNotContain("x-api-key", "authorization");
  }

  @Test
  void readerReplaysTheSameBody() throws Exception {
    String body = chat("\"user\":\"✓ reader\"");

    Answer answer =
        call(postAs(CI_KEY, "/v1/chat/completions", body).header("X-Read-With", "reader").build());

    assertThat(answer.status()).isEqualTo(200);
    assertThat(server.nextSeen().body()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void refusesARequestWithoutCredential() throws Exception {
    Answer answer = call(post("/v1/chat/completions", chat("")).build());

    JsonNode error = error(answer, 401, "unauthenticated");
    assertThat(answer.header("WWW-Authenticate")).startsWith("Bearer error=\"invalid_token\"");
    assertThat(error.get("message").asText()).contains("no credential");
    assertServletNotInvoked();
    SessionRecord record = server.awaitRecord(error.get("request_id").asText());
    assertThat(record.decision().code()).isEqualTo("unauthenticated");
    assertThat(record.response().status()).isEqualTo(401);
  }

  @Test
  void refusesAnUnknownKey() throws Exception {
    Answer answer = call(postAs("not-a-known-key", "/v1/chat/completions", chat("")).build());

    JsonNode error = error(answer, 401, "unauthenticated");
    assertThat(answer.header("WWW-Authenticate")).startsWith("Bearer error=\"invalid_token\"");
    assertThat(error.get("message").asText())
        .contains("unknown api key")
        .doesNotContain("not-a-known-key");
    assertServletNotInvoked();
  }

  @Test
  void refusesAnExpiredKey() throws Exception {
    Answer answer = call(postAs(EXPIRED_KEY, "/v1/chat/completions", chat("")).build());

    JsonNode error = error(answer, 401, "unauthenticated");
    assertThat(answer.header("WWW-Authenticate")).startsWith("Bearer error=\"invalid_token\"");
    assertThat(error.get("message").asText()).contains("expired");
    assertServletNotInvoked();
  }

  @Test
  void blocksPresetAdminEndpoint() throws Exception {
    Answer answer = call(postAs(CI_KEY, "/api/pull", "{\"model\":\"llama3\"}").build());

    JsonNode error = error(answer, 403, "blocked");
    assertThat(error.get("message").asText()).contains("block.presets");
    assertServletNotInvoked();
  }

  @Test
  void refusesAModelThePrincipalIsNotEntitledTo() throws Exception {
    Answer answer =
        call(
            postAs(CI_KEY, "/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[]}")
                .build());

    JsonNode error = error(answer, 403, "not_entitled");
    assertThat(error.get("message").asText()).contains("gpt-4o");
    assertServletNotInvoked();
  }

  @Test
  void refusesAPathThatIsNeitherAnOperationNorAllowed() throws Exception {
    Answer answer = call(postAs(CI_KEY, "/v1/fine_tuning/jobs", "{}").build());

    JsonNode error = error(answer, 403, "not_allowed");
    assertThat(error.get("message").asText()).contains("/v1/fine_tuning/jobs");
    assertServletNotInvoked();
  }

  @Test
  void allowRuleLetsGetModelsThrough() throws Exception {
    Answer answer =
        call(
            new Request.Builder()
                .url(server.url("/v1/models"))
                .header("Authorization", "Bearer " + CI_KEY)
                .build());

    assertThat(answer.status()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.method()).isEqualTo("GET");
    assertThat(seen.requestUri()).isEqualTo("/v1/models");
    assertThat(seen.authorization()).isNull();
    assertThat(seen.body()).isEmpty();
  }

  @Test
  void deniesLogprobsForNonResearchers() throws Exception {
    Answer answer = call(postAs(CI_KEY, "/v1/chat/completions", chat("\"logprobs\":true")).build());

    JsonNode error = error(answer, 403, "parameter_denied");
    assertThat(error.get("message").asText()).contains("logprobs");
    assertServletNotInvoked();
  }

  @Test
  void deniesMaxTokensOverTheMaximum() throws Exception {
    Answer answer =
        call(postAs(CI_KEY, "/v1/chat/completions", chat("\"max_tokens\":4096")).build());

    JsonNode error = error(answer, 403, "parameter_denied");
    assertThat(error.get("message").asText()).contains("max_tokens").contains("256");
    assertServletNotInvoked();
  }

  @Test
  void exemptGroupMayUseDeniedParameters() throws Exception {
    String body = chat("\"logprobs\":true,\"max_tokens\":4096");

    Answer answer = call(postAs(RESEARCH_KEY, "/v1/chat/completions", body).build());

    assertThat(answer.status()).isEqualTo(200);
    assertThat(server.nextSeen().body()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void refusesMalformedJson() throws Exception {
    Answer answer =
        call(postAs(CI_KEY, "/v1/chat/completions", "{\"model\": \"llama-3.1-8b\",").build());

    error(answer, 400, "bad_request");
    assertServletNotInvoked();
  }

  @Test
  void refusesABodyOverTheLimit() throws Exception {
    String body = chat("\"padding\":\"" + "x".repeat(2048) + "\"");

    Answer answer = call(postAs(CI_KEY, "/v1/chat/completions", body).build());

    JsonNode error = error(answer, 413, "body_too_large");
    assertThat(error.get("message").asText()).contains("1024");
    assertServletNotInvoked();
  }

  @Test
  void refusesAChunkedBodyOverTheLimit() throws Exception {
    byte[] body = chat("\"padding\":\"" + "x".repeat(2048) + "\"").getBytes(StandardCharsets.UTF_8);
    RequestBody chunked =
        new RequestBody() {
          @Override
          public MediaType contentType() {
            return JSON_TYPE;
          }

          @Override
          public long contentLength() {
            return -1; // no Content-Length: OkHttp sends Transfer-Encoding: chunked
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            sink.write(body);
          }
        };

    Answer answer =
        call(
            new Request.Builder()
                .url(server.url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + CI_KEY)
                .post(chunked)
                .build());

    error(answer, 413, "body_too_large");
    assertServletNotInvoked();
  }

  @Test
  void acceptsAChunkedBodyWithinTheLimit() throws Exception {
    byte[] body = chat("").getBytes(StandardCharsets.UTF_8);
    RequestBody chunked =
        new RequestBody() {
          @Override
          public MediaType contentType() {
            return JSON_TYPE;
          }

          @Override
          public long contentLength() {
            return -1;
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            sink.write(body);
          }
        };

    Answer answer =
        call(
            new Request.Builder()
                .url(server.url("/v1/chat/completions"))
                .header("Authorization", "Bearer " + CI_KEY)
                .post(chunked)
                .build());

    assertThat(answer.status()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.body()).isEqualTo(body);
    assertThat(seen.contentLength()).isEqualTo(body.length);
  }

  @Test
  void applicationExceptionPropagatesAndEndsTheExchangeIncomplete() throws Exception {
    Answer answer = call(postAs(CI_KEY, "/v1/responses", chat("")).build());

    // The container answers the propagated exception; Jetty's error page shows its message but
    // no stack trace, and the filter adds none.
    assertThat(answer.status()).isEqualTo(500);
    assertThat(answer.body())
        .doesNotContain("\tat ", "at dev.inferpam", "at org.eclipse", "upstream-secret");
    Verdict exchange = (Verdict) server.nextSeen().exchange();
    SessionRecord record = server.awaitRecord(exchange.id());
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().status()).isEqualTo(500);
  }

  @Test
  void ioExceptionFromTheApplicationEndsTheExchangeIncomplete() throws Exception {
    // The response is committed before the failure, so the client gets a truncated answer.
    try (Response response =
        client
            .newCall(postAs(CI_KEY, "/v1/responses", chat("")).header("X-Fail-With", "io").build())
            .execute()) {
      assertThat(response.code()).isEqualTo(200);
      try {
        response.body().string();
      } catch (IOException expected) {
        // the connection is cut mid-body
      }
    }

    Verdict exchange = (Verdict) server.nextSeen().exchange();
    SessionRecord record = server.awaitRecord(exchange.id());
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo("partial");
  }

  @Test
  void nonHttpRequestsPassThroughUntouched() throws Exception {
    ServletRequest request =
        (ServletRequest)
            Proxy.newProxyInstance(
                getClass().getClassLoader(),
                new Class<?>[] {ServletRequest.class},
                (p, m, a) -> {
                  throw new AssertionError(
                      "the filter must not look at a non-HTTP request: " + m.getName());
                });
    ServletResponse response =
        (ServletResponse)
            Proxy.newProxyInstance(
                getClass().getClassLoader(),
                new Class<?>[] {ServletResponse.class},
                (p, m, a) -> {
                  throw new AssertionError(
                      "the filter must not touch a non-HTTP response: " + m.getName());
                });
    AtomicBoolean passed = new AtomicBoolean();
    FilterChain chain =
        (req, res) -> {
          assertThat(req).isSameAs(request);
          assertThat(res).isSameAs(response);
          passed.set(true);
        };

    try (var engine = TestPolicy.engine(r -> {})) {
      new PamFilter(engine).doFilter(request, response, chain);
    }

    assertThat(passed).isTrue();
  }
}
