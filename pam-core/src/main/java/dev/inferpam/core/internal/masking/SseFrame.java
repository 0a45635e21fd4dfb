package dev.inferpam.core.internal.masking;

import dev.inferpam.core.stream.SseEvent;
import dev.inferpam.core.stream.SseField;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One server-sent event as the masker writes it again: with new data, keeping its framing; every
 * other line is masked (fail closed: no text reaches a client unmasked, comments included).
 */
final class SseFrame {
  private static final Pattern LINE_BREAK = Pattern.compile("\r\n|\r|\n");

  private final List<SseEvent.Line> lines;
  private final List<String> texts;
  private final String end;

  SseFrame(SseEvent event) {
    this.lines = event.lines();
    this.texts = new ArrayList<>(lines.size());
    for (SseEvent.Line line : lines) texts.add(line.text());
    this.end = event.end();
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
      String line = texts.get(i);
      String term = lines.get(i).terminator();
      SseField field = lines.get(i).field();
      if (field == SseField.DATA) {
        if (!dataWritten) appendData(out, line, data, term);
        dataWritten = true;
        continue;
      }
      String masked;
      if (field == SseField.OTHER) {
        masked = values.mask(line);
      } else {
        int colon = line.indexOf(':') + 1;
        masked = line.substring(0, colon) + values.mask(line.substring(colon));
      }
      texts.set(i, masked);
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
      SseField field = lines.get(i).field();
      if (field == SseField.EVENT) {
        out.append(texts.get(i)).append(lines.get(i).terminator());
      } else if (field == SseField.DATA && !dataWritten) {
        term = lines.get(i).terminator();
        appendData(out, texts.get(i), data, term);
        dataWritten = true;
      }
    }
    if (!dataWritten) appendData(out, "data: ", data, term);
    return out.append(term).toString();
  }

  private static void appendData(
      StringBuilder out, String firstDataLine, String data, String term) {
    String prefix = firstDataLine.startsWith("data: ") ? "data: " : "data:";
    if (data.indexOf('\n') < 0 && data.indexOf('\r') < 0) {
      out.append(prefix).append(data).append(term);
      return;
    }
    for (String piece : LINE_BREAK.split(data, -1)) out.append(prefix).append(piece).append(term);
  }
}
