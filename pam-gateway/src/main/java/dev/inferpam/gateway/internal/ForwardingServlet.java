package dev.inferpam.gateway.internal;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.ConnectionPool;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.Buffer;
import okio.BufferedSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries a request that {@link PamFilter} allowed on to the upstream model server, and streams
 * the answer back. Meant to sit behind {@link PamFilter} (as {@link dev.inferpam.gateway.Gateway} installs it); it
 * holds no policy logic.
 *
 * <p>What is forwarded is what the engine says ({@link Verdict.Allowed#forward()}): the method,
 * the raw path (after the upstream URL's own path, if any), the raw query, exactly the body the
 * engine decided on ({@link Forward#body()}, decoded when it came compressed), and only the
 * request headers of {@link Forward#proxyHeaders()}: those on the engine's forward allow-list
 * ({@code Content-Type}, {@code Accept}, {@code Accept-Language}, {@code User-Agent},
 * {@code Inference-Header-Content-Length}, {@code Anthropic-Version}, {@code Anthropic-Beta},
 * {@code OpenAI-Beta}, tracing headers) and those the policy adds ({@code request.forward-headers}),
 * unless the engine removes them or {@code Connection} names them, and the upstream credential:
 * cookies, {@code OpenAI-Organization}, {@code OpenAI-Project}, Azure {@code api-key}, method
 * overrides, the caller's credentials, {@code Forwarded} and anything else stay behind.
 * {@code X-Forwarded-For}, {@code X-Forwarded-Proto} and {@code X-Forwarded-Host} are set from
 * what the gateway saw (peer address, scheme, {@code Host}); the OkHttp client sets
 * {@code Host}, {@code Content-Length} and {@code Accept-Encoding} (see below) itself.
 *
 * <p>What comes back: the status and headers (minus hop-by-hop ones, {@code Content-Length},
 * {@code Server} and {@code Date}, which the gateway sets itself; {@link PamFilter}'s response
 * replaces the exchange's credentials in each value and leaves out one whose name holds a
 * credential), and the body copied in chunks of at most {@value #CHUNK_SIZE} bytes
 * with a {@code flush()} after each read, so that server-sent events reach the client as the
 * model produces them; the body is never buffered whole. {@code Content-Length} is dropped
 * because the filter may mask the body and so change its length. The caller's
 * {@code Accept-Encoding} is not forwarded (and {@link PamFilter} hides it anyway when the
 * response is masked): the OkHttp client then asks for gzip itself and decompresses
 * transparently, so the filter masks and records plain text, never compressed bytes. An upstream
 * that answers in another encoding nobody asked for ({@code br}, {@code deflate}, ...) has its
 * {@code Content-Encoding} relayed; when that response must be masked, the filter refuses it
 * (502 {@code masking_unavailable}) and the first write here fails, which cancels the upstream
 * call.
 *
 * <p>Failures: when the upstream cannot be reached or does not answer within the timeouts,
 * the client gets 502 with the gateway's JSON error, code {@code upstream_unavailable}, and
 * nothing about the upstream's address or credential. When the upstream breaks off
 * mid-stream, an {@link IOException} is thrown so that the container aborts the response
 * (the client sees a truncated stream, never a clean end) and the filter records the
 * exchange as incomplete. When the client goes away mid-stream, the upstream call is
 * cancelled at the next write; a client that leaves while the model has not yet answered is
 * noticed when the first bytes come back.
 *
 * <p>Fail closed: a request that did not pass {@link PamFilter} (no {@link Verdict.Allowed} in
 * request attribute {@link PamFilter#EXCHANGE_ATTRIBUTE}) is refused with 500
 * {@code internal_error} and never forwarded.
 *
 * <p><b>Thread-safety:</b> one instance serves all requests concurrently; the OkHttp client
 * is shared.
 */
public final class ForwardingServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private static final Logger log = LoggerFactory.getLogger(ForwardingServlet.class);

  /** Time to open a connection to the upstream. */
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);

  /**
   * Longest silence while reading from the upstream: waiting for the response headers, or
   * between two reads of the body. Generous, because a model may think for minutes before a
   * long non-streamed answer; a stream that keeps producing tokens is never cut by it.
   */
  public static final Duration DEFAULT_READ_TIMEOUT = Duration.ofMinutes(5);

  /** Longest stall while sending the request to the upstream. */
  public static final Duration DEFAULT_WRITE_TIMEOUT = Duration.ofSeconds(60);

  /** Idle upstream connections kept for reuse, at most (each costs a socket, no thread). */
  public static final int MAX_IDLE_CONNECTIONS = 1024;

  /** Largest piece copied (and flushed) from upstream to client at once. */
  public static final int CHUNK_SIZE = 8192;

  /** Lower-case hop-by-hop headers (RFC 9110 section 7.6.1), plus Host. */
  static final Set<String> HOP_BY_HOP =
      Set.of(
          "connection",
          "keep-alive",
          "transfer-encoding",
          "te",
          "trailer",
          "trailers",
          "upgrade",
          "host");

  /**
   * Response headers never relayed: hop-by-hop ones, {@code Content-Length} (the body may be
   * masked), {@code Server} (says what runs upstream) and {@code Date} (the gateway sends its own).
   */
  public static final Set<String> NOT_RELAYED = notRelayed();

  private static Set<String> notRelayed() {
    Set<String> names = new HashSet<>(HOP_BY_HOP);
    names.addAll(List.of("content-length", "server", "date"));
    return Set.copyOf(names);
  }

  /** Methods that must carry a body in OkHttp. */
  private static final Set<String> REQUIRES_BODY =
      Set.of("POST", "PUT", "PATCH", "PROPPATCH", "REPORT");

  private final transient OkHttpClient client;
  private final transient Set<Call> inFlight = ConcurrentHashMap.newKeySet();
  private final HttpUrl upstream;
  private final String basePath;

  /**
   * @param client   the shared client; use {@link #newClient()} for the documented timeouts
   * @param upstream the model server; its path, if any, is put in front of every request path
   */
  public ForwardingServlet(OkHttpClient client, HttpUrl upstream) {
    this.client = Objects.requireNonNull(client, "client");
    this.upstream = Objects.requireNonNull(upstream, "upstream");
    String path = upstream.encodedPath();
    this.basePath = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
  }

  /**
   * A client with {@link #DEFAULT_CONNECT_TIMEOUT}, {@link #DEFAULT_READ_TIMEOUT} and
   * {@link #DEFAULT_WRITE_TIMEOUT}, no overall call timeout (streams may last long), and no
   * redirect following: a redirect from the upstream goes back to the caller as it is, rather
   * than carrying the upstream credential to wherever it points.
   */
  public static OkHttpClient newClient() {
    return new OkHttpClient.Builder()
        // Thousands of streams at once each hold a connection; keep enough of them for reuse
        // once they end instead of reconnecting for the next burst (OkHttp keeps 5 by default).
        .connectionPool(new ConnectionPool(MAX_IDLE_CONNECTIONS, 5, TimeUnit.MINUTES))
        // Connect on the request's own (virtual) thread: OkHttp's fast fallback races connects
        // on platform threads of its own, which a burst of thousands of new streams would pile up.
        .fastFallback(false)
        .connectTimeout(DEFAULT_CONNECT_TIMEOUT)
        .readTimeout(DEFAULT_READ_TIMEOUT)
        .writeTimeout(DEFAULT_WRITE_TIMEOUT)
        .callTimeout(Duration.ZERO)
        .followRedirects(false)
        .followSslRedirects(false)
        .build();
  }

  @Override
  protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    Verdict.Allowed exchange =
        req.getAttribute(PamFilter.EXCHANGE_ATTRIBUTE) instanceof Verdict.Allowed a ? a : null;
    if (exchange == null) {
      log.error(
          "inferpam gateway: request reached the forwarding servlet without an allowed exchange; refusing");
      writeError(
          resp, 500, "internal_error", "request was not checked by the inferpam filter", null);
      return;
    }

    Forward forward = exchange.forward();
    String method = req.getMethod().toUpperCase(Locale.ROOT);
    if (forward.body().length > 0 && (method.equals("GET") || method.equals("HEAD"))) {
      writeError(
          resp,
          exchange.error(400, "bad_request", method + " request with a body cannot be forwarded"));
      return;
    }
    Request upstreamRequest;
    try {
      upstreamRequest = buildRequest(req, method, forward);
    } catch (IllegalArgumentException e) {
      // OkHttp refused the method or a header. Its message may quote a header value, so it is
      // neither logged nor sent back.
      writeError(
          resp,
          exchange.error(
              400, "bad_request", "request cannot be forwarded: invalid method or header"));
      return;
    }

    Call call = client.newCall(upstreamRequest);
    inFlight.add(call);
    try {
      Response upstreamResponse;
      try {
        upstreamResponse = call.execute();
      } catch (IOException e) {
        // The exception may name the upstream host; it goes to the log, not to the caller.
        log.warn(
            "inferpam gateway: upstream unavailable for exchange {}: {}",
            exchange.id(),
            e.toString());
        exchange.upstreamFailed();
        writeError(
            resp,
            exchange.error(
                502, "upstream_unavailable", "the upstream model server is unavailable"));
        return;
      }
      try (upstreamResponse) {
        relay(call, upstreamResponse, resp, exchange.id());
      }
    } finally {
      inFlight.remove(call);
    }
  }

  /**
   * Cancels every upstream call still in flight, including those streaming a response body
   * (which OkHttp's {@code Dispatcher.cancelAll()} no longer tracks once the headers are in).
   * Their clients see a truncated response. Used when the gateway stops after its drain timeout.
   */
  public void cancelInFlight() {
    for (Call call : inFlight) call.cancel();
  }

  private Request buildRequest(HttpServletRequest req, String method, Forward forward) {
    // The raw path, as the filter checked it: the filter refuses every path whose encoding
    // could be read two ways, so the upstream serves exactly the path the policy matched.
    HttpUrl url =
        upstream
            .newBuilder()
            .encodedPath(basePath + req.getRequestURI())
            .encodedQuery(req.getQueryString())
            .build();

    // The engine's allow-list, the upstream credential included: whatever else a caller sends
    // (cookies, another organisation or project, a method override, forwarding claims, ...)
    // never reaches the upstream.
    Headers.Builder headers = new Headers.Builder();
    forward
        .proxyHeaders()
        .forEach((name, values) -> values.forEach(v -> headers.addUnsafeNonAscii(name, v)));
    // What the gateway saw, never what the caller claims.
    headers.set("X-Forwarded-For", req.getRemoteAddr());
    headers.set("X-Forwarded-Proto", req.getScheme());
    String host = req.getHeader("Host");
    if (host != null) headers.set("X-Forwarded-Host", host);

    byte[] body = forward.body();
    RequestBody requestBody = null;
    if (body.length > 0 || REQUIRES_BODY.contains(method)) {
      // No media type: the caller's Content-Type header is forwarded unchanged.
      requestBody = RequestBody.create(body, null);
    }
    return new Request.Builder()
        .url(url)
        .headers(headers.build())
        .method(method, requestBody)
        .build();
  }

  private static void relay(
      Call call, Response upstreamResponse, HttpServletResponse resp, String exchangeId)
      throws IOException {
    resp.setStatus(upstreamResponse.code());
    Headers headers = upstreamResponse.headers();
    // Headers the upstream names in Connection are hop-by-hop too; most responses name none.
    List<String> connection = headers.values("Connection");
    Set<String> named =
        connection.isEmpty() ? Set.of() : ForwardHeaders.connectionTokens(connection);
    for (int i = 0; i < headers.size(); i++) {
      String lower = headers.name(i).toLowerCase(Locale.ROOT);
      if (NOT_RELAYED.contains(lower) || named.contains(lower) || lower.startsWith("proxy-"))
        continue;
      // PamFilter's response keeps the exchange's credentials out of the value (an upstream that
      // echoes request headers must not hand them back) and out of the body.
      resp.addHeader(headers.name(i), headers.value(i));
    }

    ResponseBody body = upstreamResponse.body();
    OutputStream out = resp.getOutputStream();
    try (BufferedSource source = body.source()) {
      // okio's own buffer: it takes a pooled segment only when bytes arrive and gives it back
      // once they are written, so a stream waiting for the model's next token holds no buffer.
      Buffer arrived = source.getBuffer();
      while (true) {
        try {
          if (!source.request(1)) break; // the body ended
        } catch (IOException e) {
          if (call.isCanceled()) {
            // Cut off on purpose (the gateway is closing after its drain timeout).
            throw new IOException("upstream call cancelled", e);
          }
          log.warn(
              "inferpam gateway: upstream broke off exchange {}: {}", exchangeId, e.toString());
          throw new IOException("upstream broke off the response", e);
        }
        try {
          // Whatever one read brought (up to a segment), written from okio's arrays as they are.
          long n = Math.min(arrived.size(), CHUNK_SIZE);
          arrived.writeTo(out, n);
          out.flush();
        } catch (IOException e) {
          // The client went away (or the filter refused the response): stop the model from
          // generating for nobody.
          call.cancel();
          throw e;
        }
      }
    }
    // With no body bytes at all the status line and headers still have to go out now.
    out.flush();
  }

  /**
   * Writes the gateway's own errors in the engine's shape:
   * {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":...}}}.
   */
  static void writeError(
      HttpServletResponse resp, int status, String code, String message, String requestId)
      throws IOException {
    writeError(resp, ErrorResponse.of(status, code, message, requestId));
  }

  /** Writes an error answer the exchange shaped ({@link Verdict.Allowed#error}). */
  static void writeError(HttpServletResponse resp, ErrorResponse error) throws IOException {
    if (resp.isCommitted()) throw new IOException(error.bodyText());
    resp.resetBuffer();
    resp.setStatus(error.status());
    resp.setContentType("application/json");
    resp.getOutputStream().write(error.body());
  }
}
