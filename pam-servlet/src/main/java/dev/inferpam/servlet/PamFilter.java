package dev.inferpam.servlet;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.servlet.internal.ExchangeRequest;
import dev.inferpam.servlet.internal.ExchangeResponse;
import dev.inferpam.servlet.internal.RequestHeads;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Server-side enforcement: a servlet filter that puts a {@link PamEngine} in front of an
 * inference server or gateway.
 *
 * <p>Per HTTP request the filter hands the request's head (method, raw path, query, headers, peer
 * address) to {@link PamEngine#beginHead}, then its body, and applies the {@link Verdict} the
 * engine answers. It holds no policy of its own:
 * <ul>
 *   <li><b>Head first</b>: path and identity are decided from the head. A request refused there
 *       (400 {@code bad_path}, 401 {@code unauthenticated}, 413 for a declared length over
 *       {@code request.max-body}) is answered without a byte of its body read, with
 *       {@code Connection: close} when it has a body, so that a caller without a credential
 *       cannot hold a thread or the connection by sending its body slowly.</li>
 *   <li><b>Body</b>: an identified caller's body is read without holding a thread where the
 *       container allows async (the filter and servlets marked async supported): async processing
 *       starts, a {@link ReadListener} takes the body as it arrives, and the request is dispatched
 *       again ({@code DispatcherType.ASYNC}) to this filter once it ended or was refused. The
 *       container's async timeout is {@code request.body-timeout}; a body that does not end within
 *       it, or arrives slower than {@code request.min-body-rate} after a 5 s grace, gets 408
 *       {@code body_timeout}; one over {@code request.max-body} 413; a broken one 400
 *       {@code bad_request}; each with {@code Connection: close} and recorded. Without async the
 *       body is read on the request thread, bounded by the same checks after every read and by the
 *       container's own read timeout (Jetty: its idle timeout). A request without a body (HTTP/1
 *       without {@code Content-Length} or {@code Transfer-Encoding}, or a length of 0) is decided
 *       at once.</li>
 *   <li><b>Denied</b>: the engine's error is written (status, headers such as
 *       {@code WWW-Authenticate}, and the JSON body
 *       {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":...}}}); the rest
 *       of the chain is not called.</li>
 *   <li><b>Allowed</b>: the chain is called with a request whose body is replayed from the bytes
 *       the engine read and checked (so what the application sees is exactly what was decided on),
 *       and whose caller credential headers ({@code Authorization}, {@code X-Api-Key},
 *       {@code Proxy-Authorization}) are hidden, so the application never sees the caller's token.
 *       A body the engine decoded ({@code Content-Encoding} gzip or deflate) is replayed decoded,
 *       without {@code Content-Encoding}. Forwarding headers ({@code Forwarded},
 *       {@code X-Forwarded-*}) are left as they came: the filter cannot tell whether a trusted
 *       proxy set them; an application that forwards requests sets its own (as the gateway does).
 *       The {@link Verdict.Allowed} is stored in request attribute {@link #EXCHANGE_ATTRIBUTE}; a
 *       forwarding servlet takes what to send upstream (the credential to inject, the headers a
 *       proxy forwards) from its {@link Verdict.Allowed#forward()}. The response is reported to the engine as it is
 *       written; {@code flush()} goes straight to the client, so server-sent events keep their
 *       timing and no response is ever buffered whole.</li>
 *   <li><b>Masked</b> (when the engine masks this principal's responses): the application does
 *       not see {@code Accept-Encoding},
 *       so it (or the server it forwards to) answers uncompressed; text bodies are masked as they
 *       are written (SSE, NDJSON and JSON keep their framing; binary types pass untouched), a
 *       {@code Content-Length} the application sets is dropped for a masked body, and the
 *       masker's held-back tail is written when the response ends, whichever way: the stream or
 *       writer is closed, the application returns, it calls {@code AsyncContext.complete()} (also
 *       through the context of an {@code AsyncEvent}, as in an {@code onTimeout}), or the async
 *       dispatch it asked for with {@code AsyncContext.dispatch()} returns (how Spring MVC ends
 *       every asynchronous answer). The client and the record get the masked bytes. A body that must be masked but is written with a {@code Content-Encoding} other
 *       than {@code identity} is refused: the client gets 502 {@code masking_unavailable}
 *       (recorded as the response), and the application's further writes fail with an
 *       {@link IOException}, which the filter does not pass on.</li>
 *   <li><b>Held for review</b> (the request matches an {@code approval} rule,
 *       {@link Verdict.Held}): nothing is passed on while it waits. With async
 *       supported, the filter starts async processing and returns, so the wait holds no container
 *       thread; when the review ends (decided, expired, withdrawn) the request is dispatched again
 *       ({@code DispatcherType.ASYNC}) and this filter carries on with its final verdict on that
 *       container thread: approved requests go on as allowed ones, refused ones
 *       get their error (403 {@code approval_rejected} / {@code approval_expired}, 429
 *       {@code approval_limit} with {@code Retry-After}, 503 {@code approval_unavailable}).
 *       Without async support the request thread waits (bounded by the engine). The container's
 *       async timeout is set to twice {@code approval.timeout} plus 30 s, a backstop the engine's
 *       own bound normally makes unnecessary; should it or an async error end the wait, the
 *       request is withdrawn from review and recorded incomplete. A client that disconnects while
 *       it waits is not noticed (containers report a gone client only when they read or write):
 *       its review stays until decided or expired, and an approved request is then forwarded and
 *       its answer lost.</li>
 *   <li>Every exchange is ended exactly once, after the chain returns (or, when the application
 *       started servlet async processing, when the container completes the request, at an async
 *       error, or when an exception leaves the application's async dispatch), so every request,
 *       allowed or denied, has a record.</li>
 * </ul>
 *
 * <p><b>Threads.</b> The filter starts no thread. A body is read, and a review waited for, with
 * servlet async (no thread at all while a client sends slowly or a reviewer decides); a response
 * is masked and reported on the thread that writes it, as it writes. It holds no monitor
 * ({@code synchronized}) while the application writes or a review is awaited, so on a container
 * whose requests run on virtual threads (Java 21+; Jetty 12:
 * {@code QueuedThreadPool.setVirtualThreadsExecutor(VirtualThreads.getDefaultVirtualThreadsExecutor())})
 * a streaming response holds a virtual thread, not a platform one, and never pins its carrier.
 *
 * <p><b>What users must configure.</b>
 * <ul>
 *   <li>Map the filter to {@code /*} for {@code DispatcherType.REQUEST} and
 *       {@code DispatcherType.ASYNC}, with async supported on it and on the servlets behind it,
 *       before any other filter or servlet that could act on the request ({@code ASYNC} is how a
 *       request comes back to the filter after its body was read or its review ended; dispatched
 *       to the application without the filter it has an unreadable body, the application fails,
 *       nothing is forwarded, and the filter logs an error). Mapping it to a narrower pattern lets paths the
 *       container routes elsewhere by its own normalisation go unchecked. Requests that already
 *       went through the filter (forwards, includes, async and error dispatches, when the filter
 *       is mapped to them too) pass through without a second decision.</li>
 *   <li>The path checked is {@link HttpServletRequest#getRequestURI()}: raw, undecoded, and
 *       including the context path. Deploy at the root context, or set the policy's
 *       {@code request.base-path} to the context path.</li>
 *   <li>The filter refuses every ambiguous path itself (400 {@code bad_path}), but the container
 *       sees the request first. Jetty 12's default {@code UriCompliance.DEFAULT} (RFC 3986)
 *       already answers 400 with its own error page, before any filter, for encoded {@code /}
 *       ({@code %2F}), encoded {@code %} ({@code %25}), encoded or parameterised dot segments
 *       ({@code %2e}, {@code ..;}), {@code //}, and {@code \} (raw or {@code %5C}); and Jetty refuses
 *       {@code %00} and broken escapes ({@code %zz}, a trailing {@code %}) in every compliance
 *       mode. Those refusals are safe but are not recorded by inferpam
 *       and do not carry the JSON error body. To have inferpam answer and record them, relax the
 *       connector ({@code HttpConfiguration.setUriCompliance(UriCompliance.UNSAFE)}) <em>and</em>
 *       let the servlet layer accept such URIs
 *       ({@code ServletHandler.setDecodeAmbiguousURIs(true)}) — only with this filter mapped to
 *       {@code /*} in front of everything, because it is then the only thing refusing them. Plain
 *       dot segments ({@code /x/../api/pull}, {@code /api/./pull}), path parameters
 *       ({@code /api/pull;x=1}) and a trailing {@code /} are legal URIs to Jetty in every mode: Jetty routes them by its
 *       normalised path but reports the raw path in {@code getRequestURI()}, where this filter
 *       refuses them.</li>
 *   <li>The container bounds the length of the request line and headers (Jetty:
 *       {@code HttpConfiguration.setRequestHeaderSize}, 8 KiB by default: raise it to 32 KiB to
 *       admit OIDC tokens up to the engine's 16 KiB limit) and how long a head may take (the
 *       inferpam gateway closes connections whose head is not complete within
 *       {@code request.head-timeout}); the engine bounds the body ({@code request.max-body},
 *       {@code request.body-timeout}, {@code request.min-body-rate}).</li>
 *   <li>Servlet async processing: register the filter with {@code asyncSupported=true} (the
 *       container refuses {@code startAsync()} otherwise) and for {@code DispatcherType.ASYNC}. An
 *       application that calls {@code startAsync()} gets an {@code AsyncContext} holding the
 *       filter's request and response wrappers. When it ends the cycle with {@code dispatch()},
 *       the dispatch comes back through the filter as the same exchange (request attribute
 *       {@link #EXCHANGE_ATTRIBUTE}), not as a new one, and the response ends when that dispatch
 *       returns without starting async again. The exchange ends when the container completes the
 *       request ({@code AsyncListener.onComplete}): complete when the client got the whole body;
 *       incomplete after an async error, an exception in a dispatch, or a timeout the application
 *       did not answer with {@code complete()} or {@code dispatch()} (then the container ends
 *       the response with an error, and what the masker held back is not written). An exception
 *       leaving the async dispatch ends it at once, since the container need not complete the
 *       cycle then (Jetty 12 aborts a committed response without calling the listeners). A dispatch
 *       that bypasses the filter (not mapped to {@code ASYNC}) cannot have its tail written: it is
 *       recorded incomplete and logged as an error.</li>
 *   <li>An exception the application throws is answered by the container's error handling. Jetty's
 *       default error page shows no stack trace but does show the exception's message; configure
 *       the container's error handler if messages may be sensitive.</li>
 *   <li>Form and multipart parameters of the body are not available through
 *       {@code getParameter}: the body was read by the filter and is replayed only as a stream;
 *       query parameters are unaffected.</li>
 * </ul>
 *
 * <p><b>Bad input.</b> Malformed, oversized, ambiguous or unauthenticated requests are answered by
 * the engine's decision and never reach the application. Should the engine itself fail (a bug),
 * the filter fails closed with a 500 JSON error of code {@code internal_error}; no stack trace is
 * ever written to the client. An {@link IOException} from the chain (typically the client going
 * away) ends the exchange as incomplete and is rethrown; other exceptions end it as incomplete and
 * propagate, checked ones other than {@link ServletException} wrapped once in a
 * {@link ServletException}.
 *
 * <p><b>Thread-safety:</b> immutable and thread-safe; one instance serves all requests
 * concurrently. {@link #init} and {@link #destroy} do nothing: the engine's life cycle belongs to
 * whoever built it (close it after the server stops).
 */
public final class PamFilter implements Filter {
  private static final Logger log = LoggerFactory.getLogger(PamFilter.class);

  /** The request attribute holding the allowed request's {@link Verdict.Allowed}. */
  public static final String EXCHANGE_ATTRIBUTE = "dev.inferpam.exchange";

  /** The request attribute holding a request whose body is read without a thread, until its async dispatch. */
  static final String BODY_ATTRIBUTE = "dev.inferpam.body";

  /** The request attribute holding a request that waits for a reviewer, until its async dispatch. */
  static final String REVIEW_ATTRIBUTE = "dev.inferpam.review";

  /**
   * The request attribute holding the allowed exchange and its response wrapper, so that a later
   * dispatch of the same request (the application's {@code AsyncContext.dispatch()}) is known as
   * the same exchange, and its response is finished where it ends.
   */
  static final String ALLOWED_ATTRIBUTE = "dev.inferpam.allowed";

  // Written only when the engine itself throws, so there is no exchange (and no request id).
  private static final byte[] INTERNAL_ERROR_BODY =
      ErrorResponse.of(500, "internal_error", "the request could not be checked", null).body();

  private final PamEngine engine;

  /**
   * @param engine the engine deciding every request; shared, not closed by the filter
   * @throws NullPointerException when {@code engine} is null
   */
  public PamFilter(PamEngine engine) {
    this.engine = Objects.requireNonNull(engine, "engine");
  }

  @Override
  public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
      throws IOException, ServletException {
    if (!(req instanceof HttpServletRequest request)
        || !(res instanceof HttpServletResponse response)) {
      chain.doFilter(req, res);
      return;
    }
    if (request.getAttribute(REVIEW_ATTRIBUTE) instanceof HeldReview abandoned
        && !abandoned.canTake()) {
      // A dispatch (error or async) of a held request whose wait the container already ended:
      // its exchange is ended and recorded; answer what the record says, if anything still can be.
      request.removeAttribute(REVIEW_ATTRIBUTE);
      if (abandoned.withdrawn != null) writeError(abandoned.withdrawn, abandoned.response);
      return;
    }
    if (request.getAttribute(REVIEW_ATTRIBUTE) instanceof HeldReview held && held.take()) {
      // The async dispatch of a request that waited for a reviewer: its verdict is final (the
      // dispatch follows the result); go on, here, on a container thread, as for any request.
      request.removeAttribute(REVIEW_ATTRIBUTE);
      decided(finalVerdict(held.held), held.request, held.response, chain);
      return;
    }
    if (request.getAttribute(BODY_ATTRIBUTE) instanceof BodyRead read && read.take()) {
      // The async dispatch after the body was read (or refused): go on with its verdict.
      request.removeAttribute(BODY_ATTRIBUTE);
      carryOn(read.verdict, read.request, read.response, chain);
      return;
    }
    if (request.getAttribute(ALLOWED_ATTRIBUTE) instanceof AllowedExchange allowed) {
      // A dispatch of a request this filter already decided and let through: the same exchange.
      again(allowed, request, req, res, chain);
      return;
    }
    if (request.getAttribute(EXCHANGE_ATTRIBUTE) instanceof Verdict.Allowed) {
      // Decided by another instance of this filter (mapped twice): it ends the exchange.
      chain.doFilter(req, res);
      return;
    }

    Verdict verdict;
    try {
      // Path and identity first, from the head: a refused request is answered without reading
      // a byte of its body (the container then closes the connection).
      PendingRequest pending = engine.beginHead(head(request), request.getContentLengthLong());
      verdict = pending.decided();
      if (verdict == null) {
        if (!hasBody(request)) {
          verdict = pending.read(null);
        } else if (bodyArrived(request)) {
          // The whole body came with the head (the usual small JSON request): reading it here
          // never waits, and saves an async cycle.
          verdict = readBlocking(pending, request);
        } else if (request.isAsyncSupported() && readAsync(pending, request, response)) {
          return;
        } else {
          verdict = readBlocking(pending, request);
        }
      }
    } catch (RuntimeException e) {
      // The engine promises not to throw for bad input, so this is a bug (or another filter took
      // the body stream first): fail closed, and keep the details in the log, not in the answer.
      // One line (the stack trace at debug): a caller must not be able to flood the log.
      log.error("inferpam: request could not be checked, refusing it: {}", e.getClass().getName());
      log.debug("inferpam: request check failure", e);
      writeInternalError(response);
      return;
    }
    carryOn(verdict, request, response, chain);
  }

  /** Goes on with a request whose body was read: waits for a review if it needs one, then {@link #decided}. */
  private void carryOn(
      Verdict verdict, HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (verdict instanceof Verdict.Held held) {
      Verdict now = finalVerdict(held);
      if (now != null) {
        verdict = now; // decided at once (a grant, a bound reached): no wait
      } else if (request.isAsyncSupported() && holdForReview(held, request, response)) {
        return;
      } else {
        verdict = awaitReview(held);
        if (verdict == null) return;
      }
    }
    decided(verdict, request, response, chain);
  }

  /**
   * Whether the request may carry a body: HTTP/1 without {@code Content-Length} and
   * {@code Transfer-Encoding} has none (RFC 9112 section 6.3), so it is decided at once without
   * an async cycle; with other protocols a body of unknown length may follow.
   */
  private static boolean hasBody(HttpServletRequest request) {
    long length = request.getContentLengthLong();
    if (length >= 0) return length > 0;
    String protocol = request.getProtocol();
    return request.getHeader("Transfer-Encoding") != null
        || protocol == null
        || !protocol.startsWith("HTTP/1.");
  }

  /** The largest body read on the request thread when it has all arrived with the head. */
  private static final long ARRIVED_BODY_MAX = 64 * 1024;

  /**
   * Whether every byte of the body ({@code Content-Length}, at most {@link #ARRIVED_BODY_MAX})
   * is already in the container's buffer, so that reading it cannot wait for the client.
   */
  private static boolean bodyArrived(HttpServletRequest request) {
    long length = request.getContentLengthLong();
    if (length <= 0 || length > ARRIVED_BODY_MAX) return false;
    try {
      return request.getInputStream().available() >= length;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /**
   * Reads the body on the request thread, for a container or a filter in front that does not
   * allow async: bounded by the engine's checks after every read and by the container's own read
   * timeout.
   */
  private static Verdict readBlocking(PendingRequest pending, HttpServletRequest request) {
    jakarta.servlet.ServletInputStream in;
    try {
      in = request.getInputStream();
    } catch (IOException e) {
      return pending.failed();
    }
    return pending.read(in);
  }

  /**
   * Reads the body without holding a thread: async processing starts, a {@link ReadListener}
   * takes the body as it arrives, and the filter returns. The container's async timeout is what
   * is left of {@code request.body-timeout}. When the body ended, was refused, timed out or
   * failed, the request is dispatched again ({@link DispatcherType#ASYNC}) to this filter, which
   * goes on with the verdict on a container thread, as for a request held for review.
   *
   * @return false when async could not start after all (a wrapper in front refused it): the
   *     caller then reads on the request thread
   */
  private static boolean readAsync(
      PendingRequest pending, HttpServletRequest request, HttpServletResponse response) {
    BodyRead read = new BodyRead(pending, request, response);
    try {
      request.setAttribute(BODY_ATTRIBUTE, read);
      read.async = request.startAsync(ExchangeRequest.held(request), response);
    } catch (IllegalStateException e) {
      request.removeAttribute(BODY_ATTRIBUTE);
      log.debug(
          "inferpam: async body read refused ({}), reading on the request thread", e.getMessage());
      return false;
    }
    read.async.setTimeout(pending.timeLeft().toMillis());
    read.async.addListener(read);
    jakarta.servlet.ServletInputStream in;
    try {
      in = request.getInputStream();
      in.setReadListener(read.listener(in));
    } catch (IOException | IllegalStateException e) {
      read.done(pending.failed());
    }
    return true;
  }

  /**
   * One body being read without a thread, taken by exactly one async dispatch of this filter.
   * Its listener methods run on container threads; the first outcome (end, refusal, timeout,
   * failure) makes the verdict and dispatches.
   */
  private static final class BodyRead implements AsyncListener {
    final PendingRequest pending;
    final HttpServletRequest request;
    final HttpServletResponse response;
    AsyncContext async;
    volatile Verdict verdict;
    private final java.util.concurrent.atomic.AtomicBoolean taken =
        new java.util.concurrent.atomic.AtomicBoolean();

    BodyRead(PendingRequest pending, HttpServletRequest request, HttpServletResponse response) {
      this.pending = pending;
      this.request = request;
      this.response = response;
    }

    /** True once, for the dispatch that goes on with the verdict, once there is one. */
    boolean take() {
      return verdict != null && taken.compareAndSet(false, true);
    }

    ReadListener listener(jakarta.servlet.ServletInputStream in) {
      return new ReadListener() {
        private final byte[] buffer = new byte[8192];

        @Override
        public void onDataAvailable() throws IOException {
          while (in.isReady()) {
            int n = in.read(buffer);
            if (n < 0) return; // onAllDataRead follows
            if (!pending.accept(buffer, 0, n)) {
              // Refused (too large, too slow): read no more; the answer closes the connection.
              done(pending.finish());
              return;
            }
          }
        }

        @Override
        public void onAllDataRead() {
          done(pending.finish());
        }

        @Override
        public void onError(Throwable t) {
          done(pending.failed());
        }
      };
    }

    /** Hands the verdict (when this call made it) to a dispatch of the filter. */
    void done(Verdict made) {
      if (made == null) return; // another outcome came first
      verdict = made;
      try {
        async.dispatch();
      } catch (IllegalStateException e) {
        // The async cycle is over already (the client went away): nothing to answer.
        if (taken.compareAndSet(false, true)) abandon(made);
      }
    }

    @Override
    public void onTimeout(AsyncEvent event) {
      done(pending.timedOut());
    }

    @Override
    public void onError(AsyncEvent event) {
      done(pending.failed());
    }

    @Override
    public void onComplete(AsyncEvent event) {
      Verdict made = verdict;
      if (made == null) {
        // The cycle ended before any outcome of the read: end the exchange as a failed read.
        made = pending.failed();
        if (made != null && taken.compareAndSet(false, true)) abandon(made);
      } else if (taken.compareAndSet(false, true)) {
        log.error(
            "inferpam: exchange {}: the request was dispatched without PamFilter after its body was read; map"
                + " the filter to DispatcherType.ASYNC too. The request was not forwarded.",
            made.id());
        abandon(made);
      }
    }

    @Override
    public void onStartAsync(AsyncEvent event) {
      // Not re-registered: a new async cycle (a review) belongs to the exchange's next step.
    }
  }

  /** Ends, incomplete, an exchange nobody can answer any more; a held one is withdrawn from review. */
  private static void abandon(Verdict verdict) {
    if (verdict instanceof Verdict.Held held) {
      held.cancel();
    } else if (verdict instanceof Verdict.Denied denied) {
      denied.end(false);
    } else if (verdict instanceof Verdict.Allowed allowed) {
      allowed.end(false);
    }
  }

  /** Goes on with a final verdict: the denial is written, or the chain called. */
  private void decided(
      Verdict verdict, HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    if (verdict instanceof Verdict.Denied denied) {
      deny(denied, response, denied.bodyLeftUnread() && hasBody(request));
      return;
    }
    Verdict.Allowed exchange = (Verdict.Allowed) verdict;
    ExchangeResponse wrappedResponse = new ExchangeResponse(response, exchange);
    ExchangeRequest wrappedRequest = ExchangeRequest.allowed(request, exchange, wrappedResponse);
    wrappedRequest.setAttribute(EXCHANGE_ATTRIBUTE, exchange);
    AllowedExchange allowed = new AllowedExchange(exchange, wrappedResponse);
    wrappedRequest.setAttribute(ALLOWED_ATTRIBUTE, allowed);
    boolean complete = false;
    boolean endHere = true;
    try {
      chain.doFilter(wrappedRequest, wrappedResponse);
      if (request.isAsyncStarted()) {
        endHere = !endWhenAsyncEnds(request.getAsyncContext(), allowed);
      }
      // The masker's held-back tail, or the refusal of a response that wrote nothing.
      if (endHere) wrappedResponse.finish();
      complete = true;
    } catch (IOException | ServletException | RuntimeException e) {
      if (!wrappedResponse.refused()) throw e;
      // The response was refused (it could not be masked) and its error was written: what the
      // application throws is the output refused after it, and the client has its complete answer.
      log.debug(
          "inferpam: exchange {}: application stopped after its response was refused: {}",
          exchange.id(),
          e.getClass().getName());
      complete = true;
    } catch (Error e) {
      throw e;
    } catch (Exception e) {
      // Only reachable through a sneaky throw of a checked exception.
      throw new ServletException(e);
    } finally {
      if (endHere) {
        // An exception the container has not answered yet becomes its 500.
        if (complete || response.isCommitted()) wrappedResponse.reportStarted();
        else wrappedResponse.reportStarted(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
        exchange.end(complete && !wrappedResponse.deliveryFailed());
      }
    }
  }

  /**
   * A later pass of an allowed request through the filter. For an async dispatch (the application
   * called {@code AsyncContext.dispatch()}: Spring MVC ends every async answer so), the response
   * ends when this dispatch returns, unless the application starts async again: the masker's
   * held-back tail is written here, while the response is still open; the exchange itself ends
   * when the container completes the cycle ({@link EndOnAsyncEnd}), or here when an exception
   * leaves this dispatch (see {@link #endOnFailedDispatch}). Forwards and includes pass through:
   * the response ends with the dispatch that made them.
   */
  private static void again(
      AllowedExchange allowed,
      HttpServletRequest request,
      ServletRequest req,
      ServletResponse res,
      FilterChain chain)
      throws IOException, ServletException {
    if (request.getDispatcherType() != DispatcherType.ASYNC) {
      chain.doFilter(req, res);
      return;
    }
    ExchangeResponse response = allowed.response;
    response.dispatched();
    try {
      chain.doFilter(req, res);
    } catch (IOException | ServletException | RuntimeException | Error e) {
      // The container answers it (an error page, or an aborted response): not a complete answer,
      // unless it is the application stopping after its response was refused.
      if (!response.refused()) allowed.failed = true;
      endOnFailedDispatch(allowed, request);
      throw e;
    }
    if (request.isAsyncStarted()) return;
    try {
      response.finish();
    } catch (IOException | RuntimeException | Error e) {
      // The tail could not be written (the client went away, the masker failed).
      allowed.failed = true;
      endOnFailedDispatch(allowed, request);
      throw e;
    }
  }

  /**
   * Ends the exchange when an exception leaves its async dispatch and the application did not
   * start async again. The container answers the exception, but need not tell the async
   * listeners: Jetty 12 aborts a committed response without calling {@code onComplete} or
   * {@code onError}, so the exchange would never end and never be recorded. Should the container
   * complete the cycle after all, {@link EndOnAsyncEnd} finds the exchange ended (the end is
   * idempotent).
   */
  private static void endOnFailedDispatch(AllowedExchange allowed, HttpServletRequest request) {
    if (request.isAsyncStarted()) return; // a new cycle's listener ends it
    allowed.end();
  }

  /**
   * Waits for the review without a thread: async processing starts, the filter returns, and when
   * the review is over the request is dispatched again ({@link DispatcherType#ASYNC}) to this
   * filter, which carries on with the final verdict on a container thread. Until then the
   * application cannot act on it: should the dispatch reach the application without this filter
   * (not mapped to {@code ASYNC}), it gets a request whose body cannot be read. The container's
   * async timeout is the engine's {@link Verdict.Held#timeout()}.
   *
   * @return false when async could not start after all (a wrapper in front refused it): the
   *     caller then waits on the request thread
   */
  private static boolean holdForReview(
      Verdict.Held verdict, HttpServletRequest request, HttpServletResponse response) {
    HeldReview held = new HeldReview(verdict, request, response);
    AsyncContext async;
    try {
      request.setAttribute(REVIEW_ATTRIBUTE, held);
      async = request.startAsync(ExchangeRequest.held(request), response);
    } catch (IllegalStateException e) {
      request.removeAttribute(REVIEW_ATTRIBUTE);
      log.debug(
          "inferpam: exchange {}: async wait refused ({}), waiting on the request thread",
          verdict.id(),
          e.getMessage());
      return false;
    }
    async.setTimeout(verdict.timeout().toMillis());
    async.addListener(new WaitListener(held));
    // Made final on a container thread (never the reviewer's), then back to this filter.
    verdict
        .result(async::start)
        .thenRun(
            () -> {
              try {
                async.dispatch();
              } catch (IllegalStateException e) {
                // The async cycle is over already (timed out, or the client went away): nothing to
                // answer.
                log.debug(
                    "inferpam: exchange {}: review ended after the async cycle: {}",
                    verdict.id(),
                    e.getMessage());
              }
            });
    return true;
  }

  /**
   * Waits for the review on the request thread (the container or a filter in front does not allow
   * async), bounded by the engine; an interrupt withdraws the request.
   *
   * @return the final verdict, or {@code null} when the wait was interrupted and the exchange is ended
   */
  private static Verdict awaitReview(Verdict.Held held) {
    try {
      Verdict verdict = held.await(held.timeout());
      return verdict != null ? verdict : held.cancel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      held.cancel();
      return null;
    }
  }

  /** The final verdict when the review is over (made final on this thread), else {@code null}. */
  private static Verdict finalVerdict(Verdict.Held held) {
    try {
      return held.await(java.time.Duration.ZERO);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /** The one request held for review, taken by exactly one async dispatch of this filter. */
  private static final class HeldReview {
    final Verdict.Held held;
    final HttpServletRequest request;
    final HttpServletResponse response;

    /** The denial a wait the container gave up on ended with; answered should a dispatch still come. */
    volatile Verdict.Denied withdrawn;

    private final java.util.concurrent.atomic.AtomicBoolean taken =
        new java.util.concurrent.atomic.AtomicBoolean();

    HeldReview(Verdict.Held held, HttpServletRequest request, HttpServletResponse response) {
      this.held = held;
      this.request = request;
      this.response = response;
    }

    /** True once, for the dispatch that goes on with the request; false when it was taken or abandoned. */
    boolean take() {
      return taken.compareAndSet(false, true);
    }

    boolean canTake() {
      return !taken.get();
    }
  }

  /**
   * Ends a wait the container gives up on (its async timeout, an async error such as the server
   * closing the connection): the request is withdrawn from review and recorded as incomplete. Also notices
   * when the dispatch after the review never reached this filter.
   */
  private static final class WaitListener implements AsyncListener {
    private final HeldReview held;

    WaitListener(HeldReview held) {
      this.held = held;
    }

    private void abandon() {
      if (!held.take()) return;
      held.withdrawn = held.held.cancel();
    }

    @Override
    public void onComplete(AsyncEvent event) {
      if (held.take()) {
        log.error(
            "inferpam: exchange {}: the request held for review was dispatched without PamFilter; map the"
                + " filter to DispatcherType.ASYNC too. The request was not forwarded.",
            held.held.id());
        held.held.cancel();
      }
    }

    @Override
    public void onTimeout(AsyncEvent event) {
      abandon();
    }

    @Override
    public void onError(AsyncEvent event) {
      abandon();
    }

    @Override
    public void onStartAsync(AsyncEvent event) {
      // Not re-registered: a new async cycle belongs to the application, after the review.
    }
  }

  /** The request as received: the raw path, never one the container decoded or normalised. */
  private static RequestHead head(HttpServletRequest request) {
    return RequestHeads.of(request);
  }

  /**
   * Writes the denial; with {@code close}, also {@code Connection: close}, so that the container
   * ends the connection after the answer instead of waiting for the rest of a body that is not read.
   */
  private static void deny(Verdict.Denied denied, HttpServletResponse response, boolean close)
      throws IOException {
    if (close) response.setHeader("Connection", "close");
    boolean complete = false;
    try {
      ErrorResponse error = denied.error();
      response.setStatus(error.status());
      error.headers().forEach(response::setHeader);
      response.setContentLength(error.body().length);
      response.getOutputStream().write(error.body());
      complete = true;
    } finally {
      // The engine already captured the error it produced for the record; only the end is ours.
      denied.end(complete);
    }
  }

  /** Writes the error of an ended denial when the response can still take it. */
  private static void writeError(Verdict.Denied denied, HttpServletResponse response) {
    ErrorResponse error = denied.error();
    if (response.isCommitted()) return;
    try {
      response.resetBuffer();
      response.setStatus(error.status());
      error.headers().forEach(response::setHeader);
      response.setContentType("application/json");
      response.setContentLength(error.body().length);
      response.getOutputStream().write(error.body());
    } catch (IOException | RuntimeException e) {
      log.debug(
          "inferpam: exchange {}: error could not be written: {}",
          denied.id(),
          e.getClass().getName());
    }
  }

  private static void writeInternalError(HttpServletResponse response) throws IOException {
    if (response.isCommitted()) return;
    response.resetBuffer();
    response.setStatus(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
    response.setContentType("application/json");
    response.setContentLength(INTERNAL_ERROR_BODY.length);
    response.getOutputStream().write(INTERNAL_ERROR_BODY);
  }

  /**
   * Moves the end of the exchange to the end of the async cycle.
   *
   * @return false when no listener could be added (the cycle is already over), so the caller ends
   *     the exchange itself
   */
  private static boolean endWhenAsyncEnds(AsyncContext async, AllowedExchange allowed) {
    try {
      async.addListener(new EndOnAsyncEnd(allowed));
      return true;
    } catch (IllegalStateException e) {
      return false;
    }
  }

  /** An allowed exchange and its response wrapper, for every pass of its request through the filter. */
  private static final class AllowedExchange {
    final Verdict.Allowed exchange;
    final ExchangeResponse response;

    /**
     * An async dispatch of the application failed, or the tail could not be written after it: the
     * container answers in its place.
     */
    volatile boolean failed;

    AllowedExchange(Verdict.Allowed exchange, ExchangeResponse response) {
      this.exchange = exchange;
      this.response = response;
    }

    /**
     * Ends the exchange after the application's async processing: complete when the client got
     * the whole body (the masker's tail written, nothing failed) and the application ended it;
     * a failed dispatch or an unanswered timeout is reported as the container's 500 if nothing
     * was sent yet. Idempotent.
     */
    void end() {
      boolean complete =
          !failed
              && !response.deliveryFailed()
              && !response.timeoutUnanswered()
              && response.bodyComplete();
      if (failed || response.timeoutUnanswered()) {
        response.reportStarted(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
      } else {
        response.reportStarted();
      }
      exchange.end(complete);
    }
  }

  /**
   * Ends the exchange when the application's async processing is over, which is when the container
   * completes the request: after {@code complete()}, after the return of the last async dispatch,
   * or after a timeout or error nobody answered. It is complete when the client got the whole body
   * (the masker's tail written, nothing failed) and the application ended it: a timeout the
   * application did not answer with {@code complete()} or a dispatch, an async error, a failed
   * dispatch, or a dispatch that never reached the filter make it incomplete. An error ends it at
   * once (the end is idempotent). Re-registers itself when the application restarts async, which
   * drops listeners.
   */
  private static final class EndOnAsyncEnd implements AsyncListener {
    private final AllowedExchange allowed;

    EndOnAsyncEnd(AllowedExchange allowed) {
      this.allowed = allowed;
    }

    @Override
    public void onComplete(AsyncEvent event) {
      ExchangeResponse response = allowed.response;
      if (response.dispatchMissed() && !response.bodyComplete()) {
        log.error(
            "inferpam: exchange {}: the application's async dispatch ran without PamFilter, so the"
                + " end of the masked response was not written; map the filter to"
                + " DispatcherType.ASYNC too.",
            allowed.exchange.id());
      }
      allowed.end();
    }

    @Override
    public void onError(AsyncEvent event) {
      allowed.response.reportStarted(HttpServletResponse.SC_INTERNAL_SERVER_ERROR);
      allowed.exchange.end(false);
    }

    @Override
    public void onTimeout(AsyncEvent event) {
      // Not the end: the application's own listeners may answer it (write, then complete or
      // dispatch). Whether they did is known on completion.
      allowed.response.asyncTimedOut();
    }

    @Override
    public void onStartAsync(AsyncEvent event) {
      AsyncContext next = event.getAsyncContext();
      if (next != null) next.addListener(this);
    }
  }
}
