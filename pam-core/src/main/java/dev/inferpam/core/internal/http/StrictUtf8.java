package dev.inferpam.core.internal.http;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Strict UTF-8 decoding: malformed input is refused, never replaced with U+FFFD, so two different
 * invalid byte sequences cannot read as the same text. The JDK's decoder also refuses overlong
 * forms and encoded surrogates. Stateless; thread-safe.
 */
public final class StrictUtf8 {
  private StrictUtf8() {}

  /** {@code bytes} decoded, or {@code null} when they are not valid UTF-8. */
  public static String decode(byte[] bytes) {
    return decode(bytes, 0, bytes.length);
  }

  /** {@code bytes[off, off + len)} decoded, or {@code null} when they are not valid UTF-8. */
  public static String decode(byte[] bytes, int off, int len) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes, off, len))
          .toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }
}
