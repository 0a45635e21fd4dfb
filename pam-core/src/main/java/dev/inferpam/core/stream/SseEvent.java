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

  /** {@return the lines, in order, blank line excluded} */
  public List<Line> lines() {
    return lines;
  }

  /**
   * {@return the terminator of the blank line that ended the event} It is {@code "\n"} or
   * {@code "\r"} (the event is delivered at the {@code \r}; the {@code \n} of a {@code \r\n}
   * follows as a {@linkplain SseFramer.Handler#gap gap}); for an event
   * {@linkplain #cutOff() cut off}, the line style its lines used.
   */
  public String end() {
    return end;
  }

  /**
   * {@return whether the stream ended in this event, before its blank line} If so,
   * {@link SseFramer#finish()} completed it, ending its lines and itself in the line style its
   * other lines used ({@code \n} when none had a terminator). The format says a client discards
   * such an event.
   */
  public boolean cutOff() {
    return cutOff;
  }

  /**
   * {@return the values of the {@code data} lines joined by {@code \n}, or {@code null} when there
   * are none}
   */
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

  /** {@return the value of the last {@code event} line, or {@code null} when there is none} */
  public String type() {
    String type = null;
    for (Line line : lines) {
      if (line.field() == SseField.EVENT) type = line.value();
    }
    return type;
  }

  /**
   * {@return the event as it arrived} Its lines, their terminators and the blank line; as
   * completed, when {@link #cutOff()}.
   */
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

    /** {@return the line's field} */
    public SseField field() {
      return field;
    }

    /** {@return the whole line, without its terminator: field name, colon, value} */
    public String text() {
      return text;
    }

    /**
     * {@return what follows the colon, less one space directly after it; {@code ""} without a
     * colon}
     */
    public String value() {
      if (valueStart == raw.length) return "";
      boolean ascii = true;
      for (int k = 0; k < valueStart && ascii; k++) ascii = raw[k] >= 0;
      if (ascii) return text.substring(valueStart);
      // The value starts after a colon or space, so decoded alone it reads as within text().
      return new String(raw, valueStart, raw.length - valueStart, StandardCharsets.UTF_8);
    }

    /** {@return the line's terminator: {@code "\n"}, {@code "\r\n"} or {@code "\r"}} */
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
