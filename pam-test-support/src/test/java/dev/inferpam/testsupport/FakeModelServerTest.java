package dev.inferpam.testsupport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class FakeModelServerTest {
  static final MediaType JSON = MediaType.get("application/json");

  final FakeModelServer model = FakeModelServer.start();
  final OkHttpClient client =
      new OkHttpClient.Builder()
          .readTimeout(Duration.ofSeconds(10))
          .retryOnConnectionFailure(false)
          .build();

  @AfterEach
  void stop() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    model.close();
  }

  Response post(String path, String body, String... headers) throws IOException {
    Request.Builder b =
        new Request.Builder().url(model.url(path)).post(RequestBody.create(body, JSON));
    for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
    return client.newCall(b.build()).execute();
  }

  @Test
  void aScriptedCompletionGoesOutWithItsLengthAndTheRequestIsKept() throws Exception {
    String answer = Completions.chat("Hello", 12, 3);
    model.enqueue(ModelAnswer.json(answer).withHeader("X-Model-Server", "fake"));
    String body = Policies.chat("llama-3.1-8b", "\"stream\":false");
    try (Response r = post("/v1/chat/completions?x=1", body, "Authorization", "Bearer k")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Type")).isEqualTo("application/json");
      assertThat(r.header("Content-Length")).isEqualTo(String.valueOf(answer.length()));
      assertThat(r.header("X-Model-Server")).isEqualTo("fake");
      assertThat(r.body().string()).isEqualTo(answer).contains("\"total_tokens\":15");
    }
    ModelRequest seen = model.takeRequest();
    assertThat(seen.method()).isEqualTo("POST");
    assertThat(seen.target()).isEqualTo("/v1/chat/completions?x=1");
    assertThat(seen.header("authorization")).isEqualTo("Bearer k");
    assertThat(seen.bodyText()).isEqualTo(body);
    assertThat(model.requestCount()).isEqualTo(1);

    try (Response r = post("/v1/chat/completions", body)) {
      assertThat(r.body().string()).as("unscripted: the fallback").isEqualTo("{}");
    }
  }

  @Test
  void aStreamGoesOutChunkedInItsPiecesAndWaitsAtItsGate() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    ModelAnswer answer =
        ModelAnswer.sse(
                Completions.sseDelta("Hel"), Completions.sseDelta("lo"), Completions.SSE_DONE)
            .holdBefore(1, release);
    model.enqueue(answer);
    try (Response r = post("/v1/chat/completions", "{}")) {
      assertThat(r.header("Content-Length")).isNull();
      assertThat(r.header("Content-Type")).isEqualTo("text/event-stream");
      BufferedSource source = r.body().source();
      assertThat(source.readUtf8LineStrict()).isEqualTo(Completions.sseDelta("Hel").strip());
      assertThat(source.readUtf8LineStrict()).isEmpty();
      assertThat(answer.isWritten()).isFalse();
      release.countDown();
      assertThat(source.readUtf8()).isEqualTo(Completions.sseDelta("lo") + Completions.SSE_DONE);
    }
    assertThat(answer.awaitWritten(Duration.ofSeconds(5))).isTrue();

    // the connection is still good for the next exchange
    model.enqueue(ModelAnswer.json("{\"n\":2}"));
    try (Response r = post("/v1/chat/completions", "{}")) {
      assertThat(r.body().string()).isEqualTo("{\"n\":2}");
    }
  }

  @Test
  void splitAtCutsTheBodyWhereAsked() {
    ModelAnswer answer = ModelAnswer.json("abcdef").splitAt(2, 3);
    assertThat(answer.text()).isEqualTo("abcdef");
    assertThat(answer.splitEvery(4).text()).isEqualTo("abcdef");
    assertThatThrownBy(() -> answer.splitAt(3, 2)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aBrokenStreamEndsInAnErrorForTheReader() throws Exception {
    model.enqueue(
        ModelAnswer.sse(Completions.sseDelta("a"), Completions.sseDelta("b")).breakAfter(1));
    try (Response r = post("/v1/chat/completions", "{}")) {
      BufferedSource source = r.body().source();
      assertThat(source.readUtf8LineStrict()).startsWith("data: ");
      assertThatThrownBy(source::readUtf8)
          .as("the connection dropped, not a read timeout")
          .isInstanceOf(IOException.class)
          .isNotInstanceOf(SocketTimeoutException.class);
    }
    model.enqueue(ModelAnswer.json("{\"long\":\"answer\"}").splitAt(5).breakAfter(1));
    try (Response r = post("/v1/chat/completions", "{}")) {
      assertThat(r.header("Content-Length")).isEqualTo("17");
      assertThatThrownBy(() -> r.body().string())
          .isInstanceOf(IOException.class)
          .isNotInstanceOf(SocketTimeoutException.class);
    }
  }

  @Test
  void theEchoHandsBackTheHeadersInTheBodyAndAsHeaders() throws Exception {
    model.script().otherwise(ModelAnswer::echo);
    try (Response r =
        post("/v1/chat/completions", "{}", "Authorization", "Bearer a/b", "X-Note", "n\"q")) {
      String body = r.body().string();
      assertThat(body)
          .startsWith("{\"headers\":{")
          .contains("\"Authorization\":\"Bearer a\\/b\"")
          .contains("\"X-Note\":\"n\\\"q\"");
      assertThat(r.header("X-Echo-Authorization")).isEqualTo("Bearer a/b");
      assertThat(r.header("X-Echo-X-Note")).isEqualTo("n\"q");
    }
  }

  @Test
  void theEchoDispatcherServesAMockWebServerOfOnesOwn() throws Exception {
    model.mockWebServer().setDispatcher(FakeModelServer.echoDispatcher());
    try (Response r = post("/", "x", "X-Api-Key", "k1")) {
      assertThat(r.header("X-Echo-X-Api-Key")).isEqualTo("k1");
      assertThat(new String(r.body().bytes(), StandardCharsets.UTF_8))
          .contains("\"X-Api-Key\":\"k1\"");
    }
  }
}
