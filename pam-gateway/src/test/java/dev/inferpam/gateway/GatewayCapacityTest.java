package dev.inferpam.gateway;

import static dev.inferpam.gateway.GatewayStreamingTest.endChunks;
import static dev.inferpam.gateway.GatewayStreamingTest.sse;
import static dev.inferpam.gateway.GatewayStreamingTest.streamingChat;
import static dev.inferpam.gateway.GatewayStreamingTest.writeChunk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import mockwebserver3.MockWebServer;
import okhttp3.Call;
import okhttp3.OkHttpClient;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway's bounds as a client sees them: past {@code request.max-in-flight} a request is
 * answered 503 {@code overloaded} with {@code Retry-After} without reaching the upstream, and a
 * client that stops reading a stream makes the gateway hold a bounded amount, pushing back on
 * the upstream instead of buffering what the model keeps producing.
 */
class GatewayCapacityTest {
  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private MockWebServer upstream;
  private Gateway gateway;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    client = new OkHttpClient.Builder().readTimeout(WAIT).build();
  }

  @AfterEach
  void tearDown() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (gateway != null) gateway.close(Duration.ZERO);
    upstream.close();
  }

  private void startGateway(String requestSection) throws IOException {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY + requestSection))
            .credentialProvider(
                () -> new Credential("Authorization", TestPolicies.UPSTREAM_AUTHORIZATION))
            .recorder(records::add)
            .build();
    gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
  }

  @Test
  void pastMaxInFlightARequestIs503OverloadedWithRetryAfterAndNeverForwarded() throws Exception {
    startGateway("request:\n  max-in-flight: 2\n");
    CountDownLatch release = new CountDownLatch(1);
    for (int i = 0; i < 3; i++) {
      upstream.enqueue(
          sse(
              sink -> {
                writeChunk(sink, "data: {\"n\":1}\n\n");
                release.await(WAIT.toSeconds(), TimeUnit.SECONDS);
                writeChunk(sink, "data: [DONE]\n\n");
                endChunks(sink);
              }));
    }
    Response first = client.newCall(streamingChat(gateway)).execute();
    Response second = client.newCall(streamingChat(gateway)).execute();
    assertThat(first.body().source().readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");
    assertThat(second.body().source().readUtf8LineStrict()).isEqualTo("data: {\"n\":1}");

    try (Response third = client.newCall(streamingChat(gateway)).execute()) {
      assertThat(third.code()).isEqualTo(503);
      assertThat(third.header("Retry-After")).isEqualTo("1");
      JsonNode error = JSON.readTree(third.body().string()).get("error");
      assertThat(error.get("code").asText()).isEqualTo("overloaded");
      assertThat(error.get("message").asText())
          .isEqualTo("too many requests in flight; retry later");
    }
    assertThat(upstream.getRequestCount()).as("the refused request was not forwarded").isEqualTo(2);
    SessionRecord refused = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(refused).isNotNull();
    assertThat(refused.response().status()).isEqualTo(503);
    assertThat(refused.decision().rule()).isEqualTo("request.max-in-flight");

    release.countDown();
    assertThat(first.body().string()).contains("data: [DONE]");
    assertThat(second.body().string()).contains("data: [DONE]");
    first.close();
    second.close();
    // Both streams ended, so their places are free again.
    await().atMost(WAIT).until(() -> records.size() == 2);
    try (Response fourth = client.newCall(streamingChat(gateway)).execute()) {
      assertThat(fourth.code()).isEqualTo(200);
      assertThat(fourth.body().string()).contains("data: [DONE]");
    }
  }

  @Test
  void aClientThatStopsReadingHoldsABoundedAmountAndTheUpstreamIsPushedBack() throws Exception {
    startGateway("");
    long wanted = 256L * 1024 * 1024; // far more than any buffer on the way may hold
    AtomicLong written = new AtomicLong();
    AtomicBoolean upstreamCut = new AtomicBoolean();
    String event =
        "data: {\"choices\":[{\"delta\":{\"content\":\"" + "x".repeat(1000) + "\"}}]}\n\n";
    upstream.enqueue(
        sse(
            sink -> {
              try {
                while (written.get() < wanted) {
                  writeChunk(sink, event);
                  written.addAndGet(event.length());
                }
                endChunks(sink);
              } catch (IOException e) {
                upstreamCut.set(true);
              }
            }));

    Call call = client.newCall(streamingChat(gateway));
    Response response = call.execute();
    InputStream body = response.body().byteStream();
    assertThat(body.readNBytes(6)).asString().isEqualTo("data: ");
    // The client reads no more. Once every buffer on the way is full, the upstream cannot write.
    AtomicLong last = new AtomicLong(-1);
    await()
        .atMost(Duration.ofSeconds(30))
        .pollInterval(Duration.ofMillis(300))
        .until(() -> written.get() == last.getAndSet(written.get()));
    assertThat(written.get())
        .as("what the upstream could send while the client read nothing (socket buffers included)")
        .isLessThan(64L * 1024 * 1024);

    call.cancel();
    response.close();
    await().atMost(WAIT).untilTrue(upstreamCut);
    SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(record).isNotNull();
    assertThat(record.response().complete()).isFalse();
  }
}
