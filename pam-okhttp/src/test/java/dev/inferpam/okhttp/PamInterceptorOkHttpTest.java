package dev.inferpam.okhttp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.Buffer;
import okio.BufferedSource;
import org.junit.jupiter.api.Test;

/**
 * What only an OkHttp interceptor meets; the rest (denials, masking, recording, OIDC, quotas,
 * approvals) is {@link PamInterceptorConformanceTest}'s. OkHttp's own {@code Accept-Encoding}
 * and transparent gzip around a masked or exempt answer, a {@code Range} request whose gzip OkHttp
 * leaves encoded, a burst of events released before all of it is masked, and a response the
 * caller drops without closing it.
 */
class PamInterceptorOkHttpTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final String ALICE = "alice-key-0001";
  static final String AUDITOR = "auditor-key-0002";
  static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";

  static final String ANSWER =
      Completions.chat("Mail " + EMAIL + " and charge " + CARD + ".", 12, 9);
  static final String MASKED_ANSWER =
      ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");

  @StartStop final MockWebServer server = new MockWebServer();
  final InMemoryRecorder recorder = new InMemoryRecorder();

  static String policy(String bodies) {
    return """
        version: 1
        identity:
          api-keys:
        """
        + Policies.apiKey("alice", ALICE, "ml-engineers")
        + Policies.apiKey("auditor", AUDITOR, "ml-engineers", "auditors")
        + """
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
        """
            .formatted(bodies);
  }

  OkHttpClient client(String bodies) {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy(bodies)))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
    return PamInterceptor.of(engine)
        .install(new OkHttpClient.Builder())
        .readTimeout(10, TimeUnit.SECONDS)
        .retryOnConnectionFailure(false)
        .build();
  }

  Request.Builder chat(String key, String extra) {
    return new Request.Builder()
        .url(server.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + key)
        .post(RequestBody.create(Policies.chat("llama-3.1-8b", extra), JSON));
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
      JsonNode content =
          MAPPER
              .readTree(line.substring("data: ".length()))
              .path("choices")
              .path(0)
              .path("delta")
              .path("content");
      text.append(content.asText(""));
    }
    return text.toString();
  }

  // --- a response dropped without being closed -------------------------------------------------

  @Test
  void aMaskedResponseDroppedUnclosedIsStillRecordedIncompleteOnceCollected() throws Exception {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body(ANSWER)
            .build());
    dropWithoutClosing(client("masked").newCall(chat(ALICE, "").build()));
    awaitIncompleteRecord();
  }

  @Test
  void anUnmaskedResponseDroppedUnclosedIsStillRecordedIncompleteOnceCollected() throws Exception {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/octet-stream")
            .body("binary")
            .build());
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
    org.awaitility.Awaitility.await()
        .atMost(java.time.Duration.ofSeconds(20))
        .pollInterval(java.time.Duration.ofMillis(50))
        .until(
            () -> {
              System.gc(); // the body is unreachable: collecting it ends the exchange
              return !recorder.records().isEmpty();
            });
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isFalse();
  }

  // --- OkHttp's own Accept-Encoding and transparent gzip -----------------------------------------

  @Test
  void theCallersAcceptEncodingIsNotForwardedAndAGzippedAnswerIsMaskedAfterOkHttpDecompressesIt()
      throws Exception {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .setHeader("Content-Encoding", "gzip")
            .body(new Buffer().write(gzip(ANSWER)))
            .build());

    String received;
    try (Response r =
        client("masked")
            .newCall(chat(ALICE, "").header("Accept-Encoding", "br").build())
            .execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.header("Content-Length")).isNull();
      assertThat(r.body().contentLength()).isEqualTo(-1);
      received = r.body().string();
    }

    assertThat(server.takeRequest().getHeaders().get("Accept-Encoding"))
        .as("OkHttp's own, not the caller's")
        .isEqualTo("gzip");
    assertThat(received).isEqualTo(MASKED_ANSWER);
    assertThat(onlyRecord().response().body()).isEqualTo(MASKED_ANSWER);
  }

  @Test
  void anExemptCallerAskingForIdentityKeepsTheLengthWhileOkHttpStillAsksForGzip() throws Exception {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body(ANSWER)
            .build());

    try (Response r =
        client("masked")
            .newCall(chat(AUDITOR, "").header("Accept-Encoding", "identity").build())
            .execute()) {
      assertThat(r.header("Content-Length")).isEqualTo(String.valueOf(ANSWER.length()));
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }

    assertThat(server.takeRequest().getHeaders().get("Accept-Encoding"))
        .as("not masked, but scanned for credentials: OkHttp's own, not the caller's")
        .isEqualTo("gzip");
    assertThat(onlyRecord().response().body()).isEqualTo(MASKED_ANSWER);
  }

  @Test
  void anExemptCallersGzipAnswerIsDecodedSoItCanBeScannedForCredentials() throws Exception {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .setHeader("Content-Encoding", "gzip")
            .body(new Buffer().write(gzip(ANSWER)))
            .build());
    try (Response r =
        client("full")
            .newCall(chat(AUDITOR, "").header("Accept-Encoding", "gzip").build())
            .execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.header("Content-Encoding"))
          .as("OkHttp asked for gzip itself and decoded it")
          .isNull();
      assertThat(r.body().string()).isEqualTo(ANSWER);
    }
    assertThat(server.takeRequest().getHeaders().get("Accept-Encoding")).isEqualTo("gzip");
    List<SessionRecord> records = new ArrayList<>(recorder.records());
    assertThat(records)
        .singleElement()
        .satisfies(rec -> assertThat(rec.response().status()).isEqualTo(200));
  }

  @Test
  void aGzipResponseThatOkHttpDoesNotDecompressIsRefused502() throws Exception {
    // With a Range header OkHttp neither asks for gzip nor decompresses: the body stays encoded.
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .setHeader("Content-Encoding", "gzip")
            .body(new Buffer().write(gzip(ANSWER)))
            .build());

    String sent;
    try (Response r =
        client("masked").newCall(chat(ALICE, "").header("Range", "bytes=0-").build()).execute()) {
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
    assertThat(rec.response().status()).isEqualTo(502);
    assertThat(rec.response().body()).isEqualTo(sent);
  }

  // --- a burst
  // ------------------------------------------------------------------------------------

  @Test
  void eventsThatArriveTogetherAreReleasedBeforeAllOfThemAreMasked() throws Exception {
    StringBuilder sse = new StringBuilder();
    for (int i = 0; i < 200; i++) sse.append(Completions.sseDelta("word" + i + " "));
    sse.append(Completions.sseDelta("mail jane.doe@example.com")).append(Completions.SSE_DONE);
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "text/event-stream")
            .body(sse.toString())
            .build()); // one body, all of it there at once

    try (Response r = client("masked").newCall(chat(ALICE, "\"stream\":true").build()).execute()) {
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
}
