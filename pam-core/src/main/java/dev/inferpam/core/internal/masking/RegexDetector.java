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
 * <p>Fast path: a subclass may name the chars a match can start with ({@link #startsWith}); the
 * scan then tries the pattern only at those positions (anchored, {@link Matcher#lookingAt()}),
 * which is what keeps prose without digits nearly free for the digit detectors. Attempts see the
 * text before them through transparent bounds, so a scan may start anywhere.
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
    this.alphabet = alphabet;
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
  public final int undecidedFrom(CharSequence text, int from) {
    return alphabet == null ? Detector.super.undecidedFrom(text, from)
        : Detector.trailingRun(text, from, holdBack(), alphabet);
  }

  @Override
  public final void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    int n = text.length();
    Matcher m = pattern.matcher(text);
    m.useTransparentBounds(true);
    m.useAnchoringBounds(false);
    int i = from;
    while (i < n) {
      int s = nextCandidate(text, i);
      if (s < 0 || s >= n) return;
      if (anchored()) {
        m.region(s, n);
        if (!m.lookingAt()) {
          i = s + 1;
          continue;
        }
      } else {
        m.region(s, regionEnd(text, s));
        if (!m.find() || m.start() > lastStart(text, s)) {
          i = afterMiss(text, s);
          continue;
        }
      }
      int[] span = accept(text, m.start(), m.end());
      if (span != null && span[1] > span[0]) {
        out.accept(new Match(span[0], span[1], name));
        i = Math.max(span[1], m.start() + 1);
      } else {
        // A rejected candidate may still hide a valid value starting one char later.
        i = m.start() + 1;
      }
    }
  }

  /**
   * The first position at or after {@code i} where a match could start, or -1. The default is
   * {@code i} itself (the pattern is searched); subclasses with {@link #anchored()} return the
   * next position whose char is in {@link #startsWith}.
   */
  int nextCandidate(CharSequence text, int i) {
    if (!anchored()) return i;
    int n = text.length();
    for (int k = i; k < n; k++) {
      if (startsWith(text.charAt(k))) return k;
    }
    return -1;
  }

  /** Whether {@link #startsWith} is defined, so candidates are tried anchored one by one. */
  boolean anchored() {
    return false;
  }

  /** With {@link #anchored()}: whether a match can start with {@code c}. */
  boolean startsWith(char c) {
    return true;
  }

  /** End of the region searched from {@code i} (unanchored search); default the text's end. */
  int regionEnd(CharSequence text, int i) {
    return text.length();
  }

  /**
   * Latest start a match found by an unanchored search from {@code s} may have; a later one may
   * have been cut short by {@link #regionEnd} and counts as a miss. Default: no limit.
   */
  int lastStart(CharSequence text, int s) {
    return Integer.MAX_VALUE;
  }

  /** Where an unanchored search continues after finding nothing from {@code s}; default: done. */
  int afterMiss(CharSequence text, int s) {
    return text.length();
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
