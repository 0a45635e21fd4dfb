package dev.inferpam.okhttp;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testkit.CapturingRecorder;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.VirtualThreadCheck;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.Dispatcher;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The interceptor holds no thread of its own and never pins a virtual thread: 200 calls made from
 * virtual threads wait for a reviewer, or stream a masked answer, at once, while a JFR recording
 * of {@code jdk.VirtualThreadPinned} (threshold 0) sees no pinning in inferpam code and the live
 * platform threads do not grow with the calls; then every call completes with its answer.
 *
 * <p>Runs on a JDK 21+ ({@code virtual-threads} surefire execution); the model stand-in answers
 * on virtual threads too (the JDK's HttpServer), so the platform threads counted are the
 * client's. The JVM's few shared threads (OkHttp's task runner, Okio's watchdog, the body cleaner,
 * the engine's scheduler and recorder, the virtual-thread carriers) start during a first call,
 * before the count is taken.
 */
@Tag("virtual-threads")
class PamInterceptorVirtualThreadTest {
  static final int CALLS = 200;

  /** How many platform threads the 200 calls may add in all: far fewer than one per call. */
  static final int MAX_ADDED_PLATFORM_THREADS = 20;

  /**
   * How many platform threads the JVM may have in all then: the test JVM's own, which vary from
   * run to run (the JIT adds compiler threads while its queue is long, JFR's streaming, pools of
   * the container or client), and a few more; still far below one per call. The bound that
   * matters is {@link #MAX_ADDED_PLATFORM_THREADS}: a CI run counted 57 live with only a few added.
   */
  static final int MAX_PLATFORM_THREADS = 100;

  static final Duration PATIENCE = Duration.ofSeconds(60);
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "Bearer upstream-secret";
  static final String EMAIL = "jane.doe@example.com";
  static final Principal REVIEWER =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_API_KEY, null, Map.of());

  static final String ANSWER = Completions.chat("Write to " + EMAIL + ".", 12, 5);
  static final String MASKED_ANSWER = ANSWER.replace(EMAIL, "[EMAIL]");

  /** What the model streams before it holds: one whole event, and half of the next. */
  static final String STREAM_HEAD =
      Completions.sseDelta("Mail " + EMAIL + " today.") + "data: {\"choices\":[{\"index\":0,";

  /** What it streams once released: the rest of the second event, an address split in two. */
  static final String STREAM_TAIL =
      "\"delta\":{\"content\":\" Or jane.doe@exa" + "mple.com.\"}}]}\n\n" + Completions.SSE_DONE;

  /** The text the caller reads, in whatever events the masker releases it. */
  static final String MASKED_TEXT = "Mail [EMAIL] today. Or [EMAIL].";

  final CapturingRecorder recorder = new CapturingRecorder();
  Upstream upstream;
  PamEngine engine;
  OkHttpClient client;
  ExecutorService callers;

  @BeforeAll
  static void needsVirtualThreads() {
    VirtualThreadCheck.requireVirtualThreads();
  }

  @BeforeEach
  void start() throws IOException {
    upstream = new Upstream();
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy()))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM))
            .recorder(recorder)
            .build();
    client = client(new OkHttpClient.Builder());
    callers = VirtualThreadCheck.newVirtualThreadPerTaskExecutor();
  }

  @AfterEach
  void stop() {
    upstream.release.countDown();
    callers.shutdownNow();
    // Closing the engine expires whatever still waits, so no caller is left blocked.
    engine.close();
    client.connectionPool().evictAll();
    upstream.close();
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

  OkHttpClient client(OkHttpClient.Builder builder) {
    return PamInterceptor.of(engine)
        .install(builder)
        .readTimeout(PATIENCE)
        .retryOnConnectionFailure(false)
        .build();
  }

  /** A request for review: each its own (equal ones would wait for one review together). */
  Request held(int i) {
    return chat("dump all rows, batch " + i, "");
  }

  Request chat(String prompt, String extra) {
    return new Request.Builder()
        .url(upstream.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + ALICE)
        .post(RequestBody.create(Policies.chat("llama-3.1-8b", prompt, extra), JSON))
        .build();
  }

  InProcessApprovalService approvals() {
    return (InProcessApprovalService) engine.approvalService();
  }

  /**
   * One call of each kind the tests make (allowed, approved after a review, streamed), before
   * anything is counted or recorded: the JVM-wide threads (OkHttp's task runner, Okio's watchdog,
   * the engine's, the virtual-thread carriers) start here, and the classes these paths use are
   * loaded. (The JVM loads a class with native frames on the stack, so a virtual thread waiting
   * for another one to load the same class is pinned: once per class, a JDK limitation, and no
   * monitor of inferpam's.)
   */
  void warmUp() throws Exception {
    assertThat(callers.submit(() -> answer(chat("hi", ""))).get(PATIENCE.toSeconds(), SECONDS))
        .isEqualTo("200 " + MASKED_ANSWER);

    Future<String> held = callers.submit(() -> answer(chat("dump all, warming up", "")));
    Pending review =
        await().atMost(PATIENCE).until(() -> approvals().pending(), p -> p.size() == 1).get(0);
    approvals().approve(review.id(), REVIEWER, "warm-up");
    assertThat(held.get(PATIENCE.toSeconds(), SECONDS)).isEqualTo("200 " + MASKED_ANSWER);

    String streamed =
        callers
            .submit(() -> answer(chat("warm up", "\"stream\":true")))
            .get(PATIENCE.toSeconds(), SECONDS);
    assertThat(streamed).startsWith("200 ");
    assertThat(deltas(streamed.substring("200 ".length()))).isEqualTo(MASKED_TEXT);

    await().atMost(PATIENCE).until(() -> recorder.records.size() == 3);
    recorder.records.clear();
    upstream.authorizations.clear();
    // The test's own record class initialised now: 200 virtual threads reaching a class's first
    // use at once wait for its initialisation pinned (a JDK rule), which is not inferpam's doing.
    assertThat(new Streamed(200, "", "").status()).isEqualTo(200);
  }

  /** Makes the call: its status, a space, and its body. */
  String answer(Request request) throws IOException {
    try (Response r = client.newCall(request).execute()) {
      return r.code() + " " + r.body().string();
    }
  }

  /** Asserts that the platform threads grew by fewer than {@link #MAX_ADDED_PLATFORM_THREADS}. */
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

  Pending[] awaitAllPending() {
    List<Pending> pending =
        await()
            .atMost(PATIENCE)
            .pollInterval(Duration.ofMillis(50))
            .until(() -> approvals().pending(), p -> p.size() == CALLS);
    return pending.toArray(Pending[]::new);
  }

  void approveAll(Pending[] pending) {
    for (Pending p : pending) {
      assertThat(approvals().approve(p.id(), REVIEWER, "ticket SEC-42").kind())
          .isEqualTo(ReviewResult.Kind.DECIDED);
    }
  }

  void assertEveryCallApprovedAndRecorded() {
    assertThat(upstream.authorizations)
        .as("each approved call went upstream once, with the upstream credential")
        .hasSize(CALLS)
        .containsOnly(UPSTREAM);
    await().atMost(PATIENCE).until(() -> recorder.records.size() == CALLS);
    assertThat(recorder.records)
        .allSatisfy(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("approved");
              assertThat(r.approval().reviewer()).isEqualTo("sam");
              assertThat(r.response().status()).isEqualTo(200);
              assertThat(r.response().complete()).isTrue();
            });
  }

  // --- the check itself ------------------------------------------------------------------------

  /** Parks while its class initialises: a virtual thread running it is pinned (JDK 21 and later). */
  static final class PinsWhileInitialising {
    static {
      LockSupport.parkNanos(Duration.ofMillis(20).toNanos());
    }

    static void touch() {}
  }

  @Test
  void theRecordingSeesAVirtualThreadPinnedInInferpamCode() throws Exception {
    try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning()) {
      callers.submit(PinsWhileInitialising::touch).get(PATIENCE.toSeconds(), TimeUnit.SECONDS);

      assertThat(pinning.pinnedIn("dev.inferpam."))
          .as("a check that cannot fail proves nothing")
          .anySatisfy(
              p ->
                  assertThat(p.frames())
                      .anyMatch(f -> f.contains("PinsWhileInitialising.<clinit>")));
    }
  }

  // --- waiting for review ----------------------------------------------------------------------

  @Test
  void twoHundredCallsWaitForReviewOnVirtualThreadsWithoutAPlatformThreadEach() throws Exception {
    warmUp();
    try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning()) {
      int before = VirtualThreadCheck.platformThreadCount();
      List<Future<String>> calls = new ArrayList<>();
      for (int i = 0; i < CALLS; i++) {
        Request request = held(i);
        calls.add(
            callers.submit(
                () -> {
                  try (Response r = client.newCall(request).execute()) {
                    return r.code() + " " + r.body().string();
                  }
                }));
      }

      Pending[] pending = awaitAllPending();
      assertThat(upstream.authorizations).as("nothing goes upstream while they wait").isEmpty();
      assertThat(calls).noneMatch(Future::isDone);
      assertPlatformThreadsBounded(before, CALLS + " calls wait for review");

      approveAll(pending);

      for (Future<String> call : calls) {
        assertThat(call.get(PATIENCE.toSeconds(), TimeUnit.SECONDS))
            .isEqualTo("200 " + MASKED_ANSWER);
      }
      assertEveryCallApprovedAndRecorded();
      assertNoPinningInInferpam(pinning);
    }
  }

  /**
   * {@code enqueue}d calls wait on the dispatcher's threads: given a virtual-thread executor (as
   * the interceptor's documentation advises on Java 21+), they hold no platform thread either.
   */
  @Test
  void twoHundredEnqueuedCallsWaitForReviewOnAVirtualThreadDispatcher() throws Exception {
    warmUp();
    Dispatcher dispatcher = new Dispatcher(VirtualThreadCheck.newVirtualThreadPerTaskExecutor());
    dispatcher.setMaxRequests(CALLS);
    dispatcher.setMaxRequestsPerHost(CALLS);
    OkHttpClient async = client.newBuilder().dispatcher(dispatcher).build();
    try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning()) {
      int before = VirtualThreadCheck.platformThreadCount();
      List<CompletableFuture<String>> calls = new ArrayList<>();
      for (int i = 0; i < CALLS; i++) {
        CompletableFuture<String> answer = new CompletableFuture<>();
        async
            .newCall(held(i))
            .enqueue(
                new Callback() {
                  @Override
                  public void onResponse(Call call, Response response) {
                    try (response) {
                      answer.complete(response.code() + " " + response.body().string());
                    } catch (IOException | RuntimeException e) {
                      answer.completeExceptionally(e);
                    }
                  }

                  @Override
                  public void onFailure(Call call, IOException e) {
                    answer.completeExceptionally(e);
                  }
                });
        calls.add(answer);
      }

      Pending[] pending = awaitAllPending();
      assertThat(dispatcher.runningCallsCount()).isEqualTo(CALLS);
      assertPlatformThreadsBounded(before, CALLS + " enqueued calls wait for review");

      approveAll(pending);

      for (CompletableFuture<String> call : calls) {
        assertThat(call.get(PATIENCE.toSeconds(), TimeUnit.SECONDS))
            .isEqualTo("200 " + MASKED_ANSWER);
      }
      assertEveryCallApprovedAndRecorded();
      assertNoPinningInInferpam(pinning);
    } finally {
      dispatcher.executorService().shutdownNow();
    }
  }

  // --- streaming -------------------------------------------------------------------------------

  /** What a caller read of a stream: the first event's {@code data:} line, then the rest. */
  record Streamed(int status, String firstEvent, String rest) {}

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

  @Test
  void twoHundredMaskedStreamsAreReadOnVirtualThreadsWithoutAPlatformThreadEach() throws Exception {
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
                    // Blocks in the masking source until the model streams on.
                    return new Streamed(r.code(), first, body.readUtf8());
                  }
                }));
      }

      assertThat(firstEventsRead.await(PATIENCE.toSeconds(), TimeUnit.SECONDS))
          .as("every stream delivered its first event while the model holds the rest")
          .isTrue();
      assertThat(streams).noneMatch(Future::isDone);
      assertPlatformThreadsBounded(before, CALLS + " masked streams are open");

      upstream.release.countDown();

      for (Future<Streamed> stream : streams) {
        Streamed s = stream.get(PATIENCE.toSeconds(), TimeUnit.SECONDS);
        assertThat(s.status()).isEqualTo(200);
        assertThat(deltas(s.firstEvent())).startsWith("Mail [EMAIL]");
        assertThat(deltas(s.firstEvent() + "\n\n" + s.rest())).isEqualTo(MASKED_TEXT);
        assertThat(s.rest()).endsWith(Completions.SSE_DONE).doesNotContain("jane", "example");
      }
      await().atMost(PATIENCE).until(() -> recorder.records.size() == CALLS);
      assertThat(recorder.records)
          .allSatisfy(
              r -> {
                assertThat(r.response().streamed()).isTrue();
                assertThat(r.response().complete()).isTrue();
                assertThat(r.response().body()).doesNotContain(EMAIL);
              });
      assertNoPinningInInferpam(pinning);
    }
  }

  /**
   * The model: a JSON completion, or (for {@code "stream":true}) {@link #STREAM_HEAD} at once and
   * {@link #STREAM_TAIL} once {@link #release} opens (at once for the warm-up's "warm up"). Answers on virtual threads, so that none of
   * the platform threads counted is the model's.
   */
  static final class Upstream implements AutoCloseable {
    final CountDownLatch release = new CountDownLatch(1);
    final Queue<String> authorizations = new ConcurrentLinkedQueue<>();
    private final ExecutorService exchanges = VirtualThreadCheck.newVirtualThreadPerTaskExecutor();
    private final HttpServer server;

    Upstream() throws IOException {
      server =
          HttpServer.create(
              new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 2 * CALLS);
      server.setExecutor(exchanges);
      server.createContext("/", this::answer);
      server.start();
    }

    String url(String path) {
      return "http://127.0.0.1:" + server.getAddress().getPort() + path;
    }

    private void answer(HttpExchange exchange) throws IOException {
      try {
        String body = new String(exchange.getRequestBody().readAllBytes(), UTF_8);
        authorizations.add(String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")));
        OutputStream out = exchange.getResponseBody();
        if (!body.contains("\"stream\":true")) {
          byte[] json = ANSWER.getBytes(UTF_8);
          exchange.getResponseHeaders().set("Content-Type", "application/json");
          exchange.sendResponseHeaders(200, json.length);
          out.write(json);
          return;
        }
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream");
        exchange.sendResponseHeaders(200, 0); // chunked
        out.write(STREAM_HEAD.getBytes(UTF_8));
        out.flush();
        boolean warmUp = body.contains("warm up");
        if (!warmUp && !release.await(PATIENCE.toSeconds(), TimeUnit.SECONDS)) {
          throw new IOException("the stream was never released");
        }
        out.write(STREAM_TAIL.getBytes(UTF_8));
        out.flush();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      } finally {
        exchange.close();
      }
    }

    @Override
    public void close() {
      server.stop(0);
      exchanges.shutdownNow();
    }
  }
}
