package dev.inferpam.okhttp;

import java.io.IOException;
import okio.Buffer;
import okio.ForwardingSink;

/** Accepts at most {@code limit} bytes into a buffer, then stops the writer. */
final class LimitedSink extends ForwardingSink {
  static final class LimitReachedException extends IOException {
    private static final long serialVersionUID = 1L;

    LimitReachedException() {
      super("limit reached");
    }
  }

  private final long limit;
  private long written;

  LimitedSink(Buffer delegate, long limit) {
    super(delegate);
    this.limit = limit;
  }

  @Override
  public void write(Buffer source, long byteCount) throws IOException {
    long room = limit - written;
    long n = Math.min(room, byteCount);
    super.write(source, n);
    written += n;
    if (n < byteCount) {
      source.skip(byteCount - n);
      throw new LimitReachedException();
    }
  }
}
