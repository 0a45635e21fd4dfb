package dev.inferpam.benchmarks.load;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
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

/** The model server as a keep-alive client (OkHttp, as the gateway) sees it. */
class SseUpstreamTest {

  private static final MediaType JSON = MediaType.get("application/json");
  private static final String STREAM = "{\"model\":\"m\",\"stream\": true,\"messages\":[]}";

  private SseUpstream upstream;
  private final OkHttpClient client = new OkHttpClient();

  @BeforeEach
  void start() throws IOException {
    upstream = SseUpstream.start(0, 5, 1, 2);
  }

  @AfterEach
  void stop() {
    upstream.close();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
  }

  private Request post(RequestBody body) {
    return new Request.Builder().url(upstream.uri() + SseUpstream.PATH).post(body).build();
  }

  private static List<String> dataLines(Response response) throws IOException {
    List<String> data = new ArrayList<>();
    BufferedSource source = response.body().source();
    String line;
    while ((line = source.readUtf8Line()) != null) if (line.startsWith("data:")) data.add(line);
    return data;
  }

  @Test
  void streamsItsEventsThenDoneAndAnswersTheNextRequestsOnTheSameConnection() throws Exception {
    for (int i = 0; i < 3; i++) {
      try (Response r = client.newCall(post(RequestBody.create(STREAM, JSON))).execute()) {
        assertThat(r.code()).isEqualTo(200);
        assertThat(r.header("Content-Type")).isEqualTo("text/event-stream; charset=utf-8");
        List<String> data = dataLines(r);
        assertThat(data).hasSize(6).last().isEqualTo("data: [DONE]");
        assertThat(data.get(0))
            .contains("\"object\":\"chat.completion.chunk\"", "\"role\":\"assistant\"");
        assertThat(data.get(4)).contains("\"finish_reason\":\"stop\"");
        for (String d : data.subList(0, 5)) new ObjectMapper().readTree(d.substring(6));
      }
      try (Response r =
          client.newCall(post(RequestBody.create("{\"model\":\"m\"}", JSON))).execute()) {
        assertThat(r.code()).isEqualTo(200);
        byte[] body = r.body().bytes();
        assertThat(body.length).isBetween(1900, 2100);
        assertThat(new ObjectMapper().readTree(body).at("/usage/total_tokens").asInt())
            .isEqualTo(630);
      }
    }
    assertThat(upstream.connectionsAccepted()).isEqualTo(1);
    assertThat(upstream.streamsStarted()).isEqualTo(3);
    assertThat(upstream.streamsCompleted()).isEqualTo(3);
    assertThat(upstream.completions()).isEqualTo(3);
  }

  @Test
  void readsAChunkedRequestBody() throws Exception {
    RequestBody chunked =
        new RequestBody() {
          @Override
          public MediaType contentType() {
            return JSON;
          }

          @Override
          public long contentLength() {
            return -1;
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            sink.writeUtf8(STREAM.substring(0, 10)).flush();
            sink.writeUtf8(STREAM.substring(10)).flush();
          }
        };
    try (Response r = client.newCall(post(chunked)).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(dataLines(r)).hasSize(6);
    }
  }

  @Test
  void anythingElseIsNotFound() throws Exception {
    try (Response r =
        client
            .newCall(new Request.Builder().url(upstream.uri() + SseUpstream.PATH).build())
            .execute()) {
      assertThat(r.code()).isEqualTo(404);
      assertThat(r.body().string()).isEqualTo("{\"error\":{\"message\":\"not found\"}}");
    }
    try (Response r =
        client
            .newCall(
                new Request.Builder()
                    .url(upstream.uri() + "/v1/embeddings")
                    .post(RequestBody.create("{}".getBytes(StandardCharsets.UTF_8), JSON))
                    .build())
            .execute()) {
      assertThat(r.code()).isEqualTo(404);
    }
  }
}
