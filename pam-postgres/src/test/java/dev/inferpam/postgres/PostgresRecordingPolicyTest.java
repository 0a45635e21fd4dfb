package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.StoredRecords;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.Policies;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The policy's {@code recording.store: postgres}: engines built from it record every exchange as
 * rows of the database of {@code state.postgres} (as the gateway role), wait for strict intents
 * only, refuse 503 {@code recording_unavailable} while the database is away and recover when it
 * returns; the records are read back through {@link StoredRecords#of(Policy)}.
 */
class PostgresRecordingPolicyTest {
  private static final String KEY = "alice-key-0123";

  private static Databases db;
  @TempDir Path dir;
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (db != null) db.close();
  }

  @BeforeEach
  void empty() throws Exception {
    db.clearRecords();
  }

  @AfterEach
  void close() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
  }

  private Policy policy(String durability) throws Exception {
    Path url = Files.writeString(dir.resolve("pg-url"), db.server.jdbcUrl() + "\n");
    Path password = Files.writeString(dir.resolve("pg-password"), Databases.ROLE_PASSWORD);
    return Policy.parse(
        "version: 1\n"
            + "identity:\n  api-keys:\n"
            + Policies.apiKey("alice", KEY, "ml")
            + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
            + "state:\n  postgres:\n    url-from-file: "
            + Policies.quoted(url.toString())
            + "\n    user: "
            + Databases.ROLE
            + "\n    password-from-file: "
            + Policies.quoted(password.toString())
            + "\n    timeout: 500ms\n    migrate: false\n"
            + "recording:\n  store: postgres\n  durability: "
            + durability
            + "\n  batch-interval: 2ms\n");
  }

  private PamEngine engine(Policy policy) {
    PamEngine e = PamEngine.builder().policy(policy).build();
    toClose.add(e);
    return e;
  }

  /** One chat call through the engine as an adapter makes it; the status the caller gets. */
  private static int call(PamEngine engine) {
    byte[] body = Policies.chat("llama-3.1-8b", "").getBytes(StandardCharsets.UTF_8);
    RequestHead head =
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of(
                "Authorization", List.of("Bearer " + KEY),
                "Content-Type", List.of("application/json")),
            "127.0.0.1");
    Verdict v = engine.begin(head, new ByteArrayInputStream(body), body.length);
    if (v instanceof Verdict.Allowed a) {
      a.respond(200, Map.of("Content-Type", List.of("application/json")));
      a.end(true);
      return 200;
    }
    Verdict.Denied d = (Verdict.Denied) v;
    d.end(true);
    return d.error().status();
  }

  private static String rows() throws Exception {
    return db.server.sql(
        "postgres",
        "SELECT string_agg(type || ':' || subject, ',' ORDER BY seq) FROM inferpam.records");
  }

  @Test
  void aStrictEngineCommitsTheIntentBeforeForwardingAndMayWaitWhenEnding() throws Exception {
    PamEngine engine = engine(policy("strict"));
    assertThat(engine.endsWithoutWaiting()).as("strict intents wait for a commit").isFalse();
    assertThat(engine.decidesWithoutWaiting()).isFalse();

    byte[] body = Policies.chat("llama-3.1-8b", "").getBytes(StandardCharsets.UTF_8);
    Verdict v =
        engine.begin(
            new RequestHead(
                "POST",
                "/v1/chat/completions",
                null,
                Map.of("Authorization", List.of("Bearer " + KEY)),
                "127.0.0.1"),
            new ByteArrayInputStream(body),
            body.length);
    assertThat(v).isInstanceOf(Verdict.Allowed.class);
    // allowed: the intent is committed already, before the request goes on
    assertThat(rows()).isEqualTo("intent:alice");
    Verdict.Allowed allowed = (Verdict.Allowed) v;
    allowed.respond(200, Map.of());
    allowed.end(true);
    engine.close();

    assertThat(rows()).isEqualTo("intent:alice,exchange:alice");
  }

  @Test
  void aBatchedEngineEndsWithoutWaitingAndItsRecordsAreReadThroughThePolicy() throws Exception {
    Policy policy = policy("batched");
    PamEngine engine = engine(policy);
    assertThat(engine.endsWithoutWaiting()).as("records are only queued").isTrue();
    assertThat(engine.decidesWithoutWaiting()).isTrue();
    for (int i = 0; i < 3; i++) assertThat(call(engine)).isEqualTo(200);
    engine.close();

    assertThat(rows()).isEqualTo("exchange:alice,exchange:alice,exchange:alice");
    try (StoredRecords records = StoredRecords.of(policy)) {
      assertThat(records.list("alice", null)).hasSize(3);
      assertThat(records.verify()).isEqualTo(new Recordings.Verification(true, 3, null, 0, null));
      assertThat(records.location())
          .isEqualTo("PostgreSQL 127.0.0.1:" + db.server.port + "/postgres");
    }
  }

  @Test
  void refuses503WhileTheDatabaseIsAwayAndServesAgainWhenItReturns() throws Exception {
    PamEngine engine = engine(policy("strict"));
    assertThat(call(engine)).isEqualTo(200);

    db.server.stop();
    try {
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> call(engine) == 503); // recording_unavailable
    } finally {
      db.server.restart();
    }
    await()
        .atMost(Duration.ofSeconds(20))
        .pollInterval(Duration.ofMillis(200))
        .until(() -> call(engine) == 200);
    engine.close();

    try (StoredRecords records = StoredRecords.of(policy("strict"))) {
      assertThat(records.verify().ok()).isTrue();
      // every exchange that was answered 200 has its record
      assertThat(records.list(null, null)).hasSizeGreaterThanOrEqualTo(2);
    }
  }
}
