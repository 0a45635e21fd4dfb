package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.anthropic.AnthropicChatModel;
import org.springframework.ai.anthropic.AnthropicChatOptions;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Spring AI 1.1's Anthropic model with the starter: its calls (RestClient) and streams
 * (WebClient) to {@code /v1/messages} are governed like OpenAI's, the caller's {@code x-api-key}
 * replaced by the policy's upstream key.
 */
class SpringAiAnthropicTest {
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "sk-ant-upstream-0123456789";
  static final String EMAIL = "jane.doe@example.com";

  @TempDir Path dir;
  FakeModelServer server;
  ConfigurableApplicationContext app;

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
          credential: {header: x-api-key, from-file: %s}
        entitlements:
          - groups: [ml]
            models: ["claude-*"]
            operations: [chat]
        parameters:
          max: {max_tokens: 1000}
        masking:
          detectors: [email]
        """
                .formatted(Policies.quoted(key.toString())));
    app =
        new SpringApplicationBuilder(SpringAiOpenAiTest.Application.class)
            .web(WebApplicationType.NONE)
            .run(
                "--inferpam.policy=file:" + policy,
                "--spring.ai.anthropic.base-url=" + server.url("/").toString().replaceAll("/$", ""),
                "--spring.ai.anthropic.api-key=" + ALICE,
                "--spring.ai.anthropic.chat.options.model=claude-sonnet-4-5",
                "--spring.ai.anthropic.chat.options.max-tokens=500",
                "--spring.ai.openai.api-key=unused",
                "--spring.ai.retry.max-attempts=1");
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    server.close();
  }

  AnthropicChatModel chat() {
    return app.getBean(AnthropicChatModel.class);
  }

  void assertUpstreamSawOnlyTheUpstreamKey() throws InterruptedException {
    ModelRequest got = server.takeRequest();
    assertThat(got.header("x-api-key")).isEqualTo(UPSTREAM);
    assertThat(got.headerText() + got.bodyText()).doesNotContain(ALICE);
  }

  static String event(String type, String json) {
    return "event: " + type + "\ndata: " + json + "\n\n";
  }

  @Test
  void aCallIsMaskedWithTheUpstreamKey() throws Exception {
    server.enqueue(
        ModelAnswer.json(
            "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                + "\"model\":\"claude-sonnet-4-5\",\"content\":[{\"type\":\"text\",\"text\":\"Mail "
                + EMAIL
                + "\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                + "\"usage\":{\"input_tokens\":3,\"output_tokens\":5}}"));
    String text = chat().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL]");
    assertUpstreamSawOnlyTheUpstreamKey();
  }

  @Test
  void aStreamIsMaskedAcrossEvents() throws Exception {
    server.enqueue(
        ModelAnswer.sse(
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
            event("message_stop", "{\"type\":\"message_stop\"}")));
    List<ChatResponse> chunks =
        chat().stream(new Prompt("hi")).collectList().block(Duration.ofSeconds(10));
    String text =
        chunks.stream()
            .filter(c -> c.getResult() != null && c.getResult().getOutput().getText() != null)
            .map(c -> c.getResult().getOutput().getText())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] today");
    assertUpstreamSawOnlyTheUpstreamKey();
  }

  @Test
  void aDeniedCallFailsWithThePolicysMessageAndNothingReachesTheModel() {
    Prompt prompt = new Prompt("hi", AnthropicChatOptions.builder().maxTokens(4096).build());
    assertThatThrownBy(() -> chat().call(prompt))
        .hasMessageContaining("\\\"max_tokens\\\" is 4096, over the maximum 1000");
    assertThat(server.requestCount()).isZero();
  }
}
