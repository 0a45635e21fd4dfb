package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The one-pass index finds exactly the candidates its class comment lists: compared with a plain
 * reading of that comment, char by char, on texts short (read through the text) and long (read
 * through a Latin-1 copy, eight bytes at a time where none can start a candidate), with chars
 * outside Latin-1 and surrogate pairs, from any start and, for stream windows, up to any limit.
 */
class IndexedTextProperties {
  /** Chars that start or border candidates, prose, and chars outside ASCII and Latin-1. */
  private static final String ALPHABET = "0123456789AZQJ@:+(eyJ-_ abcxyz.,\"é\u20ac";

  private static final String SURROGATE_PAIR = "\ud83d\ude00";

  @Provide
  Arbitrary<String> texts() {
    Arbitrary<String> piece =
        Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(
                12,
                Arbitraries.of(ALPHABET.chars().mapToObj(c -> String.valueOf((char) c)).toList())),
            net.jqwik.api.Tuple.of(
                6, Arbitraries.of("the quick brown fox ", "jumps over the lazy dog ", "and then ")),
            net.jqwik.api.Tuple.of(
                2,
                Arbitraries.of(
                    "eyJhbGciOi",
                    "AKIA",
                    "+44 20",
                    "(415) ",
                    "a@b.co",
                    "fe80::1",
                    "-----BEGIN ",
                    "GB82WEST")),
            net.jqwik.api.Tuple.of(1, Arbitraries.just(SURROGATE_PAIR)));
    return piece.list().ofMaxSize(120).map(l -> String.join("", l));
  }

  @Provide
  Arbitrary<int[]> fromAndLimit() {
    return Combinators.combine(
            Arbitraries.integers().between(0, 1000), Arbitraries.integers().between(0, 1000))
        .as((a, b) -> new int[] {a, b});
  }

  @Property(tries = 1500)
  void theWholeTextFromAnyStartHasTheCandidatesTheRulesGive(
      @ForAll("texts") String text, @ForAll("fromAndLimit") int[] fl) {
    int from = text.isEmpty() ? 0 : fl[0] % (text.length() + 1);
    assertSame(IndexedText.of(text, from), new Reference(text, from, text.length()));
  }

  @Property(tries = 1500)
  void aWindowUpToAnyLimitHasTheCandidatesTheRulesGive(
      @ForAll("texts") String text, @ForAll("fromAndLimit") int[] fl) {
    int from = text.isEmpty() ? 0 : fl[0] % (text.length() + 1);
    int limit = from + (text.length() - from == 0 ? 0 : fl[1] % (text.length() - from + 1));
    assertSame(IndexedText.of(text, from, limit), new Reference(text, from, limit));
  }

  @Example
  void longProseWithNothingInItIsQuietAndOneCandidateAnywhereIsFound() {
    String prose =
        "the deployment pipeline stalled after the cache layer began returning stale entries, "
            .repeat(12);
    assertThat(IndexedText.of(prose, 0).quiet()).isTrue();
    for (String mark : List.of("7", "Q", "@", ":", "eyJ")) {
      for (int at = 0; at < 16; at++) {
        String text = prose.substring(0, 500 + at) + " " + mark + " " + prose.substring(500 + at);
        IndexedText index = IndexedText.of(text, 0);
        assertThat(index.quiet()).as("%s at %d", mark, 500 + at).isEqualTo(mark.equals("Q"));
        assertSame(index, new Reference(text, 0, text.length()));
      }
    }
  }

  @Example
  void theEightCharTestNeverPassesOverACharThatCanStartACandidate() {
    String inClass = "0123456789@:ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int v = 0; v < 256; v++) {
      for (int at = 0; at < 8; at++) {
        long w =
            0x2020202020202020L & ~(0xFFL << (8 * at)) | ((long) v << (8 * at)); // spaces and v
        if (inClass.indexOf((char) v) >= 0) {
          assertThat(IndexedText.mayStartCandidate(w)).as("char %d at %d", v, at).isTrue();
        }
      }
    }
    long prose =
        java.nio.ByteBuffer.wrap("ed thing".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1))
            .order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .getLong();
    assertThat(IndexedText.mayStartCandidate(prose)).isFalse();
  }

  private static void assertSame(IndexedText index, Reference ref) {
    assertThat(list(index.digitRuns())).as("digit runs").isEqualTo(ref.digitRuns);
    assertThat(list(index.signs())).as("signs").isEqualTo(ref.signs);
    assertThat(list(index.ats())).as("ats").isEqualTo(ref.ats);
    assertThat(list(index.upperPairs())).as("upper pairs").isEqualTo(ref.upperPairs);
    assertThat(list(index.colons())).as("colons").isEqualTo(ref.colons);
    assertThat(list(index.eyJ())).as("eyJ").isEqualTo(ref.eyJ);
  }

  private static List<Integer> list(IndexedText.Positions p) {
    return Arrays.stream(Arrays.copyOf(p.positions(), p.count())).boxed().toList();
  }

  /** The class comment's rules, char by char, for candidates starting in {@code [from, limit)}. */
  private static final class Reference {
    final List<Integer> digitRuns = new ArrayList<>();
    final List<Integer> signs = new ArrayList<>();
    final List<Integer> ats = new ArrayList<>();
    final List<Integer> upperPairs = new ArrayList<>();
    final List<Integer> colons = new ArrayList<>();
    final List<Integer> eyJ = new ArrayList<>();

    Reference(String t, int from, int limit) {
      int n = t.length();
      for (int i = from; i < Math.min(n, limit + 1); i++) {
        char c = t.charAt(i);
        char prev = i > 0 ? t.charAt(i - 1) : ' ';
        if (isDigit(c) && !isDigit(prev)) {
          // a sign right before a run that starts at the limit still counts (its number starts
          // before)
          if ((prev == '+' || prev == '(') && i - 1 >= from) signs.add(i - 1);
          if (i < limit) digitRuns.add(i);
        }
        if (i >= limit) continue;
        if (c == '@') ats.add(i);
        if (c == ':') colons.add(i);
        if (isUpper(c) && i + 1 < n && isUpper(t.charAt(i + 1)) && !isAlnum(prev))
          upperPairs.add(i);
      }
      for (int e = from; e < limit && e + 2 < n; e++) {
        if (t.startsWith("eyJ", e) && (e == 0 || !IndexedText.isB64(t.charAt(e - 1)))) eyJ.add(e);
      }
    }

    static boolean isDigit(char c) {
      return c >= '0' && c <= '9';
    }

    static boolean isUpper(char c) {
      return c >= 'A' && c <= 'Z';
    }

    static boolean isAlnum(char c) {
      return isDigit(c) || isUpper(c) || (c >= 'a' && c <= 'z');
    }
  }
}
