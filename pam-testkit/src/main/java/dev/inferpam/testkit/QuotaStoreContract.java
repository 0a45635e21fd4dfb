package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.testsupport.MutableClock;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link QuotaStore} implementations: extend it in a JUnit 5 test,
 * implement {@link #newStore(Clock)}, and the tests check what the engine relies on —
 * {@code addIfWithin} never passes its limit and adds nothing when it refuses, totals are
 * returned, {@code admit} checks and adds all of a request's steps or none of them, {@code add} takes negative amounts, unknown counters read 0, keys and windows are
 * independent, and all of it holds under concurrency.
 *
 * <pre>{@code
 * class MyQuotaStoreContractTest extends QuotaStoreContract {
 *   protected QuotaStore newStore(Clock clock) { return new MyQuotaStore(dataSource, clock); }
 * }
 * }</pre>
 *
 * <p>Each test calls {@link #newStore(Clock)} once, with a {@link MutableClock} set to
 * {@link #T0} that the test may move forward; a store that keeps no time of its own may ignore
 * it. Counters are named with {@link #key(String)}, which puts a prefix unique to the test
 * instance in front, so a store that outlives the test (a shared database, a Redis) needs no
 * cleaning between tests. Windows and window ends are the ones the engine uses: the index of the
 * UTC minute or day since the epoch, and the instant that window ends. A store that must be closed
 * can be closed in an {@code @AfterEach} of the subclass.
 */
public abstract class QuotaStoreContract {
  /** The fixture time: 20 seconds into a UTC minute. */
  protected static final Instant T0 = Instant.parse("2026-11-28T22:00:20Z");

  /** The minute window of {@link #T0}, as the engine numbers it. */
  protected static final long MINUTE = Math.floorDiv(T0.getEpochSecond(), 60);

  /** When {@link #MINUTE} ends. */
  protected static final Instant MINUTE_END = Instant.ofEpochSecond((MINUTE + 1) * 60);

  /** The day window of {@link #T0}, as the engine numbers it. */
  protected static final long DAY = Math.floorDiv(T0.getEpochSecond(), 86_400);

  /** When {@link #DAY} ends (UTC midnight). */
  protected static final Instant DAY_END = Instant.ofEpochSecond((DAY + 1) * 86_400);

  /** The clock handed to {@link #newStore(Clock)}. */
  protected final MutableClock clock = new MutableClock(T0);

  private final String prefix = "contract-" + UUID.randomUUID() + "\n";

  /** For a quota store's test class to extend. */
  protected QuotaStoreContract() {}

  /** A new store on {@code clock}; called once per test. */
  protected abstract QuotaStore newStore(Clock clock) throws Exception;

  /**
   * A key unique to this test instance, shaped like the engine's ({@code subject}, entry and bound
   * joined by line feeds).
   */
  protected final String key(String name) {
    return prefix + name + "\n0\nrequests-per-minute";
  }

  // ------------------------------------------------------------------------------------- tests

  @Test
  void readsZeroForACounterNeverAddedTo() throws Exception {
    QuotaStore store = newStore(clock);

    assertThat(store.get(key("nobody"), MINUTE)).isZero();
    assertThat(store.get(key("nobody"), DAY)).isZero();
  }

  @Test
  void addIfWithinReturnsTheTotalAfterAdding() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, MINUTE, 1, 10, MINUTE_END)).isEqualTo(1);
    assertThat(store.addIfWithin(k, MINUTE, 4, 10, MINUTE_END)).isEqualTo(5);
    assertThat(store.addIfWithin(k, MINUTE, 2, 10, MINUTE_END)).isEqualTo(7);
    assertThat(store.get(k, MINUTE)).isEqualTo(7);
  }

  @Test
  void addIfWithinReachesTheLimitExactlyAndRefusesPastItAddingNothing() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, MINUTE, 3, 5, MINUTE_END)).isEqualTo(3);
    assertThat(store.addIfWithin(k, MINUTE, 3, 5, MINUTE_END)).as("3 + 3 > 5").isEqualTo(-1);
    assertThat(store.get(k, MINUTE)).as("nothing added by the refusal").isEqualTo(3);
    assertThat(store.addIfWithin(k, MINUTE, 2, 5, MINUTE_END))
        .as("3 + 2 = 5 is within")
        .isEqualTo(5);
    assertThat(store.addIfWithin(k, MINUTE, 1, 5, MINUTE_END)).isEqualTo(-1);
    assertThat(store.get(k, MINUTE)).isEqualTo(5);
  }

  @Test
  void addIfWithinRefusesAnAmountLargerThanTheLimitOnAnEmptyCounter() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, DAY, 1001, 1000, DAY_END)).isEqualTo(-1);
    assertThat(store.get(k, DAY)).isZero();
    assertThat(store.addIfWithin(k, DAY, 1000, 1000, DAY_END)).isEqualTo(1000);
  }

  @Test
  void addIfWithinJudgesAgainstTheLimitOfEachCall() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, MINUTE, 5, 5, MINUTE_END)).isEqualTo(5);
    assertThat(store.addIfWithin(k, MINUTE, 1, 5, MINUTE_END)).isEqualTo(-1);
    // A policy reloaded with a larger bound: the same counter goes on.
    assertThat(store.addIfWithin(k, MINUTE, 1, 6, MINUTE_END)).isEqualTo(6);
    // ... and with a smaller one: refused, nothing added.
    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).isEqualTo(-1);
    assertThat(store.get(k, MINUTE)).isEqualTo(6);
  }

  @Test
  void addIfWithinNeverWrapsAroundNearTheLargestTotal() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, DAY, Long.MAX_VALUE - 1, Long.MAX_VALUE, DAY_END))
        .isEqualTo(Long.MAX_VALUE - 1);
    assertThat(store.addIfWithin(k, DAY, 2, Long.MAX_VALUE, DAY_END)).isEqualTo(-1);
    assertThat(store.get(k, DAY)).isEqualTo(Long.MAX_VALUE - 1);
    assertThat(store.addIfWithin(k, DAY, 1, Long.MAX_VALUE, DAY_END)).isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void addAddsWhateverTheTotalAndReturnsIt() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.add(k, DAY, 700, DAY_END)).as("a new counter starts at 0").isEqualTo(700);
    assertThat(store.add(k, DAY, 500, DAY_END))
        .as("past any limit: tokens are charged after the fact")
        .isEqualTo(1200);
    assertThat(store.get(k, DAY)).isEqualTo(1200);
    assertThat(store.addIfWithin(k, DAY, 1, 1000, DAY_END))
        .as("the charged total counts")
        .isEqualTo(-1);
  }

  @Test
  void addWithANegativeAmountGivesBack() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).isEqualTo(1);
    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).isEqualTo(2);
    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).isEqualTo(-1);

    assertThat(store.add(k, MINUTE, -1, MINUTE_END)).isEqualTo(1);
    assertThat(store.get(k, MINUTE)).isEqualTo(1);
    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).as("room again").isEqualTo(2);
    assertThat(store.add(k, MINUTE, -2, MINUTE_END)).isZero();
  }

  @Test
  void windowsAreIndependent() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");

    assertThat(store.addIfWithin(k, MINUTE, 3, 3, MINUTE_END)).isEqualTo(3);
    assertThat(store.addIfWithin(k, MINUTE, 1, 3, MINUTE_END)).isEqualTo(-1);

    // The next minute starts at 0, whatever the last one used.
    Instant nextEnd = MINUTE_END.plusSeconds(60);
    assertThat(store.get(k, MINUTE + 1)).isZero();
    assertThat(store.addIfWithin(k, MINUTE + 1, 1, 3, nextEnd)).isEqualTo(1);
    assertThat(store.add(k, MINUTE + 1, 10, nextEnd)).isEqualTo(11);
    assertThat(store.get(k, MINUTE)).as("the old window is untouched").isEqualTo(3);
    // An earlier window is its own counter too.
    assertThat(store.get(k, MINUTE - 1)).isZero();
  }

  @Test
  void theNextWindowStartsAtZeroOnceTheClockGetsThere() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("alice");
    assertThat(store.addIfWithin(k, MINUTE, 2, 2, MINUTE_END)).isEqualTo(2);

    clock.set(MINUTE_END.minusMillis(1));
    assertThat(store.get(k, MINUTE)).as("kept until the window ends").isEqualTo(2);
    assertThat(store.addIfWithin(k, MINUTE, 1, 2, MINUTE_END)).isEqualTo(-1);

    clock.set(MINUTE_END);
    long next = MINUTE + 1;
    assertThat(store.get(k, next)).isZero();
    assertThat(store.addIfWithin(k, next, 2, 2, MINUTE_END.plusSeconds(60))).isEqualTo(2);
  }

  @Test
  void keysAreIndependent() throws Exception {
    QuotaStore store = newStore(clock);
    // Shaped like the engine's keys: subject, entry and bound; one differs in each part.
    String alice = prefix + "alice\n0\nrequests-per-minute";
    String bob = prefix + "bob\n0\nrequests-per-minute";
    String otherEntry = prefix + "alice\n1\nrequests-per-minute";
    String otherBound = prefix + "alice\n0\ntokens-per-minute";
    String longer = prefix + "alice\n0\nrequests-per-minute-x";
    String unicode = prefix + "ålice@例え.jp\n0\nrequests-per-minute";

    assertThat(store.addIfWithin(alice, MINUTE, 5, 5, MINUTE_END)).isEqualTo(5);
    assertThat(store.addIfWithin(alice, MINUTE, 1, 5, MINUTE_END)).isEqualTo(-1);

    for (String other : List.of(bob, otherEntry, otherBound, longer, unicode)) {
      assertThat(store.get(other, MINUTE)).as(other).isZero();
      assertThat(store.addIfWithin(other, MINUTE, 1, 5, MINUTE_END)).as(other).isEqualTo(1);
    }
    assertThat(store.add(bob, MINUTE, 3, MINUTE_END)).isEqualTo(4);
    assertThat(store.get(alice, MINUTE)).isEqualTo(5);
    assertThat(store.get(unicode, MINUTE)).isEqualTo(1);
  }

  private static QuotaStore.Step check(String key, long amount, long limit) {
    return new QuotaStore.Step(key, DAY, amount, limit, DAY_END, false);
  }

  private static QuotaStore.Step count(String key, long limit) {
    return new QuotaStore.Step(key, MINUTE, 1, limit, MINUTE_END, true);
  }

  @Test
  void admitChecksThenAddsEveryAddingStepWhenAllHaveRoom() throws Exception {
    QuotaStore store = newStore(clock);
    String tokens = key("tokens");
    String requests = key("requests");
    String other = key("other-requests");
    store.add(tokens, DAY, 90, DAY_END);
    store.add(requests, MINUTE, 2, MINUTE_END);

    QuotaStore.Admission a =
        store.admit(List.of(check(tokens, 10, 100), count(requests, 3), count(other, 5)));

    assertThat(a.admitted()).isTrue();
    assertThat(a.failed()).isEqualTo(-1);
    assertThat(a.totals()).containsExactly(90, 3, 1);
    assertThat(store.get(tokens, DAY)).as("a checking step adds nothing").isEqualTo(90);
    assertThat(store.get(requests, MINUTE)).isEqualTo(3);
    assertThat(store.get(other, MINUTE)).isEqualTo(1);
  }

  @Test
  void admitAddsNothingWhenAStepHasNoRoomAndSaysWhichAndItsTotal() throws Exception {
    QuotaStore store = newStore(clock);
    String tokens = key("tokens");
    String first = key("requests-first");
    String full = key("requests-full");
    store.add(tokens, DAY, 95, DAY_END);
    store.add(full, MINUTE, 4, MINUTE_END);

    QuotaStore.Admission tooMuch =
        store.admit(List.of(count(first, 10), check(tokens, 6, 100), count(full, 10)));
    assertThat(tooMuch.failed()).as("95 + 6 > 100").isEqualTo(1);
    assertThat(tooMuch.admitted()).isFalse();
    assertThat(tooMuch.totals()[1]).isEqualTo(95);
    assertThat(store.get(first, MINUTE)).as("the earlier adding step is not kept").isZero();

    QuotaStore.Admission lastFull =
        store.admit(List.of(count(first, 10), check(tokens, 5, 100), count(full, 4)));
    assertThat(lastFull.failed()).isEqualTo(2);
    assertThat(lastFull.totals()).containsExactly(0, 95, 4);
    assertThat(store.get(first, MINUTE)).isZero();
    assertThat(store.get(full, MINUTE)).isEqualTo(4);

    assertThat(store.admit(List.of(count(first, 10), check(tokens, 5, 100))).totals())
        .as("exactly at the limit has room")
        .containsExactly(1, 95);
  }

  @Test
  void chargeAddsTheAddingStepsWhateverTheirLimitAndReadsTheOthers() throws Exception {
    QuotaStore store = newStore(clock);
    String tokens = key("tokens");
    String requests = key("requests");
    store.add(tokens, DAY, 90, DAY_END);
    store.add(requests, MINUTE, 2, MINUTE_END);

    long[] totals =
        store.charge(
            List.of(
                new QuotaStore.Step(tokens, DAY, 30, 100, DAY_END, true),
                new QuotaStore.Step(requests, MINUTE, 1, 3, MINUTE_END, false)));

    assertThat(totals)
        .as("tokens are charged after the fact, past the limit")
        .containsExactly(120, 2);
    assertThat(store.get(tokens, DAY)).isEqualTo(120);
    assertThat(store.get(requests, MINUTE)).as("a reading step adds nothing").isEqualTo(2);
    assertThat(store.charge(List.of())).isEmpty();
  }

  @Test
  void admitNeverPassesALimitUnderConcurrencyAndKeepsNoPartOfARefusedAdmission() throws Exception {
    QuotaStore store = newStore(clock);
    String shared = key("shared");
    int threads = 8;
    int each = 200;
    long limit = 500; // of 1,600 admissions
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<String> own = new ArrayList<>();
    List<Future<Integer>> done = new ArrayList<>();
    try {
      for (int t = 0; t < threads; t++) {
        String mine = key("own-" + t);
        own.add(mine);
        done.add(
            pool.submit(
                () -> {
                  start.await();
                  int admitted = 0;
                  for (int i = 0; i < each; i++) {
                    // its own counter first, then the shared one: a refusal must give back the
                    // first
                    if (store
                        .admit(List.of(count(mine, Long.MAX_VALUE), count(shared, limit)))
                        .admitted()) admitted++;
                  }
                  return admitted;
                }));
      }
      start.countDown();
      long admitted = 0;
      for (Future<Integer> f : done) admitted += f.get();
      assertThat(admitted).as("exactly the limit admitted").isEqualTo(limit);
    } finally {
      pool.shutdownNow();
    }
    assertThat(store.get(shared, MINUTE)).isEqualTo(limit);
    long kept = 0;
    for (String mine : own) kept += store.get(mine, MINUTE);
    assertThat(kept)
        .as("each thread's own counter holds only its admitted requests")
        .isEqualTo(limit);
  }

  @Test
  void eightThreadsNeverPassTheLimitAndFillItExactly() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("hammered");
    int threads = 8;
    int each = 500;
    long limit = 1000; // half of the 4000 attempts pass
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Long> passed = new ArrayList<>();
    try {
      List<Future<List<Long>>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                (Callable<List<Long>>)
                    () -> {
                      start.await();
                      List<Long> mine = new ArrayList<>();
                      for (int i = 0; i < each; i++) {
                        long total = store.addIfWithin(k, MINUTE, 1, limit, MINUTE_END);
                        if (total >= 0) mine.add(total);
                      }
                      return mine;
                    }));
      }
      start.countDown();
      for (Future<List<Long>> f : done) passed.addAll(f.get());
    } finally {
      pool.shutdownNow();
    }

    assertThat(passed).as("exactly the limit passed").hasSize((int) limit);
    // Each passing call saw its own total: no two callers were given the same slot.
    assertThat(passed)
        .doesNotHaveDuplicates()
        .allSatisfy(total -> assertThat(total).isBetween(1L, limit));
    assertThat(store.get(k, MINUTE)).isEqualTo(limit);
  }

  @Test
  void concurrentAmountsLargerThanOneNeverPassTheLimit() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("tokens");
    int threads = 8;
    long limit = 10_000;
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    long added = 0;
    try {
      List<Future<Long>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        long amount = 7 + t; // 7..14
        done.add(
            pool.submit(
                () -> {
                  start.await();
                  long mine = 0;
                  for (int i = 0; i < 400; i++) {
                    if (store.addIfWithin(k, DAY, amount, limit, DAY_END) >= 0) mine += amount;
                  }
                  return mine;
                }));
      }
      start.countDown();
      for (Future<Long> f : done) added += f.get();
    } finally {
      pool.shutdownNow();
    }

    long total = store.get(k, DAY);
    assertThat(total).as("what the passing calls added, nothing more").isEqualTo(added);
    assertThat(total)
        .isLessThanOrEqualTo(limit)
        .as("the attempts went on long enough to fill it but for the smallest amount")
        .isGreaterThan(limit - 7);
  }

  @Test
  void concurrentAddsAndGiveBacksLoseNothing() throws Exception {
    QuotaStore store = newStore(clock);
    String k = key("charged");
    int threads = 8;
    int each = 1000;
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      start.await();
                      for (int i = 0; i < each; i++) {
                        store.add(k, DAY, 3, DAY_END);
                        store.add(k, DAY, -1, DAY_END);
                      }
                      return null;
                    }));
      }
      start.countDown();
      for (Future<Void> f : done) f.get();
    } finally {
      pool.shutdownNow();
    }

    assertThat(store.get(k, DAY)).isEqualTo((long) threads * each * 2);
  }
}
