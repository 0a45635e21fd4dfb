package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.util.ClassUtils;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * {@link SpringAiOllamaBoot4Test}'s calls, streams and denials in an application without Boot 4's
 * client modules ({@code spring-boot-restclient}, {@code spring-boot-webclient}: Spring AI 2's model
 * modules have them as optional dependencies, its starters bring them). Boot then gives no {@code
 * RestClient.Builder} or {@code WebClient.Builder}, and Spring AI would build its own, ungoverned:
 * the starter gives governed ones. Run by the surefire execution {@code
 * without-boot-client-modules}, whose class path lacks those modules; skipped elsewhere.
 */
class SpringAiOllamaWithoutBootClientsBoot4Test extends SpringAiOllamaBoot4Test {

  static boolean present(String className) {
    return ClassUtils.isPresent(
        className, SpringAiOllamaWithoutBootClientsBoot4Test.class.getClassLoader());
  }

  @BeforeAll
  static void onlyWithoutBootsClientModules() {
    assumeFalse(
        present("org.springframework.boot.restclient.RestClientCustomizer")
            || present("org.springframework.boot.webclient.WebClientCustomizer"),
        "run by the surefire execution without-boot-client-modules");
  }

  @Test
  void theBuildersSpringAiTakesAreTheStartersANewOneForEachUse() {
    ConfigurableApplicationContext app = app("inferpam.client.api-key=" + APP);
    assertThat(app.getBeanNamesForType(RestClient.Builder.class))
        .containsExactly("pamRestClientBuilder");
    assertThat(app.getBeanNamesForType(WebClient.Builder.class))
        .containsExactly("pamWebClientBuilder");
    assertThat(app.getBean(RestClient.Builder.class))
        .isNotSameAs(app.getBean(RestClient.Builder.class));
  }
}
