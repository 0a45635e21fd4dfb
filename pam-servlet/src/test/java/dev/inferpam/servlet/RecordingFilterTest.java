package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every outcome through {@link PamFilter} in a real Jetty leaves exactly one exchange record with
 * the fields of {@code docs/recording.md}; streams are recorded whole without delaying the client,
 * and a stream broken by the application or by the client is recorded incomplete.
 */
class RecordingFilterTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final MediaType JSON_TYPE = MediaType.get("application/json");
  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-28T22:00:00.123Z"), ZoneOffset.UTC);
  static final String KEY = "ci-key-7f3a9b";
  static final String UPSTREAM = "Bearer upstream-secret";
  static final CredentialProvider CREDENTIAL = () -> new Credential("Authorization", UPSTREAM);
  static final String ANSWER = "{\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"Hello\"}}],"
      + "\"usage\":{\"prompt_tokens\":41,\"completion_tokens\":120,\"total_tokens\":161}}";
  static final String FIRST = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n";
  static final String REST = "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n"
      + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
      + "data: [DONE]\n\n";

  @TempDir Path dir;

  /** Keeps every record; refuses admission while {@link #down} is set. */
  static final class CapturingRecorder implements Recorder {
    final List<SessionRecord> records = new CopyOnWriteArrayList<>();
    final java.util.concurrent.atomic.AtomicInteger admits = new java.util.concurrent.atomic.AtomicInteger();
    volatile boolean down;

    @Override
    public void admit() throws IOException {
      admits.incrementAndGet();
      if (down) throw new IOException("disk full");
    }

    @Override
    public void record(SessionRecord record) {
      records.add(record);
    }
  }

  final CapturingRecorder recorder = new CapturingRecorder();
  final CountDownLatch release = new CountDownLatch(1);
  final CountDownLatch streamFinished = new CountDownLatch(1);
  final CountDownLatch clientGone = new CountDownLatch(1);
  final CountDownLatch writerFailed = new CountDownLatch(1);
  final AtomicReference<Runnable> onChat = new AtomicReference<>(() -> { });
  final OkHttpClient client = new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10))
      .retryOnConnectionFailure(false).build();
  Server jetty;
  ServerConnector connector;
  PamEngine engine;


  static String policy(String extra) {
    return """
        version: 1
        request: {max-body: 1KiB}
        identity:
          api-keys:
            - {name: nightly-ci, sha256: %s, groups: [ci]}
        entitlements:
          - groups: [ci]
            models: ["llama-3.1-*"]
            operations: [chat, completion]
        block:
          presets: [ollama-admin]
        parameters:
          deny: [logprobs]
        """.formatted(sha256(KEY)) + extra;
  }

  PamEngine engine(CredentialProvider credentials) {
    return PamEngine.builder().policy(Policy.parse(policy(""))).clock(CLOCK)
        .credentialProvider(credentials).recorder(recorder).build();
  }

  /** Jetty on 127.0.0.1 with the filter on {@code /*} in front of the test servlets. */
  void start(PamEngine engine) throws Exception {
    this.engine = engine;
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
    context.addServlet(new ServletHolder(new Answer()), "/*");
    context.addServlet(new ServletHolder(new HeldStream()), "/v1/completions");
    context.addServlet(new ServletHolder(new BreaksAfterFirstEvent()), "/v1/responses");
    context.addServlet(new ServletHolder(new StreamsUntilTheClientIsGone()), "/v1/messages");
    jetty.setHandler(context);
    jetty.start();
  }

  @AfterEach
  void stop() throws Exception {
    release.countDown();
    clientGone.countDown();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (jetty != null) jetty.stop();
    if (engine != null) engine.close();
  }

  String url(String path) {
    return "http://127.0.0.1:" + connector.getLocalPort() + path;
  }

  Response post(String path, String key, String body) throws IOException {
    Request.Builder b = new Request.Builder().url(url(path)).post(RequestBody.create(body, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return client.newCall(b.build()).execute();
  }

  /** The one record, once the filter ended the exchange (it may end after the client read the answer). */
  SessionRecord onlyRecord() {
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records.isEmpty());
    assertThat(recorder.records).hasSize(1);
    return recorder.records.get(0);
  }

  static String chat(String extra) {
    return "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + extra + "}";
  }

  // --- servlets standing in for the model server -------------------------------------------------

  private final class Answer extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      req.getInputStream().readAllBytes();
      onChat.get().run();
      resp.setStatus(200);
      resp.setContentType("application/json");
      resp.getOutputStream().write(ANSWER.getBytes(StandardCharsets.UTF_8));
    }
  }

  private final class HeldStream extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      resp.setContentType("text/event-stream");
      ServletOutputStream out = resp.getOutputStream();
      out.write(FIRST.getBytes(StandardCharsets.UTF_8));
      out.flush();
      awaitLatch(release);
      out.write(REST.getBytes(StandardCharsets.UTF_8));
      out.flush();
      streamFinished.countDown();
    }
  }

  private static final class BreaksAfterFirstEvent extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      resp.setContentType("text/event-stream");
      ServletOutputStream out = resp.getOutputStream();
      out.write(FIRST.getBytes(StandardCharsets.UTF_8));
      out.flush();
      throw new IOException("upstream connection reset");
    }
  }

  private final class StreamsUntilTheClientIsGone extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      resp.setContentType("text/event-stream");
      ServletOutputStream out = resp.getOutputStream();
      out.write(FIRST.getBytes(StandardCharsets.UTF_8));
      out.flush();
      awaitLatch(clientGone);
      byte[] event = ("data: {\"pad\":\"" + "x".repeat(4096) + "\"}\n\n").getBytes(StandardCharsets.UTF_8);
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
  }

  private static void awaitLatch(CountDownLatch latch) throws IOException {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) throw new IOException("latch never opened");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }

  // --- allow -------------------------------------------------------------------------------------

  @Test
  void anAllowedExchangeIsRecordedOnceWithEveryField() throws Exception {
    start(engine(CREDENTIAL));
    String body = chat("");
    try (Response r = post("/v1/chat/completions", KEY, body)) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.type()).isEqualTo("exchange");
    assertThat(rec.time()).isEqualTo(CLOCK.instant());
    assertThat(rec.durationMs()).isNotNegative();
    assertThat(rec.principal().subject()).isEqualTo("nightly-ci");
    assertThat(rec.principal().groups()).containsExactly("ci");
    assertThat(rec.request().method()).isEqualTo("POST");
    assertThat(rec.request().path()).isEqualTo("/v1/chat/completions");
    assertThat(rec.request().operation()).isEqualTo("chat");
    assertThat(rec.request().model()).isEqualTo("llama-3.1-8b");
    assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
    assertThat(rec.request().headers()).containsKey("content-type");
    assertThat(rec.request().bytes()).isEqualTo(body.length());
    assertThat(rec.request().body()).isEqualTo(body);
    assertThat(rec.decision()).isEqualTo(new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null));
    assertThat(rec.approval()).isNull();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().streamed()).isFalse();
    assertThat(rec.response().bytes()).isEqualTo(ANSWER.length());
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(ANSWER);
    assertThat(rec.response().usage())
        .isEqualTo(Map.of("prompt_tokens", 41L, "completion_tokens", 120L, "total_tokens", 161L));
    assertThat(rec.toString()).doesNotContain(KEY).doesNotContain("upstream-secret");
  }

  // --- every denial ------------------------------------------------------------------------------

  record Denial(String name, String path, String key, String body, int status, String code, String rule,
                String subject, String operation, String model, boolean bodyRead) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Arguments> denials() {
    String ok = chat("");
    return Stream.of(
        new Denial("bad_path", "/api/pull;x=1", KEY, ok, 400, "bad_path", "path", null, null, null, false),
        new Denial("bad_request", "/v1/chat/completions", KEY, "{\"model\":", 400, "bad_request", "request",
            "nightly-ci", null, null, true),
        new Denial("body_too_large", "/v1/chat/completions", KEY, chat(",\"pad\":\"" + "x".repeat(2000) + "\""),
            413, "body_too_large", "request.max-body", null, null, null, false),
        // Identity comes from the head: an unauthenticated body is never read.
        new Denial("unauthenticated", "/v1/chat/completions", null, ok, 401, "unauthenticated", "identity",
            null, null, null, false),
        new Denial("blocked", "/api/pull", KEY, "{\"name\":\"llama3\"}", 403, "blocked",
            "block.presets.ollama-admin:/api/pull", "nightly-ci", null, null, true),
        new Denial("not_allowed", "/v1/unknown", KEY, ok, 403, "not_allowed", "allow", "nightly-ci", null, null,
            true),
        new Denial("not_entitled", "/v1/chat/completions", KEY, ok.replace("llama-3.1-8b", "gpt-4o"), 403,
            "not_entitled", "entitlements", "nightly-ci", "chat", "gpt-4o", true),
        new Denial("parameter_denied", "/v1/chat/completions", KEY, chat(",\"logprobs\":true"), 403,
            "parameter_denied", "parameters.deny", "nightly-ci", "chat", "llama-3.1-8b", true))
        .map(Arguments::of);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("denials")
  void everyDenialIsRecordedOnceWithTheErrorThatWasSent(Denial d) throws Exception {
    start(engine(CREDENTIAL));
    onChat.set(() -> {
      throw new AssertionError("a denied request reached the application");
    });
    String sent;
    try (Response r = post(d.path(), d.key(), d.body())) {
      assertThat(r.code()).isEqualTo(d.status());
      sent = r.body().string();
    }
    assertDenialRecord(d, sent);
  }

  private void assertDenialRecord(Denial d, String sent) throws Exception {
    JsonNode error = JSON.readTree(sent).get("error");
    assertThat(error.get("code").asText()).isEqualTo(d.code());
    SessionRecord rec = onlyRecord();
    assertThat(rec.type()).isEqualTo("exchange");
    assertThat(rec.id()).isEqualTo(error.get("request_id").asText());
    if (d.subject() == null) assertThat(rec.principal()).isNull();
    else assertThat(rec.principal().subject()).isEqualTo(d.subject());
    assertThat(rec.request().method()).isEqualTo("POST");
    assertThat(rec.request().path()).isEqualTo(d.path());
    assertThat(rec.request().operation()).isEqualTo(d.operation());
    assertThat(rec.request().model()).isEqualTo(d.model());
    if (d.key() != null) assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
    if (d.bodyRead()) {
      assertThat(rec.request().bytes()).isEqualTo(d.body().length());
      assertThat(rec.request().body()).isEqualTo(d.body());
    } else {
      assertThat(rec.request().body()).isNull();
    }
    assertThat(rec.decision().outcome()).isEqualTo("deny");
    assertThat(rec.decision().rule()).isEqualTo(d.rule());
    assertThat(rec.decision().code()).isEqualTo(d.code());
    assertThat(rec.decision().message()).isEqualTo(error.get("message").asText());
    assertThat(rec.response().status()).isEqualTo(d.status());
    assertThat(rec.response().streamed()).isFalse();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(sent);
    assertThat(rec.response().bytes()).isEqualTo(sent.getBytes(StandardCharsets.UTF_8).length);
    assertThat(rec.response().usage()).isEmpty();
    assertThat(rec.toString()).doesNotContain(KEY);
  }

  @Test
  void anUnavailableUpstreamCredentialIsRecordedOnce() throws Exception {
    start(engine(() -> {
      throw new CredentialProvider.CredentialUnavailableException("variable X is not set");
    }));
    String sent;
    try (Response r = post("/v1/chat/completions", KEY, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      sent = r.body().string();
    }
    assertDenialRecord(new Denial("upstream_credential_unavailable", "/v1/chat/completions", KEY, chat(""), 503,
        "upstream_credential_unavailable", "upstream.credential", "nightly-ci", "chat", "llama-3.1-8b", true), sent);
  }

  @Test
  void unavailableRecordingRefuses503WithoutCallingTheApplicationAndRecordsItWhenItCan() throws Exception {
    // Admission fails at the start only: the 503's own record is taken at the end.
    Recorder flaky = new Recorder() {
      int admits;

      @Override
      public synchronized void admit() throws IOException {
        if (admits++ == 0) throw new IOException("recording queue full");
      }

      @Override
      public void record(SessionRecord record) {
        recorder.records.add(record);
      }
    };
    start(PamEngine.builder().policy(Policy.parse(policy(""))).clock(CLOCK).credentialProvider(CREDENTIAL)
        .recorder(flaky).build());
    onChat.set(() -> {
      throw new AssertionError("a refused request reached the application");
    });
    String sent;
    try (Response r = post("/v1/chat/completions", KEY, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      sent = r.body().string();
    }
    assertThat(JSON.readTree(sent).get("error").get("message").asText())
        .isEqualTo("recording is unavailable, the request was not forwarded");
    assertDenialRecord(new Denial("recording_unavailable", "/v1/chat/completions", KEY, chat(""), 503,
        "recording_unavailable", "recording", "nightly-ci", "chat", "llama-3.1-8b", true), sent);
  }

  @Test
  void aRecorderThatStaysDownRefusesEveryRequestUntilItRecovers() throws Exception {
    start(engine(CREDENTIAL));
    recorder.down = true;
    try (Response r = post("/v1/chat/completions", KEY, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      assertThat(JSON.readTree(r.body().string()).get("error").get("code").asText()).isEqualTo("recording_unavailable");
    }
    // The filter ends the exchange after the answer went out; it asks the recorder once more then.
    await().atMost(Duration.ofSeconds(10)).until(() -> recorder.admits.get() == 2);
    assertThat(recorder.records).as("still down: the 503's record could not be taken").isEmpty();
    recorder.down = false;
    try (Response r = post("/v1/chat/completions", KEY, chat(""))) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    assertThat(onlyRecord().decision().outcome()).isEqualTo("allow");
  }

  // --- streams -----------------------------------------------------------------------------------

  static String readEvent(BufferedSource source) throws IOException {
    StringBuilder event = new StringBuilder();
    for (String line; (line = source.readUtf8Line()) != null; ) {
      event.append(line).append('\n');
      if (line.isEmpty()) break;
    }
    return event.toString();
  }

  @Test
  void aStreamIsRecordedWholeWithUsageWhileTheClientGetsTheFirstEventAtOnce() throws Exception {
    start(engine(CREDENTIAL));
    String received;
    try (Response r = post("/v1/completions", KEY,
        "{\"model\":\"llama-3.1-8b\",\"prompt\":\"hi\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}")) {
      BufferedSource source = r.body().source();
      assertThat(readEvent(source)).isEqualTo(FIRST);
      assertThat(streamFinished.getCount()).as("the application still holds the rest").isEqualTo(1);
      assertThat(recorder.records).isEmpty();
      release.countDown();
      received = FIRST + source.readUtf8();
    }
    assertThat(received).isEqualTo(FIRST + REST);
    SessionRecord rec = onlyRecord();
    assertThat(rec.request().operation()).isEqualTo("completion");
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(FIRST + REST);
    assertThat(rec.response().bytes()).isEqualTo((FIRST + REST).length());
    assertThat(rec.response().usage())
        .isEqualTo(Map.of("prompt_tokens", 9L, "completion_tokens", 2L, "total_tokens", 11L));
  }

  @Test
  void anApplicationThatBreaksMidStreamIsRecordedIncomplete() throws Exception {
    start(engine(CREDENTIAL));
    try (Response r = post("/v1/responses", KEY, "{\"model\":\"llama-3.1-8b\",\"input\":\"hi\",\"stream\":true}")) {
      assertThat(readEvent(r.body().source())).isEqualTo(FIRST);
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.response().body()).isEqualTo(FIRST);
  }

  @Test
  void aClientThatDisconnectsMidStreamIsRecordedIncomplete() throws Exception {
    start(engine(CREDENTIAL));
    byte[] body = "{\"model\":\"llama-3.1-8b\",\"messages\":[],\"stream\":true}".getBytes(StandardCharsets.UTF_8);
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), connector.getLocalPort()), 5_000);
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(("POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY
          + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n")
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
    assertThat(writerFailed.await(10, TimeUnit.SECONDS)).as("the application saw the client go").isTrue();
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.response().body()).startsWith(FIRST);
  }

  // --- the default JSONL recorder ----------------------------------------------------------------

  static List<JsonNode> lines(Path dir) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) return out;
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList()) {
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isEmpty()) out.add(JSON.readTree(line));
        }
      }
    }
    return out;
  }

  @Test
  void strictJsonlRecordingWritesTheIntentBeforeTheApplicationRunsThenTheExchange() throws Exception {
    Path recordings = dir.resolve("recordings");
    start(PamEngine.builder()
        .policy(Policy.parse(policy("recording: {directory: \"" + recordings + "\", durability: strict}\n")))
        .clock(CLOCK).credentialProvider(CREDENTIAL).build());
    List<List<JsonNode>> seenByApplication = new CopyOnWriteArrayList<>();
    onChat.set(() -> {
      try {
        seenByApplication.add(lines(recordings));
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    });

    try (Response r = post("/v1/chat/completions", KEY, chat(""))) {
      assertThat(r.code()).isEqualTo(200);
      r.body().string();
    }
    jetty.stop();
    engine.close();

    assertThat(seenByApplication).singleElement().satisfies(before -> assertThat(before).singleElement()
        .satisfies(intent -> assertThat(intent.get("type").asText()).isEqualTo("intent")));
    List<JsonNode> lines = lines(recordings);
    assertThat(lines).hasSize(2);
    JsonNode intent = lines.get(0);
    JsonNode exchange = lines.get(1);
    assertThat(intent.get("type").asText()).isEqualTo("intent");
    assertThat(intent.get("principal").get("subject").asText()).isEqualTo("nightly-ci");
    assertThat(intent.get("request").get("model").asText()).isEqualTo("llama-3.1-8b");
    assertThat(exchange.get("type").asText()).isEqualTo("exchange");
    assertThat(exchange.get("id").asText()).isEqualTo(intent.get("id").asText());
    assertThat(exchange.get("decision").get("outcome").asText()).isEqualTo("allow");
    assertThat(exchange.get("response").get("body").asText()).isEqualTo(ANSWER);
    assertThat(exchange.get("response").get("usage").get("total_tokens").asLong()).isEqualTo(161);
    assertThat(exchange.get("prev").asText()).isEqualTo(intent.get("hash").asText());

    // The same through the public reader: the chain verifies, the intent precedes its exchange.
    Recordings read = Recordings.open(recordings);
    assertThat(read.verify().ok()).isTrue();
    assertThat(read.entries()).extracting(e -> e.record().type()).containsExactly("intent", "exchange");
    SessionRecord found = read.find(intent.get("id").asText()).orElseThrow().record();
    assertThat(found.principal().subject()).isEqualTo("nightly-ci");
    assertThat(found.decision().outcome()).isEqualTo("allow");
    assertThat(found.response().complete()).isTrue();
    assertThat(read.list("nightly-ci", null)).hasSize(1);
    for (Path f : Files.list(recordings).filter(p -> p.toString().endsWith(".jsonl")).toList()) {
      assertThat(Files.readString(f)).doesNotContain(KEY).doesNotContain("upstream-secret");
    }
  }
}
