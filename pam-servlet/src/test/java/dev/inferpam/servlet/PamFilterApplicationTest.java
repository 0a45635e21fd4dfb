package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
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
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What only a filter in front of an application meets, in a real Jetty; the rest (denials,
 * masking, recording, OIDC, quotas, approvals) is {@link PamFilterConformanceTest}'s. The
 * application writes through its writer or from another thread, is stopped at its first write of
 * an answer that cannot be masked, is not told the caller's {@code Accept-Encoding}, may echo the
 * upstream credential the filter hands it, and may go on writing after the client has gone.
 */
class PamFilterApplicationTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final MediaType JSON_TYPE = MediaType.get("application/json");
  static final String KEY = "ci-key-7f3a9b";
  static final String AUDITOR = "auditor-key-5e1d";
  static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";

  static final String ANSWER =
      Completions.chat("Mail " + EMAIL + " and charge " + CARD + ".", 12, 9);
  static final String MASKED_ANSWER =
      ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  static final String FIRST = Completions.sseDelta("Hel");

  final InMemoryRecorder recorder = new InMemoryRecorder();
  final AtomicReference<Throwable> applicationSaw = new AtomicReference<>();
  final CountDownLatch clientGone = new CountDownLatch(1);
  final CountDownLatch writerFailed = new CountDownLatch(1);
  final ExecutorService asyncWorkers = Executors.newSingleThreadExecutor();
  final OkHttpClient client =
      new OkHttpClient.Builder()
          .readTimeout(Duration.ofSeconds(10))
          .retryOnConnectionFailure(false)
          .build();
  Server jetty;
  ServerConnector connector;
  PamEngine engine;

  static String policy() {
    return """
        version: 1
        identity:
          api-keys:
        """
        + Policies.apiKey("nightly-ci", KEY, "ci")
        + Policies.apiKey("auditor", AUDITOR, "ci", "auditors")
        + """
        entitlements:
          - groups: [ci]
            models: ["llama-3.1-*"]
            operations: [chat]
        masking:
          detectors: [email, phone, credit-card]
          exempt-groups: [auditors]
        """;
  }

  @BeforeEach
  void start() throws Exception {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy()))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
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
    ServletHolder model = new ServletHolder(new Application());
    model.setAsyncSupported(true);
    context.addServlet(model, "/*");
    jetty.setHandler(context);
    jetty.start();
  }

  @AfterEach
  void stop() throws Exception {
    clientGone.countDown();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    jetty.stop();
    asyncWorkers.shutdownNow();
    engine.close();
  }

  Response post(String key, String answer, String... headers) throws IOException {
    Request.Builder b =
        new Request.Builder()
            .url("http://127.0.0.1:" + connector.getLocalPort() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + key)
            .header("X-Answer", answer)
            .post(RequestBody.create(Policies.chat("llama-3.1-8b", ""), JSON_TYPE));
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

  static byte[] gzip(String text) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  /** Stands in for the application; {@code X-Answer} says how it answers. */
  private final class Application extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      req.getInputStream().readAllBytes();
      byte[] answer = ANSWER.getBytes(StandardCharsets.UTF_8);
      switch (req.getHeader("X-Answer")) {
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
          resp.getOutputStream()
              .write(
                  JSON.writeValueAsBytes(
                      Map.of(
                          "accept-encoding", String.valueOf(req.getHeader("Accept-Encoding")),
                          "names",
                              Collections.list(req.getHeaderNames()).stream()
                                  .map(n -> n.toLowerCase())
                                  .toList())));
        }
        case "echo" -> {
          // an application (or a server it forwards to) that echoes what it was given, the
          // credential split across two writes
          Verdict.Allowed exchange =
              (Verdict.Allowed) req.getAttribute(PamFilter.EXCHANGE_ATTRIBUTE);
          String upstream = exchange.forward().setHeaders().get("Authorization");
          String note = req.getHeader("X-Client-Note");
          byte[] echo =
              ("{\"upstream\":\"" + upstream + "\",\"note\":\"" + note + "\"}")
                  .getBytes(StandardCharsets.UTF_8);
          resp.setContentType("application/json");
          resp.setHeader("X-Echo-Upstream", upstream);
          resp.addHeader("X-Echo-Note", note);
          resp.setContentLength(echo.length);
          ServletOutputStream out = resp.getOutputStream();
          out.write(echo, 0, 20);
          out.flush();
          out.write(echo, 20, echo.length - 20);
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
          asyncWorkers.execute(
              () -> {
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
        case "until-gone" -> {
          resp.setContentType("text/event-stream");
          ServletOutputStream out = resp.getOutputStream();
          out.write(FIRST.getBytes(StandardCharsets.UTF_8));
          out.flush();
          awaitLatch(clientGone);
          byte[] event =
              ("data: {\"pad\":\"" + "x".repeat(4096) + "\"}\n\n").getBytes(StandardCharsets.UTF_8);
          try {
            // Bounded: a closed connection fails a write long before this ends.
            for (int i = 0; i < 10_000; i++) {
              out.write(event);
              out.flush();
            }
          } catch (IOException e) {
            // Swallowed on purpose, as many applications do: the record must still say incomplete.
            writerFailed.countDown();
          }
        }
        default -> throw new IllegalArgumentException("unknown X-Answer");
      }
    }
  }

  private static void awaitLatch(CountDownLatch latch) throws IOException {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) throw new IOException("latch never opened");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }

  // --- how the application writes ----------------------------------------------------------------

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
    assertThat(seen.get("names").toString())
        .doesNotContain("accept-encoding")
        .doesNotContain("authorization");

    JsonNode exempt;
    try (Response r = post(AUDITOR, "accept-encoding", "Accept-Encoding", "gzip, br")) {
      exempt = JSON.readTree(r.body().string());
    }
    assertThat(exempt.get("accept-encoding").asText())
        .as("not masked for auditors, but scanned for credentials")
        .isEqualTo("null");
  }

  @Test
  void anApplicationWritingAGzipAnswerThatMustBeMaskedIsStoppedAtItsFirstWrite() throws Exception {
    String sent;
    try (Response r = post(KEY, "gzip")) {
      assertThat(r.code()).isEqualTo(502);
      sent = r.body().string();
    }
    assertThat(JSON.readTree(sent).path("error").path("code").asText())
        .isEqualTo("masking_unavailable");
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().status()).isEqualTo(502);
    assertThat(rec.response().body()).isEqualTo(sent);
    assertThat(applicationSaw.get())
        .as("the application was stopped at its first write")
        .isInstanceOf(IOException.class);
  }

  @Test
  void anApplicationEchoingTheUpstreamCredentialItWasHandedGivesBackNeitherItNorTheCallersKey()
      throws Exception {
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
          assertThat(r.header("Content-Length"))
              .as("only credentials replaced: the length holds")
              .isEqualTo(String.valueOf(body.length()));
        }
      }
      assertThat(body)
          .doesNotContain("upstream-secret")
          .doesNotContain(key)
          .contains("[REDACTED:credential*]");
      SessionRecord rec = onlyRecord();
      String line =
          dev.inferpam.core.internal.recording.RecordCodec.encode(
              rec, dev.inferpam.core.internal.recording.RecordCodec.GENESIS);
      assertThat(line).doesNotContain("upstream-secret").doesNotContain(key);
    }
  }

  // --- a client that goes away -------------------------------------------------------------------

  @Test
  void aClientThatDisconnectsMidStreamIsRecordedIncompleteThoughTheApplicationSwallowsTheError()
      throws Exception {
    byte[] body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[],\"stream\":true}"
            .getBytes(StandardCharsets.UTF_8);
    try (Socket socket = new Socket()) {
      socket.connect(
          new InetSocketAddress(InetAddress.getLoopbackAddress(), connector.getLocalPort()), 5_000);
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      // exempt from masking, which might hold back the end of the first event
      out.write(
          ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                  + AUDITOR
                  + "\r\nX-Answer: until-gone\r\nContent-Type: application/json\r\nContent-Length: "
                  + body.length
                  + "\r\n\r\n")
              .getBytes(StandardCharsets.ISO_8859_1));
      out.write(body);
      out.flush();
      InputStream in = socket.getInputStream();
      StringBuilder seen = new StringBuilder();
      while (!seen.toString().contains(FIRST)) {
        int c = in.read();
        if (c < 0) throw new AssertionError("connection closed before the first event: " + seen);
        seen.append((char) c);
      }
      socket.setSoLinger(true, 0); // reset: the server's next writes fail at once
    }
    clientGone.countDown();
    assertThat(writerFailed.await(10, TimeUnit.SECONDS))
        .as("the application saw the client go")
        .isTrue();
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.response().body()).startsWith(FIRST);
  }
}
