package dev.inferpam.core.stream;

import java.util.Objects;

/**
 * Cuts a {@code text/event-stream} into lines and fields as its bytes arrive, holding none of
 * them: each piece of a line is reported while it is in the caller's array, so that a reader that
 * only looks at the bytes (usage counting, say) costs no memory however long an event is.
 *
 * <p>The framing is that of the WHATWG event-stream format: a line ends at {@code \n},
 * {@code \r\n} or {@code \r}; its field is the text before its first colon (the whole line when it
 * has none; {@link SseField#COMMENT} when the colon comes first), and its value what follows the
 * colon, less one space directly after it; a blank line ends the event. A {@code \r} ends its line
 * at once, without waiting for the next byte: if that byte is a {@code \n}, it is reported by
 * {@link Listener#lf()} as the rest of that terminator. Lines are cut on bytes, which is safe for
 * UTF-8 (neither terminator nor the colon occurs inside a multi-byte sequence), so a character
 * split across pushes stays whole within its piece sequence. Nothing is decoded, and every byte
 * pushed is reported exactly once: as {@link Listener#text}, or as a terminator.
 *
 * <p>How a line is reported: its text in one or more {@link Listener#text} pieces, of which
 * those before {@link Listener#value} hold the field name, the colon and the dropped space, and
 * those after it hold the value; then {@link Listener#lineEnd}. {@code value} is called once per
 * line (for a line without a colon, at its end, the value being empty). A blank line is reported
 * by {@link Listener#blankLine} alone.
 *
 * <p>Not thread-safe: one stream, fed by one thread at a time. Never throws on bad input; any
 * bytes are a stream.
 */
public final class SseScanner {
  /** Receives the pieces of the stream in order, during {@link #push} and {@link #finish}. */
  public interface Listener {
    /**
     * Bytes of the current line, without its terminator, in order.
     *
     * @param b   the caller's array, valid only during the call
     * @param off where the bytes start
     * @param len how many, > 0
     */
    void text(byte[] b, int off, int len);

    /**
     * The current line's field is known; what {@link #text} reports from here to the end of the
     * line is its value.
     *
     * @param field the line's field
     */
    void value(SseField field);

    /**
     * The current line ended.
     *
     * @param terminator {@code "\n"}, {@code "\r"} (followed by {@link #lf()} when a {@code \n}
     *     comes next), or {@code ""} for a line cut off by {@link SseScanner#finish()}
     */
    void lineEnd(String terminator);

    /**
     * A blank line.
     *
     * @param terminator {@code "\n"} or {@code "\r"} (followed by {@link #lf()} when a {@code \n}
     *     comes next)
     * @param endsEvent  whether a line came since the previous blank line; if not, it ends no
     *     event and a reader skips it
     */
    void blankLine(String terminator, boolean endsEvent);

    /** The {@code \n} of a {@code \r\n}, whose {@code \r} ended the line (blank or not) just reported. */
    void lf();
  }

  private static final int START = 0; // nothing of the line yet
  private static final int NAME = 1; // in the field name
  private static final int COLON =
      2; // right after the colon: a space here is not part of the value
  private static final int VALUE = 3;

  /** Longest field name recognised ({@code retry}); longer ones are {@link SseField#OTHER}. */
  private static final int MAX_NAME = 5;

  private final Listener listener;
  private final byte[] name = new byte[MAX_NAME];
  private int nameLength; // > MAX_NAME: too long to be a known field
  private int state = START;
  private SseField field;
  private boolean afterCr;
  private boolean inEvent;

  /**
   * A scanner at the start of a stream.
   *
   * @param listener receives the pieces
   * @throws NullPointerException if {@code listener} is null
   */
  public SseScanner(Listener listener) {
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
    int mark = off; // start of the current line's bytes not yet reported
    while (i < end) {
      if (afterCr) {
        afterCr = false;
        if (b[i] == '\n') {
          listener.lf();
          mark = ++i;
          continue;
        }
      }
      switch (state) {
        case START, NAME -> {
          int j = i;
          while (j < end) {
            byte c = b[j];
            if (c == ':' || c == '\n' || c == '\r') break;
            j++;
          }
          if (j > i) {
            name(b, i, j);
            state = NAME;
          }
          if (j == end) {
            i = j;
          } else if (b[j] == ':') {
            field = state == START ? SseField.COMMENT : field();
            state = COLON;
            i = j + 1;
          } else if (state == START) {
            listener.blankLine(b[j] == '\r' ? "\r" : "\n", inEvent);
            inEvent = false;
            mark = i = lineEnded(b, j);
          } else {
            report(b, mark, j);
            listener.value(field());
            listener.lineEnd(b[j] == '\r' ? "\r" : "\n");
            inEvent = true;
            mark = i = lineEnded(b, j);
          }
        }
        case COLON -> {
          if (b[i] == ' ') i++;
          report(b, mark, i);
          mark = i;
          state = VALUE;
          listener.value(field);
        }
        default -> { // VALUE
          int j = lineBreak(b, i, end);
          if (j == end) {
            i = j;
          } else {
            report(b, mark, j);
            listener.lineEnd(b[j] == '\r' ? "\r" : "\n");
            inEvent = true;
            mark = i = lineEnded(b, j);
          }
        }
      }
    }
    report(b, mark, end);
  }

  private static final java.lang.invoke.VarHandle LONGS =
      java.lang.invoke.MethodHandles.byteArrayViewVarHandle(
          long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGHS = 0x8080808080808080L;
  private static final long LOWS = 0x7F7F7F7F7F7F7F7FL;

  /** The index of the first {@code \n} or {@code \r} in {@code b[i, end)}, else {@code end}. */
  private static int lineBreak(byte[] b, int i, int end) {
    // eight bytes at a time while none of them is a line break (an exact test, no false hit)
    while (i + 8 <= end) {
      long w = (long) LONGS.get(b, i);
      long lf = w ^ (ONES * '\n');
      long cr = w ^ (ONES * '\r');
      long zero = ~(((lf & LOWS) + LOWS) | lf) | ~(((cr & LOWS) + LOWS) | cr);
      if ((zero & HIGHS) != 0) break;
      i += 8;
    }
    while (i < end) {
      byte c = b[i];
      if (c == '\n' || c == '\r') return i;
      i++;
    }
    return end;
  }

  /**
   * Ends the stream: a line cut off without its terminator is ended by
   * {@link Listener#lineEnd lineEnd("")} (after {@link Listener#value} when its field was still
   * open). The scanner is then at the start of a stream again.
   *
   * @return whether an event was cut off, i.e. lines came after the last blank line (the format
   *     says a reader discards such an event; a proxy may deliver it)
   */
  public boolean finish() {
    afterCr = false;
    if (state != START) {
      if (state != VALUE) listener.value(state == COLON ? field : field());
      listener.lineEnd("");
      resetLine();
      inEvent = true;
    }
    boolean cut = inEvent;
    inEvent = false;
    return cut;
  }

  /** Resets the line state after the terminator at {@code j}; returns where the next line starts. */
  private int lineEnded(byte[] b, int j) {
    resetLine();
    if (b[j] == '\r') afterCr = true;
    return j + 1;
  }

  private void resetLine() {
    state = START;
    nameLength = 0;
    field = null;
  }

  private void report(byte[] b, int from, int to) {
    if (to > from) listener.text(b, from, to - from);
  }

  private void name(byte[] b, int from, int to) {
    for (int k = from; k < to && nameLength <= MAX_NAME; k++) {
      if (nameLength < MAX_NAME) name[nameLength] = b[k];
      nameLength++;
    }
  }

  private SseField field() {
    return switch (nameLength) {
      case 2 -> is("id") ? SseField.ID : SseField.OTHER;
      case 4 -> is("data") ? SseField.DATA : SseField.OTHER;
      case 5 -> is("event") ? SseField.EVENT : is("retry") ? SseField.RETRY : SseField.OTHER;
      default -> SseField.OTHER;
    };
  }

  private boolean is(String known) {
    for (int k = 0; k < known.length(); k++) {
      if (name[k] != known.charAt(k)) return false;
    }
    return true;
  }
}
