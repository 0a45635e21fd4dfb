package dev.inferpam.benchmarks.floor;

import java.io.PrintStream;
import java.net.URI;
import java.util.Locale;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.http.HttpURI;
import org.eclipse.jetty.proxy.ProxyHandler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.VirtualThreads;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * A floor: Jetty's own reverse proxy ({@code ProxyHandler.Reverse} of jetty-proxy, with Jetty's
 * non-blocking {@code HttpClient} to the upstream) and no policy at all, to measure what a JVM
 * reverse proxy on Jetty costs on a machine beside nginx and the gateway in the same run. Run as
 *
 * <pre>
 * java -cp pam-benchmarks/target/benchmarks.jar dev.inferpam.benchmarks.floor.JettyFloor \
 *     --port 9203 --upstream http://127.0.0.1:18190 [--threads platform|virtual]
 * </pre>
 *
 * <p>It listens on {@code 127.0.0.1} only and prints {@code listening on http://127.0.0.1:PORT}
 * when ready (the line the gateway prints). Every request goes to the upstream with its own method,
 * path, query, headers (but hop-by-hop ones, with {@code Host} set to the upstream's and Jetty's
 * {@code Via} and {@code Forwarded} added) and body; the response comes back the same way, each
 * chunk written and flushed to the client as it arrives, so a server-sent event stream is relayed
 * event by event. When the upstream cannot be reached the client gets {@code 502 Bad Gateway}
 * (504 on a timeout), Jetty's own error response. {@code --threads virtual} (the default on Java
 * 21+) runs handlers on virtual threads as the gateway does; on a Java without them it falls back
 * to platform threads and says so on standard error. Standard error says which threads the
 * handlers run on. SIGTERM stops it.
 *
 * <p><b>Thread-safety:</b> {@link #start} may be called from any thread; a {@link Running} is
 * closed once, by its owner.
 */
public final class JettyFloor {

  static final String USAGE =
      String.join(
          "\n",
          "usage: java -cp benchmarks.jar dev.inferpam.benchmarks.floor.JettyFloor"
              + " --port N --upstream http://HOST:PORT [--threads platform|virtual]",
          "  --port N            0 = a free port; binds 127.0.0.1 only",
          "  --upstream URL      where every request goes, path and query kept",
          "  --threads KIND      virtual (default on Java 21+) or platform");

  /** Where the handlers run. */
  enum Threads {
    PLATFORM,
    VIRTUAL
  }

  private JettyFloor() {}

  public static void main(String[] args) throws Exception {
    FloorArgs parsed;
    Threads threads;
    try {
      parsed = FloorArgs.parse(args, "--threads");
      threads = threads(parsed.extra());
    } catch (IllegalArgumentException e) {
      System.exit(FloorArgs.refuse("JettyFloor", e, USAGE, System.err));
      return;
    }
    Running floor = start(parsed.port(), parsed.upstream(), threads, System.err);
    System.err.println(
        "JettyFloor: handlers on "
            + (floor.virtual ? "virtual" : "platform")
            + " threads, Jetty "
            + Server.getVersion());
    Runtime.getRuntime().addShutdownHook(new Thread(floor::close, "jetty-floor-stop"));
    System.out.println("listening on " + floor.uri());
    System.out.flush();
    floor.server.join();
  }

  /**
   * Starts a floor on {@code 127.0.0.1:port} in front of {@code upstream} ({@code
   * http://HOST:PORT}).
   *
   * @param notes where to say that virtual threads were asked for but are not there
   * @throws Exception when Jetty cannot start (e.g. the port is taken)
   */
  static Running start(int port, URI upstream, Threads threads, PrintStream notes)
      throws Exception {
    QueuedThreadPool pool = new QueuedThreadPool();
    pool.setName("jetty-floor");
    if (threads == Threads.VIRTUAL) {
      if (VirtualThreads.areSupported()) {
        pool.setVirtualThreadsExecutor(VirtualThreads.getNamedVirtualThreadsExecutor("floor-vt-"));
      } else {
        notes.println(
            "JettyFloor: Java "
                + Runtime.version().feature()
                + " has no virtual threads; handlers run on platform threads");
      }
    }
    Server server = new Server(pool);
    HttpConfiguration http = new HttpConfiguration();
    // as the gateway: no Server header
    http.setSendServerVersion(false);
    http.setSendXPoweredBy(false);
    ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
    connector.setHost("127.0.0.1");
    connector.setPort(port);
    server.addConnector(connector);

    String base = upstream.toString();
    ProxyHandler.Reverse proxy =
        new ProxyHandler.Reverse(
            request -> HttpURI.build(base + request.getHttpURI().getPathQuery())) {
          @Override
          protected void configureHttpClient(HttpClient client) {
            super.configureHttpClient(client);
            // thousands of concurrent streams to one upstream, as nginx would take them: neither
            // a queue limit (default 1024) nor a connection limit (default 64) in the floor's way
            client.setMaxConnectionsPerDestination(1 << 16);
            client.setMaxRequestsQueuedPerDestination(1 << 16);
          }
        };
    proxy.setProxyToServerHost(upstream.getHost() + ":" + upstream.getPort());
    server.setHandler(proxy);
    server.start();
    return new Running(
        server,
        URI.create("http://127.0.0.1:" + connector.getLocalPort()),
        pool.getVirtualThreadsExecutor() != null);
  }

  static Threads threads(String value) {
    if (value == null) return VirtualThreads.areSupported() ? Threads.VIRTUAL : Threads.PLATFORM;
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "platform" -> Threads.PLATFORM;
      case "virtual" -> Threads.VIRTUAL;
      default ->
          throw new IllegalArgumentException("--threads must be platform or virtual, was " + value);
    };
  }

  /** A started floor. */
  static final class Running implements RunningFloor {
    private final Server server;
    private final URI uri;
    private final boolean virtual;

    private Running(Server server, URI uri, boolean virtual) {
      this.server = server;
      this.uri = uri;
      this.virtual = virtual;
    }

    @Override
    public URI uri() {
      return uri;
    }

    /** Stops the server and its client; what is in flight is cut off. */
    @Override
    public void close() {
      try {
        server.stop();
      } catch (Exception e) {
        throw new IllegalStateException("JettyFloor: could not stop", e);
      }
    }
  }
}
