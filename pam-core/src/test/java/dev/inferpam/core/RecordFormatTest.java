package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.recording.RecordCodec;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The public line format is the JSONL recorder's, byte for byte, and checks what it chains. */
class RecordFormatTest {
  private final MessageDigest sha = RecordFormat.digest();

  private static SessionRecord record(String id) {
    return record(id, Instant.parse("2026-11-28T22:00:00.123456Z"));
  }

  private static SessionRecord record(String id, Instant time) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        time,
        7,
        Principal.of("alice", Set.of("ml"), Principal.VIA_API_KEY),
        new SessionRecord.Request("POST", "/v1/chat", "chat", "m", Map.of(), 9, "{\"é\":\"\\n\"}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));
  }

  @Test
  void chainsLinesAsTheJsonlRecorderWritesThem() {
    RecordFormat.Line first =
        RecordFormat.chain(RecordFormat.lineStart(record("a")), RecordFormat.GENESIS, sha);
    RecordFormat.Line second =
        RecordFormat.chain(RecordFormat.lineStart(record("b")), first.hash(), sha);

    assertThat(first.text()).isEqualTo(RecordCodec.encode(record("a"), RecordFormat.GENESIS));
    assertThat(second.text()).isEqualTo(RecordCodec.encode(record("b"), first.hash()));
    assertThat(second.prev()).isEqualTo(first.hash());
    assertThat(RecordFormat.decode(second.text()))
        .isEqualTo(record("b", Instant.parse("2026-11-28T22:00:00.123Z")));
  }

  @Test
  void checkFindsAnAlteredLineAndReadsItsLinks() {
    RecordFormat.Line line =
        RecordFormat.chain(RecordFormat.lineStart(record("a")), RecordFormat.GENESIS, sha);

    assertThat(RecordFormat.check(line.text(), sha))
        .isEqualTo(new RecordFormat.Check(RecordFormat.GENESIS, line.hash(), true));
    assertThat(RecordFormat.check(line.text().replace("alice", "mallo"), sha))
        .isEqualTo(new RecordFormat.Check(RecordFormat.GENESIS, line.hash(), false));
    assertThat(RecordFormat.check("{\"v\":1}", sha)).isNull();
    assertThat(RecordFormat.recordedTime(Instant.parse("2026-11-28T22:00:00.123456Z")))
        .isEqualTo(Instant.parse("2026-11-28T22:00:00.123Z"));
  }
}
