package dev.inferpam.core;

import static dev.inferpam.core.internal.recording.RecordingFixtures.exchange;
import static dev.inferpam.core.internal.recording.RecordingFixtures.intent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecordingsTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String ONE = "session-20260301-0001.jsonl";
  static final String TWO = "session-20260301-0002.jsonl";

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(Instant.parse("2026-03-01T10:00:00Z"));

  /** Two segments of three exchanges each, written by the real recorder across a restart. */
  @BeforeEach
  void record() throws IOException {
    write("a1", "alice", "b1", "bob", "a2", "alice");
    write("b2", "bob", "a3", "alice", "b3", "bob");
  }

  void write(String... idSubject) throws IOException {
    try (JsonlRecorder r = new JsonlRecorder(Policy.Recording.in(dir), clock)) {
      for (int i = 0; i < idSubject.length; i += 2) {
        clock.advance(Duration.ofMinutes(1));
        r.record(exchange(idSubject[i], clock.instant(), idSubject[i + 1]));
      }
    }
  }

  List<String> read(String file) throws IOException {
    return new ArrayList<>(Files.readAllLines(dir.resolve(file), StandardCharsets.UTF_8));
  }

  void write(String file, List<String> lines) throws IOException {
    Files.writeString(dir.resolve(file), String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
  }

  Recordings.Verification verify() throws IOException {
    return Recordings.open(dir).verify();
  }

  static Recordings.Verification broken(long records, String file, long line, String reason) {
    return new Recordings.Verification(false, records, file, line, reason);
  }

  @Test
  void refusesADirectoryThatDoesNotExist() {
    assertThatThrownBy(() -> Recordings.open(dir.resolve("nope")))
        .isInstanceOf(IOException.class)
        .hasMessage("no recording directory: " + dir.resolve("nope"));
  }

  @Test
  void listsExchangesOldestFirstWithWhereTheyAre() throws IOException {
    List<Recordings.Entry> all = Recordings.open(dir).list(null, null);

    assertThat(all)
        .extracting(e -> e.record().id())
        .containsExactly("a1", "b1", "a2", "b2", "a3", "b3");
    Recordings.Entry b2 = all.get(3);
    assertThat(b2.file()).isEqualTo(TWO);
    assertThat(b2.line()).isEqualTo(1);
    assertThat(b2.json()).isEqualTo(read(TWO).get(0));
    assertThat(b2.record()).isEqualTo(exchange("b2", Instant.parse("2026-03-01T10:04:00Z"), "bob"));
  }

  @Test
  void listsAnExchangeWhereItBeganNotWhereItsLineWasWritten() throws IOException {
    // c1 began before c2 (a stream, or a request held for review) but ended, and was written,
    // after it
    Instant began = clock.instant().plus(Duration.ofMinutes(1));
    try (JsonlRecorder r = new JsonlRecorder(Policy.Recording.in(dir), clock)) {
      r.record(exchange("c2", began.plusSeconds(5), "carol"));
      r.record(exchange("c1", began, "carol"));
      r.record(exchange("c3", began.plusSeconds(5), "carol"));
    }
    assertThat(Recordings.open(dir).list("carol", null))
        .extracting(e -> e.record().id())
        .as("by time; c2 and c3 began together and stay in the order they were written")
        .containsExactly("c1", "c2", "c3");
    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("a1", "b1", "a2", "b2", "a3", "b3", "c1", "c2", "c3");
  }

  @Test
  void filtersBySubjectAndTime() throws IOException {
    Recordings rec = Recordings.open(dir);

    assertThat(rec.list("alice", null))
        .extracting(e -> e.record().id())
        .containsExactly("a1", "a2", "a3");
    assertThat(rec.list(null, Instant.parse("2026-03-01T10:04:00Z")))
        .extracting(e -> e.record().id())
        .containsExactly("b2", "a3", "b3");
    assertThat(rec.list("bob", Instant.parse("2026-03-01T10:04:00.001Z")))
        .extracting(e -> e.record().id())
        .containsExactly("b3");
    assertThat(rec.list("carol", null)).isEmpty();
  }

  @Test
  void findsAnExchangeById() throws IOException {
    Recordings rec = Recordings.open(dir);

    assertThat(rec.find("a2"))
        .hasValueSatisfying(
            e -> {
              assertThat(e.file()).isEqualTo(ONE);
              assertThat(e.line()).isEqualTo(3);
              assertThat(e.record().principal().subject()).isEqualTo("alice");
            });
    assertThat(rec.find("missing")).isEmpty();
  }

  @Test
  void listsOnlyExchangeLinesAndFindsTheExchangeNotItsIntent() throws IOException {
    try (JsonlRecorder r = new JsonlRecorder(Policy.Recording.in(dir), clock)) {
      r.intent(intent("c1", clock.instant(), "carol"));
      r.record(exchange("c1", clock.instant(), "carol"));
    }
    Recordings rec = Recordings.open(dir);

    assertThat(rec.list("carol", null))
        .singleElement()
        .satisfies(e -> assertThat(e.line()).isEqualTo(2));
    assertThat(rec.find("c1"))
        .hasValueSatisfying(e -> assertThat(e.record().type()).isEqualTo("exchange"));
    assertThat(rec.entries()).hasSize(8);
  }

  @Test
  void verifiesAnIntactChainCountingEveryLine() throws IOException {
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 6, null, 0, null));
  }

  @Test
  void findsAnEditedField() throws IOException {
    List<String> lines = read(TWO);
    lines.set(1, lines.get(1).replace("\"subject\":\"alice\"", "\"subject\":\"mallory\""));
    write(TWO, lines);

    assertThat(verify()).isEqualTo(broken(4, TWO, 2, "hash mismatch"));
  }

  @Test
  void findsAnEditWhoseOwnHashWasRecomputed() throws IOException {
    List<String> lines = read(ONE);
    String edited = lines.get(1).replace("\"status\":200", "\"status\":204");
    String body = edited.substring(0, edited.lastIndexOf(",\"prev\":"));
    String prev = JSON.readTree(edited).get("prev").asText();
    lines.set(1, RecordCodec.chain(body, prev));
    write(ONE, lines);

    assertThat(verify()).isEqualTo(broken(2, ONE, 3, "prev does not match previous line"));
  }

  @Test
  void findsADeletedLine() throws IOException {
    List<String> lines = read(ONE);
    lines.remove(1);
    write(ONE, lines);

    assertThat(verify()).isEqualTo(broken(1, ONE, 2, "prev does not match previous line"));
  }

  @Test
  void findsAnInsertedCopyOfAnotherLine() throws IOException {
    List<String> lines = read(ONE);
    lines.add(2, lines.get(0));
    write(ONE, lines);

    assertThat(verify()).isEqualTo(broken(2, ONE, 3, "prev does not match previous line"));
  }

  @Test
  void findsTwoSwappedLines() throws IOException {
    List<String> lines = read(TWO);
    String first = lines.get(0);
    lines.set(0, lines.get(1));
    lines.set(1, first);
    write(TWO, lines);

    assertThat(verify()).isEqualTo(broken(3, TWO, 1, "prev does not match previous line"));
  }

  @Test
  void findsATruncatedLastLine() throws IOException {
    String text = Files.readString(dir.resolve(TWO), StandardCharsets.UTF_8);
    Files.writeString(
        dir.resolve(TWO), text.substring(0, text.length() - 30), StandardCharsets.UTF_8);

    assertThat(verify()).isEqualTo(broken(5, TWO, 3, "truncated line"));
  }

  @Test
  void findsAMalformedLine() throws IOException {
    List<String> lines = read(ONE);
    lines.set(1, "{\"v\":1,\"type\":\"exchange\"}");
    write(ONE, lines);

    assertThat(verify()).isEqualTo(broken(1, ONE, 2, "malformed line"));
  }

  @Test
  void findsAMissingFirstSegment() throws IOException {
    Files.delete(dir.resolve(ONE));

    assertThat(verify())
        .isEqualTo(
            broken(
                3,
                TWO,
                1,
                "first segment does not start the chain and no retention line covers it"));
  }

  @Test
  void findsADeletedFirstLine() throws IOException {
    List<String> lines = read(ONE);
    lines.remove(0);
    write(ONE, lines);

    assertThat(verify())
        .isEqualTo(
            broken(
                5,
                ONE,
                1,
                "first segment does not start the chain and no retention line covers it"));
  }

  @Test
  void acceptsARemovedFirstSegmentThatARetentionLineCovers() throws IOException {
    List<String> one = read(ONE);
    String lastHash = JSON.readTree(one.get(2)).get("hash").asText();
    Files.delete(dir.resolve(ONE));
    try (JsonlRecorder r = new JsonlRecorder(Policy.Recording.in(dir), clock)) {
      r.record(exchange("c1", clock.instant(), "carol"));
    }
    // a retention line, as the recorder writes it, appended to the chain by hand
    List<String> three = read("session-20260301-0003.jsonl");
    String prev = JSON.readTree(three.get(0)).get("hash").asText();
    three.add(
        RecordCodec.chain(
            RecordCodec.retentionBody(
                "ret-1",
                clock.instant(),
                List.of(new RecordCodec.Removed(ONE, 3, "0".repeat(64), lastHash))),
            prev));
    write("session-20260301-0003.jsonl", three);

    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 5, null, 0, null));
  }

  @Test
  void aRetentionLineNamingAnotherHashDoesNotCoverTheGap() throws IOException {
    Files.delete(dir.resolve(ONE));
    List<String> two = read(TWO);
    String prev = JSON.readTree(two.get(2)).get("hash").asText();
    two.add(
        RecordCodec.chain(
            RecordCodec.retentionBody(
                "ret-1",
                clock.instant(),
                List.of(new RecordCodec.Removed(ONE, 3, "0".repeat(64), "ab".repeat(32)))),
            prev));
    write(TWO, two);

    assertThat(verify().reason())
        .isEqualTo("first segment does not start the chain and no retention line covers it");
  }

  @Test
  void readsLinesWrittenByFutureVersionsWithExtraMembers() throws IOException {
    List<String> lines = read(ONE);
    ObjectNode n = (ObjectNode) JSON.readTree(lines.get(0));
    n.put("future", "yes");
    lines.set(0, n.toString());
    write(ONE, lines);

    assertThat(Recordings.open(dir).find("a1"))
        .hasValueSatisfying(e -> assertThat(e.record().id()).isEqualTo("a1"));
  }
}
