package dev.inferpam.servlet;

import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.http.UriCompliance;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * A real Jetty 12 (ee10) on 127.0.0.1 with {@link PamFilter} on {@code /*} in front of test
 * servlets that report what they were given:
 * <ul>
 *   <li>{@code /*}: echo (method, path, headers, body as JSON);</li>
 *   <li>{@code /v1/completions}: server-sent events, the second event held until
 *       {@link #releaseSecondEvent} is counted down;</li>
 *   <li>{@code /v1/embeddings}: async; answers from another thread through the AsyncContext;</li>
 *   <li>{@code /v1/responses}: throws (an IOException after some output with
 *       {@code X-Fail-With: io}).</li>
 * </ul>
 */
final class TestServer implements AutoCloseable {
  static final ObjectMapper JSON = new ObjectMapper();

  /** What a servlet saw of one request. */
  record Seen(
      String method,
      String requestUri,
      List<String> headerNames,
      String authorization,
      String apiKey,
      byte[] body,
      long contentLength,
      Object exchange) {}

  final BlockingQueue<Seen> seen = new LinkedBlockingQueue<>();

  /** Every record the engine produced, in order; exchanges end after their response, so wait. */
  final Queue<SessionRecord> records = new ConcurrentLinkedQueue<>();

  final AtomicInteger invocations = new AtomicInteger();
  final CountDownLatch secondEventWritten = new CountDownLatch(1);
  final CountDownLatch releaseSecondEvent = new CountDownLatch(1);

  private final Server server;
  private final ServerConnector connector;
  private final PamEngine engine;
  private final ExecutorService asyncWorkers = Executors.newSingleThreadExecutor();

  /**
   * @param unsafeUris whether Jetty lets ambiguous URIs through to the filter (UNSAFE compliance
   *     and decoded ambiguous URIs), so that the filter is what refuses them
   */
  TestServer(boolean unsafeUris) throws Exception {
    this(unsafeUris, TestPolicy::engine);
  }

  /**
   * As {@link #TestServer(boolean)}, with the engine that {@code engineFor} builds around the
   * recorder feeding {@link #records} (e.g. from another policy).
   */
  TestServer(boolean unsafeUris, Function<Recorder, PamEngine> engineFor) throws Exception {
    engine = engineFor.apply(records::add);
    server = new Server();
    HttpConfiguration http = new HttpConfiguration();
    if (unsafeUris) http.setUriCompliance(UriCompliance.UNSAFE);
    connector = new ServerConnector(server, new HttpConnectionFactory(http));
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);

    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    if (unsafeUris) context.getServletHandler().setDecodeAmbiguousURIs(true);
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    context.addServlet(new ServletHolder(new Echo()), "/*");
    context.addServlet(new ServletHolder(new Events()), "/v1/completions");
    ServletHolder async = new ServletHolder(new Async());
    async.setAsyncSupported(true);
    context.addServlet(async, "/v1/embeddings");
    context.addServlet(new ServletHolder(new Failing()), "/v1/responses");
    server.setHandler(context);
    server.start();
  }

  int port() {
    return connector.getLocalPort();
  }

  String url(String path) {
    return "http://127.0.0.1:" + port() + path;
  }

  /** The next thing a servlet saw; fails when no servlet ran. */
  Seen nextSeen() throws InterruptedException {
    Seen s = seen.poll(10, TimeUnit.SECONDS);
    if (s == null) throw new AssertionError("no servlet was invoked");
    return s;
  }

  /**
   * The record of exchange {@code id}, once the filter has ended it. Found by id because the
   * previous test's exchange may end after this test began.
   */
  SessionRecord awaitRecord(String id) {
    return await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> records.stream().filter(r -> r.id().equals(id)).findFirst(), Optional::isPresent)
        .orElseThrow();
  }

  /** Records of requests sent with header {@code X-Test-Id: tag}. */
  List<SessionRecord> recordsTagged(String tag) {
    return records.stream()
        .filter(r -> List.of(tag).equals(r.request().headers().get("x-test-id")))
        .toList();
  }

  @Override
  public void close() {
    releaseSecondEvent.countDown();
    try {
      server.stop();
    } catch (Exception e) {
      throw new IllegalStateException("jetty did not stop", e);
    } finally {
      asyncWorkers.shutdownNow();
      engine.close();
    }
  }

  private Seen see(HttpServletRequest req, byte[] body) {
    invocations.incrementAndGet();
    Seen s =
        new Seen(
            req.getMethod(),
            req.getRequestURI(),
            Collections.list(req.getHeaderNames()),
            req.getHeader("Authorization"),
            req.getHeader("X-Api-Key"),
            body,
            req.getContentLengthLong(),
            req.getAttribute(PamFilter.EXCHANGE_ATTRIBUTE));
    seen.add(s);
    return s;
  }

  private static byte[] readBody(HttpServletRequest req) throws IOException {
    if ("reader".equals(req.getHeader("X-Read-With"))) {
      StringBuilder text = new StringBuilder();
      char[] buf = new char[256];
      for (int n; (n = req.getReader().read(buf)) >= 0; ) text.append(buf, 0, n);
      return text.toString().getBytes(StandardCharsets.UTF_8);
    }
    return req.getInputStream().readAllBytes();
  }

  private final class Echo extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      Seen s = see(req, readBody(req));
      ObjectNode echo = JSON.createObjectNode();
      echo.put("method", s.method());
      echo.put("path", s.requestUri());
      echo.put("authorization", s.authorization() != null);
      echo.putPOJO("headers", s.headerNames());
      echo.put("body", new String(s.body(), StandardCharsets.UTF_8));
      resp.setStatus(200);
      resp.setContentType("application/json");
      resp.getOutputStream().write(JSON.writeValueAsBytes(echo));
    }
  }

  private final class Events extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      see(req, readBody(req));
      resp.setContentType("text/event-stream");
      resp.setCharacterEncoding("UTF-8");
      PrintWriter out = resp.getWriter();
      out.write("data: {\"text\":\"first ✓\"}\n\n");
      out.flush();
      try {
        if (!releaseSecondEvent.await(10, TimeUnit.SECONDS))
          throw new IOException("client never read the first event");
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException(e);
      }
      out.write("data: {\"text\":\"second\"}\n\n");
      out.write("data: [DONE]\n\n");
      out.flush();
      secondEventWritten.countDown();
    }
  }

  private final class Async extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) {
      AsyncContext async = req.startAsync();
      asyncWorkers.execute(
          () -> {
            try {
              HttpServletRequest r = (HttpServletRequest) async.getRequest();
              see(r, r.getInputStream().readAllBytes());
              HttpServletResponse w = (HttpServletResponse) async.getResponse();
              w.setContentType("application/json");
              w.getOutputStream()
                  .write("{\"data\":[{\"embedding\":[0.5]}]}".getBytes(StandardCharsets.UTF_8));
            } catch (IOException | RuntimeException e) {
              ((HttpServletResponse) async.getResponse()).setStatus(599);
            } finally {
              async.complete();
            }
          });
    }
  }

  private final class Failing extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      see(req, readBody(req));
      if ("io".equals(req.getHeader("X-Fail-With"))) {
        resp.getOutputStream().write("partial".getBytes(StandardCharsets.UTF_8));
        resp.flushBuffer();
        throw new IOException("simulated broken connection");
      }
      throw new IllegalStateException("servlet failure with internal detail");
    }
  }

  /** Names of headers in order, for assertions. */
  static List<String> lower(List<String> names) {
    List<String> out = new ArrayList<>();
    for (String n : names) out.add(n.toLowerCase(java.util.Locale.ROOT));
    return out;
  }
}
