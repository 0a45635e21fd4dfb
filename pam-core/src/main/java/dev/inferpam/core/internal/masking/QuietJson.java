package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;

/**
 * Decides, without a JSON parser, the usual case of a whole JSON response: one well-formed value
 * in which no string value holds anything the {@link BlockMasker} would mask, so that it is
 * delivered as it came. Everything else is left to the parser ({@link BodyMaskerJson}), which
 * gives the same answer for what this accepts.
 *
 * <p>It accepts only a strict subset of JSON (RFC 8259): plain ASCII bytes; one value with
 * nothing but whitespace around it; objects, arrays, strings, numbers ({@code -?(0|[1-9]\d*)}
 * with an optional fraction and exponent, at most {@value #MAX_NUMBER} chars), {@code true},
 * {@code false}, {@code null}; nesting to {@value #MAX_DEPTH}; strings without control bytes,
 * whose escapes are the simple ones or {@code \\uXXXX} outside the surrogates. Every string
 * the parser would mask (every key, and every string value except one right under an
 * {@link BodyMaskerJson#UNTOUCHED} key; a key spelled with escapes counts as any other) is
 * decoded and asked of the masker; any match, or anything outside the subset, answers
 * {@code false}. Stateless.
 */
final class QuietJson {
  private static final int MAX_DEPTH = 64;
  private static final int MAX_NUMBER = 100;

  /** {@link BodyMaskerJson#UNTOUCHED} as bytes: string values right under these keys are not masked, so not asked. */
  private static final byte[][] UNTOUCHED =
      BodyMaskerJson.UNTOUCHED.stream()
          .map(k -> k.getBytes(StandardCharsets.US_ASCII))
          .toArray(byte[][]::new);

  private static final java.lang.invoke.VarHandle LONGS =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(
          long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGHS = 0x8080808080808080L;

  private QuietJson() {}

  /**
   * Whether none of the eight bytes in {@code w} is a quote, a backslash, below 0x20 or above
   * 0x7F. May say {@code false} for plain bytes (a borrow from a lower byte), never {@code true}
   * for others: the caller then looks at them one by one.
   */
  static boolean isPlain(long w) {
    long quote = w ^ (ONES * '"');
    long backslash = w ^ (ONES * '\\');
    long found =
        ((quote - ONES) & ~quote) | ((backslash - ONES) & ~backslash) | (w - ONES * 0x20) | w;
    return (found & HIGHS) == 0;
  }

  /** True when {@code json} is one JSON value, in the subset, with nothing for {@code masker} to mask. */
  static boolean isQuiet(byte[] json, BlockMasker masker) {
    Walk w = new Walk(json, masker);
    int i = w.space(0);
    i = w.value(i, 0, false);
    return i >= 0 && w.space(i) == json.length;
  }

  private static final class Walk {
    private final byte[] b;
    private final BlockMasker masker;
    private StringBuilder decoded;

    Walk(byte[] b, BlockMasker masker) {
      this.b = b;
      this.masker = masker;
    }

    int space(int i) {
      while (i < b.length && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) i++;
      return i;
    }

    /**
     * The value at {@code i}; the index after it, or -1 when outside the subset or not quiet.
     * {@code kept}: right under a key whose string value is never masked (a string not asked).
     */
    int value(int i, int depth, boolean kept) {
      if (i >= b.length) return -1;
      byte c = b[i];
      switch (c) {
        case '{':
        case '[':
          return container(i, depth + 1);
        case '"':
          return string(i + 1, !kept);
        case 't':
          return literal(i, "true");
        case 'f':
          return literal(i, "false");
        case 'n':
          return literal(i, "null");
        default:
          return c == '-' || (c >= '0' && c <= '9') ? number(i) : -1;
      }
    }

    private int container(int i, int depth) {
      if (depth > MAX_DEPTH) return -1;
      boolean object = b[i] == '{';
      byte close = object ? (byte) '}' : (byte) ']';
      i = space(i + 1);
      if (i < b.length && b[i] == close) return i + 1;
      while (true) {
        boolean keptHere = false;
        if (object) {
          if (i >= b.length || b[i] != '"') return -1;
          int keyStart = i + 1;
          i = string(keyStart, true); // a key: masked too
          if (i < 0) return -1;
          keptHere = isUntouched(keyStart, i - 1);
          i = space(i);
          if (i >= b.length || b[i] != ':') return -1;
          i = space(i + 1);
        }
        i = value(i, depth, keptHere);
        if (i < 0) return -1;
        i = space(i);
        if (i >= b.length) return -1;
        if (b[i] == close) return i + 1;
        if (b[i] != ',') return -1;
        i = space(i + 1);
      }
    }

    /** Whether the key {@code b[start, end)} (raw; an escaped one never counts) is an untouched one. */
    private boolean isUntouched(int start, int end) {
      int len = end - start;
      for (byte[] k : UNTOUCHED) {
        if (k.length == len && java.util.Arrays.equals(b, start, end, k, 0, len)) return true;
      }
      return false;
    }

    /** A string whose contents start at {@code i}; checked with the masker when {@code scan}. */
    private int string(int i, boolean scan) {
      int start = i;
      // the usual string: no escape, nothing to decode; eight bytes at a time while none of
      // them is a quote, a backslash, a control byte or non-ASCII
      while (i + 8 <= b.length && isPlain((long) LONGS.get(b, i))) i += 8;
      while (i < b.length) {
        byte c = b[i];
        if (c == '"' || c == '\\' || c < 0x20) break;
        i++;
      }
      if (i >= b.length || b[i] < 0x20) return -1; // unterminated, a control byte, or non-ASCII
      if (b[i] == '"') {
        if (scan
            && i > start
            && !quiet(new String(b, start, i - start, StandardCharsets.ISO_8859_1))) return -1;
        return i + 1;
      }
      StringBuilder text = null;
      while (true) {
        if (i >= b.length) return -1;
        byte c = b[i];
        if (c == '"') break;
        if (c < 0x20) return -1; // a control byte, or non-ASCII (negative)
        if (c == '\\') {
          if (text == null) {
            text = decoded == null ? (decoded = new StringBuilder()) : decoded;
            text.setLength(0);
            text.append(new String(b, start, i - start, StandardCharsets.ISO_8859_1));
          }
          if (i + 1 >= b.length) return -1;
          char e;
          switch (b[i + 1]) {
            case '"' -> e = '"';
            case '\\' -> e = '\\';
            case '/' -> e = '/';
            case 'b' -> e = '\b';
            case 'f' -> e = '\f';
            case 'n' -> e = '\n';
            case 'r' -> e = '\r';
            case 't' -> e = '\t';
            case 'u' -> {
              int code = hex4(i + 2);
              if (code < 0 || Character.isSurrogate((char) code)) return -1;
              e = (char) code;
              i += 4;
            }
            default -> {
              return -1;
            }
          }
          text.append(e);
          i += 2;
          continue;
        }
        if (text != null) text.append((char) c);
        i++;
      }
      if (scan && !quiet(text.toString())) return -1; // text: this string had an escape
      return i + 1;
    }

    /** Whether the masker finds nothing in the string value {@code value}. */
    private boolean quiet(String value) {
      return masker.matches(value).isEmpty();
    }

    private int hex4(int i) {
      if (i + 4 > b.length) return -1;
      int code = 0;
      for (int k = i; k < i + 4; k++) {
        int d = Character.digit(b[k], 16);
        if (d < 0 || b[k] < 0) return -1;
        code = code * 16 + d;
      }
      return code;
    }

    private int literal(int i, String word) {
      if (i + word.length() > b.length) return -1;
      for (int k = 0; k < word.length(); k++) {
        if (b[i + k] != word.charAt(k)) return -1;
      }
      return i + word.length();
    }

    private int number(int i) {
      int start = i;
      if (b[i] == '-') i++;
      if (i >= b.length) return -1;
      if (b[i] == '0') {
        i++;
      } else if (b[i] >= '1' && b[i] <= '9') {
        i = digits(i);
      } else {
        return -1;
      }
      if (i < b.length && b[i] == '.') {
        int after = digits(i + 1);
        if (after == i + 1) return -1;
        i = after;
      }
      if (i < b.length && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < b.length && (b[i] == '+' || b[i] == '-')) i++;
        int after = digits(i);
        if (after == i) return -1;
        i = after;
      }
      return i - start > MAX_NUMBER ? -1 : i;
    }

    private int digits(int i) {
      while (i < b.length && b[i] >= '0' && b[i] <= '9') i++;
      return i;
    }
  }
}
