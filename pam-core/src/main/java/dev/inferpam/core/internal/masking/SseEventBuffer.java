package dev.inferpam.core.internal.masking;

import dev.inferpam.core.stream.SseField;
import dev.inferpam.core.stream.SseFramer;
import dev.inferpam.core.stream.SseScanner;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The masker's {@link SseFramer}: the same events, cut by {@link SseScanner} with the same rules
 * (each handed over by the push that completed it, bounded, pass-through after an overflow, a
 * cut-off last event completed by {@link #finish()}), but kept as bytes in one reused buffer
 * with the lines' offsets, instead of an {@code SseEvent} of decoded lines per event: the masker
 * reads an event's data in place and writes it again only where it changes.
 *
 * <p>While {@link Handler#event} runs, the buffer holds the event byte for byte as it arrived
 * (lines, their terminators, the blank line's terminator): line {@code i}'s text is
 * {@code [lineStart(i), textEnd(i))}, its value starts at {@code valueStart(i)}, its terminator
 * follows up to {@code lineStart(i + 1)}. Not thread-safe.
 */
final class SseEventBuffer implements SseScanner.Listener {
  /** What the buffer cuts; the same calls as {@link SseFramer.Handler}'s, in stream order. */
  interface Handler {
    /** A complete event, in the buffer until the call returns. */
    void event(SseEventBuffer event);

    /** Terminators that belong to no event. */
    void gap(String terminators);

    /** The event passed the size limit; the bytes from here on go to {@link #raw}. */
    void overflow();

    /** Bytes passed on as they are, after {@link #overflow()} or {@link #passThrough()}. */
    void raw(byte[] b, int off, int len);
  }

  private static final byte[] LF = {'\n'};
  private static final SseField[] FIELDS = SseField.values();

  private final long maxEventBytes;
  private final Handler handler;
  private final SseScanner scanner = new SseScanner(this);
  private final ByteSink buf = new ByteSink();
  private int[] lineStart = new int[8];
  private int[] valueStart = new int[8];
  private int[] textEnd = new int[8];
  private byte[] fields = new byte[8];
  private int lines;
  private int lineBegin; // where the current line's text began
  private int valueBegin;
  private SseField field;
  private int eventEnd = -1; // while dispatching: where the lines end and the blank line starts
  private boolean cutOff;
  private boolean raw;

  SseEventBuffer(long maxEventBytes, Handler handler) {
    this.maxEventBytes = maxEventBytes;
    this.handler = handler;
  }

  void push(byte[] b, int off, int len) {
    if (!raw) scanner.push(b, off, len);
    else if (len > 0) handler.raw(b, off, len);
  }

  /** Ends the stream: an event cut off before its blank line is completed and handed over. */
  void finish() {
    if (raw) return;
    scanner.finish();
    if (lines == 0) return;
    String style = "\n";
    for (int i = 0; i < lines; i++) {
      String term = terminator(i);
      if (!term.isEmpty()) style = term;
    }
    if (terminator(lines - 1).isEmpty())
      buf.append(style); // only the last line can lack one (cut off)
    dispatch(style, true);
  }

  /** From now on every byte goes to {@link Handler#raw}: first the event being read (or handed over). */
  void passThrough() {
    if (raw) return;
    raw = true;
    if (buf.size() > 0) handler.raw(buf.array(), 0, buf.size());
    clear();
  }

  // ---- the event being handed over

  int lines() {
    return lines;
  }

  SseField field(int i) {
    return FIELDS[fields[i]];
  }

  int lineStart(int i) {
    return lineStart[i];
  }

  int valueStart(int i) {
    return valueStart[i];
  }

  int textEnd(int i) {
    return textEnd[i];
  }

  /** Line {@code i}'s terminator: {@code "\n"}, {@code "\r\n"}, {@code "\r"}. */
  String terminator(int i) {
    int s = textEnd[i];
    int e = i + 1 < lines ? lineStart[i + 1] : eventEnd >= 0 ? eventEnd : buf.size();
    return switch (e - s) {
      case 0 -> "";
      case 2 -> "\r\n";
      default -> buf.at(s) == '\r' ? "\r" : "\n";
    };
  }

  /** The terminator of the blank line that ended the event (its line style, when cut off). */
  String end() {
    return new String(buf.array(), eventEnd, buf.size() - eventEnd, StandardCharsets.US_ASCII);
  }

  /** Whether the stream ended in this event, before its blank line. */
  boolean cutOff() {
    return cutOff;
  }

  /** The bytes: the event, as it arrived, while it is handed over. */
  byte[] bytes() {
    return buf.array();
  }

  /** The event's bytes, as it arrived. */
  int size() {
    return buf.size();
  }

  // ---- SseScanner.Listener

  @Override
  public void text(byte[] b, int off, int len) {
    if (raw) {
      handler.raw(b, off, len);
      return;
    }
    if (buf.size() + (long) len > maxEventBytes) {
      handler.overflow();
      passThrough();
      handler.raw(b, off, len);
      return;
    }
    buf.append(b, off, len);
  }

  @Override
  public void value(SseField f) {
    field = f;
    valueBegin = buf.size();
  }

  @Override
  public void lineEnd(String terminator) {
    if (raw) {
      emit(terminator);
      return;
    }
    if (lines == lineStart.length) {
      int n = lines * 2;
      lineStart = Arrays.copyOf(lineStart, n);
      valueStart = Arrays.copyOf(valueStart, n);
      textEnd = Arrays.copyOf(textEnd, n);
      fields = Arrays.copyOf(fields, n);
    }
    lineStart[lines] = lineBegin;
    valueStart[lines] = valueBegin;
    textEnd[lines] = buf.size();
    fields[lines] = (byte) field.ordinal();
    lines++;
    buf.append(terminator);
    lineBegin = buf.size();
  }

  @Override
  public void blankLine(String terminator, boolean endsEvent) {
    if (!raw && buf.size() > maxEventBytes) { // its terminators took it over the limit
      handler.overflow();
      passThrough();
    }
    if (raw) {
      emit(terminator);
    } else if (lines == 0) {
      handler.gap(terminator);
    } else {
      dispatch(terminator, false);
    }
  }

  @Override
  public void lf() {
    if (raw) {
      emit("\n");
    } else if (lines == 0) {
      handler.gap("\n");
    } else {
      buf.append(LF, 0, 1);
      lineBegin = buf.size();
    }
  }

  private void dispatch(String end, boolean cut) {
    eventEnd = buf.size();
    buf.append(end);
    cutOff = cut;
    handler.event(this);
    clear();
  }

  private void clear() {
    buf.reset();
    lines = 0;
    lineBegin = 0;
    eventEnd = -1;
    cutOff = false;
  }

  private void emit(String terminators) {
    if (!terminators.isEmpty()) {
      byte[] t = terminators.getBytes(StandardCharsets.US_ASCII);
      handler.raw(t, 0, t.length);
    }
  }
}
