package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.testsupport.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * What the default store does beyond the {@code QuotaStore} contract (which runs against it in
 * pam-testkit's {@code InMemoryQuotaStoreContractTest}: pam-testkit depends on pam-core, so
 * pam-core's tests cannot extend the contract): counters are forgotten once their window has
 * ended on the injected clock, the number of counters is bounded, and bad arguments are refused.
 */
class InMemoryQuotaStoreTest {
  static final Instant T0 = Instant.parse("2026-11-28T22:00:20Z");
  static final long MINUTE = T0.getEpochSecond() / 60;
  static final Instant MINUTE_END = Instant.ofEpochSecond((MINUTE + 1) * 60);

  final MutableClock clock = new MutableClock(T0);

  @Test
  void forgetsACounterOnceItsWindowHasEndedOnTheInjectedClock() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    assertThat(store.addIfWithin("alice", MINUTE, 3, 3, MINUTE_END)).isEqualTo(3);

    clock.advance(Duration.ofSeconds(39)); // 22:00:59, one second left
    assertThat(store.get("alice", MINUTE)).isEqualTo(3);
    assertThat(store.addIfWithin("alice", MINUTE, 1, 3, MINUTE_END)).isEqualTo(-1);

    clock.advance(Duration.ofSeconds(1)); // 22:01:00, the window is over
    assertThat(store.get("alice", MINUTE)).as("dropped at its window end").isZero();
    // Only a caller still naming the old window (the engine never does) would see it start over.
    assertThat(store.addIfWithin("alice", MINUTE, 1, 3, MINUTE_END)).isEqualTo(1);
  }

  @Test
  void aCounterLivesUntilItsOwnWindowEndNotAFixedTime() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    long day = T0.getEpochSecond() / 86_400;
    Instant dayEnd = Instant.ofEpochSecond((day + 1) * 86_400); // 2026-11-29T00:00:00Z
    store.add("alice-day", day, 500, dayEnd);
    store.add("alice-minute", MINUTE, 5, MINUTE_END);

    clock.set(dayEnd.minusSeconds(1));
    assertThat(store.get("alice-minute", MINUTE)).isZero();
    assertThat(store.get("alice-day", day)).isEqualTo(500);

    clock.set(dayEnd);
    assertThat(store.get("alice-day", day)).isZero();
  }

  @Test
  void addingToAnExistingCounterDoesNotExtendItsLife() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    store.add("alice", MINUTE, 1, MINUTE_END);
    clock.advance(Duration.ofSeconds(30));
    // Same counter, later windowEnd given: the counter still ends with its window.
    store.add("alice", MINUTE, 1, MINUTE_END.plusSeconds(3600));
    assertThat(store.get("alice", MINUTE)).isEqualTo(2);

    clock.set(MINUTE_END);
    assertThat(store.get("alice", MINUTE)).isZero();
  }

  @Test
  void nothingExpiresWhileTheInjectedClockStandsStill() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    store.add("alice", MINUTE, 7, MINUTE_END);
    // Real time passes (a few thousand calls), the fake clock does not: the counter stays.
    for (int i = 0; i < 5_000; i++) store.add("k" + i, MINUTE, 1, MINUTE_END);
    assertThat(store.get("alice", MINUTE)).isEqualTo(7);
  }

  @Test
  void holdsAtMostTheMaximumNumberOfCounters() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock, 10);
    int keys = 2_000;
    for (int i = 0; i < keys; i++) store.add("principal-" + i, MINUTE, 1, MINUTE_END);

    // Caffeine evicts on its maintenance thread: the bound holds eventually, not at once.
    await()
        .atMost(10, TimeUnit.SECONDS)
        .pollInterval(Duration.ofMillis(10))
        .untilAsserted(
            () -> {
              int kept = 0;
              for (int i = 0; i < keys; i++) {
                if (store.get("principal-" + i, MINUTE) != 0) kept++;
              }
              assertThat(kept).isLessThanOrEqualTo(10);
              assertThat(counters(store)).isLessThanOrEqualTo(10);
            });
  }

  @Test
  void toStringShowsHowManyCountersButNoKey() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    store.add("alice@example.com\n0\nrequests-per-minute", MINUTE, 1, MINUTE_END);

    assertThat(store.toString())
        .isEqualTo("InMemoryQuotaStore[1 counters]")
        .doesNotContain("alice");
  }

  @Test
  void refusesBadConstructorArguments() {
    assertThatThrownBy(() -> new InMemoryQuotaStore(clock, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maximumCounters must be > 0, was 0");
    assertThatThrownBy(() -> new InMemoryQuotaStore(clock, -5))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maximumCounters must be > 0, was -5");
    assertThatThrownBy(() -> new InMemoryQuotaStore(null))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("clock");
    assertThatThrownBy(() -> new InMemoryQuotaStore(null, 10))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("clock");
    assertThat(InMemoryQuotaStore.DEFAULT_MAXIMUM_COUNTERS).isEqualTo(100_000);
  }

  @Test
  void refusesANullKeyOrWindowEnd() {
    InMemoryQuotaStore store = new InMemoryQuotaStore(clock);
    assertThatThrownBy(() -> store.addIfWithin(null, MINUTE, 1, 1, MINUTE_END))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("key");
    assertThatThrownBy(() -> store.add(null, MINUTE, 1, MINUTE_END))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("key");
    assertThatThrownBy(() -> store.get(null, MINUTE))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("key");
    assertThatThrownBy(() -> store.addIfWithin("alice", MINUTE, 1, 1, null))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("windowEnd");
    assertThatThrownBy(() -> store.add("alice", MINUTE, 1, null))
        .isInstanceOf(NullPointerException.class)
        .hasMessage("windowEnd");
  }

  /** The store's own count, from its {@code toString} (Caffeine's estimated size). */
  private static long counters(InMemoryQuotaStore store) {
    String s = store.toString();
    return Long.parseLong(s.substring(s.indexOf('[') + 1, s.indexOf(' ')));
  }
}
