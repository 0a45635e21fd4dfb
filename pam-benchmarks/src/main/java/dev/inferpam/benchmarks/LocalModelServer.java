package dev.inferpam.benchmarks;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * A model server on the loopback interface that answers at once, so an end-to-end benchmark
 * measures the HTTP path and the policy, not a model: an embedded Jetty 12 (core handler, no
 * servlet layer) serving {@code POST /v1/chat/completions} with prebuilt bodies.
 *
 * <ul>
 *   <li>A request whose body contains {@code "stream":true} gets {@code text/event-stream}: the
 *       prebuilt events, each written and flushed on its own (chunked), back to back or with a
 *       pause after the first, then {@code data: [DONE]}.
 *   <li>Any other gets the prebuilt chat completion, {@code application/json} with a
 *       {@code Content-Length}.
 *   <li>A request without exactly the expected {@code Authorization} value gets 401, any other
 *       method or path 404: a benchmark that forgot to inject the upstream credential, or
 *       called the wrong place, fails instead of measuring an error.
 * </ul>
 *
 * <p>The request body is read whole before answering. Not the JDK's {@code HttpServer} nor
 * OkHttp's {@code MockWebServer}: both take tens of milliseconds per keep-alive request here.
 *
 * <p><b>Thread-safety:</b> serves concurrent requests; the counters are atomic.
 */
final class LocalModelServer implements AutoCloseable {

  static final String PATH = "/v1/chat/completions";

  private static final byte[] STREAM_MARKER = "\"stream\":true".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

  private final Server server;
  private final URI uri;
  private final AtomicInteger requests = new AtomicInteger();
  private final AtomicLong lastRequestBytes = new AtomicLong(-1);
  private final AtomicInteger connections;

  private LocalModelServer(Server server, URI uri, AtomicInteger connections) {
    this.server = server;
    this.uri = uri;
    this.connections = connections;
  }

  /**
   * Starts serving on {@code 127.0.0.1} at a free port.
   *
   * @param authorization the exact {@code Authorization} value a request must carry
   * @param completion    the body of a non-streamed answer (JSON)
   * @param events        the events of a streamed answer, each a whole {@code data: ...\n\n}
   *                      block; {@code data: [DONE]} follows them
   * @param pauseAfterFirst how long to wait after the first event is on the wire before writing
   *                      the others; {@link Duration#ZERO} writes them back to back
   */
  static LocalModelServer start(
      String authorization, byte[] completion, List<byte[]> events, Duration pauseAfterFirst)
      throws Exception {
    Objects.requireNonNull(authorization, "authorization");
    long pauseNanos = pauseAfterFirst.toNanos();
    Objects.requireNonNull(completion, "completion");
    List<byte[]> streamed = List.copyOf(events);

    QueuedThreadPool threads = new QueuedThreadPool(32, 4);
    threads.setName("bench-upstream");
    Server server = new Server(threads);
    HttpConfiguration http = new HttpConfiguration();
    http.setSendServerVersion(false);
    ServerConnector connector = new ServerConnector(server, 1, 1, new HttpConnectionFactory(http));
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    AtomicInteger connections = new AtomicInteger();
    connector.addEventListener(
        new Connection.Listener() {
          @Override
          public void onOpened(Connection connection) {
            connections.incrementAndGet();
          }
        });

    LocalModelServer[] self = new LocalModelServer[1];
    server.setHandler(
        new Handler.Abstract() {
          @Override
          public boolean handle(Request request, Response response, Callback callback)
              throws Exception {
            return self[0].handle(
                request, response, callback, authorization, completion, streamed, pauseNanos);
          }
        });
    server.start();
    self[0] =
        new LocalModelServer(
            server, URI.create("http://127.0.0.1:" + connector.getLocalPort()), connections);
    return self[0];
  }

  private boolean handle(
      Request request,
      Response response,
      Callback callback,
      String authorization,
      byte[] completion,
      List<byte[]> events,
      long pauseNanos)
      throws Exception {
    if (!"POST".equals(request.getMethod()) || !PATH.equals(request.getHttpURI().getPath())) {
      Response.writeError(request, response, callback, 404);
      return true;
    }
    if (!authorization.equals(request.getHeaders().get(HttpHeader.AUTHORIZATION))) {
      Response.writeError(request, response, callback, 401);
      return true;
    }
    ByteBuffer body = Content.Source.asByteBuffer(request);
    requests.incrementAndGet();
    lastRequestBytes.set(body.remaining());

    response.setStatus(200);
    if (!contains(body, STREAM_MARKER)) {
      response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
      response.getHeaders().put(HttpHeader.CONTENT_LENGTH, completion.length);
      response.write(true, ByteBuffer.wrap(completion), callback);
      return true;
    }
    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
    response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
    try {
      boolean first = true;
      for (byte[] event : events) {
        // one write per event, each on the wire before the next, as a model emits them
        try (Blocker.Callback written = Blocker.callback()) {
          response.write(false, ByteBuffer.wrap(event), written);
          written.block();
        }
        if (first && pauseNanos > 0) pause(pauseNanos);
        first = false;
      }
    } catch (Throwable t) {
      callback.failed(t);
      return true;
    }
    response.write(true, ByteBuffer.wrap(DONE), callback);
    return true;
  }

  /** Waits {@code nanos}, however often the park returns early. */
  private static void pause(long nanos) {
    long end = System.nanoTime() + nanos;
    long left;
    while ((left = end - System.nanoTime()) > 0) LockSupport.parkNanos(left);
  }

  private static boolean contains(ByteBuffer haystack, byte[] needle) {
    int start = haystack.position();
    int last = haystack.limit() - needle.length;
    outer:
    for (int i = start; i <= last; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack.get(i + j) != needle[j]) continue outer;
      }
      return true;
    }
    return false;
  }

  /** Where it listens, e.g. {@code http://127.0.0.1:41234}, no trailing slash. */
  URI uri() {
    return uri;
  }

  /** Requests answered 200 so far. */
  int requests() {
    return requests.get();
  }

  /** Connections accepted so far: a client that reuses its connections stops adding to it. */
  int connectionsOpened() {
    return connections.get();
  }

  /** The body size of the last request answered 200, or -1 before the first. */
  long lastRequestBytes() {
    return lastRequestBytes.get();
  }

  @Override
  public void close() {
    try {
      server.stop();
    } catch (Exception e) {
      throw new IllegalStateException("cannot stop the local model server", e);
    }
  }

  @Override
  public String toString() {
    return "LocalModelServer[" + uri + "]";
  }
}
