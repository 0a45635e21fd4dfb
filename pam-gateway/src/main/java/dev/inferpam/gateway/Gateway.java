package dev.inferpam.gateway;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.gateway.internal.ForwardingServlet;
import dev.inferpam.gateway.internal.Front;
import dev.inferpam.gateway.internal.netty.NettyFront;
import dev.inferpam.servlet.PamFilter;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.HttpUrl;
import org.eclipse.jetty.http.UriCompliance;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The inferpam gateway, embeddable: an embedded Jetty whose every request passes
 * {@link PamFilter} (decide, mask, record) before a {@link ForwardingServlet} carries it to the
 * upstream model server with the upstream credential.
 *
 * <pre>{@code
 * try (Gateway gateway = Gateway.start(engine, HttpUrl.get("http://127.0.0.1:11434"), "127.0.0.1", 0)) {
 *   URI uri = gateway.uri();   // http://127.0.0.1:<free port>
 *   ...
 * }
 * }</pre>
 *
 * <p><b>Ownership:</b> the gateway takes over the engine: {@link #close()} closes it after the
 * last exchange has ended, so that the recorder is flushed with every record in it.
 *
 * <p><b>Paths:</b> the connector accepts ambiguous paths ({@code %2F}, {@code //}, {@code ;},
 * dot segments, ...) instead of answering them with Jetty's own 400, so that they reach the
 * filter, which refuses them with a recorded 400 {@code bad_path}. Paths that Jetty cannot
 * parse at all (a {@code ..} above the root) are still refused by Jetty before the filter.
 *
 * <p><b>Timeouts:</b> the forwarding client's are those of {@link ForwardingServlet#newClient()};
 * the connector's idle timeout is {@link #IDLE_TIMEOUT}, longer than the upstream read timeout,
 * so that a slow model yields a 502 from the gateway rather than a silently dropped connection.
 *
 * <p><b>Slow and unauthenticated clients</b> (policy section {@code request}): a connection must
 * deliver each request head within {@code head-timeout} of opening or of its previous exchange's
 * end, or it is closed; request line and headers are at most
 * {@link #REQUEST_HEADER_SIZE} (431 above). The engine then decides path and identity from the
 * head: an unauthenticated request is answered 401 without a byte of its body read, and Jetty
 * closes the connection since the body is left unread. An identified caller's body is read without
 * a thread ({@link PamFilter}), within {@code body-timeout} and {@code min-body-rate} (408
 * {@code body_timeout}, connection closed). With {@code max-connections-per-client}, connections
 * from one address beyond it are closed as they open. None of this holds a server thread while a
 * client is slow, so health ({@code /pam/health}) and other callers are answered meanwhile.
 *
 * <p><b>Stopping:</b> {@link #close()} drains: it stops accepting connections and lets running
 * exchanges (long streams included) finish for up to {@link #DEFAULT_DRAIN_TIMEOUT}, then cuts
 * off the rest and flushes the recorder.
 *
 * <p><b>Server:</b> by default the exchanges are served by Netty: event loops (one per processor,
 * epoll on Linux) read requests and relay each response from an upstream connection opened or
 * pooled on the client connection's own event loop, with no thread per exchange; only the
 * engine's decisions, which may block, run on virtual threads (Java 21+; a pool of
 * {@code maxThreads} platform threads on Java 17). With system property {@value #SERVER_PROPERTY}
 * set to {@code jetty} (or {@code serve --server jetty}) the same exchanges are served by the
 * Jetty front, whose mechanisms the paragraphs above name: Jetty 12, {@link PamFilter} and a
 * forwarding servlet with an OkHttp client, a virtual thread per request on Java 21+. Clients observe the
 * same statuses, error bodies, headers and records on both; on Netty, in addition, a client that
 * disconnects while its request waits for a reviewer withdraws it. Netty is the default because
 * it costs about half the processor time per request (docs/performance.md).
 *
 * <p><b>Thread-safety:</b> safe to use from any thread; {@link #close()} is idempotent.
 */
public final class Gateway implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Gateway.class);

  /** How long {@link #close()} waits for in-flight exchanges before cutting them off. */
  public static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(30);

  /** Server threads at most, by default (Jetty's own default). */
  public static final int DEFAULT_MAX_THREADS = 200;

  /** After the drain, how long Jetty may take to wind down the exchanges that were cut off. */
  static final Duration CUT_OFF_GRACE = Duration.ofSeconds(5);

  /**
   * Idle timeout of client connections while a request is handled: the upstream read timeout
   * plus a margin, so that a model thinking for minutes is not cut off. It does not bound how
   * long a client may take to send a request: {@code request.head-timeout} bounds its head,
   * {@code request.body-timeout} and {@code request.min-body-rate} its body.
   */
  public static final Duration IDLE_TIMEOUT =
      ForwardingServlet.DEFAULT_READ_TIMEOUT.plusSeconds(30);

  /**
   * Largest request line plus headers Jetty accepts (431 above it): room for the largest OIDC
   * token the engine accepts (16 KiB, {@code OidcResolver.MAX_TOKEN_CHARS}) with 16 KiB for the
   * rest, so that a token up to that size is decided by the engine, and a larger one refused by it
   * (401 {@code unauthenticated}), rather than by Jetty.
   */
  public static final int REQUEST_HEADER_SIZE = 32 * 1024;

  /**
   * What Jetty lets through to the filter: every path ambiguity, so that the filter (not Jetty)
   * refuses it, records it and answers with the JSON error. Fragments, user info and bad UTF-8
   * in queries stay protocol errors that Jetty refuses.
   */
  static final UriCompliance URI_COMPLIANCE =
      UriCompliance.DEFAULT.with(
          "INFERPAM_GATEWAY",
          UriCompliance.Violation.AMBIGUOUS_PATH_SEGMENT,
          UriCompliance.Violation.AMBIGUOUS_EMPTY_SEGMENT,
          UriCompliance.Violation.AMBIGUOUS_PATH_SEPARATOR,
          UriCompliance.Violation.AMBIGUOUS_PATH_PARAMETER,
          UriCompliance.Violation.AMBIGUOUS_PATH_ENCODING,
          UriCompliance.Violation.SUSPICIOUS_PATH_CHARACTERS,
          UriCompliance.Violation.ILLEGAL_PATH_CHARACTERS,
          UriCompliance.Violation.UTF16_ENCODINGS);

  /**
   * System property choosing the HTTP server and relay: {@code netty} (the default) or
   * {@code jetty} (see {@link #start(PamEngine, HttpUrl, String, int, int)}).
   */
  public static final String SERVER_PROPERTY = "inferpam.gateway.server";

  /** The HTTP server and relay a gateway runs on. */
  enum Server {
    /** Jetty 12, {@link PamFilter} and the OkHttp {@link ForwardingServlet}. */
    JETTY,
    /** Netty: one event loop relays both sides of an exchange. */
    NETTY;

    /**
     * {@code jetty} or {@code netty} (any case).
     *
     * @throws IllegalArgumentException for anything else
     */
    static Server parse(String name) {
      return switch (name.trim().toLowerCase(Locale.ROOT)) {
        case "jetty" -> JETTY;
        case "netty" -> NETTY;
        default ->
            throw new IllegalArgumentException(
                "expected jetty or netty as the gateway server, was \"" + name + "\"");
      };
    }

    /** What {@value #SERVER_PROPERTY} says, {@link #NETTY} when unset. */
    static Server fromSystemProperty() {
      String value = System.getProperty(SERVER_PROPERTY);
      return value == null || value.isBlank() ? NETTY : parse(value);
    }
  }

  private final Front front;
  private final PamEngine engine;
  private final URI uri;
  private final int port;
  private final AtomicBoolean closed = new AtomicBoolean();

  private Gateway(Front front, PamEngine engine, URI uri, int port) {
    this.front = front;
    this.engine = engine;
    this.uri = uri;
    this.port = port;
  }

  /**
   * Starts a gateway and returns once it accepts connections.
   *
   * @param engine      the engine to enforce; owned by the gateway from now on
   * @param upstream    the model server, e.g. {@code http://127.0.0.1:8000}; a path in it (e.g.
   *                    {@code /openai}) is put in front of every forwarded path; must have no query
   * @param bindAddress the address to listen on, e.g. {@code 127.0.0.1} or {@code 0.0.0.0}
   * @param port        the port, or 0 for a free one
   * @throws IOException              when the address cannot be bound (the engine is then closed)
   * @throws IllegalArgumentException when the port is out of range or the upstream has a query
   */
  public static Gateway start(PamEngine engine, HttpUrl upstream, String bindAddress, int port)
      throws IOException {
    return start(engine, upstream, bindAddress, port, DEFAULT_MAX_THREADS);
  }

  /**
   * {@link #start(PamEngine, HttpUrl, String, int)} with at most {@code maxThreads} server
   * threads. Requests waiting for a reviewer hold no thread (servlet async), so a small pool
   * still serves other traffic while many wait.
   *
   * <p>The HTTP server is Netty unless system property {@value #SERVER_PROPERTY} is
   * {@code jetty}: Netty event loops (one per processor) read requests and relay responses,
   * each exchange's upstream connection on its client connection's event loop, and only the
   * engine's decisions (which may block) run on virtual threads ({@code maxThreads} platform
   * threads on Java 17). On Jetty, {@code maxThreads} bounds its server threads. Both behave
   * alike as clients see them.
   *
   * @throws IllegalArgumentException also when {@code maxThreads} is below 8, or the system
   *     property names another server
   */
  public static Gateway start(
      PamEngine engine, HttpUrl upstream, String bindAddress, int port, int maxThreads)
      throws IOException {
    return start(engine, upstream, bindAddress, port, maxThreads, Server.fromSystemProperty());
  }

  /**
   * {@link #start(PamEngine, HttpUrl, String, int, int)} that also answers {@code GET /pam/metrics}
   * with {@code metrics}: the meters in Prometheus's text format (for instance
   * {@code prometheusRegistry::scrape} of a Micrometer {@code PrometheusMeterRegistry} that the
   * engine's {@code PamMetrics} listener, module {@code pam-micrometer}, reports to), for callers
   * the engine authenticates, on the same port as {@code /pam/health}. See
   * {@code docs/metrics.md}.
   *
   * @throws NullPointerException when {@code metrics} is null
   */
  public static Gateway start(
      PamEngine engine,
      HttpUrl upstream,
      String bindAddress,
      int port,
      int maxThreads,
      Endpoints.MetricsScrape metrics)
      throws IOException {
    Objects.requireNonNull(metrics, "metrics");
    return start(
        engine, upstream, bindAddress, port, maxThreads, Server.fromSystemProperty(), metrics);
  }

  /** {@link #start(PamEngine, HttpUrl, String, int, int)} on the given server. */
  static Gateway start(
      PamEngine engine,
      HttpUrl upstream,
      String bindAddress,
      int port,
      int maxThreads,
      Server server)
      throws IOException {
    return start(engine, upstream, bindAddress, port, maxThreads, server, null);
  }

  /** On the given server, with {@code /pam/metrics} when {@code metrics} is not null. */
  static Gateway start(
      PamEngine engine,
      HttpUrl upstream,
      String bindAddress,
      int port,
      int maxThreads,
      Server server,
      Endpoints.MetricsScrape metrics)
      throws IOException {
    Objects.requireNonNull(engine, "engine");
    if (maxThreads < 8)
      throw new IllegalArgumentException("maxThreads must be at least 8, was " + maxThreads);
    Objects.requireNonNull(upstream, "upstream");
    Objects.requireNonNull(bindAddress, "bindAddress");
    Objects.requireNonNull(server, "server");
    if (port < 0 || port > 65535)
      throw new IllegalArgumentException("port must be 0..65535, was " + port);
    if (upstream.encodedQuery() != null) {
      throw new IllegalArgumentException(
          "upstream URL must not have a query, was " + upstream.redact());
    }

    Front front;
    try {
      Endpoints endpoints = Endpoints.forEngine(engine);
      if (metrics != null) endpoints = endpoints.withMetrics(metrics);
      front =
          server == Server.NETTY
              ? NettyFront.start(engine, upstream, bindAddress, port, maxThreads, endpoints)
              : JettyFront.start(engine, upstream, bindAddress, port, maxThreads, endpoints);
    } catch (IOException e) {
      engine.close();
      throw new IOException(
          "cannot listen on " + hostForUri(bindAddress) + ":" + port + ": " + e.getMessage(), e);
    } catch (RuntimeException | Error e) {
      engine.close();
      throw e;
    }
    int actualPort = front.port();
    URI uri = URI.create("http://" + hostForUri(bindAddress) + ":" + actualPort);
    log.debug(
        "inferpam gateway ({}) on {} forwarding to {}",
        server.name().toLowerCase(Locale.ROOT),
        uri,
        upstream.redact());
    return new Gateway(front, engine, uri, actualPort);
  }

  /** Where the gateway listens, e.g. {@code http://127.0.0.1:8080}, no trailing slash. */
  public URI uri() {
    return uri;
  }

  /** The port it listens on (the chosen one when started with port 0). */
  public int port() {
    return port;
  }

  /** Blocks until the gateway has stopped. */
  public void join() throws InterruptedException {
    front.join();
  }

  /**
   * {@link #close(Duration)} with {@link #DEFAULT_DRAIN_TIMEOUT}.
   *
   * @throws java.io.UncheckedIOException when the recorder cannot be flushed
   */
  @Override
  public void close() {
    close(DEFAULT_DRAIN_TIMEOUT);
  }

  /**
   * Answers requests waiting for a reviewer 403 {@code approval_expired}
   * ({@link PamEngine#closeApprovals()}), stops accepting connections, waits up to
   * {@code drainTimeout} for in-flight exchanges to end, then cancels the upstream calls of those still running (their clients see a truncated
   * response, their records say incomplete), stops the server and finally closes the engine, which
   * flushes the recorder with every record in it. Only the first call does anything.
   *
   * @throws java.io.UncheckedIOException when the recorder cannot be flushed
   * @throws IllegalArgumentException     when {@code drainTimeout} is negative
   */
  public void close(Duration drainTimeout) {
    Objects.requireNonNull(drainTimeout, "drainTimeout");
    if (drainTimeout.isNegative())
      throw new IllegalArgumentException("drainTimeout must be >= 0, was " + drainTimeout);
    if (!closed.compareAndSet(false, true)) return;
    // Requests waiting for a reviewer are answered 403 approval_expired now: reviewers cannot
    // reach a server that no longer accepts connections, and the waits would hold up the drain.
    engine.closeApprovals();
    try {
      front.stop(drainTimeout);
    } finally {
      engine.close();
    }
  }

  @Override
  public String toString() {
    return "Gateway[" + uri + "]";
  }

  /** IPv6 literals need brackets in a URI. */
  static String hostForUri(String host) {
    return host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host;
  }
}
