package dev.inferpam.core.internal.policy;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Renders values for policy error messages. Stateless and thread-safe.
 *
 * <p>Values come from a file a person wrote and end up in logs, so they are quoted with control
 * characters escaped (no log-line injection) and cut to {@value #MAX_CHARS} characters.
 */
public final class PolicyText {
  /** Longest value quoted in full; longer ones end in "...". */
  static final int MAX_CHARS = 80;

  private PolicyText() {}

  /** {@code text} in double quotes, JSON-style escaped, cut at {@value #MAX_CHARS} characters. */
  public static String quote(String text) {
    String s = text.length() > MAX_CHARS ? text.substring(0, MAX_CHARS) : text;
    StringBuilder out = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20 || c == 0x7f || Character.getType(c) == Character.FORMAT) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
    if (s.length() < text.length()) out.append("...");
    return out.toString();
  }

  /**
   * How a YAML/JSON value reads in "expected X, was Y": strings quoted, numbers and booleans as
   * written, {@code null}, or "a mapping" / "a list" for containers (whose contents could be long).
   */
  static String describe(JsonNode node) {
    if (node == null || node.isMissingNode()) return "nothing";
    if (node.isNull()) return "null";
    if (node.isTextual()) return quote(node.textValue());
    if (node.isObject()) return "a mapping";
    if (node.isArray()) return "a list";
    if (node.isNumber() || node.isBoolean()) return cut(node.asText());
    return node.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
  }

  private static String cut(String s) {
    return s.length() > MAX_CHARS ? s.substring(0, MAX_CHARS) + "..." : s;
  }
}
