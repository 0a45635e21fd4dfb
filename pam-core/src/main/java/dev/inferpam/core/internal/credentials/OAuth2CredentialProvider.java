package dev.inferpam.core.internal.credentials;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.http.HttpClients;
import dev.inferpam.core.internal.policy.Durations;
import dev.inferpam.core.internal.policy.PolicyText;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mints short-lived upstream credentials with an OAuth 2.0 client-credentials grant
 * (RFC 6749 §4.4) against {@code upstream.credential.oauth2.token-endpoint}.
 *
 * <h2>The token request</h2>
 * A {@code POST} with the form {@code grant_type=client_credentials}, plus {@code scope} and
 * {@code audience} when configured. The client authenticates with HTTP Basic
 * ({@code client_secret_basic}): the client id and secret are each form-urlencoded, joined by
 * {@code :} and Base64-encoded, as RFC 6749 §2.3.1 requires; the client id is not repeated in the
 * body. The secret is read on every token request through the same rules as
 * {@code from-env} / {@code from-file} (a file is re-read when it changes), so a rotated secret is
 * used from the next token on. Requests use HTTP/1.1 and never follow redirects; the connect
 * timeout is {@value #CONNECT_TIMEOUT_SECONDS}s, the whole exchange is bounded by
 * {@value #REQUEST_TIMEOUT_SECONDS}s more, and a response body over {@value #MAX_RESPONSE_BYTES}
 * bytes is refused.
 *
 * <h2>The token response</h2>
 * {@code access_token} is required; {@code token_type}, when present, must be {@code Bearer} (any
 * case), since the token is sent as a bearer token; {@code expires_in} is the lifetime in seconds
 * (a number or a numeric string), counted from when the request was sent. Without
 * {@code expires_in} the token is assumed to live {@link #DEFAULT_LIFETIME} (5 minutes); no
 * lifetime over {@link #MAX_LIFETIME} (1 day) is believed, so a token is replaced, and a rotated
 * client secret used, at least daily. The injected header value is {@code scheme + " " + token}.
 *
 * <h2>Caching and concurrency (no thundering herd)</h2>
 * A token is served from memory until {@code refresh-before} before it expires (or halfway through
 * its life when it lives shorter than twice that). Then the first caller starts one asynchronous
 * refresh and every caller, that one included, keeps getting the still-valid token without
 * waiting; the new token replaces it when it arrives. Only when there is no valid token (at start,
 * or after the old one expired) do callers wait, all on the same single fetch, bounded by the
 * timeouts above. At any moment at most one token request is in flight.
 *
 * <h2>Failures</h2>
 * A token endpoint that is unreachable, times out, answers a non-2xx status or a malformed body
 * gives {@link CredentialUnavailableException} with a message naming the endpoint's host and port
 * and the HTTP status (with the RFC 6749 §5.2 {@code error} code when it is a plain one, e.g.
 * {@code invalid_client}) or the kind of failure; never the client secret, a token, or the response
 * body. A failure is remembered for {@link #FAILURE_BACKOFF} (1 second, by the injected clock):
 * callers in that time get the same exception (or the still-valid old token) without a new request,
 * so a burst of traffic cannot hammer a dead endpoint, and the next call after it tries again.
 * {@link #toString()} never shows the secret or a token.
 *
 * <h2>Threads and closing</h2>
 * Token requests are sent asynchronously by the JDK's {@link HttpClient}; its work (and the
 * reading of the response) runs on the {@link Executor} given to the constructor, else on the
 * client's own pool. No request thread is held while a token is fetched in the background.
 * {@link #close()} abandons a token request in flight, stops the client where the running Java can
 * (see {@link HttpClients#shutdownNow}) and makes every later {@link #current()} throw
 * {@link CredentialUnavailableException} saying the provider is closed. A given executor is not
 * shut down.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; meant to be shared by every request. Times
 * (expiry, refresh, back-off) come from the injected {@link Clock}; the network timeouts are real
 * time. State is guarded by a {@link ReentrantLock} (a virtual thread reading the client-secret
 * file under it is not pinned).
 */
public final class OAuth2CredentialProvider implements CredentialProvider, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(OAuth2CredentialProvider.class);

  /** Connect timeout of a token request, in seconds. */
  public static final int CONNECT_TIMEOUT_SECONDS = 5;

  /** Bound on a token request after connecting (headers and body), in seconds. */
  public static final int REQUEST_TIMEOUT_SECONDS = 10;

  /** Largest token response read. */
  public static final int MAX_RESPONSE_BYTES = 64 * 1024;

  /** Lifetime assumed when the response has no {@code expires_in}. */
  public static final Duration DEFAULT_LIFETIME = Duration.ofMinutes(5);

  /** Longest lifetime believed from {@code expires_in}. */
  public static final Duration MAX_LIFETIME = Duration.ofDays(1);

  /** How long a failed token request is remembered before the next attempt. */
  public static final Duration FAILURE_BACKOFF = Duration.ofSeconds(1);

  private static final String KEY = "upstream.credential.oauth2";
  private static final ObjectMapper JSON = new ObjectMapper();

  /** RFC 6749 §5.2 codes are short snake_case words; anything else is not repeated. */
  private static final Pattern ERROR_CODE = Pattern.compile("[a-z_]{1,40}");

  private static final Pattern SHOWN_TOKEN_TYPE = Pattern.compile("[A-Za-z0-9_.-]{1,20}");

  private final String header;
  private final String scheme;
  private final URI tokenEndpoint;
  private final String endpointName;
  private final String clientId;
  private final String scope;
  private final String audience;
  private final Duration refreshBefore;
  private final SecretSource secret;
  private final Clock clock;
  private final Tuning tuning;
  private final HttpClient http;

  private final ReentrantLock lock = new ReentrantLock();

  /** The last token obtained; read without the lock on the fast path. */
  private volatile Token token;

  /** Set once by {@link #close()}; read without the lock on the fast path. */
  private volatile boolean closed;

  /** The one token request in flight, or null; guarded by {@code lock}. */
  private CompletableFuture<Token> inFlight;

  /** The HTTP exchange of {@link #inFlight}, to abandon on close; guarded by {@code lock}. */
  private CompletableFuture<?> sending;

  /** The last failure while it holds back new attempts, or null; guarded by {@code lock}. */
  private Failure failure;

  /**
   * @param header header to set, e.g. {@code Authorization}
   * @param scheme prefix such as {@code Bearer}; {@code ""} for the bare token
   * @param config {@code upstream.credential.oauth2}
   * @param env    looks up environment variables for {@code client-secret-from-env}, e.g.
   *               {@code System::getenv}
   * @param clock  time for expiry, refresh and back-off
   * @throws IllegalArgumentException naming the key, when the header or scheme is invalid, the
   *     token endpoint is not an absolute https URL (http only for loopback hosts), the client id
   *     is blank, not exactly one client-secret source is set, or {@code refreshBefore} is negative
   */
  public OAuth2CredentialProvider(
      String header,
      String scheme,
      Policy.OAuth2 config,
      Function<String, String> env,
      Clock clock) {
    this(header, scheme, config, env, clock, null, Tuning.DEFAULTS);
  }

  /**
   * As {@link #OAuth2CredentialProvider(String, String, Policy.OAuth2, Function, Clock)}, with
   * token requests run on {@code executor} ({@code null}: the HTTP client's own pool). The
   * provider never shuts {@code executor} down.
   */
  public OAuth2CredentialProvider(
      String header,
      String scheme,
      Policy.OAuth2 config,
      Function<String, String> env,
      Clock clock,
      Executor executor) {
    this(header, scheme, config, env, clock, executor, Tuning.DEFAULTS);
  }

  OAuth2CredentialProvider(
      String header,
      String scheme,
      Policy.OAuth2 config,
      Function<String, String> env,
      Clock clock,
      Tuning tuning) {
    this(header, scheme, config, env, clock, null, tuning);
  }

  OAuth2CredentialProvider(
      String header,
      String scheme,
      Policy.OAuth2 config,
      Function<String, String> env,
      Clock clock,
      Executor executor,
      Tuning tuning) {
    this.header = CredentialProviders.checkHeader(header);
    this.scheme = CredentialProviders.checkScheme(scheme);
    Objects.requireNonNull(config, "config");
    Objects.requireNonNull(env, "env");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.tuning = Objects.requireNonNull(tuning, "tuning");
    String problem = tokenEndpointProblem(config.tokenEndpoint());
    if (problem != null) throw new IllegalArgumentException(KEY + ".token-endpoint: " + problem);
    this.tokenEndpoint = config.tokenEndpoint();
    this.endpointName =
        config.tokenEndpoint().getPort() < 0
            ? config.tokenEndpoint().getHost()
            : config.tokenEndpoint().getHost() + ":" + config.tokenEndpoint().getPort();
    if (config.clientId().isBlank())
      throw new IllegalArgumentException(KEY + ".client-id must not be blank");
    this.clientId = config.clientId();
    if ((config.clientSecretFromEnv() == null) == (config.clientSecretFromFile() == null)) {
      throw new IllegalArgumentException(
          KEY + ": exactly one of client-secret-from-env / client-secret-from-file must be set");
    }
    if (config.clientSecretFromEnv() != null && config.clientSecretFromEnv().isBlank()) {
      throw new IllegalArgumentException(KEY + ".client-secret-from-env must not be blank");
    }
    this.secret =
        config.clientSecretFromEnv() != null
            ? SecretSource.fromEnv(config.clientSecretFromEnv(), env)
            : SecretSource.fromFile(config.clientSecretFromFile(), clock);
    this.scope = optional(config.scope(), "scope");
    this.audience = optional(config.audience(), "audience");
    if (config.refreshBefore().isNegative()) {
      throw new IllegalArgumentException(
          KEY + ".refresh-before must be >= 0, was " + config.refreshBefore());
    }
    this.refreshBefore = config.refreshBefore();
    HttpClient.Builder http = HttpClient.newBuilder();
    if (executor != null) http.executor(executor);
    this.http =
        http.connectTimeout(tuning.connectTimeout())
            // A redirect would carry the client's Basic credentials to wherever it points.
            .followRedirects(HttpClient.Redirect.NEVER)
            // One small request now and then gains nothing from HTTP/2, and h2c upgrade probes
            // confuse some plain-http test and sidecar endpoints.
            .version(HttpClient.Version.HTTP_1_1)
            .build();
  }

  private static String optional(String value, String key) {
    if (value != null && value.isBlank())
      throw new IllegalArgumentException(KEY + "." + key + " must not be blank");
    return value;
  }

  /**
   * Why {@code uri} cannot be a token endpoint, or {@code null} when it can: it must be an
   * absolute {@code https} URL with a host, no user info and no fragment; {@code http} is allowed
   * only for {@code 127.0.0.1}, {@code localhost} and {@code [::1]} (tests, local sidecars),
   * because the client secret travels in the request.
   */
  public static String tokenEndpointProblem(URI uri) {
    Objects.requireNonNull(uri, "uri");
    // User info may be a password; it is not echoed.
    if (uri.getRawUserInfo() != null) {
      return "must not contain user info; the client secret belongs in client-secret-from-env or client-secret-from-file";
    }
    String shown = PolicyText.quote(uri.toString());
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!uri.isAbsolute()
        || uri.isOpaque()
        || uri.getHost() == null
        || !(scheme.equals("https") || scheme.equals("http"))) {
      return "expected an absolute https URL, was " + shown;
    }
    if (uri.getRawFragment() != null) return "must not have a fragment, was " + shown;
    if (scheme.equals("http") && !isLoopback(uri.getHost())) {
      return "must be https; http is allowed only for loopback hosts (127.0.0.1, localhost, [::1]), was "
          + shown;
    }
    return null;
  }

  private static boolean isLoopback(String host) {
    return host.equalsIgnoreCase("localhost") || host.equals("127.0.0.1") || host.equals("[::1]");
  }

  @Override
  public Credential current() throws CredentialUnavailableException {
    if (closed) throw closedException();
    Token t = token;
    if (t != null && clock.instant().isBefore(t.refreshAt())) return t.credential();

    CompletableFuture<Token> pending;
    lock.lock();
    try {
      if (closed) throw closedException();
      // A finished future has already settled token/failure (see settle), so it is not in flight.
      if (inFlight != null && inFlight.isDone()) inFlight = null;
      Instant now = clock.instant();
      t = token;
      if (t != null && now.isBefore(t.refreshAt())) return t.credential();
      boolean usable = t != null && now.isBefore(t.expiresAt());
      if (inFlight == null) {
        if (failure != null && now.isBefore(failure.retryAt())) {
          if (usable) return t.credential();
          throw new CredentialUnavailableException(failure.message());
        }
        inFlight = fetch(now);
      }
      // A token that is still valid is served while the refresh runs: no caller stalls.
      if (usable) return t.credential();
      pending = inFlight;
    } finally {
      lock.unlock();
    }
    return await(pending);
  }

  /**
   * Abandons a token request in flight (callers waiting for it are told the provider is closed),
   * forgets the token, stops the HTTP client where the running Java can, and refuses every later
   * {@link #current()}. A given executor is left running. Idempotent.
   */
  @Override
  public void close() {
    CompletableFuture<?> abandoned;
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      token = null;
      abandoned = sending;
      sending = null;
    } finally {
      lock.unlock();
    }
    if (abandoned != null) abandoned.cancel(true);
    HttpClients.shutdownNow(http);
  }

  private CredentialUnavailableException closedException() {
    return new CredentialUnavailableException(
        "OAuth2 credential provider for " + endpointName + " is closed");
  }

  private Credential await(CompletableFuture<Token> pending) throws CredentialUnavailableException {
    // The fetch bounds itself; this is a backstop so that no caller can wait forever.
    Duration bound = tuning.connectTimeout().plus(tuning.requestTimeout()).plusSeconds(1);
    try {
      Token fetched = pending.get(bound.toMillis(), TimeUnit.MILLISECONDS);
      if (closed) throw closedException();
      return fetched.credential();
    } catch (ExecutionException e) {
      if (closed) throw closedException();
      throw new CredentialUnavailableException(describe(e.getCause()));
    } catch (TimeoutException e) {
      throw new CredentialUnavailableException(
          "OAuth2 token endpoint " + endpointName + ": no token within " + Durations.format(bound));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CredentialUnavailableException(
          "interrupted while waiting for OAuth2 token endpoint " + endpointName);
    }
  }

  /**
   * Starts the one token request; called with {@code lock} held, never blocks on the network
   * (a client-secret file may be read).
   */
  private CompletableFuture<Token> fetch(Instant requested) {
    CompletableFuture<Token> fetch;
    try {
      CompletableFuture<HttpResponse<byte[]>> sent = send(secret.read());
      sending = sent;
      fetch = sent.thenApply(response -> parse(response, requested));
    } catch (CredentialUnavailableException e) {
      fetch =
          CompletableFuture.failedFuture(
              new TokenFailure("OAuth2 client secret unavailable: " + e.getMessage()));
    } catch (RuntimeException e) {
      fetch = CompletableFuture.failedFuture(e);
    }
    // handle() completes only after settle() ran, so "done" always means "state updated".
    return fetch.handle(this::settle);
  }

  private CompletableFuture<HttpResponse<byte[]>> send(String clientSecret) {
    StringBuilder form = new StringBuilder("grant_type=client_credentials");
    if (scope != null) form.append("&scope=").append(formEncode(scope));
    if (audience != null) form.append("&audience=").append(formEncode(audience));
    String basic =
        Base64.getEncoder()
            .encodeToString(
                (formEncode(clientId) + ":" + formEncode(clientSecret))
                    .getBytes(StandardCharsets.UTF_8));
    HttpRequest request =
        HttpRequest.newBuilder(tokenEndpoint)
            .timeout(tuning.requestTimeout())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .header("Authorization", "Basic " + basic)
            .POST(HttpRequest.BodyPublishers.ofString(form.toString(), StandardCharsets.UTF_8))
            .build();
    CompletableFuture<HttpResponse<byte[]>> sent =
        http.sendAsync(request, info -> new LimitedBody(MAX_RESPONSE_BYTES, this::tooLarge));
    // The request timeout only covers waiting for the response headers; this bounds the body
    // too. On expiry the exchange is cancelled (which closes its connection) rather than left
    // running.
    Duration total = tuning.connectTimeout().plus(tuning.requestTimeout());
    CompletableFuture<HttpResponse<byte[]>> bounded =
        sent.copy().orTimeout(total.toMillis(), TimeUnit.MILLISECONDS);
    bounded.whenComplete(
        (r, e) -> {
          if (e != null) sent.cancel(true);
        });
    return bounded;
  }

  private Token parse(HttpResponse<byte[]> response, Instant requested) {
    int status = response.statusCode();
    byte[] body = response.body();
    if (status < 200 || status > 299) {
      String code = errorCode(body);
      throw failure("HTTP " + status + (code == null ? "" : " (" + code + ")"));
    }
    JsonNode json;
    try {
      json = JSON.readTree(body);
    } catch (IOException e) {
      throw failure("malformed token response (not JSON)");
    }
    if (json == null || !json.isObject())
      throw failure("malformed token response (not a JSON object)");
    JsonNode accessToken = json.get("access_token");
    if (accessToken == null || !accessToken.isTextual() || accessToken.textValue().isBlank()) {
      throw failure("malformed token response (no access_token)");
    }
    String value = accessToken.textValue();
    if (!CredentialProviders.isHeaderSafe(value)) {
      throw failure(
          "malformed token response (access_token holds a character not allowed in a header value)");
    }
    JsonNode type = json.get("token_type");
    if (type != null
        && !type.isNull()
        && !(type.isTextual() && type.textValue().equalsIgnoreCase("Bearer"))) {
      String shown =
          type.isTextual() && SHOWN_TOKEN_TYPE.matcher(type.textValue()).matches()
              ? "\"" + type.textValue() + "\""
              : "of the response";
      throw failure("token_type " + shown + " is not Bearer");
    }
    Duration lifetime = lifetime(json.get("expires_in"));
    Instant expiresAt = requested.plus(lifetime);
    // A lead of at most half the lifetime: a token shorter-lived than 2 x refresh-before would
    // otherwise be due for refresh the moment it arrives, and every call would fetch again.
    Duration lead =
        refreshBefore.compareTo(lifetime.dividedBy(2)) < 0 ? refreshBefore : lifetime.dividedBy(2);
    return new Token(
        new Credential(header, CredentialProviders.headerValue(scheme, value)),
        expiresAt.minus(lead),
        expiresAt);
  }

  private Duration lifetime(JsonNode expiresIn) {
    if (expiresIn == null || expiresIn.isNull()) return DEFAULT_LIFETIME;
    long seconds = -1;
    if (expiresIn.isIntegralNumber() && expiresIn.canConvertToLong()) {
      seconds = expiresIn.longValue();
    } else if (expiresIn.isTextual() && expiresIn.textValue().matches("[0-9]{1,12}")) {
      seconds = Long.parseLong(expiresIn.textValue()); // some providers send a string
    }
    if (seconds <= 0)
      throw failure(
          "malformed token response (expires_in is not a positive whole number of seconds)");
    return seconds > MAX_LIFETIME.toSeconds() ? MAX_LIFETIME : Duration.ofSeconds(seconds);
  }

  private static String errorCode(byte[] body) {
    try {
      JsonNode json = JSON.readTree(body);
      JsonNode error = json == null ? null : json.get("error");
      if (error != null && error.isTextual() && ERROR_CODE.matcher(error.textValue()).matches()) {
        return error.textValue();
      }
    } catch (IOException | RuntimeException e) {
      // Not a JSON error body; the status says enough.
    }
    return null;
  }

  /** Records the outcome of a fetch; runs once per fetch, before its future completes. */
  private Token settle(Token fresh, Throwable error) {
    if (error == null) {
      lock.lock();
      try {
        if (!closed) token = fresh;
        failure = null;
        sending = null;
      } finally {
        lock.unlock();
      }
      return fresh;
    }
    String message = describe(error);
    boolean stillValid;
    lock.lock();
    try {
      sending = null;
      if (closed) throw new TokenFailure(message); // abandoned by close(): nothing to report
      Instant now = clock.instant();
      failure = new Failure(message, now.plus(tuning.failureBackoff()));
      Token t = token;
      stillValid = t != null && now.isBefore(t.expiresAt());
    } finally {
      lock.unlock();
    }
    log.warn(
        "inferpam: {}{}",
        message,
        stillValid ? "; the current token is used until it expires" : "");
    throw new TokenFailure(message);
  }

  /** A secret-free description: our own messages, or the endpoint and the kind of failure. */
  private String describe(Throwable error) {
    Throwable t = error;
    while ((t instanceof CompletionException || t instanceof ExecutionException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    if (t instanceof TokenFailure) return t.getMessage();
    String what;
    if (t instanceof HttpConnectTimeoutException) {
      what = "connect timed out after " + Durations.format(tuning.connectTimeout());
    } else if (t instanceof HttpTimeoutException) {
      what = "no response within " + Durations.format(tuning.requestTimeout());
    } else if (t instanceof TimeoutException) { // our bound on the whole exchange, body included
      what =
          "no complete response within "
              + Durations.format(tuning.connectTimeout().plus(tuning.requestTimeout()));
    } else if (t instanceof ConnectException) {
      what = "connection failed";
    } else if (t instanceof SSLException) {
      what = "TLS failed (" + t.getClass().getSimpleName() + ")";
    } else if (t instanceof IOException) {
      what = "I/O error (" + t.getClass().getSimpleName() + ")";
    } else {
      // Exception messages are not repeated: some quote request details.
      what = "failed (" + t.getClass().getSimpleName() + ")";
    }
    return "OAuth2 token endpoint " + endpointName + ": " + what;
  }

  private TokenFailure failure(String what) {
    return new TokenFailure("OAuth2 token endpoint " + endpointName + ": " + what);
  }

  private TokenFailure tooLarge() {
    return failure("token response larger than " + MAX_RESPONSE_BYTES + " bytes");
  }

  /** RFC 6749 Appendix B: application/x-www-form-urlencoded, UTF-8. */
  private static String formEncode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  @Override
  public String toString() {
    return "OAuth2CredentialProvider["
        + header
        + " from token endpoint "
        + endpointName
        + ", client "
        + clientId
        + "]";
  }

  /** Network limits; tests shorten them. */
  record Tuning(Duration connectTimeout, Duration requestTimeout, Duration failureBackoff) {
    static final Tuning DEFAULTS =
        new Tuning(
            Duration.ofSeconds(CONNECT_TIMEOUT_SECONDS),
            Duration.ofSeconds(REQUEST_TIMEOUT_SECONDS),
            FAILURE_BACKOFF);

    Tuning {
      Objects.requireNonNull(connectTimeout, "connectTimeout");
      Objects.requireNonNull(requestTimeout, "requestTimeout");
      Objects.requireNonNull(failureBackoff, "failureBackoff");
    }
  }

  /** A minted token; {@link Credential#toString()} hides its value. */
  private record Token(Credential credential, Instant refreshAt, Instant expiresAt) {}

  private record Failure(String message, Instant retryAt) {}

  /** A failure whose message is safe to show; no stack trace, it is never logged as a throwable. */
  private static final class TokenFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TokenFailure(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Collects a response body of at most {@code max} bytes; beyond that it cancels the
   * subscription (closing the connection) instead of reading on. Flow calls are serialised, so
   * no locking is needed.
   */
  private static final class LimitedBody implements HttpResponse.BodySubscriber<byte[]> {
    private final int max;
    private final java.util.function.Supplier<RuntimeException> tooLarge;
    private final CompletableFuture<byte[]> result = new CompletableFuture<>();
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private Flow.Subscription subscription;

    LimitedBody(int max, java.util.function.Supplier<RuntimeException> tooLarge) {
      this.max = max;
      this.tooLarge = tooLarge;
    }

    @Override
    public CompletionStage<byte[]> getBody() {
      return result;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
      subscription = s;
      s.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(List<ByteBuffer> items) {
      if (result.isDone()) return;
      for (ByteBuffer b : items) {
        if (out.size() + (long) b.remaining() > max) {
          subscription.cancel();
          result.completeExceptionally(tooLarge.get());
          return;
        }
        byte[] chunk = new byte[b.remaining()];
        b.get(chunk);
        out.write(chunk, 0, chunk.length);
      }
    }

    @Override
    public void onError(Throwable t) {
      result.completeExceptionally(t);
    }

    @Override
    public void onComplete() {
      result.complete(out.toByteArray());
    }
  }
}
