package dev.inferpam.gateway;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.gateway.internal.ConnectionGuard;
import dev.inferpam.gateway.internal.ForwardingServlet;
import dev.inferpam.gateway.internal.Front;
import dev.inferpam.gateway.internal.JsonErrorHandler;
import dev.inferpam.gateway.internal.PamEndpoints;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.io.IOException;
import java.time.Duration;
import java.util.EnumSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
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
 * The Jetty front: an embedded Jetty whose every request passes {@link PamFilter} (decide, mask,
 * record) before a {@link ForwardingServlet} carries it to the upstream with OkHttp. What it does
 * is described on {@link Gateway}.
 */
final class JettyFront implements Front {
  // the log lines the gateway always wrote, under its name
  private static final Logger log = LoggerFactory.getLogger(Gateway.class);

  private final Server server;
  private final OkHttpClient client;
  private final ForwardingServlet forwarder;
  private final int port;

  private JettyFront(Server server, OkHttpClient client, ForwardingServlet forwarder, int port) {
    this.server = server;
    this.client = client;
    this.forwarder = forwarder;
    this.port = port;
  }

  /**
   * Starts Jetty; on failure nothing is left running (the engine is the caller's to close).
   *
   * @throws IOException           when the address cannot be bound
   * @throws IllegalStateException when Jetty fails to start otherwise
   */
  static JettyFront start(
      PamEngine engine, HttpUrl upstream, String bindAddress, int port, int maxThreads)
      throws IOException {
    return start(engine, upstream, bindAddress, port, maxThreads, Endpoints.forEngine(engine));
  }

  /** {@link #start(PamEngine, HttpUrl, String, int, int)} answering {@code /pam} with {@code endpoints}. */
  static JettyFront start(
      PamEngine engine,
      HttpUrl upstream,
      String bindAddress,
      int port,
      int maxThreads,
      Endpoints endpoints)
      throws IOException {
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
    http.setUriCompliance(Gateway.URI_COMPLIANCE);
    http.setSendServerVersion(false);
    http.setSendXPoweredBy(false);
    http.setRequestHeaderSize(Gateway.REQUEST_HEADER_SIZE);
    ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
    connector.setHost(bindAddress);
    connector.setPort(port);
    connector.setIdleTimeout(Gateway.IDLE_TIMEOUT.toMillis());
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
                new ContextHandlerCollection(PamEndpoints.context(endpoints), context))));
    // Requests Jetty refuses itself get the JSON error shape too, never an HTML page.
    server.setErrorHandler(new JsonErrorHandler());
    server.setStopTimeout(Gateway.CUT_OFF_GRACE.toMillis());
    // Our close() (and GatewayMain's shutdown hook) stop the server in the right order.
    server.setStopAtShutdown(false);

    try {
      server.start();
    } catch (Exception e) {
      stopQuietly(server);
      shutdown(client);
      if (e instanceof IOException io) throw io;
      throw new IllegalStateException("gateway failed to start: " + e, e);
    }
    return new JettyFront(server, client, forwarder, connector.getLocalPort());
  }

  @Override
  public int port() {
    return port;
  }

  @Override
  public void join() throws InterruptedException {
    server.join();
  }

  @Override
  public void stop(Duration drainTimeout) {
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
}
