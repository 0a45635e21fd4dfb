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
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * What an allowed {@link Verdict} offers adapters for masking responses
 * ({@link Verdict.Allowed#mayChangeLength()}, the {@link ResponsePlan} of
 * {@link Verdict.Allowed#respond}) and what the record keeps: the response as delivered, masked
 * once.
 */
class ExchangeMaskingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String KEY = "svc-key-1";
  static final String AUDITOR_KEY = "auditor-key-2";
  static final String CHAT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"mail me\"}]}";

  /** An email and a Luhn-valid card number. */
  static final String ANSWER =
      "{\"choices\":[{\"message\":{\"content\":"
          + "\"Write to jane.doe@example.com, card 4111 1111 1111 1111.\"}}]}";

  static final String MASKED_ANSWER =
      "{\"choices\":[{\"message\":{\"content\":" + "\"Write to [EMAIL], card [CREDIT_CARD].\"}}]}";

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
        allow:
          - {groups: [ml], methods: [HEAD], paths: ["/v1/models"]}
        masking:
          detectors: [email, credit-card]
          exempt-groups: [auditors]
        recording:
          directory: /nonexistent/never-opened
          bodies: %s
          durability: batched
        """
        .formatted(
            sha256Hex(KEY.getBytes(StandardCharsets.UTF_8)),
            sha256Hex(AUDITOR_KEY.getBytes(StandardCharsets.UTF_8)),
            bodies);
  }

  final CapturingRecorder recorder = new CapturingRecorder();

  PamEngine engine(String bodies, Masker masker) {
    PamEngine.Builder b =
        PamEngine.builder()
            .policy(Policy.parse(policy(bodies)))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"));
    if (masker != null) b.masker(masker);
    return b.build();
  }

  static Verdict call(PamEngine engine, String method, String key, String body) {
    Map<String, List<String>> headers = new HashMap<>();
    headers.put("Content-Type", List.of("application/json"));
    if (key != null) headers.put("Authorization", List.of("Bearer " + key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead(method, "/v1/chat/completions", null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  static Map<String, List<String>> headers(String... nameValues) {
    Map<String, List<String>> h = new HashMap<>();
    for (int i = 0; i < nameValues.length; i += 2) h.put(nameValues[i], List.of(nameValues[i + 1]));
    return h;
  }

  /** Delivers {@code body} as an adapter does: in pieces through the masking, reporting what went out. */
  static String deliver(ResponsePlan.Relay ex, ResponseMasking masking, String body, int step)
      throws IOException {
    ByteArrayOutputStream client = new ByteArrayOutputStream();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    for (int off = 0; off < bytes.length; off += step) {
      byte[] out = masking.push(bytes, off, Math.min(step, bytes.length - off));
      client.write(out);
      ex.delivered(out, 0, out.length);
    }
    byte[] tail = masking.finish();
    client.write(tail);
    ex.delivered(tail, 0, tail.length);
    return client.toString(StandardCharsets.UTF_8);
  }

  @Test
  void theClientAndTheRecordGetTheResponseMaskedOnceWithTheDeliveryCounts() throws Exception {
    Verdict ex = call(engine("masked", null), "POST", KEY, CHAT);
    assertThat(Verdicts.allowed(ex).mayChangeLength()).isTrue();
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    ResponseMasking masking = relay.masking();
    assertThat(masking).isNotNull().isSameAs(relay.masking());
    assertThat(relay.dropContentLength()).isTrue();

    String delivered = deliver(relay, masking, ANSWER, 7);
    Verdicts.end(ex, true);

    assertThat(delivered).isEqualTo(MASKED_ANSWER);
    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().bytes())
        .isEqualTo(MASKED_ANSWER.getBytes(StandardCharsets.UTF_8).length);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void aResponseMaskedOnDeliveryIsNotMaskedAgainForTheRecord() throws Exception {
    UpperCasingMasker masker = new UpperCasingMasker();
    Verdict ex = call(engine("masked", masker), "POST", KEY, CHAT);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "text/plain"));
    String delivered = deliver(relay, relay.masking(), "a secret and a secret", 5);
    Verdicts.end(ex, true);

    assertThat(delivered).isEqualTo("A SECRET AND A SECRET");
    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isEqualTo("A SECRET AND A SECRET");
    assertThat(r.response().masked()).isEqualTo(Map.of("secret", 2));
    assertThat(masker.sessions)
        .as("one for the request body, one for the delivery; none at record time")
        .hasValue(2);
  }

  @Test
  void withBodiesFullTheRecordHoldsWhatWasDeliveredMaskedAndItsCounts() throws Exception {
    Verdict ex = call(engine("full", null), "POST", KEY, CHAT);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    deliver(relay, relay.masking(), ANSWER, 16);
    Verdicts.end(ex, true);

    SessionRecord r = recorder.records.get(0);
    assertThat(r.request().body()).isEqualTo(CHAT);
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void withBodiesNoneTheDeliveryCountsAreStillRecorded() throws Exception {
    Verdict ex = call(engine("none", null), "POST", KEY, CHAT);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    deliver(relay, relay.masking(), ANSWER, 16);
    Verdicts.end(ex, true);

    SessionRecord r = recorder.records.get(0);
    assertThat(r.response().body()).isNull();
    assertThat(r.response().bodySha256())
        .isEqualTo(sha256Hex(MASKED_ANSWER.getBytes(StandardCharsets.UTF_8)));
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void anExemptPrincipalGetsTheResponseRawWhileTheMaskedRecordDoesNot() throws Exception {
    Verdict ex = call(engine("masked", null), "POST", AUDITOR_KEY, CHAT);
    assertThat(Verdicts.allowed(ex).mayChangeLength()).isFalse();
    assertThat(Verdicts.allowed(ex).forward().removeHeaders())
        .as("its credentials are still kept out")
        .contains("accept-encoding");
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    ResponseMasking scrubOnly = relay.masking();
    assertThat(scrubOnly.changesLength()).isFalse();
    assertThat(relay.dropContentLength()).isFalse();
    String delivered = deliver(relay, scrubOnly, ANSWER, 9);
    Verdicts.end(ex, true);

    assertThat(delivered).isEqualTo(ANSWER);
    SessionRecord r = recorder.records.get(0);
    assertThat(r.principal().subject()).isEqualTo("auditor");
    assertThat(r.response().body()).isEqualTo(MASKED_ANSWER);
    assertThat(r.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(r.response().bytes()).as("the size delivered, raw").isEqualTo(ANSWER.length());
  }

  @Test
  void anExemptPrincipalWithBodiesFullIsRecordedRaw() {
    Verdict ex = call(engine("full", null), "POST", AUDITOR_KEY, CHAT);
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    byte[] raw = ANSWER.getBytes(StandardCharsets.UTF_8);
    relay.delivered(raw, 0, raw.length);
    Verdicts.end(ex, true);
    assertThat(recorder.records.get(0).response().body()).isEqualTo(ANSWER);
    assertThat(recorder.records.get(0).response().masked()).isEmpty();
  }

  @Test
  void binaryContentTypesAreNotMaskedButScannedForCredentials() throws Exception {
    for (String type : List.of("image/png", "audio/wav", "video/mp4", "application/octet-stream")) {
      Verdict ex = call(engine("full", null), "POST", KEY, CHAT);
      ResponseMasking masking =
          Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", type)).masking();
      assertThat(masking.changesLength()).as(type).isFalse();
      byte[] bytes = {
        (byte) 0x89, 'P', 'N', 'G', 0, 1, 2, 'j', 'a', 'n', 'e', '@', 'x', '.', 'i', 'o'
      };
      assertThat(masking.push(bytes, 0, bytes.length)).as(type).isSameAs(bytes);
      assertThat(masking.finish()).isEmpty();
      Verdicts.end(ex, true);
      // encoded, it cannot be scanned: refused like one that must be masked
      Verdict encoded = call(engine("full", null), "POST", KEY, CHAT);
      assertThat(
              Verdicts.allowed(encoded)
                  .respond(200, headers("Content-Type", type, "Content-Encoding", "gzip")))
          .as(type)
          .isInstanceOf(ResponsePlan.Refused.class);
      Verdicts.end(encoded, true);
    }
  }

  @Test
  void anEncodedResponseThatMustBeMaskedIsRefused502AndRecordedAsSuch() throws Exception {
    Verdict ex = call(engine("masked", null), "POST", KEY, CHAT);
    ErrorResponse refusal =
        Verdicts.refusal(
            Verdicts.allowed(ex),
            200,
            headers("Content-Type", "application/json", "Content-Encoding", "gzip"));
    assertThat(refusal).isNotNull();
    assertThat(refusal.status()).isEqualTo(502);
    assertThat(refusal.headers()).containsEntry("Content-Type", "application/json");
    JsonNode error = JSON.readTree(refusal.body()).get("error");
    assertThat(error.get("type").asText()).isEqualTo("pam_error");
    assertThat(error.get("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.get("message").asText())
        .isEqualTo("the response is encoded (Content-Encoding: gzip) and cannot be masked");
    assertThat(error.get("request_id").asText()).isEqualTo(ex.id());

    Verdicts.end(ex, true);
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
      Verdict ex = call(engine("masked", null), "POST", KEY, CHAT);
      assertThat(
              Verdicts.allowed(ex)
                  .respond(
                      200,
                      headers("Content-Type", "text/event-stream", "Content-Encoding", encoding)))
          .as(encoding)
          .isInstanceOf(ResponsePlan.Refused.class);
      Verdicts.end(ex, true);
    }
    Verdict identity = call(engine("masked", null), "POST", KEY, CHAT);
    assertThat(
            Verdicts.relay(
                    Verdicts.allowed(identity),
                    200,
                    headers("Content-Type", "text/event-stream", "Content-Encoding", "identity"))
                .masking())
        .isNotNull();
  }

  @Test
  void responsesWithoutABodyAreNeitherMaskedNorRefused() {
    Verdict head =
        engine("masked", null)
            .begin(
                new RequestHead(
                    "HEAD",
                    "/v1/models",
                    null,
                    Map.of("Authorization", List.of("Bearer " + KEY)),
                    "127.0.0.1"),
                null,
                0);
    assertThat(
            Verdicts.relay(
                    Verdicts.allowed(head),
                    200,
                    headers("Content-Type", "application/json", "Content-Encoding", "gzip"))
                .masking())
        .isNull();
    for (int status : new int[] {204, 304}) {
      Verdict ex = call(engine("masked", null), "POST", KEY, CHAT);
      ResponsePlan plan = Verdicts.allowed(ex).respond(status, headers("Content-Encoding", "gzip"));
      assertThat(plan).as("status " + status).isInstanceOf(ResponsePlan.Relay.class);
      assertThat(((ResponsePlan.Relay) plan).masking()).as("status " + status).isNull();
    }
  }

  @Test
  void aDeniedExchangeIsNotMaskedItsErrorIsTheEngines() {
    Verdict ex = call(engine("masked", null), "POST", null, CHAT);
    // A denial offers nothing to mask: its answer is the engine's error, sent as it is.
    assertThat(Verdicts.denied(ex).error().status()).isEqualTo(401);
  }

  @Test
  void theIdentityMaskerMasksNothingButCredentialsAreStillKeptOut() throws Exception {
    Verdict ex = call(engine("masked", Masker.IDENTITY), "POST", KEY, CHAT);
    assertThat(Verdicts.allowed(ex).mayChangeLength()).isFalse();
    assertThat(Verdicts.allowed(ex).forward().removeHeaders()).contains("accept-encoding");
    ResponsePlan.Relay relay =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "application/json"));
    String delivered = deliver(relay, relay.masking(), ANSWER + " Bearer upstream-secret", 5);
    assertThat(delivered).isEqualTo(ANSWER + " [REDACTED:credential*]");
  }

  @Test
  void theFirstResponseReportedDecidesThePlan() {
    Verdict.Allowed ex = Verdicts.allowed(call(engine("masked", null), "POST", KEY, CHAT));
    ResponsePlan first = ex.respond(200, headers("Content-Type", "application/json"));
    assertThat(first).isInstanceOf(ResponsePlan.Relay.class);
    assertThat(
            ex.respond(
                500, headers("Content-Type", "application/json", "Content-Encoding", "gzip")))
        .as("later calls change nothing")
        .isSameAs(first);
    ex.end(true);
    assertThat(recorder.records.get(0).response().status()).isEqualTo(200);
  }

  @Test
  void aFailingMaskerCutsTheResponseOffAndKeepsFailing() throws Exception {
    Masker failing =
        () ->
            new Masker.Session() {
              @Override
              public String push(String text) {
                throw new IllegalStateException("detector crashed on " + text);
              }

              @Override
              public String finish() {
                return "";
              }
            };
    Verdict ex = call(engine("full", failing), "POST", KEY, "{\"model\":\"llama-3\"}");
    ResponseMasking masking =
        Verdicts.relay(Verdicts.allowed(ex), 200, headers("Content-Type", "text/plain")).masking();
    byte[] text = "jane.doe@example.com".getBytes(StandardCharsets.UTF_8);
    assertThatThrownBy(() -> masking.push(text, 0, text.length))
        .isInstanceOf(IOException.class)
        .hasMessage("response masking failed");
    assertThatThrownBy(masking::finish).isInstanceOf(IOException.class);
    Verdicts.end(ex, false);
    assertThat(recorder.records.get(0).response().body()).isEmpty();
    assertThat(recorder.records.get(0).response().complete()).isFalse();
  }
}
