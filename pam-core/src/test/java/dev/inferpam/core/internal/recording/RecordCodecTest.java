package dev.inferpam.core.internal.recording;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RecordCodecTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Instant T = Instant.parse("2026-11-28T22:00:00.123Z");
  static final String ZEROS = "0".repeat(64);

  static SessionRecord full() {
    return new SessionRecord(
        "exchange",
        "01JDX4Q3M8T6K9ZB2V7W5R1N0A",
        T,
        184,
        new Principal(
            "alice", Set.of("ml-engineers"), "oidc", "https://idp.example.com/realms/ml", Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "llama-3.1-8b",
            Map.of(
                "content-type",
                List.of("application/json"),
                "authorization",
                List.of("[REDACTED]")),
            311,
            "{\"model\":\"llama-3.1-8b\"}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        new SessionRecord.Approval(
            "apr-7",
            "bulk-export",
            "bob",
            Instant.parse("2026-11-28T22:00:00.050Z"),
            "approved",
            null),
        new SessionRecord.Response(
            200,
            true,
            1843,
            true,
            "data: hi\n\n",
            Map.of("email", 2),
            Map.of("prompt_tokens", 41L, "completion_tokens", 120L)));
  }

  /** The hash rule of recording.md, written independently of the codec. */
  static String specHash(String line) throws Exception {
    String upTo = line.substring(0, line.lastIndexOf(",\"hash\":")) + "}";
    byte[] d = MessageDigest.getInstance("SHA-256").digest(upTo.getBytes(StandardCharsets.UTF_8));
    return HexFormat.of().formatHex(d);
  }

  static List<String> members(String json) throws Exception {
    List<String> names = new ArrayList<>();
    JSON.readTree(json).fieldNames().forEachRemaining(names::add);
    return names;
  }

  @Test
  void writesTheExchangeLineCompactInSpecOrder() throws Exception {
    String line = RecordCodec.encode(full(), ZEROS);

    String expectedUpToPrev =
        "{\"v\":1,\"type\":\"exchange\",\"id\":\"01JDX4Q3M8T6K9ZB2V7W5R1N0A\","
            + "\"time\":\"2026-11-28T22:00:00.123Z\",\"duration_ms\":184,"
            + "\"principal\":{\"subject\":\"alice\",\"groups\":[\"ml-engineers\"],\"via\":\"oidc\","
            + "\"issuer\":\"https://idp.example.com/realms/ml\"},"
            + "\"request\":{\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"operation\":\"chat\","
            + "\"model\":\"llama-3.1-8b\",\"headers\":{\"authorization\":\"[REDACTED]\",\"content-type\":\"application/json\"},"
            + "\"bytes\":311,\"body\":\"{\\\"model\\\":\\\"llama-3.1-8b\\\"}\"},"
            + "\"decision\":{\"outcome\":\"allow\",\"rule\":\"entitlements[0]\",\"code\":null,\"message\":null},"
            + "\"approval\":{\"id\":\"apr-7\",\"rule\":\"bulk-export\",\"reviewer\":\"bob\","
            + "\"decided\":\"2026-11-28T22:00:00.050Z\",\"outcome\":\"approved\",\"reason\":null},"
            + "\"response\":{\"status\":200,\"streamed\":true,\"bytes\":1843,\"complete\":true,"
            + "\"body\":\"data: hi\\n\\n\",\"masked\":{\"email\":2},"
            + "\"usage\":{\"completion_tokens\":120,\"prompt_tokens\":41}},"
            + "\"prev\":\""
            + ZEROS
            + "\"";
    assertThat(line).isEqualTo(expectedUpToPrev + ",\"hash\":\"" + specHash(line) + "\"}");
    assertThat(members(line))
        .containsExactly(
            "v",
            "type",
            "id",
            "time",
            "duration_ms",
            "principal",
            "request",
            "decision",
            "approval",
            "response",
            "prev",
            "hash");
    assertThat(line).doesNotContain("\n");
  }

  @Test
  void hashIsSha256OfTheLineUpToTheHashMemberClosedByABrace() throws Exception {
    String prev = "ab".repeat(32);
    String line = RecordCodec.encode(full(), prev);
    JsonNode n = JSON.readTree(line);

    assertThat(n.get("prev").asText()).isEqualTo(prev);
    assertThat(n.get("hash").asText()).isEqualTo(specHash(line)).matches("[0-9a-f]{64}");
    assertThat(line).endsWith(",\"prev\":\"" + prev + "\",\"hash\":\"" + specHash(line) + "\"}");
  }

  @Test
  void writerTailMatchesTheChainedLine() throws Exception {
    String body = RecordCodec.body(full());
    byte[] tail =
        RecordCodec.tail(body.getBytes(StandardCharsets.UTF_8), ZEROS, RecordCodec.sha256());

    String line = body + new String(tail, StandardCharsets.US_ASCII);
    assertThat(line).isEqualTo(RecordCodec.encode(full(), ZEROS) + "\n");
    assertThat(RecordCodec.hashOfTail(tail)).isEqualTo(specHash(line.strip()));
  }

  @Test
  void intentLineHoldsIdTimePrincipalAndRequestOnly() throws Exception {
    SessionRecord r = full();
    SessionRecord intent =
        new SessionRecord(
            "intent", r.id(), r.time(), 0, r.principal(), r.request(), null, null, null);

    String line = RecordCodec.encode(intent, ZEROS);

    assertThat(members(line))
        .containsExactly("v", "type", "id", "time", "principal", "request", "prev", "hash");
    assertThat(RecordCodec.decode(line)).isEqualTo(intent);
  }

  @Test
  void storesTheBodyHashInsteadOfTheBodyWhenBodiesAreNotKept() throws Exception {
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-1",
            T,
            5,
            null,
            new SessionRecord.Request(
                "POST", "/v1/chat/completions", "chat", "m", Map.of(), 3, null, "aa".repeat(32)),
            new SessionRecord.DecisionSummary("allow", "r", null, null),
            null,
            new SessionRecord.Response(
                200, false, 4, true, null, Map.of(), Map.of(), "bb".repeat(32)));

    String line = RecordCodec.encode(r, ZEROS);
    JsonNode n = JSON.readTree(line);

    assertThat(members(n.get("request").toString()))
        .containsExactly("method", "path", "operation", "model", "headers", "bytes", "body_sha256");
    assertThat(members(n.get("response").toString()))
        .containsExactly(
            "status", "streamed", "bytes", "complete", "body_sha256", "masked", "usage");
    assertThat(RecordCodec.decode(line)).isEqualTo(r);
  }

  @Test
  void writesAbsentPrincipalDecisionAndResponseAsNullAndLeavesOutAbsentApproval() throws Exception {
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-2",
            T,
            0,
            null,
            new SessionRecord.Request("GET", "/%2e%2e/x", null, null, Map.of(), 0, ""),
            null,
            null,
            null);

    String line = RecordCodec.encode(r, ZEROS);

    assertThat(line)
        .contains("\"principal\":null")
        .contains("\"decision\":null")
        .contains("\"response\":null")
        .doesNotContain("approval");
    assertThat(RecordCodec.decode(line)).isEqualTo(r);
  }

  @Test
  void escapesWhatJsonRequiresAndRoundTripsAnyText() throws Exception {
    String nasty =
        "quote\" backslash\\ nl\n cr\r tab\t nul\u0000 bell\u0007 del\u007f é 中 😀 lone\ud800 end";
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-3",
            T,
            1,
            null,
            new SessionRecord.Request(
                "POST", "/p", null, null, Map.of("x-note", List.of(nasty)), 1, nasty),
            null,
            null,
            new SessionRecord.Response(200, false, 1, true, nasty, Map.of(), Map.of()));

    String line = RecordCodec.encode(r, ZEROS);

    assertThat(line)
        .contains(
            "quote\\\" backslash\\\\ nl\\n cr\\r tab\\t nul\\u0000 bell\\u0007 del\u007f é 中 😀 lone\\ud800 end");
    assertThat(line.getBytes(StandardCharsets.UTF_8)).doesNotContain((byte) '\n');
    assertThat(RecordCodec.decode(line)).isEqualTo(r);
    assertThat(JSON.readTree(line).get("hash").asText()).isEqualTo(specHash(line));
  }

  @Test
  void roundTripsTextDenseWithCharactersThatNeedCare() throws Exception {
    // JSON inside a recorded body has a quote every few bytes: the encoder copies the bytes before
    // the first one that needs care in each group of eight, then escapes that one.
    String[] pieces = {"a", "b", "\"", "\\", "?", "\n", "\u0001", "é", "中", "😀", "\ud800", "{}"};
    java.util.Random random = new java.util.Random(18);
    for (int round = 0; round < 3000; round++) {
      StringBuilder text = new StringBuilder();
      int length = random.nextInt(70);
      for (int k = 0; k < length; k++) text.append(pieces[random.nextInt(pieces.length)]);
      String body = text.toString();
      SessionRecord r =
          new SessionRecord(
              "exchange",
              "id-" + round,
              T,
              1,
              null,
              new SessionRecord.Request("POST", "/p", null, null, Map.of(), 1, body),
              null,
              null,
              new SessionRecord.Response(200, false, 1, true, body, Map.of(), Map.of()));
      String line = RecordCodec.encode(r, ZEROS);
      assertThat(RecordCodec.decode(line)).as("round %d: %s", round, body).isEqualTo(r);
      JsonNode n = JSON.readTree(line);
      if (!body.contains("\ud800")) {
        assertThat(n.get("response").get("body").asText()).as("round %d", round).isEqualTo(body);
      }
      assertThat(n.get("hash").asText()).isEqualTo(specHash(line));
    }
  }

  @Test
  void roundTripsEverySpecialCharacterAtEveryPositionOfALongString() throws Exception {
    // Long strings take the encoder's fast path (checked 8 bytes at a time): every position of
    // every character that needs care must still come out exact.
    String[] specials = {"\"", "\\", "\u0001", "\n", "\u007f", "é", "中", "😀", "\ud800", "\udc00"};
    String base = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";
    for (String special : specials) {
      for (int i = 0; i <= base.length(); i++) {
        String text = base.substring(0, i) + special + base.substring(i);
        SessionRecord r =
            new SessionRecord(
                "exchange",
                "id-" + i,
                T,
                1,
                null,
                new SessionRecord.Request("POST", "/p", null, null, Map.of(), 1, text),
                null,
                null,
                new SessionRecord.Response(200, false, 1, true, text, Map.of(), Map.of()));
        String line = RecordCodec.encode(r, ZEROS);
        assertThat(RecordCodec.decode(line)).as("%s at %d", special, i).isEqualTo(r);
        assertThat(JSON.readTree(line).get("hash").asText()).isEqualTo(specHash(line));
      }
    }
  }

  @Test
  void writesOneHeaderValueAsAStringAndSeveralAsAnArray() throws Exception {
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-4",
            T,
            1,
            null,
            new SessionRecord.Request(
                "GET",
                "/p",
                null,
                null,
                Map.of("accept", List.of("a/b", "c/d"), "x-one", List.of("1")),
                0,
                ""),
            null,
            null,
            null);

    String line = RecordCodec.encode(r, ZEROS);

    assertThat(line).contains("\"headers\":{\"accept\":[\"a/b\",\"c/d\"],\"x-one\":\"1\"}");
    assertThat(RecordCodec.decode(line)).isEqualTo(r);
  }

  @Test
  void writesTimesInUtcWithExactlyThreeFractionDigits() {
    assertThat(RecordCodec.formatTime(Instant.parse("2026-01-02T03:04:05Z")))
        .isEqualTo("2026-01-02T03:04:05.000Z");
    assertThat(RecordCodec.formatTime(Instant.parse("2026-01-02T03:04:05.123456789Z")))
        .isEqualTo("2026-01-02T03:04:05.123Z");
  }

  @Test
  void decodesWhatItEncodes() {
    String line = RecordCodec.encode(full(), ZEROS);

    assertThat(RecordCodec.decode(line)).isEqualTo(full());
  }

  static SessionRecord withQuota(SessionRecord r, Map<String, Long> quotaRemaining) {
    return new SessionRecord(
        r.type(),
        r.id(),
        r.time(),
        r.durationMs(),
        r.principal(),
        r.request(),
        r.decision(),
        r.approval(),
        r.response(),
        quotaRemaining);
  }

  @Test
  void writesQuotaRemainingAfterTheResponseWithSortedKeysAndDecodesItEqual() throws Exception {
    Map<String, Long> left = new java.util.LinkedHashMap<>();
    left.put("tokens_per_day", 1234L);
    left.put("requests_per_minute", 2L);
    left.put("tokens_per_minute", 0L);
    SessionRecord r = withQuota(full(), left);

    String line = RecordCodec.encode(r, ZEROS);

    assertThat(line)
        .contains(
            "\"usage\":{\"completion_tokens\":120,\"prompt_tokens\":41}},"
                + "\"quota_remaining\":{\"requests_per_minute\":2,\"tokens_per_day\":1234,\"tokens_per_minute\":0},"
                + "\"prev\":\""
                + ZEROS
                + "\"");
    assertThat(members(line))
        .containsExactly(
            "v",
            "type",
            "id",
            "time",
            "duration_ms",
            "principal",
            "request",
            "decision",
            "approval",
            "response",
            "quota_remaining",
            "prev",
            "hash");
    assertThat(line).endsWith(",\"hash\":\"" + specHash(line) + "\"}");
    SessionRecord decoded = RecordCodec.decode(line);
    assertThat(decoded).isEqualTo(r);
    assertThat(decoded.quotaRemaining())
        .isEqualTo(
            Map.of("requests_per_minute", 2L, "tokens_per_day", 1234L, "tokens_per_minute", 0L));
    // Equal records encode to equal bytes, whatever the map's order.
    assertThat(
            RecordCodec.encode(
                withQuota(
                    full(),
                    Map.of(
                        "tokens_per_minute",
                        0L,
                        "requests_per_minute",
                        2L,
                        "tokens_per_day",
                        1234L)),
                ZEROS))
        .isEqualTo(line);
  }

  @Test
  void writesQuotaRemainingOnADeniedRecordWithoutResponseToo() {
    SessionRecord r =
        new SessionRecord(
            "exchange",
            "id-q",
            T,
            0,
            null,
            new SessionRecord.Request(
                "POST", "/v1/chat/completions", "chat", "m", Map.of(), 2, "{}"),
            new SessionRecord.DecisionSummary(
                "deny", "approval.rules.x", "approval_rejected", "no"),
            null,
            null,
            Map.of("tokens_per_day", 0L));

    String line = RecordCodec.encode(r, ZEROS);

    assertThat(line)
        .contains("\"response\":null,\"quota_remaining\":{\"tokens_per_day\":0},\"prev\":");
    assertThat(RecordCodec.decode(line)).isEqualTo(r);
  }

  @Test
  void leavesOutQuotaRemainingWhenEmptyAndDecodesItsAbsenceAsEmpty() throws Exception {
    SessionRecord empty = withQuota(full(), Map.of());
    SessionRecord nullMap = withQuota(full(), null);

    String line = RecordCodec.encode(empty, ZEROS);

    assertThat(line)
        .doesNotContain("quota_remaining")
        .isEqualTo(RecordCodec.encode(full(), ZEROS))
        .isEqualTo(RecordCodec.encode(nullMap, ZEROS));
    assertThat(members(line)).doesNotContain("quota_remaining");
    assertThat(RecordCodec.decode(line).quotaRemaining()).isEmpty();
    assertThat(RecordCodec.decode(line)).isEqualTo(full()).isEqualTo(nullMap);
  }

  @Test
  void decodingQuotaRemainingSkipsMembersThatAreNotNumbers() {
    String line =
        RecordCodec.encode(withQuota(full(), Map.of("tokens_per_day", 7L)), ZEROS)
            .replace(
                "{\"tokens_per_day\":7}",
                "{\"tokens_per_day\":7,\"note\":\"x\",\"tokens_per_minute\":null}");

    assertThat(RecordCodec.decode(line).quotaRemaining()).isEqualTo(Map.of("tokens_per_day", 7L));
  }

  @Test
  void decodingIgnoresMembersItDoesNotKnow() {
    String line = RecordCodec.encode(full(), ZEROS);
    String future =
        line.replace("\"duration_ms\":184,", "\"duration_ms\":184,\"trace\":{\"span\":[1,2]},")
            .replace("\"status\":200,", "\"status\":200,\"trailers\":{\"x\":\"y\"},");

    assertThat(RecordCodec.decode(future)).isEqualTo(full());
  }

  /** Found by RecordCodecFuzzTest: an intent line carrying exchange members decoded into an intent with an outcome. */
  @Test
  void intentLinesDecodeWithoutTheMembersOnlyAnExchangeHas() {
    String line =
        "{\"v\":1,\"type\":\"intent\",\"id\":\"i1\",\"time\":\"2026-11-28T22:00:00.123Z\",\"duration_ms\":5,"
            + "\"principal\":null,\"request\":{\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\"headers\":{}},"
            + "\"decision\":{\"outcome\":\"allow\"},\"approval\":{\"id\":\"a1\"},\"response\":{\"status\":200},"
            + "\"quota_remaining\":{\"tokens_per_day\":7}}";

    SessionRecord intent = RecordCodec.decode(line);

    assertThat(intent.type()).isEqualTo(SessionRecord.TYPE_INTENT);
    assertThat(intent.durationMs()).isZero();
    assertThat(intent.decision()).isNull();
    assertThat(intent.approval()).isNull();
    assertThat(intent.response()).isNull();
    assertThat(intent.quotaRemaining()).isEmpty();
    assertThat(RecordCodec.decode(RecordCodec.encode(intent, ZEROS))).isEqualTo(intent);
  }

  @Test
  void decodingRefusesRetentionLinesAndGarbage() {
    String retention = RecordCodec.chain(RecordCodec.retentionBody("r1", T, List.of()), ZEROS);

    assertThatThrownBy(() -> RecordCodec.decode(retention))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("retention");
    assertThatThrownBy(() -> RecordCodec.decode("{\"v\":1,"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> RecordCodec.decode("[1]"))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void writesTheRetentionLineFormat() throws Exception {
    String body =
        RecordCodec.retentionBody(
            "01RET",
            T,
            List.of(
                new RecordCodec.Removed("session-20261001-0001.jsonl", 12, ZEROS, "cd".repeat(32)),
                new RecordCodec.Removed("session-20261002-0001.jsonl", 0, null, null)));
    String line = RecordCodec.chain(body, "cd".repeat(32));

    assertThat(line)
        .isEqualTo(
            "{\"v\":1,\"type\":\"retention\",\"id\":\"01RET\",\"time\":\"2026-11-28T22:00:00.123Z\","
                + "\"removed\":[{\"file\":\"session-20261001-0001.jsonl\",\"records\":12,\"first_prev\":\""
                + ZEROS
                + "\","
                + "\"last_hash\":\""
                + "cd".repeat(32)
                + "\"},"
                + "{\"file\":\"session-20261002-0001.jsonl\",\"records\":0,\"first_prev\":null,\"last_hash\":null}],"
                + "\"prev\":\""
                + "cd".repeat(32)
                + "\",\"hash\":\""
                + specHash(line)
                + "\"}");
    RecordCodec.Retention r = RecordCodec.decodeRetention(line);
    assertThat(r.removed())
        .extracting(RecordCodec.Removed::file, RecordCodec.Removed::records)
        .containsExactly(
            org.assertj.core.api.Assertions.tuple("session-20261001-0001.jsonl", 12L),
            org.assertj.core.api.Assertions.tuple("session-20261002-0001.jsonl", 0L));
  }

  @Test
  void readsTheChainMembersFromTheFixedEndOfALine() {
    String line = RecordCodec.encode(full(), ZEROS);
    byte[] b = line.getBytes(StandardCharsets.UTF_8);

    RecordCodec.Links links = RecordCodec.links(b, b.length);

    assertThat(links.prev()).isEqualTo(ZEROS);
    assertThat(links.hash()).isEqualTo(line.substring(line.length() - 66, line.length() - 2));
    byte[] upper =
        line.replace(links.hash(), links.hash().toUpperCase()).getBytes(StandardCharsets.UTF_8);
    assertThat(RecordCodec.links(upper, upper.length)).isNull();
    byte[] spaced = line.replace(",\"hash\":", ", \"hash\":").getBytes(StandardCharsets.UTF_8);
    assertThat(RecordCodec.links(spaced, spaced.length)).isNull();
  }

  @Test
  void refusesAPrevThatIsNotAHash() {
    assertThatThrownBy(() -> RecordCodec.encode(full(), "xyz"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("prev");
  }
}
