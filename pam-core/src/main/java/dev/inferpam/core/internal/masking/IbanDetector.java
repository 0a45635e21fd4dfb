package dev.inferpam.core.internal.masking;

import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code iban}: two upper-case letters of a known country, two check digits, the BBAN; total
 * length as the country prescribes and ISO 13616 mod-97 remainder 1. Printed form with single
 * spaces after every 4 characters ({@code DE89 3704 0044 0532 0130 00}) and the electronic form
 * without spaces are both found; other spacing is not. Not glued to a letter or digit on either
 * side. Immutable and thread-safe.
 *
 * <p>Only countries in {@link #LENGTHS} are recognised: an unknown country code cannot be
 * length-checked, and mod-97 alone would let too many random strings through.
 */
final class IbanDetector extends RegexDetector {
  /** IBAN length per country (SWIFT IBAN registry). */
  static final Map<String, Integer> LENGTHS =
      Map.ofEntries(
          Map.entry("AD", 24),
          Map.entry("AT", 20),
          Map.entry("BE", 16),
          Map.entry("BG", 22),
          Map.entry("CH", 21),
          Map.entry("CY", 28),
          Map.entry("CZ", 24),
          Map.entry("DE", 22),
          Map.entry("DK", 18),
          Map.entry("EE", 20),
          Map.entry("ES", 24),
          Map.entry("FI", 18),
          Map.entry("FR", 27),
          Map.entry("GB", 22),
          Map.entry("GR", 27),
          Map.entry("HR", 21),
          Map.entry("HU", 28),
          Map.entry("IE", 22),
          Map.entry("IS", 26),
          Map.entry("IT", 27),
          Map.entry("LI", 21),
          Map.entry("LT", 20),
          Map.entry("LU", 20),
          Map.entry("LV", 21),
          Map.entry("MC", 27),
          Map.entry("MT", 31),
          Map.entry("NL", 18),
          Map.entry("NO", 15),
          Map.entry("PL", 28),
          Map.entry("PT", 25),
          Map.entry("RO", 24),
          Map.entry("SE", 24),
          Map.entry("SI", 19),
          Map.entry("SK", 24),
          Map.entry("SM", 27),
          Map.entry("TR", 26),
          Map.entry("SA", 24),
          Map.entry("AE", 23),
          Map.entry("IL", 23));

  private static final int MAX_CHARS = 34;
  // Each repetition is "optional space, then one alnum": disjoint, so no backtracking blow-up.
  private static final Pattern P =
      Pattern.compile("(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}");

  IbanDetector() {
    super(
        "iban",
        P,
        MAX_CHARS + (MAX_CHARS - 1) / 4,
        c -> (c >= 'A' && c <= 'Z') || isDigit(c) || c == ' ');
  }

  @Override
  IndexedText.Positions starts(IndexedText t) {
    return t.upperPairs();
  }

  @Override
  int[] accept(CharSequence text, int start, int end) {
    Integer length = LENGTHS.get(text.subSequence(start, start + 2).toString());
    if (length == null) return null;
    // The regex may have run into the next word ("DE89... 00 is mine"): cut at the country length.
    StringBuilder iban = new StringBuilder(length);
    int i = start;
    boolean spaced = false;
    while (i < end && iban.length() < length) {
      char c = text.charAt(i);
      if (c == ' ') {
        if (iban.length() % 4 != 0) return null; // spaces only between groups of four
        spaced = true;
      } else {
        if (spaced && iban.length() % 4 == 0 && text.charAt(i - 1) != ' ') return null;
        iban.append(c);
      }
      i++;
    }
    if (iban.length() < length) return null;
    if (i < text.length() && isAlnum(text.charAt(i))) return null;
    return mod97(iban) == 1 ? new int[] {start, i} : null;
  }

  /** ISO 13616: move the first four chars to the end, letters as 10..35, remainder by 97. */
  static int mod97(CharSequence iban) {
    int r = 0;
    int n = iban.length();
    for (int k = 0; k < n; k++) {
      char c = iban.charAt((k + 4) % n);
      int v = c <= '9' ? c - '0' : c - 'A' + 10;
      r = v >= 10 ? (r * 100 + v) % 97 : (r * 10 + v) % 97;
    }
    return r;
  }
}
