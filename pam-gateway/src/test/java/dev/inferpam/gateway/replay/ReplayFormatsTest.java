package dev.inferpam.gateway.replay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The text formats of {@code replay}: list lines, re-indented JSON, the line diff, {@code --since}. */
class ReplayFormatsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void listLineHasEightFieldsWithDashesForMissingValues() {
    SessionRecord unidentified =
        new SessionRecord(
            "exchange",
            "01JDX4Q3M8T6K9ZB2V7W5R1N0A",
            Instant.parse("2026-11-28T22:00:00Z"),
            3,
            null,
            new SessionRecord.Request("POST", "/api/pull", null, null, Map.of(), 0, ""),
            new SessionRecord.DecisionSummary(
                "deny", "identity", "unauthenticated", "no credential"),
            null,
            new SessionRecord.Response(401, false, 10, true, "{}", Map.of(), Map.of()));
    assertThat(Replay.format(unidentified))
        .isEqualTo(
            "2026-11-28T22:00:00.000Z 01JDX4Q3M8T6K9ZB2V7W5R1N0A - POST /api/pull - deny 401");
  }

  @Test
  void listLinePercentEncodesWhitespaceSoThatFieldsStaySplittable() {
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-1",
            Instant.parse("2026-11-28T22:00:00.123456Z"),
            1,
            Principal.of("John Doe", Set.of(), Principal.VIA_API_KEY),
            new SessionRecord.Request(
                "POST", "/v1/chat/completions", "chat", "my\tmodel", Map.of(), 0, ""),
            new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
            null,
            new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));
    String line = Replay.format(r);
    assertThat(line)
        .isEqualTo(
            "2026-11-28T22:00:00.123Z id-1 John%20Doe POST /v1/chat/completions my%09model allow 200");
    assertThat(line.split(" ")).hasSize(8);
  }

  @Test
  void reindentKeepsValuesByteForByte() throws Exception {
    String line =
        "{\"v\":1,\"n\":1.50,\"s\":\"a,b:{c}[d] \\\"q\\\" \\u00e9\",\"e\":{},\"a\":[],\"o\":{\"x\":[1,null,true]}}";
    String pretty = JsonIndent.indent(line);
    assertThat(pretty)
        .isEqualTo(
            """
        {
          "v": 1,
          "n": 1.50,
          "s": "a,b:{c}[d] \\"q\\" \\u00e9",
          "e": {},
          "a": [],
          "o": {
            "x": [
              1,
              null,
              true
            ]
          }
        }""");
    assertThat(JSON.readTree(pretty)).isEqualTo(JSON.readTree(line));
  }

  @Test
  void identicalInputsGiveNoDiff() {
    LineDiff.Result r = LineDiff.unified("a", "b", List.of("x", "y"), List.of("x", "y"));
    assertThat(r.identical()).isTrue();
    assertThat(r.lines()).isEmpty();
  }

  @Test
  void diffIsUnifiedWithThreeLinesOfContextAndSeparateHunks() {
    List<String> before = List.of("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m");
    List<String> after =
        List.of("a", "b", "X", "d", "e", "f", "g", "h", "i", "j", "k", "Y", "m", "n");
    assertThat(LineDiff.unified("recorded", "rerun", before, after).lines())
        .containsExactly(
            "--- recorded",
            "+++ rerun",
            "@@ -1,6 +1,6 @@",
            " a",
            " b",
            "-c",
            "+X",
            " d",
            " e",
            " f",
            "@@ -9,5 +9,6 @@",
            " i",
            " j",
            " k",
            "-l",
            "+Y",
            " m",
            "+n");
  }

  @Test
  void diffAgainstEmptyUsesZeroRanges() {
    assertThat(LineDiff.unified("a", "b", List.of(), List.of("1", "2")).lines())
        .containsExactly("--- a", "+++ b", "@@ -0,0 +1,2 @@", "+1", "+2");
  }

  @Test
  void tooLargeToAlignStillGivesACorrectDiff() {
    List<String> before = new ArrayList<>();
    List<String> after = new ArrayList<>();
    for (int i = 0; i < 2_500; i++) {
      before.add("old " + i);
      after.add("new " + i);
    }
    before.add(0, "same");
    after.add(0, "same");
    LineDiff.Result r = LineDiff.unified("a", "b", before, after);
    assertThat(r.minimal()).isFalse();
    assertThat(r.lines()).hasSize(2 + 1 + 1 + 2 * 2_500);
    assertThat(r.lines().get(2)).isEqualTo("@@ -1,2501 +1,2501 @@");
    assertThat(r.lines().stream().filter(l -> l.startsWith("-")).count())
        .isEqualTo(2_500 + 1); // + "--- a"
  }

  @Test
  void eventStreamsCompareByTheirText() {
    String sse =
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
            + "data: {\"id\":\"c2\",\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n"
            + "data: {\"id\":\"c3\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            + "data: [DONE]\n\n";
    assertThat(Replay.sseText(sse)).isEqualTo("Hello");
    assertThat(Replay.comparable(sse, true)).containsExactly("Hello");
  }

  @Test
  void eventStreamsAreFramedAsEventsWhateverTheLineEndsAndDataLines() {
    // one JSON document over two data lines, CRLF and bare CR line ends, a comment, an event line
    String sse =
        ": keep-alive\r\nevent: chunk\r\ndata: {\"choices\":[{\"delta\":\r\n"
            + "data: {\"content\":\"Hel\"}}]}\r\n\r\n"
            + "data:{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\rdata: [DONE]\r\r";
    assertThat(Replay.sseText(sse)).isEqualTo("Hello");
  }

  @Test
  void aLastEventCutOffBeforeItsBlankLineStillCounts() {
    assertThat(Replay.sseText("data: {\"choices\":[{\"text\":\"Hi\"}]}\n\ndata: not json"))
        .isEqualTo("Hi\nnot json\n");
  }

  @Test
  void eventsWithoutTextAreKeptAsLines() {
    String sse = "data: {\"error\":{\"message\":\"overloaded\"}}\n\ndata: not json\n\n";
    assertThat(Replay.comparable(sse, true))
        .containsExactly("{\"error\":{\"message\":\"overloaded\"}}", "not json");
  }

  @Test
  void jsonBodiesAreComparedReindented() {
    assertThat(Replay.comparable("{\"a\":1,\"b\":[2]}", false))
        .containsExactly("{", "  \"a\": 1,", "  \"b\": [", "    2", "  ]", "}");
    assertThat(Replay.comparable("plain\ntext", false)).containsExactly("plain", "text");
  }

  @Test
  void sinceAcceptsInstantsOffsetsAndDates() {
    assertThat(Replay.parseSince("2026-11-28T22:00:00Z"))
        .isEqualTo(Instant.parse("2026-11-28T22:00:00Z"));
    assertThat(Replay.parseSince("2026-11-28T23:00:00+01:00"))
        .isEqualTo(Instant.parse("2026-11-28T22:00:00Z"));
    assertThat(Replay.parseSince("2026-11-28")).isEqualTo(Instant.parse("2026-11-28T00:00:00Z"));
    assertThatThrownBy(() -> Replay.parseSince("yesterday"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("\"yesterday\"");
  }
}
