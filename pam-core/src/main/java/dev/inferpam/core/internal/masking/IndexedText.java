package dev.inferpam.core.internal.masking;

import java.util.Arrays;
import java.util.Objects;

/**
 * A text with the positions where built-in detectors can start, found in one pass, so that each
 * detector jumps from candidate to candidate instead of scanning every char itself (prose holds
 * few digits, {@code @}, colons or upper-case pairs; ten detectors scanning it ten times was the
 * cost). Immutable once built; one masking pass, one thread.
 *
 * <p>Candidate lists, ascending, all at or after {@link #from()}:
 * <ul>
 *   <li>{@link #digitRuns()}: where a run of ASCII digits begins (not preceded by a digit);</li>
 *   <li>{@link #signs()}: a {@code +} or {@code (} right before a digit (phone numbers);</li>
 *   <li>{@link #ats()}: every {@code @};</li>
 *   <li>{@link #upperPairs()}: where a run of at least two upper-case ASCII letters begins, not
 *       glued to a letter or digit on its left (IBANs, AWS keys);</li>
 *   <li>{@link #colons()}: every {@code :} (IPv6);</li>
 *   <li>{@link #eyJ()}: every {@code eyJ} not preceded by a base64url char (JWTs).</li>
 * </ul>
 */
final class IndexedText implements CharSequence {
  private final String s;
  private final int from;
  private static final int[] NONE = new int[0];
  private int[] digitRuns = NONE;
  private int digitCount;
  private int[] signs = NONE;
  private int signCount;
  private int[] ats = NONE;
  private int atCount;
  private int[] uppers = NONE;
  private int upperCount;
  private int[] colons = NONE;
  private int colonCount;
  private int[] eyj = NONE;
  private int eyjCount;

  private IndexedText(String s, int from) {
    this.s = s;
    this.from = from;
    index();
  }

  /** {@code text} itself when it is an index covering {@code from}, else a new index of it. */
  static IndexedText of(CharSequence text, int from) {
    Objects.requireNonNull(text, "text");
    if (text instanceof IndexedText it && it.from <= from) return it;
    return new IndexedText(text.toString(), from);
  }

  int from() {
    return from;
  }

  /** The indexed text as a {@link String}. */
  String string() {
    return s;
  }

  private void index() {
    String t = s;
    int n = t.length();
    char prev = from > 0 ? t.charAt(from - 1) : ' ';
    for (int i = from; i < n; i++) {
      char c = t.charAt(i);
      if (c < 'A') {
        if (c >= '0') {
          if (c <= '9') {
            if (prev < '0' || prev > '9') {
              digitRuns = add(digitRuns, digitCount++, i);
              if ((prev == '+' || prev == '(') && i - 1 >= from) signs = add(signs, signCount++, i - 1);
            }
          } else if (c == ':') {
            colons = add(colons, colonCount++, i);
          } else if (c == '@') {
            ats = add(ats, atCount++, i);
          }
        }
      } else if (c <= 'Z') {
        if (i + 1 < n && isUpper(t.charAt(i + 1)) && !isUpper(prev) && !isLowerOrDigit(prev)) {
          uppers = add(uppers, upperCount++, i);
        }
      } else if (c == 'e' && i + 2 < n && t.charAt(i + 1) == 'y' && t.charAt(i + 2) == 'J' && !isB64(prev)) {
        eyj = add(eyj, eyjCount++, i);
      }
      prev = c;
    }
  }

  private static int[] add(int[] list, int at, int value) {
    if (at == list.length) list = Arrays.copyOf(list, Math.max(8, list.length * 2));
    list[at] = value;
    return list;
  }

  static boolean isUpper(char c) {
    return c >= 'A' && c <= 'Z';
  }

  private static boolean isLowerOrDigit(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  }

  static boolean isB64(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
  }

  /** A candidate list: {@code positions[0..count)}, ascending. */
  record Positions(int[] positions, int count) {
    /** Index of the first position {@code >= value}, or {@code count}. */
    int firstAtOrAfter(int value) {
      int lo = 0;
      int hi = count;
      while (lo < hi) {
        int mid = (lo + hi) >>> 1;
        if (positions[mid] < value) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }

    int get(int i) {
      return positions[i];
    }
  }

  Positions digitRuns() {
    return new Positions(digitRuns, digitCount);
  }

  Positions signs() {
    return new Positions(signs, signCount);
  }

  /** {@link #digitRuns()} and {@link #signs()} merged: where a phone number can start. */
  Positions phoneStarts() {
    if (signCount == 0) return digitRuns();
    int[] merged = new int[digitCount + signCount];
    int a = 0;
    int b = 0;
    int k = 0;
    while (a < digitCount || b < signCount) {
      if (b == signCount || (a < digitCount && digitRuns[a] < signs[b])) merged[k++] = digitRuns[a++];
      else merged[k++] = signs[b++];
    }
    return new Positions(merged, k);
  }

  Positions ats() {
    return new Positions(ats, atCount);
  }

  Positions upperPairs() {
    return new Positions(uppers, upperCount);
  }

  Positions colons() {
    return new Positions(colons, colonCount);
  }

  Positions eyJ() {
    return new Positions(eyj, eyjCount);
  }

  @Override
  public int length() {
    return s.length();
  }

  @Override
  public char charAt(int index) {
    return s.charAt(index);
  }

  @Override
  public CharSequence subSequence(int start, int end) {
    return s.subSequence(start, end);
  }

  @Override
  public String toString() {
    return s;
  }
}
