package dev.inferpam.boot4tests;

import static dev.inferpam.boot4tests.Boot4App.ALICE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.openai.errors.PermissionDeniedException;
import dev.inferpam.testsupport.LoopbackModel;
import dev.inferpam.testsupport.Policies;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.http.MediaType;
import org.springframework.web.client.RestClient;

/**
 * With Boot 4's Actuator, the engine the starter builds reports to the application's registries
 * as on Boot 3.5: calls governed through Spring AI 2's OpenAI model (its OkHttp client) and a
 * {@code RestClient} from Boot 4's builder show in {@code /actuator/metrics/inferpam.decisions}
 * and {@code /actuator/prometheus}, and as {@code inferpam.exchange} observations.
 */
class InferpamMetricsBoot4Test {
  @TempDir Path dir;
  LoopbackModel model;
  ConfigurableApplicationContext app;
  final HttpClient http = HttpClient.newHttpClient();

  @BeforeEach
  void start() throws Exception {
    model = new LoopbackModel();
    app =
        new SpringApplicationBuilder(SpringAiOpenAiBoot4Test.Application.class)
            .web(WebApplicationType.SERVLET)
            .properties(
                "server.address=127.0.0.1",
                "server.port=0",
                "management.endpoints.web.exposure.include=metrics,prometheus",
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

  String restClientChat() {
    return app.getBean(RestClient.Builder.class)
        .baseUrl(model.baseUrl())
        .build()
        .post()
        .uri("/v1/chat/completions")
        .header("Authorization", "Bearer " + ALICE)
        .contentType(MediaType.APPLICATION_JSON)
        .body(Policies.chat("llama-3.1-8b", ""))
        .retrieve()
        .body(String.class);
  }

  String actuator(String path) throws Exception {
    int port = ((WebServerApplicationContext) app).getWebServer().getPort();
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(path).isEqualTo(200);
    return r.body();
  }

  @Test
  void governedCallsShowInActuatorsMetricsAndPrometheus() throws Exception {
    model.json(Boot4App.completion("hello"));
    model.json(Boot4App.completion("hello again"));
    assertThat(chat().call(new Prompt("hi")).getResult().getOutput().getText()).isEqualTo("hello");
    assertThat(restClientChat()).contains("hello again");
    Prompt denied =
        new Prompt("hi", OpenAiChatOptions.builder().model("llama-3.1-8b").logprobs(true).build());
    assertThatThrownBy(() -> chat().call(denied)).isInstanceOf(PermissionDeniedException.class);

    assertThat(actuator("/actuator/metrics/inferpam.decisions?tag=outcome:allow"))
        .contains("\"name\":\"inferpam.decisions\"")
        .contains("{\"statistic\":\"COUNT\",\"value\":2.0}");
    assertThat(actuator("/actuator/metrics/inferpam.decisions?tag=code:parameter_denied"))
        .contains("{\"statistic\":\"COUNT\",\"value\":1.0}");
    assertThat(actuator("/actuator/metrics/inferpam.exchanges.in.flight"))
        .contains("{\"statistic\":\"VALUE\",\"value\":0.0}");
    assertThat(actuator("/actuator/prometheus"))
        .containsPattern(
            "(?m)^inferpam_decisions_total\\{[^}]*code=\"none\"[^}]*outcome=\"allow\"[^}]*\\} 2\\.0$")
        .containsPattern(
            "(?m)^inferpam_decisions_total\\{[^}]*code=\"parameter_denied\"[^}]*\\} 1\\.0$")
        .contains("inferpam_decision_duration_seconds_count");

    MeterRegistry registry = app.getBean(MeterRegistry.class);
    assertThat(registry.get("inferpam.decision.duration").timer().count()).isEqualTo(2);
    // each exchange an observation (Actuator's ObservationRegistry times it), once it ended
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () ->
                assertThat(
                        registry.get("inferpam.exchange").tag("outcome", "allow").timer().count())
                    .isEqualTo(2));
    assertThat(registry.get("inferpam.exchange").tag("code", "parameter_denied").timer().count())
        .isEqualTo(1);
  }
}
