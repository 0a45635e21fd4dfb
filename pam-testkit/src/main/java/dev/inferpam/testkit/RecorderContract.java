package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link Recorder} implementations: extend it in a JUnit 5 test,
 * implement {@link #createRecorder()} and {@link #storedRecords()}, and the tests check what the
 * engine relies on — records stored as given and in order, none lost or duplicated under
 * concurrency, intents, flush and close, and admission — for records handed over built
 * ({@link Recorder#record}) and, as the engine hands them over, not built yet
 * ({@link Recorder#recordLater}: built once, on whichever thread the recorder chooses; a record
 * that fails to build is not stored and does not stop the recorder).
 *
 * <pre>{@code
 * class MyRecorderContractTest extends RecorderContract {
 *   MyRecorder recorder;
 *   protected Recorder createRecorder() { return recorder = new MyRecorder(...); }
 *   protected List<SessionRecord> storedRecords() { return recorder.readBack(); }
 * }
 * }</pre>
 *
 * <p>Each test creates one recorder (a fresh one per test) and closes it afterwards unless the
 * test did. {@link #storedRecords()} is called after {@link Recorder#flush()} or
 * {@link Recorder#close()} and must return every record the implementation stored, intents
 * included, in the order it stored them. Records are compared with {@code equals}, so a stored
 * record must read back equal to the one given; the fixtures keep to what every store can hold:
 * times in whole milliseconds, principals without attributes, and intents with only id, time,
 * principal and request (what {@code docs/recording.md} stores for them).
 */
public abstract class RecorderContract {
  /** The start of the fixture times; whole milliseconds. */
  protected static final Instant T0 = Instant.parse("2026-11-28T22:00:00.123Z");

  private Recorder recorder;
  private boolean closed;

  /** For a recorder's test class to extend. */
  protected RecorderContract() {}

  /** A new, empty recorder; called once per test. */
  protected abstract Recorder createRecorder() throws Exception;

  /** Everything the recorder under test has stored, oldest first. */
  protected abstract List<SessionRecord> storedRecords() throws Exception;

  /** The recorder of the current test, created on first use. */
  protected final Recorder recorder() throws Exception {
    if (recorder == null) recorder = createRecorder();
    return recorder;
  }

  @AfterEach
  void closeRecorder() throws Exception {
    if (recorder != null && !closed) recorder.close();
  }

  // ---------------------------------------------------------------------------------- fixtures

  /** A complete exchange record: every field set. */
  protected static SessionRecord fullExchange(String id) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        T0,
        184,
        new Principal(
            "alice",
            Set.of("ml-engineers", "researchers"),
            Principal.VIA_OIDC,
            "https://idp.example.com/realms/ml",
            Map.of()),
        new SessionRecord.Request(
            "POST",
            "/v1/chat/completions",
            "chat",
            "llama-3.1-8b",
            Map.of(
                "content-type",
                List.of("application/json"),
                "accept",
                List.of("text/event-stream", "*/*"),
                "authorization",
                List.of("[REDACTED]")),
            48,
            "{\"model\":\"llama-3.1-8b\",\"messages\":[\"héllo\\n\"]}",
            "5f2c0e7a1f1b3f3c9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d"),
        new SessionRecord.DecisionSummary("approved", "entitlements[0]", null, null),
        new SessionRecord.Approval(
            "apr-7", "bulk-export", "bob", T0.minusMillis(73), "approved", "ok for Q4"),
        new SessionRecord.Response(
            200,
            true,
            1843,
            true,
            "data: {\"x\":1}\n\ndata: [DONE]\n\n",
            Map.of("email", 2),
            Map.of("prompt_tokens", 41L, "completion_tokens", 120L)));
  }

  /** A small exchange record. */
  protected static SessionRecord exchange(String id, String subject, int n) {
    return new SessionRecord(
        SessionRecord.TYPE_EXCHANGE,
        id,
        T0.plus(n, ChronoUnit.MILLIS),
        n,
        Principal.of(subject, Set.of("ml"), Principal.VIA_API_KEY),
        new SessionRecord.Request("POST", "/v1/completions", "completion", "m", Map.of(), 2, "{}"),
        new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
        null,
        new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));
  }

  /** An intent record as written before forwarding in strict mode. */
  protected static SessionRecord intentFor(SessionRecord exchange) {
    return new SessionRecord(
        SessionRecord.TYPE_INTENT,
        exchange.id(),
        exchange.time(),
        0,
        exchange.principal(),
        exchange.request(),
        null,
        null,
        null);
  }

  /** A record handed over unbuilt, as the engine does; {@code builds} counts how often it is built. */
  protected static PendingRecord later(SessionRecord record, AtomicInteger builds) {
    return PendingRecord.of(
        record.id(),
        256,
        () -> {
          builds.incrementAndGet();
          return record;
        });
  }

  private static List<String> ids(List<SessionRecord> records) {
    return records.stream().map(SessionRecord::id).toList();
  }

  // ------------------------------------------------------------------------------------- tests

  @Test
  void storesARecordExactlyAsGiven() throws Exception {
    SessionRecord r = fullExchange("ex-full");

    recorder().record(r);
    recorder().flush();

    assertThat(storedRecords()).containsExactly(r);
  }

  @Test
  void keepsTheOrderOfRecordsFromOneThread() throws Exception {
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      String id = String.format("seq-%03d", i);
      expected.add(id);
      recorder().record(exchange(id, "alice", i));
    }
    recorder().flush();

    assertThat(ids(storedRecords())).containsExactlyElementsOf(expected);
  }

  @Test
  void storesEveryRecordFromEightThreadsExactlyOnce() throws Exception {
    Recorder rec = recorder();
    int threads = 8;
    int each = 250;
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
                        rec.admit();
                        rec.record(exchange(String.format("t%d-%04d", tt, i), "user-" + tt, i));
                      }
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdown();
    }
    rec.flush();

    List<String> stored = ids(storedRecords());
    assertThat(stored).hasSize(threads * each).doesNotHaveDuplicates();
    for (int t = 0; t < threads; t++) {
      String prefix = "t" + t + "-";
      List<String> ofThread = stored.stream().filter(id -> id.startsWith(prefix)).toList();
      assertThat(ofThread)
          .as("records of thread %d, in the order it recorded them", t)
          .hasSize(each)
          .isSorted();
    }
  }

  @Test
  void storesAnIntentAndThenItsExchangeUnderTheSameId() throws Exception {
    SessionRecord exchange = exchange("ex-intent", "alice", 1);
    SessionRecord intent = intentFor(exchange);

    recorder().admit();
    recorder().intent(intent);
    recorder().record(exchange);
    recorder().flush();

    assertThat(storedRecords()).containsExactly(intent, exchange);
  }

  @Test
  void flushMakesRecordsVisible() throws Exception {
    recorder().record(exchange("ex-1", "alice", 1));
    recorder().flush();
    assertThat(ids(storedRecords())).containsExactly("ex-1");

    recorder().record(exchange("ex-2", "alice", 2));
    recorder().flush();
    assertThat(ids(storedRecords())).containsExactly("ex-1", "ex-2");
  }

  @Test
  void closeFlushesEverythingHandedOver() throws Exception {
    Recorder rec = recorder();
    for (int i = 0; i < 100; i++) rec.record(exchange("c-" + i, "alice", i));

    closed = true;
    rec.close();

    assertThat(storedRecords()).hasSize(100);
  }

  @Test
  void admitsExchangesWhileHealthy() throws Exception {
    Recorder rec = recorder();
    for (int i = 0; i < 20; i++) {
      assertThatCode(rec::admit).doesNotThrowAnyException();
      rec.record(exchange("adm-" + i, "alice", i));
    }
    rec.flush();

    assertThat(storedRecords()).hasSize(20);
  }

  @Test
  void neverReplacesARedactedHeader() throws Exception {
    Map<String, List<String>> headers =
        Map.of(
            "authorization",
            List.of("[REDACTED]"),
            "x-api-key",
            List.of("[REDACTED]"),
            "cookie",
            List.of("[REDACTED]"),
            "x-upstream-key",
            List.of("[REDACTED]"),
            "content-type",
            List.of("application/json"));
    SessionRecord r =
        new SessionRecord(
            SessionRecord.TYPE_EXCHANGE,
            "ex-redacted",
            T0,
            3,
            Principal.of("svc", Set.of(), Principal.VIA_API_KEY),
            new SessionRecord.Request(
                "POST", "/v1/chat/completions", "chat", "m", headers, 2, "{}"),
            new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null),
            null,
            new SessionRecord.Response(200, false, 2, true, "{}", Map.of(), Map.of()));

    recorder().record(r);
    recorder().flush();

    SessionRecord stored = storedRecords().get(0);
    assertThat(stored).isEqualTo(r);
    headers.forEach(
        (name, values) ->
            assertThat(stored.request().headers().get(name)).as(name).isEqualTo(values));
  }

  @Test
  void storesRecordsWithoutPrincipalApprovalOrResponse() throws Exception {
    SessionRecord beforeIdentity =
        new SessionRecord(
            SessionRecord.TYPE_EXCHANGE,
            "ex-anon",
            T0,
            1,
            null,
            new SessionRecord.Request("GET", "/v1/models/..%2f", null, null, Map.of(), 0, ""),
            new SessionRecord.DecisionSummary("deny", "request.path", "bad_path", "ambiguous path"),
            null,
            new SessionRecord.Response(
                400,
                false,
                90,
                true,
                "{\"error\":{\"type\":\"pam_error\",\"code\":\"bad_path\"}}",
                Map.of(),
                Map.of()));
    SessionRecord noResponse =
        new SessionRecord(
            SessionRecord.TYPE_EXCHANGE,
            "ex-none",
            T0.plusMillis(1),
            0,
            null,
            new SessionRecord.Request("POST", "/x", null, null, Map.of(), 0, null, null),
            null,
            null,
            null);
    SessionRecord anonymousIntent =
        new SessionRecord(
            SessionRecord.TYPE_INTENT,
            "ex-int",
            T0.plusMillis(2),
            0,
            null,
            new SessionRecord.Request(
                "POST", "/v1/chat/completions", "chat", "m", Map.of(), 2, "{}"),
            null,
            null,
            null);

    recorder().record(beforeIdentity);
    recorder().record(noResponse);
    recorder().intent(anonymousIntent);
    recorder().flush();

    assertThat(storedRecords()).containsExactly(beforeIdentity, noResponse, anonymousIntent);
  }

  // ---------------------------------------------------------------------- records built later

  @Test
  void storesARecordHandedOverUnbuiltExactlyAsItIsBuiltBuildingItOnce() throws Exception {
    SessionRecord r = fullExchange("ex-later");
    AtomicInteger builds = new AtomicInteger();

    recorder().admit();
    recorder().recordLater(later(r, builds));
    recorder().flush();

    assertThat(storedRecords()).containsExactly(r);
    assertThat(builds).as("times the record was built").hasValue(1);
  }

  @Test
  void keepsTheOrderOfBuiltAndUnbuiltRecordsFromOneThread() throws Exception {
    List<String> expected = new ArrayList<>();
    AtomicInteger builds = new AtomicInteger();
    for (int i = 0; i < 200; i++) {
      String id = String.format("mix-%03d", i);
      expected.add(id);
      recorder().admit();
      if (i % 2 == 0) {
        recorder().recordLater(later(exchange(id, "alice", i), builds));
      } else {
        recorder().record(exchange(id, "alice", i));
      }
    }
    recorder().flush();

    assertThat(ids(storedRecords())).containsExactlyElementsOf(expected);
    assertThat(builds).hasValue(100);
  }

  @Test
  void storesEveryUnbuiltRecordFromEightThreadsExactlyOnce() throws Exception {
    Recorder rec = recorder();
    int threads = 8;
    int each = 250;
    AtomicInteger builds = new AtomicInteger();
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
                        rec.admit();
                        rec.recordLater(
                            later(
                                exchange(String.format("l%d-%04d", tt, i), "user-" + tt, i),
                                builds));
                      }
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdown();
    }
    rec.flush();

    List<String> stored = ids(storedRecords());
    assertThat(stored).hasSize(threads * each).doesNotHaveDuplicates();
    for (int t = 0; t < threads; t++) {
      String prefix = "l" + t + "-";
      assertThat(stored.stream().filter(id -> id.startsWith(prefix)).toList())
          .as("records of thread %d, in the order it recorded them", t)
          .hasSize(each)
          .isSorted();
    }
    assertThat(builds).hasValue(threads * each);
  }

  @Test
  void aRecordThatFailsToBuildIsNotStoredAndTheRecorderGoesOn() throws Exception {
    Recorder rec = recorder();
    PendingRecord broken =
        PendingRecord.of(
            "ex-broken",
            64,
            () -> {
              throw new IllegalStateException("a bug while building the record");
            });

    rec.admit();
    try {
      rec.recordLater(broken);
    } catch (IllegalStateException thrownOnTheCallersThread) {
      // allowed: a recorder that builds at once lets the failure out; one that builds later logs it
    }
    for (int i = 0; i < 20; i++) {
      rec.admit();
      rec.recordLater(later(exchange("after-" + i, "alice", i), new AtomicInteger()));
    }
    rec.flush();

    assertThat(ids(storedRecords())).hasSize(20).doesNotContain("ex-broken").startsWith("after-0");
  }

  @Test
  void closeStoresEveryUnbuiltRecordHandedOver() throws Exception {
    Recorder rec = recorder();
    AtomicInteger builds = new AtomicInteger();
    for (int i = 0; i < 100; i++) {
      rec.admit();
      rec.recordLater(later(exchange("cl-" + i, "alice", i), builds));
    }

    closed = true;
    rec.close();

    assertThat(storedRecords()).hasSize(100);
    assertThat(builds).hasValue(100);
  }

  @Test
  void storesAnIntentAndThenItsUnbuiltExchange() throws Exception {
    SessionRecord exchange = exchange("ex-intent-later", "alice", 1);
    SessionRecord intent = intentFor(exchange);

    recorder().admit();
    recorder().intent(intent);
    recorder().recordLater(later(exchange, new AtomicInteger()));
    recorder().flush();

    assertThat(storedRecords()).containsExactly(intent, exchange);
  }
}
