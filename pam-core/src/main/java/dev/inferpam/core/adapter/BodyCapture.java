package dev.inferpam.core.adapter;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Arrays;

/**
 * A request body as a client adapter collects it before the decision, bounded: it keeps at most
 * {@code limit + 1} bytes (the engine's {@link dev.inferpam.core.PamEngine#maxBodyBytes()} plus
 * one, enough for the engine to refuse a body over the limit) and counts the rest, so a huge body
 * is refused 413 without being held. Pass {@link #in()} and {@link #size()} to {@code
 * PamEngine.begin}. One writer at a time.
 */
public final class BodyCapture extends OutputStream {
  private final long keep;
  private byte[] buf = new byte[256];
  private int n;
  private long size;

  /** @param limit the engine's {@code maxBodyBytes()} */
  public BodyCapture(long limit) {
    this.keep = limit < Integer.MAX_VALUE - 8 ? limit + 1 : Integer.MAX_VALUE - 8;
  }

  @Override
  public void write(int b) {
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int len) {
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    size += len;
    int take = (int) Math.min(len, keep - n);
    if (take <= 0) return;
    if (n + take > buf.length) {
      buf = Arrays.copyOf(buf, (int) Math.min(keep, Math.max(n + take, 2L * buf.length)));
    }
    System.arraycopy(b, off, buf, n, take);
    n += take;
  }

  /** Every byte written, counted, including those not kept. */
  public long size() {
    return size;
  }

  /** The bytes kept: the whole body when {@link #size()} is within the limit. */
  public byte[] bytes() {
    return Arrays.copyOf(buf, n);
  }

  /** The kept bytes to read, for {@code PamEngine.begin}. */
  public InputStream in() {
    return new ByteArrayInputStream(buf, 0, n);
  }
}
