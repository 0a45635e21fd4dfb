package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy.MaskStrategy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The streaming session against the block masker: for random prose seeded with values of every
 * detector, split at random positions, the streamed output equals masking the whole text, and no
 * seeded value survives.
 */
class StreamingMaskerProperties {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);

  /** A text and the raw values seeded into it. */
  record Seeded(String text, List<String> values) {}

  @Provide
  Arbitrary<Seeded> texts() {
    List<String> values = new ArrayList<>();
    MaskingSamples.VALUES.values().forEach(values::addAll);
    Arbitrary<String> token =
        Arbitraries.frequencyOf(
            net.jqwik.api.Tuple.of(4, Arbitraries.of(MaskingSamples.WORDS)),
            net.jqwik.api.Tuple.of(1, Arbitraries.of(values)));
    Arbitrary<String> sep = Arbitraries.of(MaskingSamples.SEPARATORS);
    return Combinators.combine(token, sep)
        .as((t, s) -> t + s)
        .list()
        .ofMinSize(1)
        .ofMaxSize(60)
        .map(
            parts -> {
              StringBuilder text = new StringBuilder();
              List<String> seeded = new ArrayList<>();
              for (String p : parts) {
                text.append(p);
                for (String v : values) {
                  if (p.startsWith(v)) seeded.add(v);
                }
              }
              return new Seeded(text.toString(), seeded);
            });
  }

  @Property(tries = 1000)
  void streamedEqualsBlockAndLeaksNothing(
      @ForAll("texts") Seeded seeded, @ForAll("cuts") List<Integer> cutSeeds) {
    String text = seeded.text();
    String block = MASKER.mask(text);
    String streamed = stream(text, cuts(text.length(), cutSeeds));
    assertThat(streamed).isEqualTo(block);
    for (String v : seeded.values()) assertThat(streamed).doesNotContain(v);
  }

  @Property(tries = 50)
  void oneCharAtATimeEqualsBlock(@ForAll("texts") Seeded seeded) {
    String text = seeded.text();
    Masker.Session s = MASKER.open();
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < text.length(); i++) out.append(s.push(String.valueOf(text.charAt(i))));
    out.append(s.finish());
    assertThat(out.toString()).isEqualTo(MASKER.mask(text));
  }

  @Example
  void everyTwoWaySplitOfAllDetectorsEqualsBlock() {
    StringBuilder b = new StringBuilder("Summary: ");
    MaskingSamples.VALUES.forEach(
        (name, values) -> values.forEach(v -> b.append(v).append(", then ")));
    String text = b.append("done.").toString();
    String block = MASKER.mask(text);
    for (List<String> values : MaskingSamples.VALUES.values()) {
      for (String v : values) assertThat(block).doesNotContain(v);
    }
    for (int at = 0; at <= text.length(); at++) {
      TreeSet<Integer> cut = new TreeSet<>(List.of(at));
      assertThat(stream(text, cut)).as("split at %d", at).isEqualTo(block);
    }
  }

  @Example
  void anAddressAfterDotsIsMaskedWhereverTheStreamIsCut() {
    // Found by BodyMaskerFuzzTest: a release point right after the dot of " .alice@..." made the
    // e-mail detector take the dot for part of a longer local part and pass the address unmasked.
    for (String text :
        List.of(
            " .alice@example.com ",
            "mail .alice@example.com now",
            "x ..bob@example.org.",
            ".carol@example.net ")) {
      String block = MASKER.mask(text);
      assertThat(block).doesNotContain("@example");
      Masker.Session s = MASKER.open();
      assertThat(s.push(text) + s.finish()).as("one push of %s", text).isEqualTo(block);
      for (int at = 0; at <= text.length(); at++) {
        assertThat(stream(text, new TreeSet<>(List.of(at))))
            .as("%s split at %d", text, at)
            .isEqualTo(block);
      }
    }
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return Arbitraries.integers().between(0, Integer.MAX_VALUE).list().ofMaxSize(40);
  }

  static TreeSet<Integer> cuts(int length, List<Integer> seeds) {
    TreeSet<Integer> cuts = new TreeSet<>();
    if (length > 0) for (int s : seeds) cuts.add(s % length);
    return cuts;
  }

  static String stream(String text, TreeSet<Integer> cuts) {
    Masker.Session s = MASKER.open();
    StringBuilder out = new StringBuilder();
    int at = 0;
    for (int c : cuts) {
      out.append(s.push(text.substring(at, c)));
      at = c;
    }
    out.append(s.push(text.substring(at)));
    out.append(s.finish());
    Map<String, Integer> counts = s.counts();
    assertThat(counts).isEqualTo(blockCounts(text));
    return out.toString();
  }

  private static Map<String, Integer> blockCounts(String text) {
    Masker.Session whole = MASKER.open();
    whole.push(text);
    whole.finish();
    return whole.counts();
  }
}
