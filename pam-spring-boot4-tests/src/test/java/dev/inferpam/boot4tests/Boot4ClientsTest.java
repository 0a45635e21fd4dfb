package dev.inferpam.boot4tests;

import static dev.inferpam.boot4tests.Boot4App.ALICE;
import static dev.inferpam.boot4tests.Boot4App.CARD;
import static dev.inferpam.boot4tests.Boot4App.EMAIL;
import static dev.inferpam.boot4tests.Boot4App.UPSTREAM;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.testsupport.LoopbackModel;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.restclient.RestTemplateBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.http.MediaType;
import org.springframework.web.client.HttpClientErrorException;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * Boot 4's client builders ({@code spring-boot-restclient}, {@code spring-boot-webclient}, where
 * Boot 4 moved their customizers): a {@code RestClient}, a {@code RestTemplate} and a {@code
 * WebClient} built from Boot's builder beans are governed, as on Boot 3.5; on Spring Framework 7,
 * whose {@code HttpHeaders} is no longer a {@code Map}.
 */
class Boot4ClientsTest {
  static final String CHAT = "{\"model\":\"llama-3.1-8b\",\"messages\":[]}";

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
                "spring.ai.openai.api-key=unused") // Spring AI's own start-up check
            .run();
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
    model.close();
  }

  void assertTheModelSawOnlyTheUpstreamKey() throws InterruptedException {
    LoopbackModel.Got got = model.take();
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.headers().toString() + got.body()).doesNotContain(ALICE);
  }

  @Test
  void aRestClientFromBootsBuilderIsGoverned() throws Exception {
    RestClient rest = app.getBean(RestClient.Builder.class).baseUrl(model.baseUrl()).build();
    model.json(Boot4App.completion("Mail " + EMAIL + " or " + CARD + "."));
    String body =
        rest.post()
            .uri("/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE)
            .contentType(MediaType.APPLICATION_JSON)
            .body(CHAT)
            .retrieve()
            .body(String.class);
    assertThat(body).contains("Mail [EMAIL] or [CREDIT_CARD].").doesNotContain(EMAIL);
    assertTheModelSawOnlyTheUpstreamKey();

    HttpClientErrorException denied =
        org.assertj.core.api.Assertions.catchThrowableOfType(
            HttpClientErrorException.class,
            () ->
                rest.post()
                    .uri("/v1/chat/completions")
                    .header("Authorization", "Bearer " + ALICE)
                    .contentType(MediaType.APPLICATION_JSON)
                    .body("{\"model\":\"llama-3.1-8b\",\"messages\":[],\"logprobs\":true}")
                    .retrieve()
                    .body(String.class));
    assertThat(denied.getStatusCode().value()).isEqualTo(403);
    assertThat(denied.getResponseBodyAsString())
        .contains("parameter \\\"logprobs\\\" is denied by policy");
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void aRestTemplateFromBootsBuilderIsGoverned() throws Exception {
    var template = app.getBean(RestTemplateBuilder.class).rootUri(model.baseUrl()).build();
    model.json(Boot4App.completion("Mail " + EMAIL + "."));
    var headers = new org.springframework.http.HttpHeaders();
    headers.setBearerAuth(ALICE);
    headers.setContentType(MediaType.APPLICATION_JSON);
    String body =
        template.postForObject(
            "/v1/chat/completions",
            new org.springframework.http.HttpEntity<>(CHAT, headers),
            String.class);
    assertThat(body).contains("Mail [EMAIL].").doesNotContain(EMAIL);
    assertTheModelSawOnlyTheUpstreamKey();
  }

  @Test
  void aWebClientStreamFromBootsBuilderIsMaskedAcrossEvents() throws Exception {
    WebClient web = app.getBean(WebClient.Builder.class).baseUrl(model.baseUrl()).build();
    model.sse(
        Boot4App.chunk("Mail jane.doe@exa"),
        Boot4App.chunk("mple.com and charge 4111 1111 "),
        Boot4App.chunk("1111 1111 today"),
        Boot4App.DONE);
    String streamed =
        web.post()
            .uri("/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE)
            .contentType(MediaType.APPLICATION_JSON)
            .bodyValue("{\"model\":\"llama-3.1-8b\",\"messages\":[],\"stream\":true}")
            .retrieve()
            .bodyToFlux(String.class)
            .collect(Collectors.joining())
            .block(Duration.ofSeconds(10));
    assertThat(streamed).contains("[EMAIL]", "[CREDIT_CARD]").doesNotContain("jane.doe", "4111");
    assertTheModelSawOnlyTheUpstreamKey();
  }
}
