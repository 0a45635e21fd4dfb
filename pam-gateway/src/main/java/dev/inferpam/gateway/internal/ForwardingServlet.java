package dev.inferpam.gateway.internal;

import dev.inferpam.api.Credential;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.Exchange;
import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import okhttp3.Call;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries a request that {@link PamFilter} allowed on to the upstream model server, and streams
 * the answer back. Meant to sit behind {@link PamFilter} (as {@link dev.inferpam.gateway.Gateway} installs it); it
 * holds no policy logic.
 *
 * <p>What is forwarded: the method, the raw path (after the upstream URL's own path, if any),
 * the raw query, exactly the body the engine decided on ({@link Exchange#body()}, decoded when
 * it came compressed), and only the request headers in {@link #FORWARDED_REQUEST_HEADERS}
 * ({@code Content-Type}, {@code Accept}, {@code Accept-Language}, {@code User-Agent},
 * {@code Inference-Header-Content-Length}, {@code Anthropic-Version}, {@code Anthropic-Beta},
 * {@code OpenAI-Beta}, tracing headers) and those the policy adds ({@code request.forward-headers})
 * unless the engine removes them
 * ({@link Exchange#requestHeadersToRemove()}) or {@code Connection} names them: cookies,
 * {@code OpenAI-Organization}, {@code OpenAI-Project}, Azure {@code api-key}, method overrides,
 * the caller's credentials, {@code Forwarded} and anything else stay behind.
 * {@code X-Forwarded-For}, {@code X-Forwarded-Proto} and {@code X-Forwarded-Host} are set from
 * what the gateway saw (peer address, scheme, {@code Host}); the OkHttp client sets
 * {@code Host}, {@code Content-Length} and {@code Accept-Encoding} (see below) itself. The
 * upstream credential ({@link Exchange#upstreamCredential()}) is then set, replacing any header
 * of that name.
 *
 * <p>What comes back: the status and headers (minus hop-by-hop ones, {@code Content-Length},
 * {@code Server} and {@code Date}, which the gateway sets itself; each value with the exchange's
 * credentials replaced and one whose name holds a credential left out:
 * {@link Exchange#responseHeader}), and the body copied in chunks of at most {@value #CHUNK_SIZE} bytes
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
 * <p>Fail closed: a request that did not pass {@link PamFilter} (no allowed exchange in
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

  /** Largest piece copied (and flushed) from upstream to client at once. */
  public static final int CHUNK_SIZE = 8192;

  /** Lower-case hop-by-hop headers (RFC 9110 section 7.6.1), plus Host. */
  static final Set<String> HOP_BY_HOP = Set.of(
      "connection", "keep-alive", "transfer-encoding", "te", "trailer", "trailers", "upgrade", "host");

  /**
   * Request headers forwarded to the upstream (lower-case), besides {@code X-B3-*} and the
   * policy's {@code request.forward-headers}: what an
   * upstream needs to read the request and answer in the right shape, and tracing.
   * {@code Content-Encoding} only reaches the upstream on a body the engine passed as it came
   * (it drops it from a body it decoded).
   */
  static final Set<String> FORWARDED_REQUEST_HEADERS = Set.of(
      "content-type", "content-encoding", "accept", "accept-language", "user-agent",
      "inference-header-content-length", "anthropic-version", "anthropic-beta", "openai-beta",
      "traceparent", "tracestate", "baggage", "b3", "x-request-id", "x-correlation-id");

  private boolean forwarded(String lowerCaseName) {
    return FORWARDED_REQUEST_HEADERS.contains(lowerCaseName) || lowerCaseName.startsWith("x-b3-")
        || policyHeaders.contains(lowerCaseName);
  }

  /** Methods that must carry a body in OkHttp. */
  private static final Set<String> REQUIRES_BODY = Set.of("POST", "PUT", "PATCH", "PROPPATCH", "REPORT");


  private final transient OkHttpClient client;
  private final transient Set<Call> inFlight = ConcurrentHashMap.newKeySet();
  private final HttpUrl upstream;
  private final String basePath;
  /** Lower-case names of {@code request.forward-headers}. */
  private final Set<String> policyHeaders;

  /** A servlet that forwards the fixed allow-list only. */
  public ForwardingServlet(OkHttpClient client, HttpUrl upstream) {
    this(client, upstream, List.of());
  }

  /**
   * @param client         the shared client; use {@link #newClient()} for the documented timeouts
   * @param upstream       the model server; its path, if any, is put in front of every request path
   * @param forwardHeaders more caller headers to forward (the policy's
   *                       {@code request.forward-headers}), names in any case
   * @throws IllegalArgumentException when a name is one never forwarded from a caller
   *     ({@link ForwardHeaders#refusal}); the policy refuses those already
   */
  public ForwardingServlet(OkHttpClient client, HttpUrl upstream, Collection<String> forwardHeaders) {
    this.client = Objects.requireNonNull(client, "client");
    this.upstream = Objects.requireNonNull(upstream, "upstream");
    String path = upstream.encodedPath();
    this.basePath = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    Set<String> names = new HashSet<>();
    for (String name : forwardHeaders) {
      String reason = ForwardHeaders.refusal(name);
      if (reason != null) throw new IllegalArgumentException(name + " is never forwarded from a caller: " + reason);
      names.add(name.toLowerCase(Locale.ROOT));
    }
    this.policyHeaders = Set.copyOf(names);
  }

  /**
   * A client with {@link #DEFAULT_CONNECT_TIMEOUT}, {@link #DEFAULT_READ_TIMEOUT} and
   * {@link #DEFAULT_WRITE_TIMEOUT}, no overall call timeout (streams may last long), and no
   * redirect following: a redirect from the upstream goes back to the caller as it is, rather
   * than carrying the upstream credential to wherever it points.
   */
  public static OkHttpClient newClient() {
    return new OkHttpClient.Builder()
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
    Exchange exchange = req.getAttribute(PamFilter.EXCHANGE_ATTRIBUTE) instanceof Exchange e ? e : null;
    if (exchange == null || !exchange.allowed()) {
      log.error("inferpam gateway: request reached the forwarding servlet without an allowed exchange; refusing");
      writeError(resp, 500, "internal_error", "request was not checked by the inferpam filter",
          exchange == null ? null : exchange.id());
      return;
    }

    String method = req.getMethod().toUpperCase(Locale.ROOT);
    if (exchange.body().length > 0 && (method.equals("GET") || method.equals("HEAD"))) {
      writeError(resp, 400, "bad_request", method + " request with a body cannot be forwarded", exchange.id());
      return;
    }
    Request upstreamRequest;
    try {
      upstreamRequest = buildRequest(req, method, exchange);
    } catch (IllegalArgumentException e) {
      // OkHttp refused the method or a header. Its message may quote a header value, so it is
      // neither logged nor sent back.
      writeError(resp, 400, "bad_request", "request cannot be forwarded: invalid method or header", exchange.id());
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
        log.warn("inferpam gateway: upstream unavailable for exchange {}: {}", exchange.id(), e.toString());
        exchange.upstreamFailed();
        writeError(resp, 502, "upstream_unavailable", "the upstream model server is unavailable", exchange.id());
        return;
      }
      try (upstreamResponse) {
        relay(call, upstreamResponse, resp, exchange);
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

  private Request buildRequest(HttpServletRequest req, String method, Exchange exchange) {
    // The raw path, as the filter checked it: the filter refuses every path whose encoding
    // could be read two ways, so the upstream serves exactly the path the policy matched.
    HttpUrl url = upstream.newBuilder()
        .encodedPath(basePath + req.getRequestURI())
        .encodedQuery(req.getQueryString())
        .build();

    // An allow-list: whatever else a caller sends (cookies, another organisation or project,
    // a method override, forwarding claims, ...) never reaches the upstream.
    Set<String> drop = new HashSet<>(exchange.requestHeadersToRemove());
    addConnectionTokens(drop, Collections.list(req.getHeaders("Connection")));

    Headers.Builder headers = new Headers.Builder();
    for (String name : Collections.list(req.getHeaderNames())) {
      String lower = name.toLowerCase(Locale.ROOT);
      if (drop.contains(lower) || !forwarded(lower)) continue;
      for (String value : Collections.list(req.getHeaders(name))) {
        headers.addUnsafeNonAscii(name, value);
      }
    }
    // What the gateway saw, never what the caller claims.
    headers.set("X-Forwarded-For", req.getRemoteAddr());
    headers.set("X-Forwarded-Proto", req.getScheme());
    String host = req.getHeader("Host");
    if (host != null) headers.set("X-Forwarded-Host", host);
    Credential credential = exchange.upstreamCredential();
    if (credential != null) headers.set(credential.header(), credential.value());

    byte[] body = exchange.body();
    RequestBody requestBody = null;
    if (body.length > 0 || REQUIRES_BODY.contains(method)) {
      // No media type: the caller's Content-Type header is forwarded unchanged.
      requestBody = RequestBody.create(body, null);
    }
    return new Request.Builder().url(url).headers(headers.build()).method(method, requestBody).build();
  }

  private static void relay(Call call, Response upstreamResponse, HttpServletResponse resp, Exchange exchange)
      throws IOException {
    resp.setStatus(upstreamResponse.code());
    Set<String> drop = new HashSet<>(HOP_BY_HOP);
    drop.add("content-length");
    drop.add("server"); // says what runs upstream
    drop.add("date"); // the gateway sends its own
    addConnectionTokens(drop, upstreamResponse.headers("Connection"));
    Headers headers = upstreamResponse.headers();
    for (int i = 0; i < headers.size(); i++) {
      String lower = headers.name(i).toLowerCase(Locale.ROOT);
      if (drop.contains(lower) || lower.startsWith("proxy-")) continue;
      // An upstream that echoes request headers must not hand the injected credential (or the
      // caller's own) back; PamFilter's response applies the same to the body.
      String value = exchange.responseHeader(headers.name(i), headers.value(i));
      if (value != null) resp.addHeader(headers.name(i), value);
    }

    ResponseBody body = upstreamResponse.body();
    OutputStream out = resp.getOutputStream();
    byte[] buffer = new byte[CHUNK_SIZE];
    try (InputStream in = body.byteStream()) {
      while (true) {
        int n;
        try {
          n = in.read(buffer);
        } catch (IOException e) {
          if (call.isCanceled()) {
            // Cut off on purpose (the gateway is closing after its drain timeout).
            throw new IOException("upstream call cancelled", e);
          }
          log.warn("inferpam gateway: upstream broke off exchange {}: {}", exchange.id(), e.toString());
          throw new IOException("upstream broke off the response", e);
        }
        if (n < 0) break;
        try {
          out.write(buffer, 0, n);
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

  /** Headers that the {@code Connection} header names are hop-by-hop as well. */
  private static void addConnectionTokens(Set<String> drop, Iterable<String> connectionValues) {
    for (String value : connectionValues) {
      for (String token : value.split(",")) {
        String t = token.strip().toLowerCase(Locale.ROOT);
        if (!t.isEmpty()) drop.add(t);
      }
    }
  }

  /**
   * Writes the gateway's own errors in the engine's shape:
   * {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":...}}}.
   */
  static void writeError(HttpServletResponse resp, int status, String code, String message, String requestId)
      throws IOException {
    if (resp.isCommitted()) throw new IOException(code + ": " + message);
    resp.resetBuffer();
    resp.setStatus(status);
    resp.setContentType("application/json");
    resp.getOutputStream().write(ErrorResponse.of(status, code, message, requestId).body());
  }
}
