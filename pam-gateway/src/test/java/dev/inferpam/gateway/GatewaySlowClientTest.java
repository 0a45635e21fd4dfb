package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.ConnectionPool;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Slow and unauthenticated clients cannot stall the gateway (issue 16, defect 2): identity is
 * decided from the head, so an unauthenticated body is never read; an identified caller's body is
 * read without a thread under {@code request.body-timeout}; heads are bounded by
 * {@code request.head-timeout}; connections per client address are capped.
 *
 * <p>Timed assertions are the issue's own target; their margins are stated where they are made.
 * The upstream is a Jetty servlet (MockWebServer's delayed ACKs would dominate the latencies).
 */
class GatewaySlowClientTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");

  /** {@code request.body-timeout} and {@code request.head-timeout} in these tests. */
  private static final Duration DEADLINE = Duration.ofSeconds(2);

  /** Slack on top of {@link #DEADLINE} for the scheduler, the selector loop and a loaded machine. */
  private static final Duration SLACK = Duration.ofMillis(1500);

  private static final String CHAT = chat("llama-3.1-8b", "");

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private final AtomicInteger upstreamRequests = new AtomicInteger();
  private Server upstream;
  private Gateway gateway;
  private OkHttpClient client;
  private SlowClients slow;

  @BeforeEach
  void startUpstream() throws Exception {
    upstream = new Server();
    ServerConnector connector = new ServerConnector(upstream);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    upstream.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.addServlet(
        new ServletHolder(
            new HttpServlet() {
              private static final long serialVersionUID = 1L;

              @Override
              protected void doPost(HttpServletRequest req, HttpServletResponse resp)
                  throws IOException {
                req.getInputStream().readAllBytes();
                upstreamRequests.incrementAndGet();
                byte[] body =
                    "{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}"
                        .getBytes(StandardCharsets.UTF_8);
                resp.setContentType("application/json");
                resp.setContentLength(body.length);
                resp.getOutputStream().write(body);
              }
            }),
        "/*");
    upstream.setHandler(context);
    upstream.start();
    client =
        new OkHttpClient.Builder()
            .connectionPool(new ConnectionPool(4, 1, TimeUnit.MINUTES))
            // on the old gateway an authenticated call queued behind the stalled threads fails here
            .callTimeout(Duration.ofSeconds(10))
            .build();
    slow = new SlowClients();
  }

  @AfterEach
  void stop() throws Exception {
    slow.close();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (gateway != null) gateway.close();
    upstream.stop();
  }

  /** Starts the gateway with the test policy, {@link #DEADLINE} for heads and bodies, and {@code extra} request keys. */
  private void startGateway(String extraRequestKeys, int maxThreads) throws IOException {
    String policy =
        TestPolicies.POLICY
            + "request:\n  body-timeout: "
            + DEADLINE.toSeconds()
            + "s\n"
            + "  head-timeout: "
            + DEADLINE.toSeconds()
            + "s\n"
            + extraRequestKeys;
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .build();
    int port = ((ServerConnector) upstream.getConnectors()[0]).getLocalPort();
    gateway =
        Gateway.start(
            engine, HttpUrl.get("http://127.0.0.1:" + port + "/"), "127.0.0.1", 0, maxThreads);
  }

  /** A request head for {@code /v1/chat/completions} declaring a 1000-byte body, then {@code partial}. */
  private static String slowPost(String key, String partial) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + (key == null ? "" : "Authorization: Bearer " + key + "\r\n")
        + "Content-Length: 1000\r\n\r\n"
        + partial;
  }

  /** One authenticated chat through the gateway; its latency in microseconds. */
  private long timedChat() throws IOException {
    Request request =
        new Request.Builder()
            .url(gateway.uri() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(RequestBody.create(CHAT, JSON_TYPE))
            .build();
    long start = System.nanoTime();
    try (Response r = client.newCall(request).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).contains("\"ok\"");
    }
    return (System.nanoTime() - start) / 1_000;
  }

  private List<Long> timedChats(int n) throws IOException {
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < n; i++) out.add(timedChat());
    return out;
  }

  /** The 99th percentile (nearest rank) in microseconds. */
  private static long p99(List<Long> micros) {
    List<Long> sorted = new ArrayList<>(micros);
    Collections.sort(sorted);
    return sorted.get((int) Math.ceil(0.99 * sorted.size()) - 1);
  }

  private int health() throws IOException {
    try (Response r =
        client
            .newCall(new Request.Builder().url(gateway.uri() + "/pam/health").build())
            .execute()) {
      return r.code();
    }
  }

  @Test
  void
      aThousandUnauthenticatedSlowConnectionsNeitherDelayAuthenticatedCallersNorOutliveTheDeadline()
          throws Exception {
    startGateway("", Gateway.DEFAULT_MAX_THREADS);
    timedChats(100); // warm-up: JIT, connection pools
    List<Long> baseline = timedChats(100);

    for (int i = 0; i < 1_000; i++) slow.open(gateway.port(), slowPost(null, "{\"model\":\"l"));
    // Measured while the thousand are held open by their clients (and answered by the gateway).
    List<Long> loaded = timedChats(100);
    assertThat(health()).isEqualTo(200);

    long addedMicros = p99(loaded) - p99(baseline);
    assertThat(addedMicros)
        .as(
            "p99 added delay (baseline p99 %d us, with slow connections %d us)",
            p99(baseline), p99(loaded))
        .isLessThanOrEqualTo(50_000);
    // Every slow connection was answered 401 without its body, and closed by the gateway within
    // the deadline (each counted from its own opening).
    await()
        .atMost(DEADLINE.plus(SLACK))
        .until(() -> slow.clients().stream().allMatch(SlowClients.Client::closedByServer));
    for (SlowClients.Client c : slow.clients()) {
      assertThat(c.received()).startsWith("HTTP/1.1 401 ").contains("\"code\":\"unauthenticated\"");
      assertThat(c.openMillis()).isLessThanOrEqualTo(DEADLINE.plus(SLACK).toMillis());
    }
    assertThat(upstreamRequests).hasValue(300);
  }

  @Test
  void anUnauthenticatedRequestWhoseBodyNeverArrivesIsAnswered401AtOnceAndItsBodyIsNotRead()
      throws Exception {
    startGateway("", Gateway.DEFAULT_MAX_THREADS);
    SlowClients.Client c = slow.open(gateway.port(), slowPost(null, ""));
    // At once: well before the body deadline, which is the soonest any wait could have ended.
    await().atMost(DEADLINE.minusMillis(500)).until(c::closedByServer);
    String answer = c.received();
    assertThat(answer).startsWith("HTTP/1.1 401 ").containsIgnoringCase("connection: close");
    JsonNode error = JSON.readTree(answer.substring(answer.indexOf("\r\n\r\n") + 4)).path("error");
    assertThat(error.path("code").asText()).isEqualTo("unauthenticated");
    assertThat(error.path("message").asText()).isEqualTo("authentication failed: no credential");
    SessionRecord record = records.poll(5, TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.decision().code()).isEqualTo("unauthenticated");
    assertThat(record.request().bytes()).as("the declared length, nothing read").isEqualTo(1000);
    assertThat(record.request().body()).isNull();
    assertThat(upstreamRequests).hasValue(0);
  }

  @Test
  void anAuthenticatedBodyThatStallsIsRefused408AtTheDeadlineWithoutHoldingAThread()
      throws Exception {
    // Eight server threads only: twenty stalled bodies would take them all if reads held threads.
    startGateway("", 8);
    List<SlowClients.Client> stalled = new ArrayList<>();
    for (int i = 0; i < 20; i++)
      stalled.add(slow.open(gateway.port(), slowPost(ALICE_KEY, "{\"model\":")));
    assertThat(health()).isEqualTo(200);
    timedChat(); // another caller is served meanwhile

    await()
        .atMost(DEADLINE.plus(SLACK))
        .until(() -> stalled.stream().allMatch(SlowClients.Client::closedByServer));
    for (SlowClients.Client c : stalled) {
      assertThat(c.openMillis())
          .as("refused at the deadline, not before")
          .isGreaterThanOrEqualTo(DEADLINE.toMillis() - 100);
      String answer = c.received();
      assertThat(answer).startsWith("HTTP/1.1 408 ");
      JsonNode error =
          JSON.readTree(answer.substring(answer.indexOf("\r\n\r\n") + 4)).path("error");
      assertThat(error.path("code").asText()).isEqualTo("body_timeout");
      assertThat(error.path("message").asText()).isEqualTo("request body not received within 2s");
    }
    List<SessionRecord> timedOut = new ArrayList<>();
    await()
        .atMost(Duration.ofSeconds(5))
        .until(
            () -> {
              records.drainTo(timedOut);
              return timedOut.stream()
                      .filter(r -> "body_timeout".equals(r.decision().code()))
                      .count()
                  == 20;
            });
    SessionRecord one =
        timedOut.stream()
            .filter(r -> "body_timeout".equals(r.decision().code()))
            .findFirst()
            .orElseThrow();
    assertThat(one.principal().subject()).isEqualTo("alice");
    assertThat(one.decision().rule()).isEqualTo("request.body-timeout");
    assertThat(one.response().status()).isEqualTo(408);
    assertThat(upstreamRequests).as("only the one complete chat").hasValue(1);
  }

  @Test
  void aHeadTrickledByteByByteIsClosedAtTheHeadDeadlineThoughItNeverIdles() throws Exception {
    startGateway("", Gateway.DEFAULT_MAX_THREADS);
    SlowClients.Client c = slow.open(gateway.port(), "POST /v1/chat/completions HTTP/1.1\r\n");
    ScheduledExecutorService trickle = Executors.newSingleThreadScheduledExecutor();
    AtomicInteger sent = new AtomicInteger();
    try {
      // A header byte every 200 ms: Jetty's idle timeout alone would never fire.
      trickle.scheduleAtFixedRate(
          () -> {
            try {
              c.send("X");
              sent.incrementAndGet();
            } catch (IOException e) {
              // closed by the gateway: what the test waits for
            }
          },
          200,
          200,
          TimeUnit.MILLISECONDS);
      await().atMost(DEADLINE.plus(SLACK)).until(c::closedByServer);
    } finally {
      trickle.shutdownNow();
    }
    assertThat(c.openMillis()).isGreaterThanOrEqualTo(DEADLINE.toMillis() - 100);
    assertThat(sent.get()).as("the client was still sending").isGreaterThanOrEqualTo(5);
    assertThat(c.received()).isEmpty();
    assertThat(records).isEmpty();
  }

  @Test
  void connectionsBeyondTheCapPerClientAddressAreClosedAsTheyOpen() throws Exception {
    startGateway("  max-connections-per-client: 3\n", Gateway.DEFAULT_MAX_THREADS);
    List<SlowClients.Client> held = new ArrayList<>();
    // Three keep-alive connections, each answered once: the gateway counts all three open.
    for (int i = 0; i < 3; i++) {
      held.add(slow.open(gateway.port(), "GET /pam/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    }
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> held.stream().allMatch(c -> c.received().contains("\"ok\"")));
    SlowClients.Client excess = slow.open(gateway.port(), "");
    // Closed at once, before any head deadline could close it.
    await().atMost(DEADLINE.minusMillis(500)).until(excess::closedByServer);
    assertThat(excess.received()).isEmpty();
    assertThat(held).noneMatch(SlowClients.Client::closedByServer);

    // One of the three goes away: once the gateway has seen it go, a new connection from the
    // address is served again.
    held.get(0).channel.close();
    await()
        .atMost(Duration.ofSeconds(5))
        .ignoreExceptions()
        .untilAsserted(
            () -> {
              client.connectionPool().evictAll();
              assertThat(health()).isEqualTo(200);
            });
  }

  @Test
  void aSixteenKibibyteTokenIsDecidedByTheEngineNotRefusedByJetty() throws Exception {
    String longKey = "k".repeat(16 * 1024);
    String policy =
        TestPolicies.POLICY.replace(
            "    - name: ci-bot\n",
            "    - name: long-key\n"
                + "      sha256: "
                + TestPolicies.sha256(longKey)
                + "\n      groups: [ml-engineers]\n    - name: ci-bot\n");
    assertThat(policy).contains("long-key");
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .build();
    int port = ((ServerConnector) upstream.getConnectors()[0]).getLocalPort();
    gateway = Gateway.start(engine, HttpUrl.get("http://127.0.0.1:" + port + "/"), "127.0.0.1", 0);

    Request allowed =
        new Request.Builder()
            .url(gateway.uri() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + longKey)
            .post(RequestBody.create(CHAT, JSON_TYPE))
            .build();
    try (Response r = client.newCall(allowed).execute()) {
      assertThat(r.code()).isEqualTo(200);
    }
    // One character over the OIDC token limit, shaped like a JWT: the engine refuses it (401).
    String jwtShaped = "eyJ" + "a".repeat(8 * 1024) + "." + "b".repeat(8 * 1024 - 5) + ".c";
    assertThat(jwtShaped).hasSize(16 * 1024 + 1);
    Request tooLong = allowed.newBuilder().header("Authorization", "Bearer " + jwtShaped).build();
    try (Response r = client.newCall(tooLong).execute()) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(JSON.readTree(r.body().string()).path("error").path("code").asText())
          .isEqualTo("unauthenticated");
    }
  }
}
