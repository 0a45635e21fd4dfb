package dev.inferpam.core.stream;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * One server-sent event as it arrived: its lines in order (data, comments and every other field),
 * each with its own terminator, and the terminator of the blank line that ended it. Text is UTF-8
 * decoded (malformed bytes become U+FFFD); {@link #bytes()} gives the event byte for byte.
 *
 * <p>Immutable and thread-safe once delivered by {@link SseFramer}.
 */
public final class SseEvent {
  private final List<Line> lines;
  private final String end;
  private final boolean cutOff;

  SseEvent(List<Line> lines, String end, boolean cutOff) {
    this.lines = List.copyOf(lines);
    this.end = end;
    this.cutOff = cutOff;
  }

  /** The lines, in order, blank line excluded. */
  public List<Line> lines() {
    return lines;
  }

  /**
   * The terminator of the blank line that ended the event: {@code "\n"} or {@code "\r"} (the
   * event is delivered at the {@code \r}; the {@code \n} of a {@code \r\n} follows as a
   * {@linkplain SseFramer.Handler#gap gap}); for an event {@linkplain #cutOff() cut off}, the line
   * style its lines used.
   */
  public String end() {
    return end;
  }

  /**
   * Whether the stream ended in this event, before its blank line: {@link SseFramer#finish()}
   * completed it, ending its lines and itself in the line style its other lines used
   * ({@code \n} when none had a terminator). The format says a client discards such an event.
   */
  public boolean cutOff() {
    return cutOff;
  }

  /** The values of the {@code data} lines joined by {@code \n}, or {@code null} when there are none. */
  public String data() {
    StringBuilder data = null;
    String only = null;
    for (Line line : lines) {
      if (line.field() != SseField.DATA) continue;
      if (only == null && data == null) {
        only = line.value();
        continue;
      }
      if (data == null) data = new StringBuilder(only);
      data.append('\n').append(line.value());
    }
    return data != null ? data.toString() : only;
  }

  /** The value of the last {@code event} line, or {@code null} when there is none. */
  public String type() {
    String type = null;
    for (Line line : lines) {
      if (line.field() == SseField.EVENT) type = line.value();
    }
    return type;
  }

  /** The event as it arrived (as completed, when {@link #cutOff()}): lines, terminators and the blank line. */
  public byte[] bytes() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (Line line : lines) {
      out.writeBytes(line.raw);
      out.writeBytes(line.terminator.getBytes(StandardCharsets.US_ASCII));
    }
    out.writeBytes(end.getBytes(StandardCharsets.US_ASCII));
    return out.toByteArray();
  }

  /** Says what the event holds, not its text (which may be sensitive). */
  @Override
  public String toString() {
    return "SseEvent[" + lines + (cutOff ? ", cut off]" : "]");
  }

  /** One line of an event. Immutable. */
  public static final class Line {
    private final SseField field;
    private final byte[] raw;
    private final int valueStart;
    private final String terminator;
    private final String text;

    Line(SseField field, byte[] raw, int valueStart, String terminator) {
      this.field = field;
      this.raw = raw;
      this.valueStart = valueStart;
      this.terminator = terminator;
      this.text = new String(raw, StandardCharsets.UTF_8);
    }

    /** The line's field. */
    public SseField field() {
      return field;
    }

    /** The whole line, without its terminator: field name, colon, value. */
    public String text() {
      return text;
    }

    /** What follows the colon, less one space directly after it; {@code ""} without a colon. */
    public String value() {
      if (valueStart == raw.length) return "";
      boolean ascii = true;
      for (int k = 0; k < valueStart && ascii; k++) ascii = raw[k] >= 0;
      // Both parts end at a colon or space, so decoding them apart gives the same characters.
      return ascii ? text.substring(valueStart) : new String(raw, valueStart, raw.length - valueStart, StandardCharsets.UTF_8);
    }

    /** The line's terminator: {@code "\n"}, {@code "\r\n"} or {@code "\r"}. */
    public String terminator() {
      return terminator;
    }

    /** The field and the length, not the text. */
    @Override
    public String toString() {
      return field.name().toLowerCase(java.util.Locale.ROOT) + " (" + text.length() + " chars)";
    }
  }
}
