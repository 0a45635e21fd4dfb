package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PamEngine;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/** With the starter on the class path an application is governed or does not start. */
class InferpamStartupTest {
  @TempDir Path dir;

  SpringApplicationBuilder app(String... properties) {
    return new SpringApplicationBuilder(SpringAiOpenAiTest.Application.class)
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
  void aPolicyThatIsNotThereOrNotValidIsNamed() throws Exception {
    assertThatThrownBy(() -> app("inferpam.policy=file:" + dir.resolve("nope.yaml")).run().close())
        .rootCause()
        .hasMessageContaining("inferpam.policy: no file at file:");
    Path bad = dir.resolve("bad.yaml");
    Files.writeString(bad, "version: 1\nidentity: {api-keys: [{name: x}]}\n");
    assertThatThrownBy(() -> app("inferpam.policy=file:" + bad).run().close())
        .rootCause()
        .hasMessageContaining("identity.api-keys[0]");
  }

  @Test
  void aClasspathPolicyIsLoaded() {
    try (ConfigurableApplicationContext context =
        app("inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml").run()) {
      assertThat(context.getBean(PamEngine.class)).isNotNull();
    }
  }

  @Test
  void aBlankClientApiKeyStopsTheApplicationWithWhatToSet() {
    for (String blank : new String[] {"", "  "}) {
      assertThatThrownBy(
              () ->
                  app(
                          "inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml",
                          "inferpam.client.api-key=" + blank)
                      .run()
                      .close())
          .rootCause()
          .hasMessageContaining("inferpam.client.api-key is set but blank")
          .hasMessageContaining("identity.api-keys");
    }
  }

  @Test
  void aClientApiKeyThePolicyDoesNotKnowStopsTheApplicationWithoutQuotingIt() {
    assertThatThrownBy(
            () ->
                app(
                        "inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml",
                        "inferpam.client.api-key=not-a-key-of-the-policy")
                    .run()
                    .close())
        .rootCause()
        .hasMessageContaining("inferpam.client.api-key does not identify a caller of the policy")
        .hasMessageContaining("unknown api key")
        .hasMessageNotContaining("not-a-key-of-the-policy");
  }

  @Test
  void whereBootGivesTheClientBuildersTheStarterAddsNoneOfItsOwn() {
    try (ConfigurableApplicationContext context =
        app("inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml").run()) {
      assertThat(context.getBeanNamesForType(RestClient.Builder.class))
          .containsExactly("restClientBuilder");
      assertThat(context.getBeanNamesForType(WebClient.Builder.class))
          .containsExactly("webClientBuilder");
    }
  }

  @Test
  void aWebFluxApplicationAskingForTheServletFilterDoesNotStartAndSaysWhy() {
    assertThatThrownBy(
            () ->
                app(
                        "inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml",
                        "inferpam.server.enabled=true",
                        "server.address=127.0.0.1",
                        "server.port=0")
                    .web(WebApplicationType.REACTIVE)
                    .run()
                    .close())
        .rootCause()
        .hasMessageContaining("inferpam.server.enabled is set, but this is a reactive (WebFlux)")
        .hasMessageContaining("inferpam gateway");
  }

  @Test
  void turnedOffItAddsNothing() {
    try (ConfigurableApplicationContext context = app("inferpam.enabled=false").run()) {
      assertThat(context.getBeanNamesForType(PamEngine.class)).isEmpty();
    }
  }
}
