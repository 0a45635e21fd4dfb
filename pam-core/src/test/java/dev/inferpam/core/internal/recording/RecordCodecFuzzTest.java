package dev.inferpam.core.internal.recording;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Recordings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Coverage-guided fuzzing of the recording format: {@link RecordCodec} and the hash chain as
 * {@link Recordings#verify()} checks it.
 *
 * <p><b>Input</b> (regression corpus: {@code RecordCodecFuzzTestInputs/codec}): an input starting
 * with <code>&#123;</code> is a recording line (the corpus holds real ones); anything else is
 * read by Jazzer's {@link FuzzedDataProvider} as the fields of a {@link SessionRecord}.
 *
 * <p><b>Contract</b>: decoding any line throws nothing but {@link IllegalArgumentException} (and
 * {@code typeOf}/{@code links} throw nothing); a record, decoded or built from fuzzed fields,
 * survives encode and decode unchanged up to what the format documents (times cut to
 * milliseconds, principal attributes not written) and encodes to the same bytes again; two such
 * lines chained in a segment verify, and changing any single byte of that segment (the fuzzer's
 * choice of position and value) makes {@link Recordings#verify()} fail.
 */
class RecordCodecFuzzTest {
  private static final long MIN_MS = Instant.parse("0000-01-01T00:00:00Z").toEpochMilli();
  private static final long MAX_MS = Instant.parse("9999-12-31T23:59:59.999Z").toEpochMilli();
  private static final Path DIR = tempDir();
  private static final Path SEGMENT = DIR.resolve("session-20261128-0001.jsonl");

  @FuzzTest(maxDuration = "10s")
  void codec(FuzzedDataProvider data) throws IOException {
    byte[] first = data.consumeBytes(1);
    SessionRecord record;
    int position;
    int change;
    if (first.length == 1 && first[0] == '{') {
      String line = "{" + new String(data.consumeRemainingAsBytes(), StandardCharsets.UTF_8);
      record = decodeArbitrary(line);
      if (record == null) return;
      position = line.hashCode(); // no fuzzer bytes left: derived from the line
      change = 1 + (line.hashCode() >>> 24) % 255;
    } else {
      position = data.consumeInt();
      change = data.consumeInt(1, 255);
      record = record(data);
    }
    assertRoundTrip(record);
    assertChainDetectsAnyByteChange(record, position, change);
  }

  /** The record of a line, or null when it is not one; only IllegalArgumentException is thrown. */
  private static SessionRecord decodeArbitrary(String line) {
    RecordCodec.typeOf(line);
    byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
    RecordCodec.links(bytes, bytes.length);
    try {
      RecordCodec.decodeRetention(line);
    } catch (IllegalArgumentException expected) {
      // not a retention line
    }
    try {
      return RecordCodec.decode(line);
    } catch (IllegalArgumentException expected) {
      return null;
    }
  }

  private static void assertRoundTrip(SessionRecord record) {
    String line = RecordCodec.encode(record, RecordCodec.GENESIS);
    SessionRecord decoded = RecordCodec.decode(line);
    assertThat(decoded).isEqualTo(written(record));
    assertThat(RecordCodec.encode(decoded, RecordCodec.GENESIS)).isEqualTo(line);
  }

  private static void assertChainDetectsAnyByteChange(
      SessionRecord record, int position, int change) throws IOException {
    String first = RecordCodec.encode(record, RecordCodec.GENESIS);
    byte[] firstBytes = first.getBytes(StandardCharsets.UTF_8);
    String second =
        RecordCodec.encode(record, RecordCodec.links(firstBytes, firstBytes.length).hash());
    byte[] segment = (first + "\n" + second + "\n").getBytes(StandardCharsets.UTF_8);
    Files.write(SEGMENT, segment);
    assertThat(Recordings.open(DIR).verify().ok()).as("intact segment verifies").isTrue();

    int at = Math.floorMod(position, segment.length);
    segment[at] = (byte) (segment[at] + change); // change is 1..255: never the same byte
    Files.write(SEGMENT, segment);
    Recordings.Verification v = Recordings.open(DIR).verify();
    assertThat(v.ok()).as("byte %d of %d changed", at, segment.length).isFalse();
  }

  /** What decoding the record's line gives back: times in milliseconds, no principal attributes. */
  private static SessionRecord written(SessionRecord r) {
    Principal p =
        r.principal() == null
            ? null
            : new Principal(
                r.principal().subject(),
                r.principal().groups(),
                r.principal().via(),
                r.principal().issuer(),
                Map.of());
    SessionRecord.Approval a =
        r.approval() == null
            ? null
            : new SessionRecord.Approval(
                r.approval().id(),
                r.approval().rule(),
                r.approval().reviewer(),
                millis(r.approval().decided()),
                r.approval().outcome(),
                r.approval().reason());
    return new SessionRecord(
        r.type(),
        r.id(),
        millis(r.time()),
        r.durationMs(),
        p,
        r.request(),
        r.decision(),
        a,
        r.response(),
        r.quotaRemaining());
  }

  private static Instant millis(Instant t) {
    return t == null ? null : t.truncatedTo(ChronoUnit.MILLIS);
  }

  // ----------------------------------------------------------------------------- fuzzed fields

  private static SessionRecord record(FuzzedDataProvider data) {
    boolean intent = data.consumeBoolean();
    String id = data.consumeString(40);
    Instant time = instant(data);
    Principal principal = data.consumeBoolean() ? principal(data) : null;
    SessionRecord.Request request =
        new SessionRecord.Request(
            data.consumeString(10),
            data.consumeString(80),
            orNull(data, 12),
            orNull(data, 40),
            headers(data),
            data.consumeLong(),
            orNull(data, 200),
            orNull(data, 64));
    if (intent) {
      return new SessionRecord(
          SessionRecord.TYPE_INTENT, id, time, 0, principal, request, null, null, null);
    }
    long duration = data.consumeLong();
    SessionRecord.DecisionSummary decision =
        new SessionRecord.DecisionSummary(
            orNull(data, 10), orNull(data, 40), orNull(data, 30), orNull(data, 120));
    SessionRecord.Approval approval =
        data.consumeBoolean()
            ? null
            : new SessionRecord.Approval(
                orNull(data, 20),
                orNull(data, 20),
                orNull(data, 20),
                data.consumeBoolean() ? instant(data) : null,
                orNull(data, 10),
                orNull(data, 60));
    SessionRecord.Response response =
        data.consumeBoolean()
            ? null
            : new SessionRecord.Response(
                data.consumeInt(),
                data.consumeBoolean(),
                data.consumeLong(),
                data.consumeBoolean(),
                orNull(data, 200),
                numbers(data, Integer.class),
                numbers(data, Long.class),
                orNull(data, 64));
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        time,
        duration,
        principal,
        request,
        decision,
        approval,
        response,
        numbers(data, Long.class));
  }

  private static Principal principal(FuzzedDataProvider data) {
    String subject = data.consumeString(30);
    if (subject.isBlank()) subject = "s" + subject;
    Set<String> groups = new HashSet<>();
    for (int i = data.consumeInt(0, 3); i > 0; i--) groups.add(data.consumeString(12));
    Map<String, Object> attributes =
        data.consumeBoolean() ? Map.of("tenant", data.consumeString(8)) : Map.of();
    return new Principal(subject, groups, data.consumeString(10), orNull(data, 40), attributes);
  }

  private static Map<String, List<String>> headers(FuzzedDataProvider data) {
    Map<String, List<String>> headers = new HashMap<>();
    for (int i = data.consumeInt(0, 4); i > 0; i--) {
      List<String> values = new ArrayList<>();
      for (int k = data.consumeInt(0, 3); k > 0; k--) values.add(data.consumeString(30));
      headers.put(data.consumeString(16), values);
    }
    return headers;
  }

  @SuppressWarnings("unchecked")
  private static <N extends Number> Map<String, N> numbers(FuzzedDataProvider data, Class<N> type) {
    Map<String, N> out = new HashMap<>();
    for (int i = data.consumeInt(0, 3); i > 0; i--) {
      Number n = type == Integer.class ? (Number) data.consumeInt() : (Number) data.consumeLong();
      out.put(data.consumeString(16), (N) n);
    }
    return out;
  }

  private static Instant instant(FuzzedDataProvider data) {
    return Instant.ofEpochMilli(data.consumeLong(MIN_MS, MAX_MS))
        .plusNanos(data.consumeInt(0, 999_999));
  }

  private static String orNull(FuzzedDataProvider data, int maxLength) {
    return data.consumeBoolean() ? null : data.consumeString(maxLength);
  }

  private static Path tempDir() {
    try {
      Path dir = Files.createTempDirectory("record-codec-fuzz");
      dir.toFile().deleteOnExit();
      dir.resolve("session-20261128-0001.jsonl").toFile().deleteOnExit();
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
