package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * A body made of random text, credential forms and their prefixes, cut into random pieces: the
 * streamed output equals scrubbing the whole text, holds no credential, and keeps the length.
 */
class CredentialScrubberProperties {
  private static final String TOKEN = "sk-live/0123456789+abcdef==";
  private static final String KEY = "caller-key-0001";
  private static final CredentialScrubber SCRUBBER =
      CredentialScrubber.of(List.of("Bearer " + TOKEN, KEY));

  @Provide
  Arbitrary<String> bodies() {
    Arbitrary<String> piece =
        Arbitraries.oneOf(
            Arbitraries.strings().withChars("abcsk-/\\\"BearCl0123 é\n").ofMaxLength(12),
            Arbitraries.of(
                "Bearer " + TOKEN,
                TOKEN,
                KEY,
                "sk-live\\/0123456789+abcdef==",
                "sk-live%2F0123456789%2Babcdef%3D%3D",
                "Bearer sk-li",
                "caller-key-000",
                "sk-live/0123"));
    return piece.list().ofMaxSize(12).map(l -> String.join("", l));
  }

  @Property(tries = 500)
  void streamedEqualsWholeLeaksNothingAndKeepsTheLength(
      @ForAll("bodies") String body, @ForAll("cuts") List<Integer> cuts) {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    CredentialScrubber.Stream s = SCRUBBER.open();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int at = 0;
    for (int c : cuts) {
      int to = Math.min(b.length, at + c);
      out.writeBytes(s.push(b, at, to - at));
      at = to;
    }
    out.writeBytes(s.push(b, at, b.length - at));
    out.writeBytes(s.finish());
    String streamed = out.toString(StandardCharsets.UTF_8);
    assertThat(streamed).isEqualTo(SCRUBBER.scrub(body));
    assertThat(streamed)
        .doesNotContain(TOKEN)
        .doesNotContain(KEY)
        .doesNotContain("0123456789+abcdef");
    assertThat(out.size()).isEqualTo(b.length);
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return Arbitraries.integers().between(0, 9).list().ofMaxSize(20);
  }
}
