package dev.inferpam.testsupport;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class MutableClockTest {
  static final Instant T0 = Instant.parse("2026-06-01T12:00:00Z");

  @Test
  void standsStillUntilMovedThenSetsAndAdvances() {
    MutableClock clock = MutableClock.at("2026-06-01T12:00:00Z");
    assertThat(clock.instant()).isEqualTo(T0);
    assertThat(clock.millis()).isEqualTo(T0.toEpochMilli());
    assertThat(clock.getZone()).isEqualTo(ZoneOffset.UTC);

    clock.advance(Duration.ofMinutes(5));
    assertThat(clock.instant()).isEqualTo(T0.plusSeconds(300));
    clock.advance(Duration.ofSeconds(-60));
    assertThat(clock.instant()).isEqualTo(T0.plusSeconds(240));
    clock.set(T0.minusSeconds(1));
    assertThat(clock.instant()).isEqualTo(T0.minusSeconds(1));
  }

  @Test
  void aViewInAnotherZoneMovesWithIt() {
    MutableClock clock = new MutableClock(T0);
    Clock paris = clock.withZone(ZoneId.of("Europe/Paris"));
    assertThat(paris.getZone()).isEqualTo(ZoneId.of("Europe/Paris"));
    clock.advance(Duration.ofHours(1));
    assertThat(paris.instant()).isEqualTo(T0.plusSeconds(3600));
    assertThat(clock.withZone(ZoneOffset.UTC)).isSameAs(clock);
  }
}
