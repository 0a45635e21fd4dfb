package dev.inferpam.servlet.internal;

import dev.inferpam.core.adapter.ResponseMasking;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.util.Objects;

/**
 * Passes every write and flush to the container's stream and reports it to the exchange: the
 * response start before the first byte or flush, then each chunk once the container took it (a
 * write that fails is not reported as delivered).
 *
 * <p>When the body is masked ({@link ExchangeResponse#masking()}), each write goes through the
 * masker first and what it releases is written and reported at once; the masker's held-back tail
 * (bounded by {@code masking.max-hold-back}) is written at {@link #close()}, or by the filter when
 * the application is done. {@link #flush()} flushes everything released so far, so server-sent
 * events reach the client as they are written. Without masking it holds no buffer of its own.
 *
 * <p>When the exchange refused the response, writes and flushes fail with an
 * {@link IOException} (the refusal is already on its way to the client) and {@link #close()}
 * does nothing. Used by one thread at a time, like the stream it wraps.
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
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, b.length);
    if (!response.begin()) throw ExchangeResponse.refusedException();
    ResponseMasking masking = response.masking();
    if (masking == null) {
      deliver(b, off, len);
      return;
    }
    if (masking.finished()) throw new IOException("output stream closed");
    byte[] masked;
    try {
      masked = masking.push(b, off, len);
    } catch (IOException e) {
      // The masker failed: nothing more goes out, and the response does not count as complete.
      response.reportDeliveryFailed();
      throw e;
    }
    if (masked.length > 0) deliver(masked, 0, masked.length);
  }

  /** Writes bytes that may reach the client as they are, and reports them as delivered. */
  void deliver(byte[] b, int off, int len) throws IOException {
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
    if (!response.begin()) throw ExchangeResponse.refusedException();
    try {
      out.flush();
    } catch (IOException e) {
      response.reportDeliveryFailed();
      throw e;
    }
  }

  @Override
  public void close() throws IOException {
    if (!response.begin()) return; // the refusal closed the response
    response.finishMasking();
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
