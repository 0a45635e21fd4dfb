package dev.inferpam.gateway.replay;

/**
 * Re-indents JSON text without parsing its values, so that numbers, string escapes and member
 * order come out byte for byte as stored: {@code replay show} must show the recorded line, only
 * laid out, and a parse-and-print round trip would normalise {@code 1.50} to {@code 1.5} or an
 * escaped character to its literal form.
 *
 * <p>Input is assumed to be valid JSON; whitespace between tokens is dropped and replaced by
 * two-space indentation. Empty objects and arrays stay on one line. Stateless and thread-safe.
 */
final class JsonIndent {
  private static final String INDENT = "  ";

  private JsonIndent() {}

  static String indent(String json) {
    StringBuilder out = new StringBuilder(json.length() * 2);
    int depth = 0;
    boolean inString = false;
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      if (inString) {
        out.append(c);
        if (c == '\\' && i + 1 < json.length()) {
          out.append(json.charAt(++i));
        } else if (c == '"') {
          inString = false;
        }
        continue;
      }
      switch (c) {
        case '"' -> {
          inString = true;
          out.append(c);
        }
        case '{', '[' -> {
          char close = c == '{' ? '}' : ']';
          int next = nextToken(json, i + 1);
          if (next < json.length() && json.charAt(next) == close) {
            out.append(c).append(close);
            i = next;
          } else {
            out.append(c);
            newline(out, ++depth);
          }
        }
        case '}', ']' -> {
          newline(out, --depth);
          out.append(c);
        }
        case ',' -> {
          out.append(c);
          newline(out, depth);
        }
        case ':' -> out.append(": ");
        case ' ', '\t', '\n', '\r' -> {
          // insignificant outside strings; the layout is ours
        }
        default -> out.append(c);
      }
    }
    return out.toString();
  }

  private static int nextToken(String json, int from) {
    int i = from;
    while (i < json.length() && Character.isWhitespace(json.charAt(i))) i++;
    return i;
  }

  private static void newline(StringBuilder out, int depth) {
    out.append('\n');
    for (int d = 0; d < depth; d++) out.append(INDENT);
  }
}
