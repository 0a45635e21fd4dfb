package dev.inferpam.testsupport;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A load balancer for fleet tests: a TCP proxy on a free port of 127.0.0.1 that sends each new
 * connection to the next of its backends in turn, and copies bytes both ways until either side
 * closes. Clients that want each request on the next replica open a connection per request.
 * Two daemon threads per connection; {@link #close()} stops accepting and closes every
 * connection.
 */
public final class RoundRobinProxy implements AutoCloseable {
  private final ServerSocket server;
  private final List<Integer> backends;
  private final AtomicInteger next = new AtomicInteger();
  private final Set<Socket> open = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;

  private RoundRobinProxy(ServerSocket server, List<Integer> backends) {
    this.server = server;
    this.backends = List.copyOf(backends);
    this.acceptor = new Thread(this::accept, "round-robin-proxy");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** A proxy in front of the given ports of 127.0.0.1. */
  public static RoundRobinProxy start(List<Integer> backendPorts) throws IOException {
    if (backendPorts.isEmpty()) throw new IllegalArgumentException("no backends");
    return new RoundRobinProxy(
        new ServerSocket(0, 200, InetAddress.getLoopbackAddress()), backendPorts);
  }

  /** Its port on 127.0.0.1. */
  public int port() {
    return server.getLocalPort();
  }

  private void accept() {
    while (!server.isClosed()) {
      Socket client;
      try {
        client = server.accept();
      } catch (IOException closed) {
        return;
      }
      int port = backends.get(Math.floorMod(next.getAndIncrement(), backends.size()));
      Socket backend = new Socket();
      try {
        backend.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 5_000);
      } catch (IOException refused) {
        closeQuietly(client);
        closeQuietly(backend);
        continue;
      }
      open.add(client);
      open.add(backend);
      AtomicInteger done = new AtomicInteger();
      pipe(client, backend, done);
      pipe(backend, client, done);
    }
  }

  /** Copies until {@code from} ends; the pair is closed once both directions have ended. */
  private void pipe(Socket from, Socket to, AtomicInteger done) {
    Thread t =
        new Thread(
            () -> {
              byte[] buf = new byte[16 * 1024];
              try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                  out.write(buf, 0, n);
                  out.flush();
                }
                to.shutdownOutput();
              } catch (IOException gone) {
                closeQuietly(from);
                closeQuietly(to);
              } finally {
                if (done.incrementAndGet() == 2) {
                  closeQuietly(from);
                  closeQuietly(to);
                  open.remove(from);
                  open.remove(to);
                }
              }
            },
            "round-robin-pipe");
    t.setDaemon(true);
    t.start();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : open) closeQuietly(s);
    open.clear();
  }
}
