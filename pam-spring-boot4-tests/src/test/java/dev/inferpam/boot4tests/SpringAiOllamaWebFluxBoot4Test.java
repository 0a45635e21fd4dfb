package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.reactive.context.ReactiveWebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * {@link SpringAiOllamaBoot4Test}'s calls, streams and denials in a WebFlux application (served on
 * 127.0.0.1). Unlike Boot 3.5, Boot 4 gives a reactive application a {@code RestClient.Builder}
 * when {@code spring-boot-restclient} is there: Spring AI's plain calls are governed through it.
 */
class SpringAiOllamaWebFluxBoot4Test extends SpringAiOllamaBoot4Test {

  @Override
  SpringApplicationBuilder kind(SpringApplicationBuilder application) {
    return application
        .web(WebApplicationType.REACTIVE)
        .properties("server.address=127.0.0.1", "server.port=0");
  }

  @Test
  void theApplicationIsAWebFluxOneWithBootsBuilders() {
    ConfigurableApplicationContext app = app("inferpam.client.api-key=" + APP);
    assertThat(app).isInstanceOf(ReactiveWebServerApplicationContext.class);
    assertThat(app.getBeanNamesForType(RestClient.Builder.class))
        .containsExactly("restClientBuilder");
    assertThat(app.getBeanNamesForType(WebClient.Builder.class))
        .containsExactly("webClientBuilder");
  }
}
