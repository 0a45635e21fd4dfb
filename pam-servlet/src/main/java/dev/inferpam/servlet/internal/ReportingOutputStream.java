package dev.inferpam.servlet.internal;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.util.Objects;

/**
 * Passes every write and flush straight to the container's stream and reports it to the
 * exchange: the response start before the first byte or flush, then each chunk once the
 * container took it (a write that fails is not reported as delivered). Holds no buffer of its own.
 * Used by one thread at a time, like the stream it wraps.
 */
final class ReportingOutputStream extends ServletOutputStream {
  private final ServletOutputStream out;
  private final ExchangeResponse response;

  ReportingOutputStream(ServletOutputStream out, ExchangeResponse response) {
    this.out = out;
    this.response = response;
  }

  @Override
  public void write(int b) throws IOException {
    response.reportStarted();
    try {
      out.write(b);
    } catch (IOException e) {
      response.reportDeliveryFailed();
      throw e;
    }
    response.reportBytes(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, b.length);
    response.reportStarted();
    try {
      out.write(b, off, len);
    } catch (IOException e) {
      response.reportDeliveryFailed();
      throw e;
    }
    response.reportBytes(b, off, len);
  }

  @Override
  public void flush() throws IOException {
    response.reportStarted();
    try {
      out.flush();
    } catch (IOException e) {
      response.reportDeliveryFailed();
      throw e;
    }
  }

  @Override
  public void close() throws IOException {
    response.reportStarted();
    out.close();
  }

  @Override
  public boolean isReady() {
    return out.isReady();
  }

  @Override
  public void setWriteListener(WriteListener listener) {
    out.setWriteListener(listener);
  }
}
