package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RecordFormat;
import dev.inferpam.core.Recordings;
import dev.inferpam.testsupport.MutableClock;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PostgresRecorder} and {@link PostgresRecords} on a real PostgreSQL, as the gateway role of
 * {@code gateway-role.sql} (and as the schema's owner where retention is concerned): durability
 * modes, chains per writer, partitions and retention, append-only grants, verification reports.
 */
class PostgresRecorderTest {
  private static final Instant DAY0 = Instant.parse("2026-11-28T22:00:00Z");

  private static Databases db;
  private static PostgresState gateway;
  private final List<AutoCloseable> opened = new ArrayList<>();
  private final MutableClock clock = new MutableClock(DAY0);

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
    gateway = db.asGateway();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (gateway != null) gateway.close();
    if (db != null) db.close();
  }

  @BeforeEach
  void empty() throws Exception {
    db.clearRecords();
  }

  @AfterEach
  void closeAll() throws Exception {
    for (int i = opened.size() - 1; i >= 0; i--) opened.get(i).close();
  }

  private static Policy.Recording settings(
      Policy.Durability durability, Duration batchInterval, int batchSize, Duration retention) {
    return new Policy.Recording(
        null,
        null,
        durability,
        retention,
        0,
        0,
        batchInterval,
        batchSize,
        null,
        Policy.RecordingStore.POSTGRES);
  }

  private PostgresRecorder recorder(PostgresState state, Policy.Recording settings) {
    PostgresRecorder r =
        PostgresRecorder.builder(state)
            .settings(settings)
            .clock(clock)
            .retryInterval(Duration.ofMillis(100))
            .build();
    opened.add(r);
    return r;
  }

  private static SessionRecord exchange(String id, String subject) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        DAY0,
        3,
        Principal.of(subject, Set.of("ml"), Principal.VIA_API_KEY),
        new SessionRecord.Request("POST", "/v1/completions", "completion", "m", Map.of(), 2, "{}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));
  }

  private static SessionRecord intent(String id) {
    SessionRecord e = exchange(id, "alice");
    return new SessionRecord(
        SessionRecord.TYPE_INTENT, id, DAY0, 0, e.principal(), e.request(), null, null, null);
  }

  /** What the owner (the superuser) sees, outside any recorder's transaction. */
  private static String sql(String query) throws Exception {
    return db.server.sql("postgres", query);
  }

  private static long rows(String writer) throws Exception {
    return Long.parseLong(
        sql("SELECT count(*) FROM inferpam.records WHERE writer = '" + writer + "'"));
  }

  // ------------------------------------------------------------------------------ durability

  @Test
  void aStrictIntentIsCommittedBeforeIntentReturns() throws Exception {
    // an hour between group commits: only the intent itself can commit it
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.STRICT, Duration.ofHours(1), 256, null));
    r.record(exchange("ex-before", "alice"));

    r.admit();
    r.intent(intent("ex-1"));

    // committed with the exchange handed over before it: one group commit
    assertThat(
            sql(
                "SELECT string_agg(id || ':' || type || ':' || seq, ',' ORDER BY seq)"
                    + " FROM inferpam.records WHERE writer = '"
                    + r.writer()
                    + "'"))
        .isEqualTo("ex-before:exchange:1,ex-1:intent:2");
  }

  @Test
  void theLagIsTheAgeOfTheOldestRecordNotYetCommitted() throws Exception {
    // an hour between group commits: records wait until a flush
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofHours(1), 256, null));
    assertThat(r.lagNanos()).as("nothing waits").isZero();
    r.record(exchange("lag-1", "alice"));
    long first = r.lagNanos();
    assertThat(first).isPositive();
    r.record(exchange("lag-2", "alice"));
    assertThat(r.lagNanos()).as("still the first one's age").isGreaterThanOrEqualTo(first);
    assertThat(r.backlog()).isEqualTo(2);
    r.flush();
    assertThat(r.lagNanos()).as("committed").isZero();
    assertThat(rows(r.writer())).isEqualTo(2);
  }

  @Test
  void concurrentStrictIntentsShareGroupCommits() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.STRICT, Duration.ofHours(1), 256, null));
    int threads = 8;
    int each = 50;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int tt = t;
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      for (int i = 0; i < each; i++) {
                        r.admit();
                        r.intent(intent("t" + tt + "-" + i));
                        r.record(exchange("t" + tt + "-" + i, "u" + tt));
                      }
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdown();
    }
    r.flush();

    assertThat(rows(r.writer())).isEqualTo(2L * threads * each);
    long transactions =
        Long.parseLong(
            sql(
                "SELECT count(DISTINCT xmin::text) FROM inferpam.records WHERE writer = '"
                    + r.writer()
                    + "'"));
    assertThat(transactions)
        .as("commits for %d intents", threads * each)
        .isLessThan(threads * each);
  }

  @Test
  void batchedRecordsAreGroupCommittedByBatchSize() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofHours(1), 50, null));
    for (int i = 0; i < 120; i++) {
      r.admit();
      r.record(exchange(String.format("b-%03d", i), "alice"));
    }
    // two full batches go at once; the last 20 wait for the batch interval, or a flush
    await().atMost(Duration.ofSeconds(10)).until(() -> rows(r.writer()) == 100);
    r.flush();

    assertThat(
            sql(
                "SELECT string_agg(n::text, ',' ORDER BY first) FROM (SELECT min(seq) AS first,"
                    + " count(*) AS n FROM inferpam.records WHERE writer = '"
                    + r.writer()
                    + "' GROUP BY xmin::text) t"))
        .as("rows per transaction")
        .isEqualTo("50,50,20");
  }

  @Test
  void batchedRecordsAreCommittedWithinTheBatchInterval() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(20), 256, null));
    r.admit();
    r.record(exchange("soon", "alice"));

    await().atMost(Duration.ofSeconds(5)).until(() -> rows(r.writer()) == 1);
  }

  @Test
  void asyncRecordsAreCommittedToo() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.ASYNC, Duration.ofMillis(5), 256, null));
    for (int i = 0; i < 10; i++) r.record(exchange("a-" + i, "alice"));
    r.flush();

    assertThat(rows(r.writer())).isEqualTo(10);
  }

  @Test
  void aCommitWhoseOutcomeIsUnknownIsInsertedAgainWithoutDuplicates() throws Exception {
    AtomicBoolean lose = new AtomicBoolean(true);
    PostgresRecorder r =
        PostgresRecorder.builder(gateway)
            .settings(settings(Policy.Durability.BATCHED, Duration.ofMillis(5), 256, null))
            .clock(clock)
            .retryInterval(Duration.ofMillis(50))
            .afterCommit(
                () -> {
                  if (lose.getAndSet(false))
                    throw new IllegalStateException("connection lost during COMMIT");
                })
            .build();
    opened.add(r);
    for (int i = 0; i < 5; i++) r.record(exchange("u-" + i, "alice"));
    // the first commit went through, but the recorder was told it failed: it tries again
    await().atMost(Duration.ofSeconds(10)).until(() -> !lose.get());
    // until its retry succeeds the recorder is failed (flush throws, as it should): wait for it
    await()
        .atMost(Duration.ofSeconds(10))
        .ignoreExceptionsInstanceOf(java.io.IOException.class)
        .until(
            () -> {
              r.flush();
              return true;
            });
    r.record(exchange("u-5", "alice"));
    r.flush();

    assertThat(sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM inferpam.records"))
        .isEqualTo("1,2,3,4,5,6");
    assertThat(PostgresRecords.of(gateway).verify())
        .isEqualTo(new Recordings.Verification(true, 6, null, 0, null));
  }

  // ------------------------------------------------------------------------------ chains

  @Test
  void twoWritersKeepAChainEachWhileWritingTogether() throws Exception {
    PostgresState replicaB = db.asGateway();
    opened.add(replicaB);
    PostgresRecorder a =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    PostgresRecorder b =
        recorder(replicaB, settings(Policy.Durability.STRICT, Duration.ofMillis(2), 64, null));
    assertThat(a.writer()).isNotEqualTo(b.writer());

    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        PostgresRecorder r = t % 2 == 0 ? a : b;
        int tt = t;
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      for (int i = 0; i < 250; i++) {
                        r.admit();
                        if (r == b) r.intent(intent("w" + tt + "-" + i));
                        r.record(exchange("w" + tt + "-" + i, "user-" + tt));
                      }
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdown();
    }
    a.flush();
    b.flush();

    assertThat(rows(a.writer())).isEqualTo(1000);
    assertThat(rows(b.writer())).isEqualTo(2000);
    for (PostgresRecorder r : List.of(a, b)) {
      assertThat(
              sql(
                  "SELECT min(seq) || '..' || max(seq) || ' ' || count(DISTINCT seq)"
                      + " FROM inferpam.records WHERE writer = '"
                      + r.writer()
                      + "'"))
          .isEqualTo("1.." + rows(r.writer()) + " " + rows(r.writer()));
    }
    assertThat(PostgresRecords.of(gateway).verify())
        .isEqualTo(new Recordings.Verification(true, 3000, null, 0, null));
  }

  @Test
  void verifyReportsAnAlteredAndAMissingRowByWriterAndSequenceNumber() throws Exception {
    PostgresState replicaB = db.asGateway();
    opened.add(replicaB);
    PostgresRecorder a =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    PostgresRecorder b =
        recorder(replicaB, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    for (int i = 1; i <= 5; i++) {
      a.record(exchange("a-" + i, "alice"));
      b.record(exchange("b-" + i, "bob"));
    }
    a.flush();
    b.flush();
    PostgresRecords records = PostgresRecords.of(gateway);
    assertThat(records.verify()).isEqualTo(new Recordings.Verification(true, 10, null, 0, null));

    // the superuser: the gateway role may neither update nor delete
    sql(
        "UPDATE inferpam.records SET line = replace(line, '\"alice\"', '\"mallory\"')"
            + " WHERE writer = '"
            + a.writer()
            + "' AND seq = 3");
    sql("DELETE FROM inferpam.records WHERE writer = '" + b.writer() + "' AND seq = 2");
    sql(
        "UPDATE inferpam.records SET subject = 'carol' WHERE writer = '"
            + b.writer()
            + "' AND seq = 4");

    Recordings.Verification v = records.verify();
    List<Recordings.Break> expected = new ArrayList<>();
    List<Recordings.Break> ofA =
        List.of(new Recordings.Break("writer " + a.writer() + " seq 3", "hash mismatch"));
    List<Recordings.Break> ofB =
        List.of(
            new Recordings.Break("writer " + b.writer() + " seq 2", "missing"),
            new Recordings.Break(
                "writer " + b.writer() + " seq 4", "columns do not match the line"));
    boolean aFirst = a.writer().compareTo(b.writer()) < 0;
    expected.addAll(aFirst ? ofA : ofB);
    expected.addAll(aFirst ? ofB : ofA);
    assertThat(v.ok()).isFalse();
    assertThat(v.records()).isEqualTo(9);
    assertThat(v.breaks()).containsExactlyElementsOf(expected);
    assertThat(v.file()).isEqualTo(aFirst ? a.writer() : b.writer());
    assertThat(v.line()).isEqualTo(aFirst ? 3 : 2);

    sql("DELETE FROM inferpam.records WHERE writer = '" + a.writer() + "' AND seq IN (1, 2)");
    assertThat(records.verify().breaks())
        .contains(new Recordings.Break("writer " + a.writer() + " seq 1 to 2", "missing"));
  }

  @Test
  void readsExchangesBackForReplay() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.STRICT, Duration.ofMillis(2), 64, null));
    r.intent(intent("ex-1"));
    r.record(exchange("ex-1", "alice"));
    r.record(exchange("ex-2", "bob"));
    r.intent(intent("ex-3"));
    r.flush();
    PostgresRecords records = PostgresRecords.of(gateway);

    assertThat(records.list(null, null))
        .extracting(e -> e.record().id())
        .containsExactly("ex-1", "ex-2");
    assertThat(records.list("bob", null)).extracting(e -> e.record().id()).containsExactly("ex-2");
    assertThat(records.list(null, DAY0.plusSeconds(1))).isEmpty();
    Recordings.Entry found = records.find("ex-1").orElseThrow();
    assertThat(found.record()).isEqualTo(exchange("ex-1", "alice"));
    assertThat(found.file()).isEqualTo(r.writer());
    assertThat(found.line()).isEqualTo(2);
    assertThat(records.find("ex-3")).isEmpty();
    assertThat(records.lines("ex-3")).extracting(e -> e.record().type()).containsExactly("intent");
  }

  // ------------------------------------------------------------------------------ partitions

  @Test
  void partitionsOfTheDayAndTheNextAreCreatedAsNeeded() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    r.record(exchange("p-1", "alice"));
    r.flush();
    assertThat(partitions()).isEqualTo("records_20261128,records_20261129");
    assertThat(
            sql(
                "SELECT attcompression FROM pg_attribute WHERE attname = 'line'"
                    + " AND attrelid = 'inferpam.records_20261128'::regclass"))
        .as("lines compressed with lz4, as the parent table says")
        .isEqualTo("l");

    clock.advance(Duration.ofDays(1));
    r.record(exchange("p-2", "alice"));
    r.flush();
    assertThat(partitions()).isEqualTo("records_20261128,records_20261129,records_20261130");
    assertThat(
            sql(
                "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY seq) FROM inferpam.records"))
        .isEqualTo("inferpam.records_20261128,inferpam.records_20261129");
  }

  private static String partitions() throws Exception {
    return sql(
        "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i"
            + " JOIN pg_class c ON c.oid = i.inhrelid"
            + " WHERE i.inhparent = 'inferpam.records'::regclass");
  }

  @Test
  void retentionRunByTheOwnerDropsOldDayPartitionsAndTheChainsStillVerify() throws Exception {
    PostgresState owner = db.asOwner();
    opened.add(owner);
    Policy.Recording keep2d =
        settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, Duration.ofDays(2));
    PostgresRecorder r = recorder(owner, keep2d);
    for (int i = 0; i < 3; i++) r.record(exchange("old-" + i, "alice"));
    r.flush();
    clock.advance(Duration.ofDays(1));
    r.record(exchange("mid", "alice"));
    r.flush();

    clock.advance(Duration.ofDays(2)); // now 2026-12-01 22:00: the 28th is older than 2 days
    r.record(exchange("new", "alice"));
    r.flush();

    assertThat(sql("SELECT string_agg(id, ',' ORDER BY seq) FROM inferpam.records"))
        .isEqualTo("mid,new");
    assertThat(partitions()).doesNotContain("records_20261128").contains("records_20261129");
    assertThat(
            sql(
                "SELECT writer || ' ' || through_seq || ' ' || rows || ' ' || partition"
                    + " FROM inferpam.record_retention"))
        .isEqualTo(r.writer() + " 3 3 records_20261128");
    assertThat(PostgresRecords.of(gateway).verify())
        .isEqualTo(new Recordings.Verification(true, 2, null, 0, null));

    // the gateway role may not: its recorder records on and leaves the partitions to the owner
    clock.advance(Duration.ofDays(10));
    PostgresRecorder g = recorder(gateway, keep2d);
    g.record(exchange("by-gateway", "alice"));
    g.flush();
    assertThat(partitions()).contains("records_20261129", "records_20261211");
    assertThat(rows(g.writer())).isEqualTo(1);
  }

  // ------------------------------------------------------------------------------ grants

  @Test
  void theGatewayRoleMayInsertAndReadRecordsButNotUpdateOrDeleteThem() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    r.record(exchange("kept", "alice"));
    r.flush();

    try (Connection c = gateway.dataSource().getConnection();
        Statement s = c.createStatement()) {
      try (ResultSet rs = s.executeQuery("SELECT count(*) FROM inferpam.records")) {
        rs.next();
        assertThat(rs.getLong(1)).isEqualTo(1);
      }
      assertRefused(s, "UPDATE inferpam.records SET line = 'x'");
      assertRefused(s, "DELETE FROM inferpam.records");
      assertRefused(s, "UPDATE inferpam.records_20261128 SET line = 'x'");
      assertRefused(s, "DELETE FROM inferpam.records_20261128");
      assertRefused(s, "TRUNCATE inferpam.records");
      assertRefused(s, "DROP TABLE inferpam.records_20261128");
      assertRefused(s, "DELETE FROM inferpam.record_retention");
      assertRefused(s, "SELECT inferpam.drop_record_partitions(now())");
    }
    assertThat(rows(r.writer())).isEqualTo(1);
    assertThat(sql("SELECT line FROM inferpam.records"))
        .startsWith("{\"v\":1,\"type\":\"exchange\"");
  }

  private static void assertRefused(Statement s, String statement) {
    assertThatThrownBy(() -> s.execute(statement))
        .as(statement)
        .isInstanceOf(SQLException.class)
        .satisfies(
            e ->
                assertThat(((SQLException) e).getSQLState())
                    .as("SQLState of %s: %s", statement, e.getMessage())
                    .isIn("42501", "42809"));
  }

  @Test
  void recordedLinesAreTheJsonlLinesOfTheRecords() throws Exception {
    PostgresRecorder r =
        recorder(gateway, settings(Policy.Durability.BATCHED, Duration.ofMillis(2), 64, null));
    r.record(exchange("j-1", "alice"));
    r.record(exchange("j-2", "alice"));
    r.flush();

    try (Connection c = gateway.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement("SELECT line, prev, hash FROM inferpam.records ORDER BY seq");
        ResultSet rs = s.executeQuery()) {
      String prev = RecordFormat.GENESIS;
      for (String id : List.of("j-1", "j-2")) {
        rs.next();
        RecordFormat.Line line =
            RecordFormat.chain(
                RecordFormat.lineStart(exchange(id, "alice")), prev, RecordFormat.digest());
        assertThat(rs.getString(1)).isEqualTo(line.text());
        assertThat(rs.getString(2)).isEqualTo(prev);
        assertThat(rs.getString(3)).isEqualTo(line.hash());
        prev = line.hash();
      }
    }
  }
}
