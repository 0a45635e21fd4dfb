package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code credit-card}: 13..19 digits, unseparated or grouped by single spaces, dashes, dots or
 * slashes, passing the Luhn check. Immutable and thread-safe.
 *
 * <p>A hand-written scan. Every digit group that is not glued to a letter, digit or {@code _} on
 * its left is a candidate start; from there the longest run of following groups (joined by single
 * {@code ' '} / {@code '-'} / {@code '.'} / {@code '/'}) with 13..19 digits, not glued to a word char on its right and passing
 * Luhn, is reported; groups must look like a card's (a first group of 4 digits, then groups of
 * 3..6), and every group start is tried, the masker resolving overlaps. So {@code 4111 1111 1111 1111 2025} masks
 * the card and keeps {@code 2025}, and {@code order 12345 4111 1111 1111 1111} still masks the
 * card. A run that continues with, or follows, a dot or slash and a digit is part of a longer
 * dotted number ({@code 0.4111111111111111}, {@code 4111.1111.1111.1111.5}) and is not a card. A run with a bad Luhn sum is not masked: that is what tells a card from an order number.
 * Each candidate reads at most 19 digits and their separators, so time is linear and a decision
 * never needs more than {@link #holdBack()} chars.
 */
final class CreditCardDetector implements Detector {
  static final int MIN_DIGITS = 13;
  static final int MAX_DIGITS = 19;
  private static final Alphabet ALPHABET =
      Alphabet.ascii(c -> RegexDetector.isDigit(c) || isSeparator(c));

  @Override
  public String name() {
    return "credit-card";
  }

  @Override
  public int maxMatchLength() {
    return MAX_DIGITS + MAX_DIGITS - 1;
  }

  @Override
  public final boolean indexed() {
    return true;
  }

  @Override
  public Alphabet alphabet() {
    return ALPHABET;
  }

  @Override
  public void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    IndexedText t = IndexedText.of(text, from);
    text = t;
    IndexedText.Positions runs = t.digitRuns();
    int n = text.length();
    int first = runs.firstAtOrAfter(from);
    if (first == runs.count()) return;
    int[] digits = new int[MAX_DIGITS];
    int[] groupEnds = new int[MAX_DIGITS]; // index after the group's last digit
    int[] groupDigits = new int[MAX_DIGITS]; // digits up to and including the group
    for (int r = first; r < runs.count(); r++) {
      int start = runs.get(r);
      if (start > 0 && isWord(text.charAt(start - 1))) continue; // glued to a word
      if (dottedDigit(text, start - 2)) continue; // "3.1415...", "12/...": inside a dotted number
      // Collect the groups of at most MAX_DIGITS digits that start here.
      int count = 0;
      int groups = 0;
      int j = start;
      while (true) {
        while (j < n && RegexDetector.isDigit(text.charAt(j)) && count <= MAX_DIGITS) {
          if (count < MAX_DIGITS) digits[count] = text.charAt(j) - '0';
          count++;
          j++;
        }
        if (count > MAX_DIGITS || (j < n && RegexDetector.isDigit(text.charAt(j)))) break;
        groupEnds[groups] = j;
        groupDigits[groups] = count;
        groups++;
        if (j + 1 < n && isSeparator(text.charAt(j)) && RegexDetector.isDigit(text.charAt(j + 1))) {
          j++;
        } else {
          break;
        }
      }
      // Longest first; a candidate must not be glued to a word char after it, and grouped digits
      // must be grouped like a card: a first group of 4, then groups of 3..6.
      int g = groups - 1;
      if (g > 0 && groupDigits[0] != 4) g = 0;
      for (int k = 1; k <= g; k++) {
        int size = groupDigits[k] - groupDigits[k - 1];
        if (size < 3 || size > 6) {
          g = k - 1;
          break;
        }
      }
      for (; g >= 0; g--) {
        int c = groupDigits[g];
        int end = groupEnds[g];
        if (c >= MIN_DIGITS
            && c <= MAX_DIGITS
            && !(end < n && isWord(text.charAt(end)))
            && !dottedDigit(text, end)
            && luhn(digits, c)) {
          out.accept(new Match(start, end, name()));
          break;
        }
      }
      // Overlapping candidates are all reported (the masker keeps the earliest, longest), so a
      // number that is not a card cannot hide the card right after it: on to the next group.
    }
  }

  /** Whether {@code text[i, i+2)} is a digit and a dot or slash, or a dot or slash and a digit. */
  private static boolean dottedDigit(CharSequence text, int i) {
    if (i < 0 || i + 1 >= text.length()) return false;
    char a = text.charAt(i);
    char b = text.charAt(i + 1);
    return (RegexDetector.isDigit(a) && (b == '.' || b == '/'))
        || ((a == '.' || a == '/') && RegexDetector.isDigit(b));
  }

  private static boolean isSeparator(char c) {
    return c == ' ' || c == '-' || c == '.' || c == '/';
  }

  private static boolean isWord(char c) {
    return RegexDetector.isAlnum(c) || c == '_';
  }

  static boolean luhn(int[] digits, int count) {
    int sum = 0;
    for (int k = 0; k < count; k++) {
      int d = digits[count - 1 - k];
      if (k % 2 == 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    return sum % 10 == 0;
  }
}
