package dev.inferpam.examples.recorders;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.gateway.Gateway;
import dev.inferpam.gateway.TestPolicies;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.slf4j.event.KeyValuePair;
import org.slf4j.event.Level;
import org.slf4j.event.LoggingEvent;

/** What {@link Slf4jRecorder} logs by default: one line per record, no bodies. */
class Slf4jRecorderTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Instant T0 = Instant.parse("2026-11-28T22:00:00.123Z");

  private final CapturingLogger logger = new CapturingLogger(Slf4jRecorder.LOGGER_NAME);
  private final List<String> sink = new CopyOnWriteArrayList<>();
  private final Slf4jRecorder recorder = new Slf4jRecorder(logger, sink::add);

  @Test
  void logsEachRecordAsOneInfoLineWithoutBodiesButWithSizes() throws Exception {
    recorder.record(chat("ex-1"));

    assertThat(logger.events).hasSize(1);
    LoggingEvent event = logger.events.get(0);
    assertThat(event.getLevel()).isEqualTo(Level.INFO);
    assertThat(event.getLoggerName()).isEqualTo("dev.inferpam.recording");
    String line = event.getMessage();
    assertThat(line).doesNotContain("\n").isEqualTo(sink.get(0));

    JsonNode json = JSON.readTree(line);
    assertThat(json.path("v").asInt()).isEqualTo(1);
    assertThat(json.path("type").asText()).isEqualTo("exchange");
    assertThat(json.path("id").asText()).isEqualTo("ex-1");
    assertThat(json.path("request").has("body")).isFalse();
    assertThat(json.path("response").has("body")).isFalse();
    assertThat(json.path("request").path("bytes").asLong()).isEqualTo(41);
    assertThat(json.path("response").path("bytes").asLong()).isEqualTo(1843);
    assertThat(json.path("request").path("body_sha256").asText()).isEqualTo("ab".repeat(32));
    assertThat(json.path("response").path("usage").path("completion_tokens").asLong())
        .isEqualTo(120);
    assertThat(line).doesNotContain("secret question").doesNotContain("secret answer");
  }

  @Test
  void logsSensitiveHeadersAsRecorded() throws Exception {
    recorder.record(chat("ex-1"));
    JsonNode headers = JSON.readTree(sink.get(0)).path("request").path("headers");
    assertThat(headers.path("authorization").asText()).isEqualTo("[REDACTED]");
    assertThat(headers.path("content-type").asText()).isEqualTo("application/json");
    assertThat(headers.path("accept")).hasSize(2);
  }

  @Test
  void addsKeyValuePairsForBackEndsThatIndexThem() throws Exception {
    recorder.record(chat("ex-1"));
    List<KeyValuePair> pairs = logger.events.get(0).getKeyValuePairs();
    assertThat(pairs)
        .extracting(p -> p.key + "=" + p.value)
        .containsExactly(
            "inferpam.id=ex-1",
            "inferpam.subject=alice",
            "inferpam.outcome=allow",
            "inferpam.status=200");
  }

  @Test
  void readsBackWhatItLoggedBodiesAside() throws Exception {
    SessionRecord r = chat("ex-1");
    recorder.record(r);
    SessionRecord back = Slf4jRecorder.fromJson(sink.get(0));
    assertThat(back.request().body()).isNull();
    assertThat(back.response().body()).isNull();
    assertThat(back)
        .usingRecursiveComparison()
        .ignoringFields("request.body", "response.body")
        .isEqualTo(r);
  }

  @Test
  void keepsBodiesWhenAskedTo() throws Exception {
    Slf4jRecorder keeping = new Slf4jRecorder(logger, sink::add, Slf4jRecorder.Bodies.KEEP);
    SessionRecord r = chat("ex-1");
    keeping.record(r);
    assertThat(Slf4jRecorder.fromJson(sink.get(0))).isEqualTo(r);
  }

  @Test
  void aFailingSinkMeansNotStoredAndClosedMeansRefused() throws Exception {
    Slf4jRecorder failing =
        new Slf4jRecorder(
            logger,
            line -> {
              throw new IllegalStateException("disk full");
            });
    assertThatThrownBy(() -> failing.record(chat("ex-1")))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("disk full");
    assertThat(logger.events).isEmpty();

    recorder.close();
    assertThatThrownBy(() -> recorder.record(chat("ex-2")))
        .isInstanceOf(IOException.class)
        .hasMessage("Slf4jRecorder is closed");
    recorder.close(); // idempotent
  }

  @Test
  void recordsEveryExchangeOfTheGateway() throws Exception {
    List<String> lines = new ArrayList<>();
    Slf4jRecorder logging =
        new Slf4jRecorder(
            logger,
            line -> {
              synchronized (lines) {
                lines.add(line);
              }
            });
    OkHttpClient client = new OkHttpClient();
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
      Gateway gateway =
          Gateway.start(TestPolicies.engine(logging), upstream.url("/"), "127.0.0.1", 0);
      try {
        HttpUrl url =
            HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
        for (String key : new String[] {TestPolicies.ALICE_KEY, TestPolicies.CI_KEY}) {
          String model = key.equals(TestPolicies.ALICE_KEY) ? "llama-3.1-8b" : "gpt-4o-mini";
          Request request =
              new Request.Builder()
                  .url(url)
                  .header("Authorization", "Bearer " + key)
                  .post(
                      RequestBody.create(
                          TestPolicies.chat(model, ""), MediaType.get("application/json")))
                  .build();
          try (Response response = client.newCall(request).execute()) {
            response.body().string();
          }
        }
      } finally {
        // before close(): an idle keep-alive connection would hold up the drain
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        gateway.close();
      }
    }
    // the gateway is closed: both exchanges were recorded
    List<SessionRecord> records = new ArrayList<>();
    for (String line : lines) records.add(Slf4jRecorder.fromJson(line));
    assertThat(records)
        .extracting(
            r ->
                r.principal().subject()
                    + " "
                    + r.decision().outcome()
                    + " "
                    + r.response().status())
        .containsExactly("alice allow 200", "ci-bot deny 403");
    assertThat(String.join("\n", lines))
        .doesNotContain(TestPolicies.ALICE_KEY)
        .doesNotContain("upstream-secret");
  }

  private static SessionRecord chat(String id) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        T0,
        184,
        new Principal("alice", Set.of("ml-engineers"), Principal.VIA_API_KEY, null, Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "llama-3.1-8b",
            Map.of(
                "content-type",
                List.of("application/json"),
                "accept",
                List.of("text/event-stream", "*/*"),
                "authorization",
                List.of("[REDACTED]")),
            41,
            "{\"messages\":[\"secret question\"]}",
            "ab".repeat(32)),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(
            200,
            true,
            1843,
            true,
            "data: secret answer\n\n",
            Map.of(),
            Map.of("prompt_tokens", 41L, "completion_tokens", 120L)));
  }
}
