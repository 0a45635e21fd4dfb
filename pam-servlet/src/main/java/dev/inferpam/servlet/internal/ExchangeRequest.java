package dev.inferpam.servlet.internal;

import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.Verdict;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.io.UnsupportedEncodingException;
import java.nio.charset.Charset;
import java.nio.charset.IllegalCharsetNameException;
import java.nio.charset.StandardCharsets;
import java.nio.charset.UnsupportedCharsetException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The request as the application sees it, with the engine's header edits applied
 * ({@link Forward#removeHeaders()}: those headers are invisible).
 *
 * <p>{@linkplain #allowed Allowed}: the body is replayed from the bytes the engine decided on
 * (the container's stream was consumed by the engine), and the caller's credential headers are
 * invisible. A body the engine decoded ({@code Content-Encoding} gzip or deflate) is replayed
 * decoded, without {@code Content-Encoding} and with {@code Content-Length} the decoded length.
 * When the response may be rewritten, {@code Accept-Encoding} is invisible too, so that neither
 * the application nor a server it forwards to compresses a body the engine must read. Async
 * processing started through this request gets an {@link AsyncContext} whose {@code complete()}
 * first writes the masker's held-back tail.
 *
 * <p>{@linkplain #held Held} (its body being read, or waiting for a reviewer): what an application
 * would see should the request reach it without the filter deciding it first (the filter not
 * mapped to {@code DispatcherType.ASYNC}): the caller's credential headers hidden, the body
 * unreadable.
 *
 * <p>Like a container request, it belongs to one request and is used by one thread at a time;
 * {@link #getInputStream()} and {@link #getReader()} exclude each other
 * ({@link IllegalStateException}).
 */
public final class ExchangeRequest extends HttpServletRequestWrapper {
  private static final String MISCONFIGURED =
      "inferpam: this request is held (its body being read, or for"
          + " review); map PamFilter to DispatcherType.ASYNC so that it is decided before the application sees it";

  /** The body to replay, or {@code null} when it must not be read (held). */
  private final byte[] body;

  private final Set<String> hidden;
  private final boolean lengthRewritten;
  private final ExchangeResponse response;
  private ReplayInputStream stream;
  private BufferedReader reader;
  private volatile ExchangeAsyncContext async;

  private ExchangeRequest(
      HttpServletRequest request, byte[] body, Set<String> removed, ExchangeResponse response) {
    super(request);
    this.body = body;
    Set<String> hide = new HashSet<>(removed);
    // A body the engine decoded keeps a Content-Length header, of the decoded length.
    this.lengthRewritten = hide.remove("content-length");
    this.hidden = Set.copyOf(hide);
    this.response = response;
  }

  /** The request of an {@code allowed} exchange; {@code response} is its wrapped response. */
  public static ExchangeRequest allowed(
      HttpServletRequest request, Verdict.Allowed allowed, ExchangeResponse response) {
    Forward forward = allowed.forward();
    return new ExchangeRequest(request, forward.body(), forward.removeHeaders(), response);
  }

  /** A request not decided yet: credentials hidden, the body unreadable. */
  public static HttpServletRequest held(HttpServletRequest request) {
    return new ExchangeRequest(request, null, Forward.CALLER_CREDENTIAL_HEADERS, null);
  }

  private boolean isHidden(String name) {
    return name != null && hidden.contains(name.toLowerCase(Locale.ROOT));
  }

  private boolean isRewrittenLength(String name) {
    return lengthRewritten
        && "content-length".equalsIgnoreCase(name)
        && super.getHeader(name) != null;
  }

  @Override
  public ServletInputStream getInputStream() {
    if (body == null) throw new IllegalStateException(MISCONFIGURED);
    if (reader != null) throw new IllegalStateException("getReader() was already called");
    if (stream == null) stream = new ReplayInputStream(body);
    return stream;
  }

  /**
   * A reader over the body in the request's character encoding; UTF-8 when the request names
   * none, because JSON, the body of every inference API, is UTF-8 (RFC 8259).
   */
  @Override
  public BufferedReader getReader() throws UnsupportedEncodingException {
    if (body == null) throw new IllegalStateException(MISCONFIGURED);
    if (stream != null) throw new IllegalStateException("getInputStream() was already called");
    if (reader == null) {
      reader = new BufferedReader(new InputStreamReader(new ByteArrayInputStream(body), charset()));
    }
    return reader;
  }

  private Charset charset() throws UnsupportedEncodingException {
    String name = getCharacterEncoding();
    if (name == null) return StandardCharsets.UTF_8;
    try {
      return Charset.forName(name);
    } catch (IllegalCharsetNameException | UnsupportedCharsetException e) {
      throw new UnsupportedEncodingException(name);
    }
  }

  @Override
  public int getContentLength() {
    return body == null ? super.getContentLength() : body.length;
  }

  @Override
  public long getContentLengthLong() {
    return body == null ? super.getContentLengthLong() : body.length;
  }

  @Override
  public String getHeader(String name) {
    if (isRewrittenLength(name)) return Integer.toString(body.length);
    return isHidden(name) ? null : super.getHeader(name);
  }

  @Override
  public Enumeration<String> getHeaders(String name) {
    if (isRewrittenLength(name))
      return Collections.enumeration(List.of(Integer.toString(body.length)));
    return isHidden(name) ? Collections.emptyEnumeration() : super.getHeaders(name);
  }

  @Override
  public Enumeration<String> getHeaderNames() {
    Enumeration<String> names = super.getHeaderNames();
    if (names == null) return Collections.emptyEnumeration();
    List<String> visible = new ArrayList<>();
    for (String name : Collections.list(names)) {
      if (!isHidden(name)) visible.add(name);
    }
    return Collections.enumeration(visible);
  }

  @Override
  public int getIntHeader(String name) {
    if (isRewrittenLength(name)) return body.length;
    return isHidden(name) ? -1 : super.getIntHeader(name);
  }

  @Override
  public long getDateHeader(String name) {
    return isHidden(name) ? -1 : super.getDateHeader(name);
  }

  /**
   * Starts async with these wrappers rather than the container's originals, so an application
   * that works through {@link AsyncContext#getRequest()} still sees the checked body without the
   * caller's credential, and its response is still reported.
   */
  @Override
  public AsyncContext startAsync() {
    if (response == null) return super.startAsync();
    return started(super.startAsync(this, response));
  }

  /** As the container does, with a context that finishes the masked body before completing. */
  @Override
  public AsyncContext startAsync(ServletRequest servletRequest, ServletResponse servletResponse) {
    if (response == null) return super.startAsync(servletRequest, servletResponse);
    return started(super.startAsync(servletRequest, servletResponse));
  }

  private AsyncContext started(AsyncContext context) {
    response.asyncStarted();
    async = new ExchangeAsyncContext(context, response);
    return async;
  }

  /** The current cycle's context, as this exchange's (whoever started it). */
  @Override
  public AsyncContext getAsyncContext() {
    AsyncContext current = super.getAsyncContext();
    if (response == null || current == null || current instanceof ExchangeAsyncContext) {
      return current;
    }
    ExchangeAsyncContext known = async;
    return known != null && known.wraps(current)
        ? known
        : new ExchangeAsyncContext(current, response);
  }
}
