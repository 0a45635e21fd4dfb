package dev.inferpam.core.internal.masking;

import java.text.Normalizer;

/**
 * The text as detectors read it: compatibility forms folded to ASCII, char for char, so that
 * {@code ４１１１ １１１１ …} (fullwidth digits), {@code ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ} or a
 * number written with other decimal digits is found like its ASCII spelling. Each char of the
 * Basic Multilingual Plane is replaced by
 * <ul>
 *   <li>its NFKC form when that is one printable ASCII char (fullwidth forms, superscript and
 *       subscript digits, no-break and other spaces, ...);</li>
 *   <li>else, for any other Unicode decimal digit (Arabic-Indic, Devanagari, ...), its ASCII
 *       digit;</li>
 *   <li>else, for the dashes U+2010..U+2015 and the minus sign U+2212, {@code -}.</li>
 * </ul>
 * The length never changes, so a match in the folded text is the same span of the original,
 * which is what gets replaced. Chars outside the BMP (surrogate pairs) are left as they are.
 * Stateless and thread-safe; the table is built once, on first use of a non-ASCII char.
 */
final class Fold {
  private Fold() {}

  /** The folded text: {@code text} itself when no char folds (all ASCII, the usual case). */
  static CharSequence of(CharSequence text) {
    int n = text.length();
    int i = 0;
    while (i < n && text.charAt(i) < 0x80) i++;
    if (i == n) return text;
    char[] table = Table.FOLD;
    char[] out = null;
    for (; i < n; i++) {
      char c = text.charAt(i);
      if (c < 0x80 || table[c] == 0) continue;
      if (out == null) out = text.toString().toCharArray();
      out[i] = table[c];
    }
    return out == null ? text : new String(out);
  }

  /**
   * The blocks holding every BMP char whose NFKC form is one printable ASCII char (Latin-1 and
   * spacing modifiers, phonetic extensions, Greek extended, general punctuation to enclosed
   * alphanumerics, Latin extended-C, the ideographic space, presentation, small and fullwidth
   * forms): only these are normalized, which keeps building the table to a few milliseconds.
   */
  private static final int[][] NFKC_BLOCKS = {
    {0x80, 0x3FF},
    {0x1D00, 0x1DBF},
    {0x1F00, 0x1FFF},
    {0x2000, 0x24FF},
    {0x2C60, 0x2C7F},
    {0x3000, 0x3000},
    {0xFB00, 0xFFEF}
  };

  /** Lazily built, once. */
  private static final class Table {
    static final char[] FOLD = build();

    private static char[] build() {
      char[] fold = new char[0x10000];
      for (int[] block : NFKC_BLOCKS) {
        for (int c = block[0]; c <= block[1]; c++) {
          String n = Normalizer.normalize(String.valueOf((char) c), Normalizer.Form.NFKC);
          if (n.length() == 1 && n.charAt(0) >= 0x20 && n.charAt(0) < 0x7F) fold[c] = n.charAt(0);
        }
      }
      for (int c = 0x80; c < 0x10000; c++) {
        if (fold[c] != 0 || Character.isSurrogate((char) c)) continue;
        if (Character.getType(c) == Character.DECIMAL_DIGIT_NUMBER) {
          fold[c] = (char) ('0' + Character.digit(c, 10));
        } else if ((c >= 0x2010 && c <= 0x2015) || c == 0x2212) {
          fold[c] = '-';
        }
      }
      return fold;
    }
  }
}
