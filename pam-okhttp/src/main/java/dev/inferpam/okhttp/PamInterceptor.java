package dev.inferpam.okhttp;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.Exchange;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.ResponseMasking;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import okhttp3.Call;
import okhttp3.Headers;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Protocol;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.Buffer;
import okio.BufferedSink;
import okio.BufferedSource;
import okio.ForwardingSource;
import okio.Okio;
import okio.Source;
import okio.Timeout;

/**
 * Client-side enforcement: an OkHttp <em>application</em> interceptor that asks a
 * {@link PamEngine} about every request.
 *
 * <p>On a denial it answers with a synthetic response (the policy's JSON error, status and
 * headers) without calling the server. A request that needs a reviewer's approval waits for it
 * first (see <b>Approval</b> below). On an allow it replaces the caller's credential
 * ({@code Authorization}, {@code X-Api-Key}) with the upstream credential, sends a body the
 * engine decoded ({@code Content-Encoding} gzip or deflate) decoded and without
 * {@code Content-Encoding}, and calls {@code proceed} exactly once; the response body streams through and is reported to the
 * exchange as it is read, which is recorded when the body is exhausted or closed (or, should the
 * caller drop the response without closing it, once the body is garbage-collected: recorded
 * {@code complete: false}; close responses, as OkHttp requires anyway).
 *
 * <p><b>Masking.</b> When the engine masks this caller's responses
 * ({@link Exchange#masksResponse()}), the request goes out without the caller's
 * {@code Accept-Encoding}, so OkHttp negotiates gzip itself and decompresses transparently, and
 * the body the caller reads is masked as it is read: each read returns as soon as the masker
 * releases something (it holds back at most {@code masking.max-hold-back} chars while a value
 * could still be completing, and the rest at the end of the body), so streams keep their pace
 * and no body is ever held whole. The masked response has no {@code Content-Length}. A response
 * that must be masked but still arrives encoded ({@code Content-Encoding} other than
 * {@code identity}, e.g. when the caller's {@code Range} header kept OkHttp from decompressing)
 * is answered with a synthetic 502 {@code masking_unavailable} instead; nothing of it reaches
 * the caller.
 *
 * <p><b>Credentials.</b> The upstream credential this exchange injected and the caller's own
 * token or key are replaced in every response header and body the caller reads
 * ({@link Exchange#responseHeader}, {@link Exchange#responseMasking()}), whether or not the
 * response is masked; for that, too, the caller's {@code Accept-Encoding} is not forwarded
 * ({@link Exchange#rewritesResponse()}). Replacing them keeps the body's length, so an
 * unmasked response keeps its {@code Content-Length}. Should the masker fail mid-body, the caller's read fails with an
 * {@link IOException} rather than get unmasked text.
 *
 * <p><b>Approval.</b> A request that matches an {@code approval} rule waits for a reviewer
 * ({@link Exchange#awaitingReview()}) <em>on the calling thread</em>: {@code execute()} (or the
 * dispatcher thread of an {@code enqueue}d call) blocks until the review is over, which the engine
 * bounds by {@code approval.timeout} (plus a short grace for an approval service that fails to
 * expire it). Nothing is sent upstream while it waits. Then the caller gets:
 * <ul>
 *   <li>approved: the upstream response, exactly as for a request allowed at once;</li>
 *   <li>rejected: a synthetic 403 {@code approval_rejected} naming the reviewer and their
 *       reason;</li>
 *   <li>no decision in time: a synthetic 403 {@code approval_expired};</li>
 *   <li>too many requests of this caller (or in all) waiting: a synthetic 429
 *       {@code approval_limit} with {@code Retry-After}, at once, without waiting;</li>
 *   <li>approval service failing: a synthetic 503 {@code approval_unavailable}.</li>
 * </ul>
 * The wait also ends when the call is cancelled ({@link Call#cancel()}, or OkHttp's
 * {@code callTimeout} passing, which cancels the call; noticed within about 50 ms) or the
 * waiting thread is interrupted: the request is then withdrawn from review (reviewers no longer
 * see it; recorded {@code expired}, reason {@code withdrawn...}, {@code complete: false}) and the
 * caller gets an {@link IOException} ({@code "Canceled"} as OkHttp throws for cancelled calls,
 * which OkHttp reports as an {@link InterruptedIOException} {@code "timeout"} when the call
 * timeout caused it), or an {@link InterruptedIOException} with the thread's interrupt flag set
 * again. An {@code enqueue}d call holds its place in the dispatcher's {@code maxRequests} and
 * {@code maxRequestsPerHost} while it waits; size those, and any {@code callTimeout}, with that
 * wait in mind.
 *
 * <p>Install it with {@link #install(OkHttpClient.Builder)}, which also turns off redirect
 * following: an application interceptor sees only the first hop, so a redirect from the server
 * would otherwise reach a path the policy never checked.
 *
 * <p>The interceptor runs inside the caller's process: it keeps static keys out of code and
 * gives audit and policy for honest callers, but cannot stop code that bypasses it.
 *
 * <p>Thread-safe; share one instance.
 */
public final class PamInterceptor implements Interceptor {
  private static final MediaType JSON = MediaType.get("application/json");
  /** How often a call waiting for approval looks whether it was cancelled (or timed out). */
  private static final long CANCEL_POLL_MILLIS = 50;

  private final PamEngine engine;
  private final Supplier<String> tokenSupplier;

  private PamInterceptor(PamEngine engine, Supplier<String> tokenSupplier) {
    this.engine = Objects.requireNonNull(engine, "engine");
    this.tokenSupplier = tokenSupplier;
  }

  /** An interceptor that identifies callers by the credential their requests carry. */
  public static PamInterceptor of(PamEngine engine) {
    return new PamInterceptor(engine, null);
  }

  /**
   * An interceptor that adds {@code Authorization: Bearer <token>} from {@code tokenSupplier}
   * to requests that carry no credential of their own (e.g. an OIDC token from a token cache).
   * A supplier that returns {@code null} or throws leaves the request without a credential,
   * which is then refused 401.
   */
  public static PamInterceptor withTokenSupplier(PamEngine engine, Supplier<String> tokenSupplier) {
    return new PamInterceptor(engine, Objects.requireNonNull(tokenSupplier, "tokenSupplier"));
  }

  /** Adds this interceptor to {@code builder} and disables redirect following. */
  public OkHttpClient.Builder install(OkHttpClient.Builder builder) {
    return builder.addInterceptor(this).followRedirects(false).followSslRedirects(false);
  }

  @Override
  public Response intercept(Chain chain) throws IOException {
    Request request = withCallerToken(chain.request());
    Exchange exchange = begin(request);
    if (exchange.awaitingReview()) awaitReview(chain.call(), exchange);

    if (!(exchange.decision() instanceof Decision.Allow)) {
      try {
        return synthetic(request, exchange.error());
      } finally {
        exchange.end(true);
      }
    }

    Request upstream = forUpstream(request, exchange);
    Response response;
    try {
      response = chain.proceed(upstream);
    } catch (IOException | RuntimeException e) {
      exchange.upstreamFailed();
      exchange.responseStarted(502, Map.of());
      exchange.end(false);
      throw e;
    }
    exchange.responseStarted(response.code(), response.headers().toMultimap());
    ErrorResponse refusal = exchange.responseRefusal();
    if (refusal != null) {
      // Encoded (or unmaskable) where it had to be masked: nothing of it reaches the caller.
      response.close();
      try {
        return synthetic(request, refusal);
      } finally {
        exchange.end(true);
      }
    }
    // The caller sees its own request, never the one carrying the upstream credential:
    // response.request() and the network/prior responses would otherwise hand it over. Nor does
    // it see a credential an upstream echoed in a header.
    Response.Builder shown = response.newBuilder().request(request)
        .networkResponse(null).priorResponse(null).cacheResponse(null)
        .headers(shownHeaders(response.headers(), exchange))
        .message(exchange.responseHeader("", response.message()));
    ResponseBody body = response.body();
    if (body == null) {
      exchange.end(true);
      return shown.build();
    }
    ResponseMasking masking = exchange.responseMasking();
    if (masking != null) {
      BufferedSource masked = Okio.buffer(new MaskingSource(body.source(), masking, exchange));
      if (!masking.changesLength()) {
        // Only credentials are replaced, which keeps the length.
        return shown.body(ResponseBody.create(masked, body.contentType(), body.contentLength())).build();
      }
      // Masking changes the length; the caller reads until the end instead.
      return shown.removeHeader("Content-Length")
          .body(ResponseBody.create(masked, body.contentType(), -1))
          .build();
    }
    BufferedSource tapped = Okio.buffer(new TapSource(body.source(), exchange));
    return shown.body(ResponseBody.create(tapped, body.contentType(), body.contentLength())).build();
  }

  /**
   * Blocks the calling thread until the review is over, then makes the decision final. Bounded by
   * the engine (the review is over within {@code approval.timeout} plus a grace), by cancellation
   * of the call (which OkHttp also does when its call timeout passes) and by interruption. A call
   * given up is withdrawn from review, its exchange ended incomplete, and an
   * {@link IOException} thrown; on any other failure the exchange is ended before it propagates.
   */
  private static void awaitReview(Call call, Exchange exchange) throws IOException {
    CompletableFuture<Void> reviewed = exchange.reviewed().toCompletableFuture();
    try {
      while (true) {
        // The call's canceled flag is the only signal OkHttp gives (no callback); look at it
        // between short timed waits.
        if (call.isCanceled()) {
          withdraw(exchange);
          throw new IOException("Canceled");
        }
        try {
          reviewed.get(CANCEL_POLL_MILLIS, TimeUnit.MILLISECONDS);
          break;
        } catch (TimeoutException e) {
          // Not over yet: look at the call again.
        } catch (ExecutionException e) {
          // reviewed() never fails; should it, settleReview below still ends the review.
          break;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      withdraw(exchange);
      InterruptedIOException interrupted = new InterruptedIOException("interrupted while waiting for approval");
      interrupted.initCause(e);
      throw interrupted;
    } catch (RuntimeException e) {
      exchange.end(false);
      throw e;
    }
    try {
      exchange.settleReview();
    } catch (RuntimeException e) {
      exchange.end(false);
      throw e;
    }
  }

  /** The caller stopped waiting: withdraws the review and ends the exchange incomplete. */
  private static void withdraw(Exchange exchange) {
    try {
      exchange.cancelReview();
      exchange.settleReview();
    } finally {
      exchange.end(false);
    }
  }

  private Request withCallerToken(Request request) {
    if (tokenSupplier == null || request.header("Authorization") != null || request.header("X-Api-Key") != null) {
      return request;
    }
    String token;
    try {
      token = tokenSupplier.get();
    } catch (RuntimeException e) {
      return request;
    }
    return token == null || token.isBlank() ? request
        : request.newBuilder().header("Authorization", "Bearer " + token).build();
  }

  private Exchange begin(Request request) throws IOException {
    Map<String, List<String>> headers = new LinkedHashMap<>(request.headers().toMultimap());
    RequestBody body = request.body();
    if (body != null && body.contentType() != null && request.header("Content-Type") == null) {
      headers.put("content-type", List.of(body.contentType().toString()));
    }
    RequestHead head = new RequestHead(request.method(), request.url().encodedPath(),
        request.url().encodedQuery(), headers, null);
    if (body == null) return engine.begin(head, null, 0);

    long limit = engine.maxBodyBytes();
    long length = body.contentLength();
    if (length > limit) return engine.begin(head, null, length);
    Buffer buffer = new Buffer();
    BufferedSink sink = Okio.buffer(new LimitedSink(buffer, limit + 1));
    try {
      body.writeTo(sink);
      sink.flush();
    } catch (LimitedSink.LimitReachedException e) {
      // The engine refuses a body it reads past the limit; it never sees more than limit + 1 bytes.
    }
    long size = buffer.size(); // over the limit when the sink stopped: refused without reading
    InputStream in = new ByteArrayInputStream(buffer.readByteArray());
    return engine.begin(head, in, size);
  }

  /** The response headers as {@link Exchange#responseHeader} lets them reach the caller. */
  private static Headers shownHeaders(Headers headers, Exchange exchange) {
    Headers.Builder shown = null;
    for (int i = 0; i < headers.size(); i++) {
      String name = headers.name(i);
      String value = headers.value(i);
      String kept = exchange.responseHeader(name, value);
      if (shown == null && kept == value) continue; // unchanged so far: nothing built
      if (shown == null) {
        shown = new Headers.Builder();
        for (int j = 0; j < i; j++) shown.addUnsafeNonAscii(headers.name(j), headers.value(j));
      }
      if (kept != null) shown.addUnsafeNonAscii(name, kept);
    }
    return shown == null ? headers : shown.build();
  }

  private static Request forUpstream(Request request, Exchange exchange) {
    Request.Builder b = request.newBuilder();
    for (String name : exchange.requestHeadersToRemove()) b.removeHeader(name);
    // Without it OkHttp asks for gzip itself and decompresses, so the engine reads plain text.
    if (exchange.rewritesResponse()) b.removeHeader("Accept-Encoding");
    Credential credential = exchange.upstreamCredential();
    if (credential != null) b.header(credential.header(), credential.value());
    RequestBody original = request.body();
    if (original != null) {
      b.method(request.method(), RequestBody.create(exchange.body(), original.contentType()));
    }
    return b.build();
  }

  private static Response synthetic(Request request, ErrorResponse error) {
    Headers.Builder headers = new Headers.Builder();
    error.headers().forEach(headers::add);
    return new Response.Builder()
        .request(request)
        .protocol(Protocol.HTTP_1_1)
        .code(error.status())
        .message("inferpam")
        .headers(headers.build())
        .body(ResponseBody.create(error.body(), JSON))
        .build();
  }

  /**
   * Reports the last {@code n} bytes of {@code sink} (just delivered) to the exchange, reading them
   * in place: no copy, and the buffer's segments stay unshared, so Okio can reuse them.
   */
  private static void reportLast(Buffer sink, long n, Exchange exchange) {
    try (Buffer.UnsafeCursor cursor = sink.readUnsafe(new Buffer.UnsafeCursor())) {
      long left = n;
      for (int readable = cursor.seek(sink.size() - n); left > 0 && readable > 0; readable = cursor.next()) {
        int take = (int) Math.min(readable, left);
        exchange.responseBytes(cursor.data, cursor.start, take);
        left -= take;
      }
    }
  }

  /** Reports every byte the caller reads, and ends the exchange at end of stream or close. */
  private static final class TapSource extends ForwardingSource {
    private final Exchange exchange;
    private final Ending ending;

    TapSource(Source delegate, Exchange exchange) {
      super(delegate);
      this.exchange = exchange;
      this.ending = Ending.watch(this, exchange);
    }

    @Override
    public long read(Buffer sink, long byteCount) throws IOException {
      long n;
      try {
        n = super.read(sink, byteCount);
      } catch (IOException e) {
        finish(false);
        throw e;
      }
      if (n == -1) {
        finish(true);
      } else {
        reportLast(sink, n, exchange);
      }
      return n;
    }

    @Override
    public void close() throws IOException {
      try {
        super.close();
      } finally {
        finish(false);
      }
    }

    private void finish(boolean complete) {
      ending.end(complete);
    }
  }

  /**
   * Ends an exchange once: at the end of the body, when the caller closes it, or, as a safety
   * net, when the caller dropped the response without doing either (the body became unreachable):
   * then the exchange is recorded incomplete and its recorder reservation is used, instead of
   * being held for good. Never references the body it watches, or the body would stay reachable.
   */
  static final class Ending {
    private static final java.lang.ref.Cleaner CLEANER = java.lang.ref.Cleaner.create();

    private final Exchange exchange;
    private final java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();

    private Ending(Exchange exchange) {
      this.exchange = exchange;
    }

    static Ending watch(Object body, Exchange exchange) {
      Ending ending = new Ending(exchange);
      CLEANER.register(body, ending::abandoned);
      return ending;
    }

    void end(boolean complete) {
      if (done.compareAndSet(false, true)) exchange.end(complete);
    }

    private void abandoned() {
      end(false);
    }
  }

  /**
   * The caller's view of a masked body: upstream bytes go through the {@link ResponseMasking} and
   * the caller reads what it releases, which is what is reported to the exchange. A read blocks
   * only until the masker releases something, never for the whole body. The exchange ends at end
   * of stream (after the held-back tail) or when the caller closes early (incomplete).
   */
  private static final class MaskingSource implements Source {
    private static final long CHUNK = 8192;
    /** What is masked at once of what arrived; about a few server-sent events. */
    private static final long SLICE = 1024;
    /**
     * What is scanned at once when only credentials are replaced: that scan holds back nothing
     * but a run that could still become a credential, so a larger slice delays no event.
     */
    private static final long SCRUB_SLICE = CHUNK;

    private final BufferedSource upstream;
    private final ResponseMasking masking;
    private final Exchange exchange;
    private final Buffer raw = new Buffer();
    private final Buffer released = new Buffer();
    private final Ending ending;
    private boolean upstreamEnded;
    private boolean failed;
    private final long slice;

    MaskingSource(BufferedSource upstream, ResponseMasking masking, Exchange exchange) {
      this.upstream = upstream;
      this.masking = masking;
      this.exchange = exchange;
      this.ending = Ending.watch(this, exchange);
      this.slice = masking.changesLength() ? SLICE : SCRUB_SLICE;
    }

    @Override
    public long read(Buffer sink, long byteCount) throws IOException {
      if (byteCount < 0) throw new IllegalArgumentException("byteCount < 0: " + byteCount);
      // After a failure, never a clean end: the caller must not take a cut-off body as whole.
      if (failed) throw new IOException("the response body broke off");
      try {
        while (released.size() == 0 && !upstreamEnded) fill();
      } catch (IOException | RuntimeException e) {
        failed = true;
        finish(false);
        throw e;
      }
      if (released.size() == 0) {
        finish(true);
        return -1;
      }
      long n = Math.min(byteCount, released.size());
      sink.write(released, n);
      reportLast(sink, n, exchange);
      return n;
    }

    /**
     * Reads what the upstream has (blocking only while it has nothing) and masks it a slice at a
     * time, stopping as soon as something is released: when many events arrive together, the
     * first reaches the caller without waiting for the masking of all the others.
     */
    private void fill() throws IOException {
      if (raw.size() == 0) {
        long n = upstream.read(raw, CHUNK);
        if (n == -1) {
          upstreamEnded = true;
          released.write(masking.finish());
          return;
        }
      }
      while (raw.size() > 0 && released.size() == 0) {
        byte[] in = raw.readByteArray(Math.min(slice, raw.size()));
        released.write(masking.push(in, 0, in.length));
      }
    }

    @Override
    public Timeout timeout() {
      return upstream.timeout();
    }

    @Override
    public void close() throws IOException {
      try {
        upstream.close();
      } finally {
        finish(false);
      }
    }

    private void finish(boolean complete) {
      ending.end(complete);
    }
  }
}
