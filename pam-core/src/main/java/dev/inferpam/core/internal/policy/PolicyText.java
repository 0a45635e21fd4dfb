package dev.inferpam.core.internal.policy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.internal.JsonEscapes;

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
    JsonEscapes.append(out, s, true);
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
