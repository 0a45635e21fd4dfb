package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GlobTest {

  private static boolean m(String pattern, String text) {
    return Glob.compile(pattern).matches(text);
  }

  @Test
  void literalPatternsMatchExactlyAndCaseSensitively() {
    assertThat(m("/v1/models", "/v1/models")).isTrue();
    assertThat(m("/v1/models", "/v1/Models")).isFalse();
    assertThat(m("/v1/models", "/v1/models/")).isFalse();
    assertThat(m("/v1/models", "/v1/model")).isFalse();
    assertThat(m("gpt-4o-mini", "gpt-4o-mini")).isTrue();
    assertThat(m("gpt-4o-mini", "GPT-4o-mini")).isFalse();
    // '.' and '+' are not regex metacharacters here
    assertThat(m("llama-3.1", "llama-3x1")).isFalse();
    assertThat(m("a+b", "aab")).isFalse();
    assertThat(m("a+b", "a+b")).isTrue();
  }

  @Test
  void starStaysWithinOneSegment() {
    assertThat(m("llama-3.1-*", "llama-3.1-8b")).isTrue();
    assertThat(m("llama-3.1-*", "llama-3.1-")).isTrue();
    assertThat(m("llama-3.1-*", "llama-3.1")).isFalse();
    assertThat(m("llama-3.1-*", "llama-3.1-8b/evil")).isFalse();
    assertThat(m("meta-llama/*", "meta-llama/Llama-3.1-8B")).isTrue();
    assertThat(m("meta-llama/*", "meta-llama/a/b")).isFalse();
    assertThat(m("/v1/*/x", "/v1/a/x")).isTrue();
    assertThat(m("/v1/*/x", "/v1//x")).isTrue();
    assertThat(m("/v1/*/x", "/v1/a/b/x")).isFalse();
    assertThat(m("*", "")).isTrue();
    assertThat(m("*", "/")).isFalse();
    assertThat(m("a*b*c", "abc")).isTrue();
    assertThat(m("a*b*c", "axxbyyc")).isTrue();
    assertThat(m("a*b*c", "axxbyy")).isFalse();
  }

  @Test
  void doubleStarCrossesSegments() {
    assertThat(m("/v1/**", "/v1/a/b/c")).isTrue();
    assertThat(m("**", "")).isTrue();
    assertThat(m("**", "/a/b")).isTrue();
    assertThat(m("a**", "a/b/c")).isTrue();
    assertThat(m("**.json", "/x/y.json")).isTrue();
    assertThat(m("/x/**.json", "/x/a/b.json")).isTrue();
    assertThat(m("/x/**.json", "/x/a/b.yaml")).isFalse();
  }

  @Test
  void trailingDoubleStarAlsoMatchesThePathItself() {
    Glob g = Glob.compile("/v1/files/**");
    assertThat(g.matches("/v1/files")).isTrue();
    assertThat(g.matches("/v1/files/")).isTrue();
    assertThat(g.matches("/v1/files/abc")).isTrue();
    assertThat(g.matches("/v1/files/a/b")).isTrue();
    assertThat(g.matches("/v1/filesystem")).isFalse();
    assertThat(g.matches("/v1/file")).isFalse();
    assertThat(g.matches("/v1")).isFalse();
    assertThat(Glob.compile("/**").matches("")).isTrue();
    assertThat(Glob.compile("/**").matches("/anything/at/all")).isTrue();
  }

  @Test
  void doubleStarBetweenSlashesMatchesZeroOrMoreSegments() {
    Glob g = Glob.compile("/a/**/b");
    assertThat(g.matches("/a/b")).isTrue();
    assertThat(g.matches("/a/x/b")).isTrue();
    assertThat(g.matches("/a/x/y/b")).isTrue();
    assertThat(g.matches("/a/xb")).isFalse();
    assertThat(g.matches("/ab")).isFalse();
    assertThat(g.matches("/a/x/y/bc")).isFalse();
    Glob lead = Glob.compile("**/b");
    assertThat(lead.matches("b")).isTrue();
    assertThat(lead.matches("x/y/b")).isTrue();
    assertThat(lead.matches("xb")).isFalse();
    assertThat(Glob.compile("/a/**/**/b").matches("/a/b")).isTrue();
  }

  @Test
  void questionMarkMatchesOneNonSlashCharacter() {
    assertThat(m("gpt-?", "gpt-4")).isTrue();
    assertThat(m("gpt-?", "gpt-")).isFalse();
    assertThat(m("gpt-?", "gpt-40")).isFalse();
    assertThat(m("a?b", "a/b")).isFalse();
    // one code point, even outside the BMP
    assertThat(m("x?y", "x\uD83D\uDE00y")).isTrue();
  }

  @Test
  void characterClasses() {
    assertThat(m("llama-3.[12]-*", "llama-3.1-8b")).isTrue();
    assertThat(m("llama-3.[12]-*", "llama-3.2-1b")).isTrue();
    assertThat(m("llama-3.[12]-*", "llama-3.3-70b")).isFalse();
    assertThat(m("v[0-9]", "v7")).isTrue();
    assertThat(m("v[0-9]", "vx")).isFalse();
    assertThat(m("v[!0-9]", "vx")).isTrue();
    assertThat(m("v[^0-9]", "v7")).isFalse();
    assertThat(m("a[!x]b", "a/b")).isFalse(); // never '/', even negated
    assertThat(m("[]]", "]")).isTrue();
    assertThat(m("[!]]", "a")).isTrue();
    assertThat(m("[!]]", "]")).isFalse();
    assertThat(m("[a-]", "-")).isTrue();
    assertThat(m("[-a]", "-")).isTrue();
    assertThat(m("[\\]]", "]")).isTrue();
  }

  @Test
  void backslashEscapesMetacharacters() {
    assertThat(m("a\\*b", "a*b")).isTrue();
    assertThat(m("a\\*b", "axb")).isFalse();
    assertThat(m("\\[x\\]", "[x]")).isTrue();
    assertThat(m("\\{a\\}", "{a}")).isTrue();
    assertThat(m("a\\\\b", "a\\b")).isTrue();
    assertThat(m("what\\?", "what?")).isTrue();
    assertThat(m("what\\?", "whatx")).isFalse();
  }

  @Test
  void leadingLiteralTextIsRequiredWithEscapesTakenLiterally() {
    assertThat(m("a\\*b*", "a*bc")).isTrue();
    assertThat(m("a\\*b*", "axbc")).isFalse();
    assertThat(m("/api/pull*", "/api/pull")).isTrue();
    assertThat(m("/api/pull*", "/api/pul")).isFalse();
    assertThat(m("/api/pull*", "/v1/chat/completions")).isFalse();
    assertThat(m("x\uD83D\uDE00*", "x\uD83D\uDE00y")).isTrue();
  }

  @Test
  void emptyPatternMatchesOnlyEmptyText() {
    assertThat(m("", "")).isTrue();
    assertThat(m("", "a")).isFalse();
  }

  @Test
  void nullTextNeverMatches() {
    assertThat(Glob.compile("**").matches(null)).isFalse();
    assertThat(Glob.compile("x").matches(null)).isFalse();
    assertThat(Glob.matchesAny(List.of(Glob.compile("**")), null)).isFalse();
  }

  @Test
  void matchesAnyIsTrueWhenOneMatches() {
    List<Glob> globs = List.of(Glob.compile("/v1/models"), Glob.compile("/health"));
    assertThat(Glob.matchesAny(globs, "/health")).isTrue();
    assertThat(Glob.matchesAny(globs, "/v1/models")).isTrue();
    assertThat(Glob.matchesAny(globs, "/metrics")).isFalse();
    assertThat(Glob.matchesAny(List.of(), "/health")).isFalse();
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      quoteCharacter = '`',
      value = {
        "llama-[        | invalid glob \"llama-[\": unclosed '['",
        "llama-[!       | invalid glob \"llama-[!\": unclosed '['",
        "a]             | invalid glob \"a]\": ']' without '['",
        "{a,b}          | invalid glob \"{a,b}\": '{' and '}' are reserved; escape them as '\\{' '\\}'",
        "a}             | invalid glob \"a}\": '{' and '}' are reserved; escape them as '\\{' '\\}'",
        "a***           | invalid glob \"a***\": more than two '*' in a row",
        "a\\            | invalid glob \"a\\\\\": ends with an escaping '\\'",
        "[z-a]          | invalid glob \"[z-a]\": range z-a is backwards",
        "/v1/[/]        | invalid glob \"/v1/[/]\": '/' cannot be in a character class",
      })
  void invalidPatternsAreRefusedWithAReason(String pattern, String message) {
    assertThatThrownBy(() -> Glob.compile(pattern))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(message);
  }

  @Test
  void invalidPatternMessageEscapesControlCharacters() {
    assertThatThrownBy(() -> Glob.compile("x\n["))
        .hasMessage("invalid glob \"x\\n[\": unclosed '['");
  }

  @Test
  void nullPatternIsRefused() {
    assertThatThrownBy(() -> Glob.compile(null)).isInstanceOf(NullPointerException.class);
  }

  @Test
  void equalityAndToStringFollowThePattern() {
    assertThat(Glob.compile("/a/**"))
        .isEqualTo(Glob.compile("/a/**"))
        .hasSameHashCodeAs(Glob.compile("/a/**"))
        .isNotEqualTo(Glob.compile("/a/*"));
    assertThat(Glob.compile("/a/**")).hasToString("/a/**");
    assertThat(Glob.compile("/a/**").pattern()).isEqualTo("/a/**");
  }

  @Test
  @Timeout(5)
  void adversarialInputsMatchInLinearTime() {
    // A backtracking matcher needs about n^k steps for k stars; this must finish at once.
    String text = "a".repeat(20_000);
    Glob many = Glob.compile("*a*a*a*a*a*a*a*a*a*a*b");
    Glob deep = Glob.compile("**a**a**a**a**a**a**a**b");
    Glob segments = Glob.compile("/**/a/**/a/**/a/**/a/**/b");
    String path = "/a".repeat(10_000);
    long start = System.nanoTime();
    assertThat(many.matches(text)).isFalse();
    assertThat(deep.matches(text)).isFalse();
    assertThat(segments.matches(path)).isFalse();
    assertThat(many.matches(text + "b")).isTrue();
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(2));
  }
}
