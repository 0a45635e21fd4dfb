package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.testsupport.Json;
import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.ollama.OllamaChatModel;
import org.springframework.ai.ollama.api.OllamaChatOptions;
import org.springframework.ai.openai.OpenAiEmbeddingModel;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.reactive.function.client.WebClientResponseException;

/**
 * Spring AI 2.0's Ollama model on Spring Boot 4.0 with the starter. Spring AI 2's Ollama client
 * is {@code RestClient} (calls) and {@code WebClient} (NDJSON streams) from Boot 4's builder beans
 * (its starter brings {@code spring-boot-starter-restclient} and {@code -webclient}), and sends no
 * key: with {@code inferpam.client.api-key} its calls are made as the application, identified by
 * that key, which never reaches the model server; without it they are refused 401.
 */
class SpringAiOllamaBoot4Test {
  static final String APP = "app-service-key-0003";

  @TempDir Path dir;
  LoopbackModel model;
  Path policy;
  final List<ConfigurableApplicationContext> apps = new ArrayList<>();

  @BeforeEach
  void start() throws IOException {
    model = new LoopbackModel();
    policy = dir.resolve("policy.yaml");
    // no upstream credential: Ollama takes none
    Files.writeString(
        policy,
        """
        version: 1
        identity:
          api-keys:
        """
            + Policies.apiKey("app", APP, "ml")
            + Policies.apiKey("alice", Boot4App.ALICE, "ml")
            + """
        entitlements:
          - groups: [ml]
            models: ["llama*"]
            operations: [chat, embedding]
        parameters:
          deny: [seed]
        masking:
          detectors: [email, credit-card]
        recording:
          directory: %s
          durability: batched
        """
                .formatted(Policies.quoted(dir.resolve("rec").toString())));
  }

  @AfterEach
  void stop() {
    apps.forEach(ConfigurableApplicationContext::close);
    model.close();
  }

  /**
   * The application, with {@code more} properties ({@code inferpam.client.api-key} among them).
   * Ollama's is its chat model (on the command line, over the test {@code application.properties});
   * OpenAI's embedding model is there too.
   */
  ConfigurableApplicationContext app(String... more) {
    List<String> args = new ArrayList<>();
    args.add("--spring.ai.model.chat=ollama");
    for (String property : more) args.add("--" + property);
    ConfigurableApplicationContext app =
        kind(new SpringApplicationBuilder(SpringAiOpenAiBoot4Test.Application.class))
            .properties(
                "inferpam.policy=file:" + policy,
                "spring.ai.ollama.base-url=" + model.baseUrl(),
                "spring.ai.ollama.chat.model=llama3.1",
                "spring.ai.openai.base-url=" + model.baseUrl() + "/v1",
                "spring.ai.openai.api-key=" + Boot4App.ALICE,
                "spring.ai.openai.embedding.model=llama-embed",
                "spring.ai.openai.max-retries=0")
            .run(args.toArray(String[]::new));
    apps.add(app);
    return app;
  }

  /** The kind of application: here one without a web server; a subclass runs the same in another. */
  SpringApplicationBuilder kind(SpringApplicationBuilder application) {
    return application.web(WebApplicationType.NONE);
  }

  OllamaChatModel ollama() {
    return app("inferpam.client.api-key=" + APP).getBean(OllamaChatModel.class);
  }

  /** One line of Ollama's {@code /api/chat} answer; the last one ({@code done}) with its counts. */
  static String line(String content, boolean done) {
    return "{\"model\":\"llama3.1\",\"created_at\":\"2025-01-01T00:00:00Z\","
        + "\"message\":{\"role\":\"assistant\",\"content\":"
        + Json.string(content)
        + "},\"done\":"
        + done
        + (done ? ",\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":5" : "")
        + "}\n";
  }

  void assertTheModelSawNoCredential() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.path()).isEqualTo("/api/chat");
    assertThat(got.header("Authorization")).isNull();
    assertThat(got.headers().toString() + got.body()).doesNotContain(APP);
  }

  @Test
  void aCallIsMadeAsTheApplicationMaskedAndRecorded() throws Exception {
    model.answer("application/json", line("Mail " + Boot4App.EMAIL + " or " + Boot4App.CARD, true));
    String text = ollama().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD]");
    assertTheModelSawNoCredential();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"subject\":\"app\"", "\"complete\":true", "Mail [EMAIL]")
                    .doesNotContain(Boot4App.EMAIL, "4111", APP));
  }

  @Test
  void anNdjsonStreamWithValuesSplitAcrossLinesIsMaskedAndRecordedComplete() throws Exception {
    model.answer(
        "application/x-ndjson",
        line("Mail jane.doe@exa", false),
        line("mple.com and charge 4111 1111 ", false),
        line("1111 1111 today, then pay with card", false),
        line("", true));
    List<ChatResponse> chunks =
        ollama().stream(new Prompt("hi")).collectList().block(Duration.ofSeconds(10));
    String text =
        chunks.stream()
            .filter(c -> c.getResult() != null && c.getResult().getOutput().getText() != null)
            .map(c -> c.getResult().getOutput().getText())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertTheModelSawNoCredential();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains(
                        "\"subject\":\"app\"",
                        "\"streamed\":true",
                        "\"complete\":true",
                        "[CREDIT_CARD]")
                    .doesNotContain("jane.doe", "4111", APP));
  }

  @Test
  void aDenialFailsWithThePolicysMessageAndNothingReachesTheModel() {
    OllamaChatModel chat = ollama();
    // Spring AI 2's runtime options bring their own default model (mistral): name it
    Prompt seeded =
        new Prompt("hi", OllamaChatOptions.builder().model("llama3.1").seed(42).build());
    assertThatThrownBy(() -> chat.call(seeded))
        .hasMessageContaining("403")
        .hasMessageContaining("parameter \\\"seed\\\" is denied by policy");
    assertThatThrownBy(() -> chat.stream(seeded).blockLast(Duration.ofSeconds(10)))
        .isInstanceOfSatisfying(
            WebClientResponseException.Forbidden.class,
            e -> {
              assertThat(e.getMessage())
                  .isEqualTo("403 Forbidden from POST " + model.baseUrl() + "/api/chat");
              assertThat(e.getResponseBodyAsString())
                  .contains("parameter \\\"seed\\\" is denied by policy");
            });
    Prompt mistral = new Prompt("hi", OllamaChatOptions.builder().model("mistral").build());
    assertThatThrownBy(() -> chat.call(mistral))
        .hasMessageContaining("403")
        .hasMessageContaining("no entitlement grants chat on model \\\"mistral\\\"");
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void withoutTheKeyACallIsRefused401NoCredentialAndNothingReachesTheModel() {
    OllamaChatModel chat = app().getBean(OllamaChatModel.class);
    assertThatThrownBy(() -> chat.call(new Prompt("hi")))
        .hasMessageContaining("401")
        .hasMessageContaining("authentication failed: no credential");
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void springAiOpenAiThroughOkHttpSendsItsOwnKeyAndKeepsIt() throws Exception {
    ConfigurableApplicationContext app = app("inferpam.client.api-key=" + APP);
    model.answer(
        "application/json",
        "{\"object\":\"list\",\"model\":\"llama-embed\",\"data\":[{\"object\":\"embedding\","
            + "\"index\":0,\"embedding\":[0.25,0.5]}],"
            + "\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}");
    float[] vector = app.getBean(OpenAiEmbeddingModel.class).embed("hi");
    assertThat(vector).containsExactly(0.25f, 0.5f);
    LoopbackModel.Got got = model.take();
    assertThat(got.path()).isEqualTo("/v1/embeddings");
    assertThat(got.headers().toString()).doesNotContain(Boot4App.ALICE, APP);
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () -> assertThat(Boot4App.recordings(dir)).contains("\"subject\":\"alice\""));
    assertThat(Boot4App.recordings(dir)).doesNotContain("\"subject\":\"app\"");
  }

  @Test
  void aBlankOrUnknownKeyStopsTheApplication() {
    assertThatThrownBy(() -> app("inferpam.client.api-key= "))
        .rootCause()
        .hasMessageContaining("inferpam.client.api-key is set but blank");
    assertThatThrownBy(() -> app("inferpam.client.api-key=not-a-key-of-the-policy"))
        .rootCause()
        .hasMessageContaining("inferpam.client.api-key does not identify a caller of the policy")
        .hasMessageContaining("unknown api key")
        .hasMessageNotContaining("not-a-key-of-the-policy");
  }
}
