package dev.inferpam.testsupport;

/**
 * The little JSON writing the fixtures need, without a JSON library: a string literal.
 * Stateless and thread-safe.
 */
public final class Json {
  private Json() {}

  /** {@code text} as a JSON string literal, quotes included; {@code null} gives {@code null}. */
  public static String string(String text) {
    if (text == null) return "null";
    StringBuilder out = new StringBuilder(text.length() + 2).append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    return out.append('"').toString();
  }
}
