package dev.inferpam.core.internal.masking;

import dev.inferpam.api.Masker;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Plain text: UTF-8 decoded as it arrives (a sequence split across pushes waits for its last
 * byte; malformed bytes become U+FFFD) and masked through one streaming session. Also the
 * fallback of every other framing.
 */
final class BodyMaskerText implements BodyMasker.Framing {
  private static final byte[] NONE = new byte[0];

  private final BodyMaskerValues values;
  private final Masker.Session session;
  private final CharsetDecoder decoder =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPLACE)
          .onUnmappableCharacter(CodingErrorAction.REPLACE);
  private byte[] pending = NONE;

  BodyMaskerText(BodyMaskerValues values) {
    this.values = values;
    this.session = values.open();
  }

  @Override
  public String push(byte[] b, int off, int len) {
    ByteBuffer in;
    if (pending.length == 0) {
      in = ByteBuffer.wrap(b, off, len);
    } else {
      in = ByteBuffer.allocate(pending.length + len);
      in.put(pending).put(b, off, len).flip();
    }
    String text = decode(in, false);
    pending = new byte[in.remaining()];
    in.get(pending);
    return text.isEmpty() ? "" : session.push(text);
  }

  @Override
  public String finish() {
    String text = decode(ByteBuffer.wrap(pending), true);
    pending = NONE;
    String released = text.isEmpty() ? "" : session.push(text);
    return released + values.finish(session);
  }

  private String decode(ByteBuffer in, boolean end) {
    // One byte never decodes to more than one char, so this rarely has to grow.
    CharBuffer out = CharBuffer.allocate(in.remaining() + 4);
    while (true) {
      CoderResult result = decoder.decode(in, out, end);
      if (result.isOverflow()) {
        out = grow(out);
        continue;
      }
      if (end && decoder.flush(out).isOverflow()) {
        out = grow(out);
        continue;
      }
      break;
    }
    out.flip();
    return out.toString();
  }

  private static CharBuffer grow(CharBuffer out) {
    CharBuffer bigger = CharBuffer.allocate(out.capacity() * 2 + 4);
    out.flip();
    return bigger.put(out);
  }
}
