package dev.inferpam.benchmarks.floor;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Promise;

/**
 * The model server behind a floor in the tests, on Jetty core (non-blocking: no thread waits for
 * the test). {@code POST /v1/chat/completions} answers {@link #COMPLETION} with status 200; {@code
 * POST /v1/stream} answers a server-sent event stream whose first event goes out at once and each
 * next one only when the test calls {@link EventStream#next()}. Every request is recorded.
 *
 * <p><b>Thread-safety:</b> the records and the open stream may be read from any thread.
 */
final class Upstream implements AutoCloseable {

  /** About 2 KB of JSON, with non-ASCII text so that a byte-for-byte relay is tested. */
  static final byte[] COMPLETION = json(2048);

  /** Chunk events of a stream, before {@code data: [DONE]}. */
  static final int EVENTS = 100;

  /** One request as the upstream received it. */
  record Received(
      String method, String pathQuery, List<HttpField> headers, byte[] body, int remotePort) {
    String header(String name) {
      return headers.stream()
          .filter(f -> f.getName().equalsIgnoreCase(name))
          .map(HttpField::getValue)
          .findFirst()
          .orElse(null);
    }
  }

  private final Server server;
  private final URI uri;
  private final List<Received> received = new CopyOnWriteArrayList<>();
  private final CompletableFuture<EventStream> stream = new CompletableFuture<>();

  private Upstream() throws Exception {
    server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    server.setHandler(
        new Handler.Abstract() {
          @Override
          public boolean handle(Request request, Response response, Callback callback) {
            Content.Source.asByteBuffer(
                request,
                new Promise<ByteBuffer>() {
                  @Override
                  public void succeeded(ByteBuffer buffer) {
                    byte[] body = new byte[buffer.remaining()];
                    buffer.get(body);
                    received.add(
                        new Received(
                            request.getMethod(),
                            request.getHttpURI().getPathQuery(),
                            request.getHeaders().stream().toList(),
                            body,
                            Request.getRemotePort(request)));
                    answer(request, response, callback);
                  }

                  @Override
                  public void failed(Throwable failure) {
                    callback.failed(failure);
                  }
                });
            return true;
          }
        });
    server.start();
    uri = URI.create("http://127.0.0.1:" + connector.getLocalPort());
  }

  static Upstream start() throws Exception {
    return new Upstream();
  }

  URI uri() {
    return uri;
  }

  List<Received> received() {
    return List.copyOf(received);
  }

  /** The stream the upstream is sending, once a request for one has come. */
  CompletableFuture<EventStream> stream() {
    return stream;
  }

  @Override
  public void close() {
    try {
      server.stop();
    } catch (Exception e) {
      throw new IllegalStateException("upstream did not stop", e);
    }
  }

  private void answer(Request request, Response response, Callback callback) {
    String path = request.getHttpURI().getPath();
    if (path.equals("/v1/chat/completions")) {
      response.setStatus(200);
      response.getHeaders().put("Content-Type", "application/json; charset=utf-8");
      response.getHeaders().put("X-Request-Id", "req-" + received.size());
      response.getHeaders().put("Content-Length", COMPLETION.length);
      response.write(true, ByteBuffer.wrap(COMPLETION), callback);
    } else if (path.equals("/v1/stream")) {
      response.setStatus(200);
      response.getHeaders().put("Content-Type", "text/event-stream");
      response.getHeaders().put("Cache-Control", "no-cache");
      EventStream events = new EventStream(response, callback);
      stream.complete(events);
      events.next();
    } else {
      response.setStatus(404);
      callback.succeeded();
    }
  }

  /** The event of index {@code i}: chunk events, then {@code [DONE]} at {@link #EVENTS}. */
  static String event(int i) {
    return i < EVENTS
        ? "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t"
            + i
            + " ünï\"}}]}"
        : "data: [DONE]";
  }

  /** A stream being sent, one event a {@link #next()}. */
  static final class EventStream {
    private final Response response;
    private final Callback done;
    private final AtomicInteger sent = new AtomicInteger();
    private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);

    private EventStream(Response response, Callback done) {
      this.response = response;
      this.done = done;
    }

    /** How many events the upstream has handed to Jetty so far. */
    int sent() {
      return sent.get();
    }

    /** Breaks the stream off (after what was sent so far): the connection is aborted. */
    synchronized void abort() {
      tail = tail.thenRun(() -> done.failed(new java.io.IOException("broken off by the test")));
    }

    /**
     * Sends the next event (after the previous write completed), the last one with the end of the
     * response; the returned future fails when the write does (e.g. the floor closed the
     * connection).
     */
    synchronized CompletableFuture<Void> next() {
      int i = sent.getAndIncrement();
      boolean last = i == EVENTS;
      ByteBuffer bytes = ByteBuffer.wrap((event(i) + "\n\n").getBytes(StandardCharsets.UTF_8));
      tail =
          tail.thenCompose(
              v -> {
                CompletableFuture<Void> written = new CompletableFuture<>();
                response.write(
                    last,
                    bytes,
                    Callback.from(
                        () -> {
                          written.complete(null);
                          if (last) done.succeeded();
                        },
                        failure -> {
                          written.completeExceptionally(failure);
                          done.failed(failure);
                        }));
                return written;
              });
      return tail;
    }
  }

  private static byte[] json(int size) {
    StringBuilder content = new StringBuilder();
    for (int i = 0; content.length() < size - 200; i++) {
      content.append("Größe ").append(i).append(" — naïve café ✓ ");
    }
    String json =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
            + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
            + content
            + "\"},\"finish_reason\":\"stop\"}]}";
    return json.getBytes(StandardCharsets.UTF_8);
  }
}
