package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Spring AI 1.1 on Spring Boot 3.5, as a user has it: the OpenAI starter, this starter, one
 * property ({@code inferpam.policy}); the model server on 127.0.0.1. Spring AI makes plain calls
 * through {@code RestClient} and streams through {@code WebClient}: both are governed.
 */
class SpringAiOpenAiTest {
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "upstream-secret-0123456789";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  @TempDir Path dir;
  FakeModelServer server;
  ConfigurableApplicationContext app;

  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  static class Application {}

  @BeforeEach
  void start() throws IOException {
    server = FakeModelServer.start();
    Path key = dir.resolve("upstream-key");
    Files.writeString(key, UPSTREAM);
    Path policy = dir.resolve("policy.yaml");
    Files.writeString(
        policy,
        """
        version: 1
        identity:
          api-keys:
        """
            + Policies.apiKey("alice", ALICE, "ml")
            + """
        upstream:
          credential: {header: Authorization, scheme: Bearer, from-file: %s}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        parameters:
          deny: [logprobs]
        masking:
          detectors: [email, credit-card]
        recording:
          directory: %s
          durability: batched
        """
                .formatted(
                    Policies.quoted(key.toString()),
                    Policies.quoted(dir.resolve("rec").toString())));
    app =
        kind(new SpringApplicationBuilder(Application.class))
            .properties(
                "inferpam.policy=file:" + policy,
                "spring.ai.openai.base-url=" + server.url("/").toString().replaceAll("/$", ""),
                "spring.ai.openai.api-key=" + ALICE,
                "spring.ai.openai.chat.options.model=llama-3.1-8b",
                "spring.ai.retry.max-attempts=1")
            .run();
  }

  /** The kind of application: here one without a web server; a subclass runs the same in another. */
  SpringApplicationBuilder kind(SpringApplicationBuilder application) {
    return application.web(WebApplicationType.NONE);
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    server.close();
  }

  ChatModel chat() {
    return app.getBean(org.springframework.ai.openai.OpenAiChatModel.class);
  }

  void assertUpstreamSawOnlyTheUpstreamKey() throws InterruptedException {
    ModelRequest got = server.takeRequest();
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.headerText() + got.bodyText()).doesNotContain(ALICE);
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
  void aCallGoesThroughRestClientMaskedWithTheUpstreamKeyAndIsRecorded() throws Exception {
    server.enqueue(ModelAnswer.json(Completions.chat("Mail " + EMAIL + " or " + CARD + ".", 5, 7)));
    String text = chat().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertUpstreamSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(recordings())
                    .contains("\"subject\":\"alice\"", "\"complete\":true", "Mail [EMAIL]")
                    .doesNotContain(EMAIL, "4111"));
  }

  @Test
  void aStreamGoesThroughWebClientMaskedAcrossEventsAndIsRecorded() throws Exception {
    server.enqueue(
        ModelAnswer.sse(
            Completions.sseDelta("Mail jane.doe@exa"),
            Completions.sseDelta("mple.com and charge 4111 1111 "),
            Completions.sseDelta("1111 1111 today, then pay with card"),
            Completions.SSE_DONE));
    List<ChatResponse> chunks =
        chat().stream(new Prompt("hi")).collectList().block(Duration.ofSeconds(10));
    String text =
        chunks.stream()
            .filter(c -> c.getResult() != null && c.getResult().getOutput().getText() != null)
            .map(c -> c.getResult().getOutput().getText())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertUpstreamSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(recordings())
                    .contains("\"streamed\":true", "\"complete\":true", "[CREDIT_CARD]")
                    .doesNotContain("jane.doe", "4111"));
  }

  @Test
  void aDeniedCallFailsWithThePolicysMessageAndNothingReachesTheModel() {
    Prompt prompt = new Prompt("hi", OpenAiChatOptions.builder().logprobs(true).build());
    assertThatThrownBy(() -> chat().call(prompt))
        .hasMessageContaining("is denied by policy")
        .hasMessageContaining("logprobs");
    assertThatThrownBy(() -> chat().stream(prompt).blockLast(Duration.ofSeconds(10)))
        .hasMessageContaining("403");
    assertThat(server.requestCount()).isZero();
  }
}
