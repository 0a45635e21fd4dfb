package dev.inferpam.boot4tests;

import static dev.inferpam.boot4tests.Boot4App.ALICE;
import static dev.inferpam.boot4tests.Boot4App.CARD;
import static dev.inferpam.boot4tests.Boot4App.EMAIL;
import static dev.inferpam.boot4tests.Boot4App.UPSTREAM;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.errors.PermissionDeniedException;
import dev.inferpam.testsupport.LoopbackModel;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
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
 * Spring AI 2.0 on Spring Boot 4.0, as a user has it: the OpenAI starter, {@code
 * pam-spring-boot-starter}, one property ({@code inferpam.policy}); the model server on 127.0.0.1.
 * Spring AI 2's OpenAI model calls through the OpenAI SDK on an OkHttp client of its own, plain
 * calls and streams alike: both are governed.
 */
class SpringAiOpenAiBoot4Test {
  @TempDir Path dir;
  LoopbackModel model;
  ConfigurableApplicationContext app;

  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  static class Application {}

  @BeforeEach
  void start() throws IOException {
    model = new LoopbackModel();
    app =
        new SpringApplicationBuilder(Application.class)
            .web(WebApplicationType.NONE)
            .properties(
                "inferpam.policy=file:" + Boot4App.policy(dir),
                "spring.ai.openai.base-url=" + model.baseUrl() + "/v1",
                "spring.ai.openai.api-key=" + ALICE,
                "spring.ai.openai.chat.model=llama-3.1-8b",
                "spring.ai.openai.max-retries=0")
            .run();
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    model.close();
  }

  ChatModel chat() {
    return app.getBean(ChatModel.class);
  }

  void assertTheModelSawOnlyTheUpstreamKey() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.path()).isEqualTo("/v1/chat/completions");
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.headers().toString() + got.body()).doesNotContain(ALICE);
  }

  @Test
  void aCallIsMaskedSentWithTheUpstreamKeyAndRecorded() throws Exception {
    model.json(Boot4App.completion("Mail " + EMAIL + " or " + CARD + "."));
    String text = chat().call(new Prompt("hi")).getResult().getOutput().getText();
    assertThat(text).isEqualTo("Mail [EMAIL] or [CREDIT_CARD].");
    assertTheModelSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"subject\":\"alice\"", "\"complete\":true", "Mail [EMAIL]")
                    .doesNotContain(EMAIL, "4111"));
  }

  @Test
  void aStreamWithValuesSplitAcrossEventsIsMaskedAndRecordedComplete() throws Exception {
    model.sse(
        Boot4App.chunk("Mail jane.doe@exa"),
        Boot4App.chunk("mple.com and charge 4111 1111 "),
        Boot4App.chunk("1111 1111 today, then pay with card"),
        Boot4App.lastChunk(),
        Boot4App.DONE);
    List<ChatResponse> chunks =
        chat().stream(new Prompt("hi")).collectList().block(Duration.ofSeconds(10));
    String text =
        chunks.stream()
            .filter(c -> c.getResult() != null && c.getResult().getOutput().getText() != null)
            .map(c -> c.getResult().getOutput().getText())
            .collect(Collectors.joining());
    assertThat(text).isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertTheModelSawOnlyTheUpstreamKey();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"streamed\":true", "\"complete\":true", "[CREDIT_CARD]")
                    .doesNotContain("jane.doe", "4111"));
  }

  @Test
  void aDenialFailsWithThePolicysMessageAndNothingReachesTheModel() throws Exception {
    Prompt prompt =
        new Prompt("hi", OpenAiChatOptions.builder().model("llama-3.1-8b").logprobs(true).build());
    assertThatThrownBy(() -> chat().call(prompt))
        .isInstanceOf(PermissionDeniedException.class)
        .hasMessage("403: parameter \"logprobs\" is denied by policy");
    assertThatThrownBy(() -> chat().stream(prompt).blockLast(Duration.ofSeconds(10)))
        .hasMessageContaining("403: parameter \"logprobs\" is denied by policy");
    assertThat(model.requestCount()).isZero();
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir).split("\"parameter_denied\"", -1)).hasSize(3));
  }
}
