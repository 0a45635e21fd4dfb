package dev.inferpam.core.internal.masking;

import java.util.Arrays;

/**
 * A growable byte buffer that text is appended to as UTF-8, and JSON strings with their escapes:
 * what a framed masker delivers, built without a detour through {@code String}. Reused: {@link
 * #reset()} keeps the array unless it grew large. Not thread-safe.
 */
final class ByteSink {
  private static final int KEEP = 64 * 1024;
  private static final byte[] HEX =
      "0123456789ABCDEF".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  private byte[] buf = new byte[512];
  private int size;

  int size() {
    return size;
  }

  /** Empties the buffer (dropping a large array). */
  void reset() {
    size = 0;
    if (buf.length > KEEP) buf = new byte[512];
  }

  /** A copy of the contents. */
  byte[] toByteArray() {
    return Arrays.copyOf(buf, size);
  }

  /** The contents from {@code from} on, as a copy. */
  byte[] copy(int from) {
    return Arrays.copyOfRange(buf, from, size);
  }

  /** Drops everything from {@code size} on. */
  void truncate(int size) {
    this.size = size;
  }

  private void ensure(int more) {
    if (size + more > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, size + more));
  }

  ByteSink append(byte[] b, int off, int len) {
    ensure(len);
    System.arraycopy(b, off, buf, size, len);
    size += len;
    return this;
  }

  ByteSink append(byte[] b) {
    return append(b, 0, b.length);
  }

  ByteSink append(byte c) {
    ensure(1);
    buf[size++] = c;
    return this;
  }

  /** {@code s} as UTF-8 (a lone surrogate becomes {@code ?}, as {@code String.getBytes} makes it). */
  ByteSink append(CharSequence s) {
    int n = s.length();
    ensure(n);
    int i = 0;
    while (i < n) {
      char c = s.charAt(i);
      if (c >= 0x80) break;
      buf[size++] = (byte) c;
      i++;
    }
    if (i < n) appendUtf8(s, i, n, false);
    return this;
  }

  /**
   * {@code s} as a JSON string, quotes included, escaped as Jackson writes it: {@code "} and
   * {@code \} with a backslash, {@code \b \f \n \r \t} short, other control chars as
   * {@code \\u00XX}, everything else as UTF-8, except a lone surrogate, written as its
   * {@code \\uXXXX} escape (so it reads back as it was).
   */
  ByteSink appendJsonString(CharSequence s) {
    int n = s.length();
    ensure(n + 2);
    buf[size++] = '"';
    int i = 0;
    while (i < n) {
      char c = s.charAt(i);
      if (c >= 0x80 || c < 0x20 || c == '"' || c == '\\') break;
      buf[size++] = (byte) c;
      i++;
    }
    if (i < n) appendUtf8(s, i, n, true);
    return append((byte) '"');
  }

  private void appendUtf8(CharSequence s, int i, int n, boolean json) {
    while (i < n) {
      char c = s.charAt(i++);
      if (c < 0x80) {
        if (json && (c < 0x20 || c == '"' || c == '\\')) {
          escape(c);
        } else {
          ensure(1);
          buf[size++] = (byte) c;
        }
      } else if (c < 0x800) {
        ensure(2);
        buf[size++] = (byte) (0xC0 | (c >> 6));
        buf[size++] = (byte) (0x80 | (c & 0x3F));
      } else if (Character.isHighSurrogate(c) && i < n && Character.isLowSurrogate(s.charAt(i))) {
        int code = Character.toCodePoint(c, s.charAt(i++));
        ensure(4);
        buf[size++] = (byte) (0xF0 | (code >> 18));
        buf[size++] = (byte) (0x80 | ((code >> 12) & 0x3F));
        buf[size++] = (byte) (0x80 | ((code >> 6) & 0x3F));
        buf[size++] = (byte) (0x80 | (code & 0x3F));
      } else if (Character.isSurrogate(c)) {
        if (json) {
          unicodeEscape(c);
        } else {
          ensure(1);
          buf[size++] = '?';
        }
      } else {
        ensure(3);
        buf[size++] = (byte) (0xE0 | (c >> 12));
        buf[size++] = (byte) (0x80 | ((c >> 6) & 0x3F));
        buf[size++] = (byte) (0x80 | (c & 0x3F));
      }
    }
  }

  private void escape(char c) {
    char e =
        switch (c) {
          case '"' -> '"';
          case '\\' -> '\\';
          case '\b' -> 'b';
          case '\f' -> 'f';
          case '\n' -> 'n';
          case '\r' -> 'r';
          case '\t' -> 't';
          default -> 0;
        };
    if (e == 0) {
      unicodeEscape(c);
      return;
    }
    ensure(2);
    buf[size++] = '\\';
    buf[size++] = (byte) e;
  }

  private void unicodeEscape(char c) {
    ensure(6);
    buf[size++] = '\\';
    buf[size++] = 'u';
    buf[size++] = HEX[(c >> 12) & 0xF];
    buf[size++] = HEX[(c >> 8) & 0xF];
    buf[size++] = HEX[(c >> 4) & 0xF];
    buf[size++] = HEX[c & 0xF];
  }

  /** The byte at {@code i}. */
  byte at(int i) {
    return buf[i];
  }

  /** The backing array: valid up to {@link #size()}, until the next append. */
  byte[] array() {
    return buf;
  }
}
