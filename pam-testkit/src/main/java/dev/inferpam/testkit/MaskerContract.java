package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Masker;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link Masker} implementations: extend it in a JUnit 5 test, give a
 * masker and texts holding values it must mask, and the tests check what the engine relies on
 * when it masks a streamed response — a value is masked wherever the stream splits the text
 * (the output of a session fed any pieces equals {@link Masker#mask} of the whole), text without
 * such values passes unchanged and whole, a session holds back a bounded tail only, sessions are
 * independent, and the shared masker is thread-safe.
 *
 * <pre>{@code
 * class MyMaskerContractTest extends MaskerContract {
 *   protected Masker createMasker() { return new MyMasker(); }
 *   protected List<Sensitive> sensitiveSamples() {
 *     return List.of(new Sensitive("call me at +1 415 555 2671 today", "+1 415 555 2671"));
 *   }
 * }
 * }</pre>
 *
 * <p>Splits are at code point boundaries, as the engine splits decoded text.
 */
public abstract class MaskerContract {

  /** For a masker's test class to extend. */
  protected MaskerContract() {}

  /**
   * A text holding a value the masker must mask.
   *
   * @param text  the text
   * @param value the value inside it that must not reach the output
   */
  protected record Sensitive(String text, String value) {
    public Sensitive {
      Objects.requireNonNull(text, "text");
      Objects.requireNonNull(value, "value");
      if (!text.contains(value))
        throw new IllegalArgumentException("the text must contain the value");
    }
  }

  /** A new masker; called once per test. */
  protected abstract Masker createMasker() throws Exception;

  /** Texts holding values the masker must mask; empty for a masker that masks nothing. */
  protected abstract List<Sensitive> sensitiveSamples();

  /** A text the masker leaves exactly as it is; default a short paragraph of plain prose. */
  protected String cleanText() {
    return "The quick brown fox jumps over the lazy dog. Streaming answers arrive in pieces, "
        + "and each piece must reach the reader intact: nothing lost, nothing doubled, nothing reordered. ";
  }

  /** Most text a session may hold back before {@link Masker.Session#finish()}, in chars; default 64 KiB. */
  protected int maxHoldBack() {
    return 64 * 1024;
  }

  private static String feed(Masker masker, List<String> pieces) {
    Masker.Session s = masker.open();
    StringBuilder out = new StringBuilder();
    for (String p : pieces) out.append(s.push(p));
    out.append(s.finish());
    return out.toString();
  }

  /** {@code text} in pieces of {@code size} code points. */
  private static List<String> pieces(String text, int size) {
    List<String> out = new ArrayList<>();
    int i = 0;
    while (i < text.length()) {
      int end = i;
      for (int n = 0; n < size && end < text.length(); n++) end = text.offsetByCodePoints(end, 1);
      out.add(text.substring(i, end));
      i = end;
    }
    return out;
  }

  private List<String> texts() {
    List<String> out = new ArrayList<>();
    out.add(cleanText());
    for (Sensitive s : sensitiveSamples()) out.add(s.text());
    return out;
  }

  // ------------------------------------------------------------------------------------- tests

  @Test
  void aSensitiveValueIsMaskedInTheWholeText() throws Exception {
    Masker masker = createMasker();
    for (Sensitive s : sensitiveSamples()) {
      assertThat(masker.mask(s.text())).as("mask(%s)", s.text()).doesNotContain(s.value());
    }
  }

  @Test
  void maskingTheWholeTextEqualsOneSessionGivenItAtOnce() throws Exception {
    Masker masker = createMasker();
    for (String t : texts()) assertThat(feed(masker, List.of(t))).isEqualTo(masker.mask(t));
  }

  @Test
  void aSensitiveValueIsMaskedWhereverTheTextIsSplitInTwo() throws Exception {
    Masker masker = createMasker();
    for (Sensitive s : sensitiveSamples()) {
      String whole = masker.mask(s.text());
      String t = s.text();
      for (int i = 0; i <= t.length(); i = i == t.length() ? i + 1 : t.offsetByCodePoints(i, 1)) {
        String out = feed(masker, List.of(t.substring(0, i), t.substring(i)));
        assertThat(out).as("split at %d of %s", i, t).isEqualTo(whole).doesNotContain(s.value());
      }
    }
  }

  @Test
  void aSensitiveValueIsMaskedWhenTheTextArrivesInSmallPieces() throws Exception {
    Masker masker = createMasker();
    for (Sensitive s : sensitiveSamples()) {
      String whole = masker.mask(s.text());
      for (int size : new int[] {1, 2, 3, 5, 8, 13}) {
        assertThat(feed(masker, pieces(s.text(), size)))
            .as("pieces of %d of %s", size, s.text())
            .isEqualTo(whole);
      }
    }
  }

  @Test
  void cleanTextPassesUnchangedAndWholeHoweverItIsSplit() throws Exception {
    Masker masker = createMasker();
    String clean = cleanText();
    assertThat(masker.mask(clean)).isEqualTo(clean);
    for (int size : new int[] {1, 4, 7, 64, 1000}) {
      assertThat(feed(masker, pieces(clean, size))).as("pieces of %d", size).isEqualTo(clean);
    }
  }

  @Test
  void textOutsideAsciiPassesWholeInPiecesOfCodePoints() throws Exception {
    Masker masker = createMasker();
    String text =
        "Grüße aus Zürich — naïve café, 東京, Ελλάδα, emoji \uD83D\uDE80\uD83C\uDF89 done. ";
    String whole = masker.mask(text);
    for (int size : new int[] {1, 3, 10})
      assertThat(feed(masker, pieces(text, size))).isEqualTo(whole);
  }

  @Test
  void emptyPiecesChangeNothing() throws Exception {
    Masker masker = createMasker();
    for (String t : texts()) {
      List<String> withEmpties = new ArrayList<>();
      for (String p : pieces(t, 5)) {
        withEmpties.add("");
        withEmpties.add(p);
      }
      withEmpties.add("");
      assertThat(feed(masker, withEmpties)).isEqualTo(masker.mask(t));
    }
    assertThat(masker.open().finish()).as("a session fed nothing").isEmpty();
  }

  @Test
  void aSessionHoldsBackABoundedTailOnly() throws Exception {
    Masker masker = createMasker();
    String clean = cleanText();
    StringBuilder input = new StringBuilder();
    while (input.length() < 3 * maxHoldBack()) input.append(clean);
    Masker.Session s = masker.open();
    StringBuilder released = new StringBuilder();
    for (String p : pieces(input.toString(), 512)) released.append(s.push(p));

    assertThat(released.length())
        .as("released before finish()")
        .isGreaterThanOrEqualTo(input.length() - maxHoldBack());
    released.append(s.finish());
    assertThat(released.toString()).isEqualTo(input.toString());
  }

  @Test
  void sessionsAreIndependent() throws Exception {
    Masker masker = createMasker();
    List<String> texts = texts();
    List<Masker.Session> sessions = new ArrayList<>();
    List<StringBuilder> outs = new ArrayList<>();
    List<List<String>> pieces = new ArrayList<>();
    for (String t : texts) {
      sessions.add(masker.open());
      outs.add(new StringBuilder());
      pieces.add(pieces(t, 3));
    }
    // Interleaved: piece i of every text, then piece i + 1.
    for (int i = 0; ; i++) {
      boolean any = false;
      for (int k = 0; k < texts.size(); k++) {
        if (i < pieces.get(k).size()) {
          outs.get(k).append(sessions.get(k).push(pieces.get(k).get(i)));
          any = true;
        }
      }
      if (!any) break;
    }
    for (int k = 0; k < texts.size(); k++) {
      outs.get(k).append(sessions.get(k).finish());
      assertThat(outs.get(k).toString()).isEqualTo(masker.mask(texts.get(k)));
    }
  }

  @Test
  void countsAreNeverNegative() throws Exception {
    Masker masker = createMasker();
    for (String t : texts()) {
      Masker.Session s = masker.open();
      s.push(t);
      s.finish();
      Map<String, Integer> counts = s.counts();
      assertThat(counts).as("counts()").isNotNull();
      counts.forEach((detector, n) -> assertThat(n).as(detector).isNotNull().isNotNegative());
    }
  }

  @Test
  void aSharedMaskerIsThreadSafe() throws Exception {
    Masker masker = createMasker();
    List<String> texts = texts();
    List<String> expected = new ArrayList<>();
    for (String t : texts) expected.add(masker.mask(t));
    int threads = 8;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Void>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int size = 1 + t;
        done.add(
            pool.submit(
                (Callable<Void>)
                    () -> {
                      for (int round = 0; round < 50; round++) {
                        for (int k = 0; k < texts.size(); k++) {
                          assertThat(feed(masker, pieces(texts.get(k), size)))
                              .isEqualTo(expected.get(k));
                        }
                      }
                      return null;
                    }));
      }
      for (Future<Void> f : done) f.get(60, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
  }
}
