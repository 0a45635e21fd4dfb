package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code credit-card}: 13..19 digits, optionally grouped by single spaces or dashes, passing the
 * Luhn check. Immutable and thread-safe.
 *
 * <p>A hand-written scan over digit runs (digits joined by single {@code ' '} / {@code '-'}),
 * each run visited once, so time is linear. The run must not be glued to a letter, digit or
 * {@code _}. The whole run is tried first; if it is not a card (too long, bad Luhn), prefixes that
 * end at a group boundary are tried ({@code 4111 1111 1111 1111 2025} masks the card, keeps
 * {@code 2025}). A run with a bad Luhn sum is not masked: that is what tells a card from an order
 * number.
 */
final class CreditCardDetector implements Detector {
  static final int MIN_DIGITS = 13;
  static final int MAX_DIGITS = 19;

  @Override
  public String name() {
    return "credit-card";
  }

  @Override
  public int maxMatchLength() {
    return MAX_DIGITS + MAX_DIGITS - 1;
  }

  @Override
  public void find(CharSequence text, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    int n = text.length();
    int i = 0;
    int[] digits = new int[MAX_DIGITS];
    int[] groupEnds = new int[MAX_DIGITS]; // index after the group's last digit
    int[] groupDigits = new int[MAX_DIGITS]; // digits up to and including the group
    while (i < n) {
      if (!RegexDetector.isDigit(text.charAt(i))) {
        i++;
        continue;
      }
      int start = i;
      boolean glued = start > 0 && isWord(text.charAt(start - 1));
      int count = 0;
      int groups = 0;
      int j = i;
      while (true) {
        while (j < n && RegexDetector.isDigit(text.charAt(j))) {
          if (count < MAX_DIGITS) digits[count] = text.charAt(j) - '0';
          count++;
          j++;
        }
        if (groups < MAX_DIGITS && count <= MAX_DIGITS) {
          groupEnds[groups] = j;
          groupDigits[groups] = count;
          groups++;
        }
        if (j + 1 < n && (text.charAt(j) == ' ' || text.charAt(j) == '-') && RegexDetector.isDigit(text.charAt(j + 1))) {
          j++;
        } else {
          break;
        }
      }
      // j is the end of the run; the run is visited once, whatever its length.
      boolean gluedAfter = j < n && isWord(text.charAt(j));
      if (!glued && !gluedAfter) {
        for (int g = groups - 1; g >= 0; g--) {
          int c = groupDigits[g];
          if (c >= MIN_DIGITS && c <= MAX_DIGITS && luhn(digits, c)) {
            out.accept(new Match(start, groupEnds[g], name()));
            break;
          }
        }
      }
      i = j;
    }
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
