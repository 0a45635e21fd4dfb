package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One server-sent event as received: its lines (decoded, without terminators), each line's
 * terminator as it arrived ({@code \n}, {@code \r\n} or {@code \r}), and the terminator of the
 * blank line that ended it. Renders the event again with new data, keeping its framing; every
 * other line is masked (fail closed: no text reaches a client unmasked, comments included).
 */
final class SseEvent {
  private static final Pattern LINE_BREAK = Pattern.compile("\r\n|\r|\n");

  private final List<String> lines;
  private final List<String> terms;
  private final String end;

  private SseEvent(List<String> lines, List<String> terms, String end) {
    this.lines = lines;
    this.terms = terms;
    this.end = end;
  }

  static SseEvent decode(List<byte[]> raw, List<String> terms, String end) {
    List<String> lines = new ArrayList<>(raw.size());
    for (byte[] line : raw) lines.add(new String(line, StandardCharsets.UTF_8));
    return new SseEvent(lines, List.copyOf(terms), end);
  }

  /** The data lines' values joined by {@code \n}, or {@code null} when the event has none. */
  String data() {
    StringBuilder data = null;
    for (String line : lines) {
      if (!field(line).equals("data")) continue;
      if (data == null) data = new StringBuilder(); else data.append('\n');
      data.append(value(line));
    }
    return data == null ? null : data.toString();
  }

  /**
   * The event with its data lines replaced by {@code data} (at the first data line's place, one
   * line per {@code \n}); every other line masked as text: the value of comment,
   * {@code event:}, {@code id:} and {@code retry:} lines (their field name kept, so the framing
   * stays), and the whole line of any other field. Call once; the masked lines are kept for
   * {@link #renderSynthetic}.
   */
  String render(String data, BodyMaskerValues values) {
    StringBuilder out = new StringBuilder();
    boolean dataWritten = false;
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      String term = terms.get(i);
      String field = field(line);
      if (field.equals("data")) {
        if (!dataWritten) appendData(out, line, data, term);
        dataWritten = true;
        continue;
      }
      String masked;
      switch (field) {
        case ":", "event", "id", "retry" -> {
          int colon = line.indexOf(':') + 1;
          masked = line.substring(0, colon) + values.mask(line.substring(colon));
        }
        default -> masked = values.mask(line);
      }
      lines.set(i, masked);
      out.append(masked).append(term);
    }
    return out.append(end).toString();
  }

  /**
   * A new event shaped like this one ({@code event:} lines, as {@link #render} masked them, and
   * the data prefix kept; {@code id:}, {@code retry:} and comments left out) carrying
   * {@code data}.
   */
  String renderSynthetic(String data) {
    StringBuilder out = new StringBuilder();
    String term = "\n";
    boolean dataWritten = false;
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      String field = field(line);
      if (field.equals("event")) {
        out.append(line).append(terms.get(i));
      } else if (field.equals("data") && !dataWritten) {
        term = terms.get(i);
        appendData(out, line, data, term);
        dataWritten = true;
      }
    }
    if (!dataWritten) appendData(out, "data: ", data, term);
    return out.append(term).toString();
  }

  private static void appendData(StringBuilder out, String firstDataLine, String data, String term) {
    String prefix = firstDataLine.startsWith("data: ") ? "data: " : "data:";
    if (data.indexOf('\n') < 0 && data.indexOf('\r') < 0) {
      out.append(prefix).append(data).append(term);
      return;
    }
    for (String piece : LINE_BREAK.split(data, -1)) out.append(prefix).append(piece).append(term);
  }

  /** The field name of a line; {@code ":"} for a comment. */
  static String field(String line) {
    int colon = line.indexOf(':');
    if (colon == 0) return ":";
    return colon < 0 ? line : line.substring(0, colon);
  }

  /** The value of a line: after the colon, one leading space removed. */
  static String value(String line) {
    int colon = line.indexOf(':');
    if (colon < 0) return "";
    int start = colon + 1;
    if (start < line.length() && line.charAt(start) == ' ') start++;
    return line.substring(start);
  }
}
