package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.CI_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.Verdict;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Responses pass through as they are written: flushes reach the client, async completes. */
class PamFilterStreamingTest {
  private TestServer server;
  private OkHttpClient client;

  @BeforeEach
  void start() throws Exception {
    server = new TestServer(false);
    client =
        new OkHttpClient.Builder()
            .readTimeout(Duration.ofSeconds(10))
            .retryOnConnectionFailure(false)
            .build();
  }

  @AfterEach
  void stop() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    server.close();
  }

  private Request post(String path, String body) {
    return new Request.Builder()
        .url(server.url(path))
        .header("Authorization", "Bearer " + CI_KEY)
        .post(
            RequestBody.create(
                body.getBytes(StandardCharsets.UTF_8), MediaType.get("application/json")))
        .build();
  }

  /** The next event's data line; blank lines end an event. */
  private static String readEvent(BufferedSource source) throws Exception {
    String data = null;
    for (String line; (line = source.readUtf8Line()) != null; ) {
      if (line.isEmpty()) return data;
      if (line.startsWith("data: ")) data = line.substring("data: ".length());
    }
    return data;
  }

  @Test
  void serverSentEventsReachTheClientAsTheyAreFlushed() throws Exception {
    String body = "{\"model\":\"llama-3.1-8b\",\"prompt\":\"hi\",\"stream\":true}";

    try (Response response = client.newCall(post("/v1/completions", body)).execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.header("Content-Type")).startsWith("text/event-stream");
      BufferedSource source = response.body().source();

      // The servlet holds the second event until this latch opens: reading the first event here
      // proves the flush went through the filter rather than into a buffer.
      assertThat(readEvent(source)).isEqualTo("{\"text\":\"first ✓\"}");
      assertThat(server.secondEventWritten.getCount()).isEqualTo(1);
      server.releaseSecondEvent.countDown();

      assertThat(readEvent(source)).isEqualTo("{\"text\":\"second\"}");
      assertThat(readEvent(source)).isEqualTo("[DONE]");
    }
    assertThat(server.secondEventWritten.await(10, TimeUnit.SECONDS)).isTrue();

    TestServer.Seen seen = server.nextSeen();
    SessionRecord record = server.awaitRecord(((Verdict) seen.exchange()).id());
    assertThat(record.response().streamed()).isTrue();
    assertThat(record.response().complete()).isTrue();
    assertThat(record.response().body())
        .isEqualTo(
            "data: {\"text\":\"first ✓\"}\n\ndata: {\"text\":\"second\"}\n\ndata: [DONE]\n\n");
    assertThat(record.response().bytes())
        .isEqualTo(record.response().body().getBytes(StandardCharsets.UTF_8).length);
  }

  @Test
  void asyncServletSeesTheWrappersAndTheExchangeEndsWhenAsyncCompletes() throws Exception {
    String body = "{\"model\":\"llama-3.1-8b\",\"input\":\"hi\"}";

    String answer;
    try (Response response = client.newCall(post("/v1/embeddings", body)).execute()) {
      assertThat(response.code()).isEqualTo(200);
      answer = response.body().string();
    }

    assertThat(answer).isEqualTo("{\"data\":[{\"embedding\":[0.5]}]}");
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.body()).isEqualTo(body.getBytes(StandardCharsets.UTF_8));
    assertThat(seen.authorization()).isNull();
    assertThat(seen.exchange()).isNotNull();

    SessionRecord record = server.awaitRecord(((Verdict) seen.exchange()).id());
    assertThat(record.response().complete()).isTrue();
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo(answer);
    assertThat(server.records).as("one record per exchange").hasSize(1);
  }
}
