package dev.inferpam.httpclient;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.AdapterThreads;
import dev.inferpam.core.adapter.BodyCapture;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.IOException;
import java.net.Authenticator;
import java.net.CookieHandler;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;

/**
 * Client-side enforcement for the JDK's {@link HttpClient}: a client that asks a {@link
 * PamEngine} about every {@code send} and {@code sendAsync} of the client it wraps.
 *
 * <pre>{@code
 * HttpClient client = PamHttpClient.wrap(HttpClient.newHttpClient(), engine);
 * HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
 * }</pre>
 *
 * <ul>
 *   <li>The request body (its {@code BodyPublisher}) is read first and decided on; exactly those
 *       bytes are sent, with the caller's credential replaced by the policy's upstream credential.
 *   <li><b>Denied</b>: the caller gets a response with the policy's status, headers and JSON error,
 *       through its own body handler; nothing is sent.
 *   <li><b>Allowed</b>: the response body goes through the masking before the caller's body
 *       handler sees it, a piece at a time as it arrives (streams stay streams: {@code ofLines},
 *       {@code ofInputStream}, {@code fromLineSubscriber}…); the response's {@code request()} is
 *       the caller's, never the one carrying the upstream credential. The exchange is recorded
 *       when the body completes, fails or is cancelled.
 *   <li><b>Held for review</b>: {@code send} waits on its thread (an interrupt withdraws the
 *       request); {@code sendAsync} waits without a thread.
 * </ul>
 *
 * <p>Redirects: an interceptor sees the first hop only, so the wrapped client should not follow
 * redirects ({@code followRedirects(Redirect.NEVER)}, the JDK's default). WebSockets are not
 * governed: {@link #newWebSocketBuilder()} is refused.
 *
 * <p>The client runs in the caller's process: it keeps static keys out of code and gives audit
 * and policy for honest callers, but cannot stop code that bypasses it. Thread-safe, as the
 * client it wraps.
 */
public final class PamHttpClient extends HttpClient {
  private final HttpClient delegate;
  private final PamEngine engine;
  private final Executor waiting;

  private PamHttpClient(HttpClient delegate, PamEngine engine, Executor waiting) {
    this.delegate = Objects.requireNonNull(delegate, "delegate");
    this.engine = Objects.requireNonNull(engine, "engine");
    this.waiting = Objects.requireNonNull(waiting, "waiting");
  }

  /** {@code delegate} governed by {@code engine}. */
  public static HttpClient wrap(HttpClient delegate, PamEngine engine) {
    return new PamHttpClient(delegate, engine, AdapterThreads.forWaiting());
  }

  // ------------------------------------------------------------------ the wrapped configuration

  @Override
  public Optional<CookieHandler> cookieHandler() {
    return delegate.cookieHandler();
  }

  @Override
  public Optional<Duration> connectTimeout() {
    return delegate.connectTimeout();
  }

  @Override
  public Redirect followRedirects() {
    return delegate.followRedirects();
  }

  @Override
  public Optional<ProxySelector> proxy() {
    return delegate.proxy();
  }

  @Override
  public SSLContext sslContext() {
    return delegate.sslContext();
  }

  @Override
  public SSLParameters sslParameters() {
    return delegate.sslParameters();
  }

  @Override
  public Optional<Authenticator> authenticator() {
    return delegate.authenticator();
  }

  @Override
  public Version version() {
    return delegate.version();
  }

  @Override
  public Optional<Executor> executor() {
    return delegate.executor();
  }

  /** Refused: WebSockets are not governed. */
  @Override
  public java.net.http.WebSocket.Builder newWebSocketBuilder() {
    throw new UnsupportedOperationException("inferpam does not govern WebSockets");
  }

  // ---------------------------------------------------------------------------------- sending

  @Override
  public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
      throws IOException, InterruptedException {
    BodyCapture body;
    try {
      body = RequestBodies.read(request, engine.maxBodyBytes()).get();
    } catch (ExecutionException e) {
      throw new IOException("the request body could not be read", e.getCause());
    }
    Verdict verdict = decide(request, body);
    if (verdict instanceof Verdict.Held held) verdict = AdapterThreads.awaitReview(held);
    if (verdict instanceof Verdict.Denied denied) return denied(request, denied, handler);
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    Governed<T> governed = new Governed<>(allowed, handler);
    HttpResponse<T> response;
    try {
      response = delegate.send(upstream(request, allowed.forward()), governed);
    } catch (IOException | RuntimeException e) {
      governed.failed();
      throw e;
    } catch (InterruptedException e) {
      governed.failed();
      throw e;
    }
    return governed.shown(request, response);
  }

  @Override
  public <T> CompletableFuture<HttpResponse<T>> sendAsync(
      HttpRequest request, HttpResponse.BodyHandler<T> handler) {
    return RequestBodies.read(request, engine.maxBodyBytes())
        .thenComposeAsync(
            body ->
                engine.decidesWithoutWaiting()
                    ? CompletableFuture.completedFuture(decide(request, body))
                    : CompletableFuture.supplyAsync(() -> decide(request, body), waiting),
            Runnable::run)
        .thenCompose(
            v ->
                v instanceof Verdict.Held held
                    ? held.result(waiting).toCompletableFuture()
                    : CompletableFuture.completedFuture(v))
        .thenCompose(
            v -> {
              if (v instanceof Verdict.Denied denied) {
                return CompletableFuture.completedFuture(denied(request, denied, handler));
              }
              Verdict.Allowed allowed = (Verdict.Allowed) v;
              Governed<T> governed = new Governed<>(allowed, handler);
              return delegate
                  .sendAsync(upstream(request, allowed.forward()), governed)
                  .handle(
                      (response, failure) -> {
                        if (failure != null) {
                          governed.failed();
                          throw failure instanceof CompletionException c
                              ? c
                              : new CompletionException(failure);
                        }
                        return governed.shown(request, response);
                      });
            });
  }

  /** Not supported: server push is not governed. The push handler is ignored. */
  @Override
  public <T> CompletableFuture<HttpResponse<T>> sendAsync(
      HttpRequest request,
      HttpResponse.BodyHandler<T> handler,
      HttpResponse.PushPromiseHandler<T> pushPromiseHandler) {
    return sendAsync(request, handler);
  }

  // ------------------------------------------------------------------------------- the pieces

  private Verdict decide(HttpRequest request, BodyCapture body) {
    URI uri = request.uri();
    Map<String, List<String>> headers = new LinkedHashMap<>(request.headers().map());
    return engine.begin(RequestHead.of(request.method(), uri, headers), body.in(), body.size());
  }

  /** The request with the engine's edits and exactly the body it decided on. */
  private static HttpRequest upstream(HttpRequest request, Forward forward) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(
            request,
            (name, value) ->
                !forward.removeHeaders().contains(name.toLowerCase(Locale.ROOT))
                    && forward.setHeaders().keySet().stream().noneMatch(name::equalsIgnoreCase));
    forward.setHeaders().forEach(b::setHeader);
    boolean hasBody = request.bodyPublisher().map(p -> p.contentLength() != 0).orElse(false);
    b.method(
        request.method(),
        hasBody || forward.body().length > 0
            ? HttpRequest.BodyPublishers.ofByteArray(forward.body())
            : HttpRequest.BodyPublishers.noBody());
    return b.build();
  }

  private static <T> HttpResponse<T> denied(
      HttpRequest request, Verdict.Denied denied, HttpResponse.BodyHandler<T> handler) {
    try {
      return synthetic(request, denied.error(), handler);
    } finally {
      denied.end(true);
    }
  }

  /** The engine's answer in place of the server's, through the caller's own body handler. */
  static <T> HttpResponse<T> synthetic(
      HttpRequest request, ErrorResponse error, HttpResponse.BodyHandler<T> handler) {
    Map<String, List<String>> map = new LinkedHashMap<>();
    error.headers().forEach((k, v) -> map.put(k, List.of(v)));
    HttpHeaders headers = HttpHeaders.of(map, (k, v) -> true);
    HttpResponse.ResponseInfo info = info(error.status(), headers, HttpClient.Version.HTTP_1_1);
    HttpResponse.BodySubscriber<T> subscriber = handler.apply(info);
    Bodies.feed(subscriber, error.body());
    T body = subscriber.getBody().toCompletableFuture().join();
    return new Shown<>(request, error.status(), headers, body, null);
  }

  static HttpResponse.ResponseInfo info(int status, HttpHeaders headers, HttpClient.Version v) {
    return new HttpResponse.ResponseInfo() {
      @Override
      public int statusCode() {
        return status;
      }

      @Override
      public HttpHeaders headers() {
        return headers;
      }

      @Override
      public HttpClient.Version version() {
        return v;
      }
    };
  }

  /**
   * The caller's body handler behind the plan: told the response head, it reports it to the
   * engine and hands the caller's subscriber the head as the caller may see it, and the body
   * through the masking ({@link MaskingSubscriber}); a response refused by the plan reaches the
   * caller as the plan's error instead.
   */
  private static final class Governed<T> implements HttpResponse.BodyHandler<T> {
    private final Verdict.Allowed allowed;
    private final HttpResponse.BodyHandler<T> handler;
    private volatile ErrorResponse refused;
    private volatile HttpHeaders shownHeaders;

    Governed(Verdict.Allowed allowed, HttpResponse.BodyHandler<T> handler) {
      this.allowed = allowed;
      this.handler = handler;
    }

    @Override
    public HttpResponse.BodySubscriber<T> apply(HttpResponse.ResponseInfo info) {
      ResponsePlan plan;
      try {
        plan = allowed.respond(info.statusCode(), info.headers().map());
      } catch (RuntimeException e) {
        allowed.end(false);
        throw e;
      }
      if (plan instanceof ResponsePlan.Refused r) {
        // encoded where it had to be masked: nothing of it reaches the caller
        refused = r.error();
        Map<String, List<String>> map = new LinkedHashMap<>();
        r.error().headers().forEach((k, v) -> map.put(k, List.of(v)));
        HttpHeaders headers = HttpHeaders.of(map, (k, v) -> true);
        shownHeaders = headers;
        HttpResponse.BodySubscriber<T> caller =
            handler.apply(info(r.error().status(), headers, info.version()));
        allowed.end(true);
        return Bodies.replacing(caller, r.error().body());
      }
      ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
      HttpHeaders headers = shown(info.headers(), relay);
      shownHeaders = headers;
      HttpResponse.BodySubscriber<T> caller =
          handler.apply(info(info.statusCode(), headers, info.version()));
      return new MaskingSubscriber<>(caller, relay, allowed::end);
    }

    /** No response came: the upstream failed. */
    void failed() {
      if (shownHeaders == null) allowed.upstreamFailed();
      allowed.end(false);
    }

    HttpResponse<T> shown(HttpRequest callerRequest, HttpResponse<T> response) {
      ErrorResponse r = refused;
      return new Shown<>(
          callerRequest,
          r != null ? r.status() : response.statusCode(),
          shownHeaders != null ? shownHeaders : response.headers(),
          response.body(),
          response);
    }

    private static HttpHeaders shown(HttpHeaders headers, ResponsePlan.Relay relay) {
      return HttpHeaders.of(relay.shownHeaders(headers.map()), (k, v) -> true);
    }
  }

  /** A response as the caller sees it: its own request, the shown head, no upstream request. */
  private static final class Shown<T> implements HttpResponse<T> {
    private final HttpRequest request;
    private final int status;
    private final HttpHeaders headers;
    private final T body;
    private final HttpResponse<T> upstream;

    Shown(HttpRequest request, int status, HttpHeaders headers, T body, HttpResponse<T> upstream) {
      this.request = request;
      this.status = status;
      this.headers = headers;
      this.body = body;
      this.upstream = upstream;
    }

    @Override
    public int statusCode() {
      return status;
    }

    @Override
    public HttpRequest request() {
      return request;
    }

    @Override
    public Optional<HttpResponse<T>> previousResponse() {
      return Optional.empty();
    }

    @Override
    public HttpHeaders headers() {
      return headers;
    }

    @Override
    public T body() {
      return body;
    }

    @Override
    public Optional<SSLSession> sslSession() {
      return upstream == null ? Optional.empty() : upstream.sslSession();
    }

    @Override
    public URI uri() {
      return request.uri();
    }

    @Override
    public HttpClient.Version version() {
      return upstream == null ? HttpClient.Version.HTTP_1_1 : upstream.version();
    }

    @Override
    public String toString() {
      return "(" + request.method() + " " + request.uri() + ") " + status;
    }
  }

  /** Every byte buffer's bytes, in order. */
  static byte[] bytes(List<ByteBuffer> buffers) {
    int n = 0;
    for (ByteBuffer b : buffers) n += b.remaining();
    byte[] out = new byte[n];
    int at = 0;
    for (ByteBuffer b : buffers) {
      int len = b.remaining();
      b.get(out, at, len);
      at += len;
    }
    return out;
  }
}
