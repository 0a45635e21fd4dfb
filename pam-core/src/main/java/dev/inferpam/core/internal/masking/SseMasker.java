package dev.inferpam.core.internal.masking;

import dev.inferpam.core.stream.SseEvent;
import dev.inferpam.core.stream.SseFramer;

/**
 * {@code text/event-stream}: cuts the bytes into events with {@link SseFramer} wherever the
 * pushes were cut, hands each complete event's data to {@link SseStreams}, and delivers the event
 * at once. Terminators that belong to no event pass as they are.
 */
final class SseMasker extends FramedMasker implements SseFramer.Handler {
  private final SseStreams streams;
  private final SseFramer framer;

  SseMasker(BodyMaskerValues values, int cap, int maxStreams) {
    super(values);
    this.streams = new SseStreams(values, maxStreams, cap);
    this.framer = new SseFramer(cap, this);
  }

  @Override
  void frame(byte[] b, int off, int len) {
    framer.push(b, off, len);
  }

  @Override
  void endFrames() {
    framer.finish(); // a cut-off last event is completed, so the tails can follow it
  }

  @Override
  void releaseTails() {
    streams.endAll(out);
  }

  @Override
  public void event(SseEvent event) {
    SseFrame frame = new SseFrame(event);
    String data = event.data();
    if (data == null) {
      out.append(frame.render(null, values));
      return;
    }
    StringBuilder before = new StringBuilder();
    String masked = streams.onData(data, frame, before);
    if (masked == null) { // too much text stream state to keep: the rest goes as text
      overflow();
      byte[] bytes = event.bytes();
      raw(bytes, 0, bytes.length);
      framer.passThrough();
      return;
    }
    out.append(before).append(frame.render(masked, values));
  }

  @Override
  public void gap(String terminators) {
    out.append(terminators);
  }

  /** Switches to plain-text masking for the rest of the body, after releasing the open streams' tails as events. */
  @Override
  public void overflow() {
    streams.endAll(out);
    fallBack();
  }
}
