package dev.inferpam.okhttp;

import static dev.inferpam.okhttp.PamInterceptorTest.sha256;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.Buffer;
import okio.BufferedSink;
import okio.BufferedSource;
import org.junit.jupiter.api.Test;

/**
 * Response masking through {@link PamInterceptor}: the caller reads masked text with no stale
 * {@code Content-Length}, the record holds what the caller read, exempt callers and binary bodies
 * pass untouched, and a response that cannot be masked is refused 502.
 */
class MaskingInterceptorTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final String ALICE = "alice-key-0001";
  static final String AUDITOR = "auditor-key-0002";
  static final String EMAIL = "jane.doe@example.com";
  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";
  static final String ANSWER = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
      + "\"message\":{\"role\":\"assistant\",\"content\":\"Mail " + EMAIL + " and charge " + CARD + ".\"}}],"
      + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":9,\"total_tokens\":21}}";
  static final String MASKED_ANSWER = ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");

  @StartStop final MockWebServer server = new MockWebServer();
  final InMemoryRecorder recorder = new InMemoryRecorder();


  static String policy(String bodies) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
            - {name: auditor, sha256: %s, groups: [ml-engineers, auditors]}
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
        masking:
          detectors: [email, phone, credit-card]
          exempt-groups: [auditors]
        recording:
          directory: ./never-opened-a-recorder-is-given
          bodies: %s
          durability: batched
        """.formatted(sha256(ALICE), sha256(AUDITOR), bodies);
  }

  OkHttpClient client(String bodies) {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(bodies))).recorder(recorder)
        .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret")).build();
    return PamInterceptor.of(engine).install(new OkHttpClient.Builder())
        .readTimeout(10, TimeUnit.SECONDS).retryOnConnectionFailure(false).build();
  }

  Request.Builder chat(String key, String extra) {
    String body = "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" + extra + "}";
    return new Request.Builder().url(server.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + key).post(RequestBody.create(body, JSON));
  }

  SessionRecord onlyRecord() {
    assertThat(recorder.records()).hasSize(1);
    return recorder.records().get(0);
  }

  static byte[] gzip(String text) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  /** The concatenated {@code choices[0].delta.content} of every {@code data:} event but [DONE]. */
  static String deltas(String sse) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : sse.split("\n")) {
      if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
      JsonNode content = MAPPER.readTree(line.substring("data: ".length())).path("choices").path(0)
          .path("delta").path("content");
      text.append(content.asText(""));
    }
    return text.toString();
  }

  static String event(String content) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + content + "\"}}]}\n\n";
  }

  /** Chunked SSE: {@code first}, then, once {@code release} opens, {@code rest}. */
  static MockResponse heldStream(String first, String rest, CountDownLatch release) {
    MockResponseBody body = new MockResponseBody() {
      @Override
      public long getContentLength() {
        return -1;
      }

      @Override
      public void writeTo(BufferedSink sink) throws IOException {
        chunk(sink, first);
        try {
          if (!release.await(10, TimeUnit.SECONDS)) throw new IOException("the client never read the first event");
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException(e);
        }
        chunk(sink, rest);
        sink.writeUtf8("0\r\n\r\n");
        sink.flush();
      }

      private void chunk(BufferedSink sink, String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        sink.writeUtf8(Integer.toHexString(bytes.length)).writeUtf8("\r\n").write(bytes).writeUtf8("\r\n");
        sink.flush();
      }
    };
    return new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .body(body).removeHeader("Content-Length").setHeader("Transfer-Encoding", "chunked").build();
  }

  // --- a response dropped without being closed -------------------------------------------------

  @Test
  void aMaskedResponseDroppedUnclosedIsStillRecordedIncompleteOnceCollected() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .body(ANSWER).build());
    dropWithoutClosing(client("masked").newCall(chat(ALICE, "").build()));
    awaitIncompleteRecord();
  }

  @Test
  void anUnmaskedResponseDroppedUnclosedIsStillRecordedIncompleteOnceCollected() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/octet-stream")
        .body("binary").build());
    dropWithoutClosing(client("masked").newCall(chat(ALICE, "").build()));
    awaitIncompleteRecord();
  }

  /** Executes the call and lets the response go without reading or closing it (a caller bug). */
  private void dropWithoutClosing(okhttp3.Call call) throws IOException {
    Response r = call.execute();
    assertThat(r.code()).isEqualTo(200);
    assertThat(recorder.records()).as("not recorded while the body is still reachable").isEmpty();
  }

  private void awaitIncompleteRecord() {
    org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(20))
        .pollInterval(java.time.Duration.ofMillis(50)).until(() -> {
          System.gc(); // the body is unreachable: collecting it ends the exchange
          return !recorder.records().isEmpty();
        });
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isFalse();
  }

  // --- JSON --------------------------------------------------------------------------------------

  @Test
  void aChatCompletionReachesTheCallerAndTheRecordMasked() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .body(ANSWER).build());

    String received;
    try (Response r = client("masked").newCall(chat(ALICE, "").build()).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Length")).as("the upstream's length no longer holds").isNull();
      assertThat(r.body().contentLength()).isEqualTo(-1);
      received = r.body().string();
    }

    assertThat(received).isEqualTo(MASKED_ANSWER).doesNotContain(EMAIL).doesNotContain(CARD);
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().body()).isEqualTo(received);
    assertThat(rec.response().bytes()).isEqualTo(received.getBytes(StandardCharsets.UTF_8).length);
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(rec.response().usage()).containsEntry("prompt_tokens", 12L).containsEntry("completion_tokens", 9L);
  }

  @Test
  void theCallersAcceptEncodingIsNotForwardedAndAGzippedAnswerIsMaskedAfterOkHttpDecompressesIt()
      throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .setHeader("Content-Encoding", "gzip").body(new Buffer().write(gzip(ANSWER))).build());

    String received;
    try (Response r = client("masked").newCall(chat(ALICE, "").header("Accept-Encoding", "br").build()).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.header("Content-Length")).isNull();
      received = r.body().string();
    }

    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getHeaders().get("Accept-Encoding")).as("OkHttp's own, not the caller's").isEqualTo("gzip");
    assertThat(received).isEqualTo(MASKED_ANSWER);
    assertThat(onlyRecord().response().body()).isEqualTo(MASKED_ANSWER);
  }

  @Test
  void anExemptCallerReadsRawValuesWhileTheMaskedRecordDoesNot() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .body(ANSWER).build());

    try (Response r = client("masked").newCall(chat(AUDITOR, "").header("Accept-Encoding", "identity").build())
        .execute()) {
      assertThat(r.header("Content-Length")).isEqualTo(String.valueOf(ANSWER.length()));
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }

    assertThat(server.takeRequest().getHeaders().get("Accept-Encoding"))
        .as("not masked, but scanned for credentials: OkHttp's own, not the caller's").isEqualTo("gzip");
    SessionRecord rec = onlyRecord();
    assertThat(rec.principal().subject()).isEqualTo("auditor");
    assertThat(rec.response().body()).isEqualTo(MASKED_ANSWER).doesNotContain(EMAIL).doesNotContain(CARD);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(rec.response().bytes()).as("what the caller got").isEqualTo(ANSWER.length());
  }

  @Test
  void withBodiesFullTheRecordIsTheMaskedTextTheCallerRead() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .body(ANSWER).build());
    try (Response r = client("full").newCall(chat(ALICE, "").build()).execute()) {
      assertThat(r.body().string()).isEqualTo(MASKED_ANSWER);
    }
    assertThat(onlyRecord().response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(onlyRecord().response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  // --- streams -----------------------------------------------------------------------------------

  @Test
  void anEmailSplitAcrossTwoStreamedEventsIsMaskedForTheCallerAndInTheRecord() throws Exception {
    String sse = event("Write to jane.doe@exa") + event("mple.com today.") + "data: [DONE]\n\n";
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .chunkedBody(sse, 32).build());

    String received;
    try (Response r = client("masked").newCall(chat(ALICE, ",\"stream\":true").build()).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Type")).startsWith("text/event-stream");
      received = r.body().string();
    }

    assertThat(deltas(received)).isEqualTo("Write to [EMAIL] today.");
    assertThat(received).doesNotContain("jane.doe").doesNotContain("example.com").doesNotContain("@exa")
        .endsWith("data: [DONE]\n\n");
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(received);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1));
  }

  @Test
  void aMaskedStreamStillDeliversTheFirstEventBeforeTheUpstreamSendsTheRest() throws Exception {
    String first = event("Hello. ");
    String rest = event("Reach me at jane.doe@example.com.") + "data: [DONE]\n\n";
    CountDownLatch release = new CountDownLatch(1);
    server.enqueue(heldStream(first, rest, release));

    StringBuilder received = new StringBuilder();
    try (Response r = client("masked").newCall(chat(ALICE, ",\"stream\":true").build()).execute()) {
      BufferedSource source = r.body().source();
      // The upstream sends nothing more until the caller has seen the first event. The masker may
      // hold back the end of its text (it could continue in the next event), never all of it.
      for (String line; !(line = source.readUtf8LineStrict()).isEmpty(); ) received.append(line).append('\n');
      received.append('\n');
      String firstText = deltas(received.toString());
      assertThat(firstText).isNotEmpty();
      assertThat("Hello. ").startsWith(firstText);
      assertThat(recorder.records()).isEmpty();
      release.countDown();
      received.append(source.readUtf8());
    } finally {
      release.countDown();
    }

    assertThat(deltas(received.toString())).isEqualTo("Hello. Reach me at [EMAIL].");
    assertThat(onlyRecord().response().body()).isEqualTo(received.toString());
  }

  @Test
  void eventsThatArriveTogetherAreReleasedBeforeAllOfThemAreMasked() throws Exception {
    StringBuilder sse = new StringBuilder();
    for (int i = 0; i < 200; i++) sse.append(event("word" + i + " "));
    sse.append(event("mail jane.doe@example.com")).append("data: [DONE]\n\n");
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .body(sse.toString()).build()); // one body, all of it there at once

    try (Response r = client("masked").newCall(chat(ALICE, ",\"stream\":true").build()).execute()) {
      BufferedSource source = r.body().source();
      source.require(1);
      // the first read hands over the first events, not the masking of the whole burst
      assertThat(source.getBuffer().size()).isGreaterThan(0).isLessThan(2048);
      String received = source.readUtf8();
      assertThat(deltas(received)).startsWith("word0 word1 ").endsWith("word199 mail [EMAIL]");
      assertThat(received).doesNotContain("jane.doe").endsWith("data: [DONE]\n\n");
    }
    assertThat(onlyRecord().response().masked()).isEqualTo(Map.of("email", 1));
  }

  // --- untouched ---------------------------------------------------------------------------------

  @Test
  void aBinaryResponsePassesByteExactWithItsLength() throws Exception {
    byte[] png = new byte[4096];
    for (int i = 0; i < png.length; i++) png[i] = (byte) (i * 31 + 7);
    byte[] email = EMAIL.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(email, 0, png, 100, email.length);
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "image/png")
        .body(new Buffer().write(png)).build());

    try (Response r = client("full").newCall(chat(ALICE, "").build()).execute()) {
      assertThat(r.header("Content-Length")).isEqualTo("4096");
      assertThat(r.body().bytes()).isEqualTo(png);
    }
    assertThat(onlyRecord().response().bytes()).isEqualTo(png.length);
    assertThat(onlyRecord().response().masked()).isEmpty();
  }

  // --- refused -----------------------------------------------------------------------------------

  @Test
  void aGzipResponseThatOkHttpDoesNotDecompressIsRefused502() throws Exception {
    // With a Range header OkHttp neither asks for gzip nor decompresses: the body stays encoded.
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .setHeader("Content-Encoding", "gzip").body(new Buffer().write(gzip(ANSWER))).build());

    String sent;
    try (Response r = client("masked").newCall(chat(ALICE, "").header("Range", "bytes=0-").build()).execute()) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.header("Content-Type")).isEqualTo("application/json");
      sent = r.body().string();
    }

    JsonNode error = MAPPER.readTree(sent).get("error");
    assertThat(error.get("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.get("message").asText())
        .isEqualTo("the response is encoded (Content-Encoding: gzip) and cannot be masked");
    SessionRecord rec = onlyRecord();
    assertThat(error.get("request_id").asText()).isEqualTo(rec.id());
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(502);
    assertThat(rec.response().body()).isEqualTo(sent);
    assertThat(rec.response().complete()).isTrue();
  }

  @Test
  void anAnswerInAnEncodingNobodyAskedForIsRefused502() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "text/event-stream")
        .setHeader("Content-Encoding", "br").body("not really brotli").build());
    try (Response r = client("masked").newCall(chat(ALICE, ",\"stream\":true").build()).execute()) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(MAPPER.readTree(r.body().string()).get("error").get("code").asText()).isEqualTo("masking_unavailable");
    }
    assertThat(onlyRecord().response().status()).isEqualTo(502);
  }

  @Test
  void anExemptCallersAnswerIsDecodedSoItCanBeScannedForCredentials() throws Exception {
    byte[] gz = gzip(ANSWER);
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .setHeader("Content-Encoding", "gzip").body(new Buffer().write(gz)).build());
    try (Response r = client("full").newCall(chat(AUDITOR, "").header("Accept-Encoding", "gzip").build()).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Encoding")).as("OkHttp asked for gzip itself and decoded it").isNull();
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }
    assertThat(server.takeRequest().getHeaders().get("Accept-Encoding")).isEqualTo("gzip");
    List<SessionRecord> records = new ArrayList<>(recorder.records());
    assertThat(records).singleElement().satisfies(rec -> assertThat(rec.response().status()).isEqualTo(200));
  }

  @Test
  void anExemptCallersAnswerStillEncodedIsRefused502() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).setHeader("Content-Type", "application/json")
        .setHeader("Content-Encoding", "br").body("not really brotli").build());
    try (Response r = client("full").newCall(chat(AUDITOR, "").build()).execute()) {
      assertThat(r.code()).isEqualTo(502);
      assertThat(MAPPER.readTree(r.body().string()).get("error").get("code").asText()).isEqualTo("masking_unavailable");
    }
  }
}
