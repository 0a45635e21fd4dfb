package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link BearerTokens}, also against the simple implementations it replaced. */
class BearerTokensTest {

  /** The former {@code token}: strip, scheme, one space, strip. */
  static String referenceToken(String authorization) {
    if (authorization == null) return null;
    String value = authorization.strip();
    if (value.length() <= 6
        || !value.regionMatches(true, 0, "bearer", 0, 6)
        || value.charAt(6) != ' ') return null;
    String token = value.substring(6).strip();
    return token.isEmpty() ? null : token;
  }

  /** The former {@code isJwtShaped}. */
  static boolean referenceShape(String value) {
    if (value == null || value.isEmpty()) return false;
    int dots = 0;
    int firstPart = -1;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '.') {
        if (++dots > 4) return false;
        if (firstPart < 0) firstPart = i;
      } else if (!((c >= 'A' && c <= 'Z')
          || (c >= 'a' && c <= 'z')
          || (c >= '0' && c <= '9')
          || c == '-'
          || c == '_')) {
        return false;
      }
    }
    return (dots == 2 || dots == 4) && firstPart > 0;
  }

  @Test
  void readsTheTokenOfABearerHeader() {
    assertThat(BearerTokens.token("Bearer abc")).isEqualTo("abc");
    assertThat(BearerTokens.token("bearer abc")).isEqualTo("abc");
    assertThat(BearerTokens.token("BEARER   abc  ")).isEqualTo("abc");
    assertThat(BearerTokens.token(" \tBearer a b\t")).isEqualTo("a b");
    assertThat(BearerTokens.token("Bearer\tabc")).isNull();
    assertThat(BearerTokens.token("Bearer")).isNull();
    assertThat(BearerTokens.token("Bearer ")).isNull();
    assertThat(BearerTokens.token("Bearer    ")).isNull();
    assertThat(BearerTokens.token("Bearerabc")).isNull();
    assertThat(BearerTokens.token("Basic abc")).isNull();
    assertThat(BearerTokens.token("")).isNull();
    assertThat(BearerTokens.token(null)).isNull();
  }

  @Test
  void tellsJwtShapedValues() {
    assertThat(BearerTokens.isJwtShaped("a.b.c")).isTrue();
    assertThat(BearerTokens.isJwtShaped("a-_9.b.")).isTrue();
    assertThat(BearerTokens.isJwtShaped("a.b.c.d.e")).isTrue();
    assertThat(BearerTokens.isJwtShaped(".b.c")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a.b.c.d")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a.b.c.d.e.f")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a+b.c.d")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a=.b.c")).isFalse();
    assertThat(BearerTokens.isJwtShaped("aé.b.c")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a\u0100.b.c")).as("beyond Latin-1").isFalse();
    assertThat(BearerTokens.isJwtShaped("a\uFF41.b.c")).isFalse();
    assertThat(BearerTokens.isJwtShaped("")).isFalse();
    assertThat(BearerTokens.isJwtShaped(null)).isFalse();
  }

  @Test
  void agreesWithTheFormerImplementations() {
    Random random = new Random(42);
    String alphabet = "aZ09-_.+/= \t\u00a0\u2003é\u0100Bb";
    List<String> values =
        new ArrayList<>(
            List.of(
                "Bearer a.b.c",
                "bearer\u2003a.b.c",
                "Bearer \u2003a.b.c\u2003",
                "\u00a0Bearer a",
                "Bearer a\u00a0",
                "Bearer  \t a.b.c \t "));
    for (int i = 0; i < 20_000; i++) {
      StringBuilder s =
          new StringBuilder(
              random.nextBoolean() ? "Bearer " : random.nextBoolean() ? " bEaReR" : "");
      int n = random.nextInt(12);
      for (int j = 0; j < n; j++) s.append(alphabet.charAt(random.nextInt(alphabet.length())));
      values.add(s.toString());
    }
    for (String v : values) {
      assertThat(BearerTokens.token(v)).as("token of [%s]", v).isEqualTo(referenceToken(v));
      assertThat(BearerTokens.isJwtShaped(v)).as("shape of [%s]", v).isEqualTo(referenceShape(v));
      String token = BearerTokens.token(v);
      assertThat(BearerTokens.isJwtShaped(token))
          .as("shape of token [%s]", token)
          .isEqualTo(referenceShape(token));
    }
  }
}
