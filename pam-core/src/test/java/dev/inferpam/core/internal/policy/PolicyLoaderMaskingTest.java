package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.internal.masking.BlockMasker;
import dev.inferpam.core.internal.masking.Detectors;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The {@code masking} section: every key, its default, and errors naming path and value. */
class PolicyLoaderMaskingTest {

  private static Policy.Masking masking(String section) {
    String yaml = "version: 1\nmasking:\n" + section;
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    assertThat(PolicyLoader.parseJson(asJson(yaml), "policy")).isEqualTo(fromYaml);
    return fromYaml.masking();
  }

  @Test
  void absentSectionMeansNoMasking() {
    assertThat(PolicyLoader.parse("version: 1", "policy").masking()).isNull();
  }

  @Test
  void readsTheSpecExample() {
    Policy.Masking m =
        masking(
            """
          detectors: [email, phone, credit-card, us-ssn, iban, ipv4, ipv6,
                      aws-access-key, jwt, private-key]
          custom:
            - name: employee-id
              pattern: "EMP-[0-9]{6}"
          strategy: redact
          exempt-groups: []
        """);
    assertThat(m.detectors()).isEqualTo(Detectors.NAMES);
    assertThat(m.custom()).containsExactly(new Policy.CustomPattern("employee-id", "EMP-[0-9]{6}"));
    assertThat(m.strategy()).isEqualTo(Policy.MaskStrategy.REDACT);
    assertThat(m.exemptGroups()).isEmpty();
    assertThat(BlockMasker.from(m, name -> null).mask("EMP-123456 a@b.co"))
        .isEqualTo("[EMPLOYEE_ID] [EMAIL]");
  }

  @Test
  void defaultsToEveryDetectorAndRedact() {
    Policy.Masking m = masking("  exempt-groups: [auditors]\n");
    assertThat(m.detectors()).isEqualTo(Detectors.NAMES);
    assertThat(m.strategy()).isEqualTo(Policy.MaskStrategy.REDACT);
    assertThat(m.exemptGroups()).isEqualTo(Set.of("auditors"));
    assertThat(masking("  detectors: []\n").detectors()).isEmpty();
  }

  @Test
  void readsWordsAndHashKeys() {
    Policy.Masking m =
        masking(
            """
          detectors: [email, email]
          words:
            - name: codename
              list: [Falcon, "Project Nightingale"]
              ignore-case: true
          strategy: hash
          hash-key-from-env: PAM_MASK_KEY
        """);
    assertThat(m.detectors()).containsExactly("email");
    assertThat(m.words())
        .containsExactly(
            new Policy.WordList("codename", List.of("Falcon", "Project Nightingale"), true));
    assertThat(m.hashKeyFromEnv()).isEqualTo("PAM_MASK_KEY");
    assertThat(
            masking("  strategy: hash\n  hash-key-from-file: /run/secrets/mask\n")
                .hashKeyFromFile())
        .isEqualTo(Path.of("/run/secrets/mask"));
    assertThat(masking("  strategy: partial\n").strategy()).isEqualTo(Policy.MaskStrategy.PARTIAL);
  }

  @Test
  void readsMaxHoldBackAsASizeUpTo1MiB() {
    assertThat(masking("  strategy: redact\n").maxHoldBack())
        .isEqualTo(Policy.Masking.DEFAULT_MAX_HOLD_BACK);
    assertThat(masking("  max-hold-back: 32KiB\n").maxHoldBack()).isEqualTo(32 * 1024);
    assertThat(masking("  max-hold-back: 1\n").maxHoldBack()).isEqualTo(1);
    assertThat(masking("  max-hold-back: 1MiB\n").maxHoldBack()).isEqualTo(1024 * 1024);
  }

  static Stream<Arguments> errors() {
    return Stream.of(
        Arguments.of(
            "  detectors: [email, emial]\n",
            "masking.detectors[1]: unknown detector \"emial\" (known: email, "
                + "phone, credit-card, us-ssn, iban, ipv4, ipv6, aws-access-key, jwt, private-key)"),
        Arguments.of("  detector: [email]\n", "masking.detector: unknown key"),
        Arguments.of(
            "  strategy: mask\n",
            "masking.strategy: expected one of redact, partial, hash, was \"mask\""),
        Arguments.of(
            "  strategy: hash\n",
            "masking: strategy hash needs exactly one of hash-key-from-env / hash-key-from-file"),
        Arguments.of(
            "  strategy: hash\n  hash-key-from-env: K\n  hash-key-from-file: f\n",
            "masking: strategy hash needs exactly one of hash-key-from-env / hash-key-from-file"),
        Arguments.of(
            "  hash-key-from-env: K\n",
            "masking.hash-key-from-env: only used with strategy hash, strategy is redact"),
        Arguments.of(
            "  custom: {name: x}\n", "masking.custom: expected a list of patterns, was a mapping"),
        Arguments.of("  custom:\n    - name: employee-id\n", "masking.custom[0].pattern: required"),
        Arguments.of(
            "  custom:\n    - {name: Employee, pattern: \"E[0-9]{4}\"}\n",
            "masking.custom[0].name: expected lower-case letters, digits and \"-\" (e.g. employee-id), was \"Employee\""),
        Arguments.of(
            "  custom:\n    - {name: email, pattern: \"E[0-9]{4}\"}\n",
            "masking.custom[0].name: the name of a built-in detector, was \"email\""),
        Arguments.of(
            "  custom:\n    - {name: x, pattern: \"E[0-9]{4}\"}\n  words:\n    - {name: x, list: [a]}\n",
            "masking.words[0].name: duplicate name \"x\" (also masking.custom[0].name)"),
        Arguments.of(
            "  custom:\n    - {name: x, pattern: \"(a+)+\"}\n",
            "masking.custom[0].pattern: unbounded quantifier \"+\" at index 2: use a bounded one such as {0,64}, "
                + "was \"(a+)+\""),
        Arguments.of(
            "  custom:\n    - {name: x, pattern: \"(a)\\\\1\"}\n",
            "masking.custom[0].pattern: backreference at index 3 is not allowed in custom patterns, was \"(a)\\\\1\""),
        Arguments.of(
            "  custom:\n    - {name: x, pattern: \"(?=a)b\"}\n",
            "masking.custom[0].pattern: lookaround at index 0 is not allowed in custom patterns, was \"(?=a)b\""),
        Arguments.of(
            "  words:\n    - {name: w, list: []}\n", "masking.words[0].list: must not be empty"),
        Arguments.of(
            "  words:\n    - {name: w, list: [a], ignore-case: yes please}\n",
            "masking.words[0].ignore-case: expected true or false, was \"yes please\""),
        Arguments.of(
            "  exempt-groups: admins\n",
            "masking.exempt-groups: expected a list of strings, was \"admins\""),
        Arguments.of(
            "  max-hold-back: 1048577\n",
            "masking.max-hold-back: expected a size between 1 and 1MiB, was 1048577"),
        Arguments.of(
            "  max-hold-back: 2GiB\n",
            "masking.max-hold-back: expected a size between 1 and 1MiB, was 2147483648"),
        Arguments.of("  max-hold-back: 0\n", "masking.max-hold-back: must be > 0, was 0"),
        Arguments.of(
            "  max-hold-back: lots\n",
            "masking.max-hold-back: invalid size \"lots\": expected bytes or a whole "
                + "number of KiB, MiB or GiB, e.g. 8MiB"));
  }

  @ParameterizedTest
  @MethodSource("errors")
  void errorsNameKeyPathAndValue(String section, String message) {
    String yaml = "version: 1\nmasking:\n" + section;
    assertThatThrownBy(() -> PolicyLoader.parse(yaml, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
    assertThatThrownBy(() -> PolicyLoader.parseJson(asJson(yaml), "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }
}
