package dev.inferpam.servlet;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.VirtualThreadCheck;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.VirtualThreads;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The filter holds no thread of its own and never pins a virtual thread, on a Jetty 12 whose
 * request handling runs on virtual threads ({@code QueuedThreadPool.setVirtualThreadsExecutor}):
 * 200 responses streaming through the filter's masking at once, and 200 requests waiting for a
 * reviewer (servlet async: no thread at all), while a JFR recording of
 * {@code jdk.VirtualThreadPinned} (threshold 0) sees no pinning in inferpam code and the live
 * platform threads do not grow with the requests; then every request completes with its answer.
 *
 * <p>Jetty has {@link #MAX_JETTY_THREADS} platform threads, a tenth of the requests at once: a
 * request that held one while it streams or waits would leave the others none. Runs on a JDK 21+
 * ({@code virtual-threads} surefire execution). The clients are OkHttp calls on virtual threads.
 * The JVM's few shared threads start during a first request of each kind, before anything is
 * counted.
 */
@Tag("virtual-threads")
class PamFilterVirtualThreadTest {
  static final int CALLS = 200;

  /** How many platform threads the 200 requests may add in all: far fewer than one per request. */
  static final int MAX_ADDED_PLATFORM_THREADS = 20;

  /**
   * How many platform threads the JVM may have in all then: the test JVM's own, which vary from
   * run to run (the JIT adds compiler threads while its queue is long, JFR's streaming, pools of
   * the container or client), and a few more; still far below one per call. The bound that
   * matters is {@link #MAX_ADDED_PLATFORM_THREADS}: a CI run counted 57 live with only a few added.
   */
  static final int MAX_PLATFORM_THREADS = 100;

  /** Jetty's platform threads: a tenth of the requests held at once. */
  static final int MAX_JETTY_THREADS = CALLS / 10;

  static final Duration PATIENCE = Duration.ofSeconds(60);
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final String ALICE = "alice-key-0001";
  static final String EMAIL = "jane.doe@example.com";
  static final Principal REVIEWER =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_API_KEY, null, Map.of());

  static final String ANSWER = Completions.chat("Write to " + EMAIL + ".", 12, 5);
  static final String MASKED_ANSWER = ANSWER.replace(EMAIL, "[EMAIL]");

  /** What the application streams before it holds: one whole event, and half of the next. */
  static final String STREAM_HEAD =
      Completions.sseDelta("Mail " + EMAIL + " today.") + "data: {\"choices\":[{\"index\":0,";

  /** What it streams once released: the rest of the second event, an address split in two. */
  static final String STREAM_TAIL =
      "\"delta\":{\"content\":\" Or jane.doe@exa" + "mple.com.\"}}]}\n\n" + Completions.SSE_DONE;

  /** The text the client reads, in whatever events the masker releases it. */
  static final String MASKED_TEXT = "Mail [EMAIL] today. Or [EMAIL].";

  final Queue<SessionRecord> records = new ConcurrentLinkedQueue<>();
  final CountDownLatch release = new CountDownLatch(1);
  final AtomicInteger invocations = new AtomicInteger();
  final AtomicInteger onPlatformThreads = new AtomicInteger();

  /** The clients: connecting on the calling (virtual) thread, not on OkHttp's connect threads. */
  final OkHttpClient client =
      new OkHttpClient.Builder()
          .readTimeout(PATIENCE)
          .retryOnConnectionFailure(false)
          .fastFallback(false)
          .build();

  PamEngine engine;
  Server server;
  int port;
  ExecutorService callers;

  @BeforeAll
  static void needsVirtualThreads() {
    VirtualThreadCheck.requireVirtualThreads();
  }

  @BeforeEach
  void start() throws Exception {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy()))
            .credentialProvider(() -> new Credential("Authorization", TestPolicy.UPSTREAM_SECRET))
            .recorder(records::add)
            .build();

    // Few platform threads (the acceptor, the selector, a few for Jetty's own tasks): a stream or
    // a request that held one of them would soon leave none for the others.
    QueuedThreadPool threads = new QueuedThreadPool(MAX_JETTY_THREADS);
    threads.setName("jetty");
    threads.setVirtualThreadsExecutor(VirtualThreads.getDefaultVirtualThreadsExecutor());
    server = new Server(threads);
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    connector.setAcceptQueueSize(2 * CALLS);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    ServletHolder model = new ServletHolder(new Model());
    model.setAsyncSupported(true);
    context.addServlet(model, "/*");
    server.setHandler(context);
    server.start();
    port = connector.getLocalPort();
    callers = VirtualThreadCheck.newVirtualThreadPerTaskExecutor();
  }

  @AfterEach
  void stop() throws Exception {
    release.countDown();
    callers.shutdownNow();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    server.stop();
    engine.close();
  }

  static String policy() {
    return """
        version: 1
        identity:
          api-keys:
        """
        + Policies.apiKey("alice", ALICE, "ml-engineers")
        + """
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
        masking:
          detectors: [email]
        approval:
          reviewers: [security-oncall]
          timeout: 5m
          max-pending-per-principal: 1000
          max-pending: 1000
          rules:
            - {name: bulk-export, prompt-matches: "(?i)dump all"}
        """;
  }

  /**
   * The application behind the filter: a JSON completion, or (for {@code "stream":true})
   * {@link #STREAM_HEAD} at once and {@link #STREAM_TAIL} once {@link #release} opens (at once for
   * the warm-up's "warm up"). Notes how often it ran, and on how many platform threads.
   */
  final class Model extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      invocations.incrementAndGet();
      if (!VirtualThreadCheck.isVirtual(Thread.currentThread()))
        onPlatformThreads.incrementAndGet();
      String body = new String(req.getInputStream().readAllBytes(), UTF_8);
      ServletOutputStream out = resp.getOutputStream();
      if (!body.contains("\"stream\":true")) {
        resp.setContentType("application/json");
        out.write(ANSWER.getBytes(UTF_8));
        return;
      }
      resp.setContentType("text/event-stream");
      out.write(STREAM_HEAD.getBytes(UTF_8));
      out.flush();
      try {
        if (!body.contains("warm up") && !release.await(PATIENCE.toSeconds(), SECONDS)) {
          throw new IOException("the stream was never released");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted");
      }
      out.write(STREAM_TAIL.getBytes(UTF_8));
      out.flush();
    }
  }

  Request chat(String prompt, String extra) {
    return new Request.Builder()
        .url("http://127.0.0.1:" + port + "/v1/chat/completions")
        .header("Authorization", "Bearer " + ALICE)
        .post(RequestBody.create(Policies.chat("llama-3.1-8b", prompt, extra), JSON))
        .build();
  }

  /** A request for review: each its own (equal ones would wait for one review together). */
  Request held(int i) {
    return chat("dump all rows, batch " + i, "");
  }

  /** Makes the call: its status, a space, and its body. */
  String answer(Request request) throws IOException {
    try (Response r = client.newCall(request).execute()) {
      return r.code() + " " + r.body().string();
    }
  }

  InProcessApprovalService approvals() {
    return (InProcessApprovalService) engine.approvalService();
  }

  /**
   * One request of each kind the tests make (allowed, approved after a review, streamed), before
   * anything is counted or recorded: Jetty's, JFR's and the engine's threads start here, and the
   * classes these paths use are loaded (a virtual thread waiting for another one to load the same
   * class is pinned: once per class, a JDK limitation, no monitor of inferpam's).
   */
  void warmUp() throws Exception {
    assertThat(callers.submit(() -> answer(chat("hi", ""))).get(PATIENCE.toSeconds(), SECONDS))
        .isEqualTo("200 " + MASKED_ANSWER);

    Future<String> waiting = callers.submit(() -> answer(chat("dump all, warming up", "")));
    Pending review =
        await().atMost(PATIENCE).until(() -> approvals().pending(), p -> p.size() == 1).get(0);
    approvals().approve(review.id(), REVIEWER, "warm-up");
    assertThat(waiting.get(PATIENCE.toSeconds(), SECONDS)).isEqualTo("200 " + MASKED_ANSWER);

    String streamed =
        callers
            .submit(() -> answer(chat("warm up", "\"stream\":true")))
            .get(PATIENCE.toSeconds(), SECONDS);
    assertThat(streamed).startsWith("200 ");
    assertThat(deltas(streamed.substring("200 ".length()))).isEqualTo(MASKED_TEXT);

    await().atMost(PATIENCE).until(() -> records.size() == 3);
    records.clear();
    invocations.set(0);
    onPlatformThreads.set(0);
    // The test's own record class initialised now: 200 virtual threads reaching a class's first
    // use at once wait for its initialisation pinned (a JDK rule), which is not inferpam's doing.
    assertThat(new Streamed(200, "", "").status()).isEqualTo(200);
  }

  static void assertPlatformThreadsBounded(int before, String moment) {
    int now = VirtualThreadCheck.platformThreadCount();
    assertThat(now - before)
        .as(
            "platform threads added while %s (%d before, %d now: %s)",
            moment, before, now, VirtualThreadCheck.platformThreadNames())
        .isLessThan(MAX_ADDED_PLATFORM_THREADS);
    assertThat(now)
        .as("platform threads live while %s: %s", moment, VirtualThreadCheck.platformThreadNames())
        .isLessThan(MAX_PLATFORM_THREADS);
  }

  static void assertNoPinningInInferpam(VirtualThreadCheck pinning) {
    List<VirtualThreadCheck.Pinning> all = pinning.pinnings();
    assertThat(all.stream().filter(p -> p.touches("dev.inferpam.")).toList())
        .as("virtual threads pinned in inferpam code (all pinnings: %s)", all)
        .isEmpty();
  }

  /** The concatenated {@code choices[0].delta.content} of every {@code data:} line but [DONE]. */
  static String deltas(String sse) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : sse.split("\n")) {
      if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
      JsonNode event = MAPPER.readTree(line.substring("data: ".length()));
      text.append(event.path("choices").path(0).path("delta").path("content").asText(""));
    }
    return text.toString();
  }

  /** The first event's {@code data:} line: lines up to the blank line that ends it. */
  static String firstEvent(BufferedSource source) throws IOException {
    String data = null;
    for (String line; (line = source.readUtf8Line()) != null && !line.isEmpty(); ) {
      if (line.startsWith("data: ")) data = line;
    }
    return data;
  }

  /** What a client read of a stream: the first event's {@code data:} line, then the rest. */
  record Streamed(int status, String firstEvent, String rest) {}

  // --- streaming -------------------------------------------------------------------------------

  @Test
  void twoHundredResponsesStreamMaskedThroughTheFilterOnVirtualThreads() throws Exception {
    warmUp();
    try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning()) {
      int before = VirtualThreadCheck.platformThreadCount();
      CountDownLatch firstEventsRead = new CountDownLatch(CALLS);
      List<Future<Streamed>> streams = new ArrayList<>();
      for (int i = 0; i < CALLS; i++) {
        streams.add(
            callers.submit(
                () -> {
                  try (Response r = client.newCall(chat("tell me", "\"stream\":true")).execute()) {
                    BufferedSource body = r.body().source();
                    String first = firstEvent(body);
                    firstEventsRead.countDown();
                    // Blocks until the application writes on.
                    return new Streamed(r.code(), first, body.readUtf8());
                  }
                }));
      }

      assertThat(firstEventsRead.await(PATIENCE.toSeconds(), SECONDS))
          .as("every stream delivered its first event while the application holds the rest")
          .isTrue();
      assertThat(streams).noneMatch(Future::isDone);
      assertThat(invocations).hasValue(CALLS);
      assertThat(onPlatformThreads)
          .as("the application (and the filter in front of it) ran on virtual threads")
          .hasValue(0);
      assertPlatformThreadsBounded(before, CALLS + " masked responses stream");

      release.countDown();

      for (Future<Streamed> stream : streams) {
        Streamed s = stream.get(PATIENCE.toSeconds(), SECONDS);
        assertThat(s.status()).isEqualTo(200);
        assertThat(deltas(s.firstEvent())).startsWith("Mail [EMAIL]");
        assertThat(deltas(s.firstEvent() + "\n\n" + s.rest())).isEqualTo(MASKED_TEXT);
        assertThat(s.rest()).endsWith(Completions.SSE_DONE).doesNotContain("jane", "example");
      }
      await().atMost(PATIENCE).until(() -> records.size() == CALLS);
      assertThat(records)
          .allSatisfy(
              r -> {
                assertThat(r.response().status()).isEqualTo(200);
                assertThat(r.response().streamed()).isTrue();
                assertThat(r.response().complete()).isTrue();
                assertThat(r.response().body()).doesNotContain(EMAIL);
              });
      assertNoPinningInInferpam(pinning);
    }
  }

  // --- waiting for review ----------------------------------------------------------------------

  @Test
  void twoHundredRequestsWaitForReviewWithoutAThread() throws Exception {
    warmUp();
    try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning()) {
      int before = VirtualThreadCheck.platformThreadCount();
      List<Future<String>> calls = new ArrayList<>();
      for (int i = 0; i < CALLS; i++) {
        Request request = held(i);
        calls.add(callers.submit(() -> answer(request)));
      }

      List<Pending> pending =
          await()
              .atMost(PATIENCE)
              .pollInterval(Duration.ofMillis(50))
              .until(() -> approvals().pending(), p -> p.size() == CALLS);
      assertThat(invocations).as("nothing reaches the application while they wait").hasValue(0);
      assertThat(calls).noneMatch(Future::isDone);
      assertPlatformThreadsBounded(before, CALLS + " requests wait for review");

      for (Pending p : pending) {
        assertThat(approvals().approve(p.id(), REVIEWER, "ticket SEC-42").kind())
            .isEqualTo(ReviewResult.Kind.DECIDED);
      }

      for (Future<String> call : calls) {
        assertThat(call.get(PATIENCE.toSeconds(), SECONDS)).isEqualTo("200 " + MASKED_ANSWER);
      }
      assertThat(invocations).hasValue(CALLS);
      assertThat(onPlatformThreads)
          .as("the approved requests went on to the application on virtual threads")
          .hasValue(0);
      await().atMost(PATIENCE).until(() -> records.size() == CALLS);
      assertThat(records)
          .allSatisfy(
              r -> {
                assertThat(r.decision().outcome()).isEqualTo("approved");
                assertThat(r.approval().reviewer()).isEqualTo("sam");
                assertThat(r.response().status()).isEqualTo(200);
                assertThat(r.response().complete()).isTrue();
              });
      assertNoPinningInInferpam(pinning);
    }
  }
}
