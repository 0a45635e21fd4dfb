package dev.inferpam.core.internal.masking;

import dev.inferpam.api.Masker;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Masks one response body as its bytes pass, by content type. SKELETON: text only, framing
 * (SSE, NDJSON, JSON) comes next.
 *
 * <p>Used by one response, one thread at a time.
 */
public final class BodyMasker {
  private final Masker.Session session;
  private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
      .onMalformedInput(CodingErrorAction.REPLACE)
      .onUnmappableCharacter(CodingErrorAction.REPLACE);
  private ByteBuffer pending = ByteBuffer.allocate(0);

  private BodyMasker(Masker.Session session) {
    this.session = session;
  }

  /**
   * A body masker for a response of {@code contentType}, or {@code null} when bodies of that
   * type are passed untouched (binary types).
   */
  public static BodyMasker open(Masker masker, String contentType) {
    Objects.requireNonNull(masker, "masker");
    String type = contentType == null ? "" : contentType.toLowerCase(Locale.ROOT);
    if (type.startsWith("image/") || type.startsWith("audio/") || type.startsWith("video/")
        || type.startsWith("application/octet-stream")) {
      return null;
    }
    return new BodyMasker(masker.open());
  }

  /** Feeds upstream bytes; returns the bytes that may be delivered now (possibly none). */
  public byte[] push(byte[] b, int off, int len) {
    ByteBuffer in = ByteBuffer.allocate(pending.remaining() + len);
    in.put(pending).put(b, off, len).flip();
    CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
    decoder.decode(in, out, false);
    pending = in.slice();
    out.flip();
    return session.push(out.toString()).getBytes(StandardCharsets.UTF_8);
  }

  /** Ends the body; returns what was held back. */
  public byte[] finish() {
    CharBuffer out = CharBuffer.allocate(pending.remaining() + 2);
    decoder.decode(pending, out, true);
    decoder.flush(out);
    out.flip();
    String text = out.toString();
    String rest = text.isEmpty() ? "" : session.push(text);
    return (rest + session.finish()).getBytes(StandardCharsets.UTF_8);
  }

  /** Values masked so far, per detector. */
  public Map<String, Integer> counts() {
    return session.counts();
  }
}
