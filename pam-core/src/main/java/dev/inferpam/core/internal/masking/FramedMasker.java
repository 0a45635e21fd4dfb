package dev.inferpam.core.internal.masking;

/**
 * What the framings that cut a stream into units (NDJSON lines, SSE events) share: each push
 * collects what the framer hands over into {@link #out}, and once the framer gave up on a unit too
 * large ({@link #fallBack}) the rest of the body is masked as plain text.
 */
abstract class FramedMasker implements BodyMasker.Framing {
  final BodyMaskerValues values;

  /** What the current push or finish delivers. */
  StringBuilder out;

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
    if (fallback != null) return fallback.push(b, off, len);
    out = new StringBuilder();
    frame(b, off, len);
    return out.toString();
  }

  @Override
  public final String finish() {
    if (fallback != null) return fallback.finish();
    out = new StringBuilder();
    endFrames();
    if (fallback != null) return out.append(fallback.finish()).toString();
    releaseTails();
    return out.toString();
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
