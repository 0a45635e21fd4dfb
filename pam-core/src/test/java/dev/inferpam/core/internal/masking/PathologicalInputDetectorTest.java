package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.inferpam.core.Policy.MaskStrategy;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * No-hang guard: hostile inputs finish quickly with every detector. The bound is generous (2 s
 * for 100k+ chars); this is not a performance test.
 */
class PathologicalInputDetectorTest {
  private static final int N = 100_000;

  static Stream<Arguments> inputs() {
    return Stream.of(
        Arguments.of("digits", "7".repeat(N)),
        Arguments.of("digits with separators", "1 2-".repeat(N / 4)),
        Arguments.of("at signs", "@".repeat(N)),
        Arguments.of("dots", ".".repeat(N)),
        Arguments.of("at and dots", "a@.".repeat(N / 3)),
        Arguments.of("local part runs", ("a".repeat(70) + "@").repeat(N / 71)),
        Arguments.of("domain labels", "a@" + "b.".repeat(N / 2)),
        Arguments.of("dotted numbers", "1.".repeat(N / 2)),
        Arguments.of("colons", ":".repeat(N)),
        Arguments.of("hex and colons", "a:".repeat(N / 2)),
        Arguments.of("jwt starts", "eyJ".repeat(N / 3)),
        Arguments.of("jwt dots", "eyJa.".repeat(N / 5)),
        Arguments.of("nested pem markers", "-----BEGIN RSA PRIVATE KEY-----\n".repeat(N / 32)),
        Arguments.of("pem begin prefixes", "-----BEGIN ".repeat(N / 11)),
        Arguments.of("dashes", "-".repeat(N)),
        Arguments.of("upper case", "AKIA".repeat(N / 4)),
        Arguments.of("iban-like", "DE89".repeat(N / 4)),
        Arguments.of("plus digits", "+1".repeat(N / 2)),
        Arguments.of("parens", "(415) ".repeat(N / 6)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("inputs")
  void everyDetectorFinishesQuickly(String what, String input) {
    BlockMasker masker = new BlockMasker(allWithCustom(), MaskStrategy.REDACT, null);
    String out = assertTimeoutPreemptively(Duration.ofSeconds(2), () -> masker.mask(input), what);
    assertThat(out).isNotNull();
  }

  private static List<Detector> allWithCustom() {
    List<Detector> list = new java.util.ArrayList<>(Detectors.all());
    list.add(CustomPatterns.detector("employee-id", "EMP-[0-9]{6}"));
    list.add(CustomPatterns.detector("ticket", "[A-Z]{2,10}-[0-9]{1,8}"));
    list.add(new WordListDetector("words", List.of("secret", "project falcon"), true));
    return list;
  }
}
