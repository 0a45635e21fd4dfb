package dev.inferpam.core.internal.approval;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.http.RequestClassifier;
import dev.inferpam.core.internal.policy.PolicyLoader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * However the phrase of a {@code prompt-matches} rule is disguised for a reader (look-alike
 * letters from other scripts and compatibility forms, any case, any whitespace, invisible
 * characters inside the words) and wherever it sits among other text and messages, the rule
 * matches; and text that does not hold the phrase's letters does not.
 */
class PromptMatchProperties {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), Principal.VIA_OIDC);
  private static final RequestClassifier CLASSIFIER = new RequestClassifier("");
  private static final ApprovalRules RULES =
      new ApprovalRules(
          PolicyLoader.parse(
                  """
      version: 1
      approval:
        reviewers: [sec]
        rules:
          - {name: plain, prompt-matches: "dump all"}
      """,
                  "policy")
              .approval());
  private static final ApprovalRules SPEC =
      new ApprovalRules(
          PolicyLoader.parse(
                  """
      version: 1
      approval:
        reviewers: [sec]
        rules:
          - {name: spec, prompt-matches: "(?i)\\\\b(dump|export|list) (all|every)\\\\b"}
      """,
                  "policy")
              .approval());

  /** Ways to write each letter of the phrase that a reader takes for it. */
  private static final List<List<String>> LOOK_ALIKES =
      List.of(
          List.of(
              "d",
              "D",
              "\u0501",
              "\uFF44",
              "\uFF24",
              "\uD835\uDC1D",
              "\u217E"), // d: Cyrillic komi de, fullwidth, math bold, roman numeral
          List.of(
              "u",
              "U",
              "\u057D",
              "\uFF55",
              "\uD835\uDC2E",
              "\u028B"), // u: Armenian seh, fullwidth, math bold, v-hook
          List.of(
              "m",
              "M",
              "rn",
              "\uFF4D",
              "\uD835\uDC26",
              "\u217F",
              "\u041C"), // m: rn, fullwidth, math bold, roman numeral, Cyrillic EM
          List.of(
              "p", "P", "\u0440", "\u03C1", "\uFF50",
              "\u0420"), // p: Cyrillic er, Greek rho, fullwidth
          List.of(
              "a",
              "A",
              "\u0430",
              "\u0410",
              "\u03B1",
              "\uFF41",
              "\uD835\uDC1A"), // a: Cyrillic a, Greek alpha, fullwidth
          List.of(
              "l", "L", "I", "1", "|", "\u04CF", "\u0399", "\uFF4C", "\u217C",
              "\u01C0")); // l: capital i, one, bar, palochka, iota...

  /** Invisible characters a reader does not see. */
  private static final List<String> INVISIBLE =
      List.of(
          "\u200D",
          "\u200C",
          "\u200B",
          "\u00AD",
          "\uFEFF",
          "\u2060",
          "\u200E",
          "\u202E",
          "\u2066",
          "\uFE0F",
          "\u034F",
          "\uDB40\uDC01",
          "\u0007");

  private static final List<String> SPACES =
      List.of(
          " ", "  ", "\u00A0", "\n", "\r\n", "\t", "\u2003", "\u3000", "\u2028", "\u0085", " \n ");

  /** A disguised word: each letter written some way a reader takes for it, maybe followed by an invisible character. */
  private static Arbitrary<String> disguised(int... letters) {
    return Combinators.combine(
            Arbitraries.integers().between(0, 1 << 20).list().ofSize(letters.length),
            Arbitraries.integers().between(0, 99).list().ofSize(letters.length))
        .as(
            (choices, invisible) -> {
              StringBuilder b = new StringBuilder();
              for (int i = 0; i < letters.length; i++) {
                List<String> ways = LOOK_ALIKES.get(letters[i]);
                b.append(ways.get(choices.get(i) % ways.size()));
                if (invisible.get(i) < 40)
                  b.append(INVISIBLE.get(invisible.get(i) % INVISIBLE.size()));
              }
              return b.toString();
            });
  }

  @Provide
  Arbitrary<String> dump() {
    return disguised(0, 1, 2, 3);
  }

  @Provide
  Arbitrary<String> all() {
    return disguised(4, 5, 5);
  }

  @Provide
  Arbitrary<String> space() {
    return Arbitraries.of(SPACES);
  }

  @Provide
  Arbitrary<String> anyText() {
    return Arbitraries.strings().all().ofMaxLength(40);
  }

  /** Text close to the phrase: its letters, look-alikes, spaces and invisible characters. */
  @Provide
  Arbitrary<String> nearMisses() {
    return Arbitraries.strings()
        .withChars("dumpalDUMPAL rnI1|\u0430\u0501\u200D\u00AD\n")
        .ofMaxLength(14);
  }

  private static String match(ApprovalRules rules, List<String> contents) throws Exception {
    ObjectNode body = JSON.createObjectNode().put("model", "m");
    ArrayNode messages = body.putArray("messages");
    for (String c : contents) messages.addObject().put("role", "user").put("content", c);
    return rules.match(
        ALICE,
        CLASSIFIER.classify(
            "POST",
            "/v1/chat/completions",
            JSON.writeValueAsString(body).getBytes(StandardCharsets.UTF_8)));
  }

  @Property(tries = 300)
  void aDisguisedPhraseAmongOtherTextIsFound(
      @ForAll("dump") String dump,
      @ForAll("space") String space,
      @ForAll("all") String all,
      @ForAll("anyText") String before,
      @ForAll("anyText") String after)
      throws Exception {
    String phrase = dump + space + all;
    assertThat(match(RULES, List.of(before + " " + phrase + " " + after))).isEqualTo("plain");
    assertThat(match(SPEC, List.of(before + " " + phrase + " " + after))).isEqualTo("spec");
  }

  @Property(tries = 200)
  void aDisguisedPhraseSplitAcrossMessagesIsFound(
      @ForAll("dump") String dump,
      @ForAll("all") String all,
      @ForAll("anyText") String before,
      @ForAll("anyText") String after)
      throws Exception {
    assertThat(match(RULES, List.of(before, before + " " + dump, all + " " + after)))
        .isEqualTo("plain");
  }

  @Property(tries = 300)
  void theRuleMatchesExactlyTheTextsWhoseSkeletonHoldsThePhrase(@ForAll("nearMisses") String text)
      throws Exception {
    boolean holds =
        ReaderText.skeleton(ReaderText.reader(text, false)).contains("durnp all")
            || ReaderText.skeleton(ReaderText.reader(text, true)).contains("durnp all");
    assertThat(match(RULES, List.of(text))).isEqualTo(holds ? "plain" : null);
  }

  /** Pattern-like strings: syntax, escapes, classes and literals with multi-character or empty skeletons. */
  @Provide
  Arbitrary<String> patterns() {
    return Arbitraries.of(
            "a",
            "m",
            "M",
            "\u00E9",
            "\u200B",
            " ",
            "\u00A0",
            "(",
            ")",
            "(?:",
            "(?i)",
            "(?<n>",
            "[",
            "]",
            "[^",
            "{2}",
            "{0,3}",
            "?",
            "??",
            "|",
            ".",
            "^",
            "$",
            "\\",
            "\\b",
            "\\d",
            "\\s",
            "\\.",
            "\\n",
            "\\x{430}",
            "\\u0041",
            "\\p{L}",
            "\\cJ",
            "\\A",
            "\\z",
            "-",
            "&&",
            "\uFB00",
            "%",
            "\uD835\uDC1D")
        .list()
        .ofMaxSize(10)
        .map(parts -> String.join("", parts));
  }

  @Property(tries = 2000)
  void everyAllowedPatternHasASkeletonPatternThatCompiles(@ForAll("patterns") String regex) {
    try {
      dev.inferpam.core.internal.masking.CustomPatterns.check(regex);
    } catch (IllegalArgumentException notAllowed) {
      return;
    }
    java.util.regex.Pattern.compile(ReaderText.skeletonPattern(regex).regex());
  }
}
