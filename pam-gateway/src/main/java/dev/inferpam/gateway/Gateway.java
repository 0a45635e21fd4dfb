package dev.inferpam.gateway;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.gateway.internal.ConnectionGuard;
import dev.inferpam.gateway.internal.ForwardingServlet;
import dev.inferpam.gateway.internal.JsonErrorHandler;
import dev.inferpam.gateway.internal.PamEndpoints;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.http.UriCompliance;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ContextHandlerCollection;
import org.eclipse.jetty.server.handler.GracefulHandler;
import org.eclipse.jetty.util.VirtualThreads;
import org.eclipse.jetty.util.component.Graceful;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
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

  private final Server server;
  private final PamEngine engine;
  private final OkHttpClient client;
  private final ForwardingServlet forwarder;
  private final URI uri;
  private final int port;
  private final AtomicBoolean closed = new AtomicBoolean();

  private Gateway(
      Server server,
      PamEngine engine,
      OkHttpClient client,
      ForwardingServlet forwarder,
      URI uri,
      int port) {
    this.server = server;
    this.engine = engine;
    this.client = client;
    this.forwarder = forwarder;
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
   * @throws IllegalArgumentException also when {@code maxThreads} is below 8
   */
  public static Gateway start(
      PamEngine engine, HttpUrl upstream, String bindAddress, int port, int maxThreads)
      throws IOException {
    Objects.requireNonNull(engine, "engine");
    if (maxThreads < 8)
      throw new IllegalArgumentException("maxThreads must be at least 8, was " + maxThreads);
    Objects.requireNonNull(upstream, "upstream");
    Objects.requireNonNull(bindAddress, "bindAddress");
    if (port < 0 || port > 65535)
      throw new IllegalArgumentException("port must be 0..65535, was " + port);
    if (upstream.encodedQuery() != null) {
      throw new IllegalArgumentException(
          "upstream URL must not have a query, was " + upstream.redact());
    }

    QueuedThreadPool threads = new QueuedThreadPool(maxThreads, Math.min(8, maxThreads));
    threads.setName("inferpam-gateway");
    if (VirtualThreads.areSupported()) {
      // Java 21+: every request is handled on a virtual thread of its own, so a stream (or a
      // forwarded call waiting for the model) holds a few KiB of heap, not one of maxThreads
      // platform threads; the pool keeps Jetty's selectors and non-blocking work.
      threads.setVirtualThreadsExecutor(
          VirtualThreads.getNamedVirtualThreadsExecutor("inferpam-request-"));
    } else {
      log.debug(
          "inferpam gateway: Java {} has no virtual threads; each stream holds one of {} threads."
              + " Run on Java 21+ to hold thousands of streams.",
          Runtime.version().feature(),
          maxThreads);
    }
    Server server = new Server(threads);

    HttpConfiguration http = new HttpConfiguration();
    http.setUriCompliance(URI_COMPLIANCE);
    http.setSendServerVersion(false);
    http.setSendXPoweredBy(false);
    http.setRequestHeaderSize(REQUEST_HEADER_SIZE);
    ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
    connector.setHost(bindAddress);
    connector.setPort(port);
    connector.setIdleTimeout(IDLE_TIMEOUT.toMillis());
    Policy.RequestSettings settings = engine.policy().request();
    ConnectionGuard guard =
        new ConnectionGuard(
            server.getScheduler(), settings.headTimeout(), settings.maxConnectionsPerClient());
    connector.addEventListener(guard);
    server.addConnector(connector);

    OkHttpClient client = ForwardingServlet.newClient();
    ServletContextHandler context = new ServletContextHandler("/");
    // ASYNC too: a request waiting for a reviewer is dispatched back to the filter when decided.
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    ForwardingServlet forwarder = new ForwardingServlet(client, upstream);
    ServletHolder forward = new ServletHolder("forward", forwarder);
    forward.setAsyncSupported(true);
    context.addServlet(forward, "/");

    // GracefulHandler counts in-flight requests so that close() can wait for them instead of
    // cutting streams off; requests that arrive meanwhile get 503. The /pam context (health,
    // reviewer endpoints) is routed before the root context that holds the filter.
    server.setHandler(
        guard.handler(
            new GracefulHandler(
                new ContextHandlerCollection(PamEndpoints.context(engine), context))));
    // Requests Jetty refuses itself get the JSON error shape too, never an HTML page.
    server.setErrorHandler(new JsonErrorHandler());
    server.setStopTimeout(CUT_OFF_GRACE.toMillis());
    // Our close() (and GatewayMain's shutdown hook) stop the server in the right order.
    server.setStopAtShutdown(false);

    try {
      server.start();
    } catch (Exception e) {
      stopQuietly(server);
      shutdown(client);
      engine.close();
      if (e instanceof IOException io) {
        throw new IOException(
            "cannot listen on " + hostForUri(bindAddress) + ":" + port + ": " + io.getMessage(),
            io);
      }
      throw new IllegalStateException("gateway failed to start: " + e, e);
    }
    int actualPort = connector.getLocalPort();
    URI uri = URI.create("http://" + hostForUri(bindAddress) + ":" + actualPort);
    log.debug("inferpam gateway on {} forwarding to {}", uri, upstream.redact());
    return new Gateway(server, engine, client, forwarder, uri, actualPort);
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
    server.join();
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
   * response, their records say incomplete), stops Jetty and finally closes the engine, which
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
      drain(drainTimeout);
    } catch (InterruptedException e) {
      // Asked to hurry: skip the rest of the drain and cut off what is running.
      Thread.currentThread().interrupt();
    }
    try {
      // A thread blocked reading from the upstream ignores Jetty's interrupts; cancelling its
      // call is what frees it, so the stop below stays within its short grace period.
      forwarder.cancelInFlight();
      server.stop();
    } catch (Exception e) {
      log.warn("inferpam gateway: stopping Jetty failed: {}", e.toString());
    } finally {
      shutdown(client);
      engine.close();
    }
  }

  private void drain(Duration timeout) throws InterruptedException {
    try {
      Graceful.shutdown(server).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      log.warn("inferpam gateway: exchanges still running after {}; cutting them off", timeout);
    } catch (ExecutionException e) {
      log.warn("inferpam gateway: draining failed: {}", e.getCause().toString());
    }
  }

  @Override
  public String toString() {
    return "Gateway[" + uri + "]";
  }

  private static void stopQuietly(Server server) {
    try {
      server.stop();
    } catch (Exception ignored) {
      // already failing to start; the start failure is what the caller needs to see
    }
  }

  private static void shutdown(OkHttpClient client) {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
  }

  /** IPv6 literals need brackets in a URI. */
  static String hostForUri(String host) {
    return host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host;
  }
}
