package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PamEngine;
import org.junit.jupiter.api.Test;
import org.springframework.ai.huggingface.HuggingfaceChatModel;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * A Spring AI model that calls through a client no in-process seam reaches (here Hugging Face's,
 * which builds its own RestTemplate; the test class path has the real module) stops the
 * application, unless the application names it as routed elsewhere.
 */
class SpringAiCoverageTest {
  static final String POLICY =
      "inferpam.policy=classpath:dev/inferpam/spring/boot/minimal-policy.yaml";

  /**
   * The module's application.properties lists huggingface for the other tests; command-line
   * arguments outrank it, so {@code --inferpam.client.ungoverned=} clears it here.
   */
  static void run(String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "--" + POLICY;
    all[1] = "--spring.ai.openai.api-key=unused";
    System.arraycopy(args, 0, all, 2, args.length);
    new SpringApplicationBuilder(SpringAiOpenAiTest.Application.class)
        .web(WebApplicationType.NONE)
        .run(all)
        .close();
  }

  static ConfigurableApplicationContext start(String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "--" + POLICY;
    all[1] = "--spring.ai.openai.api-key=unused";
    System.arraycopy(args, 0, all, 2, args.length);
    return new SpringApplicationBuilder(SpringAiOpenAiTest.Application.class)
        .web(WebApplicationType.NONE)
        .run(all);
  }

  @Test
  void aModelNoSeamReachesStopsTheApplicationNamingIt() {
    assertThatThrownBy(() -> run("--inferpam.client.ungoverned="))
        .rootCause()
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("huggingface (" + HuggingfaceChatModel.class.getName() + ")")
        .hasMessageContaining("inferpam.client.ungoverned")
        .hasMessageContaining("inferpam gateway");
  }

  @Test
  void namingItAsRoutedElsewhereLetsTheApplicationStart() {
    try (ConfigurableApplicationContext context =
        start("--inferpam.client.ungoverned=huggingface")) {
      assertThat(context.getBean(PamEngine.class)).isNotNull();
    }
    try (ConfigurableApplicationContext context =
        start("--inferpam.client.ungoverned=", "--inferpam.client.enabled=false")) {
      assertThat(context.getBean(PamEngine.class)).isNotNull();
    }
  }

  @Test
  void anUnknownNameIsRefusedWithTheKnownOnes() {
    assertThatThrownBy(() -> run("--inferpam.client.ungoverned=hugging-face"))
        .rootCause()
        .hasMessage(
            "inferpam: inferpam.client.ungoverned: unknown model family \"hugging-face\"; known:"
                + " azure-openai, bedrock, google-genai, vertex-ai, oci-genai, openai-sdk,"
                + " huggingface");
  }
}
