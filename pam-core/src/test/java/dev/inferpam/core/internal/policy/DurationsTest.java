package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DurationsTest {

  @Test
  void parsesEachUnit() {
    assertThat(Durations.parse("500ms")).isEqualTo(Duration.ofMillis(500));
    assertThat(Durations.parse("30s")).isEqualTo(Duration.ofSeconds(30));
    assertThat(Durations.parse("5m")).isEqualTo(Duration.ofMinutes(5));
    assertThat(Durations.parse("1h")).isEqualTo(Duration.ofHours(1));
    assertThat(Durations.parse("1d")).isEqualTo(Duration.ofDays(1));
    assertThat(Durations.parse("90d")).isEqualTo(Duration.ofDays(90));
  }

  @Test
  void zeroIsValid() {
    assertThat(Durations.parse("0s")).isZero();
    assertThat(Durations.parse("0ms")).isZero();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "", "5", "s", "5x", "5 s", " 5s", "5s ", "-5s", "+5s", "1.5h", "1h30m", "5M", "5S", "5sec",
        "ms", "5mss", "٥s"
      })
  void refusesAnythingElse(String text) {
    assertThatThrownBy(() -> Durations.parse(text))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "invalid duration "
                + PolicyText.quote(text)
                + ": expected a whole number followed by ms, s, m, h or d, e.g. 30s");
  }

  @Test
  void namesTheBadValue() {
    assertThatThrownBy(() -> Durations.parse("5x"))
        .hasMessage(
            "invalid duration \"5x\": expected a whole number followed by ms, s, m, h or d, e.g. 30s");
  }

  @Test
  void refusesValuesThatDoNotFit() {
    assertThatThrownBy(() -> Durations.parse("99999999999999999999s"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("invalid duration \"99999999999999999999s\": too large");
    assertThatThrownBy(() -> Durations.parse(Long.MAX_VALUE + "d"))
        .hasMessage("invalid duration \"" + Long.MAX_VALUE + "d\": too large");
  }

  @Test
  void refusesNull() {
    assertThatThrownBy(() -> Durations.parse(null)).isInstanceOf(NullPointerException.class);
  }

  @Test
  void formatsInTheLargestExactUnitAndRoundTrips() {
    assertThat(Durations.format(Duration.ZERO)).isEqualTo("0s");
    assertThat(Durations.format(Duration.ofMillis(500))).isEqualTo("500ms");
    assertThat(Durations.format(Duration.ofMillis(1500))).isEqualTo("1500ms");
    assertThat(Durations.format(Duration.ofSeconds(30))).isEqualTo("30s");
    assertThat(Durations.format(Duration.ofSeconds(300))).isEqualTo("5m");
    assertThat(Durations.format(Duration.ofMinutes(90))).isEqualTo("90m");
    assertThat(Durations.format(Duration.ofHours(2))).isEqualTo("2h");
    assertThat(Durations.format(Duration.ofHours(48))).isEqualTo("2d");
    for (String s : new String[] {"1ms", "61s", "7m", "25h", "3d"}) {
      assertThat(Durations.format(Durations.parse(s))).isEqualTo(s);
    }
  }

  @Test
  void formatRefusesWhatTheSyntaxCannotSay() {
    assertThatThrownBy(() -> Durations.format(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Durations.format(Duration.ofNanos(1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Durations.format(Duration.ofSeconds(Long.MAX_VALUE)))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
