package dev.inferpam.core.internal.policy;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Parameter presets ({@code parameters.presets}): request switches that extract more than the
 * generated text (log-probabilities, the prompt's own token scores, logit biasing, echoing the
 * prompt), named once per API shape so that a policy need not know every server's spelling, and
 * switches that a list of names cannot express (a list value naming log-probabilities). Stateless
 * and thread-safe; the presets are built once and shared.
 *
 * <p>{@code extraction}, by the API shape that reads each name (a server reads only its own; the
 * others are absent from its requests):
 * <ul>
 *   <li>OpenAI Chat Completions (and vLLM, TGI's Messages API, Ollama's OpenAI layer):
 *       {@code logprobs}, {@code top_logprobs}, {@code logit_bias};</li>
 *   <li>OpenAI Completions (and vLLM): {@code logprobs}, {@code echo}, {@code logit_bias};</li>
 *   <li>OpenAI Responses: {@code top_logprobs}, and an {@code include} list with a value naming
 *       log-probabilities ({@code message.output_text.logprobs});</li>
 *   <li>vLLM extras: {@code prompt_logprobs}, {@code return_tokens_as_token_ids};</li>
 *   <li>TGI {@code /generate}: {@code parameters.decoder_input_details},
 *       {@code parameters.top_n_tokens} (TGI's {@code details}, which most TGI clients send,
 *       returns only the chosen tokens' scores and is left alone);</li>
 *   <li>Ollama {@code /api/chat} and {@code /api/generate}: {@code logprobs},
 *       {@code top_logprobs} (top level, and in {@code options} where clients put them).</li>
 * </ul>
 * Anthropic's Messages API has no such switch. Names are matched like {@code parameters.deny}:
 * at the top level, in {@code options} and in {@code parameters}.
 *
 * <p>Bad input: {@link #preset(String)} throws {@link IllegalArgumentException} naming the known
 * presets for an unknown name.
 */
final class ParameterPresets {

  /**
   * A preset.
   *
   * @param name   as written in {@code parameters.presets}
   * @param deny   parameter names denied as if listed in {@code parameters.deny}
   * @param values list-valued parameters denied when one of their string items names something
   */
  public record Preset(String name, List<String> deny, List<ValueRule> values) {
    public Preset {
      Objects.requireNonNull(name, "name");
      deny = List.copyOf(deny);
      values = List.copyOf(values);
    }
  }

  /**
   * A top-level list parameter whose string items are denied when they contain {@code marker},
   * ignoring case (so a server that folds case cannot read a spelling that was let through).
   */
  public record ValueRule(String parameter, String marker) {
    public ValueRule {
      Objects.requireNonNull(parameter, "parameter");
      marker = marker.toLowerCase(Locale.ROOT);
    }

    /** Whether {@code item} names the marker. */
    public boolean matches(String item) {
      return item.toLowerCase(Locale.ROOT).contains(marker);
    }
  }

  private static final Map<String, Preset> PRESETS = build();

  private ParameterPresets() {}

  /** Preset names in documentation order. */
  public static Set<String> names() {
    return PRESETS.keySet();
  }

  /**
   * The preset called {@code name}.
   *
   * @throws IllegalArgumentException e.g. {@code unknown preset "foo" (known: extraction)}
   */
  public static Preset preset(String name) {
    Preset p = name == null ? null : PRESETS.get(name);
    if (p == null) {
      throw new IllegalArgumentException(
          "unknown preset "
              + (name == null ? "null" : PolicyText.quote(name))
              + " (known: "
              + String.join(", ", names())
              + ")");
    }
    return p;
  }

  private static Map<String, Preset> build() {
    Map<String, Preset> m = new LinkedHashMap<>();
    m.put(
        "extraction",
        new Preset(
            "extraction",
            List.of(
                "logprobs",
                "top_logprobs",
                "logit_bias",
                "echo", // OpenAI chat/completions, Ollama
                "prompt_logprobs",
                "return_tokens_as_token_ids", // vLLM
                "decoder_input_details",
                "top_n_tokens"), // TGI
            List.of(new ValueRule("include", "logprobs")))); // OpenAI Responses
    return Collections.unmodifiableMap(m);
  }
}
