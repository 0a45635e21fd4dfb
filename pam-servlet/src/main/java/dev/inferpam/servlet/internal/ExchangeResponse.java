package dev.inferpam.servlet.internal;

import dev.inferpam.core.Exchange;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UnsupportedEncodingException;
import java.nio.charset.Charset;
import java.nio.charset.IllegalCharsetNameException;
import java.nio.charset.UnsupportedCharsetException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The response an allowed exchange hands to the application: what it writes goes to the client
 * unchanged and is reported to the {@link Exchange} as it passes ({@link Exchange#responseStarted}
 * once, then every chunk to {@link Exchange#responseBytes}). Nothing is held back:
 * {@code flush()} reaches the client at once and the writer encodes every call straight into the
 * stream, so no bytes wait in a buffer the container does not know about.
 *
 * <p>Used by one thread at a time, like any response. {@link #getOutputStream()} and
 * {@link #getWriter()} exclude each other ({@link IllegalStateException}). Once the writer is
 * taken, {@link #setCharacterEncoding} has no effect, as the servlet specification requires.
 */
public final class ExchangeResponse extends HttpServletResponseWrapper {
  private final Exchange exchange;
  private ReportingOutputStream stream;
  private boolean streamTaken;
  private PrintWriter writer;
  private volatile boolean started;
  private volatile boolean deliveryFailed;

  /** Wraps the response of an allowed {@code exchange}. */
  public ExchangeResponse(HttpServletResponse response, Exchange exchange) {
    super(response);
    this.exchange = exchange;
  }

  /** Reports the status and headers to the exchange, the first time only. */
  public void reportStarted() {
    reportStarted(getStatus());
  }

  /** Reports {@code status} and the headers to the exchange, the first time only. */
  public void reportStarted(int status) {
    if (started) return;
    started = true;
    exchange.responseStarted(status, headers());
  }

  /** Remembers that a write or flush to the client failed (typically: the client went away). */
  void reportDeliveryFailed() {
    deliveryFailed = true;
  }

  /**
   * True when a write or flush to the client failed, even if the application caught the
   * exception and returned normally: the client did not get the whole response.
   */
  public boolean deliveryFailed() {
    return deliveryFailed;
  }

  void reportBytes(byte[] b, int off, int len) {
    if (len > 0) exchange.responseBytes(b, off, len);
  }

  private Map<String, List<String>> headers() {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (String name : getHeaderNames()) {
      headers.computeIfAbsent(name, k -> new ArrayList<>()).addAll(getHeaders(name));
    }
    // Some containers keep the content type apart from the header fields until commit.
    String contentType = getContentType();
    if (contentType != null && headers.keySet().stream().noneMatch("content-type"::equalsIgnoreCase)) {
      headers.put("Content-Type", List.of(contentType));
    }
    return headers;
  }

  private ReportingOutputStream stream() throws IOException {
    if (stream == null) stream = new ReportingOutputStream(super.getOutputStream(), this);
    return stream;
  }

  @Override
  public ServletOutputStream getOutputStream() throws IOException {
    if (writer != null) throw new IllegalStateException("getWriter() was already called");
    streamTaken = true;
    return stream();
  }

  @Override
  public PrintWriter getWriter() throws IOException {
    if (streamTaken) throw new IllegalStateException("getOutputStream() was already called");
    if (writer == null) {
      String name = getCharacterEncoding();
      if (name == null) name = "ISO-8859-1"; // the servlet specification's default
      Charset charset;
      try {
        charset = Charset.forName(name);
      } catch (IllegalCharsetNameException | UnsupportedCharsetException e) {
        throw new UnsupportedEncodingException(name);
      }
      // A container fixes the charset in Content-Type when its writer is taken; do the same.
      super.setCharacterEncoding(name);
      writer = new PrintWriter(new EncodingWriter(stream(), charset));
    }
    return writer;
  }

  @Override
  public void setCharacterEncoding(String charset) {
    if (writer == null) super.setCharacterEncoding(charset);
  }

  @Override
  public void flushBuffer() throws IOException {
    reportStarted();
    super.flushBuffer();
  }

  @Override
  public void sendError(int sc, String msg) throws IOException {
    super.sendError(sc, msg);
    reportStarted(sc);
  }

  @Override
  public void sendError(int sc) throws IOException {
    super.sendError(sc);
    reportStarted(sc);
  }

  @Override
  public String toString() {
    return "ExchangeResponse[" + exchange.id() + ", started=" + started + "]";
  }
}
