package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.Json;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.ollama.OllamaChatModel;
import org.springframework.ai.ollama.api.OllamaChatOptions;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.retry.NonTransientAiException;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.reactive.function.client.WebClientResponseException;

/**
 * Spring AI 1.1's Ollama model with the starter. Ollama takes no key, so Spring AI sends none:
 * with {@code inferpam.client.api-key} its calls (RestClient) and NDJSON streams (WebClient) to
 * {@code /api/chat} are made as the application, identified by that key, which never reaches the
 * model server; without it they are refused 401.
 */
@ExtendWith(OutputCaptureExtension.class)
class SpringAiOllamaTest {
  static final String APP = "app-service-key-0003";
  static final String ALICE = "alice-key-0001";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  @TempDir Path dir;
  FakeModelServer server;
  Path policy;
  final List<ConfigurableApplicationContext> apps = new ArrayList<>();

  @BeforeEach
  void start() throws IOException {
    server = FakeModelServer.start();
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
            + Policies.apiKey("alice", ALICE, "ml")
            + """
        entitlements:
          - groups: [ml]
            models: ["llama*"]
            operations: [chat]
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
    server.close();
  }

  /** The application, with {@code more} properties ({@code inferpam.client.api-key} among them). */
  ConfigurableApplicationContext app(String... more) {
    ConfigurableApplicationContext app =
        new SpringApplicationBuilder(SpringAiOpenAiTest.Application.class)
            .web(WebApplicationType.NONE)
            .properties(
                "inferpam.policy=file:" + policy,
                "spring.ai.ollama.base-url=" + server.url("/").toString().replaceAll("/$", ""),
                "spring.ai.ollama.chat.model=llama3.1",
                "spring.ai.openai.base-url=" + server.url("/").toString().replaceAll("/$", ""),
                "spring.ai.openai.api-key=" + ALICE,
                "spring.ai.openai.chat.options.model=llama-3.1-8b",
                "spring.ai.retry.max-attempts=1",
                "logging.level.dev.inferpam=TRACE")
            .properties(more)
            .run();
    apps.add(app);
    return app;
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
    ModelRequest got = server.takeRequest();
    assertThat(got.target()).isEqualTo("/api/chat");
    assertThat(got.header("Authorization")).isNull();
    assertThat(got.headerText() + got.bodyText()).doesNotContain(APP);
  }

  /** Every record line written so far (the engine flushes them at close, or within batch-interval). */
  String recordings() throws IOException {
    Path rec = dir.resolve("rec");
    if (!Files.isDirectory(rec)) return "";
    try (Stream<Path> files = Files.walk(rec)) {
      List<Path> all = files.filter(Files::isRegularFile).sorted().collect(Collectors.toList());
      StringBuilder out = new StringBuilder();
      for (Path f : all) out.append(Files.readString(f));
      return out.toString();
    }
  }

  @Test
  void aCallIsMadeAsTheApplicationMaskedAndRecordedAndTheKeyNeverLeaves(CapturedOutput output)
      throws Exception {
    server.enqueue(ModelAnswer.json(line("Mail " + EMAIL + " or " + CARD + ".", true)));
    String text = ollama().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertTheModelSawNoCredential();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(recordings())
                    .contains("\"subject\":\"app\"", "\"complete\":true", "Mail [EMAIL]")
                    .doesNotContain(EMAIL, "4111", APP));
    assertThat(output.getAll()).doesNotContain(APP);
  }

  @Test
  void anNdjsonStreamWithValuesSplitAcrossLinesIsMaskedAndRecordedComplete() throws Exception {
    server.enqueue(
        ModelAnswer.ndjson(
            line("Mail jane.doe@exa", false),
            line("mple.com and charge 4111 1111 ", false),
            line("1111 1111 today, then pay with card", false),
            line("", true)));
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
                assertThat(recordings())
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
    Prompt seeded = new Prompt("hi", OllamaChatOptions.builder().seed(42).build());
    assertThatThrownBy(() -> chat.call(seeded))
        .isInstanceOf(NonTransientAiException.class)
        .hasMessageStartingWith("HTTP 403 - ")
        .hasMessageContaining("parameter \\\"seed\\\" is denied by policy");
    // a stream's error is WebClient's, which names the request; the policy's answer is its body
    assertThatThrownBy(() -> chat.stream(seeded).blockLast(Duration.ofSeconds(10)))
        .isInstanceOfSatisfying(
            WebClientResponseException.Forbidden.class,
            e -> {
              assertThat(e.getMessage())
                  .isEqualTo("403 Forbidden from POST " + server.url("/api/chat"));
              assertThat(e.getResponseBodyAsString())
                  .contains("parameter \\\"seed\\\" is denied by policy");
              assertThat(e.getRequest().getHeaders().toString()).doesNotContain(APP);
            });
    Prompt mistral = new Prompt("hi", OllamaChatOptions.builder().model("mistral").build());
    assertThatThrownBy(() -> chat.call(mistral))
        .hasMessageStartingWith("HTTP 403 - ")
        .hasMessageContaining("no entitlement grants chat on model \\\"mistral\\\"");
    assertThat(server.requestCount()).isZero();
  }

  @Test
  void withoutTheKeyACallIsRefused401NoCredentialAndNothingReachesTheModel() {
    OllamaChatModel chat = app().getBean(OllamaChatModel.class);
    assertThatThrownBy(() -> chat.call(new Prompt("hi")))
        .isInstanceOf(NonTransientAiException.class)
        .hasMessageStartingWith("HTTP 401 - ")
        .hasMessageContaining("\"code\":\"unauthenticated\"")
        .hasMessageContaining("authentication failed: no credential");
    assertThat(server.requestCount()).isZero();
  }

  @Test
  void aModelThatSendsItsOwnKeyKeepsIt() throws Exception {
    ConfigurableApplicationContext app = app("inferpam.client.api-key=" + APP);
    server.enqueue(ModelAnswer.json(Completions.chat("Hello from OpenAI", 3, 4)));
    String text =
        app.getBean(OpenAiChatModel.class).call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Hello from OpenAI");
    ModelRequest got = server.takeRequest();
    assertThat(got.headerText()).doesNotContain(ALICE, APP);
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(recordings()).contains("\"subject\":\"alice\""));
    assertThat(recordings()).doesNotContain("\"subject\":\"app\"");
  }
}
