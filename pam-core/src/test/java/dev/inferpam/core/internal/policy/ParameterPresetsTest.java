package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ParameterPresetsTest {

  @Test
  void extractionIsTheOnePreset() {
    assertThat(ParameterPresets.names()).containsExactly("extraction");
  }

  @Test
  void extractionNamesTheSwitchesOfEveryApiShape() {
    ParameterPresets.Preset p = ParameterPresets.preset("extraction");
    assertThat(p.deny())
        .containsExactlyInAnyOrder(
            "logprobs",
            "top_logprobs",
            "logit_bias",
            "echo", // OpenAI chat and completions, Ollama
            "prompt_logprobs",
            "return_tokens_as_token_ids", // vLLM
            "decoder_input_details",
            "top_n_tokens"); // TGI
    assertThat(p.values())
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.parameter()).isEqualTo("include"); // OpenAI Responses
              assertThat(r.matches("message.output_text.logprobs")).isTrue();
              assertThat(r.matches("Message.Output_Text.LogProbs")).isTrue();
              assertThat(r.matches("reasoning.encrypted_content")).isFalse();
            });
  }

  @Test
  void unknownPresetIsRefusedListingTheKnownOnes() {
    assertThatThrownBy(() -> ParameterPresets.preset("Extraction"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("unknown preset \"Extraction\" (known: extraction)");
    assertThatThrownBy(() -> ParameterPresets.preset(null))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
