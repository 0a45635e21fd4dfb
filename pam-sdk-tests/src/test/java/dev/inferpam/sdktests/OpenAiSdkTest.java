package dev.inferpam.sdktests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.PermissionDeniedException;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.okhttp.PamInterceptor;
import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import java.time.Duration;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI Java SDK (4.105, from Maven Central) with {@link PamInterceptor} through its {@code
 * addInterceptor} seam, on the OkHttp 4.12 the SDK brings: calls and streams masked, the caller's
 * key never reaching the model server, denials read as the SDK's own exceptions, exchanges
 * recorded.
 */
class OpenAiSdkTest {
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "upstream-secret-0123456789";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  final LoopbackModel model = new LoopbackModel();
  final InMemoryRecorder recorder = new InMemoryRecorder();
  final PamEngine engine =
      PamEngine.builder()
          .policy(Policy.parse(Policies.clientAdapterPolicy(ALICE)))
          .recorder(recorder)
          .credentialProvider(() -> new Credential("Authorization", "Bearer " + UPSTREAM))
          .build();
  final OpenAIClient client =
      OpenAIOkHttpClient.builder()
          .baseUrl(model.baseUrl() + "/v1")
          .apiKey(ALICE)
          .maxRetries(0)
          .followRedirects(false) // an interceptor sees only the first hop
          .addInterceptor(PamInterceptor.of(engine))
          .build();

  OpenAiSdkTest() throws Exception {}

  @AfterEach
  void close() {
    client.close();
    engine.close();
    model.close();
  }

  static ChatCompletionCreateParams chat() {
    return ChatCompletionCreateParams.builder().model("llama-3.1-8b").addUserMessage("hi").build();
  }

  static String chunk(String content) {
    return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
        + content
        + "\"},\"finish_reason\":null}]}\n\n";
  }

  SessionRecord onlyRecord() {
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(recorder.records()).hasSize(1));
    return recorder.records().get(0);
  }

  void assertTheModelSawOnlyTheUpstreamKey() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.headers().toString() + got.body()).doesNotContain(ALICE);
  }

  @Test
  void theSdkRunsOnTheOkHttpItBrings() {
    assertThat(okhttp3.OkHttp.VERSION).startsWith("4.12");
  }

  @Test
  void aCompletionIsMaskedAndRecorded() throws Exception {
    model.json(
        "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"llama-3.1-8b\","
            + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Mail "
            + EMAIL
            + " or "
            + CARD
            + ".\"},\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}");
    String text =
        client
            .chat()
            .completions()
            .create(chat())
            .choices()
            .get(0)
            .message()
            .content()
            .orElseThrow();
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertTheModelSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("alice");
    assertThat(r.response().complete()).isTrue();
    assertThat(r.response().usage()).containsEntry("completion_tokens", 5L);
  }

  @Test
  void aStreamWithValuesSplitAcrossEventsIsMaskedAndRecordedComplete() throws Exception {
    model.sse(
        chunk("Mail jane.doe@exa"),
        chunk("mple.com and charge 4111 1111 "),
        chunk("1111 1111 today, then pay with card"),
        "data: [DONE]\n\n");
    StringBuilder text = new StringBuilder();
    try (StreamResponse<ChatCompletionChunk> stream =
        client.chat().completions().createStreaming(chat())) {
      stream.stream()
          .forEach(c -> c.choices().forEach(ch -> ch.delta().content().ifPresent(text::append)));
    }
    assertThat(text.toString())
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertTheModelSawOnlyTheUpstreamKey();
    assertThat(onlyRecord().response().complete()).isTrue();
  }

  @Test
  void aDenialIsTheSdksPermissionDeniedExceptionWithThePolicysMessage() {
    ChatCompletionCreateParams withLogprobs = chat().toBuilder().logprobs(true).build();
    assertThatThrownBy(() -> client.chat().completions().create(withLogprobs))
        .isInstanceOfSatisfying(
            PermissionDeniedException.class,
            e -> {
              assertThat(e.statusCode()).isEqualTo(403);
              assertThat(e.getMessage())
                  .isEqualTo("403: parameter \"logprobs\" is denied by policy");
            });
    assertThat(model.requestCount()).isZero();
    assertThat(onlyRecord().decision().code()).isEqualTo("parameter_denied");
  }
}
