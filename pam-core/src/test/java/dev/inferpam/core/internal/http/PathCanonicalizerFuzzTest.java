package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Coverage-guided fuzzing of {@link PathCanonicalizer} against its documented contract. The input
 * is the raw path as UTF-8 (regression corpus: {@code PathCanonicalizerFuzzTestInputs/canonicalize}).
 *
 * <p>Only {@link BadPathException} may be thrown, with a one-line message. An accepted path is
 * canonical: it starts with {@code /}, has no empty or dot segment, no trailing {@code /}, no
 * {@code % \ ;}, no control character (C0, DEL, C1) and no lone surrogate; it is exactly the raw
 * path percent-decoded once as UTF-8 (checked with a decoder written here), has the same number
 * of segments as the raw path (decoding never creates a separator), and canonicalizes to itself
 * once its non-ASCII characters are percent-encoded again (idempotent).
 */
class PathCanonicalizerFuzzTest {

  @FuzzTest(maxDuration = "10s")
  void canonicalize(byte[] input) {
    String raw = new String(input, StandardCharsets.UTF_8);
    String canonical;
    try {
      canonical = PathCanonicalizer.canonicalize(raw);
    } catch (BadPathException e) {
      assertThat(e.getMessage()).isNotBlank().doesNotContain("\n", "\r");
      return;
    }
    assertCanonical(canonical);
    assertThat(canonical).isEqualTo(decodeOnce(raw));
    assertThat(segments(canonical)).isEqualTo(segments(raw));
    if (raw.indexOf('%') < 0) assertThat(canonical).isEqualTo(raw);
    try {
      assertThat(PathCanonicalizer.canonicalize(encodeNonAscii(canonical))).isEqualTo(canonical);
    } catch (BadPathException e) {
      throw new AssertionError("canonical path refused on a second pass: " + e.getMessage(), e);
    }
  }

  private static void assertCanonical(String path) {
    assertThat(path).startsWith("/").doesNotContain("//", "%", "\\", ";");
    if (!path.equals("/")) assertThat(path).doesNotEndWith("/");
    for (String segment : path.substring(1).split("/", -1)) {
      assertThat(segment).isNotIn(".", "..");
    }
    for (int i = 0; i < path.length(); i++) {
      char c = path.charAt(i);
      assertThat(c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
          .as("control character at %d", i)
          .isFalse();
      if (Character.isHighSurrogate(c)) {
        assertThat(i + 1 < path.length() && Character.isLowSurrogate(path.charAt(i + 1)))
            .as("pair at %d", i)
            .isTrue();
        i++;
      } else {
        assertThat(Character.isLowSurrogate(c)).as("lone low surrogate at %d", i).isFalse();
      }
    }
  }

  /** The raw path percent-decoded once as UTF-8 (the path is ASCII once accepted). */
  private static String decodeOnce(String raw) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%') {
        bytes.write(Integer.parseInt(raw.substring(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.write(c);
      }
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  private static int segments(String path) {
    return path.split("/", -1).length;
  }

  private static String encodeNonAscii(String path) {
    StringBuilder out = new StringBuilder();
    for (byte b : path.getBytes(StandardCharsets.UTF_8)) {
      if (b >= 0) {
        out.append((char) b);
      } else {
        out.append('%').append(String.format("%02X", b & 0xff));
      }
    }
    return out.toString();
  }
}
