package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One JSON value read in place, as a flat list of tokens with their byte spans, so that a masker
 * can find the values it needs and {@linkplain JsonSplice splice} new text into the original
 * bytes instead of writing the whole value again. No tree, no copies: a token is an index into a
 * few int arrays, reused from one value to the next.
 *
 * <p>Tokens come in document order. A container's members follow it: in an object, each member
 * is a {@link #KEY} token followed by its value's tokens; {@link #next(int)} is the token after a
 * token's whole subtree, so siblings are {@code t, next(t), next(next(t)), ...}.
 *
 * <p>Strict RFC 8259 (what Jackson's default parser accepts, and less): one value with only
 * space, tab, CR and LF around it; no comments, trailing commas, single quotes, leading zeros,
 * {@code NaN}; strings without raw control bytes, with the standard escapes only (a
 * {@code \\u} escape may stand for a lone surrogate, as Jackson reads it); nesting up to
 * {@value #MAX_DEPTH}, numbers up to {@value #MAX_NUMBER} chars and keys up to
 * {@value #MAX_NAME} bytes, Jackson's default limits. Bytes outside the ASCII range must be
 * well-formed UTF-8 (no overlong forms, no encoded surrogates): {@link #parse} says
 * {@link #BAD_UTF8} otherwise, so the caller can decode them (with U+FFFD) and read again.
 *
 * <p>Not thread-safe: one reader per masked body.
 */
final class JsonSpans {
  static final int OBJECT = 1;
  static final int ARRAY = 2;
  static final int STRING = 3;
  static final int KEY = 4;
  static final int NUMBER = 5;
  static final int TRUE = 6;
  static final int FALSE = 7;
  static final int NULL = 8;

  /** {@link #parse} results. */
  static final int OK = 0;

  static final int INVALID = 1;
  static final int BAD_UTF8 = 2;

  static final int MAX_DEPTH = 1000;
  static final int MAX_NUMBER = 1000;
  static final int MAX_NAME = 50_000;

  private static final int KIND = 0xF;
  private static final int ESCAPED = 0x10; // a string with a backslash escape
  private static final int INTEGRAL = 0x20; // a number without fraction or exponent
  private static final int QUIET = 0x40; // a string of only a-z _ - . and space

  /** Byte classes in a string: {@link #LOUD} and below pass as they are. */
  private static final byte[] CLASS = new byte[256];

  private static final int LOUD = 1; // a plain byte outside the quiet set
  private static final int SPECIAL = 2; // a quote, a backslash, a control byte, non-ASCII

  static {
    for (int c = 0; c < 256; c++) {
      boolean quiet = (c >= 'a' && c <= 'z') || c == '_' || c == '-' || c == '.' || c == ' ';
      boolean special = c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
      CLASS[c] = (byte) (special ? SPECIAL : quiet ? 0 : LOUD);
    }
  }

  /** Arrays at most this long are kept for the next value; larger ones are dropped after use. */
  private static final int KEEP_TOKENS = 4096;

  private int[] info = new int[64];
  private int[] start = new int[64];
  private int[] end = new int[64];
  private int[] next = new int[64];
  private int[] stack = new int[16];
  private int count;
  private byte[] b;
  private int from;
  private int to;
  private StringBuilder decoded;

  /**
   * Reads the value in {@code b[from, to)}.
   *
   * @return {@link #OK}, {@link #INVALID} (not exactly one JSON value within the limits) or
   *     {@link #BAD_UTF8} (a value, but with bytes that are not well-formed UTF-8)
   */
  int parse(byte[] b, int from, int to) {
    if (info.length > KEEP_TOKENS) {
      info = new int[64];
      start = new int[64];
      end = new int[64];
      next = new int[64];
    }
    if (stack.length > KEEP_TOKENS) stack = new int[16];
    this.b = b;
    this.from = from;
    this.to = to;
    count = 0;
    badUtf8 = false;
    int r = read();
    if (r == OK && badUtf8) return BAD_UTF8;
    return r;
  }

  private boolean badUtf8;

  private int read() {
    int depth = 0;
    int i = space(from);
    while (true) {
      // a value starts at i
      if (i >= to) return INVALID;
      byte c = b[i];
      if (c == '{' || c == '[') {
        if (depth == MAX_DEPTH) return INVALID;
        int t = add(c == '{' ? OBJECT : ARRAY, i);
        if (depth == stack.length) stack = Arrays.copyOf(stack, depth * 2);
        stack[depth++] = t;
        i = space(i + 1);
        byte close = c == '{' ? (byte) '}' : (byte) ']';
        if (i < to && b[i] == close) {
          depth--;
          end[t] = i + 1;
          next[t] = count;
          i = space(i + 1);
        } else {
          if (c == '{') {
            i = key(i);
            if (i < 0) return INVALID;
          }
          continue; // its first value
        }
      } else if (c == '"') {
        i = string(i, STRING);
        if (i < 0) return INVALID;
        i = space(i);
      } else {
        i = scalar(i);
        if (i < 0) return INVALID;
        i = space(i);
      }
      // after a value: close containers, or go on to the next member
      while (true) {
        if (depth == 0) return i == to ? OK : INVALID;
        int top = stack[depth - 1];
        if (i >= to) return INVALID;
        if (b[i] == ',') {
          i = space(i + 1);
          if ((info[top] & KIND) == OBJECT) {
            i = key(i);
            if (i < 0) return INVALID;
          }
          break;
        }
        if (b[i] != ((info[top] & KIND) == OBJECT ? '}' : ']')) return INVALID;
        depth--;
        end[top] = i + 1;
        next[top] = count;
        i = space(i + 1);
      }
    }
  }

  /** A key and its colon at {@code i}; the index of the value after them, or -1. */
  private int key(int i) {
    if (i >= to || b[i] != '"') return -1;
    int after = string(i, KEY);
    if (after < 0 || after - i - 2 > MAX_NAME) return -1;
    i = space(after);
    if (i >= to || b[i] != ':') return -1;
    return space(i + 1);
  }

  private int add(int kind, int at) {
    if (count == info.length) {
      int n = count * 2;
      info = Arrays.copyOf(info, n);
      start = Arrays.copyOf(start, n);
      end = Arrays.copyOf(end, n);
      next = Arrays.copyOf(next, n);
    }
    info[count] = kind;
    start[count] = at;
    return count++;
  }

  private int space(int i) {
    while (i < to) {
      byte c = b[i];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      i++;
    }
    return i;
  }

  /** The string whose opening quote is at {@code q}; the index after its closing quote, or -1. */
  private int string(int q, int kind) {
    int t = add(kind, q);
    int i = q + 1;
    int flags = 0;
    int loud = 0;
    final byte[] b = this.b;
    final int to = this.to;
    final byte[] classes = CLASS;
    while (true) {
      // the usual bytes, one table look-up each
      while (i < to) {
        int cls = classes[b[i] & 0xFF];
        if (cls > LOUD) break;
        loud |= cls;
        i++;
      }
      if (i >= to) return -1;
      byte c = b[i];
      if (c == '"') break;
      loud = LOUD;
      if (c == '\\') {
        flags = ESCAPED;
        if (i + 1 >= to) return -1;
        switch (b[i + 1]) {
          case '"', '\\', '/', 'b', 'f', 'n', 'r', 't' -> i += 2;
          case 'u' -> {
            if (hex4(i + 2) < 0) return -1;
            i += 6;
          }
          default -> {
            return -1;
          }
        }
      } else if (c >= 0) {
        return -1; // a raw control byte
      } else {
        int n = utf8(i);
        if (n < 0) {
          badUtf8 = true;
          i++;
        } else {
          i += n;
        }
      }
    }
    info[t] |= flags | (loud == 0 ? QUIET : 0);
    end[t] = i + 1;
    next[t] = count;
    return i + 1;
  }

  /** The length of the well-formed UTF-8 sequence at {@code i} (a lead byte), or -1. */
  private int utf8(int i) {
    int c = b[i] & 0xFF;
    int n;
    int min;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      min = 0x10000;
    } else {
      return -1;
    }
    if (i + n > to) return -1;
    int code = c & (0x7F >> n);
    for (int k = 1; k < n; k++) {
      int x = b[i + k] & 0xFF;
      if ((x & 0xC0) != 0x80) return -1;
      code = (code << 6) | (x & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return -1;
    return n;
  }

  private int hex4(int i) {
    if (i + 4 > to) return -1;
    int code = 0;
    for (int k = i; k < i + 4; k++) {
      int d = Character.digit(b[k], 16);
      if (d < 0 || b[k] < 0) return -1;
      code = code * 16 + d;
    }
    return code;
  }

  /** A number or a literal at {@code i}; the index after it, or -1. */
  private int scalar(int i) {
    byte c = b[i];
    if (c == 't') return literal(i, "true", TRUE);
    if (c == 'f') return literal(i, "false", FALSE);
    if (c == 'n') return literal(i, "null", NULL);
    if (c != '-' && (c < '0' || c > '9')) return -1;
    int s = i;
    int flags = INTEGRAL;
    if (c == '-') i++;
    if (i >= to) return -1;
    if (b[i] == '0') {
      i++;
    } else if (b[i] >= '1' && b[i] <= '9') {
      i = digits(i);
    } else {
      return -1;
    }
    int fraction = 0;
    if (i < to && b[i] == '.') {
      int after = digits(i + 1);
      if (after == i + 1) return -1;
      fraction = after - (i + 1);
      i = after;
      flags = 0;
    }
    if (i < to && (b[i] == 'e' || b[i] == 'E')) {
      i++;
      boolean negative = false;
      if (i < to && (b[i] == '+' || b[i] == '-')) negative = b[i++] == '-';
      int after = digits(i);
      if (after == i) return -1;
      if (!decimalScaleFits(i, after, negative, fraction)) return -1;
      i = after;
      flags = 0;
    }
    if (i - s > MAX_NUMBER) return -1;
    int t = add(NUMBER | flags, s);
    end[t] = i;
    next[t] = count;
    return i;
  }

  /**
   * Whether a number with {@code fraction} digits after its point and the exponent
   * {@code b[from, to)} (with its sign) has a scale that fits an {@code int}, as Jackson's
   * {@code BigDecimal} reading needs: {@code 4e11111111111111} is not read by Jackson.
   */
  private boolean decimalScaleFits(int from, int to, boolean negative, int fraction) {
    while (from < to - 1 && b[from] == '0') from++;
    if (to - from > 10) return false;
    long exponent = 0;
    for (int k = from; k < to; k++) exponent = exponent * 10 + (b[k] - '0');
    if (negative) exponent = -exponent;
    if (exponent > Integer.MAX_VALUE || exponent < Integer.MIN_VALUE) return false;
    long scale = fraction - exponent;
    return scale >= Integer.MIN_VALUE && scale <= Integer.MAX_VALUE;
  }

  private int digits(int i) {
    while (i < to && b[i] >= '0' && b[i] <= '9') i++;
    return i;
  }

  private int literal(int i, String word, int kind) {
    int n = word.length();
    if (i + n > to) return -1;
    for (int k = 0; k < n; k++) {
      if (b[i + k] != word.charAt(k)) return -1;
    }
    int t = add(kind, i);
    end[t] = i + n;
    next[t] = count;
    return i + n;
  }

  // ---- reading the tokens

  /** The bytes read; valid until the next {@link #parse}. */
  byte[] bytes() {
    return b;
  }

  int from() {
    return from;
  }

  int to() {
    return to;
  }

  /** How many tokens; the root is token 0. */
  int count() {
    return count;
  }

  int kind(int t) {
    return info[t] & KIND;
  }

  /** The first byte of the token (an opening bracket or quote for containers and strings). */
  int start(int t) {
    return start[t];
  }

  /** The index after the token's last byte (after a closing bracket or quote). */
  int end(int t) {
    return end[t];
  }

  /** The token after {@code t}'s subtree. */
  int next(int t) {
    return next[t];
  }

  boolean isObject(int t) {
    return t >= 0 && kind(t) == OBJECT;
  }

  boolean isArray(int t) {
    return t >= 0 && kind(t) == ARRAY;
  }

  /** A string value (not a key). */
  boolean isString(int t) {
    return t >= 0 && kind(t) == STRING;
  }

  boolean isNull(int t) {
    return t >= 0 && kind(t) == NULL;
  }

  /**
   * Whether the string or key token {@code t} holds only lower-case ASCII letters, {@code _},
   * {@code -}, {@code .} and spaces, written as they are (the text a {@link BlockMasker} of
   * built-in detectors surely finds nothing in).
   */
  boolean quiet(int t) {
    return (info[t] & QUIET) != 0;
  }

  /** Whether the string or key token {@code t} is written with a backslash escape. */
  boolean escaped(int t) {
    return (info[t] & ESCAPED) != 0;
  }

  /** The first element of an array, or the first key of an object; -1 when empty. */
  int first(int container) {
    int t = container + 1;
    return t < next[container] ? t : -1;
  }

  /** The element or key after {@code t} in {@code container} (skipping a key's value); -1 after the last. */
  int after(int container, int t) {
    int n = kind(t) == KEY ? next[t + 1] : next[t];
    return n < next[container] ? n : -1;
  }

  /** The value of the member named {@code name} of an object (the last one if repeated), or -1. */
  int member(int object, String name) {
    if (!isObject(object)) return -1;
    int found = -1;
    for (int k = first(object); k >= 0; k = after(object, k)) {
      if (keyIs(k, name)) found = k + 1;
    }
    return found;
  }

  /**
   * The values of several members of an object at once, in one walk: {@code found[i]} is the
   * value of the member named {@code names[i]} (the last one if repeated), or -1.
   */
  void members(int object, String[] names, int[] found) {
    java.util.Arrays.fill(found, 0, names.length, -1);
    if (!isObject(object)) return;
    for (int k = first(object); k >= 0; k = after(object, k)) {
      for (int i = 0; i < names.length; i++) {
        if (keyIs(k, names[i])) {
          found[i] = k + 1;
          break;
        }
      }
    }
  }

  /** {@link #integer(int, String, int)} of the value token {@code v} (-1: absent). */
  int integer(int v, int otherwise) {
    if (v < 0 || kind(v) != NUMBER || (info[v] & INTEGRAL) == 0) return otherwise;
    int s = start[v];
    int e = end[v];
    boolean negative = b[s] == '-';
    if (negative) s++;
    while (s < e - 1 && b[s] == '0') s++; // only "0" and "-0" have a leading zero
    if (e - s > 10) return otherwise;
    long n = 0;
    for (int i = s; i < e; i++) n = n * 10 + (b[i] - '0');
    if (negative) n = -n;
    return n < Integer.MIN_VALUE || n > Integer.MAX_VALUE ? otherwise : (int) n;
  }

  /** Whether the key token {@code k} reads as {@code name} (ASCII). */
  boolean keyIs(int k, String name) {
    if (escaped(k)) return text(k).equals(name);
    int s = start[k] + 1;
    int n = end[k] - 1 - s;
    if (n != name.length()) return false;
    for (int i = 0; i < n; i++) {
      if (b[s + i] != name.charAt(i)) return false;
    }
    return true;
  }

  /** The text of a string member, or null when absent or not a string. */
  String text(int object, String name) {
    int v = member(object, name);
    return isString(v) ? text(v) : null;
  }

  /** The text of the string or key token {@code t}, escapes decoded. */
  String text(int t) {
    int s = start[t] + 1;
    int e = end[t] - 1;
    if (!escaped(t)) return new String(b, s, e - s, StandardCharsets.UTF_8);
    StringBuilder out = decoded == null ? (decoded = new StringBuilder()) : decoded;
    out.setLength(0);
    int i = s;
    while (i < e) {
      int run = i;
      while (i < e && b[i] != '\\') i++;
      if (i > run) out.append(new String(b, run, i - run, StandardCharsets.UTF_8));
      if (i >= e) break;
      byte c = b[i + 1];
      switch (c) {
        case 'b' -> out.append('\b');
        case 'f' -> out.append('\f');
        case 'n' -> out.append('\n');
        case 'r' -> out.append('\r');
        case 't' -> out.append('\t');
        case 'u' -> {
          out.append((char) hex4(i + 2));
          i += 4;
        }
        default -> out.append((char) c); // " \ /
      }
      i += 2;
    }
    return out.toString();
  }

  /**
   * An int member, as Jackson reads it ({@code isIntegralNumber() && canConvertToInt()}: a number
   * without fraction or exponent, in range), or {@code otherwise}.
   */
  int integer(int object, String name, int otherwise) {
    return integer(member(object, name), otherwise);
  }
}
