package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class PathCanonicalizerTest {

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/                     | /",
        "/api/pull             | /api/pull",
        "/api/%70ull           | /api/pull",
        "/API/PULL             | /API/PULL",
        "/v1/chat/completions  | /v1/chat/completions",
        "/v2/models/m%20x/infer| /v2/models/m x/infer",
        "/caf%C3%A9            | /café",
        "/%e2%82%ac            | /€",
        "/a/...                | /a/...",
        "/a/.b                 | /a/.b",
        "/a/b.                 | /a/b.",
        "/a/..b                | /a/..b",
        "/a b                  | /a b",
      })
  void canonicalizes(String raw, String expected) throws BadPathException {
    assertThat(PathCanonicalizer.canonicalize(raw)).isEqualTo(expected);
  }

  @Test
  void refusesDoubleEncodingThatATwiceDecodingUpstreamWouldTurnIntoABlockedPath() {
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize("/api/%2570ull"))
        .isInstanceOf(BadPathException.class)
        .hasMessageContaining("double encoding");
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize("/a/%25"))
        .isInstanceOf(BadPathException.class);
  }

  @Test
  void returnsTheSameStringWhenNothingIsEncoded() throws BadPathException {
    String raw = "/v1/embeddings";
    assertThat(PathCanonicalizer.canonicalize(raw)).isSameAs(raw);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "//api/pull             | empty segment",
        "/api//pull             | empty segment",
        "/api/./pull            | dot segment",
        "/x/../api/pull         | dot segment",
        "/..                    | dot segment",
        "/.                     | dot segment",
        "/api/..                | dot segment",
        "/api/pull;x=1          | \";\" in path",
        "/api;/pull             | \";\" in path",
        "/api%2fpull            | encoded \"/\"",
        "/api%2Fpull            | encoded \"/\"",
        "/api%5cpull            | encoded \"\\\"",
        "/api%5Cpull            | encoded \"\\\"",
        "/api/%2e%2e/pull       | encoded \".\"",
        "/api/%2E/pull          | encoded \".\"",
        "/api/.%2e/pull         | encoded \".\"",
        "/api/pull%3b           | encoded \";\"",
        "/api/pull%3Bx          | encoded \";\"",
        "/api/pull%00           | encoded NUL",
        "/api/pull%0a           | encoded control character",
        "/api/pull%0D%0A        | encoded control character",
        "/api/pull%7f           | encoded control character",
        "/api/pull%C2%85        | encoded control character",
        "/api\\pull             | \"\\\" in path",
        "/api/pull/             | trailing \"/\"",
        "/api/                  | trailing \"/\"",
        "/%zz                   | two hex digits",
        "/%                     | two hex digits",
        "/a%4                   | two hex digits",
        "/a%4g                  | two hex digits",
        "/a%%41                 | two hex digits",
        "api/pull               | does not start",
        "%2fapi/pull            | does not start",
        "/api/%C0%AF            | invalid UTF-8",
        "/api/%C0%AE%C0%AE      | invalid UTF-8",
        "/api/%FF               | invalid UTF-8",
        "/api/%C3               | invalid UTF-8",
        "/api/%ED%A0%80         | invalid UTF-8",
        "/api/%F8%88%80%80%80   | invalid UTF-8",
      })
  void refusesAmbiguousPaths(String raw, String reason) {
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(raw))
        .isInstanceOf(BadPathException.class)
        .hasMessageContaining(reason);
  }

  @ParameterizedTest
  @ValueSource(strings = {"/api/pull\u0000", "/api\n/pull", "/api\r", "/a\tb", "/a\u007fb"})
  void refusesRawControlCharacters(String raw) {
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(raw))
        .isInstanceOf(BadPathException.class)
        .hasMessage("control character in path");
  }

  @ParameterizedTest
  @ValueSource(strings = {"/café", "/a\u0085b", "/\uFF0E\uFF0E/x", "/\uD83D\uDE00"})
  void refusesRawNonAsciiCharacters(String raw) {
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(raw))
        .isInstanceOf(BadPathException.class)
        .hasMessageContaining("non-ASCII");
  }

  @Test
  void refusesNullAndEmpty() {
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(null)).hasMessage("empty path");
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize("")).hasMessage("empty path");
  }

  @Test
  void messageNeverRepeatsThePath() {
    String secretish = "/api/sk-live-0123456789%2f";
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(secretish))
        .hasMessage("encoded \"/\" in path")
        .satisfies(e -> assertThat(e.getStackTrace()).isEmpty());
  }

  @Test
  @Timeout(5)
  void handlesLongPathsInLinearTime() throws BadPathException {
    StringBuilder raw = new StringBuilder();
    StringBuilder decoded = new StringBuilder();
    while (raw.length() < 100_000) {
      raw.append("/seg%41x");
      decoded.append("/segAx");
    }
    assertThat(PathCanonicalizer.canonicalize(raw.toString())).isEqualTo(decoded.toString());

    String manyEscapes = "/" + "%41".repeat(40_000);
    assertThat(PathCanonicalizer.canonicalize(manyEscapes)).hasSize(40_001);

    String oneLongSegment = "/" + "a".repeat(100_000);
    assertThat(PathCanonicalizer.canonicalize(oneLongSegment)).isSameAs(oneLongSegment);

    String badAtTheEnd = "/" + "a/".repeat(50_000) + "..";
    assertThatThrownBy(() -> PathCanonicalizer.canonicalize(badAtTheEnd))
        .hasMessage("dot segment in path");
  }

  @Test
  void isFastEnoughToRunPerRequest() throws BadPathException {
    String raw = "/" + "abc%41/".repeat(14_000) + "end"; // about 100 KB
    long start = System.nanoTime();
    for (int i = 0; i < 50; i++) PathCanonicalizer.canonicalize(raw);
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
  }
}
