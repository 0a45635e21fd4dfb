package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.Policies;
import org.junit.jupiter.api.Test;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.client.RestClientCustomizer;
import org.springframework.boot.web.reactive.context.ReactiveWebApplicationContext;
import org.springframework.context.support.GenericApplicationContext;
import org.springframework.http.MediaType;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * The same Spring AI 1.1 calls, streams and denials as {@link SpringAiOpenAiTest}, in a WebFlux
 * application ({@code spring.main.web-application-type=reactive}, served on 127.0.0.1). Boot 3.5
 * gives a reactive application no {@code RestClient.Builder} bean (unless virtual threads are on),
 * so Spring AI's plain calls would go through a {@code RestClient.builder()} of its own: the
 * starter gives it a governed one.
 */
class SpringAiOpenAiWebFluxTest extends SpringAiOpenAiTest {

  @Override
  SpringApplicationBuilder kind(SpringApplicationBuilder application) {
    return application
        .web(WebApplicationType.REACTIVE)
        .properties("server.address=127.0.0.1", "server.port=0")
        // the application's own customizer, which Boot would apply to its builder
        .initializers(
            context ->
                ((GenericApplicationContext) context)
                    .registerBean(
                        "appRestClientCustomizer",
                        RestClientCustomizer.class,
                        () -> builder -> builder.defaultHeader("X-App", "webflux")));
  }

  @Test
  void theRestClientBuilderIsTheStartersANewOneForEachUseAndWebClientsIsBoots() {
    assertThat(app).isInstanceOf(ReactiveWebApplicationContext.class);
    assertThat(app.getBeanNamesForType(RestClient.Builder.class))
        .containsExactly("pamRestClientBuilder");
    assertThat(app.getBean(RestClient.Builder.class))
        .isNotSameAs(app.getBean(RestClient.Builder.class));
    assertThat(app.getBeanNamesForType(WebClient.Builder.class))
        .containsExactly("webClientBuilder");
  }

  @Test
  void aRestClientFromTheContextsBuilderIsGovernedWithTheApplicationsCustomizers()
      throws Exception {
    server.enqueue(ModelAnswer.json(Completions.chat("Mail " + EMAIL + ".", 5, 7)));
    RestClient client =
        app.getBean(RestClient.Builder.class).baseUrl(server.url("/").toString()).build();
    String body =
        client
            .post()
            .uri("/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE)
            .contentType(MediaType.APPLICATION_JSON)
            .body(Policies.chat("llama-3.1-8b", ""))
            .retrieve()
            .body(String.class);
    assertThat(body).contains("Mail [EMAIL].").doesNotContain(EMAIL);
    ModelRequest got = server.takeRequest();
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.header("X-App")).isEqualTo("webflux");
  }
}
