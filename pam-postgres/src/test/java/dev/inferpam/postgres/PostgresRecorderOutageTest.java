package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL stopped under a recorder and started again: the recorder refuses new exchanges while
 * it is away (the engine's 503 {@code recording_unavailable}), keeps what it acknowledged, and
 * recovers by itself once the database is back, with every acknowledged record written once and
 * the chain intact.
 */
class PostgresRecorderOutageTest {
  private static final Instant T0 = Instant.parse("2026-11-28T22:00:00Z");

  private Databases db;
  private PostgresState state;
  private PostgresRecorder recorder;

  @BeforeEach
  void start() throws Exception {
    db = Databases.start();
    state = db.asGateway(Duration.ofMillis(500));
  }

  @AfterEach
  void stop() throws Exception {
    if (recorder != null) {
      try {
        recorder.close();
      } catch (IOException ignored) {
        // a test that leaves the database down
      }
    }
    if (state != null) state.close();
    if (db != null) db.close();
  }

  private PostgresRecorder recorder(Policy.Durability durability) {
    return PostgresRecorder.builder(state)
        .settings(
            new Policy.Recording(
                null,
                null,
                durability,
                null,
                0,
                0,
                Duration.ofMillis(5),
                64,
                null,
                Policy.RecordingStore.POSTGRES))
        .retryInterval(Duration.ofMillis(100))
        .wait(Duration.ofSeconds(2))
        .build();
  }

  private static SessionRecord exchange(String id) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        T0,
        3,
        Principal.of("alice", Set.of("ml"), Principal.VIA_API_KEY),
        new SessionRecord.Request("POST", "/v1/completions", "completion", "m", Map.of(), 2, "{}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));
  }

  private String ids() throws Exception {
    return db.server.sql(
        "postgres",
        "SELECT string_agg(id, ',' ORDER BY seq) FROM inferpam.records WHERE writer = '"
            + recorder.writer()
            + "'");
  }

  @Test
  void refusesWhileTheDatabaseIsDownAndWritesEveryAcknowledgedRecordOnceItIsBack()
      throws Exception {
    recorder = recorder(Policy.Durability.BATCHED);
    List<String> acknowledged = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      recorder.admit();
      recorder.record(exchange("before-" + i));
      acknowledged.add("before-" + i);
    }
    recorder.flush();

    db.server.stop();
    // exchanges go on being admitted until the writer finds the database gone; then refused
    int[] n = {0};
    await()
        .atMost(Duration.ofSeconds(20))
        .until(
            () -> {
              try {
                recorder.admit();
              } catch (IOException refused) {
                assertThat(refused)
                    .hasMessageStartingWith(
                        "recorder failed: PostgreSQL at " + state.location() + ": ");
                return true;
              }
              String id = "during-" + n[0]++;
              recorder.record(exchange(id));
              acknowledged.add(id);
              return false;
            });
    assertThatThrownBy(recorder::admit).hasMessageStartingWith("recorder failed: ");
    assertThatThrownBy(recorder::flush).hasMessageStartingWith("recorder failed: ");

    db.server.restart();
    // recovers by itself: admitted again, nothing restarted
    await()
        .atMost(Duration.ofSeconds(20))
        .ignoreExceptions()
        .until(
            () -> {
              recorder.admit();
              return true;
            });
    recorder.record(exchange("after"));
    acknowledged.add("after");
    recorder.flush();

    assertThat(ids()).isEqualTo(String.join(",", acknowledged));
    assertThat(PostgresRecords.of(state).verify())
        .isEqualTo(new Recordings.Verification(true, acknowledged.size(), null, 0, null));
  }

  @Test
  void strictIntentsAreRefusedWhileTheDatabaseIsDownAndCommittedAgainAfter() throws Exception {
    recorder = recorder(Policy.Durability.STRICT);
    recorder.intent(exchange("i-0"));
    assertThat(ids()).isEqualTo("i-0");

    db.server.stop();
    assertThatThrownBy(() -> recorder.intent(exchange("i-1")))
        .isInstanceOf(IOException.class)
        .hasMessageStartingWith("recorder failed: PostgreSQL at " + state.location());
    assertThatThrownBy(() -> recorder.intent(exchange("i-2")))
        .hasMessageStartingWith("recorder failed: ");

    db.server.restart();
    await()
        .atMost(Duration.ofSeconds(20))
        .ignoreExceptions()
        .until(
            () -> {
              recorder.intent(exchange("i-3"));
              return true;
            });
    recorder.flush();

    // i-1 was handed over before the failure was known: it is written, once; i-2 was refused
    assertThat(ids()).isEqualTo("i-0,i-1,i-3");
    assertThat(PostgresRecords.of(state).verify().ok()).isTrue();
  }
}
