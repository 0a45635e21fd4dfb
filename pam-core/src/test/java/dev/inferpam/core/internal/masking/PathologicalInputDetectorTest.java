package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.Policy.MaskStrategy;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile inputs take linear time with every detector: measured deterministically by counting the
 * chars read (a counting {@link CharSequence}), not by a clock. Four times the input must cost at
 * most about four times the reads (bound 5x); anything super-linear shows as 16x or worse. The
 * stream only rescans its bounded hold-back window, so it stays linear when the block masker is.
 */
class PathologicalInputDetectorTest {
  private static final int N = 20_000;

  /** Builds the hostile input of about {@code n} chars. */
  interface Input {
    String of(int n);
  }

  static Stream<Arguments> inputs() {
    return Stream.of(
        Arguments.of("digits", (Input) n -> "7".repeat(n)),
        Arguments.of("digits with separators", (Input) n -> "1 2-".repeat(n / 4)),
        Arguments.of("card-like groups", (Input) n -> "4111 ".repeat(n / 5)),
        Arguments.of("at signs", (Input) n -> "@".repeat(n)),
        Arguments.of("dots", (Input) n -> ".".repeat(n)),
        Arguments.of("at and dots", (Input) n -> "a@.".repeat(n / 3)),
        Arguments.of("local part runs", (Input) n -> ("a".repeat(70) + "@").repeat(n / 71)),
        Arguments.of("domain labels", (Input) n -> "a@" + "b.".repeat(n / 2)),
        Arguments.of("dotted numbers", (Input) n -> "1.".repeat(n / 2)),
        Arguments.of("colons", (Input) n -> ":".repeat(n)),
        Arguments.of("hex and colons", (Input) n -> "a:".repeat(n / 2)),
        Arguments.of("jwt starts", (Input) n -> "eyJ".repeat(n / 3)),
        Arguments.of("jwt dots", (Input) n -> "eyJa.".repeat(n / 5)),
        Arguments.of(
            "nested pem markers", (Input) n -> "-----BEGIN RSA PRIVATE KEY-----\n".repeat(n / 32)),
        Arguments.of("pem begin prefixes", (Input) n -> "-----BEGIN ".repeat(n / 11)),
        Arguments.of("dashes", (Input) n -> "-".repeat(n)),
        Arguments.of("upper case", (Input) n -> "AKIA".repeat(n / 4)),
        Arguments.of("iban-like", (Input) n -> "DE89".repeat(n / 4)),
        Arguments.of("plus digits", (Input) n -> "+1".repeat(n / 2)),
        Arguments.of("parens", (Input) n -> "(415) ".repeat(n / 6)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("inputs")
  void everyDetectorReadsLinearlyManyChars(String what, Input input) {
    BlockMasker masker = new BlockMasker(allWithCustom(), MaskStrategy.REDACT, null);
    long small = reads(masker, input.of(N));
    long large = reads(masker, input.of(4 * N));
    assertThat(large)
        .as("%s: %d reads for %d chars, %d for %d", what, small, N, large, 4 * N)
        .isLessThanOrEqualTo(5 * Math.max(small, N));
  }

  private static long reads(BlockMasker masker, String text) {
    CountingText counted = new CountingText(text);
    masker.matches(counted);
    return counted.reads;
  }

  /** Counts {@link #charAt} calls. */
  private static final class CountingText implements CharSequence {
    private final String s;
    long reads;

    CountingText(String s) {
      this.s = s;
    }

    @Override
    public int length() {
      return s.length();
    }

    @Override
    public char charAt(int index) {
      reads++;
      return s.charAt(index);
    }

    @Override
    public CharSequence subSequence(int start, int end) {
      reads += end - start;
      return s.substring(start, end);
    }

    @Override
    public String toString() {
      reads += s.length();
      return s;
    }
  }

  private static List<Detector> allWithCustom() {
    List<Detector> list = new java.util.ArrayList<>(Detectors.all());
    list.add(CustomPatterns.detector("employee-id", "EMP-[0-9]{6}"));
    list.add(CustomPatterns.detector("ticket", "[A-Z]{2,10}-[0-9]{1,8}"));
    list.add(new WordListDetector("words", List.of("secret", "project falcon"), true));
    return list;
  }
}
