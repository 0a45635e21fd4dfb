package dev.inferpam.core.stream;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Newline-delimited JSON lines from bytes, as they arrive: each line is handed over by the very
 * {@link #push} that brought its {@code \n}, UTF-8 decoded (malformed bytes become U+FFFD), with
 * its terminator ({@code \n}, or {@code \r\n} when a {@code \r} came before it), so that the
 * stream can be written again as it came. Blank lines are handed over too.
 *
 * <p>Bounded: a line whose bytes would pass {@code maxLineBytes} is not framed;
 * {@link Handler#overflow()} is called and from then on every byte, those of that line first,
 * goes to {@link Handler#raw} as it is.
 *
 * <p>Not thread-safe: one stream, fed by one thread at a time. Never throws on bad input;
 * exceptions of the handler propagate.
 */
public final class NdjsonFramer {
  /** Receives what the framer cuts, in stream order, during {@link #push} and {@link #finish}. */
  @FunctionalInterface
  public interface Handler {
    /**
     * A line.
     *
     * @param text       the line without its terminator, UTF-8 decoded
     * @param terminator {@code "\n"}, {@code "\r\n"}, or {@code ""} for a last line the stream
     *     ended without one (its {@code \r}, if any, kept in {@code text})
     */
    void line(String text, String terminator);

    /**
     * The line being read passed the size limit; every byte from here on goes to {@link #raw}.
     * Called once, before the first of those bytes.
     */
    default void overflow() {}

    /**
     * Bytes passed on as they are, after {@link #overflow()}.
     *
     * @param b   the caller's array, valid only during the call
     * @param off where the bytes start
     * @param len how many, > 0
     */
    default void raw(byte[] b, int off, int len) {}
  }

  private final long maxLineBytes;
  private final Handler handler;
  private final NdjsonScanner scanner = new NdjsonScanner(new Collector());
  private final ByteArrayOutputStream line = new ByteArrayOutputStream();
  private boolean raw;

  /**
   * A framer at the start of a stream.
   *
   * @param maxLineBytes most bytes of one line, {@code \r} included, > 0
   * @param handler      receives the lines
   * @throws IllegalArgumentException if {@code maxLineBytes <= 0}
   * @throws NullPointerException     if {@code handler} is null
   */
  public NdjsonFramer(long maxLineBytes, Handler handler) {
    this.maxLineBytes = Framers.positive(maxLineBytes, "maxLineBytes");
    this.handler = Objects.requireNonNull(handler, "handler");
  }

  /**
   * Frames the next bytes of the stream, handing over the lines they complete.
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

  /** Ends the stream: a last line without its {@code \n} is handed over with terminator {@code ""}. */
  public void finish() {
    if (raw || line.size() == 0) return;
    String text = line.toString(StandardCharsets.UTF_8);
    line.reset();
    handler.line(text, "");
  }

  private final class Collector implements NdjsonScanner.Listener {
    @Override
    public void text(byte[] b, int off, int len) {
      if (raw) {
        handler.raw(b, off, len);
        return;
      }
      if ((long) line.size() + len > maxLineBytes) {
        raw = true;
        handler.overflow();
        byte[] held = line.toByteArray();
        line.reset();
        if (held.length > 0) handler.raw(held, 0, held.length);
        handler.raw(b, off, len);
        return;
      }
      line.write(b, off, len);
    }

    @Override
    public void lineEnd() {
      if (raw) {
        handler.raw(new byte[] {'\n'}, 0, 1);
        return;
      }
      byte[] bytes = line.toByteArray();
      line.reset();
      int length = bytes.length;
      String terminator = "\n";
      if (length > 0 && bytes[length - 1] == '\r') {
        length--;
        terminator = "\r\n";
      }
      handler.line(new String(bytes, 0, length, StandardCharsets.UTF_8), terminator);
    }
  }
}
