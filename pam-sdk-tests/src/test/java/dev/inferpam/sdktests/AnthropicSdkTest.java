package dev.inferpam.sdktests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.anthropic.client.AnthropicClient;
import com.anthropic.client.okhttp.AnthropicOkHttpClient;
import com.anthropic.core.http.StreamResponse;
import com.anthropic.errors.PermissionDeniedException;
import com.anthropic.models.messages.Message;
import com.anthropic.models.messages.MessageCreateParams;
import com.anthropic.models.messages.RawMessageStreamEvent;
import dev.inferpam.anthropic.PamAnthropicInterceptor;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import java.time.Duration;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The Anthropic Java SDK (3.16, from Maven Central) with {@link PamAnthropicInterceptor} through
 * its own {@code addInterceptor} seam: messages and message streams masked, the caller's key
 * never reaching the model server, denials read as the SDK's own exceptions with the policy's
 * message, exchanges recorded.
 */
class AnthropicSdkTest {
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "sk-ant-upstream-0123456789";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  final LoopbackModel model = new LoopbackModel();
  final InMemoryRecorder recorder = new InMemoryRecorder();
  final PamEngine engine =
      PamEngine.builder()
          .policy(
              Policy.parse(
                  """
                  version: 1
                  identity:
                    api-keys:
                      - {name: alice, sha256: %s, groups: [ml]}
                  entitlements:
                    - groups: [ml]
                      models: ["claude-*"]
                      operations: [chat]
                  parameters:
                    max: {max_tokens: 1000}
                  masking:
                    detectors: [email, credit-card]
                  recording:
                    directory: ./never-opened-a-recorder-is-given
                    durability: batched
                  """
                      .formatted(Policies.sha256(ALICE))))
          .recorder(recorder)
          .credentialProvider(() -> new Credential("x-api-key", UPSTREAM))
          .build();
  final AnthropicClient client =
      AnthropicOkHttpClient.builder()
          .baseUrl(model.baseUrl())
          .apiKey(ALICE)
          .maxRetries(0)
          .addInterceptor(PamAnthropicInterceptor.of(engine))
          .build();

  AnthropicSdkTest() throws Exception {}

  @AfterEach
  void close() {
    client.close();
    engine.close();
    model.close();
  }

  static MessageCreateParams message(long maxTokens) {
    return MessageCreateParams.builder()
        .model("claude-sonnet-4-5")
        .maxTokens(maxTokens)
        .addUserMessage("hi")
        .build();
  }

  static String event(String type, String json) {
    return "event: " + type + "\ndata: " + json + "\n\n";
  }

  static String textDelta(String text) {
    return event(
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""
            + text
            + "\"}}");
  }

  SessionRecord onlyRecord() {
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(recorder.records()).hasSize(1));
    return recorder.records().get(0);
  }

  void assertTheModelSawOnlyTheUpstreamKey() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.path()).isEqualTo("/v1/messages");
    assertThat(got.header("x-api-key")).isEqualTo(UPSTREAM);
    assertThat(got.headers().toString() + got.body()).doesNotContain(ALICE);
  }

  @Test
  void aMessageIsMaskedAndRecorded() throws Exception {
    model.json(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
            + "\"content\":[{\"type\":\"text\",\"text\":\"Mail "
            + EMAIL
            + " or "
            + CARD
            + ".\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
            + "\"usage\":{\"input_tokens\":3,\"output_tokens\":5}}");
    Message m = client.messages().create(message(100));
    String text =
        m.content().stream()
            .flatMap(b -> b.text().stream())
            .map(t -> t.text())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertTheModelSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("alice");
    assertThat(r.response().complete()).isTrue();
    assertThat(r.response().masked()).containsEntry("email", 1).containsEntry("credit-card", 1);
  }

  @Test
  void aStreamWithValuesSplitAcrossEventsIsMasked() throws Exception {
    model.sse(
        event(
            "message_start",
            "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
                + "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\","
                + "\"stop_reason\":null,\"stop_sequence\":null,"
                + "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}"),
        event(
            "content_block_start",
            "{\"type\":\"content_block_start\",\"index\":0,"
                + "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"),
        textDelta("Mail jane.doe@exa"),
        textDelta("mple.com and charge 4111 1111 "),
        textDelta("1111 1111 today, then pay with card"),
        event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"),
        event(
            "message_delta",
            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                + "\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}"),
        event("message_stop", "{\"type\":\"message_stop\"}"));
    StringBuilder text = new StringBuilder();
    try (StreamResponse<RawMessageStreamEvent> stream =
        client.messages().createStreaming(message(100))) {
      stream.stream()
          .forEach(
              e ->
                  e.contentBlockDelta()
                      .flatMap(d -> d.delta().text())
                      .ifPresent(t -> text.append(t.text())));
    }
    assertThat(text.toString())
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertTheModelSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.response().streamed()).isTrue();
    assertThat(r.response().usage()).containsEntry("completion_tokens", 12L);
  }

  @Test
  void aDenialIsTheSdksPermissionDeniedExceptionWithThePolicysMessage() {
    assertThatThrownBy(() -> client.messages().create(message(4096)))
        .isInstanceOfSatisfying(
            PermissionDeniedException.class,
            e -> {
              assertThat(e.statusCode()).isEqualTo(403);
              // the SDK's getMessage() is the status and the whole body, as for its own errors;
              // apiMessage() is the policy's message, errorType() the error's type
              assertThat(e.apiMessage())
                  .contains("parameter \"max_tokens\" is 4096, over the maximum 1000");
              assertThat(e.getMessage())
                  .startsWith("403: ")
                  .contains("\"code\":\"parameter_denied\"");
            });
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void anAsynchronousCallIsGovernedToo() throws Exception {
    model.json(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
            + "\"content\":[{\"type\":\"text\",\"text\":\"Reach "
            + EMAIL
            + "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
            + "\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}");
    Message m = client.async().messages().create(message(100)).get();
    assertThat(m.content().get(0).text().orElseThrow().text()).isEqualTo("Reach [EMAIL]");
    assertTheModelSawOnlyTheUpstreamKey();
    assertThat(onlyRecord().response().complete()).isTrue();
  }
}
