package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.GZIPOutputStream;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Response masking through {@link PamFilter} in a real Jetty: the application writes raw values
 * (stream or writer, whole or as events, sync or async) and the client and the record get them
 * masked; exempt callers and binary bodies pass untouched; an encoded body is refused 502.
 */
class MaskingFilterTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final MediaType JSON_TYPE = MediaType.get("application/json");
  static final String KEY = "ci-key-7f3a9b";
  static final String AUDITOR = "auditor-key-5e1d";
  static final String EMAIL = "jane.doe@example.com";
  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";
  static final String ANSWER = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
      + "\"message\":{\"role\":\"assistant\",\"content\":\"Mail " + EMAIL + " and charge " + CARD + ".\"}}],"
      + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":9,\"total_tokens\":21}}";
  static final String MASKED_ANSWER = ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");

  final InMemoryRecorder recorder = new InMemoryRecorder();
  final CountDownLatch release = new CountDownLatch(1);
  final AtomicReference<Throwable> applicationSaw = new AtomicReference<>();
  final ExecutorService asyncWorkers = Executors.newSingleThreadExecutor();
  final OkHttpClient client = new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10))
      .retryOnConnectionFailure(false).build();
  Server jetty;
  ServerConnector connector;
  PamEngine engine;


  static String policy() {
    return """
        version: 1
        identity:
          api-keys:
            - {name: nightly-ci, sha256: %s, groups: [ci]}
            - {name: auditor, sha256: %s, groups: [ci, auditors]}
        entitlements:
          - groups: [ci]
            models: ["llama-3.1-*"]
            operations: [chat]
        masking:
          detectors: [email, phone, credit-card]
          exempt-groups: [auditors]
        recording:
          directory: ./never-opened-a-recorder-is-given
          bodies: masked
          durability: batched
        """.formatted(sha256(KEY), sha256(AUDITOR));
  }

  @BeforeEach
  void start() throws Exception {
    engine = PamEngine.builder().policy(Policy.parse(policy())).recorder(recorder)
        .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret")).build();
    jetty = new Server();
    connector = new ServerConnector(jetty);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    ServletHolder model = new ServletHolder(new Model());
    model.setAsyncSupported(true);
    context.addServlet(model, "/*");
    jetty.setHandler(context);
    jetty.start();
  }

  @AfterEach
  void stop() throws Exception {
    release.countDown();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    jetty.stop();
    asyncWorkers.shutdownNow();
    engine.close();
  }

  Response post(String key, String answer, String... headers) throws IOException {
    String body = "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    Request.Builder b = new Request.Builder()
        .url("http://127.0.0.1:" + connector.getLocalPort() + "/v1/chat/completions")
        .header("Authorization", "Bearer " + key).header("X-Answer", answer)
        .post(RequestBody.create(body, JSON_TYPE));
    for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
    return client.newCall(b.build()).execute();
  }

  /** The one record, once the filter ended the exchange (it may end after the client read the answer). */
  SessionRecord onlyRecord() {
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    return recorder.records().get(0);
  }

  /** The body's length matches what was sent, or no length was sent: never a stale one. */
  static void assertNoStaleLength(Response r, byte[] received) {
    String length = r.header("Content-Length");
    if (length != null) assertThat(Long.parseLong(length)).isEqualTo(received.length);
  }

  static String event(String content) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content + "\"}}]}\n\n";
  }

  static String deltas(String sse) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : sse.split("\n")) {
      if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
      text.append(JSON.readTree(line.substring("data: ".length())).path("choices").path(0).path("delta")
          .path("content").asText(""));
    }
    return text.toString();
  }

  static byte[] gzip(String text) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  static byte[] png() {
    byte[] png = new byte[4096];
    for (int i = 0; i < png.length; i++) png[i] = (byte) (i * 31 + 7);
    byte[] email = EMAIL.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(email, 0, png, 100, email.length);
    return png;
  }

  /** Stands in for a model server; {@code X-Answer} says how it answers. */
  private final class Model extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      req.getInputStream().readAllBytes();
      byte[] answer = ANSWER.getBytes(StandardCharsets.UTF_8);
      switch (req.getHeader("X-Answer")) {
        case "json" -> {
          resp.setContentType("application/json");
          resp.setContentLength(answer.length);
          resp.getOutputStream().write(answer);
        }
        case "json-writer" -> {
          resp.setContentType("application/json");
          resp.setCharacterEncoding("UTF-8");
          resp.setHeader("Content-Length", String.valueOf(answer.length));
          PrintWriter w = resp.getWriter();
          w.write(ANSWER, 0, 40);
          w.write(ANSWER.substring(40));
          w.close();
        }
        case "accept-encoding" -> {
          resp.setContentType("application/json");
          resp.getOutputStream().write(JSON.writeValueAsBytes(Map.of(
              "accept-encoding", String.valueOf(req.getHeader("Accept-Encoding")),
              "names", Collections.list(req.getHeaderNames()).stream().map(n -> n.toLowerCase()).toList())));
        }
        case "sse-split" -> {
          resp.setContentType("text/event-stream");
          ServletOutputStream out = resp.getOutputStream();
          out.write(event("Write to jane.doe@exa").getBytes(StandardCharsets.UTF_8));
          out.flush();
          out.write(event("mple.com today.").getBytes(StandardCharsets.UTF_8));
          out.flush();
          out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
          out.flush();
        }
        case "sse-held" -> {
          resp.setContentType("text/event-stream");
          ServletOutputStream out = resp.getOutputStream();
          out.write(event("Hello. ").getBytes(StandardCharsets.UTF_8));
          out.flush();
          awaitRelease();
          out.write((event("Reach me at jane.doe@example.com.") + "data: [DONE]\n\n").getBytes(StandardCharsets.UTF_8));
          out.flush();
        }
        case "echo" -> {
          // an application (or a server it forwards to) that echoes what it was given, the
          // credential split across two writes
          Verdict.Allowed exchange = (Verdict.Allowed) req.getAttribute(PamFilter.EXCHANGE_ATTRIBUTE);
          String upstream = exchange.forward().setHeaders().get("Authorization");
          String note = req.getHeader("X-Client-Note");
          byte[] echo = ("{\"upstream\":\"" + upstream + "\",\"note\":\"" + note + "\"}").getBytes(StandardCharsets.UTF_8);
          resp.setContentType("application/json");
          resp.setHeader("X-Echo-Upstream", upstream);
          resp.addHeader("X-Echo-Note", note);
          resp.setContentLength(echo.length);
          ServletOutputStream out = resp.getOutputStream();
          out.write(echo, 0, 20);
          out.flush();
          out.write(echo, 20, echo.length - 20);
        }
        case "png" -> {
          byte[] png = png();
          resp.setContentType("image/png");
          resp.setContentLength(png.length);
          resp.getOutputStream().write(png);
        }
        case "gzip" -> {
          byte[] gz = gzip(ANSWER);
          resp.setContentType("application/json");
          resp.setHeader("Content-Encoding", "gzip");
          resp.setContentLength(gz.length);
          try {
            ServletOutputStream out = resp.getOutputStream();
            out.write(gz, 0, 10);
            out.write(gz, 10, gz.length - 10);
            out.flush();
          } catch (IOException e) {
            applicationSaw.set(e);
            throw e;
          }
        }
        case "async" -> {
          AsyncContext async = req.startAsync();
          asyncWorkers.execute(() -> {
            try {
              HttpServletResponse w = (HttpServletResponse) async.getResponse();
              w.setContentType("application/json");
              w.getOutputStream().write(answer);
            } catch (IOException | RuntimeException e) {
              applicationSaw.set(e);
            } finally {
              async.complete();
            }
          });
        }
        default -> throw new IllegalArgumentException("unknown X-Answer");
      }
    }

    private void awaitRelease() throws IOException {
      try {
        if (!release.await(10, TimeUnit.SECONDS)) throw new IOException("the client never read the first event");
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException(e);
      }
    }
  }

  // --- JSON --------------------------------------------------------------------------------------

  @Test
  void aChatCompletionReachesTheClientAndTheRecordMaskedWithoutItsStaleLength() throws Exception {
    byte[] received;
    try (Response r = post(KEY, "json")) {
      assertThat(r.code()).isEqualTo(200);
      received = r.body().bytes();
      assertNoStaleLength(r, received);
    }
    String text = new String(received, StandardCharsets.UTF_8);
    assertThat(text).isEqualTo(MASKED_ANSWER).doesNotContain(EMAIL).doesNotContain(CARD);

    SessionRecord rec = onlyRecord();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(text);
    assertThat(rec.response().bytes()).isEqualTo(received.length);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(rec.response().usage()).containsEntry("total_tokens", 21L);
  }

  @Test
  void whatTheApplicationWritesThroughItsWriterIsMaskedToo() throws Exception {
    byte[] received;
    try (Response r = post(KEY, "json-writer")) {
      assertThat(r.code()).isEqualTo(200);
      received = r.body().bytes();
      assertNoStaleLength(r, received);
    }
    assertThat(new String(received, StandardCharsets.UTF_8)).isEqualTo(MASKED_ANSWER);
    assertThat(onlyRecord().response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(onlyRecord().response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void anAsyncApplicationsAnswerIsMaskedAndEndsComplete() throws Exception {
    try (Response r = post(KEY, "async")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo(MASKED_ANSWER);
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(rec.response().complete()).isTrue();
    assertThat(applicationSaw.get()).isNull();
  }

  @Test
  void theApplicationDoesNotSeeAcceptEncodingWhenItsAnswerIsMasked() throws Exception {
    JsonNode seen;
    try (Response r = post(KEY, "accept-encoding", "Accept-Encoding", "gzip, br")) {
      seen = JSON.readTree(r.body().string());
    }
    assertThat(seen.get("accept-encoding").asText()).isEqualTo("null");
    assertThat(seen.get("names").toString()).doesNotContain("accept-encoding").doesNotContain("authorization");

    JsonNode exempt;
    try (Response r = post(AUDITOR, "accept-encoding", "Accept-Encoding", "gzip, br")) {
      exempt = JSON.readTree(r.body().string());
    }
    assertThat(exempt.get("accept-encoding").asText()).as("not masked for auditors, but scanned for credentials")
        .isEqualTo("null");
  }

  @Test
  void anExemptCallerGetsRawValuesWhileTheMaskedRecordDoesNot() throws Exception {
    try (Response r = post(AUDITOR, "json")) {
      assertThat(r.header("Content-Length")).isEqualTo(String.valueOf(ANSWER.length()));
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.principal().subject()).isEqualTo("auditor");
    assertThat(rec.response().body()).isEqualTo(MASKED_ANSWER).doesNotContain(EMAIL).doesNotContain(CARD);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  // --- streams -----------------------------------------------------------------------------------

  @Test
  void anEmailSplitAcrossTwoEventsIsMaskedForTheClientAndInTheRecord() throws Exception {
    String received;
    try (Response r = post(KEY, "sse-split")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Type")).startsWith("text/event-stream");
      received = r.body().string();
    }
    assertThat(deltas(received)).isEqualTo("Write to [EMAIL] today.");
    assertThat(received).doesNotContain("jane.doe").doesNotContain("example.com").doesNotContain("@exa")
        .endsWith("data: [DONE]\n\n");
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(received);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1));
  }

  @Test
  void aFlushedEventReachesTheClientWhileTheApplicationStillWrites() throws Exception {
    StringBuilder received = new StringBuilder();
    try (Response r = post(KEY, "sse-held")) {
      BufferedSource source = r.body().source();
      // The application writes nothing more until the client has seen the first event. The
      // masker may hold back the end of its text (it could continue), never all of it.
      for (String line; !(line = source.readUtf8LineStrict()).isEmpty(); ) received.append(line).append('\n');
      received.append('\n');
      String firstText = deltas(received.toString());
      assertThat(firstText).isNotEmpty();
      assertThat("Hello. ").startsWith(firstText);
      release.countDown();
      received.append(source.readUtf8());
    } finally {
      release.countDown();
    }
    assertThat(deltas(received.toString())).isEqualTo("Hello. Reach me at [EMAIL].");
    assertThat(onlyRecord().response().body()).isEqualTo(received.toString());
  }

  // --- untouched and refused ---------------------------------------------------------------------

  @Test
  void aBinaryAnswerPassesByteExactWithItsLength() throws Exception {
    try (Response r = post(KEY, "png")) {
      assertThat(r.header("Content-Length")).isEqualTo("4096");
      assertThat(r.body().bytes()).isEqualTo(png());
    }
    assertThat(onlyRecord().response().bytes()).isEqualTo(4096);
  }

  @Test
  void aGzipEncodedAnswerThatMustBeMaskedIsRefused502AndRecorded() throws Exception {
    String sent;
    try (Response r = post(KEY, "gzip")) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.header("Content-Type")).startsWith("application/json");
      sent = r.body().string();
      assertNoStaleLength(r, sent.getBytes(StandardCharsets.UTF_8));
    }
    JsonNode error = JSON.readTree(sent).get("error");
    assertThat(error.get("type").asText()).isEqualTo("pam_error");
    assertThat(error.get("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.get("message").asText())
        .isEqualTo("the response is encoded (Content-Encoding: gzip) and cannot be masked");

    SessionRecord rec = onlyRecord();
    assertThat(error.get("request_id").asText()).isEqualTo(rec.id());
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(502);
    assertThat(rec.response().body()).isEqualTo(sent);
    assertThat(rec.response().complete()).isTrue();
    assertThat(applicationSaw.get()).as("the application was stopped at its first write")
        .isInstanceOf(IOException.class);
  }

  @Test
  void anExemptCallersEncodedAnswerIsRefusedForItCannotBeScannedForCredentials() throws Exception {
    try (Response r = post(AUDITOR, "gzip", "Accept-Encoding", "gzip")) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(JSON.readTree(r.body().string()).get("error").get("code").asText()).isEqualTo("masking_unavailable");
    }
    assertThat(onlyRecord().response().status()).isEqualTo(502);
  }

  @Test
  void anEchoingApplicationHandsBackNeitherTheUpstreamCredentialNorTheCallersKey() throws Exception {
    for (String key : List.of(KEY, AUDITOR)) {
      recorder.clear();
      String body;
      try (Response r = post(key, "echo", "X-Client-Note", "my key is " + key)) {
        assertThat(r.code()).isEqualTo(200);
        body = r.body().string();
        assertThat(r.headers().toString()).doesNotContain("upstream-secret").doesNotContain(key);
        assertThat(r.header("X-Echo-Upstream")).isEqualTo("[REDACTED:credential*]");
        assertThat(r.header("X-Echo-Note")).startsWith("my key is [");
        if (key.equals(AUDITOR)) {
          assertThat(r.header("Content-Length")).as("only credentials replaced: the length holds")
              .isEqualTo(String.valueOf(body.length()));
        }
      }
      assertThat(body).doesNotContain("upstream-secret").doesNotContain(key).contains("[REDACTED:credential*]");
      SessionRecord rec = onlyRecord();
      String line = dev.inferpam.core.internal.RecordCodec.encode(rec, dev.inferpam.core.internal.RecordCodec.GENESIS);
      assertThat(line).doesNotContain("upstream-secret").doesNotContain(key);
    }
  }
}
