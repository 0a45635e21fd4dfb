package dev.inferpam.core.internal.masking;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code text/event-stream}: splits the bytes into lines and events wherever the pushes were cut,
 * hands each complete event's data to {@link SseStreams}, and delivers the event at once.
 *
 * <p>A line ends at {@code \n}, {@code \r\n} or {@code \r}; a {@code \r} ends its line at once
 * (an event is never kept waiting for the byte after it), and a {@code \n} right after it is
 * added to that line's terminator, or passed on by itself when the {@code \r} ended the event.
 * Line splitting works on bytes (neither byte occurs inside a UTF-8 sequence), so a character
 * split across pushes is decoded whole with its line.
 */
final class SseMasker implements BodyMasker.Framing {
  private final BodyMaskerValues values;
  private final int cap;
  private final SseStreams streams;
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();
  private final List<byte[]> eventLines = new ArrayList<>();
  private final List<String> eventTerms = new ArrayList<>();
  private long eventBytes;
  private boolean afterCr;
  private BodyMaskerText fallback;

  SseMasker(BodyMaskerValues values, int cap, int maxStreams) {
    this.values = values;
    this.cap = cap;
    this.streams = new SseStreams(values, maxStreams, cap);
  }

  @Override
  public String push(byte[] b, int off, int len) {
    if (fallback != null) return fallback.push(b, off, len);
    StringBuilder out = new StringBuilder();
    int i = off;
    int end = off + len;
    while (i < end) {
      if (afterCr) {
        afterCr = false;
        if (b[i] == '\n') {
          lfAfterCr(out);
          i++;
          continue;
        }
      }
      int j = i;
      while (j < end && b[j] != '\n' && b[j] != '\r') j++;
      if (eventBytes + line.size() + (j - i) > cap) {
        return out.append(toText(held(), b, i, end - i)).toString();
      }
      line.write(b, i, j - i);
      if (j == end) break;
      afterCr = b[j] == '\r';
      endLine(out, afterCr ? "\r" : "\n");
      i = j + 1;
      if (fallback != null) return out.append(fallback.push(b, i, end - i)).toString();
    }
    return out.toString();
  }

  @Override
  public String finish() {
    if (fallback != null) return fallback.finish();
    StringBuilder out = new StringBuilder();
    if (line.size() > 0) {
      eventLines.add(line.toByteArray());
      eventTerms.add("");
      line.reset();
    }
    if (!eventLines.isEmpty()) {
      // Complete the cut-off event, in the stream's own line style, so the tails can follow it.
      String style = "\n";
      for (String term : eventTerms) if (!term.isEmpty()) style = term;
      String lineEnd = style;
      eventTerms.replaceAll(term -> term.isEmpty() ? lineEnd : term);
      dispatch(out, style);
      if (fallback != null) return out.append(fallback.finish()).toString();
    }
    streams.endAll(out);
    return out.toString();
  }

  private void lfAfterCr(StringBuilder out) {
    if (eventLines.isEmpty()) {
      out.append('\n'); // the \r ended an event (or a stray blank line), already delivered
    } else {
      eventTerms.set(eventTerms.size() - 1, "\r\n");
      eventBytes++;
    }
  }

  private void endLine(StringBuilder out, String term) {
    if (line.size() > 0) {
      eventLines.add(line.toByteArray());
      eventTerms.add(term);
      eventBytes += line.size() + term.length();
      line.reset();
    } else if (eventLines.isEmpty()) {
      out.append(term);
    } else {
      dispatch(out, term);
    }
  }

  /** Delivers the collected event, ended by a blank line with terminator {@code end}. */
  private void dispatch(StringBuilder out, String end) {
    SseEvent event = SseEvent.decode(eventLines, eventTerms, end);
    String data = event.data();
    if (data == null) {
      out.append(event.render(null, values));
    } else {
      StringBuilder before = new StringBuilder();
      String masked = streams.onData(data, event, before);
      if (masked == null) { // too much text stream state to keep: the rest goes as text
        out.append(toText(held(end), null, 0, 0));
        return;
      }
      out.append(before).append(event.render(masked, values));
    }
    clearEvent();
  }

  /**
   * Switches to plain-text masking for the rest of the body: first releases the open streams'
   * tails as events, then masks {@code head} and {@code b[off, off+len)} as text.
   */
  private String toText(byte[] head, byte[] b, int off, int len) {
    StringBuilder out = new StringBuilder();
    streams.endAll(out);
    fallback = new BodyMaskerText(values);
    clearEvent();
    line.reset();
    out.append(fallback.push(head, 0, head.length));
    if (len > 0) out.append(fallback.push(b, off, len));
    return out.toString();
  }

  /** The raw bytes of the event so far, its open line, and {@code extra}. */
  private byte[] held(String... extra) {
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    for (int i = 0; i < eventLines.size(); i++) {
      raw.writeBytes(eventLines.get(i));
      raw.writeBytes(eventTerms.get(i).getBytes(StandardCharsets.US_ASCII));
    }
    raw.writeBytes(line.toByteArray());
    for (String s : extra) raw.writeBytes(s.getBytes(StandardCharsets.US_ASCII));
    return raw.toByteArray();
  }

  private void clearEvent() {
    eventLines.clear();
    eventTerms.clear();
    eventBytes = 0;
  }
}
