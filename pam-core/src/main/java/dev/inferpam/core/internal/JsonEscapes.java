package dev.inferpam.core.internal;

import java.util.Locale;

/**
 * Escapes text for the inside of a JSON string: quote, backslash, newline, carriage return and tab
 * as their two-character escapes, the other control characters as six-character Unicode escapes
 * (lower-case hex). Stateless.
 */
public final class JsonEscapes {
  private JsonEscapes() {}

  /**
   * Appends {@code s} to {@code out} escaped as a JSON writer does. With {@code forLog}, also
   * escapes DEL and Unicode format characters (bidi overrides, zero-width ones) so that quoted text
   * cannot disguise a log line.
   *
   * @return {@code out}
   */
  public static StringBuilder append(StringBuilder out, CharSequence s, boolean forLog) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20 || (forLog && (c == 0x7f || Character.getType(c) == Character.FORMAT))) {
            out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out;
  }
}
