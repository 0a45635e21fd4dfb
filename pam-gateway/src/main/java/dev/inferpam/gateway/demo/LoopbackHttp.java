package dev.inferpam.gateway.demo;

import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A JDK HTTP server on 127.0.0.1 and a free port, on a pool of daemon threads of its own: what the
 * demo's stand-ins (issuer, model server) run on.
 */
final class LoopbackHttp implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService executor;

  private LoopbackHttp(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /**
   * Binds the server, not yet serving; its threads are named {@code threadPrefix-1}, {@code -2}…
   *
   * @throws IOException when the server cannot bind
   */
  static LoopbackHttp bind(String threadPrefix) throws IOException {
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    AtomicInteger n = new AtomicInteger();
    ExecutorService executor =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, threadPrefix + "-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    server.setExecutor(executor);
    return new LoopbackHttp(server, executor);
  }

  /** Starts serving every path with {@code handler}. */
  void serve(HttpHandler handler) {
    server.createContext("/", handler);
    server.start();
  }

  /** The base URL, {@code http://127.0.0.1:<port>}. */
  String baseUrl() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /** Stops at once, and the threads with it. */
  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
