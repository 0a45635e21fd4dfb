package dev.inferpam.core.internal.http;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/** Reads a request body without ever reading more than one byte past the limit. */
public final class BoundedBody {
  private BoundedBody() {}

  /** Thrown when a body is larger than the limit. */
  public static final class TooLargeException extends IOException {
    private static final long serialVersionUID = 1L;

    public TooLargeException(long limit) {
      super("request body is larger than " + limit + " bytes");
    }
  }

  /**
   * Reads {@code in} whole when it holds at most {@code limit} bytes.
   *
   * @param declaredLength the declared length, or -1 when unknown; a declared length over the
   *     limit is refused without reading anything
   */
  public static byte[] read(InputStream in, long declaredLength, long limit) throws IOException {
    if (declaredLength > limit) throw new TooLargeException(limit);
    if (in == null) return new byte[0];
    ByteArrayOutputStream out;
    long total = 0;
    if (declaredLength >= 0) {
      // The usual case: the length is known, so read straight into an array of that size.
      byte[] exact = new byte[(int) declaredLength];
      int n = in.readNBytes(exact, 0, exact.length);
      if (n < exact.length) return java.util.Arrays.copyOf(exact, n); // shorter than declared
      int next = in.read();
      if (next < 0) return exact;
      // Longer than declared: go on reading, still bounded by the limit.
      total = n + 1L;
      if (total > limit) throw new TooLargeException(limit);
      out = new ByteArrayOutputStream(n + 8192);
      out.write(exact, 0, n);
      out.write(next);
    } else {
      out = new ByteArrayOutputStream((int) Math.min(8192, Math.max(32, limit)));
    }
    byte[] buf = new byte[8192];
    while (true) {
      int max = (int) Math.min(buf.length, limit + 1 - total);
      int n = in.read(buf, 0, max);
      if (n < 0) break;
      total += n;
      if (total > limit) throw new TooLargeException(limit);
      out.write(buf, 0, n);
    }
    return out.toByteArray();
  }
}
