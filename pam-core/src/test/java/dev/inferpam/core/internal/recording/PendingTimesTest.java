package dev.inferpam.core.internal.recording;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The enqueue times behind a recorder's lag: oldest first, through wrap-around and growth. */
class PendingTimesTest {

  @Test
  void theOldestPendingRecordIsAtTheHeadUntilItIsDurable() {
    PendingTimes t = new PendingTimes();
    assertThat(t.oldest()).isEqualTo(PendingTimes.NONE);
    assertThat(PendingTimes.lag(t.oldest(), 1_000)).as("nothing waits").isZero();
    t.add(1, 100);
    t.add(2, 200);
    t.add(3, 300);
    assertThat(t.oldest()).isEqualTo(100);
    assertThat(PendingTimes.lag(t.oldest(), 1_000)).isEqualTo(900);
    t.durableUpTo(2);
    assertThat(t.oldest()).isEqualTo(300);
    t.durableUpTo(2); // again: nothing changes
    assertThat(t.size()).isEqualTo(1);
    t.durableUpTo(7);
    assertThat(t.oldest()).isEqualTo(PendingTimes.NONE);
    assertThat(PendingTimes.lag(500, 400)).as("never negative").isZero();
  }

  @Test
  void keepsOrderThroughWrapAroundAndGrowth() {
    PendingTimes t = new PendingTimes();
    long seq = 0;
    // wrap the 64-slot ring several times with a few pending, then grow it past 64 pending
    for (int round = 0; round < 200; round++) {
      t.add(++seq, seq * 10);
      t.add(++seq, seq * 10);
      t.durableUpTo(seq - 1);
      assertThat(t.oldest()).isEqualTo(seq * 10);
    }
    long firstPending = seq;
    for (int i = 0; i < 1_000; i++) t.add(++seq, seq * 10);
    assertThat(t.size()).isEqualTo(1_001);
    assertThat(t.oldest()).isEqualTo(firstPending * 10);
    t.durableUpTo(firstPending + 500);
    assertThat(t.oldest()).isEqualTo((firstPending + 501) * 10);
    assertThat(t.size()).isEqualTo(500);
  }
}
