package dev.inferpam.core.internal.quotas;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Reads the raw value of a usage-carrying key that {@link UsageExtractor} copied: a usage object
 * ({@code {"prompt_tokens":41,...}}) or a bare count ({@code 26}).
 *
 * <p>Two readers with one meaning. The Jackson reader ({@link #objectByJackson},
 * {@link #countByJackson}) defines it: a streaming parse of the first value, malformed input
 * gives nothing. The direct reader ({@link #object}, {@link #count}) walks the bytes without
 * creating a parser, which is most of what reading usage costs on a small response; it accepts
 * only a strict, common subset (ASCII keys without escapes; whole numbers without sign, fraction,
 * exponent or leading zero, at most 18 digits; strings without escapes, control or non-ASCII
 * bytes; {@code true}, {@code false}, {@code null}; nesting to {@value #MAX_DEPTH}) and says
 * {@link #UNSURE} for anything else, which the callers then hand to Jackson. Within the subset
 * both give the same result (a property test compares them on generated and damaged input).
 *
 * <p>Stateless; thread-safe.
 */
final class UsageValues {

  /** The usage fields read, in this order: their index is the index into the result arrays. */
  static final String[] FIELDS = {
    UsageExtractor.PROMPT_TOKENS,
    "input_tokens",
    UsageExtractor.COMPLETION_TOKENS,
    "output_tokens",
    UsageExtractor.TOTAL_TOKENS
  };

  private static final byte[][] FIELD_BYTES = new byte[FIELDS.length][];

  static {
    for (int f = 0; f < FIELDS.length; f++)
      FIELD_BYTES[f] = FIELDS[f].getBytes(StandardCharsets.US_ASCII);
  }

  /** An object was read: the arrays hold what it has. */
  static final int TAKEN = 0;

  /** Nothing to take (not an object, or malformed). */
  static final int NOTHING = 1;

  /** The direct reader does not decide this input: read it with Jackson. */
  static final int UNSURE = 2;

  /** {@link #count}: the value is not a usable count (the earlier value stays). */
  static final long NOT_A_COUNT = -1;

  /** {@link #count}: the direct reader does not decide this input. */
  static final long UNSURE_COUNT = -2;

  private static final int MAX_DEPTH = 16;
  private static final int MAX_DIGITS = 18; // any 18-digit number fits a long
  private static final JsonFactory JSON = new JsonFactory();

  private UsageValues() {}

  // ---------------------------------------------------------------------------------------
  // the direct reader

  /**
   * Reads a usage object from {@code b[0..length)}: for each of {@link #FIELDS}, whether it is
   * present (with any value) and its count (a whole number &ge; 0 fitting a long, else
   * {@code null}); a later duplicate replaces an earlier one. {@link #TAKEN}, {@link #NOTHING} or
   * {@link #UNSURE} (the arrays are then in no defined state).
   */
  static int object(byte[] b, int length, Long[] counts, boolean[] present) {
    int i = space(b, 0, length);
    if (i == length) return NOTHING; // no value at all
    if (b[i] != '{') {
      // Another value, or malformed: nothing either way. But a byte that is neither could be a
      // byte-order mark or a NUL, from which Jackson would guess another encoding.
      return b[i] == '['
              || b[i] == '"'
              || b[i] == '-'
              || b[i] == 't'
              || b[i] == 'f'
              || b[i] == 'n'
              || isDigit(b[i])
          ? NOTHING
          : UNSURE;
    }
    long[] value = new long[1];
    i = space(b, i + 1, length);
    if (i < length && b[i] == '}') return TAKEN;
    while (true) {
      if (i == length || b[i] != '"') return UNSURE;
      int keyStart = i + 1;
      int keyEnd = plainString(b, keyStart, length);
      if (keyEnd < 0) return UNSURE;
      i = space(b, keyEnd + 1, length);
      if (i == length || b[i] != ':') return UNSURE;
      i = space(b, i + 1, length);
      i = value(b, i, length, 1, value);
      if (i < 0) return UNSURE;
      int field = field(b, keyStart, keyEnd);
      if (field >= 0) {
        present[field] = true;
        counts[field] = value[0] >= 0 ? value[0] : null;
      }
      i = space(b, i, length);
      if (i == length) return UNSURE;
      if (b[i] == '}') return TAKEN;
      if (b[i] != ',') return UNSURE;
      i = space(b, i + 1, length);
    }
  }

  /**
   * Reads a bare count from {@code b[0..length)}: the number (&ge; 0), {@link #NOT_A_COUNT} or
   * {@link #UNSURE_COUNT}.
   */
  static long count(byte[] b, int length) {
    int i = space(b, 0, length);
    if (i == length || !isDigit(b[i])) return UNSURE_COUNT;
    long[] value = new long[1];
    i = number(b, i, length, value);
    if (i < 0 || space(b, i, length) != length) return UNSURE_COUNT;
    return value[0];
  }

  /**
   * Reads the value at {@code i}; {@code out[0]} becomes its count or {@link #NOT_A_COUNT}.
   * Returns the index after it, or -1 when unsure.
   */
  private static int value(byte[] b, int i, int length, int depth, long[] out) {
    if (i == length) return -1;
    out[0] = NOT_A_COUNT;
    byte c = b[i];
    if (isDigit(c)) return number(b, i, length, out);
    switch (c) {
      case '"':
        {
          int end = plainString(b, i + 1, length);
          return end < 0 ? -1 : end + 1;
        }
      case 't':
        return literal(b, i, length, "true");
      case 'f':
        return literal(b, i, length, "false");
      case 'n':
        return literal(b, i, length, "null");
      case '{':
      case '[':
        {
          int end = container(b, i, length, depth + 1, out);
          out[0] = NOT_A_COUNT; // the container's own values wrote there
          return end;
        }
      default:
        return -1; // a sign, a syntax error, ...
    }
  }

  /** Skips the object or array at {@code i}; the index after it, or -1 when unsure. */
  private static int container(byte[] b, int i, int length, int depth, long[] scratch) {
    if (depth > MAX_DEPTH) return -1;
    boolean object = b[i] == '{';
    byte close = object ? (byte) '}' : (byte) ']';
    i = space(b, i + 1, length);
    if (i < length && b[i] == close) return i + 1;
    while (true) {
      if (object) {
        if (i == length || b[i] != '"') return -1;
        int keyEnd = plainString(b, i + 1, length);
        if (keyEnd < 0) return -1;
        i = space(b, keyEnd + 1, length);
        if (i == length || b[i] != ':') return -1;
        i = space(b, i + 1, length);
      }
      i = value(b, i, length, depth, scratch);
      if (i < 0) return -1;
      i = space(b, i, length);
      if (i == length) return -1;
      if (b[i] == close) return i + 1;
      if (b[i] != ',') return -1;
      i = space(b, i + 1, length);
    }
  }

  /**
   * A whole number at {@code i} (a digit there): its value into {@code out[0]}, the index after
   * it; -1 for a leading zero, a fraction or exponent, too many digits or a stray byte after it.
   */
  private static int number(byte[] b, int i, int length, long[] out) {
    int start = i;
    long n = 0;
    while (i < length && isDigit(b[i])) {
      if (i - start == MAX_DIGITS) return -1;
      n = n * 10 + (b[i] - '0');
      i++;
    }
    if (b[start] == '0' && i - start > 1) return -1;
    if (i < length && !isDelimiter(b[i])) return -1; // '.', 'e', a letter, ...
    out[0] = n;
    return i;
  }

  private static int literal(byte[] b, int i, int length, String word) {
    int n = word.length();
    if (length - i < n) return -1;
    for (int k = 0; k < n; k++) {
      if (b[i + k] != word.charAt(k)) return -1;
    }
    i += n;
    if (i < length && !isDelimiter(b[i])) return -1;
    return i;
  }

  /**
   * The index of the closing quote of a string whose contents start at {@code i}, or -1 if it
   * has an escape, a control or non-ASCII byte, or does not end.
   */
  private static int plainString(byte[] b, int i, int length) {
    for (; i < length; i++) {
      byte c = b[i];
      if (c == '"') return i;
      if (c == '\\' || c < 0x20) return -1; // non-ASCII bytes are negative
    }
    return -1;
  }

  private static int field(byte[] b, int start, int end) {
    int len = end - start;
    for (int f = 0; f < FIELD_BYTES.length; f++) {
      byte[] name = FIELD_BYTES[f];
      if (name.length == len && java.util.Arrays.equals(b, start, end, name, 0, len)) return f;
    }
    return -1;
  }

  private static int space(byte[] b, int i, int length) {
    while (i < length && isSpace(b[i])) i++;
    return i;
  }

  private static boolean isSpace(byte c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }

  private static boolean isDigit(byte c) {
    return c >= '0' && c <= '9';
  }

  private static boolean isDelimiter(byte c) {
    return isSpace(c) || c == ',' || c == '}' || c == ']';
  }

  // ---------------------------------------------------------------------------------------
  // the Jackson reader: the meaning

  /** {@link #object} by a streaming parse: {@link #TAKEN} or {@link #NOTHING}, never unsure. */
  static int objectByJackson(byte[] b, int length, Long[] counts, boolean[] present) {
    try (JsonParser p = JSON.createParser(b, 0, length)) {
      JsonToken t = p.nextToken();
      if (t != JsonToken.START_OBJECT) return NOTHING;
      // Read whole before anything is taken: a malformed object gives nothing, as a tree would.
      Long[] found = new Long[FIELDS.length];
      boolean[] seen = new boolean[FIELDS.length];
      while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
        int field = java.util.Arrays.asList(FIELDS).indexOf(p.currentName());
        t = p.nextToken();
        if (field >= 0) { // a later duplicate wins, as in a tree
          seen[field] = true;
          found[field] = countAt(p, t);
        }
        if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) p.skipChildren();
      }
      if (t != JsonToken.END_OBJECT) return NOTHING;
      System.arraycopy(found, 0, counts, 0, FIELDS.length);
      System.arraycopy(seen, 0, present, 0, FIELDS.length);
      return TAKEN;
    } catch (IOException e) {
      return NOTHING; // not JSON after all
    }
  }

  /** {@link #count} by a streaming parse: the count or {@link #NOT_A_COUNT}, never unsure. */
  static long countByJackson(byte[] b, int length) {
    try (JsonParser p = JSON.createParser(b, 0, length)) {
      Long n = countAt(p, p.nextToken());
      return n == null ? NOT_A_COUNT : n;
    } catch (IOException e) {
      return NOT_A_COUNT;
    }
  }

  /** The count at the current token when it is a whole number >= 0 that fits a long, else {@code null}. */
  private static Long countAt(JsonParser p, JsonToken t) throws IOException {
    if (t != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER)
      return null;
    long n = p.getLongValue();
    return n < 0 ? null : n;
  }
}
