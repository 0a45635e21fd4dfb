package dev.inferpam.okhttp;

import static dev.inferpam.okhttp.PamInterceptorTest.sha256;
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
import dev.inferpam.core.Recordings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;
import okio.BufferedSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every outcome through the interceptor leaves exactly one exchange record with the fields of
 * {@code docs/recording.md}; streams are recorded whole without delaying the caller.
 */
class RecordingInterceptorTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-28T22:00:00.123Z"), ZoneOffset.UTC);
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "Bearer upstream-secret";

  @StartStop final MockWebServer server = new MockWebServer();
  @TempDir Path dir;

  /** Keeps every record; refuses admission while {@link #down} is set. */
  static final class CapturingRecorder implements Recorder {
    final List<SessionRecord> records = new CopyOnWriteArrayList<>();
    final List<SessionRecord> intents = new CopyOnWriteArrayList<>();
    volatile boolean down;

    @Override
    public void admit() throws IOException {
      if (down) throw new IOException("disk full");
    }

    @Override
    public void record(SessionRecord record) {
      records.add(record);
    }

    @Override
    public void intent(SessionRecord record) {
      intents.add(record);
    }
  }

  final CapturingRecorder recorder = new CapturingRecorder();


  static String policy(String extra) {
    return """
        version: 1
        request: {max-body: 1KiB}
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat, completion]
        block:
          presets: [ollama-admin]
        parameters:
          deny: [logprobs]
        """.formatted(sha256(ALICE)) + extra;
  }

  static final CredentialProvider CREDENTIAL = () -> new Credential("Authorization", UPSTREAM);

  OkHttpClient client(PamEngine engine) {
    return PamInterceptor.of(engine).install(new OkHttpClient.Builder())
        .readTimeout(10, TimeUnit.SECONDS).retryOnConnectionFailure(false).build();
  }

  PamEngine engine(CredentialProvider credentials) {
    return PamEngine.builder().policy(Policy.parse(policy(""))).clock(CLOCK)
        .credentialProvider(credentials).recorder(recorder).build();
  }

  Response post(OkHttpClient client, String path, String key, String body) throws IOException {
    Request.Builder b = new Request.Builder().url(server.url(path)).post(RequestBody.create(body, JSON));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return client.newCall(b.build()).execute();
  }

  static String chat(String extra) {
    return "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + extra + "}";
  }

  // --- allow -------------------------------------------------------------------------------------

  @Test
  void anAllowedExchangeIsRecordedOnceWithEveryField() throws Exception {
    String answer = "{\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"Hello\"}}],"
        + "\"usage\":{\"prompt_tokens\":41,\"completion_tokens\":120,\"total_tokens\":161}}";
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .body(answer).build());
    String body = chat("");
    try (Response r = post(client(engine(CREDENTIAL)), "/v1/chat/completions", ALICE, body)) {
      assertThat(r.body().string()).isEqualTo(answer);
    }
    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(UPSTREAM);

    assertThat(recorder.records).singleElement().satisfies(rec -> {
      assertThat(rec.type()).isEqualTo("exchange");
      assertThat(rec.id()).hasSize(26);
      assertThat(rec.time()).isEqualTo(CLOCK.instant());
      assertThat(rec.durationMs()).isNotNegative();
      assertThat(rec.principal().subject()).isEqualTo("alice");
      assertThat(rec.principal().groups()).containsExactly("ml-engineers");
      assertThat(rec.request().method()).isEqualTo("POST");
      assertThat(rec.request().path()).isEqualTo("/v1/chat/completions");
      assertThat(rec.request().operation()).isEqualTo("chat");
      assertThat(rec.request().model()).isEqualTo("llama-3.1-8b");
      assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
      assertThat(rec.request().headers().get("content-type")).singleElement().asString().startsWith("application/json");
      assertThat(rec.request().bytes()).isEqualTo(body.length());
      assertThat(rec.request().body()).isEqualTo(body);
      assertThat(rec.decision()).isEqualTo(new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null));
      assertThat(rec.approval()).isNull();
      assertThat(rec.response().status()).isEqualTo(200);
      assertThat(rec.response().streamed()).isFalse();
      assertThat(rec.response().bytes()).isEqualTo(answer.length());
      assertThat(rec.response().complete()).isTrue();
      assertThat(rec.response().body()).isEqualTo(answer);
      assertThat(rec.response().usage())
          .isEqualTo(Map.of("prompt_tokens", 41L, "completion_tokens", 120L, "total_tokens", 161L));
      assertThat(rec.toString()).doesNotContain(ALICE).doesNotContain("upstream-secret");
    });
    assertThat(recorder.intents).as("no recording section: no strict intent").isEmpty();
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
        new Denial("bad_path", "/api/pull;x=1", ALICE, ok, 400, "bad_path", "path", null, null, null, false),
        new Denial("bad_request", "/v1/chat/completions", ALICE, "{\"model\":", 400, "bad_request", "request",
            "alice", null, null, true),
        new Denial("body_too_large", "/v1/chat/completions", ALICE, chat(",\"pad\":\"" + "x".repeat(2000) + "\""),
            413, "body_too_large", "request.max-body", null, null, null, false),
        // Identity comes from the head: an unauthenticated body is not read, so not recorded.
        new Denial("unauthenticated", "/v1/chat/completions", "not-a-key", ok, 401, "unauthenticated", "identity",
            null, null, null, false),
        new Denial("blocked", "/api/pull", ALICE, "{\"name\":\"llama3\"}", 403, "blocked",
            "block.presets.ollama-admin:/api/pull", "alice", null, null, true),
        new Denial("not_allowed", "/v1/unknown", ALICE, ok, 403, "not_allowed", "allow", "alice", null, null, true),
        new Denial("not_entitled", "/v1/chat/completions", ALICE, ok.replace("llama-3.1-8b", "gpt-4o"), 403,
            "not_entitled", "entitlements", "alice", "chat", "gpt-4o", true),
        new Denial("parameter_denied", "/v1/chat/completions", ALICE, chat(",\"logprobs\":true"), 403,
            "parameter_denied", "parameters.deny", "alice", "chat", "llama-3.1-8b", true))
        .map(Arguments::of);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("denials")
  void everyDenialIsRecordedOnceWithTheErrorThatWasSent(Denial d) throws Exception {
    OkHttpClient client = client(engine(CREDENTIAL));
    String sent;
    try (Response r = post(client, d.path(), d.key(), d.body())) {
      assertThat(r.code()).isEqualTo(d.status());
      sent = r.body().string();
    }
    assertDenialRecord(d, sent);
    assertThat(server.getRequestCount()).isZero();
  }

  private void assertDenialRecord(Denial d, String sent) throws Exception {
    JsonNode error = MAPPER.readTree(sent).get("error");
    assertThat(error.get("code").asText()).isEqualTo(d.code());
    assertThat(recorder.records).singleElement().satisfies(rec -> {
      assertThat(rec.type()).isEqualTo("exchange");
      assertThat(rec.id()).isEqualTo(error.get("request_id").asText());
      if (d.subject() == null) assertThat(rec.principal()).isNull();
      else assertThat(rec.principal().subject()).isEqualTo(d.subject());
      assertThat(rec.request().method()).isEqualTo("POST");
      assertThat(rec.request().path()).isEqualTo(d.path());
      assertThat(rec.request().operation()).isEqualTo(d.operation());
      assertThat(rec.request().model()).isEqualTo(d.model());
      assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
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
      assertThat(rec.toString()).doesNotContain(ALICE);
    });
  }

  @Test
  void anUnavailableUpstreamCredentialIsRecordedOnce() throws Exception {
    OkHttpClient client = client(engine(() -> {
      throw new CredentialProvider.CredentialUnavailableException("variable X is not set");
    }));
    String sent;
    try (Response r = post(client, "/v1/chat/completions", ALICE, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      sent = r.body().string();
    }
    assertDenialRecord(new Denial("upstream_credential_unavailable", "/v1/chat/completions", ALICE, chat(""), 503,
        "upstream_credential_unavailable", "upstream.credential", "alice", "chat", "llama-3.1-8b", true), sent);
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void unavailableRecordingRefuses503AndForwardsNothing() throws Exception {
    OkHttpClient client = client(engine(CREDENTIAL));
    recorder.down = true;
    String sent;
    try (Response r = post(client, "/v1/chat/completions", ALICE, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      sent = r.body().string();
    }
    assertThat(server.getRequestCount()).isZero();
    assertThat(MAPPER.readTree(sent).get("error").get("message").asText())
        .isEqualTo("recording is unavailable, the request was not forwarded");
    // still down at the end: the record cannot be taken, and the caller was not kept waiting for it
    assertThat(recorder.records).isEmpty();

    recorder.down = false;
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Response r = post(client, "/v1/chat/completions", ALICE, chat(""))) {
      assertThat(r.code()).as("recovers with the recorder").isEqualTo(200);
      r.body().string();
    }
    assertThat(recorder.records).singleElement()
        .satisfies(rec -> assertThat(rec.decision().outcome()).isEqualTo("allow"));
  }

  @Test
  void aRequestRefusedForRecordingIsRecordedWhenTheRecorderTakesItAtTheEnd() throws Exception {
    // The recorder refuses admission at the start only (e.g. queue full for a moment).
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
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).clock(CLOCK)
        .credentialProvider(CREDENTIAL).recorder(flaky).build();
    String sent;
    try (Response r = post(client(engine), "/v1/chat/completions", ALICE, chat(""))) {
      assertThat(r.code()).isEqualTo(503);
      sent = r.body().string();
    }
    assertDenialRecord(new Denial("recording_unavailable", "/v1/chat/completions", ALICE, chat(""), 503,
        "recording_unavailable", "recording", "alice", "chat", "llama-3.1-8b", true), sent);
    assertThat(server.getRequestCount()).isZero();
  }

  // --- streams -----------------------------------------------------------------------------------

  /** Writes chunked SSE: the first event, then waits for {@code release}, then the rest. */
  static MockResponse heldStream(String first, String rest, CountDownLatch release, CountDownLatch finished) {
    MockResponseBody body = new MockResponseBody() {
      @Override
      public long getContentLength() {
        return -1;
      }

      @Override
      public void writeTo(BufferedSink sink) throws IOException {
        chunk(sink, first);
        sink.flush();
        try {
          if (!release.await(10, TimeUnit.SECONDS)) throw new IOException("the client never read the first event");
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException(e);
        }
        chunk(sink, rest);
        sink.writeUtf8("0\r\n\r\n");
        sink.flush();
        finished.countDown();
      }

      private void chunk(BufferedSink sink, String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        sink.writeUtf8(Integer.toHexString(bytes.length)).writeUtf8("\r\n").write(bytes).writeUtf8("\r\n");
      }
    };
    return new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .body(body).removeHeader("Content-Length").setHeader("Transfer-Encoding", "chunked").build();
  }

  static String readEvent(BufferedSource source) throws IOException {
    StringBuilder event = new StringBuilder();
    for (String line; (line = source.readUtf8Line()) != null; ) {
      event.append(line).append('\n');
      if (line.isEmpty()) break;
    }
    return event.toString();
  }

  @Test
  void aStreamIsRecordedWholeWithUsageWhileTheCallerGetsTheFirstEventAtOnce() throws Exception {
    String first = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n";
    String rest = "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n"
        + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
        + "data: [DONE]\n\n";
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch finished = new CountDownLatch(1);
    server.enqueue(heldStream(first, rest, release, finished));

    String received;
    try (Response r = post(client(engine(CREDENTIAL)), "/v1/chat/completions", ALICE,
        chat(",\"stream\":true,\"stream_options\":{\"include_usage\":true}"))) {
      BufferedSource source = r.body().source();
      assertThat(readEvent(source)).isEqualTo(first);
      // The upstream is still holding the rest: the first event came through at once.
      assertThat(finished.getCount()).isEqualTo(1);
      assertThat(recorder.records).isEmpty();
      release.countDown();
      received = first + source.readUtf8();
    }
    assertThat(received).isEqualTo(first + rest);
    assertThat(recorder.records).singleElement().satisfies(rec -> {
      assertThat(rec.response().streamed()).isTrue();
      assertThat(rec.response().complete()).isTrue();
      assertThat(rec.response().body()).isEqualTo(first + rest);
      assertThat(rec.response().bytes()).isEqualTo((first + rest).length());
      assertThat(rec.response().usage())
          .isEqualTo(Map.of("prompt_tokens", 9L, "completion_tokens", 2L, "total_tokens", 11L));
    });
  }

  @Test
  void anUpstreamThatBreaksMidStreamIsRecordedIncomplete() throws Exception {
    StringBuilder sse = new StringBuilder();
    for (int i = 0; i < 200; i++) sse.append("data: {\"choices\":[{\"delta\":{\"content\":\"").append(i).append("\"}}]}\n\n");
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .chunkedBody(sse.toString(), 64).onResponseBody(new SocketEffect.CloseSocket()).build());

    try (Response r = post(client(engine(CREDENTIAL)), "/v1/chat/completions", ALICE, chat(",\"stream\":true"))) {
      assertThat(r.code()).isEqualTo(200);
      assertThatThrownBy(() -> r.body().source().readUtf8()).isInstanceOf(IOException.class);
    }
    assertThat(recorder.records).singleElement().satisfies(rec -> {
      assertThat(rec.decision().outcome()).isEqualTo("allow");
      assertThat(rec.response().streamed()).isTrue();
      assertThat(rec.response().complete()).isFalse();
      assertThat(rec.response().bytes()).isLessThan(sse.length());
      assertThat(rec.response().body()).hasSize((int) rec.response().bytes());
      assertThat(sse.toString()).startsWith(rec.response().body());
    });
  }

  // --- the default JSONL recorder ----------------------------------------------------------------

  static List<JsonNode> lines(Path dir) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList()) {
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isEmpty()) out.add(MAPPER.readTree(line));
        }
      }
    }
    return out;
  }

  @Test
  void strictJsonlRecordingWritesTheIntentThenTheExchangeWithTheSameId() throws Exception {
    Path recordings = dir.resolve("recordings");
    PamEngine engine = PamEngine.builder()
        .policy(Policy.parse(policy("recording: {directory: \"" + recordings + "\", durability: strict}\n")))
        .clock(CLOCK).credentialProvider(CREDENTIAL).build();
    String answer = "{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}";
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch finished = new CountDownLatch(1);
    server.enqueue(heldStream("data: {\"type\":\"ping\"}\n\n", "data: " + answer + "\n\n", release, finished));
    try {
      try (Response r = post(client(engine), "/v1/chat/completions", ALICE, chat(""))) {
        BufferedSource source = r.body().source();
        readEvent(source);
        // Forwarded, response under way: the intent is already on disk, the exchange not yet.
        assertThat(lines(recordings)).singleElement()
            .satisfies(intent -> assertThat(intent.get("type").asText()).isEqualTo("intent"));
        release.countDown();
        source.readUtf8();
      }
    } finally {
      engine.close();
    }

    List<JsonNode> lines = lines(recordings);
    assertThat(lines).hasSize(2);
    JsonNode intent = lines.get(0);
    JsonNode exchange = lines.get(1);
    assertThat(intent.get("type").asText()).isEqualTo("intent");
    assertThat(intent.get("principal").get("subject").asText()).isEqualTo("alice");
    assertThat(intent.get("request").get("path").asText()).isEqualTo("/v1/chat/completions");
    assertThat(exchange.get("type").asText()).isEqualTo("exchange");
    assertThat(exchange.get("id").asText()).isEqualTo(intent.get("id").asText());
    assertThat(exchange.get("decision").get("outcome").asText()).isEqualTo("allow");
    assertThat(exchange.get("request").get("headers").get("authorization").asText()).isEqualTo("[REDACTED]");
    assertThat(exchange.get("response").get("usage").get("prompt_tokens").asLong()).isEqualTo(3);
    assertThat(exchange.get("response").get("usage").get("completion_tokens").asLong()).isEqualTo(4);
    assertThat(exchange.get("response").get("complete").asBoolean()).isTrue();
    assertThat(exchange.get("prev").asText()).isEqualTo(intent.get("hash").asText());

    // The same through the public reader: the chain verifies, the intent precedes its exchange.
    Recordings read = Recordings.open(recordings);
    assertThat(read.verify().ok()).isTrue();
    assertThat(read.entries()).extracting(e -> e.record().type()).containsExactly("intent", "exchange");
    SessionRecord found = read.find(intent.get("id").asText()).orElseThrow().record();
    assertThat(found.principal().subject()).isEqualTo("alice");
    assertThat(found.decision().outcome()).isEqualTo("allow");
    assertThat(found.response().complete()).isTrue();
    assertThat(read.list("alice", null)).hasSize(1);
    for (Path f : Files.list(recordings).filter(p -> p.toString().endsWith(".jsonl")).toList()) {
      assertThat(Files.readString(f)).doesNotContain(ALICE).doesNotContain("upstream-secret");
    }
  }
}
