package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.stream.SseEvent;
import dev.inferpam.core.stream.SseFramer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/**
 * The masker's event buffer cuts a stream exactly as {@link SseFramer} does: the same events
 * (lines, fields, values, terminators, the blank line's terminator, cut off or not), the same
 * gaps, the same overflow and the same bytes passed through after it, however the bytes are cut
 * into pushes and whatever the size limit.
 */
class SseEventBufferProperties {
  private static final String[] PIECES = {
    "data: ",
    "data:",
    "data",
    "event: delta",
    "event",
    "id: 7",
    "retry: 3000",
    ": keep-alive",
    ":",
    "dat",
    "datax: y",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\r\n\r\n",
    "\r\r",
    "{\"a\":\"Hi\"}",
    "[DONE]",
    "é",
    "😀",
    " ",
    "x".repeat(40)
  };

  @Provide
  Arbitrary<byte[]> streams() {
    return Arbitraries.oneOf(
        Arbitraries.of(PIECES)
            .list()
            .ofMaxSize(40)
            .map(p -> String.join("", p).getBytes(StandardCharsets.UTF_8)),
        Arbitraries.oneOf(
                Arbitraries.bytes(),
                Arbitraries.of((byte) '\r', (byte) '\n', (byte) ':', (byte) ' ', (byte) 'd'))
            .array(byte[].class)
            .ofMaxSize(200));
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return Arbitraries.integers().between(0, 1000).list().ofMaxSize(6);
  }

  @Property(tries = 2000)
  void cutsAsTheFramerCuts(
      @ForAll("streams") byte[] stream,
      @ForAll("cuts") List<Integer> cuts,
      @ForAll @IntRange(min = 1, max = 120) int limit) {
    List<String> framed = new ArrayList<>();
    SseFramer framer = new SseFramer(limit, new Recorder(framed));
    List<String> buffered = new ArrayList<>();
    SseEventBuffer buffer = new SseEventBuffer(limit, new BufferRecorder(buffered));
    int at = 0;
    for (int cut : cuts) {
      int to = stream.length == 0 ? 0 : Math.max(at, cut % (stream.length + 1));
      framer.push(stream, at, to - at);
      buffer.push(stream, at, to - at);
      at = to;
    }
    framer.push(stream, at, stream.length - at);
    buffer.push(stream, at, stream.length - at);
    framer.finish();
    buffer.finish();
    assertThat(join(buffered)).isEqualTo(join(framed));
  }

  /** Adjacent raw pieces joined: how the bytes passed through were cut does not matter. */
  private static List<String> join(List<String> transcript) {
    List<String> out = new ArrayList<>();
    for (String s : transcript) {
      int last = out.size() - 1;
      if (s.startsWith("raw ") && last >= 0 && out.get(last).startsWith("raw ")) {
        out.set(last, out.get(last) + s.substring(4));
      } else {
        out.add(s);
      }
    }
    return out;
  }

  private static String latin1(byte[] b, int off, int len) {
    return new String(b, off, len, StandardCharsets.ISO_8859_1);
  }

  private record Recorder(List<String> log) implements SseFramer.Handler {
    @Override
    public void event(SseEvent event) {
      StringBuilder e = new StringBuilder("event");
      for (SseEvent.Line line : event.lines()) {
        e.append(" [").append(line.field()).append('|').append(line.text()).append('|');
        e.append(line.value()).append('|').append(line.terminator()).append(']');
      }
      log.add(
          e.append(" end=").append(event.end()).append(" cut=").append(event.cutOff()).toString());
    }

    @Override
    public void gap(String terminators) {
      log.add("gap " + terminators);
    }

    @Override
    public void overflow() {
      log.add("overflow");
    }

    @Override
    public void raw(byte[] b, int off, int len) {
      log.add("raw " + latin1(b, off, len));
    }
  }

  private record BufferRecorder(List<String> log) implements SseEventBuffer.Handler {
    @Override
    public void event(SseEventBuffer event) {
      StringBuilder e = new StringBuilder("event");
      byte[] b = event.bytes();
      for (int i = 0; i < event.lines(); i++) {
        int s = event.lineStart(i);
        int v = event.valueStart(i);
        int t = event.textEnd(i);
        e.append(" [").append(event.field(i)).append('|');
        e.append(new String(b, s, t - s, StandardCharsets.UTF_8)).append('|');
        e.append(new String(b, v, t - v, StandardCharsets.UTF_8)).append('|');
        e.append(event.terminator(i)).append(']');
      }
      log.add(
          e.append(" end=").append(event.end()).append(" cut=").append(event.cutOff()).toString());
    }

    @Override
    public void gap(String terminators) {
      log.add("gap " + terminators);
    }

    @Override
    public void overflow() {
      log.add("overflow");
    }

    @Override
    public void raw(byte[] b, int off, int len) {
      log.add("raw " + latin1(b, off, len));
    }
  }
}
