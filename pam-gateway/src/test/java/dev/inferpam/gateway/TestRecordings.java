package dev.inferpam.gateway;

import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/** Recording directories for the replay tests, written by the default JSONL recorder. */
public final class TestRecordings {
  /** When the first test exchange arrived (millisecond precision, as the format keeps). */
  public static final Instant T0 = Instant.parse("2026-11-28T22:00:00.123Z");

  public static final String CHAT_BODY =
      "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  public static final String ANSWER =
      "{\"id\":\"c1\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello\"}}]}";

  private TestRecordings() {}

  /** Writes the records into {@code directory} as the gateway's recorder would, then closes it. */
  public static void write(Path directory, SessionRecord... records) throws IOException {
    // bodies: full — the records carry exactly the bodies a test wants stored
    Policy.Recording settings =
        new Policy.Recording(
            directory, Policy.Bodies.FULL, Policy.Durability.BATCHED, null, 0, 0, null, 0);
    try (Recorder recorder = new JsonlRecorder(settings, Clock.fixed(T0, ZoneOffset.UTC))) {
      for (SessionRecord r : records) {
        recorder.admit();
        recorder.record(r);
      }
    }
  }

  /** The one segment file of {@code directory}. */
  public static Path onlySegment(Path directory) throws IOException {
    try (Stream<Path> files = Files.list(directory)) {
      List<Path> segments =
          files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).toList();
      if (segments.size() != 1)
        throw new AssertionError("expected one segment in " + directory + ", found " + segments);
      return segments.get(0);
    }
  }

  /** Alice's allowed chat: 200 with {@link #ANSWER}, request {@link #CHAT_BODY}. */
  public static SessionRecord allowedChat(String id, Instant time) {
    return new SessionRecord(
        "exchange",
        id,
        time,
        12,
        new Principal("alice", Set.of("ml-engineers"), Principal.VIA_API_KEY, null, Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "llama-3.1-8b",
            Map.of(
                "content-type",
                List.of("application/json"),
                "authorization",
                List.of("[REDACTED]"),
                "x-request-tag",
                List.of("notebook-7")),
            CHAT_BODY.length(),
            CHAT_BODY),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(200, false, ANSWER.length(), true, ANSWER, Map.of(), Map.of()));
  }

  /** {@link #allowedChat} answered with server-sent {@code events}. */
  public static SessionRecord streamedChat(String id, Instant time, String events) {
    SessionRecord chat = allowedChat(id, time);
    return new SessionRecord(
        "exchange",
        id,
        time,
        40,
        chat.principal(),
        chat.request(),
        chat.decision(),
        null,
        new SessionRecord.Response(200, true, events.length(), true, events, Map.of(), Map.of()));
  }

  /** The CI bot refused 403 {@code not_entitled}. */
  public static SessionRecord denied(String id, Instant time) {
    String error =
        "{\"error\":{\"type\":\"pam_error\",\"code\":\"not_entitled\",\"message\":\"no entitlement\","
            + "\"request_id\":\""
            + id
            + "\"}}";
    String body = "{\"model\":\"gpt-4o-mini\",\"messages\":[]}";
    return new SessionRecord(
        "exchange",
        id,
        time,
        2,
        new Principal("ci-bot", Set.of("ci"), Principal.VIA_API_KEY, null, Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "gpt-4o-mini",
            Map.of("content-type", List.of("application/json"), "x-api-key", List.of("[REDACTED]")),
            body.length(),
            body),
        new SessionRecord.DecisionSummary("deny", "entitlements", "not_entitled", "no entitlement"),
        null,
        new SessionRecord.Response(403, false, error.length(), true, error, Map.of(), Map.of()));
  }

  /** A caller without credential refused 401. */
  public static SessionRecord unidentified(String id, Instant time) {
    String error = "{\"error\":{\"type\":\"pam_error\",\"code\":\"unauthenticated\"}}";
    return new SessionRecord(
        "exchange",
        id,
        time,
        1,
        null,
        new SessionRecord.Request("POST", "/v1/chat/completions", null, null, Map.of(), 0, ""),
        new SessionRecord.DecisionSummary("deny", "identity", "unauthenticated", "no credential"),
        null,
        new SessionRecord.Response(401, false, error.length(), true, error, Map.of(), Map.of()));
  }

  /** An OpenAI-style chat event stream carrying {@code words}, then {@code [DONE]}. */
  public static String sse(String... words) {
    StringBuilder b = new StringBuilder();
    int n = 0;
    for (String w : words) {
      b.append("data: {\"id\":\"chunk-")
          .append(n++)
          .append("\",\"choices\":[{\"delta\":{\"content\":\"")
          .append(w)
          .append("\"}}]}\n\n");
    }
    return b.append("data: [DONE]\n\n").toString();
  }
}
