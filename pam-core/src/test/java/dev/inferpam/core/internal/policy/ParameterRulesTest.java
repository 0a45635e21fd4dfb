package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision.Deny;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ParameterRulesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), Principal.VIA_API_KEY);
  private static final Principal RESEARCHER =
      Principal.of("rita", Set.of("research"), Principal.VIA_API_KEY);

  private static final ParameterRules RULES =
      new ParameterRules(
          new Policy.Parameters(
              Set.of("logit_bias"),
              Map.of("max_tokens", 4096.0, "n", 1.0, "temperature", 1.5),
              Set.of("research"),
              List.of("extraction")));

  private static Deny check(ParameterRules rules, Principal p, String body) throws Exception {
    return rules.check(p, JSON.readTree(body));
  }

  private static Deny check(String body) throws Exception {
    return check(RULES, ALICE, body);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"logit_bias\":{\"1\":100}}                   | logit_bias                 | parameters.deny",
        "{\"logprobs\":true}                            | logprobs                   | parameters.presets.extraction",
        "{\"logprobs\":2}                               | logprobs                   | parameters.presets.extraction",
        "{\"top_logprobs\":0}                           | top_logprobs               | parameters.presets.extraction",
        "{\"echo\":true}                                | echo                       | parameters.presets.extraction",
        "{\"prompt_logprobs\":1}                        | prompt_logprobs            | parameters.presets.extraction",
        "{\"return_tokens_as_token_ids\":true}          | return_tokens_as_token_ids | parameters.presets.extraction",
        "{\"options\":{\"logprobs\":true}}              | logprobs                   | parameters.presets.extraction",
        "{\"parameters\":{\"decoder_input_details\":true}} | decoder_input_details   | parameters.presets.extraction",
        "{\"parameters\":{\"top_n_tokens\":5}}          | top_n_tokens               | parameters.presets.extraction",
        "{\"options\":{\"logit_bias\":{}}}              | logit_bias                 | parameters.deny",
        "{\"logprobs\":false,\"options\":{\"logprobs\":true}} | logprobs               | parameters.presets.extraction",
        "{\"top_logprobs\":null,\"parameters\":{\"top_logprobs\":1}} | top_logprobs     | parameters.presets.extraction",
      })
  void deniedAndPresetNamesAreFoundAtTheTopInOptionsAndInParameters(
      String body, String name, String rule) throws Exception {
    Deny d = check(body);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("parameter_denied");
    assertThat(d.message()).startsWith("parameter \"" + name + "\" is denied by policy");
    assertThat(d.rule()).isEqualTo(rule);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"logprobs\":false}",
        "{\"logprobs\":null}",
        "{\"options\":{\"echo\":false}}",
        "{\"include\":[\"file_search_call.results\",\"reasoning.encrypted_content\"]}",
        "{\"include\":[]}",
        "{\"max_tokens\":4096,\"n\":1,\"temperature\":0.7}",
        "{\"max_tokens\":0}",
        "{\"max_tokens\":-0}",
        "{\"max_tokens\":-0.0}",
        "{\"max_tokens\":100.5}",
        "{\"max_tokens\":4.096e3}",
        "{\"temperature\":1.5}",
        "{\"max_tokens\":null}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"logprobs please\"}]}"
      })
  void whatEnablesNothingPasses(String body) throws Exception {
    assertThat(check(body)).isNull();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"message.output_text.logprobs", "MESSAGE.OUTPUT_TEXT.LOGPROBS", "x.logprobs.y"})
  void responsesIncludeValuesNamingLogprobsAreDenied(String value) throws Exception {
    Deny d = check("{\"include\":[\"reasoning.encrypted_content\",\"" + value + "\"]}");
    assertThat(d.code()).isEqualTo("parameter_denied");
    assertThat(d.message())
        .isEqualTo(
            "parameter \"include\" value \""
                + value
                + "\" is denied by policy (preset extraction)");
    assertThat(d.rule()).isEqualTo("parameters.presets.extraction");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"max_tokens\":-1}                    | parameter \"max_tokens\" is -1, outside the allowed range 0..4096",
        "{\"max_completion_tokens\":-2}         | parameter \"max_completion_tokens\" is -2, outside the allowed range 0..4096",
        "{\"options\":{\"num_predict\":-1}}     | parameter \"options.num_predict\" is -1, outside the allowed range 0..4096",
        "{\"max_output_tokens\":-0.5}           | parameter \"max_output_tokens\" is -0.5, outside the allowed range 0..4096",
        "{\"n\":-99999999999999999999}          | parameter \"n\" is -99999999999999999999, outside the allowed range 0..1",
        "{\"temperature\":-1}                   | parameter \"temperature\" is -1, outside the allowed range 0..1.5",
        "{\"max_tokens\":4097}                  | parameter \"max_tokens\" is 4097, over the maximum 4096",
        "{\"max_tokens\":4096.5}                | parameter \"max_tokens\" is 4096.5, over the maximum 4096",
        "{\"max_tokens\":1e5}                   | parameter \"max_tokens\" is 100000.0, over the maximum 4096",
        "{\"max_tokens\":99999999999999999999}  | parameter \"max_tokens\" is 99999999999999999999, over the maximum 4096",
        "{\"best_of\":2}                        | parameter \"best_of\" is 2, over the maximum 1",
        "{\"options\":{\"temperature\":2}}      | parameter \"options.temperature\" is 2, over the maximum 1.5",
        "{\"parameters\":{\"max_tokens\":5000}} | parameter \"parameters.max_tokens\" is 5000, over the maximum 4096",
        "{\"max_tokens\":\"100000\"}            | parameter \"max_tokens\" must be a number",
        "{\"max_tokens\":\"10\"}                | parameter \"max_tokens\" must be a number",
        "{\"max_tokens\":true}                  | parameter \"max_tokens\" must be a number",
        "{\"options\":{\"num_predict\":[1]}}    | parameter \"options.num_predict\" must be a number",
      })
  void capsAcceptOnlyNumbersInZeroToMax(String body, String message) throws Exception {
    Deny d = check(body);
    assertThat(d.status()).isEqualTo(403);
    assertThat(d.code()).isEqualTo("parameter_denied");
    assertThat(d.message()).isEqualTo(message);
    assertThat(d.rule()).startsWith("parameters.max.");
  }

  @Test
  void wholeNumbersAreComparedExactlyNotAsDoubles() throws Exception {
    ParameterRules big =
        new ParameterRules(
            new Policy.Parameters(Set.of(), Map.of("max_tokens", 9007199254740992.0), Set.of()));
    assertThat(check(big, ALICE, "{\"max_tokens\":9007199254740992}")).isNull();
    // 2^53 + 1 is 2^53 as a double; Python and Go read it exactly, over the cap
    assertThat(check(big, ALICE, "{\"max_tokens\":9007199254740993}")).isNotNull();
    assertThat(check(big, ALICE, "{\"max_tokens\":1e400}")).isNotNull();
  }

  @Test
  void exemptGroupsAreNotChecked() throws Exception {
    assertThat(
            check(
                RULES,
                RESEARCHER,
                "{\"logprobs\":true,\"max_tokens\":-1,\"include\":[\"message.output_text.logprobs\"]}"))
        .isNull();
  }

  @Test
  void governedPathsNameEveryPlaceARuleLooks() {
    assertThat(RULES.governedPaths())
        .contains(
            "logit_bias",
            "options.logit_bias",
            "parameters.logit_bias",
            "logprobs",
            "options.logprobs",
            "parameters.top_n_tokens",
            "include",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "options.num_predict",
            "n",
            "best_of",
            "temperature",
            "options.temperature",
            "parameters.temperature",
            "parameters.max_tokens");
  }

  @Test
  void anUnknownPresetIsRefused() {
    assertThatThrownBy(
            () ->
                new ParameterRules(
                    new Policy.Parameters(Set.of(), Map.of(), Set.of(), List.of("x"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("unknown preset \"x\" (known: extraction)");
  }
}
