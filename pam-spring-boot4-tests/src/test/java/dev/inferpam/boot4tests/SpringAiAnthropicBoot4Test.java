package dev.inferpam.boot4tests;

import static dev.inferpam.boot4tests.Boot4App.ALICE;
import static dev.inferpam.boot4tests.Boot4App.EMAIL;
import static dev.inferpam.boot4tests.Boot4App.UPSTREAM;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.anthropic.AnthropicChatModel;
import org.springframework.ai.anthropic.AnthropicChatOptions;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Spring AI 2.0's Anthropic model on Spring Boot 4.0 with the starter: it calls {@code
 * /v1/messages} through the Anthropic Java SDK on an OkHttp client of Spring AI's own, calls and
 * streams alike; both are governed, the caller's {@code x-api-key} replaced by the policy's.
 */
class SpringAiAnthropicBoot4Test {
  @TempDir Path dir;
  LoopbackModel model;
  ConfigurableApplicationContext app;

  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  static class Application {}

  @BeforeEach
  void start() throws IOException {
    model = new LoopbackModel();
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
          credential: {header: x-api-key, from-file: %s}
        entitlements:
          - groups: [ml]
            models: ["claude-*"]
            operations: [chat]
        parameters:
          max: {max_tokens: 1000}
        masking:
          detectors: [email]
        recording:
          directory: %s
          durability: batched
        """
                .formatted(
                    Policies.quoted(key.toString()),
                    Policies.quoted(dir.resolve("rec").toString())));
    app =
        new SpringApplicationBuilder(Application.class)
            .web(WebApplicationType.NONE)
            // command-line arguments: they outrank the module's application.properties, which
            // picks OpenAI's chat model for the tests that ask for "the" ChatModel
            .run(
                "--inferpam.policy=file:" + policy,
                "--spring.ai.model.chat=anthropic",
                "--spring.ai.anthropic.base-url=" + model.baseUrl(),
                "--spring.ai.anthropic.api-key=" + ALICE,
                "--spring.ai.anthropic.chat.model=claude-sonnet-4-5",
                "--spring.ai.anthropic.chat.max-tokens=500",
                "--spring.ai.anthropic.max-retries=0",
                "--spring.ai.openai.api-key=unused");
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    model.close();
  }

  AnthropicChatModel chat() {
    return app.getBean(AnthropicChatModel.class);
  }

  void assertTheModelSawOnlyTheUpstreamKey() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.path()).isEqualTo("/v1/messages");
    assertThat(got.header("x-api-key")).isEqualTo(UPSTREAM);
    assertThat(got.headers().toString() + got.body()).doesNotContain(ALICE);
  }

  static String event(String type, String json) {
    return "event: " + type + "\ndata: " + json + "\n\n";
  }

  @Test
  void aCallIsMaskedSentWithTheUpstreamKeyAndRecorded() throws Exception {
    model.json(
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
            + "\"model\":\"claude-sonnet-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"Mail "
            + EMAIL
            + "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
            + "\"usage\":{\"input_tokens\":3,\"output_tokens\":5}}");
    String text = chat().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL]");
    assertTheModelSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"subject\":\"alice\"", "\"complete\":true", "Mail [EMAIL]")
                    .doesNotContain(EMAIL));
  }

  @Test
  void aStreamWithAnAddressSplitAcrossEventsIsMasked() throws Exception {
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
        event(
            "content_block_delta",
            "{\"type\":\"content_block_delta\",\"index\":0,"
                + "\"delta\":{\"type\":\"text_delta\",\"text\":\"Mail jane.doe@exa\"}}"),
        event(
            "content_block_delta",
            "{\"type\":\"content_block_delta\",\"index\":0,"
                + "\"delta\":{\"type\":\"text_delta\",\"text\":\"mple.com today\"}}"),
        event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"),
        event(
            "message_delta",
            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                + "\"stop_sequence\":null},\"usage\":{\"output_tokens\":6}}"),
        event("message_stop", "{\"type\":\"message_stop\"}"));
    List<ChatResponse> chunks =
        chat().stream(new Prompt("hi")).collectList().block(Duration.ofSeconds(10));
    String text =
        chunks.stream()
            .filter(c -> c.getResult() != null && c.getResult().getOutput().getText() != null)
            .map(c -> c.getResult().getOutput().getText())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] today");
    assertTheModelSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"streamed\":true", "\"complete\":true")
                    .doesNotContain("jane.doe"));
  }

  @Test
  void aDenialFailsWithThePolicysMessageAndNothingReachesTheModel() {
    Prompt prompt =
        new Prompt(
            "hi",
            AnthropicChatOptions.builder().model("claude-sonnet-4-5").maxTokens(4096).build());
    // The Anthropic SDK puts the whole error body in its message, as for Anthropic's own errors
    assertThatThrownBy(() -> chat().call(prompt))
        .isInstanceOf(com.anthropic.errors.PermissionDeniedException.class)
        .hasMessageStartingWith("403: {\"type\":\"error\",\"error\":{\"type\":\"pam_error\"")
        .hasMessageContaining("parameter \\\"max_tokens\\\" is 4096, over the maximum 1000");
    assertThat(model.requestCount()).isZero();
  }
}
