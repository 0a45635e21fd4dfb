package dev.inferpam.core.internal.masking;

import dev.inferpam.core.stream.SseField;
import java.nio.charset.StandardCharsets;

/**
 * {@code text/event-stream}: cuts the bytes into events with an {@link SseEventBuffer} wherever
 * the pushes were cut, hands each complete event's data to {@link SseStreams}, and delivers the
 * event at once. Terminators that belong to no event pass as they are.
 *
 * <p>An event is written again line by line, keeping its framing: its data lines are replaced by
 * the masked data (at the first data line's place, one line per line of the data); every other
 * line is masked as text (fail closed: no text reaches a client unmasked, comments included): the
 * value of comment, {@code event:}, {@code id:} and {@code retry:} lines (their field name kept,
 * so the framing stays), and the whole line of any other field. An event whose data needs no
 * change leaves with the bytes it came with.
 */
final class SseMasker extends FramedMasker implements SseEventBuffer.Handler, SseStreams.Shape {
  private final SseStreams streams;
  private final SseEventBuffer events;

  /** The data of an event of several data lines, joined by {@code \n}. */
  private final ByteSink joined = new ByteSink();

  /** The masked data of the event. */
  private final ByteSink data = new ByteSink();

  /** Per line of the event: its masked text, or null while not masked or when it is as it came. */
  private String[] masked = new String[8];

  private boolean linesMasked;

  /** Whether the masked data may hold line breaks (it is not JSON written by us). */
  private boolean lineBreaks;

  private SseEventBuffer event;

  SseMasker(BodyMaskerValues values, int cap, int maxStreams) {
    super(values);
    this.streams = new SseStreams(values, maxStreams, cap);
    this.events = new SseEventBuffer(cap, this);
  }

  @Override
  void frame(byte[] b, int off, int len) {
    events.push(b, off, len);
  }

  @Override
  void endFrames() {
    events.finish(); // a cut-off last event is completed, so the tails can follow it
  }

  @Override
  void releaseTails() {
    streams.endAll(out);
  }

  @Override
  public void event(SseEventBuffer e) {
    event = e;
    linesMasked = false;
    int first = -1;
    int dataLines = 0;
    for (int i = 0; i < e.lines(); i++) {
      if (e.field(i) == SseField.DATA) {
        if (first < 0) first = i;
        dataLines++;
      }
    }
    if (first < 0) {
      lineBreaks = false;
      render(first, null);
      return;
    }
    byte[] b = e.bytes();
    int off = e.valueStart(first);
    int len = e.textEnd(first) - off;
    if (dataLines > 1) {
      joined.reset();
      for (int i = first; i < e.lines(); i++) {
        if (e.field(i) != SseField.DATA) continue;
        if (i > first) joined.append((byte) '\n');
        joined.append(b, e.valueStart(i), e.textEnd(i) - e.valueStart(i));
      }
      b = joined.array();
      off = 0;
      len = joined.size();
    }
    data.reset();
    int result = streams.onData(b, off, len, dataLines > 1, this, out, data);
    if (result == SseStreams.FULL) {
      // too much text stream state to keep: the rest goes as text, this event first
      overflow();
      events.passThrough();
      return;
    }
    lineBreaks = result == SseStreams.TEXT_DATA;
    render(first, data);
  }

  @Override
  public void gap(String terminators) {
    out.append(terminators);
  }

  /** Switches to plain-text masking for the rest of the body, after releasing the open streams' tails as events. */
  @Override
  public void overflow() {
    streams.endAll(out);
    fallBack();
  }

  /** Writes the event: its masked data at the first data line ({@code first}), its other lines masked. */
  private void render(int first, ByteSink data) {
    SseEventBuffer e = event;
    maskLines();
    byte[] b = e.bytes();
    for (int i = 0; i < e.lines(); i++) {
      if (e.field(i) == SseField.DATA) {
        if (i != first) continue;
        String prefix = prefix(i);
        if (lineBreaks) appendData(out, prefix, data.array(), 0, data.size(), e.terminator(i));
        else out.append(prefix).append(data.array(), 0, data.size()).append(e.terminator(i));
        continue;
      }
      if (masked[i] != null) out.append(masked[i]);
      else out.append(b, e.lineStart(i), e.textEnd(i) - e.lineStart(i));
      out.append(e.terminator(i));
    }
    out.append(e.end());
  }

  /** Masks the event's lines other than data, once. */
  private void maskLines() {
    if (linesMasked) return;
    linesMasked = true;
    SseEventBuffer e = event;
    if (masked.length < e.lines()) masked = new String[Math.max(e.lines(), masked.length * 2)];
    BlockMasker block = values.block();
    byte[] b = e.bytes();
    for (int i = 0; i < e.lines(); i++) {
      masked[i] = null;
      SseField field = e.field(i);
      if (field == SseField.DATA) continue;
      int s = e.lineStart(i);
      int end = e.textEnd(i);
      int from = s; // what is masked: the whole line of an unknown field, else after the colon
      if (field != SseField.OTHER) {
        for (int k = s; k < end; k++) {
          if (b[k] == ':') {
            from = k + 1;
            break;
          }
        }
      }
      if (block != null && block.surelyQuiet(b, from, end)) continue; // as it came
      String head = new String(b, s, from - s, StandardCharsets.UTF_8);
      masked[i] = head + values.mask(new String(b, from, end - from, StandardCharsets.UTF_8));
    }
  }

  /** The text of line {@code i}, as masked. */
  private String maskedLine(int i) {
    if (masked[i] != null) return masked[i];
    return new String(
        event.bytes(),
        event.lineStart(i),
        event.textEnd(i) - event.lineStart(i),
        StandardCharsets.UTF_8);
  }

  private String prefix(int dataLine) {
    SseEventBuffer e = event;
    int s = e.lineStart(dataLine);
    return e.textEnd(dataLine) - s > 5 && e.bytes()[s + 5] == ' ' ? "data: " : "data:";
  }

  /** The framing of the usual event, one {@code data: } line ending in {@code \n}. */
  private static final String[] PLAIN = {"", "data: ", "\n", ""};

  @Override
  public String[] synthetic() {
    SseEventBuffer e = event;
    if (e.lines() == 1 && prefix(0).equals("data: ") && e.terminator(0).equals("\n")) return PLAIN;
    maskLines();
    StringBuilder before = new StringBuilder();
    StringBuilder after = new StringBuilder();
    String prefix = "data: ";
    String term = "\n";
    boolean dataSeen = false;
    for (int i = 0; i < e.lines(); i++) {
      SseField field = e.field(i);
      if (field == SseField.EVENT) {
        (dataSeen ? after : before).append(maskedLine(i)).append(e.terminator(i));
      } else if (field == SseField.DATA && !dataSeen) {
        dataSeen = true;
        prefix = prefix(i);
        term = e.terminator(i);
      }
    }
    return new String[] {before.toString(), prefix, term, after.toString()};
  }

  /** {@code data} as data lines: one per line of it, each {@code prefix}, the line, {@code term}. */
  static void appendData(ByteSink out, String prefix, byte[] data, int off, int len, String term) {
    int end = off + len;
    int s = off;
    for (int i = off; i < end; i++) {
      byte c = data[i];
      if (c != '\n' && c != '\r') continue;
      out.append(prefix).append(data, s, i - s).append(term);
      if (c == '\r' && i + 1 < end && data[i + 1] == '\n') i++;
      s = i + 1;
    }
    out.append(prefix).append(data, s, end - s).append(term);
  }

  /** {@link #appendData(ByteSink, String, byte[], int, int, String)} of a text. */
  static void appendData(ByteSink out, String prefix, String data, String term) {
    byte[] b = data.getBytes(StandardCharsets.UTF_8);
    appendData(out, prefix, b, 0, b.length, term);
  }
}
