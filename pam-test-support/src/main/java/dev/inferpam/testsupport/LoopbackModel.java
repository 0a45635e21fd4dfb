package dev.inferpam.testsupport;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A model server on 127.0.0.1 and a free port, on the JDK's own HTTP server, for tests whose
 * class path has an OkHttp 4 (the AI SDKs', Spring AI 2's), which rules out OkHttp 5's
 * MockWebServer ({@link FakeModelServer}): answers are queued, each a status, a content type and
 * the pieces of its body, written and flushed one by one (a stream's events arrive apart); a
 * request with no answer queued gets a 500. Uses nothing but the JDK.
 */
public final class LoopbackModel implements AutoCloseable {
  /** A request as the server got it. */
  public record Got(String method, String path, Map<String, List<String>> headers, String body) {
    /** The first value of the header {@code name} (any case), or null. */
    public String header(String name) {
      for (Map.Entry<String, List<String>> e : headers.entrySet()) {
        if (e.getKey().equalsIgnoreCase(name)) return e.getValue().get(0);
      }
      return null;
    }
  }

  /** An answer to play. */
  private record Answer(int status, String contentType, List<String> pieces) {}

  private final HttpServer server;
  private final ConcurrentLinkedQueue<Answer> answers = new ConcurrentLinkedQueue<>();
  private final BlockingQueue<Got> requests = new LinkedBlockingQueue<>();

  /** Starts the server. */
  public LoopbackModel() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
    server.createContext("/", this::handle);
    server.start();
  }

  /** {@code http://127.0.0.1:<port>}, without a trailing slash. */
  public String baseUrl() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /** Queues a 200 answer of {@code application/json}. */
  public LoopbackModel json(String body) {
    answers.add(new Answer(200, "application/json", List.of(body)));
    return this;
  }

  /** Queues a 200 {@code text/event-stream} answer, the events written and flushed one by one. */
  public LoopbackModel sse(String... events) {
    answers.add(new Answer(200, "text/event-stream", List.of(events)));
    return this;
  }

  /**
   * Queues a 200 answer of {@code contentType} (Ollama's {@code application/x-ndjson}, say), its
   * pieces written and flushed one by one.
   */
  public LoopbackModel answer(String contentType, String... pieces) {
    answers.add(new Answer(200, contentType, List.of(pieces)));
    return this;
  }

  /** The next request the server got, waiting up to 10 s; fails when none came. */
  public Got take() throws InterruptedException {
    Got got = requests.poll(10, TimeUnit.SECONDS);
    if (got == null) throw new AssertionError("no request reached the model server");
    return got;
  }

  /** How many requests came that were not taken. */
  public int requestCount() {
    return requests.size();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
      requests.add(
          new Got(
              exchange.getRequestMethod(),
              exchange.getRequestURI().getRawPath(),
              Map.copyOf(exchange.getRequestHeaders()),
              body));
      Answer answer = answers.poll();
      if (answer == null) answer = new Answer(500, "application/json", List.of("{}"));
      exchange.getResponseHeaders().set("Content-Type", answer.contentType());
      exchange.sendResponseHeaders(answer.status(), 0); // chunked
      OutputStream out = exchange.getResponseBody();
      for (String piece : answer.pieces()) {
        out.write(piece.getBytes(StandardCharsets.UTF_8));
        out.flush();
      }
    }
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
