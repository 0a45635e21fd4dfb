package dev.inferpam.okhttp;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
 * {@code Content-Encoding}, and calls {@code proceed} exactly once; the response body streams
 * through and is reported to the engine as it is read, which is recorded when the body is exhausted or closed (or, should the
 * caller drop the response without closing it, once the body is garbage-collected: recorded
 * {@code complete: false}; close responses, as OkHttp requires anyway).
 *
 * <p><b>Masking.</b> When the engine masks this caller's responses, the request goes out without
 * the caller's
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
 * token or key are replaced in every response header and body the caller reads, whether or not
 * the response is masked; for that, too, the caller's {@code Accept-Encoding} is not forwarded.
 * Replacing them keeps the body's length, so an unmasked response keeps its
 * {@code Content-Length}. Should the masker fail mid-body, the caller's read fails with an
 * {@link IOException} rather than get unmasked text.
 *
 * <p><b>Approval.</b> A request that matches an {@code approval} rule waits for a reviewer
 * ({@link Verdict.Held}) <em>on the calling thread</em>: {@code execute()} (or the
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
 * {@code callTimeout} passing, which cancels the call; OkHttp tells an interceptor of neither, so
 * the waiting thread looks every 50 ms, parked in between) or the waiting thread is interrupted:
 * the request is then withdrawn from review (reviewers no longer see it; recorded
 * {@code expired}, reason {@code withdrawn...}, {@code complete: false}) and the caller gets an
 * {@link IOException} ({@code "Canceled"} as OkHttp throws for cancelled calls, which OkHttp
 * reports as an {@link InterruptedIOException} {@code "timeout"} when the call timeout caused
 * it), or an {@link InterruptedIOException} with the thread's interrupt flag set again. An
 * {@code enqueue}d call holds its place in the dispatcher's {@code maxRequests} and
 * {@code maxRequestsPerHost} while it waits; size those, and any {@code callTimeout}, with that
 * wait in mind.
 *
 * <p><b>Threads.</b> The interceptor starts no thread for a call: a call decides, waits for a
 * review and forwards on the thread that runs it ({@code execute()}'s caller, or the dispatcher's
 * thread of an {@code enqueue}d call), and a response body is masked and reported on the thread
 * that reads it, as it reads. Nothing in it holds a monitor ({@code synchronized}) while it waits
 * or reads, so on virtual threads (Java 21+) neither a wait for review nor a streamed body pins
 * its carrier: calls made from virtual threads, or enqueued on
 * {@code new Dispatcher(Executors.newVirtualThreadPerTaskExecutor())} (with {@code maxRequests}
 * and {@code maxRequestsPerHost} raised), cost no platform thread while they wait or stream. Its
 * one thread of its own is a daemon shared by the JVM ({@code inferpam-okhttp-body-cleaner}),
 * which records bodies dropped without being closed.
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
  private static final Duration CANCEL_POLL = Duration.ofMillis(50);

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
    Verdict verdict = begin(request);
    if (verdict instanceof Verdict.Held held) verdict = await(chain.call(), held);
    if (verdict instanceof Verdict.Denied denied) {
      try {
        return synthetic(request, denied.error());
      } finally {
        denied.end(true);
      }
    }
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;

    Request upstream = forUpstream(request, allowed.forward());
    Response response;
    try {
      response = chain.proceed(upstream);
    } catch (IOException | RuntimeException e) {
      allowed.upstreamFailed();
      allowed.end(false);
      throw e;
    }
    if (response.priorResponse() != null) {
      // The client followed a redirect (redirects left on, or a client built by an SDK that
      // cannot turn them off): the hop that answered was never decided on. Nothing of it
      // reaches the caller.
      response.close();
      allowed.upstreamFailed();
      try {
        return synthetic(
            request,
            allowed.error(
                502,
                "upstream_redirect",
                "the upstream answered with a redirect, which inferpam does not follow;"
                    + " turn redirect following off in the client"));
      } finally {
        allowed.end(true);
      }
    }
    ResponsePlan plan = allowed.respond(response.code(), response.headers().toMultimap());
    if (plan instanceof ResponsePlan.Refused refused) {
      // Encoded (or unmaskable) where it had to be masked: nothing of it reaches the caller.
      response.close();
      try {
        return synthetic(request, refused.error());
      } finally {
        allowed.end(true);
      }
    }
    ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
    // The caller sees its own request, never the one carrying the upstream credential:
    // response.request() and the network/prior responses would otherwise hand it over. Nor does
    // it see a credential an upstream echoed in a header.
    Response.Builder shown =
        response
            .newBuilder()
            .request(request)
            .networkResponse(null)
            .priorResponse(null)
            .cacheResponse(null)
            .headers(shownHeaders(response.headers(), relay))
            .message(relay.header("", response.message()));
    ResponseBody body = response.body();
    if (body == null) {
      allowed.end(true);
      return shown.build();
    }
    ResponseMasking masking = relay.masking();
    if (masking != null) {
      BufferedSource masked =
          Okio.buffer(new MaskingSource(body.source(), masking, relay, allowed));
      if (!relay.dropContentLength()) {
        // Only credentials are replaced, which keeps the length.
        return shown
            .body(ResponseBody.create(masked, body.contentType(), body.contentLength()))
            .build();
      }
      // Masking changes the length; the caller reads until the end instead.
      return shown
          .removeHeader("Content-Length")
          .body(ResponseBody.create(masked, body.contentType(), -1))
          .build();
    }
    BufferedSource tapped =
        Okio.buffer(new TapSource(body.source(), body.contentLength(), relay, allowed));
    return shown
        .body(ResponseBody.create(tapped, body.contentType(), body.contentLength()))
        .build();
  }

  /**
   * Blocks the calling thread until the review is over and returns the final verdict. Bounded by
   * the engine (the review is over within {@code approval.timeout} plus a grace), by cancellation
   * of the call (which OkHttp also does when its call timeout passes) and by interruption. A call
   * given up is withdrawn from review (its exchange ended incomplete) and an {@link IOException}
   * thrown.
   */
  private static Verdict await(Call call, Verdict.Held held) throws IOException {
    try {
      while (true) {
        // The call's canceled flag is the only signal OkHttp gives (no callback to an
        // interceptor); look at it between short timed waits. A wait parks (a virtual thread
        // unmounts) and holds no lock: nothing spins, nothing pins.
        if (call.isCanceled()) {
          held.cancel();
          throw new IOException("Canceled");
        }
        Verdict verdict = held.await(CANCEL_POLL);
        if (verdict != null) return verdict;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      held.cancel();
      InterruptedIOException interrupted =
          new InterruptedIOException("interrupted while waiting for approval");
      interrupted.initCause(e);
      throw interrupted;
    }
  }

  private Request withCallerToken(Request request) {
    if (tokenSupplier == null) return request;
    for (String name : Forward.CALLER_CREDENTIAL_HEADERS) {
      if (request.header(name) != null) return request; // the caller brought its own
    }
    String token;
    try {
      token = tokenSupplier.get();
    } catch (RuntimeException e) {
      return request;
    }
    return token == null || token.isBlank()
        ? request
        : request.newBuilder().header("Authorization", "Bearer " + token).build();
  }

  private Verdict begin(Request request) throws IOException {
    Map<String, List<String>> headers = new LinkedHashMap<>(request.headers().toMultimap());
    RequestBody body = request.body();
    if (body != null && body.contentType() != null && request.header("Content-Type") == null) {
      headers.put("content-type", List.of(body.contentType().toString()));
    }
    RequestHead head =
        new RequestHead(
            request.method(),
            request.url().encodedPath(),
            request.url().encodedQuery(),
            headers,
            null);
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

  /** The response headers as the plan lets them reach the caller. */
  private static Headers shownHeaders(Headers headers, ResponsePlan.Relay relay) {
    Headers.Builder shown = null;
    for (int i = 0; i < headers.size(); i++) {
      String name = headers.name(i);
      String value = headers.value(i);
      String kept = relay.header(name, value);
      if (shown == null && kept == value) continue; // unchanged so far: nothing built
      if (shown == null) {
        shown = new Headers.Builder();
        for (int j = 0; j < i; j++) shown.addUnsafeNonAscii(headers.name(j), headers.value(j));
      }
      if (kept != null) shown.addUnsafeNonAscii(name, kept);
    }
    return shown == null ? headers : shown.build();
  }

  /**
   * The request with the engine's edits: without an {@code Accept-Encoding} the engine removes,
   * OkHttp asks for gzip itself and decompresses, so the engine reads plain text.
   */
  private static Request forUpstream(Request request, Forward forward) {
    Request.Builder b = request.newBuilder();
    for (String name : forward.removeHeaders()) b.removeHeader(name);
    forward.setHeaders().forEach(b::header);
    RequestBody original = request.body();
    if (original != null) {
      b.method(request.method(), RequestBody.create(forward.body(), original.contentType()));
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
   * Reports the last {@code n} bytes of {@code sink} (just delivered), reading them in place: no
   * copy, and the buffer's segments stay unshared, so Okio can reuse them.
   */
  private static void reportLast(Buffer sink, long n, ResponsePlan.Relay relay) {
    try (Buffer.UnsafeCursor cursor = sink.readUnsafe(new Buffer.UnsafeCursor())) {
      long left = n;
      for (int readable = cursor.seek(sink.size() - n);
          left > 0 && readable > 0;
          readable = cursor.next()) {
        int take = (int) Math.min(readable, left);
        relay.delivered(cursor.data, cursor.start, take);
        left -= take;
      }
    }
  }

  /** Reports every byte the caller reads, and ends the exchange at end of stream or close. */
  private static final class TapSource extends ForwardingSource {
    private final ResponsePlan.Relay relay;
    private final Ending ending;

    /** The body's length when the response gave one, else -1; and what the caller has read. */
    private final long length;

    private long read;

    TapSource(Source delegate, long length, ResponsePlan.Relay relay, Verdict.Allowed allowed) {
      super(delegate);
      this.length = length;
      this.relay = relay;
      this.ending = Ending.watch(this, allowed);
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
        read += n;
        reportLast(sink, n, relay);
      }
      return n;
    }

    /**
     * Complete when the caller read the whole body its length announced (a JSON reader stops at
     * the end of the document without reading the end of the body), incomplete otherwise.
     */
    @Override
    public void close() throws IOException {
      try {
        super.close();
      } finally {
        finish(length >= 0 && read == length);
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
   *
   * <p>The safety net is the interceptor's one thread: a daemon named {@link #CLEANER_THREAD}, one
   * per JVM (started with the first body), idle until a body is collected unclosed. No call holds
   * it.
   */
  static final class Ending {
    static final String CLEANER_THREAD = "inferpam-okhttp-body-cleaner";

    private static final java.lang.ref.Cleaner CLEANER =
        java.lang.ref.Cleaner.create(task -> new Thread(task, CLEANER_THREAD));

    private final Verdict.Allowed allowed;
    private final java.util.concurrent.atomic.AtomicBoolean done =
        new java.util.concurrent.atomic.AtomicBoolean();

    private Ending(Verdict.Allowed allowed) {
      this.allowed = allowed;
    }

    static Ending watch(Object body, Verdict.Allowed allowed) {
      Ending ending = new Ending(allowed);
      CLEANER.register(body, ending::abandoned);
      return ending;
    }

    void end(boolean complete) {
      if (done.compareAndSet(false, true)) allowed.end(complete);
    }

    private void abandoned() {
      end(false);
    }
  }

  /**
   * The caller's view of a masked body: upstream bytes go through the {@link ResponseMasking} and
   * the caller reads what it releases, which is what is reported as delivered. A read blocks
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
    private final ResponsePlan.Relay relay;
    private final Buffer raw = new Buffer();
    private final Buffer released = new Buffer();
    private final Ending ending;
    private boolean upstreamEnded;
    private boolean failed;
    private final long slice;

    MaskingSource(
        BufferedSource upstream,
        ResponseMasking masking,
        ResponsePlan.Relay relay,
        Verdict.Allowed allowed) {
      this.upstream = upstream;
      this.masking = masking;
      this.relay = relay;
      this.ending = Ending.watch(this, allowed);
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
      reportLast(sink, n, relay);
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

    /**
     * Complete when the caller read all the upstream sent (a JSON reader stops at the end of the
     * document without reading the end of the body), incomplete otherwise.
     */
    @Override
    public void close() throws IOException {
      try {
        upstream.close();
      } finally {
        finish(upstreamEnded && !failed && released.size() == 0);
      }
    }

    private void finish(boolean complete) {
      ending.end(complete);
    }
  }
}
