package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.Policies;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.http.MediaType;
import org.springframework.web.client.HttpClientErrorException;
import org.springframework.web.client.RestClient;

/**
 * With Actuator, the engine the starter builds reports to the application's registries: calls
 * governed through a {@code RestClient} from Boot's builder show in
 * {@code /actuator/metrics/inferpam.decisions} and as {@code inferpam.exchange} observations.
 */
class InferpamMetricsTest {
  static final String ALICE = "alice-key-0001";

  @TempDir Path dir;
  FakeModelServer model;
  ConfigurableApplicationContext app;
  final HttpClient http = HttpClient.newHttpClient();

  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  static class Application {}

  @BeforeEach
  void start() throws Exception {
    model = FakeModelServer.start();
    Path policy = dir.resolve("policy.yaml");
    Files.writeString(
        policy,
        "version: 1\nidentity:\n  api-keys:\n"
            + Policies.apiKey("alice", ALICE, "ml")
            + """
            entitlements:
              - groups: [ml]
                models: ["llama-*"]
                operations: [chat]
            parameters:
              deny: [logprobs]
            """);
    app =
        new SpringApplicationBuilder(Application.class)
            .web(WebApplicationType.SERVLET)
            .properties(
                "server.address=127.0.0.1",
                "server.port=0",
                "spring.ai.openai.api-key=unused",
                "management.endpoints.web.exposure.include=metrics",
                "inferpam.policy=file:" + policy)
            .run();
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    model.close();
  }

  RestClient client() {
    return app.getBean(RestClient.Builder.class).baseUrl(model.url("/").toString()).build();
  }

  String chat(String extra) {
    return client()
        .post()
        .uri("/v1/chat/completions")
        .header("Authorization", "Bearer " + ALICE)
        .contentType(MediaType.APPLICATION_JSON)
        .body(Policies.chat("llama-3.1-8b", extra))
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
  void governedCallsShowInActuatorsMetrics() throws Exception {
    model.enqueue(ModelAnswer.json(Completions.chat("hello")));
    model.enqueue(ModelAnswer.json(Completions.chat("hello again")));
    assertThat(chat("")).contains("hello");
    assertThat(chat("")).contains("hello again");
    assertThatThrownBy(() -> chat("\"logprobs\":true"))
        .isInstanceOf(HttpClientErrorException.Forbidden.class);

    assertThat(actuator("/actuator/metrics/inferpam.decisions?tag=outcome:allow"))
        .contains("\"name\":\"inferpam.decisions\"")
        .contains("{\"statistic\":\"COUNT\",\"value\":2.0}");
    assertThat(actuator("/actuator/metrics/inferpam.decisions?tag=code:parameter_denied"))
        .contains("{\"statistic\":\"COUNT\",\"value\":1.0}");

    MeterRegistry registry = app.getBean(MeterRegistry.class);
    assertThat(registry.get("inferpam.decision.duration").timer().count()).isEqualTo(2);
    assertThat(actuator("/actuator/metrics/inferpam.exchanges.in.flight"))
        .contains("{\"statistic\":\"VALUE\",\"value\":0.0}");
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
