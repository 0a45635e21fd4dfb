package dev.inferpam.core;

import static dev.inferpam.core.ExchangeRecordingTest.sha256Hex;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Masker;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.ExchangeRecordingTest.UpperCasingMasker;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * What {@link Exchange} offers adapters for masking responses ({@link Exchange#masksResponse()},
 * {@link Exchange#responseMasking()}, {@link Exchange#responseRefusal()}) and what the record
 * keeps: the response as delivered, masked once.
 */
class ExchangeMaskingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String KEY = "svc-key-1";
  static final String AUDITOR_KEY = "auditor-key-2";
  static final String CHAT = "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"mail me\"}]}";
  /** An email and a Luhn-valid card number. */
  static final String ANSWER = "{\"choices\":[{\"message\":{\"content\":"
      + "\"Write to jane.doe@example.com, card 4111 1111 1111 1111.\"}}]}";
  static final String MASKED_ANSWER = "{\"choices\":[{\"message\":{\"content\":"
      + "\"Write to [EMAIL], card [CREDIT_CARD].\"}}]}";

  static String policy(String bodies) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
            - {name: auditor, sha256: %s, groups: [ml, auditors]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        masking:
          detectors: [email, credit-card]
          exempt-groups: [auditors]
        recording:
          directory: /nonexistent/never-opened
          bodies: %s
          durability: batched
        """.formatted(sha256Hex(KEY.getBytes(StandardCharsets.UTF_8)),
        sha256Hex(AUDITOR_KEY.getBytes(StandardCharsets.UTF_8)), bodies);
  }

  final CapturingRecorder recorder = new CapturingRecorder();

  PamEngine engine(String bodies, Masker masker) {
    PamEngine.Builder b = PamEngine.builder().policy(Policy.parse(policy(bodies))).recorder(recorder)
        .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"));
    if (masker != null) b.masker(masker);
    return b.build();
  }

  static Exchange call(PamEngine engine, String method, String key, String body) {
    Map<String, List<String>> headers = new HashMap<>();
    headers.put("Content-Type", List.of("application/json"));
    if (key != null) headers.put("Authorization", List.of("Bearer " + key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(new RequestHead(method, "/v1/chat/completions", null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes), bytes.length);
  }

  static Map<String, List<String>> headers(String... nameValues) {
    Map<String, List<String>> h = new HashMap<>();
    for (int i = 0; i < nameValues.length; i += 2) h.put(nameValues[i], List.of(nameValues[i + 1]));
    return h;
  }

  /** Delivers {@code body} as an adapter does: in pieces through the masking, reporting what went out. */
  static String deliver(Exchange ex, ResponseMasking masking, String body, int step) throws IOException {
    ByteArrayOutputStream client = new ByteArrayOutputStream();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    for (int off = 0; off < bytes.length; off += step) {
      byte[] out = masking.push(bytes, off, Math.min(step, bytes.length - off));
      client.write(out);
      ex.responseBytes(out, 0, out.length);
    }
    byte[] tail = masking.finish();
    client.write(tail);
    ex.responseBytes(tail, 0, tail.length);
    return client.toString(StandardCharsets.UTF_8);
  }

  @Test
  void theClientAndTheRecordGetTheResponseMaskedOnceWithTheDeliveryCounts() throws Exception {
    Exchange ex = call(engine("masked", null), "POST", KEY, CHAT);
    assertThat(ex.masksResponse()).isTrue();
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    assertThat(ex.responseRefusal()).isNull();
    ResponseMasking masking = ex.responseMasking();
    assertThat(masking).isNotNull().isSameAs(ex.responseMasking());

    String delivered = deliver(ex, masking, ANSWER, 7);
    ex.end(true);

    assertThat(delivered).isEqualTo(MASKED_ANSWER);
    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().bytes()).isEqualTo(MASKED_ANSWER.getBytes(StandardCharsets.UTF_8).length);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void aResponseMaskedOnDeliveryIsNotMaskedAgainForTheRecord() throws Exception {
    UpperCasingMasker masker = new UpperCasingMasker();
    Exchange ex = call(engine("masked", masker), "POST", KEY, CHAT);
    ex.responseStarted(200, headers("Content-Type", "text/plain"));
    String delivered = deliver(ex, ex.responseMasking(), "a secret and a secret", 5);
    ex.end(true);

    assertThat(delivered).isEqualTo("A SECRET AND A SECRET");
    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isEqualTo("A SECRET AND A SECRET");
    assertThat(r.response().masked()).isEqualTo(Map.of("secret", 2));
    assertThat(masker.sessions).as("one for the request body, one for the delivery; none at record time")
        .hasValue(2);
  }

  @Test
  void withBodiesFullTheRecordHoldsWhatWasDeliveredMaskedAndItsCounts() throws Exception {
    Exchange ex = call(engine("full", null), "POST", KEY, CHAT);
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    deliver(ex, ex.responseMasking(), ANSWER, 16);
    ex.end(true);

    SessionRecord r = recorder.records.get(0);
    assertThat(r.request().body()).isEqualTo(CHAT);
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void withBodiesNoneTheDeliveryCountsAreStillRecorded() throws Exception {
    Exchange ex = call(engine("none", null), "POST", KEY, CHAT);
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    deliver(ex, ex.responseMasking(), ANSWER, 16);
    ex.end(true);

    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isNull();
    assertThat(r.response().bodySha256()).isEqualTo(sha256Hex(MASKED_ANSWER.getBytes(StandardCharsets.UTF_8)));
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void anExemptPrincipalGetsTheResponseRawWhileTheMaskedRecordDoesNot() throws Exception {
    Exchange ex = call(engine("masked", null), "POST", AUDITOR_KEY, CHAT);
    assertThat(ex.masksResponse()).isFalse();
    assertThat(ex.rewritesResponse()).as("its credentials are still kept out").isTrue();
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    assertThat(ex.responseRefusal()).isNull();
    ResponseMasking scrubOnly = ex.responseMasking();
    assertThat(scrubOnly.changesLength()).isFalse();
    String delivered = deliver(ex, scrubOnly, ANSWER, 9);
    ex.end(true);

    assertThat(delivered).isEqualTo(ANSWER);
    SessionRecord r = recorder.records.get(0);
    assertThat(r.principal().subject()).isEqualTo("auditor");
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(r.response().bytes()).as("the size delivered, raw").isEqualTo(ANSWER.length());
  }

  @Test
  void anExemptPrincipalWithBodiesFullIsRecordedRaw() {
    Exchange ex = call(engine("full", null), "POST", AUDITOR_KEY, CHAT);
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    byte[] raw = ANSWER.getBytes(StandardCharsets.UTF_8);
    ex.responseBytes(raw, 0, raw.length);
    ex.end(true);
    assertThat(recorder.records.get(0).response().body()).isEqualTo(ANSWER);
    assertThat(recorder.records.get(0).response().masked()).isEmpty();
  }

  @Test
  void binaryContentTypesAreNotMaskedButScannedForCredentials() throws Exception {
    for (String type : List.of("image/png", "audio/wav", "video/mp4", "application/octet-stream")) {
      Exchange ex = call(engine("full", null), "POST", KEY, CHAT);
      ex.responseStarted(200, headers("Content-Type", type));
      ResponseMasking masking = ex.responseMasking();
      assertThat(masking.changesLength()).as(type).isFalse();
      byte[] bytes = {(byte) 0x89, 'P', 'N', 'G', 0, 1, 2, 'j', 'a', 'n', 'e', '@', 'x', '.', 'i', 'o'};
      assertThat(masking.push(bytes, 0, bytes.length)).as(type).isSameAs(bytes);
      assertThat(masking.finish()).isEmpty();
      ex.end(true);
      // encoded, it cannot be scanned: refused like one that must be masked
      Exchange encoded = call(engine("full", null), "POST", KEY, CHAT);
      encoded.responseStarted(200, headers("Content-Type", type, "Content-Encoding", "gzip"));
      assertThat(encoded.responseRefusal()).as(type).isNotNull();
      encoded.end(true);
    }
  }

  @Test
  void anEncodedResponseThatMustBeMaskedIsRefused502AndRecordedAsSuch() throws Exception {
    Exchange ex = call(engine("masked", null), "POST", KEY, CHAT);
    ex.responseStarted(200, headers("Content-Type", "application/json", "Content-Encoding", "gzip"));

    ErrorResponse refusal = ex.responseRefusal();
    assertThat(refusal).isNotNull();
    assertThat(ex.responseMasking()).isNull();
    assertThat(refusal.status()).isEqualTo(502);
    assertThat(refusal.headers()).containsEntry("Content-Type", "application/json");
    JsonNode error = JSON.readTree(refusal.body()).get("error");
    assertThat(error.get("type").asText()).isEqualTo("pam_error");
    assertThat(error.get("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.get("message").asText())
        .isEqualTo("the response is encoded (Content-Encoding: gzip) and cannot be masked");
    assertThat(error.get("request_id").asText()).isEqualTo(ex.id());

    byte[] compressed = {0x1f, (byte) 0x8b, 8, 0};
    ex.responseBytes(compressed, 0, compressed.length); // an adapter that reports anyway changes nothing
    ex.end(true);
    SessionRecord r = recorder.records.get(0);
    assertThat(r.decision().outcome()).isEqualTo("allow");
    assertThat(r.response().status()).isEqualTo(502);
    assertThat(r.response().body()).isEqualTo(refusal.bodyText());
    assertThat(r.response().bytes()).isEqualTo(refusal.body().length);
    assertThat(r.response().masked()).isEmpty();
  }

  @Test
  void everyContentCodingButIdentityIsRefused() {
    for (String encoding : List.of("br", "deflate", "zstd", "identity, gzip", "GZIP")) {
      Exchange ex = call(engine("masked", null), "POST", KEY, CHAT);
      ex.responseStarted(200, headers("Content-Type", "text/event-stream", "Content-Encoding", encoding));
      assertThat(ex.responseRefusal()).as(encoding).isNotNull();
      ex.end(true);
    }
    Exchange identity = call(engine("masked", null), "POST", KEY, CHAT);
    identity.responseStarted(200, headers("Content-Type", "text/event-stream", "Content-Encoding", "identity"));
    assertThat(identity.responseRefusal()).isNull();
    assertThat(identity.responseMasking()).isNotNull();
  }

  @Test
  void responsesWithoutABodyAreNeitherMaskedNorRefused() {
    Exchange head = call(engine("masked", null), "HEAD", KEY, "");
    head.responseStarted(200, headers("Content-Type", "application/json", "Content-Encoding", "gzip"));
    assertThat(head.responseRefusal()).isNull();
    assertThat(head.responseMasking()).isNull();
    for (int status : new int[] {204, 304}) {
      Exchange ex = call(engine("masked", null), "POST", KEY, CHAT);
      ex.responseStarted(status, headers("Content-Encoding", "gzip"));
      assertThat(ex.responseRefusal()).as("status " + status).isNull();
      assertThat(ex.responseMasking()).as("status " + status).isNull();
    }
  }

  @Test
  void aDeniedExchangeIsNotMaskedItsErrorIsTheEngines() {
    Exchange ex = call(engine("masked", null), "POST", null, CHAT);
    assertThat(ex.allowed()).isFalse();
    assertThat(ex.masksResponse()).isFalse();
  }

  @Test
  void theIdentityMaskerMasksNothingButCredentialsAreStillKeptOut() throws Exception {
    Exchange ex = call(engine("masked", Masker.IDENTITY), "POST", KEY, CHAT);
    assertThat(ex.masksResponse()).isFalse();
    assertThat(ex.rewritesResponse()).isTrue();
    ex.responseStarted(200, headers("Content-Type", "application/json"));
    assertThat(ex.responseRefusal()).isNull();
    String delivered = deliver(ex, ex.responseMasking(), ANSWER + " Bearer upstream-secret", 5);
    assertThat(delivered).isEqualTo(ANSWER + " [REDACTED:credential*]");
  }

  @Test
  void maskingIsAskedForOnlyAfterTheResponseStarted() {
    Exchange ex = call(engine("masked", null), "POST", KEY, CHAT);
    assertThatThrownBy(ex::responseMasking).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(ex::responseRefusal).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void aFailingMaskerCutsTheResponseOffAndKeepsFailing() throws Exception {
    Masker failing = () -> new Masker.Session() {
      @Override
      public String push(String text) {
        throw new IllegalStateException("detector crashed on " + text);
      }

      @Override
      public String finish() {
        return "";
      }
    };
    Exchange ex = call(engine("full", failing), "POST", KEY, "{\"model\":\"llama-3\"}");
    ex.responseStarted(200, headers("Content-Type", "text/plain"));
    ResponseMasking masking = ex.responseMasking();
    byte[] text = "jane.doe@example.com".getBytes(StandardCharsets.UTF_8);
    assertThatThrownBy(() -> masking.push(text, 0, text.length)).isInstanceOf(IOException.class)
        .hasMessage("response masking failed");
    assertThatThrownBy(masking::finish).isInstanceOf(IOException.class);
    ex.end(false);
    assertThat(recorder.records.get(0).response().body()).isEmpty();
    assertThat(recorder.records.get(0).response().complete()).isFalse();
  }
}
