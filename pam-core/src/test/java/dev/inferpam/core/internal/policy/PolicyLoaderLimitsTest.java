package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The {@code limits} section: every key, its default, and errors naming path and value. */
class PolicyLoaderLimitsTest {

  /** Parses {@code section} (the lines under {@code limits:}) as YAML and as JSON; both must agree. */
  private static List<Policy.Limit> limits(String section) {
    String yaml = "version: 1\nlimits:\n" + section;
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    assertThat(PolicyLoader.parseJson(asJson(yaml), "policy")).isEqualTo(fromYaml);
    return fromYaml.limits();
  }

  @Test
  void absentSectionMeansNoLimits() {
    assertThat(PolicyLoader.parse("version: 1", "policy").limits()).isEmpty();
  }

  @Test
  void readsTheSpecExample() {
    List<Policy.Limit> l =
        limits(
            """
          - groups: ["*"]
            requests-per-minute: 60
            tokens-per-day: 200000             # prompt + completion tokens, streamed ones too
        """);
    assertThat(l)
        .containsExactly(new Policy.Limit(Set.of("*"), List.of(), Set.of(), 60L, null, 200_000L));
  }

  @Test
  void readsEveryKeyAndLeavesOutBoundsThatAreNotGiven() {
    List<Policy.Limit> l =
        limits(
            """
          - groups: [contractors, interns]
            models: ["llama-3.1-*", "finance/**"]
            operations: [chat, completion]
            requests-per-minute: 2
            tokens-per-minute: 5000
            tokens-per-day: 9223372036854775807
          - groups: [ml]
            tokens-per-minute: 1
          - groups: [ci]
            operations: [embedding, infer]
            tokens-per-day: 100
        """);
    assertThat(l).hasSize(3);
    Policy.Limit a = l.get(0);
    assertThat(a.groups()).isEqualTo(Set.of("contractors", "interns"));
    assertThat(a.models()).containsExactly(Glob.compile("llama-3.1-*"), Glob.compile("finance/**"));
    assertThat(a.operations()).isEqualTo(Set.of("chat", "completion"));
    assertThat(a.requestsPerMinute()).isEqualTo(2L);
    assertThat(a.tokensPerMinute()).isEqualTo(5000L);
    assertThat(a.tokensPerDay()).isEqualTo(Long.MAX_VALUE);

    // Defaults: any model, any operation; a bound not written is not enforced (null).
    Policy.Limit b = l.get(1);
    assertThat(b.groups()).isEqualTo(Set.of("ml"));
    assertThat(b.models()).isEmpty();
    assertThat(b.operations()).isEmpty();
    assertThat(b.requestsPerMinute()).isNull();
    assertThat(b.tokensPerMinute()).isEqualTo(1L);
    assertThat(b.tokensPerDay()).isNull();

    Policy.Limit c = l.get(2);
    assertThat(c.operations()).isEqualTo(Set.of("embedding", "infer"));
    assertThat(c.requestsPerMinute()).isNull();
    assertThat(c.tokensPerMinute()).isNull();
    assertThat(c.tokensPerDay()).isEqualTo(100L);
  }

  @Test
  void readsTheFlowStyle() {
    assertThat(limits("  - {groups: [ci], requests-per-minute: 10}\n"))
        .containsExactly(new Policy.Limit(Set.of("ci"), List.of(), Set.of(), 10L, null, null));
  }

  static Stream<Arguments> errors() {
    String g = "  - groups: [ml]\n";
    return Stream.of(
        // the section
        Arguments.of("  []\n", "limits: must not be empty"),
        Arguments.of(
            "  {groups: [ml], requests-per-minute: 5}\n",
            "limits: expected a list of limits, was a mapping"),
        Arguments.of("  60\n", "limits: expected a list of limits, was 60"),
        Arguments.of(
            "  \"60 per minute\"\n", "limits: expected a list of limits, was \"60 per minute\""),
        // an entry
        Arguments.of(
            "  - requests-per-minute\n",
            "limits[0]: expected a mapping, was \"requests-per-minute\""),
        Arguments.of(
            g + "    requests-per-minute: 5\n  - [ml]\n",
            "limits[1]: expected a mapping, was a list"),
        Arguments.of(
            g + "    requests-per-minute: 5\n    requests-per-hour: 100\n",
            "limits[0].requests-per-hour: unknown key"),
        Arguments.of(
            g + "    requests_per_minute: 5\n", "limits[0].requests_per_minute: unknown key"),
        Arguments.of(
            g + "    requests-per-minute: 5\n    model: [llama-3]\n",
            "limits[0].model: unknown key"),
        // groups
        Arguments.of("  - requests-per-minute: 5\n", "limits[0].groups: required"),
        Arguments.of(
            "  - {groups: [], requests-per-minute: 5}\n", "limits[0].groups: must not be empty"),
        Arguments.of(
            "  - {groups: ml, requests-per-minute: 5}\n",
            "limits[0].groups: expected a list of strings, was \"ml\""),
        Arguments.of(
            "  - {groups: [ml, \"\"], requests-per-minute: 5}\n",
            "limits[0].groups[1]: must not be empty"),
        Arguments.of(
            "  - {groups: [ml, 7], requests-per-minute: 5}\n",
            "limits[0].groups[1]: expected a string, was 7"),
        // no bound
        Arguments.of(
            g,
            "limits[0]: give at least one of requests-per-minute, tokens-per-minute, tokens-per-day"),
        Arguments.of(
            g + "    models: [\"llama-*\"]\n    operations: [chat]\n",
            "limits[0]: give at least one of requests-per-minute, tokens-per-minute, tokens-per-day"),
        Arguments.of(
            g + "    tokens-per-day: 5\n  - {groups: [ci]}\n",
            "limits[1]: give at least one of requests-per-minute, tokens-per-minute, tokens-per-day"),
        // bounds
        Arguments.of(
            g + "    requests-per-minute: 0\n",
            "limits[0].requests-per-minute: must be > 0, was 0"),
        Arguments.of(
            g + "    tokens-per-minute: -5\n", "limits[0].tokens-per-minute: must be > 0, was -5"),
        Arguments.of(g + "    tokens-per-day: 0\n", "limits[0].tokens-per-day: must be > 0, was 0"),
        Arguments.of(
            g + "    tokens-per-day: 1.5\n",
            "limits[0].tokens-per-day: expected a whole number, was 1.5"),
        Arguments.of(
            g + "    requests-per-minute: \"60\"\n",
            "limits[0].requests-per-minute: expected a whole number, was \"60\""),
        Arguments.of(
            g + "    requests-per-minute: sixty\n",
            "limits[0].requests-per-minute: expected a whole number, was \"sixty\""),
        Arguments.of(
            g + "    requests-per-minute: true\n",
            "limits[0].requests-per-minute: expected a whole number, was true"),
        Arguments.of(
            g + "    requests-per-minute: null\n",
            "limits[0].requests-per-minute: expected a whole number, was null"),
        Arguments.of(
            g + "    requests-per-minute: [60]\n",
            "limits[0].requests-per-minute: expected a whole number, was a list"),
        Arguments.of(
            g + "    tokens-per-day: 9223372036854775808\n",
            "limits[0].tokens-per-day: too large, was 9223372036854775808"),
        Arguments.of(
            g + "    tokens-per-day: 100000000000000000000000000000\n",
            "limits[0].tokens-per-day: too large, was 100000000000000000000000000000"),
        Arguments.of(
            g + "    tokens-per-minute: 5\n    tokens-per-day: -1\n",
            "limits[0].tokens-per-day: must be > 0, was -1"),
        // models
        Arguments.of(
            g + "    models: [\"llama-[\"]\n    requests-per-minute: 5\n",
            "limits[0].models[0]: invalid glob \"llama-[\": unclosed '['"),
        Arguments.of(
            g + "    models: [ok, \"gpt-[4\"]\n    requests-per-minute: 5\n",
            "limits[0].models[1]: invalid glob \"gpt-[4\": unclosed '['"),
        Arguments.of(
            g + "    models: []\n    requests-per-minute: 5\n",
            "limits[0].models: must not be empty"),
        Arguments.of(
            g + "    models: llama-3\n    requests-per-minute: 5\n",
            "limits[0].models: expected a list of strings, was \"llama-3\""),
        // operations
        Arguments.of(
            g + "    operations: [chat, speech]\n    requests-per-minute: 5\n",
            "limits[0].operations[1]: unknown operation \"speech\" (known: chat, completion, embedding, infer)"),
        Arguments.of(
            g + "    operations: [Chat]\n    requests-per-minute: 5\n",
            "limits[0].operations[0]: unknown operation \"Chat\" (known: chat, completion, embedding, infer)"),
        Arguments.of(
            g + "    operations: []\n    requests-per-minute: 5\n",
            "limits[0].operations: must not be empty"),
        Arguments.of(
            g + "    operations: chat\n    requests-per-minute: 5\n",
            "limits[0].operations: expected a list of strings, was \"chat\""),
        // the second entry is checked with its own index
        Arguments.of(
            g + "    requests-per-minute: 5\n  - {groups: [ci], tokens-per-minute: 0}\n",
            "limits[1].tokens-per-minute: must be > 0, was 0"));
  }

  @ParameterizedTest
  @MethodSource("errors")
  void errorsNameThePathAndTheValue(String section, String message) {
    String yaml = "version: 1\nlimits:\n" + section;
    assertThatThrownBy(() -> PolicyLoader.parse(yaml, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
    assertThatThrownBy(() -> PolicyLoader.parseJson(asJson(yaml), "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }

  @Test
  void theRecordValidatesWhatIsBuiltFromJava() {
    assertThatThrownBy(() -> new Policy.Limit(Set.of(), null, null, 5L, null, null))
        .isInstanceOf(PolicyException.class)
        .hasMessage("limits: groups must not be empty");
    assertThatThrownBy(() -> new Policy.Limit(null, null, null, 5L, null, null))
        .isInstanceOf(PolicyException.class)
        .hasMessage("limits: groups must not be empty");
    assertThatThrownBy(() -> new Policy.Limit(Set.of("ml"), null, null, null, null, null))
        .isInstanceOf(PolicyException.class)
        .hasMessage(
            "limits: give at least one of requests-per-minute, tokens-per-minute, tokens-per-day");
    assertThatThrownBy(() -> new Policy.Limit(Set.of("ml"), null, null, 5L, 0L, null))
        .isInstanceOf(PolicyException.class)
        .hasMessage("limits: bounds must be > 0, was 0");
    assertThatThrownBy(() -> new Policy.Limit(Set.of("ml"), null, null, null, null, -3L))
        .isInstanceOf(PolicyException.class)
        .hasMessage("limits: bounds must be > 0, was -3");

    Policy.Limit l = new Policy.Limit(Set.of("ml"), null, null, null, 7L, null);
    assertThat(l.models()).isEmpty();
    assertThat(l.operations()).isEmpty();
    assertThat(
            Policy.parse("version: 1\nlimits:\n  - {groups: [ml], tokens-per-minute: 7}\n")
                .limits())
        .containsExactly(l);
  }
}
