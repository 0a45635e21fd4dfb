package dev.inferpam.sdktests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.langchain4j.PamHttpClientBuilderFactory;
import dev.inferpam.langchain4j.PamLangChain4j;
import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * LangChain4j 1.19 (from Maven Central), its OpenAI models, through {@link PamLangChain4j}: chats
 * and streams masked, the caller's key never reaching the model server, a denial raised with the
 * policy's error, and the service-loader route that refuses to leave a model ungoverned.
 */
class LangChain4jTest {
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

  LangChain4jTest() throws Exception {}

  @AfterEach
  void close() {
    engine.close();
    model.close();
  }

  OpenAiChatModel.OpenAiChatModelBuilder chat() {
    return OpenAiChatModel.builder()
        .baseUrl(model.baseUrl() + "/v1")
        .apiKey(ALICE)
        .modelName("llama-3.1-8b")
        .maxRetries(0);
  }

  static String completion(String content) {
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"llama-3.1-8b\","
        + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
        + content
        + "\"},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
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
  void aChatIsMaskedAndRecorded() throws Exception {
    model.json(completion("Mail " + EMAIL + " or " + CARD + "."));
    String answer =
        chat().httpClientBuilder(PamLangChain4j.httpClientBuilder(engine)).build().chat("hi");
    assertThat(answer).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertTheModelSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("alice");
    assertThat(r.response().complete()).isTrue();
  }

  @Test
  void aStreamWithValuesSplitAcrossEventsIsMaskedAndRecordedComplete() throws Exception {
    model.sse(
        OpenAiSdkTest.chunk("Mail jane.doe@exa"),
        OpenAiSdkTest.chunk("mple.com and charge 4111 1111 "),
        OpenAiSdkTest.chunk("1111 1111 today, then pay with card"),
        "data: [DONE]\n\n");
    OpenAiStreamingChatModel streaming =
        OpenAiStreamingChatModel.builder()
            .baseUrl(model.baseUrl() + "/v1")
            .apiKey(ALICE)
            .modelName("llama-3.1-8b")
            .httpClientBuilder(PamLangChain4j.httpClientBuilder(engine))
            .build();
    StringBuilder text = new StringBuilder();
    CompletableFuture<ChatResponse> done = new CompletableFuture<>();
    streaming.chat(
        "hi",
        new StreamingChatResponseHandler() {
          @Override
          public void onPartialResponse(String partial) {
            text.append(partial);
          }

          @Override
          public void onCompleteResponse(ChatResponse response) {
            done.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            done.completeExceptionally(error);
          }
        });
    done.get(10, TimeUnit.SECONDS);
    assertThat(text.toString())
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertTheModelSawOnlyTheUpstreamKey();
    assertThat(onlyRecord().response().complete()).isTrue();
  }

  @Test
  void aDenialIsRaisedWithThePolicysErrorAndNothingIsSent() {
    OpenAiChatModel denied =
        chat().logprobs(true).httpClientBuilder(PamLangChain4j.httpClientBuilder(engine)).build();
    assertThatThrownBy(() -> denied.chat("hi"))
        .hasMessageContaining("parameter \\\"logprobs\\\" is denied by policy");
    assertThat(model.requestCount()).isZero();
    assertThat(onlyRecord().decision().code()).isEqualTo("parameter_denied");
  }

  @Test
  void throughTheServiceLoaderAModelIsGovernedOnceChosenAndNeverSilentlyNot() throws Exception {
    String property = "langchain4j.http.clientBuilderFactory";
    assertThatThrownBy(() -> chat().build())
        .as("two clients found, none chosen: LangChain4j refuses to build the model")
        .hasMessageContaining("Conflict: multiple HTTP clients");
    System.setProperty(property, PamHttpClientBuilderFactory.class.getName());
    try {
      PamLangChain4j.install(engine);
      model.json(completion("Reach " + EMAIL));
      assertThat(chat().build().chat("hi")).isEqualTo("Reach [EMAIL]");
      assertTheModelSawOnlyTheUpstreamKey();
    } finally {
      System.clearProperty(property);
    }
  }
}
