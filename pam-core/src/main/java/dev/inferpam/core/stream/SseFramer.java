package dev.inferpam.core.stream;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Server-sent events from bytes, as they arrive: each event is handed over by the very
 * {@link #push} that completed it (its blank line), whatever the pushes' sizes, with the framing
 * of {@link SseScanner} (lines end at {@code \n}, {@code \r\n} or {@code \r}; data lines joined
 * by {@code \n}). The events keep every line and terminator, so a stream can be written again as
 * it came.
 *
 * <pre>{@code
 * SseFramer framer = new SseFramer(1 << 20, event -> {
 *   String data = event.data(); // null for an event without data lines
 *   if (data != null && !data.equals("[DONE]")) handle(data);
 * });
 * for (int n; (n = in.read(buffer)) != -1; ) framer.push(buffer, 0, n);
 * framer.finish();
 * }</pre>
 *
 * <p>Bounded: an event whose bytes so far (lines and their terminators) would pass
 * {@code maxEventBytes} is not framed; {@link Handler#overflow()} is called and from then on every
 * byte, those of that event first, goes to {@link Handler#raw} as it is. A handler may ask for the
 * same at any time with {@link #passThrough()}.
 *
 * <p>Not thread-safe: one stream, fed by one thread at a time. Never throws on bad input;
 * exceptions of the handler propagate.
 */
public final class SseFramer {
  /** Receives what the framer cuts, in stream order, during {@link #push} and {@link #finish}. */
  @FunctionalInterface
  public interface Handler {
    /**
     * A complete event.
     *
     * @param event the event, which the handler may keep
     */
    void event(SseEvent event);

    /**
     * Terminators that belong to no event. A reader ignores them; a proxy passes them on.
     *
     * @param terminators a blank line that ends no event ({@code "\n"} or {@code "\r"}), or the
     *     {@code "\n"} of a {@code \r\n} whose {@code \r} ended an event
     */
    default void gap(String terminators) {}

    /**
     * The event being read passed the size limit; every byte from here on goes to {@link #raw}.
     * Called once, before the first of those bytes.
     */
    default void overflow() {}

    /**
     * Bytes passed on as they are, after {@link #overflow()} or {@link SseFramer#passThrough()}.
     *
     * @param b   the caller's array, valid only during the call
     * @param off where the bytes start
     * @param len how many, > 0
     */
    default void raw(byte[] b, int off, int len) {}
  }

  private final long maxEventBytes;
  private final Handler handler;
  private final SseScanner scanner = new SseScanner(new Collector());
  private final List<byte[]> lines = new ArrayList<>();
  private final List<String> terms = new ArrayList<>();
  private final List<SseField> fields = new ArrayList<>();
  private final List<Integer> valueStarts = new ArrayList<>();
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();
  private SseField field;
  private int valueStart;
  private long eventBytes;
  private boolean raw;

  /**
   * A framer at the start of a stream.
   *
   * @param maxEventBytes most bytes of one event (its lines and their terminators), > 0
   * @param handler       receives the events
   * @throws IllegalArgumentException if {@code maxEventBytes <= 0}
   * @throws NullPointerException     if {@code handler} is null
   */
  public SseFramer(long maxEventBytes, Handler handler) {
    this.maxEventBytes = Framers.positive(maxEventBytes, "maxEventBytes");
    this.handler = Objects.requireNonNull(handler, "handler");
  }

  /**
   * Every event of a complete stream, unbounded (the stream is in memory already).
   *
   * @param body the whole stream
   * @return its events, the last one included when the stream ends without its blank line
   *     ({@link SseEvent#cutOff()})
   */
  public static List<SseEvent> events(byte[] body) {
    List<SseEvent> events = new ArrayList<>();
    SseFramer framer = new SseFramer(Long.MAX_VALUE, events::add);
    framer.push(body, 0, body.length);
    framer.finish();
    return events;
  }

  /**
   * Frames the next bytes of the stream, handing over the events they complete.
   *
   * @param b   the bytes, not kept after the call
   * @param off where they start in {@code b}
   * @param len how many
   * @throws IndexOutOfBoundsException if the range is not within {@code b}
   */
  public void push(byte[] b, int off, int len) {
    Objects.checkFromIndexSize(off, len, b.length);
    if (!raw) scanner.push(b, off, len);
    else if (len > 0) handler.raw(b, off, len);
  }

  /**
   * Ends the stream. An event cut off before its blank line is completed and handed over
   * ({@link SseEvent#cutOff()}): its open line and the event itself end in the line style its
   * lines used ({@code \n} when none had a terminator). A reader that follows the format to the
   * letter skips it.
   */
  public void finish() {
    if (raw) return;
    scanner.finish();
    if (lines.isEmpty()) return;
    String style = "\n";
    for (String term : terms) if (!term.isEmpty()) style = term;
    String lineEnd = style;
    terms.replaceAll(term -> term.isEmpty() ? lineEnd : term);
    dispatch(style, true);
  }

  /**
   * From now on, passes every byte to {@link Handler#raw} unframed: first those of the event being
   * read, then the rest of the current push and all later ones. For a handler that gives up on
   * the framing (a masker falling back to plain text, say); may be called from the handler.
   */
  public void passThrough() {
    if (raw) return;
    raw = true;
    for (int i = 0; i < lines.size(); i++) {
      emit(lines.get(i));
      emit(terms.get(i));
    }
    if (line.size() > 0) emit(line.toByteArray());
    clear();
  }

  private void dispatch(String end, boolean cutOff) {
    List<SseEvent.Line> built = new ArrayList<>(lines.size());
    for (int i = 0; i < lines.size(); i++) {
      built.add(new SseEvent.Line(fields.get(i), lines.get(i), valueStarts.get(i), terms.get(i)));
    }
    clear();
    handler.event(new SseEvent(built, end, cutOff));
  }

  private void clear() {
    lines.clear();
    terms.clear();
    fields.clear();
    valueStarts.clear();
    line.reset();
    eventBytes = 0;
  }

  private void emit(byte[] bytes) {
    if (bytes.length > 0) handler.raw(bytes, 0, bytes.length);
  }

  private void emit(String terminators) {
    emit(terminators.getBytes(StandardCharsets.US_ASCII));
  }

  /** Builds the events from the scanner's pieces; in pass-through, passes the pieces on. */
  private final class Collector implements SseScanner.Listener {
    @Override
    public void text(byte[] b, int off, int len) {
      if (raw) {
        handler.raw(b, off, len);
        return;
      }
      if (eventBytes + line.size() + len > maxEventBytes) {
        handler.overflow();
        passThrough();
        handler.raw(b, off, len);
        return;
      }
      line.write(b, off, len);
    }

    @Override
    public void value(SseField f) {
      field = f;
      valueStart = line.size();
    }

    @Override
    public void lineEnd(String terminator) {
      if (raw) {
        emit(terminator);
        return;
      }
      lines.add(line.toByteArray());
      terms.add(terminator);
      fields.add(field);
      valueStarts.add(valueStart);
      eventBytes += line.size() + terminator.length();
      line.reset();
    }

    @Override
    public void blankLine(String terminator, boolean endsEvent) {
      if (!raw && eventBytes > maxEventBytes) { // its terminators took it over the limit
        handler.overflow();
        passThrough();
      }
      if (raw) {
        emit(terminator);
      } else if (lines.isEmpty()) {
        handler.gap(terminator);
      } else {
        dispatch(terminator, false);
      }
    }

    @Override
    public void lf() {
      if (raw) {
        emit("\n");
      } else if (lines.isEmpty()) {
        handler.gap("\n");
      } else {
        terms.set(terms.size() - 1, "\r\n");
        eventBytes++;
      }
    }
  }
}
