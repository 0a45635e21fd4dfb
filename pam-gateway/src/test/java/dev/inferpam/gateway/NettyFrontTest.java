package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.approvalPolicy;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What the Netty front does beyond what the shared gateway tests (run on both fronts) observe:
 * a client that leaves while its request waits for review withdraws it, upstream connections are
 * pooled and a pooled one the upstream closed is not used, pipelined requests are answered in
 * order, and {@code Expect: 100-continue} is answered only once the head is allowed.
 */
class NettyFrontTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(10);

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private final List<AutoCloseable> toClose = new ArrayList<>();
  private MockWebServer upstream;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    // Echoes the request body, so that each answer says which request it answers.
    upstream.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            String body = request.getBody() == null ? "" : request.getBody().utf8();
            return new MockResponse.Builder()
                .code(200)
                .addHeader("Content-Type", "application/json")
                .body("{\"echo\":" + JSON.valueToTree(body) + "}")
                .build();
          }
        });
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    client = new OkHttpClient.Builder().readTimeout(WAIT).build();
  }

  @AfterEach
  void tearDown() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
    upstream.close();
  }

  private Gateway start(String policy, HttpUrl to) throws IOException {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .build();
    Gateway gateway =
        Gateway.start(
            engine, to, "127.0.0.1", 0, Gateway.DEFAULT_MAX_THREADS, Gateway.Server.NETTY);
    toClose.add(() -> gateway.close(Duration.ofSeconds(5)));
    return gateway;
  }

  /** One response read off the stream: its head and body (Content-Length or chunked). */
  private static String readResponse(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int c = in.read();
      if (c < 0) throw new IOException("closed in the head: " + head);
      head.write(c);
    }
    String h = head.toString(StandardCharsets.ISO_8859_1);
    java.util.regex.Matcher length =
        java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)").matcher(h);
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    if (length.find()) {
      body.write(in.readNBytes(Integer.parseInt(length.group(1))));
    } else {
      while (true) {
        StringBuilder size = new StringBuilder();
        for (int c = in.read(); c != '\n'; c = in.read()) {
          if (c < 0) throw new IOException("closed in a chunk");
          if (c != '\r') size.append((char) c);
        }
        int n = Integer.parseInt(size.toString().trim(), 16);
        body.write(in.readNBytes(n));
        in.readNBytes(2);
        if (n == 0) break;
      }
    }
    return h + body.toString(StandardCharsets.UTF_8);
  }

  private static String post(String path, String key, String body, String extraHeaders) {
    return "POST "
        + path
        + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + (key == null ? "" : "Authorization: Bearer " + key + "\r\n")
        + extraHeaders
        + "Content-Length: "
        + body.getBytes(StandardCharsets.UTF_8).length
        + "\r\n\r\n"
        + body;
  }

  /** The threads the engine decided and ended an exchange on, as its listener saw them. */
  private String[] decideAndEndThreads(boolean givenPartsNeverWait) throws Exception {
    BlockingQueue<String> decided = new LinkedBlockingQueue<>();
    BlockingQueue<String> ended = new LinkedBlockingQueue<>();
    PamEngine.Builder b =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .eventListener(
                new dev.inferpam.core.ExchangeListener() {
                  @Override
                  public void decided(
                      dev.inferpam.core.ExchangeInfo exchange, dev.inferpam.api.Decision d) {
                    decided.add(Thread.currentThread().getName());
                  }

                  @Override
                  public void ended(dev.inferpam.core.ExchangeInfo exchange, boolean complete) {
                    ended.add(Thread.currentThread().getName());
                  }
                });
    if (givenPartsNeverWait) b.givenPartsNeverWait();
    PamEngine engine = b.build();
    assertThat(engine.decidesWithoutWaiting()).isEqualTo(givenPartsNeverWait);
    // An IP address: nothing to look up before connecting.
    HttpUrl to = HttpUrl.get("http://127.0.0.1:" + upstream.getPort() + "/");
    Gateway gateway =
        Gateway.start(
            engine, to, "127.0.0.1", 0, Gateway.DEFAULT_MAX_THREADS, Gateway.Server.NETTY);
    toClose.add(() -> gateway.close(Duration.ofSeconds(5)));
    Request request =
        new Request.Builder()
            .url("http://127.0.0.1:" + gateway.port() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(
                okhttp3.RequestBody.create(
                    chat("llama-3.1-8b", ""), okhttp3.MediaType.get("application/json")))
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.body().string()).contains("\"echo\"");
    }
    String end = ended.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    return new String[] {decided.poll(WAIT.toSeconds(), TimeUnit.SECONDS), end};
  }

  @Test
  void anEngineWhosePartsNeverWaitDecidesAndEndsOnTheEventLoop() throws Exception {
    String[] threads = decideAndEndThreads(true);
    assertThat(threads[0]).as("decided on").startsWith("inferpam-netty-");
    assertThat(threads[1]).as("ended on").startsWith("inferpam-netty-");
    assertThat(records.poll(WAIT.toSeconds(), TimeUnit.SECONDS).response().status()).isEqualTo(200);
  }

  @Test
  void anEngineWithPartsThatMayWaitDecidesAndEndsOffTheEventLoop() throws Exception {
    String[] threads = decideAndEndThreads(false);
    assertThat(threads[0]).as("decided on").startsWith("inferpam-request");
    assertThat(threads[1]).as("ended on").startsWith("inferpam-request");
    assertThat(records.poll(WAIT.toSeconds(), TimeUnit.SECONDS).response().status()).isEqualTo(200);
  }

  @Test
  void theNextRequestOnAConnectionIsTakenOnlyOnceThePreviousExchangeHasEnded() throws Exception {
    // The recorder (an application's: it may wait, so exchanges end off the event loop) holds the
    // first exchange's end until the second request is decided, or a second has passed. Taken
    // too early, the second would be decided while the first still held its end: a client that
    // reads its quota right after an answer would not see that answer's tokens.
    List<String> order = java.util.Collections.synchronizedList(new ArrayList<>());
    CountDownLatch secondDecided = new CountDownLatch(1);
    AtomicInteger decisions = new AtomicInteger();
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(
                r -> {
                  try {
                    secondDecided.await(1, TimeUnit.SECONDS);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  order.add("ended " + r.request().body());
                })
            .eventListener(
                new dev.inferpam.core.ExchangeListener() {
                  @Override
                  public void decided(
                      dev.inferpam.core.ExchangeInfo exchange, dev.inferpam.api.Decision d) {
                    int n = decisions.incrementAndGet();
                    order.add("decided " + n);
                    if (n == 2) secondDecided.countDown();
                  }
                })
            .build();
    assertThat(engine.endsWithoutWaiting()).isFalse();
    Gateway gateway =
        Gateway.start(
            engine,
            upstream.url("/"),
            "127.0.0.1",
            0,
            Gateway.DEFAULT_MAX_THREADS,
            Gateway.Server.NETTY);
    toClose.add(() -> gateway.close(Duration.ofSeconds(5)));
    String first = chat("llama-3.1-8b", "");
    String second = chat("llama-3.1-8b", "\"temperature\":0.5");
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout((int) WAIT.toMillis());
      OutputStream out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      out.write(
          post("/v1/chat/completions", ALICE_KEY, first, "").getBytes(StandardCharsets.UTF_8));
      out.flush();
      assertThat(readResponse(in)).startsWith("HTTP/1.1 200");
      out.write(
          post("/v1/chat/completions", ALICE_KEY, second, "").getBytes(StandardCharsets.UTF_8));
      out.flush();
      assertThat(readResponse(in)).startsWith("HTTP/1.1 200");
    }
    await().atMost(WAIT).until(() -> order.size() == 4);
    assertThat(order)
        .containsExactly("decided 1", "ended " + first, "decided 2", "ended " + second);
  }

  @Test
  void aClientThatLeavesWhileItsRequestWaitsForReviewWithdrawsIt() throws Exception {
    Gateway gateway = start(approvalPolicy("5m", "0s", "", ""), upstream.url("/"));
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"dump all rows\"}]}";
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket
          .getOutputStream()
          .write(
              post("/v1/chat/completions", ALICE_KEY, body, "").getBytes(StandardCharsets.UTF_8));
      await().atMost(WAIT).until(() -> pending(gateway).size() == 1);
    }
    // The reviewer's list empties without a decision: the request was withdrawn.
    await().atMost(WAIT).until(() -> pending(gateway).isEmpty());
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.principal().subject()).isEqualTo("alice");
    assertThat(record.decision().code()).isEqualTo("approval_expired");
    assertThat(record.response().complete()).isFalse();
    assertThat(upstream.getRequestCount()).isZero();
  }

  private List<JsonNode> pending(Gateway gateway) throws IOException {
    Request list =
        new Request.Builder()
            .url(gateway.uri() + "/pam/approvals")
            .header("Authorization", "Bearer " + BOB_KEY)
            .build();
    try (Response r = client.newCall(list).execute()) {
      assertThat(r.code()).isEqualTo(200);
      List<JsonNode> items = new ArrayList<>();
      JSON.readTree(r.body().string()).path("approvals").forEach(items::add);
      return items;
    }
  }

  @Test
  void exchangesShareKeepAliveUpstreamConnections() throws Exception {
    Gateway gateway = start(TestPolicies.POLICY, upstream.url("/"));
    for (int i = 0; i < 3; i++) {
      assertThat(chatThrough(gateway, "n" + i)).contains("n" + i);
    }
    List<Integer> connections = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      connections.add(upstream.takeRequest(5, TimeUnit.SECONDS).getConnectionIndex());
    }
    // One client connection, one event loop: every exchange on the same upstream connection.
    assertThat(connections).containsOnly(connections.get(0));
  }

  private String chatThrough(Gateway gateway, String marker) throws IOException {
    Request request =
        new Request.Builder()
            .url(gateway.uri() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(
                okhttp3.RequestBody.create(
                    chat("llama-3.1-8b", "\"user\":\"" + marker + "\""),
                    okhttp3.MediaType.get("application/json")))
            .build();
    try (Response r = client.newCall(request).execute()) {
      assertThat(r.code()).isEqualTo(200);
      return r.body().string();
    }
  }

  @Test
  void aPooledConnectionTheUpstreamClosedIsNotUsed() throws Exception {
    // An upstream that answers each connection once, keep-alive by its headers, then closes it.
    AtomicInteger accepted = new AtomicInteger();
    CountDownLatch firstClosed = new CountDownLatch(1);
    ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    toClose.add(server);
    Thread upstreamThread =
        new Thread(
            () -> {
              while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                  accepted.incrementAndGet();
                  readRequest(s.getInputStream());
                  s.getOutputStream()
                      .write(
                          ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  + "Content-Length: 2\r\n\r\n{}")
                              .getBytes(StandardCharsets.US_ASCII));
                  s.getOutputStream().flush();
                } catch (IOException e) {
                  return;
                }
                firstClosed.countDown();
              }
            },
            "closing-upstream");
    upstreamThread.setDaemon(true);
    upstreamThread.start();
    Gateway gateway =
        start(TestPolicies.POLICY, HttpUrl.get("http://127.0.0.1:" + server.getLocalPort() + "/"));

    assertThat(chatThrough(gateway, "first")).isEqualTo("{}");
    assertThat(firstClosed.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(chatThrough(gateway, "second")).isEqualTo("{}");
    assertThat(accepted).hasValue(2);
    SessionRecord first = records.poll(5, TimeUnit.SECONDS);
    SessionRecord second = records.poll(5, TimeUnit.SECONDS);
    assertThat(first.response().complete()).isTrue();
    assertThat(second.response().status()).isEqualTo(200);
    assertThat(second.response().complete()).isTrue();
  }

  /** Reads one request head and its Content-Length body. */
  private static void readRequest(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    while (matched < 4) {
      int b = in.read();
      if (b < 0) throw new IOException("closed");
      head.write(b);
      matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
    }
    String text = head.toString(StandardCharsets.US_ASCII);
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("(?i)content-length: *(\\d+)").matcher(text);
    if (m.find()) in.readNBytes(Integer.parseInt(m.group(1)));
  }

  @Test
  void pipelinedRequestsAreAnsweredOneAfterTheOtherInOrder() throws Exception {
    Gateway gateway = start(TestPolicies.POLICY, upstream.url("/"));
    String first = chat("llama-3.1-8b", "\"user\":\"first\"");
    String second = chat("llama-3.1-8b", "\"user\":\"second\"");
    String both =
        post("/v1/chat/completions", ALICE_KEY, first, "")
            + post("/v1/chat/completions", ALICE_KEY, second, "Connection: close\r\n");
    String answers;
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout((int) WAIT.toMillis());
      socket.getOutputStream().write(both.getBytes(StandardCharsets.UTF_8));
      answers = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
    int one = answers.indexOf("HTTP/1.1 200 ");
    int two = answers.indexOf("HTTP/1.1 200 ", one + 1);
    assertThat(one).isZero();
    assertThat(two).isPositive();
    assertThat(answers.substring(0, two)).contains("first").doesNotContain("second");
    assertThat(answers.substring(two)).contains("second");
  }

  @Test
  void expectContinueIsAnsweredOnlyOnceTheHeadIsAllowed() throws Exception {
    Gateway gateway = start(TestPolicies.POLICY, upstream.url("/"));
    String body = chat("llama-3.1-8b", "");
    String head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Authorization: Bearer "
            + ALICE_KEY
            + "\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: "
            + body.length()
            + "\r\n\r\n";
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout((int) WAIT.toMillis());
      OutputStream out = socket.getOutputStream();
      out.write(head.getBytes(StandardCharsets.US_ASCII));
      InputStream in = socket.getInputStream();
      byte[] interim = in.readNBytes("HTTP/1.1 100 Continue\r\n\r\n".length());
      assertThat(new String(interim, StandardCharsets.US_ASCII))
          .isEqualTo("HTTP/1.1 100 Continue\r\n\r\n");
      out.write(body.getBytes(StandardCharsets.US_ASCII));
      String answer = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 200 ").contains("\"echo\"");
    }

    // Without a credential: refused from the head, no 100, the body never asked for.
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout((int) WAIT.toMillis());
      socket
          .getOutputStream()
          .write(
              head.replace("Authorization: Bearer " + ALICE_KEY + "\r\n", "")
                  .getBytes(StandardCharsets.US_ASCII));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(answer).startsWith("HTTP/1.1 401 ").doesNotContain("100 Continue");
      assertThat(answer).containsIgnoringCase("connection: close");
    }
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  @Test
  void serveNamesTheTwoServersItKnows() {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {
              "serve",
              "--policy",
              "p.yaml",
              "--upstream",
              "http://127.0.0.1:9/",
              "--server",
              "tomcat"
            },
            new java.io.PrintStream(out, true, StandardCharsets.UTF_8),
            new java.io.PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(2);
    assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(err.toString(StandardCharsets.UTF_8).lines())
        .containsExactly(
            "inferpam: --server: expected jetty or netty as the gateway server, was \"tomcat\""
                + " (see --help)");
    assertThat(Gateway.Server.parse(" Netty ")).isEqualTo(Gateway.Server.NETTY);
    assertThat(Gateway.Server.parse("jetty")).isEqualTo(Gateway.Server.JETTY);
  }

  @Test
  void nettyIsTheDefaultFrontAndThePropertyChoosesJetty() {
    String before = System.getProperty(Gateway.SERVER_PROPERTY);
    try {
      System.clearProperty(Gateway.SERVER_PROPERTY);
      assertThat(Gateway.Server.fromSystemProperty()).isEqualTo(Gateway.Server.NETTY);
      System.setProperty(Gateway.SERVER_PROPERTY, " ");
      assertThat(Gateway.Server.fromSystemProperty()).isEqualTo(Gateway.Server.NETTY);
      System.setProperty(Gateway.SERVER_PROPERTY, "jetty");
      assertThat(Gateway.Server.fromSystemProperty()).isEqualTo(Gateway.Server.JETTY);
    } finally {
      if (before == null) System.clearProperty(Gateway.SERVER_PROPERTY);
      else System.setProperty(Gateway.SERVER_PROPERTY, before);
    }
  }
}
