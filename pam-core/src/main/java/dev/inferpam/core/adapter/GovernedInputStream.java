package dev.inferpam.core.adapter;

import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * A response body as a blocking client's caller reads it, for adapters whose client hands over
 * an {@link InputStream} (Spring's {@code ClientHttpResponse}, the AI SDKs' HTTP layers): the
 * upstream bytes go through the exchange's {@link ResponseMasking} (when the plan has one), what
 * it releases is reported with {@link ResponsePlan.Relay#delivered}, and the exchange is ended
 * once: at the end of the body (complete), or when the caller closes it (complete only if it had
 * read everything the upstream sent — a JSON reader stops at the end of the document without
 * reading the end of the body). A read blocks only until the masker releases something, never
 * for the whole body; after a failure (the masker's, the upstream's) it never ends cleanly, so a
 * caller cannot take a cut-off body as whole.
 *
 * <p>One reader at a time, as any {@code InputStream}.
 */
public final class GovernedInputStream extends InputStream {
  private static final int CHUNK = 8192;

  /** What is masked at once: about a few server-sent events, so the first is not delayed. */
  private static final int SLICE = 1024;

  private final InputStream upstream;
  private final ResponseMasking masking;
  private final ResponsePlan.Relay relay;
  private final Consumer<Boolean> end;
  private final AtomicBoolean ended = new AtomicBoolean();
  private final byte[] raw = new byte[CHUNK];
  private byte[] released = new byte[0];
  private int pos;
  private boolean upstreamEnded;
  private boolean failed;

  /**
   * @param upstream the upstream body
   * @param relay    the exchange's plan
   * @param end      ends the exchange, told whether the body was complete (normally {@code
   *                 allowed::end}); called once
   */
  public GovernedInputStream(
      InputStream upstream, ResponsePlan.Relay relay, Consumer<Boolean> end) {
    this.upstream = upstream;
    this.relay = relay;
    this.masking = relay.masking();
    this.end = end;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n == -1 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    if (failed) throw new IOException("the response body broke off");
    if (len == 0) return 0;
    try {
      while (pos == released.length && !upstreamEnded) fill();
    } catch (IOException | RuntimeException e) {
      failed = true;
      finish(false);
      throw e;
    }
    if (pos == released.length) {
      finish(true);
      return -1;
    }
    int n = Math.min(len, released.length - pos);
    System.arraycopy(released, pos, b, off, n);
    relay.delivered(released, pos, n);
    pos += n;
    return n;
  }

  /** Reads what the upstream has and masks it a slice at a time, until something is released. */
  private void fill() throws IOException {
    int n = upstream.read(raw, 0, raw.length);
    if (n == -1) {
      upstreamEnded = true;
      released = masking == null ? new byte[0] : masking.finish();
      pos = 0;
      return;
    }
    if (masking == null) {
      released = java.util.Arrays.copyOf(raw, n);
      pos = 0;
      return;
    }
    java.io.ByteArrayOutputStream out = null;
    byte[] single = null;
    for (int at = 0; at < n; at += SLICE) {
      byte[] part = masking.push(raw, at, Math.min(SLICE, n - at));
      if (part.length == 0) continue;
      if (part == raw) part = java.util.Arrays.copyOfRange(raw, at, at + Math.min(SLICE, n - at));
      if (single == null && out == null) {
        single = part;
      } else {
        if (out == null) {
          out = new java.io.ByteArrayOutputStream(2 * CHUNK);
          out.write(single);
        }
        out.write(part);
      }
    }
    released = out != null ? out.toByteArray() : single != null ? single : new byte[0];
    pos = 0;
  }

  @Override
  public int available() {
    return released.length - pos;
  }

  /**
   * Closes the upstream. The exchange ends complete when the caller has read everything the
   * upstream sent (a JSON reader stops at the end of the document without reading the end of the
   * body), incomplete otherwise.
   */
  @Override
  public void close() throws IOException {
    try {
      upstream.close();
    } finally {
      finish(upstreamEnded && !failed && pos == released.length);
    }
  }

  private void finish(boolean complete) {
    if (ended.compareAndSet(false, true)) end.accept(complete);
  }
}
