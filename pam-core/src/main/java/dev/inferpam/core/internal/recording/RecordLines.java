package dev.inferpam.core.internal.recording;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads a segment file line by line as raw bytes, so that hashes are checked over exactly the
 * bytes on disk (decoding and re-encoding would hide invalid UTF-8). Streams: memory is one read
 * buffer plus the longest line, which is bounded by {@link #MAX_LINE_BYTES}.
 *
 * <p>Not thread-safe. The {@link Line} returned by {@link #next()} shares a buffer that the
 * following call overwrites.
 */
public final class RecordLines implements Closeable {
  /**
   * Longest line read, 256 MiB: far above a record with the largest default bodies (8 MiB
   * request, 4 MiB captured response, even fully escaped). A longer line is reported as
   * {@link Line#tooLong()} and skipped.
   */
  public static final int MAX_LINE_BYTES = 256 * 1024 * 1024;

  private final InputStream in;
  private final byte[] buf = new byte[64 * 1024];
  private int pos;
  private int limit;
  private byte[] line = new byte[8 * 1024];
  private boolean eof;

  public RecordLines(InputStream in) {
    this.in = in;
  }

  /** Opens {@code file} for reading. */
  public static RecordLines open(Path file) throws IOException {
    return new RecordLines(Files.newInputStream(file));
  }

  /**
   * One line without its line break.
   *
   * @param bytes      buffer holding the line in {@code [0, length)}; reused by the next call
   * @param terminated false for a last line that has no line break (a torn write)
   * @param tooLong    true when the line exceeded {@link #MAX_LINE_BYTES}; its bytes are not kept
   */
  public record Line(byte[] bytes, int length, boolean terminated, boolean tooLong) {
    /** The line as text (UTF-8). */
    public String text() {
      return new String(bytes, 0, length, StandardCharsets.UTF_8);
    }
  }

  /** The next line, or {@code null} at the end of the file. */
  public Line next() throws IOException {
    int len = 0;
    boolean tooLong = false;
    while (true) {
      if (pos == limit) {
        if (eof || !fill()) {
          if (len == 0 && !tooLong) return null;
          return new Line(line, tooLong ? 0 : len, false, tooLong);
        }
      }
      int start = pos;
      int nl = -1;
      for (int i = pos; i < limit; i++) {
        if (buf[i] == '\n') {
          nl = i;
          break;
        }
      }
      int end = nl < 0 ? limit : nl;
      int n = end - start;
      if (!tooLong) {
        if ((long) len + n > MAX_LINE_BYTES) {
          tooLong = true;
        } else {
          ensure(len + n);
          System.arraycopy(buf, start, line, len, n);
          len += n;
        }
      }
      pos = nl < 0 ? limit : nl + 1;
      if (nl >= 0) return new Line(line, tooLong ? 0 : len, true, tooLong);
    }
  }

  private boolean fill() throws IOException {
    int n = in.read(buf, 0, buf.length);
    if (n <= 0) {
      eof = true; // a blocking stream returns 0 only for a 0-byte read, which is never asked for
      pos = limit = 0;
      return false;
    }
    pos = 0;
    limit = n;
    return true;
  }

  private void ensure(int size) {
    if (size <= line.length) return;
    int grown = (int) Math.min(Math.max((long) line.length * 2, size), MAX_LINE_BYTES);
    line = Arrays.copyOf(line, grown);
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}
