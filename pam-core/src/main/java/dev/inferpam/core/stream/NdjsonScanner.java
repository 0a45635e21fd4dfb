package dev.inferpam.core.stream;

import java.util.Objects;

/**
 * Cuts newline-delimited JSON ({@code application/x-ndjson}, Ollama's streams) into lines as its
 * bytes arrive, holding none of them: a line ends at {@code \n}; a {@code \r} before it is
 * reported as part of the line's text (JSON whitespace to a reader that scans the bytes;
 * {@link NdjsonFramer} makes it part of the terminator). Every byte pushed is reported exactly
 * once.
 *
 * <p>Not thread-safe: one stream, fed by one thread at a time. Never throws on bad input.
 */
public final class NdjsonScanner {
  /** Receives the pieces of the stream in order, during {@link #push}. */
  public interface Listener {
    /**
     * Bytes of the current line, without its {@code \n}, in order.
     *
     * @param b   the caller's array, valid only during the call
     * @param off where the bytes start
     * @param len how many, > 0
     */
    void text(byte[] b, int off, int len);

    /** The current line ended at a {@code \n}. */
    void lineEnd();
  }

  private final Listener listener;

  /**
   * A scanner at the start of a stream.
   *
   * @param listener receives the pieces
   * @throws NullPointerException if {@code listener} is null
   */
  public NdjsonScanner(Listener listener) {
    this.listener = Objects.requireNonNull(listener, "listener");
  }

  /**
   * Scans the next bytes of the stream, calling the listener for what they complete or pass.
   *
   * @param b   the bytes, not kept after the call
   * @param off where they start in {@code b}
   * @param len how many
   * @throws IndexOutOfBoundsException if the range is not within {@code b}
   */
  public void push(byte[] b, int off, int len) {
    Objects.checkFromIndexSize(off, len, b.length);
    int end = off + len;
    int i = off;
    while (i < end) {
      int j = i;
      while (j < end && b[j] != '\n') j++;
      if (j > i) listener.text(b, i, j - i);
      if (j == end) break;
      listener.lineEnd();
      i = j + 1;
    }
  }
}
