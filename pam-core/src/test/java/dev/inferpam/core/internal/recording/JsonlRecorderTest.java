package dev.inferpam.core.internal.recording;

import static dev.inferpam.core.internal.recording.RecordingFixtures.exchange;
import static dev.inferpam.core.internal.recording.RecordingFixtures.intent;
import static dev.inferpam.core.internal.recording.RecordingFixtures.lines;
import static dev.inferpam.core.internal.recording.RecordingFixtures.specHash;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.internal.recording.RecordingFixtures.FaultyIo;
import dev.inferpam.core.internal.recording.RecordingFixtures.LogCapture;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlRecorderTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Duration FAST = Duration.ofMillis(20);

  @TempDir Path dir;
  final MutableClock clock = new MutableClock(Instant.parse("2026-03-01T10:00:00Z"));
  final LogCapture logs = new LogCapture();
  final FaultyIo io = new FaultyIo();
  final List<JsonlRecorder> open = new ArrayList<>();

  @AfterEach
  void closeAll() {
    io.failing = false;
    if (io.writeGate != null) io.writeGate.countDown();
    if (io.forceGate != null) io.forceGate.countDown();
    for (JsonlRecorder r : open) {
      try {
        r.close();
      } catch (IOException e) {
        // the test already said what it expected
      }
    }
  }

  Policy.Recording config(Policy.Durability durability) {
    return new Policy.Recording(dir, null, durability, null, 0, 0, null, 0);
  }

  JsonlRecorder start(Policy.Recording config) {
    return start(config, new JsonlRecorder.Options());
  }

  JsonlRecorder start(Policy.Recording config, JsonlRecorder.Options options) {
    JsonlRecorder r = new JsonlRecorder(config, clock, options.log(logs.logger()));
    open.add(r);
    return r;
  }

  JsonlRecorder.Options faulty() {
    return new JsonlRecorder.Options().io(io).retryInterval(FAST);
  }

  SessionRecord next(String id) {
    return exchange(id, clock.instant(), "alice");
  }

  List<String> segmentNames() throws IOException {
    return SegmentFiles.list(dir).stream().map(SegmentFiles.Segment::name).toList();
  }

  List<String> allLines() throws IOException {
    List<String> out = new ArrayList<>();
    for (SegmentFiles.Segment s : SegmentFiles.list(dir)) out.addAll(lines(s.path()));
    return out;
  }

  static String hash(String line) throws IOException {
    return JSON.readTree(line).get("hash").asText();
  }

  static String prev(String line) throws IOException {
    return JSON.readTree(line).get("prev").asText();
  }

  Recordings.Verification verify() throws IOException {
    return Recordings.open(dir).verify();
  }

  @Test
  void writesOneCompactLinePerRecordChainedFromTheGenesis() throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.BATCHED));
    for (int i = 1; i <= 3; i++) r.record(next("ex-" + i));
    r.flush();

    assertThat(segmentNames()).containsExactly("session-20260301-0001.jsonl");
    List<String> lines = allLines();
    assertThat(lines).hasSize(3);
    String expectedPrev = "0".repeat(64);
    for (int i = 0; i < 3; i++) {
      String line = lines.get(i);
      List<String> members = new ArrayList<>();
      JSON.readTree(line).fieldNames().forEachRemaining(members::add);
      assertThat(members.subList(members.size() - 2, members.size()))
          .containsExactly("prev", "hash");
      assertThat(line)
          .doesNotContain(": ")
          .doesNotContain(", ")
          .startsWith("{\"v\":1,\"type\":\"exchange\",");
      assertThat(prev(line)).isEqualTo(expectedPrev);
      assertThat(hash(line)).isEqualTo(specHash(line));
      assertThat(RecordCodec.decode(line)).isEqualTo(next("ex-" + (i + 1)));
      expectedPrev = hash(line);
    }
    assertThat(verify().ok()).isTrue();
  }

  @Test
  void aRecordHandedOverToBeFinishedLaterIsFinishedOnTheWriterThreadAndChainedInOrder()
      throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.BATCHED));
    java.util.concurrent.atomic.AtomicReference<Thread> finishedOn =
        new java.util.concurrent.atomic.AtomicReference<>();
    r.record(next("ex-1"));
    r.recordLater(
        dev.inferpam.api.PendingRecord.of(
            "ex-2",
            100,
            () -> {
              finishedOn.set(Thread.currentThread());
              return next("ex-2");
            }));
    r.record(next("ex-3"));
    r.flush();

    assertThat(finishedOn.get()).isNotNull().isNotSameAs(Thread.currentThread());
    List<String> lines = allLines();
    assertThat(lines).hasSize(3);
    for (int i = 0; i < 3; i++)
      assertThat(RecordCodec.decode(lines.get(i))).isEqualTo(next("ex-" + (i + 1)));
    assertThat(verify().ok()).isTrue();
  }

  @Test
  void aRecordThatFailsToFinishIsNotWrittenIsLoggedByItsIdOnlyAndTheChainGoesOn() throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.BATCHED));
    r.recordLater(
        dev.inferpam.api.PendingRecord.of(
            "ex-broken",
            100,
            () -> {
              throw new IllegalStateException("secret prompt text");
            }));
    r.record(next("ex-2"));
    r.flush();

    assertThat(allLines()).hasSize(1).allSatisfy(line -> assertThat(line).contains("\"ex-2\""));
    assertThat(logs.errors)
        .singleElement()
        .asString()
        .contains("ex-broken", "IllegalStateException")
        .doesNotContain("secret prompt text");
    assertThat(verify().ok()).isTrue();
  }

  @Test
  void startsANewSegmentWhenTheNextLineWouldPassTheSegmentSize() throws Exception {
    int lineBytes = RecordCodec.encode(next("ex-00"), "0".repeat(64)).length() + 1;
    Policy.Recording cfg =
        new Policy.Recording(
            dir, null, Policy.Durability.BATCHED, null, lineBytes * 3L, 0, null, 0);
    JsonlRecorder r = start(cfg);
    for (int i = 0; i < 10; i++) r.record(next("ex-" + (10 + i)));
    r.flush();

    assertThat(segmentNames())
        .containsExactly(
            "session-20260301-0001.jsonl",
            "session-20260301-0002.jsonl",
            "session-20260301-0003.jsonl",
            "session-20260301-0004.jsonl");
    String last = null;
    for (SegmentFiles.Segment s : SegmentFiles.list(dir)) {
      assertThat(Files.size(s.path())).isLessThanOrEqualTo(lineBytes * 3L);
      List<String> lines = lines(s.path());
      if (last != null) assertThat(prev(lines.get(0))).isEqualTo(last);
      last = hash(lines.get(lines.size() - 1));
    }
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 10, null, 0, null));
  }

  @Test
  void startsANewSegmentOnANewUtcDay() throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.ASYNC));
    r.record(next("day-1"));
    r.flush();
    clock.advance(Duration.ofHours(14)); // 2026-03-02T00:00Z
    r.record(next("day-2"));
    r.flush();

    assertThat(segmentNames())
        .containsExactly("session-20260301-0001.jsonl", "session-20260302-0001.jsonl");
    assertThat(verify().ok()).isTrue();
    assertThat(verify().records()).isEqualTo(2);
  }

  @Test
  void continuesTheChainInANewSegmentAfterARestart() throws Exception {
    JsonlRecorder first = start(config(Policy.Durability.STRICT));
    first.record(next("a"));
    first.record(next("b"));
    first.close();
    JsonlRecorder second = start(config(Policy.Durability.STRICT));
    second.record(next("c"));
    second.close();

    assertThat(segmentNames())
        .containsExactly("session-20260301-0001.jsonl", "session-20260301-0002.jsonl");
    List<String> one = lines(dir.resolve("session-20260301-0001.jsonl"));
    List<String> two = lines(dir.resolve("session-20260301-0002.jsonl"));
    assertThat(prev(two.get(0))).isEqualTo(hash(one.get(1)));
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 3, null, 0, null));
  }

  @Test
  void leavesATornLastLineAsItIsAndContinuesFromTheLastIntactLine() throws Exception {
    JsonlRecorder first = start(config(Policy.Durability.BATCHED));
    for (String id : List.of("a", "b", "c")) first.record(next(id));
    first.close();
    Path seg = dir.resolve("session-20260301-0001.jsonl");
    String intactHash = hash(lines(seg).get(1));
    try (FileChannel ch = FileChannel.open(seg, StandardOpenOption.WRITE)) {
      ch.truncate(ch.size() - 40); // a crash in the middle of writing line 3
    }

    JsonlRecorder second = start(config(Policy.Durability.BATCHED));
    second.record(next("d"));
    second.close();

    assertThat(logs.warnings)
        .singleElement()
        .asString()
        .contains("session-20260301-0001.jsonl", "truncated");
    assertThat(prev(lines(dir.resolve("session-20260301-0002.jsonl")).get(0)))
        .isEqualTo(intactHash);
    assertThat(verify())
        .isEqualTo(
            new Recordings.Verification(
                false, 2, "session-20260301-0001.jsonl", 3, "truncated line"));
  }

  @Test
  void retentionRemovesWholeExpiredSegmentsAndKeepsTheChainVerifiable() throws Exception {
    Policy.Recording cfg =
        new Policy.Recording(
            dir, null, Policy.Durability.BATCHED, Duration.ofDays(2), 0, 0, null, 0);
    JsonlRecorder r = start(cfg);
    r.record(next("d1-a"));
    r.record(next("d1-b"));
    r.flush();
    String day1Last = hash(lines(dir.resolve("session-20260301-0001.jsonl")).get(1));
    clock.advance(Duration.ofDays(1));
    r.record(next("d2"));
    r.flush();
    assertThat(segmentNames()).hasSize(2); // one day old: kept

    clock.advance(
        Duration.ofDays(2)); // 2026-03-04: day 1 is older than two days, day 2 exactly two
    r.record(next("d4"));
    r.flush();

    assertThat(segmentNames())
        .containsExactly("session-20260302-0001.jsonl", "session-20260304-0001.jsonl");
    List<String> day4 = lines(dir.resolve("session-20260304-0001.jsonl"));
    JsonNode retention = JSON.readTree(day4.get(0));
    assertThat(retention.get("type").asText()).isEqualTo("retention");
    assertThat(retention.get("time").asText()).isEqualTo("2026-03-04T10:00:00.000Z");
    assertThat(retention.get("removed")).hasSize(1);
    JsonNode removed = retention.get("removed").get(0);
    assertThat(removed.get("file").asText()).isEqualTo("session-20260301-0001.jsonl");
    assertThat(removed.get("records").asLong()).isEqualTo(2);
    assertThat(removed.get("first_prev").asText()).isEqualTo("0".repeat(64));
    assertThat(removed.get("last_hash").asText()).isEqualTo(day1Last);
    assertThat(hash(day4.get(0))).isEqualTo(specHash(day4.get(0)));
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 3, null, 0, null));

    clock.advance(Duration.ofDays(3)); // 2026-03-07: both remaining segments expire
    r.record(next("d7"));
    r.flush();

    assertThat(segmentNames()).containsExactly("session-20260307-0001.jsonl");
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 2, null, 0, null));
    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("d7");
  }

  @Test
  void retentionOnStartKeepsTheNewestSegmentAndCarriesTheChain() throws Exception {
    JsonlRecorder first = start(config(Policy.Durability.BATCHED));
    first.record(next("old-1"));
    first.flush(); // segments are dated by the clock when the line is written
    clock.advance(Duration.ofDays(1));
    first.record(next("old-2"));
    first.close();
    clock.advance(Duration.ofDays(30));

    start(
        new Policy.Recording(
            dir, null, Policy.Durability.BATCHED, Duration.ofDays(7), 0, 0, null, 0));

    assertThat(segmentNames())
        .containsExactly("session-20260302-0001.jsonl", "session-20260401-0001.jsonl");
    assertThat(
            JSON.readTree(lines(dir.resolve("session-20260401-0001.jsonl")).get(0))
                .get("removed")
                .get(0)
                .get("file")
                .asText())
        .isEqualTo("session-20260301-0001.jsonl");
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 2, null, 0, null));
  }

  @Test
  void aFailedDiskRefusesNewExchangesLogsOnceAndRecoversWithoutLosingRecords() throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.BATCHED), faulty());
    for (String id : List.of("r1", "r2", "r3")) {
      r.admit();
      r.record(next(id));
    }
    r.flush();

    io.failing = true;
    r.admit();
    r.record(next("r4")); // admitted before the failure: must not be lost
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThatThrownBy(r::admit)
                    .isInstanceOf(IOException.class)
                    .hasMessageStartingWith("recorder failed: ")
                    .hasMessageContaining("No space left on device"));
    r.record(next("r5")); // queued while failed, kept in memory
    assertThatThrownBy(r::flush).hasMessageStartingWith("recorder failed: ");
    int attempts = io.createAttempts.get();
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> io.createAttempts.get() >= attempts + 3); // retried

    assertThat(logs.errors).hasSize(1);
    assertThat(logs.errors.get(0)).contains("recording to", "failed", "No space left on device");
    // the half-written line was cut off: what was written before is intact and verifies
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 3, null, 0, null));

    io.failing = false;
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThatCode(r::admit).doesNotThrowAnyException());
    r.record(next("r6"));
    r.flush();

    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("r1", "r2", "r3", "r4", "r5", "r6");
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 6, null, 0, null));
    assertThat(segmentNames())
        .containsExactly("session-20260301-0001.jsonl", "session-20260301-0002.jsonl");
    assertThat(logs.errors).hasSize(1);
    assertThat(logs.infos).anyMatch(m -> m.contains("works again"));
  }

  @Test
  void aRecordingDirectoryReplacedByAFileFailsAndRecoversWhenItIsBack() throws Exception {
    // Running as root, permission changes do not stop writes; replacing the directory with a
    // regular file makes creating the next segment fail for real. Every line gets its own
    // segment (segment size 1 byte), so each record needs a new file.
    Policy.Recording cfg =
        new Policy.Recording(dir, null, Policy.Durability.BATCHED, null, 1, 0, null, 0);
    JsonlRecorder r = start(cfg, new JsonlRecorder.Options().retryInterval(FAST));
    r.admit();
    r.record(next("r1"));
    r.admit();
    r.record(next("r2"));
    r.flush();
    Path moved = dir.resolveSibling(dir.getFileName() + "-moved");
    Files.move(dir, moved);
    Files.writeString(dir, "not a directory");

    r.admit();
    r.record(next("r3"));
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () -> assertThatThrownBy(r::admit).hasMessageStartingWith("recorder failed: "));
    assertThat(Recordings.open(moved).verify())
        .isEqualTo(new Recordings.Verification(true, 2, null, 0, null));

    Files.delete(dir);
    Files.move(moved, dir);
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThatCode(r::admit).doesNotThrowAnyException());
    r.record(next("r4"));
    r.flush();

    assertThat(logs.errors).hasSize(1);
    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("r1", "r2", "r3", "r4");
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 4, null, 0, null));
  }

  @Test
  void refusesAdmissionWhileTheHeldRecordsWeighTooMuchAndAdmitsAgainOnceDurable() throws Exception {
    io.writeGate = new CountDownLatch(1); // the disk stalls
    // each fixture record is estimated at about 1.1 KB: two of them exceed 2,000 bytes
    JsonlRecorder r = start(config(Policy.Durability.BATCHED), faulty().maxHeldBytes(2_000));
    r.admit();
    r.record(next("b1"));
    r.admit(); // 1.1 KB held: still admitted
    r.record(next("b2"));

    assertThatThrownBy(r::admit).isInstanceOf(IOException.class).hasMessage("recording queue full");

    io.writeGate.countDown();
    r.flush();
    assertThatCode(r::admit).doesNotThrowAnyException();
    r.record(next("b3"));
    r.flush();
    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("b1", "b2", "b3");
  }

  @Test
  void refusesAdmissionWhenTheQueueIsFull() throws Exception {
    io.writeGate = new CountDownLatch(1); // the disk stalls
    Policy.Recording cfg =
        new Policy.Recording(dir, null, Policy.Durability.BATCHED, null, 0, 2, null, 0);
    JsonlRecorder r = start(cfg, faulty().wait(Duration.ofMillis(50)));
    r.admit();
    r.record(next("q1"));
    r.admit();
    r.record(next("q2"));

    assertThatThrownBy(r::admit).isInstanceOf(IOException.class).hasMessage("recording queue full");
    assertThatThrownBy(() -> r.record(next("unadmitted"))).hasMessage("recording queue full");

    io.writeGate.countDown();
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThatCode(r::admit).doesNotThrowAnyException());
    r.record(next("q3"));
    r.flush();
    assertThat(Recordings.open(dir).list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("q1", "q2", "q3");
  }

  @Test
  void aConfiguredQueueFullWaitAdmitsOnceRoomFreesUp() throws Exception {
    io.writeGate = new CountDownLatch(1);
    Policy.Recording cfg =
        new Policy.Recording(
            dir, null, Policy.Durability.ASYNC, null, 0, 1, null, 0, Duration.ofSeconds(10));
    JsonlRecorder r = start(cfg, faulty().wait(Duration.ofMillis(50)));
    r.admit();
    r.record(next("first")); // holds the only slot until the writer gets through
    java.util.concurrent.CompletableFuture<Void> second =
        java.util.concurrent.CompletableFuture.runAsync(
            () -> {
              try {
                r.admit();
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
    assertThat(second).as("waits for room instead of refusing").isNotDone();
    io.writeGate.countDown();
    second.get(10, java.util.concurrent.TimeUnit.SECONDS);
    r.record(next("second"));
    r.flush();
    assertThat(allLines()).hasSize(2);
  }

  @Test
  void anAdmittedRecordUsesItsReservation() throws Exception {
    io.writeGate = new CountDownLatch(1);
    Policy.Recording cfg =
        new Policy.Recording(dir, null, Policy.Durability.ASYNC, null, 0, 1, null, 0);
    JsonlRecorder r = start(cfg, faulty().wait(Duration.ofMillis(50)));

    r.admit();
    assertThatThrownBy(r::admit).hasMessage("recording queue full");
    r.record(next("reserved")); // does not wait for room: it has it

    io.writeGate.countDown();
    r.flush();
    assertThat(allLines()).hasSize(1);
  }

  @Test
  void strictIntentIsDurableBeforeIntentReturnsAndExchangeLinesAreGroupCommitted()
      throws Exception {
    Policy.Recording cfg =
        new Policy.Recording(
            dir, null, Policy.Durability.STRICT, null, 0, 0, Duration.ofHours(1), 10_000);
    JsonlRecorder r = start(cfg, faulty());
    Path seg = dir.resolve("session-20260301-0001.jsonl");

    r.admit();
    r.intent(intent("ex-1", clock.instant(), "alice"));

    long intentBytes = Files.size(seg);
    assertThat(lines(seg)).singleElement().asString().contains("\"type\":\"intent\"");
    assertThat(io.forcedBytes.get(seg)).isEqualTo(intentBytes);

    r.record(next("ex-1"));
    await().atMost(Duration.ofSeconds(5)).until(() -> Files.size(seg) > intentBytes);
    assertThat(io.forcedBytes.get(seg)).isEqualTo(intentBytes); // written, not yet synced
    r.flush();
    assertThat(io.forcedBytes.get(seg)).isEqualTo(Files.size(seg));
    assertThat(Recordings.open(dir).entries())
        .extracting(e -> e.record().type(), e -> e.record().id())
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("intent", "ex-1"),
            org.assertj.core.groups.Tuple.tuple("exchange", "ex-1"));
  }

  @Test
  void strictIntentFailsWhenItCannotBeMadeDurableInTime() throws Exception {
    io.forceGate = new CountDownLatch(1); // fsync hangs
    JsonlRecorder r =
        start(config(Policy.Durability.STRICT), faulty().wait(Duration.ofMillis(100)));

    assertThatThrownBy(() -> r.intent(intent("slow", clock.instant(), "alice")))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("not durable within 100ms");
    io.forceGate.countDown();
  }

  @Test
  void batchedModeSyncsWithinTheBatchIntervalWithoutAFlush() throws Exception {
    Policy.Recording cfg =
        new Policy.Recording(
            dir, null, Policy.Durability.BATCHED, null, 0, 0, Duration.ofMillis(10), 1000);
    JsonlRecorder r = start(cfg, faulty());
    r.record(next("b1"));

    Path seg = dir.resolve("session-20260301-0001.jsonl");
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> Files.exists(seg) && io.forcedBytes.getOrDefault(seg, 0L) > 0);
    assertThat(io.forcedBytes.get(seg)).isEqualTo(Files.size(seg));
  }

  @Test
  void asyncModeWritesWithoutSyncingUntilFlushed() throws Exception {
    JsonlRecorder r = start(config(Policy.Durability.ASYNC), faulty());
    r.record(next("a1"));

    Path seg = dir.resolve("session-20260301-0001.jsonl");
    await().atMost(Duration.ofSeconds(5)).until(() -> Files.exists(seg) && Files.size(seg) > 0);
    assertThat(io.forcedBytes.get(seg)).isNull();
    r.flush();
    assertThat(io.forcedBytes.get(seg)).isEqualTo(Files.size(seg));
  }

  @Test
  void closeWritesEverythingStillQueued() throws Exception {
    io.writeGate = new CountDownLatch(1);
    JsonlRecorder r = start(config(Policy.Durability.ASYNC), faulty());
    for (int i = 0; i < 200; i++) r.record(next("c" + i));
    Thread closer =
        new Thread(
            () -> {
              try {
                r.close();
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            });
    closer.start();
    io.writeGate.countDown();
    closer.join(10_000);

    assertThat(closer.isAlive()).isFalse();
    assertThat(allLines()).hasSize(200);
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 200, null, 0, null));
    assertThatThrownBy(() -> r.record(next("late"))).hasMessage("recorder closed");
    assertThatThrownBy(r::admit).hasMessage("recorder closed");
  }

  @Test
  void closeGivesUpOnADiskThatDoesNotRecoverAndSaysHowManyRecordsWereLost() throws Exception {
    JsonlRecorder r =
        start(config(Policy.Durability.BATCHED), faulty().closeTimeout(Duration.ofMillis(200)));
    io.failing = true;
    r.record(next("lost"));

    assertThatThrownBy(r::close)
        .isInstanceOf(IOException.class)
        .hasMessageContaining("1 record(s) not written")
        .hasMessageContaining("No space left on device");
  }

  @Test
  void aSecondRecorderCannotWriteTheSameDirectory() {
    start(config(Policy.Durability.ASYNC));

    assertThatThrownBy(() -> start(config(Policy.Durability.ASYNC)))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessageContaining("in use by another recorder");
  }

  @Test
  void aDirectoryUnderARegularFileIsRefusedSayingNotADirectory() throws Exception {
    Path plain = Files.writeString(dir.resolve("plain"), "x");
    Path under = plain.resolve("recordings");

    assertThatThrownBy(() -> new JsonlRecorder(Policy.Recording.in(under), clock))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessage("cannot start recording in " + under + ": not a directory: " + under);
    assertThatThrownBy(() -> new JsonlRecorder(Policy.Recording.in(plain), clock))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessage(
            "cannot start recording in " + plain + ": exists and is not a directory: " + plain);
  }

  @Test
  void aLockFileThatCannotBeOpenedIsRefusedSayingWhy() throws Exception {
    Files.createDirectory(dir.resolve(JsonlRecorder.LOCK_FILE));

    assertThatThrownBy(() -> start(config(Policy.Durability.ASYNC)))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessage(
            "cannot start recording in "
                + dir
                + ": is a directory: "
                + dir.resolve(JsonlRecorder.LOCK_FILE));
  }

  @Test
  void aDirectoryTheProcessMayNotWriteIsRefusedSayingPermissionDenied() throws Exception {
    Path locked = Files.createDirectory(dir.resolve("locked"));
    Files.setPosixFilePermissions(
        locked, java.nio.file.attribute.PosixFilePermissions.fromString("r-xr-xr-x"));
    try {
      // root writes anyway: the "not a directory" test above still covers the message
      org.junit.jupiter.api.Assumptions.assumeFalse(Files.isWritable(locked), "running as root");

      assertThatThrownBy(() -> new JsonlRecorder(Policy.Recording.in(locked), clock))
          .isInstanceOf(UncheckedIOException.class)
          .hasMessage(
              "cannot start recording in "
                  + locked
                  + ": permission denied: "
                  + locked.resolve(JsonlRecorder.LOCK_FILE));
      assertThatThrownBy(() -> new JsonlRecorder(Policy.Recording.in(locked.resolve("sub")), clock))
          .isInstanceOf(UncheckedIOException.class)
          .hasMessage(
              "cannot start recording in "
                  + locked.resolve("sub")
                  + ": permission denied: "
                  + locked.resolve("sub"));
    } finally {
      Files.setPosixFilePermissions(
          locked, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  @Test
  void theWriterThreadComesFromTheGivenFactoryAndEndsOnClose() throws Exception {
    List<Thread> made = new ArrayList<>();
    JsonlRecorder r =
        new JsonlRecorder(
            config(Policy.Durability.BATCHED),
            clock,
            task -> {
              Thread t = new Thread(task, "my-recorder-writer");
              made.add(t);
              return t;
            });
    r.record(next("ex-1"));
    r.flush();

    assertThat(made).hasSize(1);
    assertThat(made.get(0).isAlive()).isTrue();
    r.close();
    assertThat(made.get(0).isAlive()).isFalse();
    assertThat(allLines()).hasSize(1);
  }

  @Test
  void manyThreadsRecordEveryRecordExactlyOnceInOneChain() throws Exception {
    Policy.Recording cfg =
        new Policy.Recording(dir, null, Policy.Durability.BATCHED, null, 64 * 1024, 0, null, 0);
    JsonlRecorder r = start(cfg);
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      int tt = t;
      threads.add(
          new Thread(
              () -> {
                try {
                  for (int i = 0; i < 500; i++) {
                    r.admit();
                    r.record(next("t" + tt + "-" + i));
                  }
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              }));
    }
    threads.forEach(Thread::start);
    for (Thread t : threads) t.join();
    r.close();

    List<Recordings.Entry> all = Recordings.open(dir).list(null, null);
    assertThat(all).hasSize(4000);
    assertThat(all.stream().map(e -> e.record().id()).distinct().count()).isEqualTo(4000);
    assertThat(segmentNames().size()).isGreaterThan(1);
    assertThat(verify()).isEqualTo(new Recordings.Verification(true, 4000, null, 0, null));
  }
}
