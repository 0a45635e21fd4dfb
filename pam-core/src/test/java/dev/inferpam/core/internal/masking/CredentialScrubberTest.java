package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The exact credential values of an exchange, found however the bytes are cut. */
class CredentialScrubberTest {
  private static final String UPSTREAM = "sk-upstream/0123456789+abcdef==";
  private static final String CALLER = "caller-key-0001";
  private static final CredentialScrubber SCRUBBER =
      CredentialScrubber.of(Arrays.asList("Bearer " + UPSTREAM, CALLER, null));

  private static String run(String text, int... cuts) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    CredentialScrubber.Stream s = SCRUBBER.open();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int from = 0;
    for (int cut : cuts) {
      out.writeBytes(s.push(b, from, cut - from));
      from = cut;
    }
    out.writeBytes(s.push(b, from, b.length - from));
    out.writeBytes(s.finish());
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void everyFormIsReplacedByALabelOfTheSameLength() {
    String text =
        "auth=Bearer "
            + UPSTREAM
            + " token="
            + UPSTREAM
            + " json=\"sk-upstream\\/0123456789+abcdef==\""
            + " url=sk-upstream%2F0123456789%2Babcdef%3D%3D key="
            + CALLER
            + ".";
    String out = run(text);
    assertThat(out).doesNotContain("upstream").doesNotContain("0123456789").doesNotContain(CALLER);
    assertThat(out).hasSameSizeAs(text);
    assertThat(out)
        .startsWith(
            "auth=[REDACTED:credential"
                + "*".repeat(("Bearer " + UPSTREAM).length() - 21)
                + "] token=");
    assertThat(out).endsWith("key=[*************].");
    assertThat(SCRUBBER.scrub(text)).isEqualTo(out);
  }

  @Test
  void theOutputDoesNotDependOnWhereTheBytesWereCut() {
    String text = "x Bearer " + UPSTREAM + " y " + CALLER + CALLER + " Bearer sk-up z sk-upstrea";
    String whole = run(text);
    assertThat(whole)
        .doesNotContain(UPSTREAM)
        .doesNotContain(CALLER)
        .endsWith(" Bearer sk-up z sk-upstrea");
    for (int a = 0; a <= text.length(); a++) {
      assertThat(run(text, a)).as("cut at %d", a).isEqualTo(whole);
      for (int b = a; b <= text.length(); b += 7) assertThat(run(text, a, b)).isEqualTo(whole);
    }
    int[] every = new int[text.length() - 1];
    for (int i = 0; i < every.length; i++) every[i] = i + 1;
    assertThat(run(text, every)).isEqualTo(whole);
  }

  @Test
  void onlyAPossibleStartIsHeldAndACleanChunkPassesWithoutACopy() {
    CredentialScrubber.Stream s = SCRUBBER.open();
    byte[] clean = "no secret here at all".getBytes(StandardCharsets.UTF_8);
    assertThat(s.push(clean, 0, clean.length)).isSameAs(clean);
    byte[] partial = "then Bearer sk-upst".getBytes(StandardCharsets.UTF_8);
    assertThat(new String(s.push(partial, 0, partial.length), StandardCharsets.UTF_8))
        .isEqualTo("then ");
    byte[] rest = "ART".getBytes(StandardCharsets.UTF_8);
    assertThat(new String(s.push(rest, 0, rest.length), StandardCharsets.UTF_8))
        .isEqualTo("Bearer sk-upstART");
    assertThat(s.finish()).isEmpty();
    assertThat(s.found()).isZero();
  }

  @Test
  void shortOrMissingValuesAreNotLookedFor() {
    assertThat(CredentialScrubber.of(List.of("short", "Basic x"))).isNull();
    assertThat(CredentialScrubber.of(List.of())).isNull();
    CredentialScrubber s = CredentialScrubber.of(List.of("Bearer abcdefgh"));
    assertThat(s.scrub("abcdefgh")).isEqualTo("[******]");
    assertThat(s.holds("x-abcdefgh")).isTrue();
    assertThat(s.holds("abcdefg")).isFalse();
  }
}
