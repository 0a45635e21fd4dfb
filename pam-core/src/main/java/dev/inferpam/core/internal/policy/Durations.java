package dev.inferpam.core.internal.policy;

import java.time.Duration;
import java.util.Objects;

/**
 * Durations as the policy file writes them: a whole number and a unit, {@code 500ms},
 * {@code 30s}, {@code 5m}, {@code 1h}, {@code 1d} ({@code d} is 24 hours). Stateless and
 * thread-safe.
 *
 * <p>Deliberately small: no fractions, signs, spaces, combined units ({@code 1h30m}) or
 * upper-case units, because {@code M} would read as months to some and minutes to others. Zero
 * ({@code 0s}) is valid; callers that need a positive duration check that themselves and say
 * which key was wrong.
 */
public final class Durations {
  private Durations() {}

  /**
   * Parses {@code text}.
   *
   * @throws IllegalArgumentException e.g. {@code invalid duration "5x": expected a whole number
   *     followed by ms, s, m, h or d, e.g. 30s}, or when the value does not fit a {@link Duration}
   * @throws NullPointerException     if {@code text} is null
   */
  public static Duration parse(String text) {
    Objects.requireNonNull(text, "text");
    int digits = 0;
    while (digits < text.length() && text.charAt(digits) >= '0' && text.charAt(digits) <= '9') {
      digits++;
    }
    String unit = text.substring(digits);
    if (digits == 0 || !isUnit(unit)) {
      throw new IllegalArgumentException(
          "invalid duration "
              + PolicyText.quote(text)
              + ": expected a whole number followed by ms, s, m, h or d, e.g. 30s");
    }
    try {
      long n = Long.parseLong(text.substring(0, digits));
      return switch (unit) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        case "m" -> Duration.ofMinutes(n);
        case "h" -> Duration.ofHours(n);
        default -> Duration.ofDays(n);
      };
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException(
          "invalid duration " + PolicyText.quote(text) + ": too large");
    }
  }

  /**
   * Writes {@code d} in the largest unit that represents it exactly, so that
   * {@code parse(format(d)).equals(d)} for every non-negative whole number of milliseconds.
   *
   * @throws IllegalArgumentException if {@code d} is negative, has a sub-millisecond part or
   *     does not fit a {@code long} of milliseconds
   */
  public static String format(Duration d) {
    Objects.requireNonNull(d, "d");
    long ms;
    try {
      ms = d.toMillis();
    } catch (ArithmeticException e) {
      ms = -1;
    }
    if (ms < 0 || d.getNano() % 1_000_000 != 0) {
      throw new IllegalArgumentException("cannot write " + d + " as a policy duration");
    }
    if (ms == 0) return "0s";
    if (ms % 86_400_000L == 0) return ms / 86_400_000L + "d";
    if (ms % 3_600_000L == 0) return ms / 3_600_000L + "h";
    if (ms % 60_000L == 0) return ms / 60_000L + "m";
    if (ms % 1_000L == 0) return ms / 1_000L + "s";
    return ms + "ms";
  }

  private static boolean isUnit(String unit) {
    return switch (unit) {
      case "ms", "s", "m", "h", "d" -> true;
      default -> false;
    };
  }
}
