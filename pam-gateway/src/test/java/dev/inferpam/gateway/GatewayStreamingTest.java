package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import okhttp3.Call;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Streaming through the gateway: events pass one by one, a client that leaves stops the upstream
 * call, and closing the gateway lets an in-flight stream finish. The upstream is MockWebServer
 * with a hand-written chunked body whose events are gated by latches, so the tests know, without
 * sleeping, what the upstream has sent.
 */
class GatewayStreamingTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final Duration WAIT = Duration.ofSeconds(10);

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private MockWebServer upstream;
  private Gateway gateway;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    gateway = Gateway.start(TestPolicies.engine(records::add), upstream.url("/"), "127.0.0.1", 0);
    client = new OkHttpClient.Builder().readTimeout(WAIT).build();
  }

  @AfterEach
  void tearDown() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    gateway.close();
    upstream.close();
  }

  @Test
  void firstEventArrivesBeforeTheUpstreamHasFinished() throws Exception {
    CountDownLatch firstEventReceived = new CountDownLatch(1);
    AtomicBoolean secondEventHeldBack = new AtomicBoolean();
    upstream.enqueue(
        sse(
            sink -> {
              writeChunk(sink, "data: {\"n\":1}\n\n");
              // The rest is sent only once the client has read the first event through the gateway.
              secondEventHeldBack.set(firstEventReceived.await(WAIT.toSeconds(), TimeUnit.SECONDS));
              writeChunk(sink, "data: {\"n\":2}\n\n");
              writeChunk(sink, "data: [DONE]\n\n");
              endChunks(sink);
            }));

    try (Response response = client.newCall(streamingChat()).execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.header("Content-Type")).startsWith("text/event-stream");
      assertThat(response.header("Content-Length")).isNull();
      BufferedSource source = response.body().source();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");
      assertThat(source.readUtf8LineStrict()).isEmpty();
      firstEventReceived.countDown();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: {\"n\":2}");
      assertThat(source.readUtf8LineStrict()).isEmpty();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: [DONE]");
      assertThat(source.readUtf8LineStrict()).isEmpty();
      assertThat(source.exhausted()).isTrue();
    }
    assertThat(secondEventHeldBack)
        .as("the upstream waited for the client to see the first event")
        .isTrue();

    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isTrue();
  }

  @Test
  void clientLeavingMidStreamCancelsTheUpstreamCall() throws Exception {
    CountDownLatch clientGone = new CountDownLatch(1);
    AtomicBoolean upstreamWriteFailed = new AtomicBoolean();
    upstream.enqueue(
        sse(
            sink -> {
              writeChunk(sink, "data: {\"n\":1}\n\n");
              try {
                clientGone.await(WAIT.toSeconds(), TimeUnit.SECONDS);
                // Keep generating, as a model would, until the gateway hangs up on us.
                long deadline = System.nanoTime() + WAIT.toNanos();
                while (System.nanoTime() < deadline) writeChunk(sink, "data: {\"n\":\"more\"}\n\n");
              } catch (IOException e) {
                upstreamWriteFailed.set(true);
              }
            }));

    Call call = client.newCall(streamingChat());
    Response response = call.execute();
    assertThat(response.body().source().readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");
    call.cancel();
    response.close();
    clientGone.countDown();

    await().atMost(WAIT).untilTrue(upstreamWriteFailed);
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isFalse();
  }

  @Test
  void upstreamBreakingOffMidStreamTruncatesTheClientStream() throws Exception {
    // A raw socket, because the point is an upstream that dies mid-body: one chunk, then the
    // connection closes without the terminating chunk.
    try (ServerSocket dying = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      CompletableFuture<Void> upstreamSide =
          CompletableFuture.runAsync(
              () -> {
                try (Socket s = dying.accept()) {
                  s.setSoTimeout((int) WAIT.toMillis());
                  readRequest(s.getInputStream());
                  String first = "data: {\"n\":1}\n\n";
                  s.getOutputStream()
                      .write(
                          ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  + "Transfer-Encoding: chunked\r\n\r\n"
                                  + Integer.toHexString(first.length())
                                  + "\r\n"
                                  + first
                                  + "\r\n")
                              .getBytes(StandardCharsets.UTF_8));
                  s.getOutputStream().flush();
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
      HttpUrl dyingUrl = HttpUrl.get("http://127.0.0.1:" + dying.getLocalPort() + "/");
      try (Gateway gw = Gateway.start(TestPolicies.engine(records::add), dyingUrl, "127.0.0.1", 0);
          Response response = client.newCall(streamingChat(gw)).execute()) {
        BufferedSource source = response.body().source();
        assertThat(source.readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");
        assertThat(source.readUtf8LineStrict()).isEmpty();
        // A clean end would tell the client the answer was complete; it must see a broken stream.
        assertThatThrownBy(source::readUtf8LineStrict).isInstanceOf(IOException.class);
      }
      upstreamSide.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isFalse();
  }

  @Test
  void closeCutsOffStreamsStillRunningAfterTheDrainTimeout() throws Exception {
    CountDownLatch never = new CountDownLatch(1);
    upstream.enqueue(
        sse(
            sink -> {
              writeChunk(sink, "data: {\"n\":1}\n\n");
              never.await(WAIT.toSeconds(), TimeUnit.SECONDS);
            }));

    try (Response response = client.newCall(streamingChat()).execute()) {
      BufferedSource source = response.body().source();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");

      long started = System.nanoTime();
      gateway.close(Duration.ofMillis(200));
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Gateway.CUT_OFF_GRACE);

      assertThat(source.readUtf8LineStrict()).isEmpty();
      assertThatThrownBy(source::readUtf8LineStrict).isInstanceOf(IOException.class);
    } finally {
      never.countDown();
    }
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isFalse();
  }

  @Test
  void closeWaitsForInFlightStreamThenClosesTheEngine() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    upstream.enqueue(
        sse(
            sink -> {
              writeChunk(sink, "data: {\"n\":1}\n\n");
              release.await(WAIT.toSeconds(), TimeUnit.SECONDS);
              writeChunk(sink, "data: [DONE]\n\n");
              endChunks(sink);
            }));

    try (Response response = client.newCall(streamingChat()).execute()) {
      BufferedSource source = response.body().source();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");

      CompletableFuture<Void> closing = CompletableFuture.runAsync(gateway::close);
      // Draining has begun once the gateway no longer accepts connections.
      await().atMost(WAIT).until(() -> refusesConnections(gateway.port()));
      assertThat(closing).isNotDone();

      release.countDown();
      assertThat(source.readUtf8LineStrict()).isEmpty();
      assertThat(source.readUtf8LineStrict()).isEqualTo("data: [DONE]");
      closing.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    }
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isTrue();
  }

  private Request streamingChat() {
    return streamingChat(gateway);
  }

  static Request streamingChat(Gateway gw) {
    return new Request.Builder()
        .url(HttpUrl.get(gw.uri()).newBuilder().encodedPath("/v1/chat/completions").build())
        .header("Authorization", "Bearer " + ALICE_KEY)
        .post(RequestBody.create(chat("llama-3.1-8b", "\"stream\":true"), JSON_TYPE))
        .build();
  }

  /** Reads one request with a Content-Length body, so the gateway's write completes. */
  private static void readRequest(InputStream in) throws IOException {
    StringBuilder head = new StringBuilder();
    while (!head.toString().endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) throw new IOException("request ended early");
      head.append((char) b);
    }
    Matcher m = Pattern.compile("(?i)content-length: *(\\d+)").matcher(head);
    if (m.find()) in.readNBytes(Integer.parseInt(m.group(1)));
  }

  private static boolean refusesConnections(int port) {
    try {
      new Socket(InetAddress.getLoopbackAddress(), port).close();
      return false;
    } catch (ConnectException e) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** What the upstream writes, in the chunked framing it must produce itself. */
  @FunctionalInterface
  interface Events {
    void write(BufferedSink sink) throws IOException, InterruptedException;
  }

  /**
   * A chunked SSE response whose body the test writes: MockWebServer sends what the body writes
   * as it is flushed, which lets a test hold events back.
   */
  static MockResponse sse(Events events) {
    MockResponseBody body =
        new MockResponseBody() {
          @Override
          public long getContentLength() {
            return -1;
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            try {
              events.write(sink);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new IOException(e);
            }
          }
        };
    return new MockResponse.Builder()
        .code(200)
        .addHeader("Content-Type", "text/event-stream")
        .body(body)
        .removeHeader("Content-Length")
        .addHeader("Transfer-Encoding", "chunked")
        .build();
  }

  static void writeChunk(BufferedSink sink, String data) throws IOException {
    byte[] bytes = data.getBytes(StandardCharsets.UTF_8);
    sink.writeHexadecimalUnsignedLong(bytes.length)
        .writeUtf8("\r\n")
        .write(bytes)
        .writeUtf8("\r\n");
    sink.flush();
  }

  static void endChunks(BufferedSink sink) throws IOException {
    // MockWebServer writes the (empty) trailers and the final CRLF after the body.
    sink.writeUtf8("0\r\n");
    sink.flush();
  }
}
