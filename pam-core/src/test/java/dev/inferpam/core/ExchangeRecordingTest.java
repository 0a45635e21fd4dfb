package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.recording.RecordBuilder;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the engine hands the recorder: admission, strict intents, bodies per mode, usage, caps. */
class ExchangeRecordingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String KEY = "svc-key-1";
  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-28T22:00:00.123Z"), ZoneOffset.UTC);
  static final String CHAT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"my secret\"}]}";

  @TempDir Path dir;

  /** Keeps what it is given; fails admission or intents on demand. */
  static final class CapturingRecorder implements Recorder {
    final List<SessionRecord> records = new CopyOnWriteArrayList<>();
    final List<SessionRecord> intents = new CopyOnWriteArrayList<>();
    final AtomicInteger admitted = new AtomicInteger();
    final AtomicInteger closed = new AtomicInteger();
    final AtomicInteger flushed = new AtomicInteger();
    volatile Exception admitFailure;
    volatile Exception intentFailure;

    @Override
    public void admit() throws IOException {
      admitted.incrementAndGet();
      throwIfSet(admitFailure);
    }

    @Override
    public void record(SessionRecord record) {
      records.add(record);
    }

    @Override
    public void intent(SessionRecord record) throws IOException {
      throwIfSet(intentFailure);
      intents.add(record);
    }

    @Override
    public void flush() {
      flushed.incrementAndGet();
    }

    @Override
    public void close() {
      closed.incrementAndGet();
    }

    private static void throwIfSet(Exception e) throws IOException {
      if (e instanceof IOException io) throw io;
      if (e instanceof RuntimeException re) throw re;
    }
  }

  /** Upper-cases text and counts the word "SECRET" per session, to see where masking ran. */
  static final class UpperCasingMasker implements Masker {
    final AtomicInteger sessions = new AtomicInteger();

    @Override
    public Session open() {
      sessions.incrementAndGet();
      return new Session() {
        final StringBuilder seen = new StringBuilder();

        @Override
        public String push(String text) {
          seen.append(text);
          return text.toUpperCase(Locale.ROOT);
        }

        @Override
        public String finish() {
          return "";
        }

        @Override
        public Map<String, Integer> counts() {
          String all = seen.toString().toUpperCase(Locale.ROOT);
          int n = 0;
          for (int i = all.indexOf("SECRET"); i >= 0; i = all.indexOf("SECRET", i + 1)) n++;
          return n == 0 ? Map.of() : Map.of("secret", n);
        }
      };
    }
  }

  static String sha256Hex(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  static String policy(String extra) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
        upstream:
          credential: {header: X-Model-Key, scheme: "", from-env: MODEL_KEY_FOR_TESTS}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        """
            .formatted(sha256Hex(KEY.getBytes(StandardCharsets.UTF_8)))
        + extra;
  }

  String recording(String bodies, String durability) {
    return "recording:\n  directory: "
        + dir
        + "\n  bodies: "
        + bodies
        + "\n  durability: "
        + durability
        + "\n";
  }

  static PamEngine engine(String policy, Recorder recorder, Masker masker) {
    PamEngine.Builder b =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .clock(CLOCK)
            .credentialProvider(() -> new Credential("X-Model-Key", "upstream-secret"));
    if (recorder != null) b.recorder(recorder);
    if (masker != null) b.masker(masker);
    return b.build();
  }

  static Verdict call(PamEngine engine, String key, String body) {
    return call(engine, "/v1/chat/completions", key, body);
  }

  static Verdict call(PamEngine engine, String path, String key, String body) {
    Map<String, List<String>> headers = new HashMap<>();
    headers.put("Content-Type", List.of("application/json"));
    headers.put("X-Model-Key", List.of("caller-tries-its-own"));
    if (key != null) headers.put("Authorization", List.of("Bearer " + key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead("POST", path, null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  static void respond(Verdict ex, String contentType, String body, int pieces) {
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, Map.of("Content-Type", List.of(contentType)));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    int step = Math.max(1, bytes.length / pieces);
    for (int off = 0; off < bytes.length; off += step)
      relay.delivered(bytes, off, Math.min(step, bytes.length - off));
  }

  // --- admission ---------------------------------------------------------------------------------

  @Test
  void admissionFailureRefusesAnAllowedRequest503AndStillAttemptsItsRecordAtTheEnd()
      throws Exception {
    CapturingRecorder rec = new CapturingRecorder();
    rec.admitFailure = new IOException("disk full");
    PamEngine engine = engine(policy(""), rec, null);

    Verdict ex = call(engine, KEY, CHAT);

    assertThat(ex).isNotInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.credential(ex)).as("nothing to forward with").isNull();
    Decision.Deny deny = (Decision.Deny) ex.decision();
    assertThat(deny.status()).isEqualTo(503);
    assertThat(deny.code()).isEqualTo("recording_unavailable");
    assertThat(deny.message())
        .isEqualTo("recording is unavailable, the request was not forwarded")
        .as("no operator detail reaches the caller")
        .doesNotContain("disk full");
    assertThat(deny.rule()).isEqualTo("recording");
    JsonNode error = JSON.readTree(Verdicts.error(ex).body()).get("error");
    assertThat(error.get("code").asText()).isEqualTo("recording_unavailable");
    assertThat(error.get("request_id").asText()).isEqualTo(ex.id());

    rec.admitFailure = null; // the recorder has room again by the time the 503 was sent
    Verdicts.end(ex, true);
    assertThat(rec.admitted).as("asked again at the end").hasValue(2);
    assertThat(rec.records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("deny");
              assertThat(r.decision().code()).isEqualTo("recording_unavailable");
              assertThat(r.response().status()).isEqualTo(503);
              assertThat(r.response().body()).isEqualTo(Verdicts.error(ex).bodyText());
            });
  }

  @Test
  void aRecordStillRefusedAtTheEndIsDroppedWithoutWaiting() {
    CapturingRecorder rec = new CapturingRecorder();
    rec.admitFailure = new IOException("recording queue full");
    Verdict ex = call(engine(policy(""), rec, null), KEY, CHAT);
    Verdicts.end(ex, true);
    assertThat(rec.records).isEmpty();
    assertThat(rec.admitted).hasValue(2);
  }

  @Test
  void admissionRuntimeFailureAlsoRefuses503() {
    CapturingRecorder rec = new CapturingRecorder();
    rec.admitFailure = new IllegalStateException("/var/secret/path broken");
    Verdict ex = call(engine(policy(""), rec, null), KEY, CHAT);
    assertThat(((Decision.Deny) ex.decision()).code()).isEqualTo("recording_unavailable");
    assertThat(((Decision.Deny) ex.decision()).message()).doesNotContain("/var/secret/path");
  }

  @Test
  void aRequestDeniedAnywayKeepsItsOwnDenialWhenRecordingIsDown() {
    CapturingRecorder rec = new CapturingRecorder();
    rec.admitFailure = new IOException("queue full");
    PamEngine engine = engine(policy(""), rec, null);

    Verdict ex = call(engine, "wrong-key", CHAT);
    assertThat(((Decision.Deny) ex.decision()).code()).isEqualTo("unauthenticated");
    rec.admitFailure = null;
    Verdicts.end(ex, true);
    assertThat(rec.records)
        .singleElement()
        .satisfies(r -> assertThat(r.decision().code()).isEqualTo("unauthenticated"));
  }

  @Test
  void everyExchangeIsAdmittedOnceDeniedOnesToo() {
    CapturingRecorder rec = new CapturingRecorder();
    PamEngine engine = engine(policy(""), rec, null);
    Verdicts.end(call(engine, KEY, CHAT), true);
    Verdicts.end(call(engine, null, CHAT), true);
    Verdicts.end(call(engine, "/api/%2e%2e/x", KEY, CHAT), true);
    assertThat(rec.admitted).hasValue(3);
    assertThat(rec.records).hasSize(3);
  }

  // --- strict intents ----------------------------------------------------------------------------

  @Test
  void strictWritesTheIntentBeforeBeginReturns() {
    CapturingRecorder rec = new CapturingRecorder();
    PamEngine engine = engine(policy(recording("full", "strict")), rec, null);

    Verdict ex = call(engine, KEY, CHAT);

    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    assertThat(rec.records).isEmpty();
    assertThat(rec.intents)
        .singleElement()
        .satisfies(
            intent -> {
              assertThat(intent.type()).isEqualTo(SessionRecord.TYPE_INTENT);
              assertThat(intent.id()).isEqualTo(ex.id());
              assertThat(intent.time()).isEqualTo(CLOCK.instant());
              assertThat(intent.principal().subject()).isEqualTo("svc");
              assertThat(intent.request().method()).isEqualTo("POST");
              assertThat(intent.request().path()).isEqualTo("/v1/chat/completions");
              assertThat(intent.request().operation()).isEqualTo("chat");
              assertThat(intent.request().model()).isEqualTo("llama-3");
              assertThat(intent.request().body()).isEqualTo(CHAT);
              assertThat(intent.request().headers().get("authorization"))
                  .containsExactly("[REDACTED]");
              assertThat(intent.decision()).isNull();
              assertThat(intent.response()).isNull();
            });

    respond(ex, "application/json", "{}", 1);
    Verdicts.end(ex, true);
    assertThat(rec.records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.type()).isEqualTo(SessionRecord.TYPE_EXCHANGE);
              assertThat(r.id()).isEqualTo(ex.id());
              assertThat(r.request()).isEqualTo(rec.intents.get(0).request());
            });
  }

  @Test
  void intentFailureRefuses503AndNothingIsForwarded() {
    CapturingRecorder rec = new CapturingRecorder();
    rec.intentFailure = new IOException("fsync failed");
    PamEngine engine = engine(policy(recording("masked", "strict")), rec, null);

    Verdict ex = call(engine, KEY, CHAT);

    assertThat(ex).isNotInstanceOf(Verdict.Allowed.class);
    assertThat(Verdicts.credential(ex)).isNull();
    Decision.Deny deny = (Decision.Deny) ex.decision();
    assertThat(deny.status()).isEqualTo(503);
    assertThat(deny.code()).isEqualTo("recording_unavailable");
    assertThat(deny.message()).isEqualTo("recording is unavailable, the request was not forwarded");
    Verdicts.end(ex, true);
    assertThat(rec.records)
        .singleElement()
        .satisfies(r -> assertThat(r.decision().code()).isEqualTo("recording_unavailable"));
  }

  @Test
  void noIntentForDeniedRequestsOtherDurabilitiesOrWithoutARecordingSection() {
    CapturingRecorder strict = new CapturingRecorder();
    Verdicts.end(
        call(engine(policy(recording("masked", "strict")), strict, null), null, CHAT), true);
    assertThat(strict.intents).isEmpty();

    for (String durability : List.of("batched", "async")) {
      CapturingRecorder rec = new CapturingRecorder();
      Verdicts.end(
          call(engine(policy(recording("masked", durability)), rec, null), KEY, CHAT), true);
      assertThat(rec.intents).as(durability).isEmpty();
      assertThat(rec.records).as(durability).hasSize(1);
    }

    CapturingRecorder builderOnly = new CapturingRecorder();
    Verdicts.end(call(engine(policy(""), builderOnly, null), KEY, CHAT), true);
    assertThat(builderOnly.intents).isEmpty();
    assertThat(builderOnly.records).hasSize(1);
  }

  // --- bodies ------------------------------------------------------------------------------------

  @Test
  void fullKeepsBodiesAsTheyWere() {
    CapturingRecorder rec = new CapturingRecorder();
    UpperCasingMasker masker = new UpperCasingMasker();
    Verdict ex = call(engine(policy(recording("full", "batched")), rec, masker), KEY, CHAT);
    respond(ex, "application/json", "{\"text\":\"a secret answer\"}", 3);
    Verdicts.end(ex, true);

    SessionRecord r = rec.records.get(0);
    assertThat(r.request().body()).isEqualTo(CHAT);
    assertThat(r.request().bodySha256()).isNull();
    assertThat(r.response().body()).isEqualTo("{\"text\":\"a secret answer\"}");
    assertThat(r.response().masked()).isEmpty();
    assertThat(masker.sessions).hasValue(0);
  }

  @Test
  void maskedRunsTheMaskerOverBothBodiesAndCountsTheResponse() {
    CapturingRecorder rec = new CapturingRecorder();
    UpperCasingMasker masker = new UpperCasingMasker();
    Verdict ex = call(engine(policy(recording("masked", "batched")), rec, masker), KEY, CHAT);
    respond(ex, "application/json", "{\"text\":\"a secret, another secret\"}", 4);
    Verdicts.end(ex, true);

    SessionRecord r = rec.records.get(0);
    assertThat(r.request().body()).isEqualTo(CHAT.toUpperCase(Locale.ROOT));
    assertThat(r.response().body()).isEqualTo("{\"TEXT\":\"A SECRET, ANOTHER SECRET\"}");
    assertThat(r.response().masked()).isEqualTo(Map.of("secret", 2));
    assertThat(r.response().bytes()).isEqualTo("{\"text\":\"a secret, another secret\"}".length());
    assertThat(r.response().bodySha256()).isNull();
  }

  @Test
  void maskedIsTheDefaultWithoutARecordingSection() {
    CapturingRecorder rec = new CapturingRecorder();
    Verdict ex = call(engine(policy(""), rec, new UpperCasingMasker()), KEY, CHAT);
    respond(ex, "application/json", "{\"a\":\"secret\"}", 1);
    Verdicts.end(ex, true);
    assertThat(rec.records.get(0).response().body()).isEqualTo("{\"A\":\"SECRET\"}");
    assertThat(rec.records.get(0).response().masked()).isEqualTo(Map.of("secret", 1));
  }

  @Test
  void maskedLeavesTheEnginesOwnErrorAsSent() {
    CapturingRecorder rec = new CapturingRecorder();
    Verdict ex =
        call(
            engine(policy(recording("masked", "batched")), rec, new UpperCasingMasker()),
            "/v1/chat/completions",
            KEY,
            "{\"model\":\"gpt-4o\"}");
    Verdicts.end(ex, true);
    SessionRecord r = rec.records.get(0);
    assertThat(r.decision().code()).isEqualTo("not_entitled");
    assertThat(r.response().body()).isEqualTo(Verdicts.error(ex).bodyText());
    assertThat(r.request().body()).isEqualTo("{\"MODEL\":\"GPT-4O\"}");
  }

  @Test
  void aFailingMaskerStoresNoBodyRatherThanAnUnmaskedOne() {
    CapturingRecorder rec = new CapturingRecorder();
    Masker broken =
        () -> {
          throw new IllegalStateException("detector crashed");
        };
    Verdict ex = call(engine(policy(recording("masked", "batched")), rec, broken), KEY, CHAT);
    respond(ex, "application/json", "{\"a\":\"secret\"}", 1);
    Verdicts.end(ex, true);
    SessionRecord r = rec.records.get(0);
    assertThat(r.request().body()).isNull();
    assertThat(r.response().body()).isNull();
    assertThat(r.response().bytes()).isEqualTo(14);
  }

  @Test
  void theDefaultRecorderStoresTheSameMaskedRecordAsOneBuiltOnTheRequestThread() throws Exception {
    // The JSONL recorder finishes the record (masks the request body) on its writer thread.
    CapturingRecorder rec = new CapturingRecorder();
    Verdict captured =
        call(
            engine(policy(recording("masked", "batched")), rec, new UpperCasingMasker()),
            KEY,
            CHAT);
    respond(captured, "application/json", "{\"text\":\"a secret\"}", 3);
    Verdicts.end(captured, true);

    try (PamEngine engine =
        engine(policy(recording("masked", "batched")), null, new UpperCasingMasker())) {
      Verdict ex = call(engine, KEY, CHAT);
      respond(ex, "application/json", "{\"text\":\"a secret\"}", 3);
      Verdicts.end(ex, true);
    }
    List<Recordings.Entry> stored = Recordings.open(dir).entries();
    assertThat(stored).hasSize(1);
    SessionRecord r = stored.get(0).record();
    SessionRecord expected = rec.records.get(0);
    assertThat(r.request().body()).isEqualTo(CHAT.toUpperCase(Locale.ROOT));
    assertThat(r.request()).isEqualTo(expected.request());
    assertThat(r.response()).isEqualTo(expected.response());
    assertThat(r.decision()).isEqualTo(expected.decision());
    assertThat(r.principal()).isEqualTo(expected.principal());
  }

  @Test
  void bytesReportedAfterTheEndDoNotReachTheRecord() throws Exception {
    try (PamEngine engine = engine(policy(recording("full", "batched")), null, null)) {
      Verdict ex = call(engine, KEY, CHAT);
      respond(ex, "application/json", "{\"a\":1}", 1);
      Verdicts.end(ex, false);
      byte[] late = "{\"late\":true}".getBytes(StandardCharsets.UTF_8);
      ResponsePlan.Relay relay = Verdicts.relay(Verdicts.allowed(ex), 500, Map.of());
      relay.delivered(late, 0, late.length);
    }
    SessionRecord r = Recordings.open(dir).entries().get(0).record();
    assertThat(r.response().status()).isEqualTo(200);
    assertThat(r.response().body()).isEqualTo("{\"a\":1}");
    assertThat(r.response().bytes()).isEqualTo(7);
    assertThat(r.response().complete()).isFalse();
  }

  @Test
  void withTheDefaultRecorderAFailingMaskerStillStoresNoRequestBody() throws Exception {
    Masker broken =
        () -> {
          throw new IllegalStateException("detector crashed");
        };
    try (PamEngine engine = engine(policy(recording("masked", "batched")), null, broken)) {
      Verdict ex = call(engine, KEY, CHAT);
      respond(ex, "application/json", "{\"a\":\"secret\"}", 1);
      Verdicts.end(ex, true);
    }
    SessionRecord r = Recordings.open(dir).entries().get(0).record();
    assertThat(r.request().body()).isNull();
    assertThat(r.request().bytes()).isEqualTo(CHAT.length());
    assertThat(r.response().body()).isNull();
  }

  @Test
  void noneKeepsOnlySizesAndHashesOfBothBodies() {
    CapturingRecorder rec = new CapturingRecorder();
    UpperCasingMasker masker = new UpperCasingMasker();
    Verdict ex = call(engine(policy(recording("none", "strict")), rec, masker), KEY, CHAT);
    String answer = "{\"text\":\"" + "é secret ".repeat(1000) + "\"}";
    respond(ex, "application/json", answer, 7);
    Verdicts.end(ex, true);

    byte[] answerBytes = answer.getBytes(StandardCharsets.UTF_8);
    SessionRecord r = rec.records.get(0);
    assertThat(r.request().body()).isNull();
    assertThat(r.request().bytes()).isEqualTo(CHAT.length());
    assertThat(r.request().bodySha256())
        .isEqualTo(sha256Hex(CHAT.getBytes(StandardCharsets.UTF_8)))
        .matches("[0-9a-f]{64}");
    assertThat(r.response().body()).isNull();
    assertThat(r.response().bytes()).isEqualTo(answerBytes.length);
    assertThat(r.response().bodySha256()).isEqualTo(sha256Hex(answerBytes));
    assertThat(rec.intents.get(0).request().body()).isNull();
    assertThat(rec.intents.get(0).request().bodySha256()).isEqualTo(r.request().bodySha256());
    assertThat(masker.sessions).hasValue(0);
  }

  @Test
  void noneHashesADenialsErrorBodyToo() {
    CapturingRecorder rec = new CapturingRecorder();
    Verdict ex = call(engine(policy(recording("none", "strict")), rec, null), null, CHAT);
    Verdicts.end(ex, true);
    SessionRecord r = rec.records.get(0);
    assertThat(r.response().body()).isNull();
    assertThat(r.response().bodySha256()).isEqualTo(sha256Hex(Verdicts.error(ex).body()));
    assertThat(r.response().bytes()).isEqualTo(Verdicts.error(ex).body().length);
  }

  @Test
  void captureIsCappedButSizesStayExact() {
    CapturingRecorder rec = new CapturingRecorder();
    Verdict ex = call(engine(policy(recording("full", "batched")), rec, null), KEY, CHAT);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, Map.of("Content-Type", List.of("text/plain")));
    byte[] chunk = new byte[64 * 1024];
    java.util.Arrays.fill(chunk, (byte) 'x');
    long total = 0;
    while (total < RecordBuilder.MAX_CAPTURE + 100_000L) {
      relay.delivered(chunk, 0, chunk.length);
      total += chunk.length;
    }
    Verdicts.end(ex, true);
    SessionRecord r = rec.records.get(0);
    assertThat(r.response().bytes()).isEqualTo(total);
    assertThat(r.response().body()).hasSize(RecordBuilder.MAX_CAPTURE);
  }

  @Test
  void usageIsReadWholeWhenTheStreamOutgrowsTheCaptureWhereverTheCutFalls() {
    // Usage is read from the captured body when the record is built, and as the bytes pass once
    // the capture is full: an event split across that boundary is read whole.
    String first =
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
    String filler =
        "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\""
            + "y".repeat(8000)
            + "\"}}\n\n";
    String last = "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":345}}\n\n";
    for (int shift : new int[] {0, 7, 30}) {
      CapturingRecorder rec = new CapturingRecorder();
      Verdict ex = call(engine(policy(recording("full", "batched")), rec, null), KEY, CHAT);
      ResponsePlan.Relay relay =
          Verdicts.relay(
              Verdicts.allowed(ex), 200, Map.of("Content-Type", List.of("text/event-stream")));
      StringBuilder body = new StringBuilder(first);
      while (body.length() < RecordBuilder.MAX_CAPTURE) body.append(filler);
      body.setLength(RecordBuilder.MAX_CAPTURE - 10 - shift); // cut inside a filler event ...
      body.append("\"}}\n\n")
          .append(last); // ... closed, so the last event straddles the capture's end
      byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
      for (int off = 0; off < bytes.length; off += 1000)
        relay.delivered(bytes, off, Math.min(1000, bytes.length - off));
      Verdicts.end(ex, true);
      SessionRecord r = rec.records.get(0);
      assertThat(r.response().bytes())
          .isEqualTo(bytes.length)
          .isGreaterThan(RecordBuilder.MAX_CAPTURE);
      assertThat(r.response().usage())
          .as("shift %d", shift)
          .isEqualTo(Map.of("prompt_tokens", 12L, "completion_tokens", 345L));
    }
  }

  // --- response fields ---------------------------------------------------------------------------
  // --- response fields ---------------------------------------------------------------------------

  @Test
  void usageStreamedFlagAndCompletenessComeFromTheResponse() {
    CapturingRecorder rec = new CapturingRecorder();
    PamEngine engine = engine(policy(""), rec, null);

    Verdict json = call(engine, KEY, CHAT);
    respond(
        json,
        "application/json",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":41,\"completion_tokens\":120}}",
        5);
    Verdicts.end(json, true);

    Verdict sse = call(engine, KEY, CHAT);
    respond(
        sse,
        "text/event-stream",
        "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"
            + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n",
        9);
    Verdicts.end(sse, false); // broke off before its [DONE]: incomplete

    Verdict ndjson = call(engine, KEY, CHAT);
    respond(
        ndjson,
        "application/x-ndjson",
        "{\"done\":false}\n{\"done\":true,\"prompt_eval_count\":5,\"eval_count\":6}\n",
        3);
    Verdicts.end(ndjson, true);

    assertThat(rec.records).hasSize(3);
    SessionRecord.Response a = rec.records.get(0).response();
    assertThat(a.streamed()).isFalse();
    assertThat(a.usage()).isEqualTo(Map.of("prompt_tokens", 41L, "completion_tokens", 120L));
    SessionRecord.Response b = rec.records.get(1).response();
    assertThat(b.streamed()).isTrue();
    assertThat(b.complete()).isFalse();
    assertThat(b.usage())
        .isEqualTo(Map.of("prompt_tokens", 3L, "completion_tokens", 4L, "total_tokens", 7L));
    SessionRecord.Response c = rec.records.get(2).response();
    assertThat(c.streamed()).isTrue();
    assertThat(c.usage()).isEqualTo(Map.of("prompt_tokens", 5L, "completion_tokens", 6L));
  }

  @Test
  void theConfiguredCredentialHeaderIsRedactedEvenWhenDenied() {
    CapturingRecorder rec = new CapturingRecorder();
    PamEngine engine = engine(policy(""), rec, null);
    Verdicts.end(call(engine, null, CHAT), true);
    Verdicts.end(call(engine, KEY, CHAT), true);
    assertThat(rec.records)
        .hasSize(2)
        .allSatisfy(
            r -> {
              assertThat(r.request().headers().get("x-model-key")).containsExactly("[REDACTED]");
              assertThat(r.toString())
                  .doesNotContain("caller-tries-its-own")
                  .doesNotContain("upstream-secret");
            });
  }

  @Test
  void endHandsOverExactlyOneRecord() {
    CapturingRecorder rec = new CapturingRecorder();
    Verdict ex = call(engine(policy(""), rec, null), KEY, CHAT);
    Verdicts.end(ex, true);
    Verdicts.end(ex, false);
    assertThat(rec.records).hasSize(1);
  }

  // --- engine wiring -----------------------------------------------------------------------------

  @Test
  void builderRecorderWinsOverTheRecordingSectionAndIsFlushedNotClosedWithTheEngine() {
    CapturingRecorder rec = new CapturingRecorder();
    PamEngine engine = engine(policy(recording("masked", "strict")), rec, null);
    assertThat(engine.recorder()).isSameAs(rec);
    engine.close();
    // the engine closes what it builds, never what it is given
    assertThat(rec.flushed).hasValue(1);
    assertThat(rec.closed).hasValue(0);
  }

  @Test
  void withoutRecorderOrRecordingSectionNothingIsRecorded() {
    PamEngine engine = engine(policy(""), null, null);
    assertThat(engine.recorder()).isSameAs(Recorder.NOOP);
    Verdict ex = call(engine, KEY, CHAT);
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    Verdicts.end(ex, true);
    engine.close();
  }

  // --- the default JSONL recorder ----------------------------------------------------------------

  static List<JsonNode> lines(Path dir) throws IOException {
    List<JsonNode> out = new java.util.ArrayList<>();
    try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(dir)) {
      for (Path f :
          files
              .filter(p -> p.getFileName().toString().matches("session-\\d{8}-\\d+\\.jsonl"))
              .sorted()
              .toList()) {
        for (String line : java.nio.file.Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isEmpty()) out.add(JSON.readTree(line));
        }
      }
    }
    return out;
  }

  @Test
  void recordingSectionWithoutRecorderWritesJsonlWithTheIntentDurableBeforeBeginReturns()
      throws Exception {
    PamEngine engine = engine(policy(recording("none", "strict")), null, null);
    try {
      Verdict ex = call(engine, KEY, CHAT);
      assertThat(ex).isInstanceOf(Verdict.Allowed.class);
      List<JsonNode> before = lines(dir);
      assertThat(before)
          .singleElement()
          .satisfies(
              intent -> {
                assertThat(intent.get("type").asText()).isEqualTo("intent");
                assertThat(intent.get("id").asText()).isEqualTo(ex.id());
                assertThat(intent.get("principal").get("subject").asText()).isEqualTo("svc");
                assertThat(intent.get("request").get("body_sha256").asText())
                    .isEqualTo(sha256Hex(CHAT.getBytes(StandardCharsets.UTF_8)));
                assertThat(intent.has("decision") && !intent.get("decision").isNull()).isFalse();
              });
      respond(
          ex, "application/json", "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", 2);
      Verdicts.end(ex, true);
    } finally {
      engine.close();
    }
    List<JsonNode> after = lines(dir);
    assertThat(after).hasSize(2);
    assertThat(after.get(1).get("type").asText()).isEqualTo("exchange");
    assertThat(after.get(1).get("id").asText()).isEqualTo(after.get(0).get("id").asText());
    assertThat(after.get(1).get("decision").get("outcome").asText()).isEqualTo("allow");
    assertThat(after.get(1).get("response").get("usage").get("completion_tokens").asLong())
        .isEqualTo(2);
    assertThat(after.get(1).get("prev").asText()).isEqualTo(after.get(0).get("hash").asText());
  }

  @Test
  void aDecodedRequestBodyIsRecordedWithoutTheHeadersThatDescribedItsEncoding() throws Exception {
    String policy =
        policy(
            recording("full", "strict")
                + "allow:\n  - groups: [ml]\n    methods: [POST]\n    paths: [\"/v1/files\"]\n");
    PamEngine engine = engine(policy, null, null);
    byte[] gzipped = ExchangeEncodedBodyTest.gzip(CHAT.getBytes(StandardCharsets.UTF_8));
    byte[] brotli = {1, 2, 3, 4}; // no rule reads it: passes as it came, still encoded
    List<String> ids = new java.util.ArrayList<>();
    try {
      for (Verdict ex :
          List.of(
              encoded(engine, "/v1/chat/completions", "gzip", gzipped),
              encoded(engine, "/v1/files", "br", brotli))) {
        assertThat((ex instanceof Verdict.Allowed)).as(ex.toString()).isTrue();
        ids.add(ex.id());
        respond(ex, "application/json", "{}", 1);
        Verdicts.end(ex, true);
      }
    } finally {
      engine.close();
    }
    List<JsonNode> lines = lines(dir);
    assertThat(lines).hasSize(4); // intent and exchange of each
    List<JsonNode> decoded =
        lines.stream().filter(l -> l.get("id").asText().equals(ids.get(0))).toList();
    assertThat(decoded)
        .extracting(l -> l.get("type").asText())
        .containsExactlyInAnyOrder("intent", "exchange");
    for (JsonNode line : decoded) {
      JsonNode request = line.get("request");
      assertThat(request.get("headers").has("content-encoding"))
          .as(line.get("type").asText())
          .isFalse();
      assertThat(request.get("headers").has("content-length")).isFalse();
      assertThat(request.get("headers").get("content-type").asText()).isEqualTo("application/json");
      assertThat(request.get("body").asText()).isEqualTo(CHAT);
      assertThat(request.get("bytes").asLong()).isEqualTo(CHAT.length());
    }
    // A body that was not decoded keeps the headers that describe it.
    List<JsonNode> passed =
        lines.stream().filter(l -> l.get("id").asText().equals(ids.get(1))).toList();
    assertThat(passed)
        .hasSize(2)
        .allSatisfy(
            line -> {
              assertThat(line.get("request").get("headers").get("content-encoding").asText())
                  .isEqualTo("br");
              assertThat(line.get("request").get("headers").get("content-length").asText())
                  .isEqualTo("4");
            });
  }

  private static Verdict encoded(PamEngine engine, String path, String coding, byte[] body) {
    Map<String, List<String>> headers =
        Map.of(
            "Content-Type",
            List.of("application/json"),
            "Content-Encoding",
            List.of(coding),
            "Content-Length",
            List.of(Integer.toString(body.length)),
            "Authorization",
            List.of("Bearer " + KEY));
    return engine.begin(
        new RequestHead("POST", path, null, headers, "127.0.0.1"),
        new ByteArrayInputStream(body),
        body.length);
  }

  @Test
  void aRecordingDirectoryThatCannotBeOpenedFailsTheBuild() throws Exception {
    Path file = java.nio.file.Files.writeString(dir.resolve("not-a-directory"), "x");
    String policy = policy("recording:\n  directory: " + file + "\n");
    assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> engine(policy, null, null)))
        .isInstanceOf(java.io.UncheckedIOException.class);
  }
}
