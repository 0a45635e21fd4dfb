package dev.inferpam.servlet.internal;

import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletInputStream;
import java.io.IOException;
import java.util.Objects;

/**
 * Replays a request body held in memory. Never blocks: every byte is available at once. Used by
 * one thread at a time, like any request stream.
 */
final class ReplayInputStream extends ServletInputStream {
  private final byte[] body;
  private int position;

  ReplayInputStream(byte[] body) {
    this.body = body;
  }

  @Override
  public int read() {
    return position < body.length ? body[position++] & 0xff : -1;
  }

  @Override
  public int read(byte[] b, int off, int len) {
    Objects.checkFromIndexSize(off, len, b.length);
    if (len == 0) return 0;
    if (position >= body.length) return -1;
    int n = Math.min(len, body.length - position);
    System.arraycopy(body, position, b, off, n);
    position += n;
    return n;
  }

  @Override
  public long skip(long n) {
    long skipped = Math.max(0, Math.min(n, body.length - position));
    position += (int) skipped;
    return skipped;
  }

  @Override
  public int available() {
    return body.length - position;
  }

  @Override
  public boolean isFinished() {
    return position >= body.length;
  }

  @Override
  public boolean isReady() {
    return true;
  }

  /**
   * All data is already here, so the listener is told at once, on the calling thread: data
   * available (when any is left), then all data read.
   */
  @Override
  public void setReadListener(ReadListener listener) {
    Objects.requireNonNull(listener, "listener");
    try {
      if (!isFinished()) listener.onDataAvailable();
      if (isFinished()) listener.onAllDataRead();
    } catch (IOException | RuntimeException e) {
      listener.onError(e);
    }
  }
}
