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
 *
 * <p>Fast path: a subclass names where a match can start ({@link #starts}, from the one-pass
 * {@link IndexedText}); the pattern is tried only there (anchored, {@link Matcher#lookingAt()}),
 * which keeps prose nearly free. Attempts see the text before them through transparent bounds,
 * so a scan may start anywhere.
 */
abstract class RegexDetector implements Detector {
  private final String name;
  private final Pattern pattern;
  private final int maxLength;
  private final Alphabet alphabet;

  /**
   * @param alphabet chars a match or its look-ahead can run through, or {@code null} when unknown
   *                 (then the stream holds back {@link #holdBack()} chars)
   */
  RegexDetector(String name, Pattern pattern, int maxLength, Alphabet alphabet) {
    this.name = Objects.requireNonNull(name, "name");
    this.pattern = Objects.requireNonNull(pattern, "pattern");
    this.maxLength = maxLength;
    this.alphabet = alphabet == null ? null : Alphabet.ascii(alphabet);
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
  public final boolean indexed() {
    return true;
  }

  @Override
  public final Alphabet alphabet() {
    return alphabet;
  }

  @Override
  public final void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    IndexedText t = IndexedText.of(text, from);
    int n = t.length();
    Matcher m = null;
    int i = from;
    IndexedText.Positions starts = starts(t);
    for (int k = starts.firstAtOrAfter(from); k < starts.count(); k++) {
      int s = starts.get(k);
      if (s < i) continue;
      if (m == null) m = matcher(t);
      m.region(s, n);
      if (m.lookingAt()) i = report(t, m, out);
    }
  }

  private Matcher matcher(IndexedText t) {
    Matcher m = pattern.matcher(t.text());
    m.useTransparentBounds(true);
    m.useAnchoringBounds(false);
    return m;
  }

  /** Validates the candidate {@code m} found, reports it if accepted; returns where to go on. */
  private int report(IndexedText t, Matcher m, Consumer<Match> out) {
    int[] span = accept(t, m.start(), m.end());
    if (span != null && span[1] > span[0]) {
      out.accept(new Match(span[0], span[1], name));
      return Math.max(span[1], m.start() + 1);
    }
    // A rejected candidate may still hide a valid value starting one char later.
    return m.start() + 1;
  }

  /** Positions at or after {@code t.from()} at which a match can start; the pattern is tried anchored at each. */
  abstract IndexedText.Positions starts(IndexedText t);

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
