package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;
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
  private final CharSequence s;
  private String copy;
  private final int from;
  private final int limit;
  private Positions eyJList;
  private Positions colonsList;
  private Positions upperPairsList;
  private Positions atsList;
  private Positions signsList;
  private Positions digitRunsList;
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

  private IndexedText(CharSequence s, int from, int limit) {
    this.s = s;
    this.from = from;
    this.limit = limit;
    index();
  }

  /** {@code text} itself when it is an index covering {@code from}, else a new index of it. */
  static IndexedText of(CharSequence text, int from) {
    Objects.requireNonNull(text, "text");
    if (text instanceof IndexedText it && it.from <= from) return it;
    return new IndexedText(text, from, text.length());
  }

  /**
   * An index of candidates in {@code [from, limit)} only: a stream that can release nothing at or
   * after {@code limit} need not look at candidates there (their matches would be dropped anyway).
   * Detectors given it find only matches starting before {@code limit}, plus possibly some after.
   */
  static IndexedText of(CharSequence text, int from, int limit) {
    return new IndexedText(text, from, limit);
  }

  int from() {
    return from;
  }

  /** The indexed text itself (not a copy; a stream's buffer must not change while this is used). */
  CharSequence text() {
    return s;
  }

  /** PEM private keys start here. */
  static final String PEM_BEGIN = "-----BEGIN ";

  /** No candidate of any kind before the limit, nor a PEM BEGIN marker starting there. */
  boolean quiet() {
    if (digitCount + signCount + atCount + upperCount + colonCount + eyjCount > 0) return false;
    int pem = indexOf(PEM_BEGIN, from);
    return pem < 0 || pem >= limit;
  }

  /** {@code String.indexOf(str, from)} of the text, without copying it. */
  int indexOf(String str, int from) {
    if (s instanceof String string) return string.indexOf(str, from);
    if (s instanceof StringBuilder sb) return sb.indexOf(str, from);
    if (copy == null) copy = s.toString(); // other kinds of text: copied once, not per search
    return copy.indexOf(str, from);
  }

  private static final byte DIGIT = 1;
  private static final byte AT = 2;
  private static final byte COLON = 3;
  private static final byte UPPER = 4;

  /** Class of each Latin-1 char; 0 for the chars no candidate starts with (most of them). */
  private static final byte[] CLASS = new byte[256];

  static {
    for (char c = '0'; c <= '9'; c++) CLASS[c] = DIGIT;
    for (char c = 'A'; c <= 'Z'; c++) CLASS[c] = UPPER;
    CLASS['@'] = AT;
    CLASS[':'] = COLON;
  }

  /**
   * One pass over the text as Latin-1 bytes (other chars become {@code ?}, which, like them, is in
   * no class; a text with surrogate pairs is converted char by char so indexes stay aligned) through a class table: the branch is taken only for the few interesting chars, which
   * keeps the pass around a nanosecond per char. {@code eyJ} is found at its {@code J}.
   */
  private void index() {
    CharSequence t = s;
    byte[] b;
    int n;
    if (t.length() - from < 256) {
      // A stream's window: a few dozen chars, not worth a copy of the whole text.
      b = null;
      n = t.length();
    } else {
      b = t.toString().getBytes(StandardCharsets.ISO_8859_1);
      n = b.length;
    }
    if (b != null && n != t.length()) {
      // A surrogate pair became one '?': index by char instead (slower, same result).
      b = new byte[t.length()];
      n = b.length;
      for (int i = Math.max(0, from - 1); i < n; i++) {
        char c = t.charAt(i);
        b[i] = c < 256 ? (byte) c : (byte) '?';
      }
    }
    // One char past the limit: a sign just before it is found by the digit after it.
    int end = Math.min(n, limit + 1);
    for (int i = from; i < end; i++) {
      if (b != null) {
        // eight chars at a time while none of them is in a class (prose: most of the text)
        while (i + 8 <= end && !mayStartCandidate((long) LONGS.get(b, i))) i += 8;
        if (i >= end) break;
      }
      byte k = CLASS[latin1(t, b, i)];
      if (k == 0) continue;
      if (i == limit && k != DIGIT) break;
      int prev = i > 0 ? latin1(t, b, i - 1) : ' ';
      switch (k) {
        case DIGIT -> {
          if (prev < '0' || prev > '9') {
            if ((prev == '+' || prev == '(') && i - 1 >= from)
              signs = add(signs, signCount++, i - 1);
            if (i < limit) digitRuns = add(digitRuns, digitCount++, i);
          }
        }
        case UPPER -> {
          if (i + 1 < n && CLASS[latin1(t, b, i + 1)] == UPPER && !isAlnum(prev))
            uppers = add(uppers, upperCount++, i);
          // "eyJ" (a base64url JSON object: JWTs) found at its 'J', in this same pass
          if (prev == 'y' && latin1(t, b, i) == 'J' && i - 2 >= from && latin1(t, b, i - 2) == 'e')
            eyj(t, i - 2);
        }
        case AT -> ats = add(ats, atCount++, i);
        default -> colons = add(colons, colonCount++, i);
      }
    }
    // The pass stops at the limit: an "eyJ" starting just before it ends past it.
    for (int e = Math.max(from, limit - 2); e < limit && e + 2 < n; e++) {
      if (latin1(t, b, e) == 'e' && latin1(t, b, e + 1) == 'y' && latin1(t, b, e + 2) == 'J')
        eyj(t, e);
    }
  }

  private static final java.lang.invoke.VarHandle LONGS =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(
          long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);

  /**
   * Whether any of the eight Latin-1 chars in {@code w} may be in a class: one in
   * {@code '0'..'Z'} (digits, {@code :}, {@code @}, upper case and a few more) once the top bit is
   * dropped. May say {@code true} for chars in no class (then they are looked at one by one),
   * never {@code false} for a char in one: the table's classes all lie in that range.
   */
  static boolean mayStartCandidate(long w) {
    long x = w & 0x7F7F7F7F7F7F7F7FL;
    long atLeast0 = x + 0x5050505050505050L; // top bit set where x >= '0' (0x30)
    long aboveZ = x + 0x2525252525252525L; // top bit set where x > 'Z' (0x5A)
    return ((atLeast0 & ~aboveZ) & 0x8080808080808080L) != 0;
  }

  /** Notes an {@code eyJ} at {@code e} unless it continues a base64url run. */
  private void eyj(CharSequence t, int e) {
    if (e == 0 || !isB64(t.charAt(e - 1))) eyj = add(eyj, eyjCount++, e);
  }

  /** The char at {@code i} as a Latin-1 code, {@code ?} for others; from {@code b} when given. */
  private static int latin1(CharSequence t, byte[] b, int i) {
    if (b != null) return b[i] & 0xFF;
    char c = t.charAt(i);
    return c < 256 ? c : '?';
  }

  private static boolean isAlnum(int c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }

  private static int[] add(int[] list, int at, int value) {
    if (at == list.length) list = Arrays.copyOf(list, Math.max(8, list.length * 2));
    list[at] = value;
    return list;
  }

  static boolean isB64(char c) {
    return (c >= '0' && c <= '9')
        || (c >= 'A' && c <= 'Z')
        || (c >= 'a' && c <= 'z')
        || c == '-'
        || c == '_';
  }

  /** A candidate list: {@code positions[0..count)}, ascending. */
  record Positions(int[] positions, int count) {
    static final Positions NONE = new Positions(new int[0], 0);

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
    if (digitRunsList == null)
      digitRunsList = digitCount == 0 ? Positions.NONE : new Positions(digitRuns, digitCount);
    return digitRunsList;
  }

  Positions signs() {
    if (signsList == null)
      signsList = signCount == 0 ? Positions.NONE : new Positions(signs, signCount);
    return signsList;
  }

  /** {@link #digitRuns()} and {@link #signs()} merged: where a phone number can start. */
  Positions phoneStarts() {
    if (signCount == 0) return digitRuns();
    int[] merged = new int[digitCount + signCount];
    int a = 0;
    int b = 0;
    int k = 0;
    while (a < digitCount || b < signCount) {
      if (b == signCount || (a < digitCount && digitRuns[a] < signs[b]))
        merged[k++] = digitRuns[a++];
      else merged[k++] = signs[b++];
    }
    return new Positions(merged, k);
  }

  Positions ats() {
    if (atsList == null) atsList = atCount == 0 ? Positions.NONE : new Positions(ats, atCount);
    return atsList;
  }

  Positions upperPairs() {
    if (upperPairsList == null)
      upperPairsList = upperCount == 0 ? Positions.NONE : new Positions(uppers, upperCount);
    return upperPairsList;
  }

  Positions colons() {
    if (colonsList == null)
      colonsList = colonCount == 0 ? Positions.NONE : new Positions(colons, colonCount);
    return colonsList;
  }

  Positions eyJ() {
    if (eyJList == null) eyJList = eyjCount == 0 ? Positions.NONE : new Positions(eyj, eyjCount);
    return eyJList;
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
    return s.toString();
  }
}
