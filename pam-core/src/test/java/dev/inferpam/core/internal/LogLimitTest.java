package dev.inferpam.core.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** One line per interval during an outage, each saying how many were left out before it. */
class LogLimitTest {
  final AtomicLong now = new AtomicLong(1_000);
  final LogLimit limit = new LogLimit(Duration.ofSeconds(10), now::get);

  @Test
  void theFirstLineIsWrittenThenOnePerIntervalWithTheCountLeftOut() {
    assertThat(limit.admit()).as("the first line of an outage").isZero();
    for (int i = 0; i < 999; i++) assertThat(limit.admit()).isEqualTo(-1);
    now.addAndGet(Duration.ofSeconds(9).toNanos());
    assertThat(limit.admit()).as("still within the interval").isEqualTo(-1);
    now.addAndGet(Duration.ofSeconds(1).toNanos());
    assertThat(limit.admit()).as("the next line says how many it stands for").isEqualTo(1_000);
    assertThat(limit.admit()).isEqualTo(-1);
    now.addAndGet(Duration.ofMinutes(5).toNanos());
    assertThat(limit.admit()).isEqualTo(1);
  }

  @Test
  void theWordsAddedToALine() {
    assertThat(LogLimit.since(0)).isEmpty();
    assertThat(LogLimit.since(1_000))
        .isEqualTo(" (1000 more like it left out of the log since the last)");
  }

  @Test
  void anIntervalMustBePositive() {
    assertThatThrownBy(() -> new LogLimit(Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("interval must be > 0");
  }
}
