package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PamEngine;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.ai.openai.http.okhttp.OpenAiHttpClientBuilderCustomizer;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.restclient.RestClientCustomizer;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.webclient.WebClientCustomizer;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.io.DefaultResourceLoader;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/** On Boot 4 too, with the starter on the class path an application is governed or does not start. */
class InferpamStartupBoot4Test {
  @TempDir Path dir;

  SpringApplicationBuilder app(String... properties) {
    return new SpringApplicationBuilder(SpringAiOpenAiBoot4Test.Application.class)
        .web(WebApplicationType.NONE)
        .properties("spring.ai.openai.api-key=unused") // Spring AI's own start-up check
        .properties(properties);
  }

  @Test
  void withoutAPolicyTheApplicationDoesNotStartAndSaysWhatToSet() {
    assertThatThrownBy(() -> app().run().close())
        .rootCause()
        .hasMessageContaining("set inferpam.policy to the policy file")
        .hasMessageContaining("inferpam.enabled=false");
  }

  @Test
  void withAPolicyEveryClientSeamHasItsCustomizer() throws Exception {
    try (ConfigurableApplicationContext context =
        app("inferpam.policy=file:" + Boot4App.policy(dir)).run()) {
      assertThat(context.getBean(PamEngine.class)).isNotNull();
      assertThat(context.getBeansOfType(RestClientCustomizer.class))
          .containsKey("pamRestClientCustomizer");
      assertThat(context.getBeansOfType(WebClientCustomizer.class))
          .containsKey("pamWebClientCustomizer");
      assertThat(context.getBeansOfType(OpenAiHttpClientBuilderCustomizer.class))
          .containsKey("pamOpenAiHttpClientBuilderCustomizer");
      // Boot's own builders, which the customizers govern: the starter adds none of its own
      assertThat(context.getBeanNamesForType(RestClient.Builder.class))
          .containsExactly("restClientBuilder");
      assertThat(context.getBeanNamesForType(WebClient.Builder.class))
          .containsExactly("webClientBuilder");
    }
  }

  @Test
  void springAiWithoutPamOkHttpDoesNotStart() throws Exception {
    FilteredClassLoader withoutPamOkHttp = new FilteredClassLoader("dev.inferpam.okhttp.");
    assertThatThrownBy(
            () ->
                app("inferpam.policy=file:" + Boot4App.policy(dir))
                    .resourceLoader(new DefaultResourceLoader(withoutPamOkHttp))
                    .run()
                    .close())
        .rootCause()
        .hasMessageContaining("dev.inferpam:pam-okhttp")
        .hasMessageContaining("inferpam.client.enabled=false");
  }

  @Test
  void aWebFluxApplicationAskingForTheServletFilterDoesNotStartAndSaysWhy() throws Exception {
    SpringApplicationBuilder webflux =
        app(
                "inferpam.policy=file:" + Boot4App.policy(dir),
                "inferpam.server.enabled=true",
                "server.address=127.0.0.1",
                "server.port=0")
            .web(WebApplicationType.REACTIVE);
    assertThatThrownBy(() -> webflux.run().close())
        .rootCause()
        .hasMessageContaining("inferpam.server.enabled is set, but this is a reactive (WebFlux)")
        .hasMessageContaining("inferpam gateway");
  }

  @Test
  void turnedOffItAddsNothing() {
    try (ConfigurableApplicationContext context = app("inferpam.enabled=false").run()) {
      assertThat(context.getBeanNamesForType(PamEngine.class)).isEmpty();
      assertThat(context.getBeanNamesForType(OpenAiHttpClientBuilderCustomizer.class)).isEmpty();
    }
  }
}
