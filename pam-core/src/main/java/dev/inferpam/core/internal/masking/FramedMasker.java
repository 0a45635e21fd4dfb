package dev.inferpam.core.internal.masking;

import java.nio.charset.StandardCharsets;

/**
 * What the framings that cut a stream into units (NDJSON lines, SSE events) share: each push
 * collects, as bytes, what the framer hands over into {@link #out}, and once the framer gave up
 * on a unit too large ({@link #fallBack}) the rest of the body is masked as plain text.
 */
abstract class FramedMasker implements BodyMasker.Framing {
  final BodyMaskerValues values;

  /** What the current push or finish delivers. */
  final ByteSink out = new ByteSink();

  /** Plain-text masking for the rest of the body, after an overflow; else null. */
  BodyMaskerText fallback;

  FramedMasker(BodyMaskerValues values) {
    this.values = values;
  }

  /** Hands {@code len} bytes to the framer, which calls back into this masker. */
  abstract void frame(byte[] b, int off, int len);

  /** Ends the framer's stream: it hands over a last unit cut off before its terminator. */
  abstract void endFrames();

  /** After the last unit: appends to {@link #out} the tails the open streams still hold. */
  abstract void releaseTails();

  @Override
  public final String push(byte[] b, int off, int len) {
    return new String(pushBytes(b, off, len), StandardCharsets.UTF_8);
  }

  @Override
  public final byte[] pushBytes(byte[] b, int off, int len) {
    if (fallback != null) return fallback.push(b, off, len).getBytes(StandardCharsets.UTF_8);
    out.reset();
    frame(b, off, len);
    return out.toByteArray();
  }

  @Override
  public final String finish() {
    return new String(finishBytes(), StandardCharsets.UTF_8);
  }

  @Override
  public final byte[] finishBytes() {
    if (fallback != null) return fallback.finish().getBytes(StandardCharsets.UTF_8);
    out.reset();
    endFrames();
    if (fallback != null) return out.append(fallback.finish()).toByteArray();
    releaseTails();
    return out.toByteArray();
  }

  /** From here on, the body is masked as plain text. */
  final void fallBack() {
    fallback = new BodyMaskerText(values);
  }

  /** The framer's bytes after an overflow, masked as text. */
  public final void raw(byte[] b, int off, int len) {
    out.append(fallback.push(b, off, len));
  }
}
