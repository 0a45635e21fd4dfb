package dev.inferpam.gateway.replay;

import static dev.inferpam.gateway.TestRecordings.ANSWER;
import static dev.inferpam.gateway.TestRecordings.CHAT_BODY;
import static dev.inferpam.gateway.TestRecordings.T0;
import static dev.inferpam.gateway.TestRecordings.allowedChat;
import static dev.inferpam.gateway.TestRecordings.denied;
import static dev.inferpam.gateway.TestRecordings.sse;
import static dev.inferpam.gateway.TestRecordings.streamedChat;
import static dev.inferpam.gateway.TestRecordings.unidentified;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import dev.inferpam.gateway.TestRecordings;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Replay} in process, over recordings written by the default JSONL recorder: what
 * {@code replay list|show|verify|rerun} print and refuse.
 */
class ReplayTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;
  private MockWebServer upstream;

  @BeforeEach
  void startUpstream() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
  }

  @AfterEach
  void stopUpstream() {
    upstream.close();
  }

  @Test
  void listShowsOneLinePerExchangeOldestFirst() throws Exception {
    record(
        allowedChat("ex-1", T0),
        denied("ex-2", T0.plusSeconds(1)),
        unidentified("ex-3", T0.plusSeconds(2)));

    assertThat(Replay.open(dir).list(null, null))
        .containsExactly(
            "2026-11-28T22:00:00.123Z ex-1 alice POST /v1/chat/completions llama-3.1-8b allow 200",
            "2026-11-28T22:00:01.123Z ex-2 ci-bot POST /v1/chat/completions gpt-4o-mini deny 403",
            "2026-11-28T22:00:02.123Z ex-3 - POST /v1/chat/completions - deny 401");
  }

  @Test
  void listFiltersBySubjectAndSince() throws Exception {
    record(
        allowedChat("ex-1", T0),
        denied("ex-2", T0.plusSeconds(60)),
        allowedChat("ex-3", T0.plusSeconds(120)));
    Replay replay = Replay.open(dir);

    assertThat(replay.list("alice", null))
        .extracting(l -> l.split(" ")[1])
        .containsExactly("ex-1", "ex-3");
    assertThat(replay.list(null, T0.plusSeconds(60)))
        .extracting(l -> l.split(" ")[1])
        .containsExactly("ex-2", "ex-3");
    assertThat(replay.list("alice", Replay.parseSince("2026-11-28"))).hasSize(2);
    assertThat(replay.list(null, Replay.parseSince("2026-11-29"))).isEmpty();
    assertThat(replay.list("nobody", null)).isEmpty();
  }

  @Test
  void showIsTheStoredLineReindented() throws Exception {
    record(allowedChat("ex-1", T0), denied("ex-2", T0.plusSeconds(1)));
    String stored = Recordings.open(dir).find("ex-2").orElseThrow().json();

    String shown = Replay.open(dir).show("ex-2").orElseThrow();

    assertThat(shown).startsWith("{\n  \"v\": 1,\n  \"type\": \"exchange\",\n  \"id\": \"ex-2\",");
    assertThat(JSON.readTree(shown)).isEqualTo(JSON.readTree(stored));
    assertThat(shown.lines().count()).isGreaterThan(20);
    assertThat(Replay.open(dir).show("no-such-id")).isEmpty();
  }

  @Test
  void showFallsBackToTheIntentOfAnExchangeThatNeverEnded() throws Exception {
    SessionRecord chat = allowedChat("ex-died", T0);
    SessionRecord intent =
        new SessionRecord(
            SessionRecord.TYPE_INTENT,
            chat.id(),
            chat.time(),
            0,
            chat.principal(),
            chat.request(),
            null,
            null,
            null);
    Policy.Recording strict =
        new Policy.Recording(
            dir, Policy.Bodies.FULL, Policy.Durability.STRICT, null, 0, 0, null, 0);
    try (JsonlRecorder recorder = new JsonlRecorder(strict, Clock.fixed(T0, ZoneOffset.UTC))) {
      recorder.admit();
      recorder.intent(intent);
    }

    Replay replay = Replay.open(dir);
    assertThat(replay.list(null, null)).isEmpty();
    assertThat(replay.show("ex-died"))
        .hasValueSatisfying(json -> assertThat(json).contains("\"type\": \"intent\""));
  }

  @Test
  void verifySaysOkWithTheRecordCount() throws Exception {
    record(
        allowedChat("ex-1", T0),
        denied("ex-2", T0.plusSeconds(1)),
        unidentified("ex-3", T0.plusSeconds(2)));
    Recordings.Verification v = Replay.open(dir).verify();
    assertThat(v.ok()).isTrue();
    assertThat(Replay.format(v)).isEqualTo("OK 3 records");
  }

  @Test
  void verifyNamesTheFirstBrokenLineByFileAndNumber() throws Exception {
    record(
        allowedChat("ex-1", T0),
        denied("ex-2", T0.plusSeconds(1)),
        unidentified("ex-3", T0.plusSeconds(2)));
    Path segment = onlySegment();
    List<String> lines = Files.readAllLines(segment, StandardCharsets.UTF_8);
    lines.set(1, lines.get(1).replace("\"ci-bot\"", "\"alice\""));
    Files.write(segment, lines, StandardCharsets.UTF_8);

    Recordings.Verification v = Replay.open(dir).verify();

    assertThat(v.ok()).isFalse();
    assertThat(Replay.format(v)).startsWith("BROKEN " + segment.getFileName() + ":2: ");
  }

  @Test
  void openingAMissingDirectoryNamesIt() {
    Path missing = dir.resolve("nope");
    assertThatThrownBy(() -> Replay.open(missing))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(missing.toString());
  }

  @Test
  void rerunResendsTheRecordedRequestWithAFreshCredentialAndDiffsTheAnswer() throws Exception {
    record(allowedChat("ex-1", T0));
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Content-Type", "application/json")
            .body(
                "{\"id\":\"c2\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello again\"}}]}")
            .build());

    Replay.Rerun rerun =
        Replay.open(dir)
            .rerun(
                "ex-1",
                upstream.url("/"),
                () -> new Credential("Authorization", "Bearer fresh-upstream-secret"),
                Policy.Bodies.MASKED);

    RecordedRequest sent = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(sent.getMethod()).isEqualTo("POST");
    assertThat(sent.getTarget()).isEqualTo("/v1/chat/completions");
    assertThat(sent.getBody().utf8()).isEqualTo(CHAT_BODY);
    assertThat(sent.getHeaders().get("Content-Type")).isEqualTo("application/json");
    assertThat(sent.getHeaders().values("Authorization"))
        .containsExactly("Bearer fresh-upstream-secret");
    // Recorded header values other than content-type are never re-sent, least of all [REDACTED].
    assertThat(sent.getHeaders().get("X-Request-Tag")).isNull();
    assertThat(sent.getHeaders().toMultimap().toString()).doesNotContain("[REDACTED]");

    assertThat(rerun.recordedStatus()).isEqualTo(200);
    assertThat(rerun.status()).isEqualTo(200);
    List<String> out = rerun.lines();
    assertThat(out.get(0)).isEqualTo("rerun ex-1: POST " + upstream.url("/v1/chat/completions"));
    assertThat(out)
        .contains(
            "note: the request body is re-sent as recorded, i.e. masked (recording.bodies: masked); it may differ from what the caller sent",
            "status: recorded 200, rerun 200",
            "bodies: differ",
            "--- recorded (status 200)",
            "+++ rerun (status 200)",
            "-  \"id\": \"c1\",",
            "+  \"id\": \"c2\",",
            "-        \"content\": \"hello\"",
            "+        \"content\": \"hello again\"");
    assertThat(String.join("\n", out)).doesNotContain("fresh-upstream-secret");
  }

  @Test
  void rerunOfAnUnchangedAnswerSaysIdentical() throws Exception {
    record(allowedChat("ex-1", T0));
    upstream.enqueue(new MockResponse.Builder().code(200).body(ANSWER).build());

    Replay.Rerun rerun = Replay.open(dir).rerun("ex-1", upstream.url("/"), null, null);

    assertThat(rerun.diff()).isEmpty();
    assertThat(rerun.lines())
        .contains(
            "note: no --policy given: the request is sent without an upstream credential",
            "bodies: identical (11 lines compared)");
    assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders().get("Authorization"))
        .isNull();
  }

  @Test
  void rerunComparesEventStreamsByTheirText() throws Exception {
    String recorded = sse("Privileged ", "access.");
    record(streamedChat("ex-1", T0, recorded));
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Content-Type", "text/event-stream")
            .body(sse("Privileged ", "access, ", "again."))
            .build());

    Replay.Rerun rerun = Replay.open(dir).rerun("ex-1", upstream.url("/"), null, null);

    assertThat(rerun.lines())
        .contains(
            "note: server-sent events are compared by the text they carry",
            "-Privileged access.",
            "+Privileged access, again.");
  }

  @Test
  void rerunPutsTheUpstreamPathInFront() throws Exception {
    record(allowedChat("ex-1", T0));
    upstream.enqueue(new MockResponse.Builder().code(200).body(ANSWER).build());
    Replay.open(dir).rerun("ex-1", upstream.url("/openai/"), null, null);
    assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getTarget())
        .isEqualTo("/openai/v1/chat/completions");
  }

  @Test
  void rerunTakesTheCredentialFromThePolicy() throws Exception {
    Path secret = Files.writeString(dir.resolve("upstream.key"), "from-policy-secret\n");
    Policy policy =
        Policy.parse(
            """
        version: 1
        upstream:
          credential:
            header: X-Api-Key
            from-file: %s
        """
                .formatted(secret.toString().replace("\\", "/")));
    Path recordings = Files.createDirectory(dir.resolve("rec"));
    TestRecordings.write(recordings, allowedChat("ex-1", T0));
    upstream.enqueue(new MockResponse.Builder().code(200).body(ANSWER).build());

    Replay.open(recordings).rerun("ex-1", upstream.url("/"), policy);

    RecordedRequest sent = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(sent.getHeaders().get("X-Api-Key")).isEqualTo("from-policy-secret");
    assertThat(sent.getHeaders().get("Authorization")).isNull();
  }

  @Test
  void rerunRefusesAnExchangeThePolicyDenied() throws Exception {
    record(denied("ex-2", T0));
    assertThatThrownBy(() -> Replay.open(dir).rerun("ex-2", upstream.url("/"), null, null))
        .isInstanceOf(Replay.ReplayException.class)
        .hasMessage(
            "exchange ex-2 was not forwarded (outcome deny, code not_entitled);"
                + " rerun re-sends only exchanges that reached the upstream");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void rerunRefusesWhenTheBodyWasNotRecorded() throws Exception {
    SessionRecord full = allowedChat("ex-1", T0);
    SessionRecord.Request r = full.request();
    SessionRecord bodiless =
        new SessionRecord(
            full.type(),
            full.id(),
            full.time(),
            full.durationMs(),
            full.principal(),
            new SessionRecord.Request(
                r.method(),
                r.path(),
                r.operation(),
                r.model(),
                r.headers(),
                r.bytes(),
                null,
                "0".repeat(64)),
            full.decision(),
            null,
            full.response());
    record(bodiless);
    assertThatThrownBy(() -> Replay.open(dir).rerun("ex-1", upstream.url("/"), null, null))
        .isInstanceOf(Replay.ReplayException.class)
        .hasMessageContaining("recorded without its request body (recording.bodies: none)");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void rerunRefusesABodyRecordedStillContentEncoded() throws Exception {
    // A coding the engine does not decode passes (allow rule) as it came; its recorded text is
    // not the bytes the caller sent, and re-sending it with or without the coding is wrong.
    SessionRecord full = allowedChat("ex-1", T0);
    SessionRecord.Request r = full.request();
    for (String coding : List.of("br", "gzip", "identity, zstd")) {
      java.util.Map<String, List<String>> headers = new java.util.HashMap<>(r.headers());
      headers.put("content-encoding", List.of(coding));
      Path recordings = Files.createDirectories(dir.resolve(coding.replaceAll("[^a-z]", "")));
      TestRecordings.write(
          recordings,
          new SessionRecord(
              full.type(),
              full.id(),
              full.time(),
              full.durationMs(),
              full.principal(),
              new SessionRecord.Request(
                  r.method(), r.path(), r.operation(), r.model(), headers, r.bytes(), r.body()),
              full.decision(),
              null,
              full.response()));
      assertThatThrownBy(() -> Replay.open(recordings).rerun("ex-1", upstream.url("/"), null, null))
          .as(coding)
          .isInstanceOf(Replay.ReplayException.class)
          .hasMessage(
              "exchange ex-1 was recorded with its request body still content-encoded; the recorded text"
                  + " is not the bytes the caller sent, so there is nothing to re-send");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void rerunOfAnUnknownIdSaysSo() throws Exception {
    record(allowedChat("ex-1", T0));
    assertThatThrownBy(() -> Replay.open(dir).rerun("ex-9", upstream.url("/"), null, null))
        .isInstanceOf(Replay.ReplayException.class)
        .hasMessage("no exchange ex-9 in " + dir);
  }

  @Test
  void rerunAgainstAnUnreachableUpstreamIsAReplayFailure() throws Exception {
    record(allowedChat("ex-1", T0));
    var gone = upstream.url("/");
    upstream.close();
    assertThatThrownBy(() -> Replay.open(dir).rerun("ex-1", gone, null, null))
        .isInstanceOf(Replay.ReplayException.class)
        .hasMessageStartingWith("upstream " + gone.redact() + " failed: ");
  }

  private void record(SessionRecord... records) throws IOException {
    TestRecordings.write(dir, records);
  }

  private Path onlySegment() throws IOException {
    return TestRecordings.onlySegment(dir);
  }
}
