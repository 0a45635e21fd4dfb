package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Card and phone numbers however they are spelled: fullwidth and other Unicode digits (read after
 * NFKC), dots, slashes or no separators, where the checks (Luhn and length, numbering plans) hold;
 * and the look-alikes that must stay.
 */
class NumberSpellingsTest {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), Policy.MaskStrategy.REDACT, null);

  private static String mask(String text) {
    return MASKER.mask(text);
  }

  /** Pushed one char at a time through a session: the same as the whole text. */
  private static String streamed(Masker masker, String text) {
    Masker.Session s = masker.open();
    StringBuilder out = new StringBuilder();
    text.codePoints().forEach(cp -> out.append(s.push(new String(Character.toChars(cp)))));
    return out.append(s.finish()).toString();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "４１１１ １１１１ １１１１ １１１１",
        "４１１１１１１１１１１１１１１１",
        "４１１１－１１１１－１１１１－１１１１",
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111111111111111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111\u20131111\u20131111\u20131111",
        "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
        "5555.5555.5555.4444",
        "378282246310005"
      })
  void cardsAreFoundHoweverSpelled(String card) {
    String text = "pay with " + card + " today";
    assertThat(mask(text)).isEqualTo("pay with [CREDIT_CARD] today");
    assertThat(streamed(MASKER, text)).isEqualTo("pay with [CREDIT_CARD] today");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "415/555-2671",
        "415 555 2671",
        "415/555/2671",
        "415.555-2671",
        "4155552671",
        "14155552671",
        "1/415/555/2671",
        "+1 415 555 2671",
        "+14155552671",
        "+44 20 7946 0958",
        "+44/20/7946/0958",
        "+33.1.23.45.67.89",
        "（４１５） ５５５－２６７１",
        "４１５５５５２６７１",
        "＋４４ ２０ ７９４６ ０９５８",
        "415-555-2671",
        "(415) 555-2671"
      })
  void phonesAreFoundHoweverSpelled(String phone) {
    String text = "call " + phone + " now";
    assertThat(mask(text)).isEqualTo("call [PHONE] now");
    assertThat(streamed(MASKER, text)).isEqualTo("call [PHONE] now");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "pi is 3.4111111111111111 or so",
        "total 4111.1111.1111.1111.5 units",
        "4111111111111112 fails Luhn",
        "ratio 0.4111111111111111",
        "build 1700000000 at noon",
        "id 2115552671 has an N11 area code",
        "id 4915552671 has a 9 in the middle",
        "id 4154115267 has an N11 exchange",
        "date 12/25/2024",
        "version 1.2.3.4.5",
        "order 10234567890",
        "see 415555267 (nine digits)",
        "ts 17000000001234"
      })
  void lookAlikesStay(String text) {
    assertThat(mask(text)).isEqualTo(text);
    assertThat(streamed(MASKER, text)).isEqualTo(text);
  }

  @Test
  void fullwidthEmailIsFoundAndTheOriginalSpellingKeptAroundIt() {
    String text = "ｍａｉｌ ｊｏｈｎ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ ｎｏｗ";
    assertThat(mask(text)).isEqualTo("ｍａｉｌ [EMAIL] ｎｏｗ");
    assertThat(streamed(MASKER, text)).isEqualTo("ｍａｉｌ [EMAIL] ｎｏｗ");
  }

  @Test
  void aPseudonymDoesNotDependOnTheSpelling() {
    BlockMasker hashing =
        new BlockMasker(
            Detectors.all(),
            Policy.MaskStrategy.HASH,
            "0123456789abcdef0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    assertThat(hashing.mask("４１１１ １１１１ １１１１ １１１１")).isEqualTo(hashing.mask("4111 1111 1111 1111"));
  }

  @Test
  void bodyMaskingReadsFoldedDigitsInJsonToo() {
    BodyMasker body = BodyMasker.open(MASKER, "application/json");
    byte[] in =
        "{\"content\":\"card ４１１１ １１１１ １１１１ １１１１\"}"
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    body.push(in, 0, in.length);
    assertThat(new String(body.finish(), java.nio.charset.StandardCharsets.UTF_8))
        .isEqualTo("{\"content\":\"card [CREDIT_CARD]\"}");
    assertThat(body.counts()).isEqualTo(Map.of("credit-card", 1));
  }

  @Test
  void matchesReportSpansOfTheOriginalText() {
    String text = "x ４１１１ １１１１ １１１１ １１１１";
    assertThat(MASKER.matches(text)).isEqualTo(List.of(new Match(2, text.length(), "credit-card")));
  }

  @Test
  void everyBmpCharWhoseNfkcFormIsOnePrintableAsciiCharIsFoldedToIt() {
    for (int c = 0x80; c < 0x10000; c++) {
      if (Character.isSurrogate((char) c)) continue;
      String one = String.valueOf((char) c);
      String n = java.text.Normalizer.normalize(one, java.text.Normalizer.Form.NFKC);
      if (n.length() == 1 && n.charAt(0) >= 0x20 && n.charAt(0) < 0x7F) {
        assertThat(Fold.of(one).toString()).as("U+%04X", c).isEqualTo(n);
      }
    }
    assertThat(Fold.of("plain ascii")).isSameAs("plain ascii");
  }
}
