package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.CI_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.testsupport.FakeModelServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Masking through the gateway, end to end: upstream answers with raw values, the client gets
 * them masked, and the JSONL recording (read after {@link Gateway#close()}) holds the masked body
 * and the {@code masked} counts, never the raw values.
 */
class GatewayMaskingTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  private static final String CARD = "4111 1111 1111 1111";

  private static final String ANSWER =
      "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
          + "\"message\":{\"role\":\"assistant\",\"content\":\"Mail "
          + EMAIL
          + " and charge "
          + CARD
          + ".\"}}],"
          + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":9,\"total_tokens\":21}}";
  private static final String MASKED_ANSWER =
      ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");

  @TempDir Path dir;
  private MockWebServer upstream;
  private Gateway gateway;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    // Every built-in detector (the key is absent); the CI group sees raw values.
    String policy =
        TestPolicies.policyRecordingTo(dir, "batched") + "masking:\n  exempt-groups: [ci]\n";
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .build();
    gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
    client =
        new OkHttpClient.Builder()
            .readTimeout(Duration.ofSeconds(10))
            .retryOnConnectionFailure(false)
            .build();
  }

  @AfterEach
  void tearDown() {
    closeGateway();
    upstream.close();
  }

  /** Closes the gateway (flushing the recording); idempotent. Idle client connections first. */
  private void closeGateway() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    gateway.close();
  }

  private Response post(String key, String body, String... headers) throws IOException {
    Request.Builder b =
        new Request.Builder()
            .url(
                HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build())
            .header("Authorization", "Bearer " + key)
            .post(RequestBody.create(body, JSON_TYPE));
    for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
    return client.newCall(b.build()).execute();
  }

  /** The exchange lines of the recording, after the gateway closed. */
  private List<JsonNode> exchangeLines() throws IOException {
    closeGateway();
    assertThat(Recordings.open(dir).verify().ok()).isTrue();
    List<JsonNode> out = new ArrayList<>();
    for (Path f : segments()) {
      for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
        JsonNode n = JSON.readTree(line);
        if (n.get("type").asText().equals("exchange")) out.add(n);
      }
    }
    return out;
  }

  private List<Path> segments() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList();
    }
  }

  private String recordingText() throws IOException {
    StringBuilder all = new StringBuilder();
    for (Path f : segments()) all.append(Files.readString(f, StandardCharsets.UTF_8));
    return all.toString();
  }

  private static byte[] gzip(String text) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  private static String event(String content) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content + "\"}}]}\n\n";
  }

  private static String deltas(String sse) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : sse.split("\n")) {
      if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
      text.append(
          JSON.readTree(line.substring("data: ".length()))
              .path("choices")
              .path(0)
              .path("delta")
              .path("content")
              .asText(""));
    }
    return text.toString();
  }

  @Test
  void aChatCompletionIsMaskedForTheClientAndInTheRecordingLine() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body(ANSWER)
            .build());

    byte[] received;
    try (Response r = post(ALICE_KEY, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(200);
      received = r.body().bytes();
      String length = r.header("Content-Length");
      if (length != null) assertThat(Long.parseLong(length)).isEqualTo(received.length);
    }
    assertThat(new String(received, StandardCharsets.UTF_8)).isEqualTo(MASKED_ANSWER);

    List<JsonNode> lines = exchangeLines();
    assertThat(lines).hasSize(1);
    JsonNode response = lines.get(0).get("response");
    assertThat(response.get("status").asInt()).isEqualTo(200);
    assertThat(response.get("body").asText()).isEqualTo(MASKED_ANSWER);
    assertThat(response.get("bytes").asLong()).isEqualTo(received.length);
    assertThat(response.get("masked").toString()).isEqualTo("{\"credit-card\":1,\"email\":1}");
    assertThat(recordingText()).doesNotContain(EMAIL).doesNotContain(CARD);
  }

  @Test
  void
      aGzippedUpstreamAnswerIsDecompressedByTheGatewayAndMaskedAndTheCallersAcceptEncodingStaysBehind()
          throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .setHeader("Content-Encoding", "gzip")
            .body(new Buffer().write(gzip(ANSWER)))
            .build());

    try (Response r = post(ALICE_KEY, chat("llama-3.1-8b", ""), "Accept-Encoding", "br")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.body().string()).isEqualTo(MASKED_ANSWER);
    }
    RecordedRequest seen = upstream.takeRequest();
    assertThat(seen.getHeaders().get("Accept-Encoding"))
        .as("the gateway client's own")
        .isEqualTo("gzip");
    assertThat(exchangeLines().get(0).get("response").get("body").asText())
        .isEqualTo(MASKED_ANSWER);
  }

  @Test
  void anAnswerInAnEncodingTheGatewayCannotReadIsRefused502AndRecorded() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .setHeader("Content-Encoding", "br")
            .body("compressed " + EMAIL)
            .build());

    String sent;
    try (Response r = post(ALICE_KEY, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(r.header("Content-Encoding")).isNull();
      sent = r.body().string();
    }
    JsonNode error = JSON.readTree(sent).get("error");
    assertThat(error.get("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.get("message").asText())
        .isEqualTo("the response is encoded (Content-Encoding: br) and cannot be masked");

    JsonNode line = exchangeLines().get(0);
    assertThat(line.get("id").asText()).isEqualTo(error.get("request_id").asText());
    assertThat(line.get("decision").get("outcome").asText()).isEqualTo("allow");
    assertThat(line.get("response").get("status").asInt()).isEqualTo(502);
    assertThat(line.get("response").get("body").asText()).isEqualTo(sent);
    assertThat(line.get("response").get("complete").asBoolean()).isTrue();
    assertThat(recordingText()).doesNotContain(EMAIL);
  }

  @Test
  void anEmailSplitAcrossTwoStreamedEventsIsMaskedForTheClientAndInTheRecording() throws Exception {
    String sse = event("Write to jane.doe@exa") + event("mple.com today.") + "data: [DONE]\n\n";
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "text/event-stream")
            .chunkedBody(sse, 32)
            .build());

    String received;
    try (Response r = post(ALICE_KEY, chat("llama-3.1-8b", "\"stream\":true"))) {
      assertThat(r.code()).isEqualTo(200);
      received = r.body().string();
    }
    assertThat(deltas(received)).isEqualTo("Write to [EMAIL] today.");
    assertThat(received)
        .doesNotContain("jane.doe")
        .doesNotContain("example.com")
        .endsWith("data: [DONE]\n\n");

    JsonNode response = exchangeLines().get(0).get("response");
    assertThat(response.get("streamed").asBoolean()).isTrue();
    assertThat(response.get("complete").asBoolean()).isTrue();
    assertThat(response.get("body").asText()).isEqualTo(received);
    assertThat(response.get("masked").toString()).isEqualTo("{\"email\":1}");
  }

  @Test
  void anExemptGroupSeesRawValuesWhileTheMaskedRecordingDoesNot() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body(ANSWER)
            .build());

    try (Response r = post(CI_KEY, chat("llama-3.1-8b", ""))) {
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }
    JsonNode line = exchangeLines().get(0);
    assertThat(line.get("principal").get("subject").asText()).isEqualTo("ci-bot");
    assertThat(line.get("response").get("body").asText()).isEqualTo(MASKED_ANSWER);
    assertThat(line.get("response").get("masked").toString())
        .isEqualTo("{\"credit-card\":1,\"email\":1}");
    assertThat(recordingText()).doesNotContain(EMAIL).doesNotContain(CARD);
  }

  @Test
  void aBinaryAnswerPassesByteExact() throws Exception {
    byte[] png = new byte[20_000];
    for (int i = 0; i < png.length; i++) png[i] = (byte) (i * 31 + 7);
    byte[] email = EMAIL.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(email, 0, png, 100, email.length);
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "image/png")
            .body(new Buffer().write(png))
            .build());

    try (Response r = post(ALICE_KEY, chat("llama-3.1-8b", ""))) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().bytes()).isEqualTo(png);
    }
    JsonNode response = exchangeLines().get(0).get("response");
    assertThat(response.get("bytes").asLong()).isEqualTo(png.length);
  }

  @Test
  void anEchoingUpstreamHandsBackNeitherTheUpstreamCredentialNorTheCallersTokenNorDoesTheRecording()
      throws Exception {
    upstream.setDispatcher(FakeModelServer.echoDispatcher());
    for (String key : List.of(ALICE_KEY, CI_KEY)) { // masked, and exempt from masking
      try (Response r =
          post(key, chat("llama-3.1-8b", ""), "X-Request-Id", "my token is " + key + "/x")) {
        assertThat(r.code()).isEqualTo(200);
        String body = r.body().string();
        assertThat(body)
            .doesNotContain("upstream-secret")
            .doesNotContain(key)
            .contains("\"Authorization\":\"[REDACTED:credential");
        assertThat(r.headers().toString()).doesNotContain("upstream-secret").doesNotContain(key);
        assertThat(r.header("X-Echo-Authorization")).startsWith("[REDACTED:credential");
      }
      assertThat(upstream.takeRequest().getHeaders().get("Authorization"))
          .isEqualTo(UPSTREAM_AUTHORIZATION);
    }
    List<JsonNode> lines = exchangeLines();
    assertThat(lines).hasSize(2);
    assertThat(recordingText())
        .doesNotContain("upstream-secret")
        .doesNotContain(ALICE_KEY)
        .doesNotContain(CI_KEY);
    for (JsonNode line : lines)
      assertThat(line.path("response").path("masked").path("credential").asInt()).isEqualTo(2);
  }

  @Test
  void aStreamedEchoSplitAcrossChunksIsReplaced() throws Exception {
    String event =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"you sent "
            + UPSTREAM_AUTHORIZATION
            + " and "
            + CI_KEY
            + "\"}}]}\n\n";
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "text/event-stream")
            .chunkedBody(event + "data: [DONE]\n\n", 7)
            .build());
    String received;
    try (Response r = post(CI_KEY, chat("llama-3.1-8b", "\"stream\":true"))) {
      received = r.body().string();
    }
    assertThat(received)
        .doesNotContain("upstream-secret")
        .doesNotContain(CI_KEY)
        .contains("you sent [REDACTED:credential");
    assertThat(exchangeLines()).hasSize(1);
    assertThat(recordingText()).doesNotContain("upstream-secret").doesNotContain(CI_KEY);
  }
}
