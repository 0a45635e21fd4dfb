package dev.inferpam.gateway.internal.netty;

import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.util.NetUtil;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import javax.net.ssl.SSLException;
import okhttp3.HttpUrl;

/**
 * Where allowed requests go: the upstream's scheme, host, port and base path, as
 * {@link dev.inferpam.gateway.internal.ForwardingServlet} uses them. Immutable.
 *
 * @param host      the host to connect to
 * @param port      its port
 * @param authority the {@code Host} header: the port only when not the scheme's default
 * @param basePath  the upstream URL's path without a trailing {@code /}, put in front of every path
 * @param ssl       for {@code https}, the client context (hostname verified); else {@code null}
 * @param literal   the address when the host is an IP address, else {@code null}
 */
record Upstream(
    String host,
    int port,
    String authority,
    String basePath,
    SslContext ssl,
    InetSocketAddress literal) {

  static Upstream of(HttpUrl url) {
    String path = url.encodedPath();
    String basePath = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    boolean https = url.isHttps();
    int defaultPort = https ? 443 : 80;
    String host = url.host();
    String hostHeader = host.indexOf(':') >= 0 ? "[" + host + "]" : host;
    String authority = url.port() == defaultPort ? hostHeader : hostHeader + ":" + url.port();
    SslContext ssl = null;
    if (https) {
      try {
        ssl = SslContextBuilder.forClient().endpointIdentificationAlgorithm("HTTPS").build();
      } catch (SSLException e) {
        throw new UncheckedIOException(new IOException("cannot set up TLS to the upstream", e));
      }
    }
    // An address given as such needs no lookup per connection.
    InetSocketAddress literal =
        NetUtil.isValidIpV4Address(host) || NetUtil.isValidIpV6Address(host)
            ? new InetSocketAddress(host, url.port())
            : null;
    return new Upstream(host, url.port(), authority, basePath, ssl, literal);
  }

  /**
   * The address to connect to, resolved now (the JVM caches lookups): call it off the event loop.
   */
  /** Whether the host is an IP address: {@link #resolve()} looks nothing up. */
  boolean isLiteral() {
    return literal != null;
  }

  InetSocketAddress resolve() {
    return literal != null ? literal : new InetSocketAddress(host, port);
  }
}
