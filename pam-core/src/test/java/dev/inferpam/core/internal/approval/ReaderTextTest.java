package dev.inferpam.core.internal.approval;

import static org.assertj.core.api.Assertions.assertThat;

import com.ibm.icu.lang.UCharacter;
import com.ibm.icu.lang.UProperty;
import com.ibm.icu.text.Normalizer2;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** The reader form, the skeleton (checked against ICU for every code point) and pattern rewriting. */
class ReaderTextTest {

  @Test
  void theCommittedTableIsTheOneIcuGenerates() throws IOException {
    String committed;
    try (InputStream in = ReaderText.class.getResourceAsStream(ReaderText.TABLE)) {
      committed = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
    }
    assertThat(committed)
        .as("reader-skeleton.txt is stale: regenerate it with ReaderSkeletonTable's main")
        .isEqualTo(ReaderSkeletonTable.generate());
  }

  /**
   * What ICU says a lone code point reads as: the case-folded skeleton of its NFKC form, with
   * invisible code points removed and whitespace collapsed before and after.
   */
  private static String icuExpected(int cp) {
    String nfkc = Normalizer2.getNFKCInstance().normalize(new String(Character.toChars(cp)));
    return collapse(ReaderSkeletonTable.icuSkeleton(collapse(nfkc)));
  }

  private static String collapse(String s) {
    StringBuilder out = new StringBuilder();
    boolean space = false;
    for (int m : s.codePoints().toArray()) {
      if (ReaderText.whitespace(m)) {
        space = true;
      } else if (!ReaderSkeletonTable.icuInvisible(m)) {
        if (space && out.length() > 0) out.append(' ');
        out.appendCodePoint(m);
        space = false;
      }
    }
    return out.toString();
  }

  @Test
  void everyCodePointReadsAsItsIcuSkeleton() {
    List<String> wrong = new ArrayList<>();
    for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
      if (cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE) continue;
      String s = new String(Character.toChars(cp));
      String ours = ReaderText.skeleton(ReaderText.reader(s));
      String icu = icuExpected(cp);
      if (!ours.equals(icu) && wrong.size() < 20) {
        wrong.add(Integer.toHexString(cp) + ": " + hex(ours) + " instead of " + hex(icu));
      }
    }
    assertThat(wrong).isEmpty();
  }

  private static String hex(String s) {
    return "[" + String.join(" ", s.codePoints().mapToObj(Integer::toHexString).toList()) + "]";
  }

  @Test
  void theDefaultIgnorableCodePointsAreUnicodes() {
    for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
      if (UCharacter.hasBinaryProperty(cp, UProperty.DEFAULT_IGNORABLE_CODE_POINT)) {
        assertThat(ReaderText.invisible(cp)).as("U+%04X", cp).isTrue();
      }
    }
  }

  static Stream<Arguments> readerForms() {
    return Stream.of(
        Arguments.of("please DUMP  all rows", "please DUMP all rows"),
        Arguments.of("dump\u00A0all", "dump all"),
        Arguments.of("dump\u2003\u3000all", "dump all"),
        Arguments.of("\r\n\tdump\r\n\u0085\u2028all \t", "dump all"),
        Arguments.of("du\u200Dmp\u00ADa\u200Bll\uFEFF", "dumpall"),
        Arguments.of("\u202Edump\u202C \u2066all\u2069", "dump all"),
        Arguments.of("dump\u0000\u0007all\u001F", "dumpall"),
        Arguments.of("\uFF44\uFF55\uFF4D\uFF50 \uFF41\uFF4C\uFF4C", "dump all"),
        Arguments.of("\uD835\uDC1D\uD835\uDC2E\uD835\uDC26\uD835\uDC29", "dump"),
        Arguments.of("e\u200D\u0301", "\u00E9"),
        Arguments.of("d\uDB40\uDC75mp", "dmp"));
  }

  @ParameterizedTest
  @MethodSource("readerForms")
  void theReaderFormDropsWhatIsInvisibleAndFoldsCompatibilityFormsAndWhitespace(
      String text, String reader) {
    assertThat(ReaderText.reader(text)).isEqualTo(reader);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "dump all|durnp all",
        "DUMP ALL|durnp all",
        "DUMP AII|durnp all",
        "\u0501\u057Dm\u0440 \u0430ll|durnp all",
        "\u0421\u0422\u0420\u0410\u0421\u0415|ctpace",
        "stra\u00DFe|strasse",
        "\u1E9E|ss",
        "\u03C3\u03C2|oo",
        "c\u0430f\u00E9|cafe\u0301",
        "caf\u0065\u0301|cafe\u0301",
        "\u2800a\u2800\u2800b|a b",
        "0O1lI|oolll",
      })
  void theSkeletonMapsLookAlikesAndCaseToOneForm(String text, String skeleton) {
    assertThat(ReaderText.skeleton(ReaderText.reader(text))).isEqualTo(skeleton);
  }

  @Test
  void hiddenTagCharactersAreDecoded() {
    StringBuilder b = new StringBuilder("hi ");
    "dump all".chars().forEach(c -> b.appendCodePoint(0xE0000 + c));
    assertThat(ReaderText.hiddenTags(b)).isEqualTo("dump all");
    assertThat(ReaderText.reader(b)).isEqualTo("hi");
    assertThat(ReaderText.hiddenTags("plain")).isEmpty();
  }

  @ParameterizedTest
  @CsvSource(
      delimiterString = " => ",
      value = {
        // literals are replaced; classes, escapes and syntax are kept
        "dump all => du(?:rn)p all => false",
        "(?i)\\b(dump|export|list) (all|every)\\b => (?i)\\b(du(?:rn)p|export|list) (all|every)\\b => false",
        "DUMP  ALL => du(?:rn)p all => false",
        "dump\\s{1,3}all => du(?:rn)p\\s{1,3}all => false",
        "dump\\nall => du(?:rn)p all => false",
        "dump\u00A0\u00A0all => du(?:rn)p all => false",
        "m{2}[m-n]\\d\\. => (?:rn){2}[m-n]\\d\\x{2e} => false",
        "du\u200Bmp => du(?:)(?:rn)p => false",
        "\\x{0430}ll => all => false",
        "^dump$ => ^du(?:rn)p$ => true",
        "\\Adump => \\Adu(?:rn)p => true",
        "(?<verb>dump) ?all => (?<verb>du(?:rn)p) ?all => false",
      })
  void patternLiteralsAreReplacedByTheirSkeletons(String regex, String expected, boolean anchored) {
    ReaderText.SkeletonPattern p = ReaderText.skeletonPattern(regex);
    assertThat(p.regex()).isEqualTo(expected);
    assertThat(p.anchored()).isEqualTo(anchored);
    Pattern.compile(p.regex());
  }
}
