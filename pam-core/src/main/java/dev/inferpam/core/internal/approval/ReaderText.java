package dev.inferpam.core.internal.approval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Text the way a reader sees it, for {@code approval.rules[].prompt-matches}: two forms of a
 * text, and the pattern rewrite that goes with the second. Stateless and thread-safe; every
 * method is linear in its input.
 *
 * <p><b>Reader form</b> ({@link #reader}): invisible code points removed (format characters,
 * category Cf: zero-width joiners and spaces, soft hyphen, byte order mark, bidi controls, tag
 * characters; the other default-ignorable code points such as variation selectors and Hangul
 * fillers; control characters that are not whitespace), then Unicode NFKC (fullwidth, ligature,
 * mathematical and other compatibility forms become the plain letters), then every run of
 * whitespace of any kind (NBSP, the U+2000 spaces, U+3000, line and paragraph separators, NEL,
 * CR LF, tabs) one ASCII space, trimmed. Case is kept: patterns are matched against it
 * case-insensitively.
 *
 * <p><b>Skeleton</b> ({@link #skeleton}): the reader form decomposed (NFD), then each code point
 * replaced by its confusable skeleton as Unicode TS #39 defines it, case-folded: {@code x} maps to
 * {@code skeleton(NFKC_Casefold(skeleton(x)))}, repeated until nothing changes. The skeleton is
 * taken before case folding as well as after, because confusability depends on case (capital
 * {@code I} looks like {@code l}, small {@code i} does not): {@code "AII"} and {@code "all"} have
 * the same skeleton, and so do Cyrillic {@code "ԁսmр"} and {@code "dump"} (both {@code "durnp"}:
 * TS #39 maps {@code m} to {@code rn}). Whitespace in the result is collapsed again (U+2800
 * BRAILLE PATTERN BLANK is a space). The mapping is the committed table
 * {@code reader-skeleton.txt}, generated from ICU's {@code SpoofChecker} by the test-scope
 * {@code ReaderSkeletonTable}; {@code ReaderTextTest} checks, for every code point, that this
 * class gives what ICU gives. The table holds only code points that reach it (those Java 17's
 * Unicode 13 leaves alone under NFD, and every code point newer than that) and map to something
 * else: about 4,600 lines. It is loaded once, on first use.
 *
 * <p><b>Patterns</b> ({@link #skeletonPattern}): a pattern is written in plain text; to search it
 * in a skeleton, each literal character of the pattern is replaced by its own skeleton (so
 * {@code "dump all"} becomes {@code "durnp all"}, and a run of literal whitespace one space).
 * Classes, escapes such as {@code \d} and {@code \p{L}}, and the rest of the syntax are kept.
 */
final class ReaderText {
  /** The mapping table, a resource next to this class. */
  static final String TABLE = "reader-skeleton.txt";

  /** Default-ignorable code points (Unicode DerivedCoreProperties), as inclusive ranges. */
  private static final int[] DEFAULT_IGNORABLE = {
    0x00AD, 0x00AD, 0x034F, 0x034F, 0x061C, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180F,
    0x200B, 0x200F, 0x202A, 0x202E, 0x2060, 0x206F, 0x3164, 0x3164, 0xFE00, 0xFE0F, 0xFEFF, 0xFEFF,
    0xFFA0, 0xFFA0, 0xFFF0, 0xFFF8, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0000, 0xE0FFF
  };

  /** ASCII kinds: {@link #VISIBLE}, {@link #SPACE} or {@link #INVISIBLE}, so that plain text takes no lookups. */
  private static final byte[] ASCII = new byte[128];

  private static final byte VISIBLE = 0;
  private static final byte SPACE = 1;
  private static final byte INVISIBLE = 2;

  static {
    for (int c = 0; c < 128; c++)
      ASCII[c] = whitespaceLookup(c) ? SPACE : invisibleLookup(c) ? INVISIBLE : VISIBLE;
  }

  private ReaderText() {}

  /**
   * True for a code point a reader does not see: a format character (Cf), a control character
   * that is not whitespace, or another default-ignorable code point.
   */
  static boolean invisible(int cp) {
    return cp < 128 ? ASCII[cp] == INVISIBLE : invisibleLookup(cp);
  }

  private static boolean invisibleLookup(int cp) {
    int type = Character.getType(cp);
    if (type == Character.FORMAT) return true;
    if (type == Character.CONTROL) return !whitespace(cp);
    for (int i = 0; i < DEFAULT_IGNORABLE.length && cp >= DEFAULT_IGNORABLE[i]; i += 2) {
      if (cp <= DEFAULT_IGNORABLE[i + 1]) return true;
    }
    return false;
  }

  /** True for whitespace of any kind: Java's whitespace, the space separators (NBSP...) and NEL. */
  static boolean whitespace(int cp) {
    return cp < 128 ? ASCII[cp] == SPACE : whitespaceLookup(cp);
  }

  private static boolean whitespaceLookup(int cp) {
    return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
  }

  /** The reader form of {@code text} (see the class comment). */
  public static String reader(CharSequence text) {
    return reader(text, false);
  }

  /**
   * The reader form of {@code text}, its invisible code points read as spaces when
   * {@code invisibleAsSpace}: a zero-width space or a soft hyphen between two words separates
   * them for a model's tokenizer although a reader sees none, so a prompt with invisible code
   * points is read both ways.
   */
  public static String reader(CharSequence text, boolean invisibleAsSpace) {
    CharSequence visible = text;
    if (hasInvisible(text)) {
      StringBuilder b = new StringBuilder(text.length());
      for (int i = 0; i < text.length(); ) {
        int cp = Character.codePointAt(text, i);
        i += Character.charCount(cp);
        if (!invisible(cp)) b.appendCodePoint(cp);
        else if (invisibleAsSpace) b.append(' ');
      }
      visible = b;
    }
    // Invisible code points go first, so that NFKC composes what they separated.
    String nfkc = Normalizer.normalize(visible, Normalizer.Form.NFKC);
    return collapse(nfkc, false);
  }

  /** True when {@code text} has an invisible code point (see {@link #reader(CharSequence, boolean)}). */
  public static boolean hasInvisible(CharSequence text) {
    for (int i = 0; i < text.length(); ) {
      char c = text.charAt(i);
      if (c < 128) {
        if (ASCII[c] == INVISIBLE) return true;
        i++;
        continue;
      }
      int cp = Character.codePointAt(text, i);
      i += Character.charCount(cp);
      if (invisible(cp)) return true;
    }
    return false;
  }

  /** The skeleton of a reader form (see the class comment). */
  public static String skeleton(String readerForm) {
    String mapped = collapse(Normalizer.normalize(readerForm, Normalizer.Form.NFD), true);
    // Mapped code points may bring combining marks out of canonical order: NFD puts them back.
    return Normalizer.normalize(mapped, Normalizer.Form.NFD);
  }

  /**
   * Removes invisible code points, maps each through the table when {@code map}, and writes every
   * run of whitespace as one space, trimmed.
   */
  private static String collapse(String s, boolean map) {
    Table table = map ? Table.INSTANCE : null;
    StringBuilder out = new StringBuilder(s.length());
    boolean space = false;
    for (int i = 0; i < s.length(); ) {
      char c = s.charAt(i);
      if (c < 128 && (!map || table.ascii[c] == null)) { // plain text: no lookups
        byte kind = ASCII[c];
        if (kind == SPACE) {
          space = true;
        } else if (kind == VISIBLE) {
          if (space && out.length() > 0) out.append(' ');
          out.append(c);
          space = false;
        }
        i++;
        continue;
      }
      int cp = s.codePointAt(i);
      i += Character.charCount(cp);
      String mapped = map ? table.get(cp) : null;
      if (mapped == null) {
        space = append(out, cp, space);
      } else {
        for (int j = 0; j < mapped.length(); ) {
          int m = mapped.codePointAt(j);
          j += Character.charCount(m);
          space = append(out, m, space);
        }
      }
    }
    return out.toString();
  }

  /** Appends {@code cp} unless invisible, a pending space first; returns whether a space is pending. */
  private static boolean append(StringBuilder out, int cp, boolean space) {
    if (whitespace(cp)) return true;
    if (invisible(cp)) return space;
    if (space && out.length() > 0) out.append(' ');
    out.appendCodePoint(cp);
    return false;
  }

  /**
   * The text hidden in Unicode tag characters U+E0020 to U+E007E, which some models read as the
   * ASCII characters they shadow although a reader sees nothing; empty when there is none.
   */
  public static String hiddenTags(CharSequence text) {
    StringBuilder out = null;
    for (int i = 0; i < text.length(); ) {
      int cp = Character.codePointAt(text, i);
      i += Character.charCount(cp);
      if (cp >= 0xE0020 && cp <= 0xE007E) {
        if (out == null) out = new StringBuilder();
        out.append((char) (cp - 0xE0000));
      }
    }
    return out == null ? "" : out.toString();
  }

  /** A pattern rewritten for skeletons, and whether it has anchors ({@code ^ $ \A \z \Z \G}). */
  public record SkeletonPattern(String regex, boolean anchored) {}

  /**
   * {@code regex} with every literal character, written plainly or escaped ({@code \t},
   * {@code \x{..}}, {@code \.}), replaced by its skeleton, and each run of literal whitespace by
   * one space; classes and the rest of the syntax unchanged. The shape of the pattern is kept: a
   * literal whose skeleton is several characters becomes a non-capturing group without
   * quantifier or alternation inside, so a pattern {@link
   * dev.inferpam.core.internal.masking.CustomPatterns#check} accepted keeps its linear matching.
   *
   * @param regex a pattern that {@link java.util.regex.Pattern} compiles and {@code CustomPatterns}
   *              accepts (no {@code \Q}, no comments flag)
   */
  public static SkeletonPattern skeletonPattern(String regex) {
    StringBuilder out = new StringBuilder(regex.length() + 16);
    boolean anchored = false;
    boolean lastWasSpace = false;
    int i = 0;
    while (i < regex.length()) {
      char c = regex.charAt(i);
      int literal = -1;
      int start = i;
      switch (c) {
        case '[' -> i = skipClass(regex, i);
        case '(' -> i = groupOpener(regex, i);
        case '{' -> i = regex.indexOf('}', i) + 1;
        case '^', '$' -> {
          anchored = true;
          i++;
        }
        case ')', '|', '.', '?', '*', '+' -> i++;
        case '\\' -> {
          int[] esc = escape(regex, i);
          literal = esc[0];
          i = esc[1];
          char e = regex.charAt(start + 1);
          if (e == 'A' || e == 'z' || e == 'Z' || e == 'G') anchored = true;
        }
        default -> {
          literal = regex.codePointAt(i);
          i += Character.charCount(literal);
        }
      }
      if (literal < 0) {
        out.append(regex, start, i);
        lastWasSpace = false;
        continue;
      }
      boolean quantified = i < regex.length() && "?*+{".indexOf(regex.charAt(i)) >= 0;
      String skeleton =
          whitespace(literal) ? " " : skeleton(reader(new String(Character.toChars(literal))));
      if (skeleton.equals(" ")) {
        if (lastWasSpace && !quantified) continue;
        lastWasSpace = !quantified;
      } else {
        lastWasSpace = false;
      }
      int n = skeleton.codePointCount(0, skeleton.length());
      if (n != 1) out.append("(?:");
      skeleton.codePoints().forEach(cp -> quote(out, cp));
      if (n != 1) out.append(')');
    }
    return new SkeletonPattern(out.toString(), anchored);
  }

  private static void quote(StringBuilder out, int cp) {
    if (cp == ' ' || cp < 0x80 && Character.isLetterOrDigit(cp)) out.append((char) cp);
    else out.append("\\x{").append(Integer.toHexString(cp)).append('}');
  }

  /** Index after the group opener at {@code i}: {@code (}, {@code (?:}, {@code (?<name>}, {@code (?i)}, {@code (?i:}. */
  private static int groupOpener(String s, int i) {
    i++;
    if (i >= s.length() || s.charAt(i) != '?') return i;
    i++;
    if (s.charAt(i) == '<') return s.indexOf('>', i) + 1;
    while (s.charAt(i) != ')' && s.charAt(i) != ':') i++;
    return i + 1;
  }

  /** Index after the class that opens at {@code i} (nested classes and escapes included). */
  private static int skipClass(String s, int i) {
    int depth = 0;
    i++;
    if (i < s.length() && s.charAt(i) == '^') i++;
    if (i < s.length() && s.charAt(i) == ']') i++;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '\\') {
        i = escape(s, i)[1];
        continue;
      }
      i++;
      if (c == '[') depth++;
      if (c == ']') {
        if (depth == 0) return i;
        depth--;
      }
    }
    return i;
  }

  /**
   * The escape at {@code i}: {@code {literal code point or -1, index after it}}. A literal is a
   * character escape ({@code \t \n \r \f \a \e \x.. \cX \N{name}}, the four-digit Unicode escape) or an escaped
   * character that is not a letter or digit.
   */
  private static int[] escape(String s, int i) {
    char e = s.charAt(i + 1);
    int after = i + 2;
    switch (e) {
      case 't' -> {
        return new int[] {'\t', after};
      }
      case 'n' -> {
        return new int[] {'\n', after};
      }
      case 'r' -> {
        return new int[] {'\r', after};
      }
      case 'f' -> {
        return new int[] {'\f', after};
      }
      case 'a' -> {
        return new int[] {0x07, after};
      }
      case 'e' -> {
        return new int[] {0x1B, after};
      }
      case 'c' -> {
        return new int[] {s.charAt(after) ^ 64, after + 1};
      }
      case 'u' -> {
        return new int[] {Integer.parseInt(s.substring(after, after + 4), 16), after + 4};
      }
      case 'x' -> {
        if (s.charAt(after) == '{') {
          int close = s.indexOf('}', after);
          return new int[] {Integer.parseInt(s.substring(after + 1, close), 16), close + 1};
        }
        return new int[] {Integer.parseInt(s.substring(after, after + 2), 16), after + 2};
      }
      case 'N' -> {
        int close = s.indexOf('}', after);
        return new int[] {Character.codePointOf(s.substring(after + 1, close)), close + 1};
      }
      case 'p', 'P' -> {
        return new int[] {-1, s.charAt(after) == '{' ? s.indexOf('}', after) + 1 : after + 1};
      }
      default -> {
        int cp = s.codePointAt(i + 1);
        int end = i + 1 + Character.charCount(cp);
        return new int[] {Character.isLetterOrDigit(cp) ? -1 : cp, end};
      }
    }
  }

  /** The mapping table: code point to skeleton, for the code points that map to something else. */
  static final class Table {
    static final Table INSTANCE = load();

    private final String[] ascii = new String[128];
    private final int[] keys;
    private final String[] values;

    private Table(int[] keys, String[] values) {
      this.keys = keys;
      this.values = values;
      for (int i = 0; i < keys.length && keys[i] < 128; i++) ascii[keys[i]] = values[i];
    }

    /** The skeleton of {@code cp}, or {@code null} when it is {@code cp} itself. */
    String get(int cp) {
      if (cp < 128) return ascii[cp];
      int at = Arrays.binarySearch(keys, cp);
      return at < 0 ? null : values[at];
    }

    /**
     * Reads the table: one line per code point, {@code key value...} in hexadecimal (no value:
     * the code point maps to nothing), keys ascending; {@code #} starts a comment line.
     */
    static Table load() {
      List<int[]> rows = new ArrayList<>();
      try (InputStream in = ReaderText.class.getResourceAsStream(TABLE)) {
        if (in == null)
          throw new IllegalStateException("inferpam: resource " + TABLE + " is missing");
        BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
        for (String line; (line = r.readLine()) != null; ) {
          if (line.isEmpty() || line.startsWith("#")) continue;
          String[] parts = line.split(" ");
          int[] row = new int[parts.length];
          for (int i = 0; i < parts.length; i++) row[i] = Integer.parseInt(parts[i], 16);
          rows.add(row);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      int[] keys = new int[rows.size()];
      String[] values = new String[rows.size()];
      for (int i = 0; i < keys.length; i++) {
        int[] row = rows.get(i);
        keys[i] = row[0];
        if (i > 0 && keys[i] <= keys[i - 1])
          throw new IllegalStateException("inferpam: " + TABLE + " is not sorted");
        values[i] = new String(row, 1, row.length - 1);
      }
      return new Table(keys, values);
    }
  }
}
