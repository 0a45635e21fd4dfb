package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The {@code approval} section: every key, its default, and errors naming path and value. */
class PolicyLoaderApprovalTest {

  private static final String RULE = "  rules:\n    - {name: big, max-tokens-over: 8000}\n";

  private static Policy.Approval approval(String section) {
    String yaml = "version: 1\napproval:\n" + section;
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    assertThat(PolicyLoader.parseJson(asJson(yaml), "policy")).isEqualTo(fromYaml);
    return fromYaml.approval();
  }

  @Test
  void absentSectionMeansNoReview() {
    assertThat(PolicyLoader.parse("version: 1", "policy").approval()).isNull();
  }

  @Test
  void readsTheSpecExample() {
    Policy.Approval a =
        approval(
            """
          reviewers: [security-oncall]
          timeout: 5m
          grant: 0s
          rules:
            - name: bulk-export
              prompt-matches: "(?i)\\\\b(dump|export|list) (all|every)\\\\b"
            - name: large-generation
              max-tokens-over: 8000
            - name: finance-models
              models: ["finance-*"]
        """);
    assertThat(a.reviewers()).containsExactly("security-oncall");
    assertThat(a.timeout()).isEqualTo(Duration.ofMinutes(5));
    assertThat(a.grant()).isZero();
    assertThat(a.rules())
        .extracting(Policy.ApprovalRule::name)
        .containsExactly("bulk-export", "large-generation", "finance-models");
    assertThat(a.rules().get(0).promptMatches())
        .isEqualTo("(?i)\\b(dump|export|list) (all|every)\\b");
    assertThat(a.rules().get(1).maxTokensOver()).isEqualTo(8000L);
    assertThat(a.rules().get(2).models()).containsExactly(Glob.compile("finance-*"));
    assertThat(a.maxPendingPerPrincipal())
        .isEqualTo(Policy.Approval.DEFAULT_MAX_PENDING_PER_PRINCIPAL);
    assertThat(a.maxPending()).isEqualTo(Policy.Approval.DEFAULT_MAX_PENDING);
  }

  @Test
  void appliesDefaultsAndReadsEveryKey() {
    Policy.Approval d = approval("  reviewers: [sec]\n" + RULE);
    assertThat(d.timeout()).isEqualTo(Duration.ofMinutes(5));
    assertThat(d.grant()).isEqualTo(Duration.ZERO);
    assertThat(d.maxPendingPerPrincipal()).isEqualTo(5);
    assertThat(d.maxPending()).isEqualTo(1000);

    Policy.Approval a =
        approval(
            """
          reviewers: [sec, leads]
          timeout: 90s
          grant: 10m
          max-pending-per-principal: 2
          max-pending: 20
          rules:
            - name: ci-finance
              models: ["finance-*", "ledger-**"]
              operations: [chat, completion]
              groups: [ci]
              prompt-matches: "EXPORT [A-Z]{2,8}"
              max-tokens-over: 0
            - name: everyone
              groups: ["*"]
        """);
    assertThat(a.reviewers()).isEqualTo(Set.of("sec", "leads"));
    assertThat(a.timeout()).isEqualTo(Duration.ofSeconds(90));
    assertThat(a.grant()).isEqualTo(Duration.ofMinutes(10));
    assertThat(a.maxPendingPerPrincipal()).isEqualTo(2);
    assertThat(a.maxPending()).isEqualTo(20);
    Policy.ApprovalRule r = a.rules().get(0);
    assertThat(r.models()).containsExactly(Glob.compile("finance-*"), Glob.compile("ledger-**"));
    assertThat(r.operations()).isEqualTo(Set.of("chat", "completion"));
    assertThat(r.groups()).isEqualTo(Set.of("ci"));
    assertThat(r.maxTokensOver()).isZero();
    assertThat(a.rules().get(1).groups()).isEqualTo(Set.of("*"));
    assertThat(a.rules().get(1).promptMatches()).isNull();
    assertThat(a.rules().get(1).maxTokensOver()).isNull();
  }

  static Stream<Arguments> errors() {
    String ok = "  reviewers: [sec]\n";
    return Stream.of(
        Arguments.of("  []\n", "approval: expected a mapping, was a list"),
        Arguments.of(ok + RULE + "  reviewer: [x]\n", "approval.reviewer: unknown key"),
        Arguments.of(RULE, "approval.reviewers: required"),
        Arguments.of("  reviewers: []\n" + RULE, "approval.reviewers: must not be empty"),
        Arguments.of(
            "  reviewers: sec\n" + RULE,
            "approval.reviewers: expected a list of strings, was \"sec\""),
        Arguments.of(
            "  reviewers: [sec, \"*\"]\n" + RULE,
            "approval.reviewers[1]: \"*\" would let anyone approve; name the reviewer groups"),
        Arguments.of(
            ok + RULE + "  timeout: 5\n",
            "approval.timeout: expected a duration such as 30s, was 5"),
        Arguments.of(
            ok + RULE + "  timeout: 5 minutes\n",
            "approval.timeout: invalid duration \"5 minutes\": "
                + "expected a whole number followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(ok + RULE + "  timeout: 0s\n", "approval.timeout: must be > 0, was \"0s\""),
        Arguments.of(
            ok + RULE + "  timeout: 2h\n", "approval.timeout: must be at most 1h, was \"2h\""),
        Arguments.of(ok + RULE + "  grant: 2d\n", "approval.grant: must be at most 1d, was \"2d\""),
        Arguments.of(
            ok + RULE + "  grant: forever\n",
            "approval.grant: invalid duration \"forever\": "
                + "expected a whole number followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(ok + RULE + "  max-pending: 0\n", "approval.max-pending: must be > 0, was 0"),
        Arguments.of(
            ok + RULE + "  max-pending-per-principal: five\n",
            "approval.max-pending-per-principal: expected a whole number, was \"five\""),
        Arguments.of(
            ok + RULE + "  max-pending: 3\n  max-pending-per-principal: 4\n",
            "approval.max-pending-per-principal: must not exceed max-pending (3), was 4"),
        Arguments.of(ok, "approval.rules: required"),
        Arguments.of(ok + "  rules: []\n", "approval.rules: must not be empty"),
        Arguments.of(
            ok + "  rules: {name: x}\n", "approval.rules: expected a list of rules, was a mapping"),
        Arguments.of(ok + "  rules: [x]\n", "approval.rules[0]: expected a mapping, was \"x\""),
        Arguments.of(
            ok + "  rules:\n    - {max-tokens-over: 5}\n", "approval.rules[0].name: required"),
        Arguments.of(
            ok + "  rules:\n    - {name: \"\", max-tokens-over: 5}\n",
            "approval.rules[0].name: must not be empty"),
        Arguments.of(
            ok + "  rules:\n    - {name: \"a:b\", max-tokens-over: 5}\n",
            "approval.rules[0].name: \":\" is not allowed in a rule name, was \"a:b\""),
        Arguments.of(
            ok + "  rules:\n    - {name: a, max-tokens-over: 5}\n    - {name: a, models: [x]}\n",
            "approval.rules[1].name: duplicate name \"a\" (also approval.rules[0])"),
        Arguments.of(
            ok + "  rules:\n    - {name: a}\n",
            "approval.rules[0]: rule \"a\" has no condition: give at "
                + "least one of prompt-matches, max-tokens-over, models, operations, groups"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, when: always}\n",
            "approval.rules[0].when: unknown key"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, prompt-matches: \"dump.*all\"}\n",
            "approval.rules[0].prompt-matches: unbounded quantifier \"*\" at index 5: use a bounded one such as "
                + "{0,64}, was \"dump.*all\""),
        Arguments.of(
            ok + "  rules:\n    - {name: a, prompt-matches: \"(a{1,5}){1,5}\"}\n",
            "approval.rules[0].prompt-matches: nested quantifier: the group at index 0 contains a quantifier or "
                + "alternation and is itself repeated; this risks catastrophic backtracking, was \"(a{1,5}){1,5}\""),
        Arguments.of(
            ok + "  rules:\n    - {name: a, prompt-matches: \"(dump\"}\n",
            "approval.rules[0].prompt-matches: invalid regular expression: Unclosed group at index 5, was \"(dump\""),
        Arguments.of(
            ok + "  rules:\n    - {name: a, prompt-matches: \"\"}\n",
            "approval.rules[0].prompt-matches: must not be empty"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, prompt-matches: 5}\n",
            "approval.rules[0].prompt-matches: expected a string, was 5"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, max-tokens-over: \"8000\"}\n",
            "approval.rules[0].max-tokens-over: expected a whole number, was \"8000\""),
        Arguments.of(
            ok + "  rules:\n    - {name: a, max-tokens-over: 1.5}\n",
            "approval.rules[0].max-tokens-over: expected a whole number, was 1.5"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, max-tokens-over: -1}\n",
            "approval.rules[0].max-tokens-over: must be >= 0, was -1"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, models: [\"finance-[\"]}\n",
            "approval.rules[0].models[0]: invalid glob \"finance-[\": unclosed '['"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, models: []}\n",
            "approval.rules[0].models: must not be empty"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, operations: [chat, speech]}\n",
            "approval.rules[0].operations[1]: unknown operation \"speech\" (known: chat, completion, embedding, infer)"),
        Arguments.of(
            ok + "  rules:\n    - {name: a, groups: ci}\n",
            "approval.rules[0].groups: expected a list of strings, was \"ci\""));
  }

  @ParameterizedTest
  @MethodSource("errors")
  void errorsNameThePathAndTheValue(String section, String message) {
    String yaml = "version: 1\napproval:\n" + section;
    assertThatThrownBy(() -> PolicyLoader.parse(yaml, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
    assertThatThrownBy(() -> PolicyLoader.parseJson(asJson(yaml), "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }

  @Test
  void theRecordsValidateWhatIsBuiltFromJava() {
    Policy.ApprovalRule big = new Policy.ApprovalRule("big", null, 10L, null, null, null);
    assertThatThrownBy(
            () -> new Policy.ApprovalRule("none", null, null, List.of(), Set.of(), Set.of()))
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("has no condition");
    assertThatThrownBy(() -> new Policy.ApprovalRule("p", "a+", null, null, null, null))
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("prompt-matches: unbounded quantifier");
    assertThatThrownBy(() -> new Policy.Approval(Set.of(), null, null, List.of(big)))
        .isInstanceOf(PolicyException.class)
        .hasMessage("approval.reviewers: must not be empty");
    assertThatThrownBy(() -> new Policy.Approval(Set.of("sec"), null, null, List.of(big, big)))
        .isInstanceOf(PolicyException.class)
        .hasMessage("approval.rules: duplicate name \"big\"");
    Policy.Approval a = new Policy.Approval(Set.of("sec"), null, null, List.of(big));
    assertThat(a.timeout()).isEqualTo(Policy.Approval.DEFAULT_TIMEOUT);
    assertThat(a.grant()).isZero();
    assertThat(a.maxPending()).isEqualTo(1000);
  }
}
