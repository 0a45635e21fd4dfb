package dev.inferpam.servlet.internal;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
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
 * and is reported to the engine as it passes ({@link Verdict.Allowed#respond} once, then every
 * chunk delivered to {@link ResponsePlan.Relay#delivered}). Nothing is held back beyond what
 * masking needs: {@code flush()} reaches the client at once and the writer encodes every call
 * straight into the stream, so no bytes wait in a buffer the container does not know about.
 *
 * <p><b>Masking.</b> The body goes through the plan's {@link ResponsePlan.Relay#masking()}, decided
 * before the first byte: the client and the record get the masked bytes; the masker may hold back
 * a bounded tail, released at {@code close()} or when the application is done ({@link #finish()}:
 * the filter calls it when the application returns, when the async dispatch the application asked
 * for returns, and {@code ExchangeAsyncContext.complete()} before completing).
 * When the body may change length ({@link Verdict.Allowed#mayChangeLength()}), a
 * {@code Content-Length} the application sets is held until then, and dropped when the plan says
 * so. If the plan refuses the response ({@link ResponsePlan.Refused}, e.g. an encoded body that
 * cannot be masked), its error is written to the client instead, in place of everything the
 * application set, and the application's further output fails with an {@link IOException} so
 * that it stops ({@link #refused()} tells the filter so).
 *
 * <p><b>Credentials.</b> Every header the application sets or adds (and the content type, a
 * redirect's location, an error's message) passes {@link Verdict.Allowed#responseHeader}: the
 * exchange's credentials are replaced in it, and a header whose name holds one is dropped.
 *
 * <p>Used by one thread at a time, like any response. {@link #getOutputStream()} and
 * {@link #getWriter()} exclude each other ({@link IllegalStateException}). Once the writer is
 * taken, {@link #setCharacterEncoding} has no effect, as the servlet specification requires.
 */
public final class ExchangeResponse extends HttpServletResponseWrapper {
  private final Verdict.Allowed exchange;

  /** Whether a Content-Length must wait for the masking decision (it is dropped if masked). */
  private final boolean holdsLength;

  private ReportingOutputStream stream;
  private boolean streamTaken;
  private PrintWriter writer;
  private volatile boolean started;
  private volatile boolean deliveryFailed;

  /** Whether the delivery was decided (masked, as it is, or refused); before the first byte. */
  private boolean prepared;

  private long heldLength = -1;
  private ResponsePlan.Relay relay;
  private ResponseMasking masking;
  private ErrorResponse refusal;
  private volatile boolean refusalSent;

  // The application's async cycles: how the current one is ending (see asyncEnding).
  private volatile boolean asyncEndAsked;
  private volatile boolean dispatchPending;
  private volatile boolean asyncTimedOut;

  /** Wraps the response of an allowed exchange. */
  public ExchangeResponse(HttpServletResponse response, Verdict.Allowed exchange) {
    super(response);
    this.exchange = exchange;
    this.holdsLength = exchange.mayChangeLength();
  }

  /** Reports the status and headers to the engine, the first time only. */
  public void reportStarted() {
    reportStarted(getStatus());
  }

  /** Reports {@code status} and the headers to the engine, the first time only. */
  public void reportStarted(int status) {
    if (started) return;
    started = true;
    ResponsePlan plan = exchange.respond(status, headers());
    if (plan instanceof ResponsePlan.Refused refused) {
      refusal = refused.error();
    } else {
      relay = (ResponsePlan.Relay) plan;
    }
  }

  /**
   * Decides, once, before the application's first byte, flush or close (or when it is done
   * without any), how the body goes out: refused, masked, or as it is. A held-back
   * {@code Content-Length} is set now when the body goes out as it is.
   */
  private void prepare() {
    if (prepared) return;
    prepared = true;
    reportStarted();
    if (relay != null) masking = relay.masking();
    if (relay != null && !relay.dropContentLength() && heldLength >= 0 && !isCommitted()) {
      super.setContentLengthLong(heldLength);
    }
  }

  /**
   * Called before the application's output reaches the client.
   *
   * @return true when the output may go on; false when the response was refused and its error
   *     written instead (now or before), so the output must be discarded
   * @throws IOException when the refusal could not be written (the client went away)
   */
  boolean begin() throws IOException {
    prepare();
    if (refusal == null) return true;
    if (!refusalSent) sendRefusal();
    return false;
  }

  /** The masking of the body, or {@code null} when it goes out as it is; valid after {@link #begin()}. */
  ResponseMasking masking() {
    return masking;
  }

  /** What the application's output fails with once the response was refused. */
  static IOException refusedException() {
    return new IOException("the response was refused by inferpam: it cannot be masked");
  }

  /**
   * Writes the refusal in place of the application's response: its status and headers are
   * reset (the body has not started: the refusal is decided before the first byte), and the
   * response is completed, so the client gets exactly the error.
   */
  private void sendRefusal() throws IOException {
    refusalSent = true;
    HttpServletResponse raw = (HttpServletResponse) getResponse();
    if (raw.isCommitted()) {
      // Committed by an error page (sendError) before any output: it stands, but is incomplete.
      reportDeliveryFailed();
      throw refusedException();
    }
    try {
      raw.reset();
      raw.setStatus(refusal.status());
      refusal.headers().forEach(raw::setHeader);
      raw.setContentLength(refusal.body().length);
      ServletOutputStream out = raw.getOutputStream();
      out.write(refusal.body());
      out.close();
    } catch (IOException e) {
      reportDeliveryFailed();
      throw e;
    }
  }

  /** True once the exchange refused the response and its error was written to the client. */
  public boolean refused() {
    return refusalSent;
  }

  /**
   * The application is done with the response: the delivery is decided if no output did so
   * (writing the refusal, if any), and the masker's held-back tail is written. Idempotent.
   *
   * @throws IOException when writing fails (the client went away) or the masker failed, so that
   *     the container aborts the response rather than end it cleanly without its tail
   */
  public void finish() throws IOException {
    if (!begin()) return;
    finishMasking();
  }

  /** Writes the masker's held-back tail, once; nothing when the body is not masked. */
  void finishMasking() throws IOException {
    if (masking == null || masking.finished()) return;
    byte[] tail;
    try {
      tail = masking.finish();
    } catch (IOException e) {
      reportDeliveryFailed();
      throw e;
    }
    if (tail.length > 0) stream().deliver(tail, 0, tail.length);
  }

  /**
   * True when the client got the whole body as far as this wrapper knows: nothing masked, the
   * masker's tail written, or the refusal sent. False when a masked body ended without its tail
   * (a timeout nobody answered, a dispatch that did not pass the filter).
   */
  public boolean bodyComplete() {
    return refusalSent || masking == null || masking.finished();
  }

  // --- the application's async cycles -----------------------------------------------------------

  /** The application started an async cycle (again): how it ends is not known yet. */
  void asyncStarted() {
    asyncEndAsked = false;
    asyncTimedOut = false;
  }

  /**
   * The application asked its async cycle to end: {@code complete()}, or with {@code dispatch},
   * a dispatch after which the response ends when that dispatch returns, unless it starts async
   * again.
   */
  void asyncEnding(boolean dispatch) {
    asyncEndAsked = true;
    if (dispatch) dispatchPending = true;
  }

  /** The filter saw the async dispatch the application asked for. */
  public void dispatched() {
    dispatchPending = false;
  }

  /**
   * True when the application asked for a dispatch that never reached the filter (not mapped to
   * {@code DispatcherType.ASYNC}): the response ended without the filter, so without its tail.
   */
  public boolean dispatchMissed() {
    return dispatchPending;
  }

  /** The container timed out the current async cycle. */
  public void asyncTimedOut() {
    asyncTimedOut = true;
  }

  /**
   * True when the container timed out the current async cycle and the application did not end it
   * (no {@code complete()} or {@code dispatch} after the timeout): the container ended it with an
   * error, and the application's answer is incomplete.
   */
  public boolean timeoutUnanswered() {
    return asyncTimedOut && !asyncEndAsked;
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
    if (len > 0 && relay != null) relay.delivered(b, off, len);
  }

  private Map<String, List<String>> headers() {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (String name : getHeaderNames()) {
      headers.computeIfAbsent(name, k -> new ArrayList<>()).addAll(getHeaders(name));
    }
    // Some containers keep the content type apart from the header fields until commit.
    String contentType = getContentType();
    if (contentType != null
        && headers.keySet().stream().noneMatch("content-type"::equalsIgnoreCase)) {
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
    if (!begin()) throw refusedException();
    super.flushBuffer();
  }

  // --- Content-Length: held until the body's masking is decided --------------------------------

  /** True when {@code length} is held back or dropped rather than set on the response. */
  private boolean holdLength(long length) {
    if (!holdsLength) return false;
    if (!prepared) {
      heldLength = length;
      return true;
    }
    return relay == null || relay.dropContentLength();
  }

  private static boolean isContentLength(String name) {
    return "content-length".equalsIgnoreCase(name);
  }

  private static long parseLength(String value) {
    if (value == null) return -1;
    try {
      return Long.parseLong(value.trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  @Override
  public void setContentLength(int len) {
    if (!holdLength(len)) super.setContentLength(len);
  }

  @Override
  public void setContentLengthLong(long len) {
    if (!holdLength(len)) super.setContentLengthLong(len);
  }

  @Override
  public void setHeader(String name, String value) {
    if (isContentLength(name) && holdLength(parseLength(value))) return;
    String shown = value == null ? null : exchange.responseHeader(name, value);
    if (value != null && shown == null) return; // its name holds a credential
    super.setHeader(name, shown);
  }

  @Override
  public void addHeader(String name, String value) {
    if (isContentLength(name) && holdLength(parseLength(value))) return;
    String shown = value == null ? null : exchange.responseHeader(name, value);
    if (value != null && shown == null) return;
    super.addHeader(name, shown);
  }

  @Override
  public void setContentType(String type) {
    super.setContentType(type == null ? null : exchange.responseHeader("Content-Type", type));
  }

  @Override
  public void sendRedirect(String location) throws IOException {
    super.sendRedirect(exchange.responseHeader("Location", location));
  }

  @Override
  public void setIntHeader(String name, int value) {
    if (isContentLength(name) && holdLength(value)) return;
    super.setIntHeader(name, value);
  }

  @Override
  public void addIntHeader(String name, int value) {
    if (isContentLength(name) && holdLength(value)) return;
    super.addIntHeader(name, value);
  }

  @Override
  public void reset() {
    super.reset();
    if (!prepared) heldLength = -1;
  }

  @Override
  public void sendError(int sc, String msg) throws IOException {
    super.sendError(sc, msg == null ? null : exchange.responseHeader("", msg));
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
