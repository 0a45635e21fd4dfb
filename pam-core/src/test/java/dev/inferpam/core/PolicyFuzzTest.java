package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the policy loader through {@link Policy#parse}. The input is the
 * policy text as UTF-8 (regression corpus: {@code PolicyFuzzTestInputs/parse}, the examples of
 * docs/policy.md in YAML and JSON among them).
 *
 * <p><b>Contract</b>: whatever the text, {@code parse} returns a policy or throws
 * {@link PolicyException} (never a {@code NullPointerException}, {@code ClassCastException},
 * {@code StackOverflowError} or {@code OutOfMemoryError}), within the fuzzer's per-input time
 * limit; the message starts with the key path of the problem ({@code version: required},
 * {@code entitlements[0].models[0]: ...}, {@code ["odd key"]: ...}) or with {@code policy} for the
 * document as a whole (syntax errors, an empty document), and carries no stack trace.
 */
class PolicyFuzzTest {
  /** "path: problem", the path being {@code policy} or a key path. */
  private static final Pattern MESSAGE = Pattern.compile("(?s)(policy|[A-Za-z0-9_-]+|\\[).*?: .*");

  @FuzzTest(maxDuration = "10s")
  void parse(byte[] input) {
    String text = new String(input, StandardCharsets.UTF_8);
    try {
      assertThat(Policy.parse(text)).isNotNull();
    } catch (PolicyException e) {
      assertThat(e.getMessage()).matches(MESSAGE).doesNotContain("\tat ");
    }
  }
}
