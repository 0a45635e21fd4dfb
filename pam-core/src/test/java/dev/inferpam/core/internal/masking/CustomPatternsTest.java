package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The static check of custom patterns: what is refused, what is allowed, the longest match. */
class CustomPatternsTest {

  @ParameterizedTest
  @CsvSource(
      delimiter = '~',
      value = {
        "EMP-[0-9]{6}~10",
        "(?i)acct_[a-z0-9]{8,12}~17",
        "\\bTKT-\\d{4}\\b~12",
        "(?:foo|barbaz)-[0-9]{2}~9",
        "(?<id>[A-F]{3})?-x~5",
        "a.b~4",
        "\\p{Lu}{2}[0-9]{1,3}~7"
      })
  void allowsBoundedPatternsAndStatesTheirLongestMatch(String regex, int max) {
    assertThat(CustomPatterns.check(regex)).isEqualTo(max);
  }

  private static final String NESTED =
      "contains a quantifier or alternation and is itself repeated; this risks catastrophic backtracking";

  @ParameterizedTest
  @CsvSource(
      delimiter = '~',
      value = {
        "(a+)+~unbounded quantifier \"+\" at index 2: use a bounded one such as {0,64}",
        "(a*)*~unbounded quantifier \"*\" at index 2: use a bounded one such as {0,64}",
        "(a|a)*~unbounded quantifier \"*\" at index 5: use a bounded one such as {0,64}",
        "[0-9]{3,}~unbounded quantifier \"{3,}\" at index 5: use a bounded one such as {0,64}",
        "(a|a){1,9}~nested quantifier: the group at index 0 " + NESTED,
        "(a{1,5}){1,5}~nested quantifier: the group at index 0 " + NESTED,
        "x((ab)?c){2}~nested quantifier: the group at index 1 " + NESTED,
        "(a)\\1~backreference at index 3 is not allowed in custom patterns",
        "(?<x>a)\\k<x>~backreference at index 7 is not allowed in custom patterns",
        "foo(?=bar)~lookaround at index 3 is not allowed in custom patterns",
        "(?<!x)foo~lookaround at index 0 is not allowed in custom patterns",
        "(?>ab)~atomic group at index 0 is not allowed in custom patterns",
        "(?x)a b~the comments flag (?x) at index 0 is not allowed in custom patterns",
        "^$~matches only the empty string",
        "a{2}{3}~stacked quantifier \"{\" at index 4 is not supported in custom patterns",
        "[a-z]{1100}~can match up to 1100 chars, at most 1024 allowed"
      })
  void refusesRiskyOrUnboundedPatterns(String regex, String message) {
    assertThatThrownBy(() -> CustomPatterns.check(regex))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }

  @Test
  void refusesHugeAndStackedQuantifiersWithoutOverflow() {
    assertThatThrownBy(() -> CustomPatterns.check("(?:[a-z]{1000}){1000}"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("nested quantifier");
    assertThatThrownBy(() -> CustomPatterns.check("(?:abc){2147483647}"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("can match up to 6442450941 chars, at most 1024 allowed");
  }

  @Test
  void refusesInvalidSyntaxWithTheRegexEngineReason() {
    assertThatThrownBy(() -> CustomPatterns.check("[a-z"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("invalid regular expression: Unclosed character class at index ");
  }

  @Test
  void detectorFindsMatchesWithinTheBound() {
    Detector d = CustomPatterns.detector("employee-id", "EMP-[0-9]{6}");
    List<String> found = new ArrayList<>();
    String text = "EMP-123456, EMP-12345, EMP-654321";
    d.find(text, m -> found.add(text.substring(m.start(), m.end())));
    assertThat(found).containsExactly("EMP-123456", "EMP-654321");
    assertThat(d.maxMatchLength()).isEqualTo(10);
  }

  @ParameterizedTest
  @ValueSource(strings = {"secret", "SECRET", "Secret"})
  void wordListsMatchWholeWordsIgnoringCaseWhenAsked(String word) {
    WordListDetector d = new WordListDetector("w", List.of("secret"), true);
    List<Match> found = new ArrayList<>();
    d.find("a " + word + ", secrets, topsecret", found::add);
    assertThat(found).containsExactly(new Match(2, 8, "w"));
  }
}
