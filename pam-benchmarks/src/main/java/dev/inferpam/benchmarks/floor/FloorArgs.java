package dev.inferpam.benchmarks.floor;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;

/**
 * The command line both floors share: {@code --port N --upstream http://HOST:PORT} and one option
 * of the floor's own ({@code --threads} for Jetty, {@code --event-loops} for Netty).
 *
 * <p><b>Thread-safety:</b> immutable.
 */
record FloorArgs(int port, URI upstream, String extra) {

  /** What main does with a bad command line: the message and the usage, then exit status 2. */
  static final int BAD_ARGUMENT = 2;

  /**
   * Parses {@code args}; {@code extraOption} (e.g. {@code --threads}) is the one option of the
   * floor's own, {@code null} in {@link #extra()} when not given.
   *
   * @throws IllegalArgumentException naming the option and the bad value
   */
  static FloorArgs parse(String[] args, String extraOption) {
    Integer port = null;
    URI upstream = null;
    String extra = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) throw new IllegalArgumentException("unknown option " + a);
      String v = args[++i];
      if (a.equals("--port")) {
        port = port(v);
      } else if (a.equals("--upstream")) {
        upstream = upstream(v);
      } else if (a.equals(extraOption)) {
        extra = v;
      } else {
        throw new IllegalArgumentException("unknown option " + a);
      }
    }
    if (port == null) throw new IllegalArgumentException("--port is required (0: a free port)");
    if (upstream == null) {
      throw new IllegalArgumentException("--upstream is required, e.g. http://127.0.0.1:8080");
    }
    return new FloorArgs(port, upstream, extra);
  }

  /** {@code HOST:PORT} of the upstream, as the {@code Host} header of a forwarded request. */
  String upstreamAuthority() {
    return upstream.getHost() + ":" + upstream.getPort();
  }

  InetSocketAddress upstreamAddress() {
    return InetSocketAddress.createUnresolved(upstream.getHost(), upstream.getPort());
  }

  /** Prints the message and the usage to {@code err}; returns {@link #BAD_ARGUMENT}. */
  static int refuse(String floor, IllegalArgumentException e, String usage, PrintStream err) {
    err.println(floor + ": " + e.getMessage());
    err.println(usage);
    return BAD_ARGUMENT;
  }

  private static int port(String v) {
    try {
      int p = Integer.parseInt(v);
      if (p >= 0 && p <= 65535) return p;
    } catch (NumberFormatException e) {
      // the message below says what is wanted
    }
    throw new IllegalArgumentException("--port must be 0..65535, was " + v);
  }

  private static URI upstream(String v) {
    URI u;
    try {
      u = new URI(v);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("--upstream is not a URL: " + v, e);
    }
    boolean http =
        "http".equals(u.getScheme() == null ? null : u.getScheme().toLowerCase(Locale.ROOT));
    boolean noPath =
        u.getRawPath() == null || u.getRawPath().isEmpty() || u.getRawPath().equals("/");
    if (!http || u.getHost() == null || u.getPort() < 0 || !noPath || u.getRawQuery() != null) {
      // the floors forward the request's own path and query, so the upstream is just where to
      throw new IllegalArgumentException(
          "--upstream must be http://HOST:PORT (no path, no query), was " + v);
    }
    return URI.create("http://" + u.getHost() + ":" + u.getPort());
  }
}
