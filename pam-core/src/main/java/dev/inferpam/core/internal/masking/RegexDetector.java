package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A detector driven by an internal regular expression plus a validation step. Immutable and
 * thread-safe.
 *
 * <p>Linear time: every pattern given here uses only bounded quantifiers, whose alternatives do
 * not overlap, and bounded lookaround, so one match attempt costs at most a constant that depends
 * on the pattern; the search position only moves forward.
 */
abstract class RegexDetector implements Detector {
  private final String name;
  private final Pattern pattern;
  private final int maxLength;

  RegexDetector(String name, Pattern pattern, int maxLength) {
    this.name = Objects.requireNonNull(name, "name");
    this.pattern = Objects.requireNonNull(pattern, "pattern");
    this.maxLength = maxLength;
  }

  @Override
  public final String name() {
    return name;
  }

  @Override
  public final int maxMatchLength() {
    return maxLength;
  }

  @Override
  public final void find(CharSequence text, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    Matcher m = pattern.matcher(text);
    int from = 0;
    while (from < text.length() && m.find(from)) {
      int[] span = accept(text, m.start(), m.end());
      if (span != null && span[1] > span[0]) {
        out.accept(new Match(span[0], span[1], name));
        from = Math.max(span[1], m.start() + 1);
      } else {
        // A rejected candidate may still hide a valid value starting one char later.
        from = m.start() + 1;
      }
    }
  }

  /**
   * Validates a candidate; returns the (possibly narrowed) span {@code {start, end}} to mask, or
   * {@code null} to reject it. The default accepts as matched.
   */
  int[] accept(CharSequence text, int start, int end) {
    return new int[] {start, end};
  }

  static boolean isAlnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }

  static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }
}
