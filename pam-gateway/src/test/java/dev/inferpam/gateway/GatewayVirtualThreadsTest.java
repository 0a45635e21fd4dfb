package dev.inferpam.gateway;

import static dev.inferpam.gateway.GatewayStreamingTest.endChunks;
import static dev.inferpam.gateway.GatewayStreamingTest.sse;
import static dev.inferpam.gateway.GatewayStreamingTest.writeChunk;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.testsupport.VirtualThreadCheck;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockWebServer;
import mockwebserver3.QueueDispatcher;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * On Java 21+ a held stream costs the gateway no platform thread: with 16 server threads at most,
 * 400 streams are open through the gateway at once, each has delivered its first event while the
 * upstream still holds all of them, and all complete. Runs on a JDK 21+ ({@code pam.vt.java}).
 */
@Tag("virtual-threads")
class GatewayVirtualThreadsTest {
  private static final int STREAMS = 400;
  private static final Duration WAIT = Duration.ofSeconds(30);

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();
  private MockWebServer upstream;
  private Gateway gateway;

  @BeforeEach
  void setUp() throws IOException {
    VirtualThreadCheck.requireVirtualThreads();
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
  }

  @AfterEach
  void tearDown() {
    if (gateway != null) gateway.close(Duration.ZERO);
    upstream.close();
  }

  @Test
  void manyMoreStreamsThanServerThreadsAreHeldAtOnceAndAllComplete() throws Exception {
    gateway =
        Gateway.start(
            TestPolicies.engine(records::add),
            upstream.url("/"),
            "127.0.0.1",
            0, /* maxThreads */
            16);
    CountDownLatch release = new CountDownLatch(1);
    QueueDispatcher dispatcher = new QueueDispatcher();
    dispatcher.setFailFast(false);
    upstream.setDispatcher(dispatcher);
    HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(gateway.uri() + "/v1/chat/completions"))
            .header("Authorization", "Bearer " + TestPolicies.ALICE_KEY)
            .header("Content-Type", "application/json")
            .POST(
                HttpRequest.BodyPublishers.ofString(
                    TestPolicies.chat("llama-3.1-8b", "\"stream\":true")))
            .build();
    // One stream first, whole: the request path's classes are initialised before 400 virtual
    // threads reach them at once (threads waiting for a class's initialisation hold their carrier,
    // and two carriers can all be held so: a JDK rule this test is not about).
    upstream.enqueue(
        sse(
            sink -> {
              writeChunk(sink, "data: [DONE]\n\n");
              endChunks(sink);
            }));
    assertThat(client.send(request, HttpResponse.BodyHandlers.ofString()).statusCode())
        .isEqualTo(200);
    assertThat(records.poll(WAIT.toSeconds(), TimeUnit.SECONDS)).isNotNull();
    for (int i = 0; i < STREAMS; i++) {
      upstream.enqueue(
          sse(
              sink -> {
                writeChunk(sink, "data: {\"n\":1}\n\n");
                release.await(WAIT.toSeconds(), TimeUnit.SECONDS);
                writeChunk(sink, "data: [DONE]\n\n");
                endChunks(sink);
              }));
    }

    CountDownLatch firstEvents = new CountDownLatch(STREAMS);
    List<CompletableFuture<List<String>>> streams = new ArrayList<>();
    for (int i = 0; i < STREAMS; i++) {
      Lines lines = new Lines(firstEvents);
      streams.add(
          client
              .sendAsync(request, HttpResponse.BodyHandlers.fromLineSubscriber(lines))
              .thenCompose(r -> lines.all));
    }

    assertThat(firstEvents.await(WAIT.toSeconds(), TimeUnit.SECONDS))
        .as("every stream delivered its first event while all %d were held open", STREAMS)
        .isTrue();
    release.countDown();
    for (CompletableFuture<List<String>> stream : streams) {
      assertThat(stream.get(WAIT.toSeconds(), TimeUnit.SECONDS))
          .containsExactly("data: {\"n\":1}", "", "data: [DONE]", "");
    }
    for (int i = 0; i < STREAMS; i++) {
      SessionRecord record = records.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
      assertThat(record).isNotNull();
      assertThat(record.response().complete()).isTrue();
    }
  }

  /** Collects a response's lines; counts down {@code firstEvent} at its first {@code data:} line. */
  private static final class Lines implements Flow.Subscriber<String> {
    final CompletableFuture<List<String>> all = new CompletableFuture<>();
    private final List<String> lines = new ArrayList<>();
    private final CountDownLatch firstEvent;
    private boolean counted;

    Lines(CountDownLatch firstEvent) {
      this.firstEvent = firstEvent;
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
      subscription.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(String line) {
      lines.add(line);
      if (!counted && line.startsWith("data:")) {
        counted = true;
        firstEvent.countDown();
      }
    }

    @Override
    public void onError(Throwable t) {
      all.completeExceptionally(t);
    }

    @Override
    public void onComplete() {
      all.complete(lines);
    }
  }
}
