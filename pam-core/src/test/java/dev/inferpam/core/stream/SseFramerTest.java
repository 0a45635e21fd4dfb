package dev.inferpam.core.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SseFramerTest {

  /** Records what a framer hands over, in order. */
  static final class Recorder implements SseFramer.Handler {
    final List<SseEvent> events = new ArrayList<>();
    final List<String> order = new ArrayList<>();
    final ByteArrayOutputStream raw = new ByteArrayOutputStream();

    @Override
    public void event(SseEvent event) {
      events.add(event);
      order.add("event");
    }

    @Override
    public void gap(String terminators) {
      order.add("gap " + terminators.replace("\r", "CR").replace("\n", "LF"));
    }

    @Override
    public void overflow() {
      order.add("overflow");
    }

    @Override
    public void raw(byte[] b, int off, int len) {
      raw.write(b, off, len);
    }
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static Recorder frame(String stream) {
    Recorder r = new Recorder();
    SseFramer framer = new SseFramer(1 << 20, r);
    byte[] b = utf8(stream);
    framer.push(b, 0, b.length);
    framer.finish();
    return r;
  }

  @Test
  void dataLinesAreJoinedByLineFeedAndOneSpaceAfterTheColonIsDropped() {
    Recorder r = frame("data: {\"a\":\ndata:1}\ndata:  two spaces\ndata\n\n");
    assertThat(r.events).hasSize(1);
    assertThat(r.events.get(0).data()).isEqualTo("{\"a\":\n1}\n two spaces\n");
  }

  @Test
  void eventsWithoutDataLinesHaveNullData() {
    Recorder r = frame(": comment\nevent: ping\n\n");
    assertThat(r.events.get(0).data()).isNull();
    assertThat(r.events.get(0).type()).isEqualTo("ping");
  }

  @Test
  void everyLineIsKeptWithItsFieldValueAndTerminator() {
    SseEvent e =
        frame(": hi\r\nevent: delta\rid: 7\nretry: 10\r\nfoo: bar\ndata: x\nevent\n\n")
            .events
            .get(0);
    assertThat(e.lines())
        .extracting(SseEvent.Line::field)
        .containsExactly(
            SseField.COMMENT,
            SseField.EVENT,
            SseField.ID,
            SseField.RETRY,
            SseField.OTHER,
            SseField.DATA,
            SseField.EVENT);
    assertThat(e.lines())
        .extracting(SseEvent.Line::text)
        .containsExactly(
            ": hi", "event: delta", "id: 7", "retry: 10", "foo: bar", "data: x", "event");
    assertThat(e.lines())
        .extracting(SseEvent.Line::value)
        .containsExactly("hi", "delta", "7", "10", "bar", "x", "");
    assertThat(e.lines())
        .extracting(SseEvent.Line::terminator)
        .containsExactly("\r\n", "\r", "\n", "\r\n", "\n", "\n", "\n");
    assertThat(e.end()).isEqualTo("\n");
    assertThat(e.type()).isEqualTo("");
    assertThat(e.cutOff()).isFalse();
  }

  @Test
  void fieldNamesAreExactAndOnlyTheFirstColonSplits() {
    SseEvent e = frame("Data: a\ndata : b\ndatas: c\ndata:: d\nü: e\n\n").events.get(0);
    assertThat(e.lines())
        .extracting(SseEvent.Line::field)
        .containsExactly(
            SseField.OTHER, SseField.OTHER, SseField.OTHER, SseField.DATA, SseField.OTHER);
    assertThat(e.data()).isEqualTo(": d");
    assertThat(e.lines().get(4).value()).isEqualTo("e");
  }

  @Test
  void bytesGiveTheEventAsItArrived() {
    String stream = ": c\r\ndata: é 😀\rdata: x\n\n";
    SseEvent e = frame(stream).events.get(0);
    assertThat(new String(e.bytes(), StandardCharsets.UTF_8)).isEqualTo(stream);
  }

  @Test
  void anEventEndedByACarriageReturnIsDeliveredWithoutWaitingForTheNextByte() {
    Recorder r = new Recorder();
    SseFramer framer = new SseFramer(1 << 20, r);
    byte[] b = utf8("data: a\r\r\ndata: b\r\n\r\n");
    framer.push(b, 0, 9); // "data: a\r\r"
    assertThat(r.events).hasSize(1);
    assertThat(r.events.get(0).end()).isEqualTo("\r");
    framer.push(b, 9, b.length - 9);
    // the LF of a CRLF is no blank line: after an event it ends nothing, within one it completes a
    // terminator
    assertThat(r.order).containsExactly("event", "gap LF", "event", "gap LF");
    assertThat(r.events.get(1).lines().get(0).terminator()).isEqualTo("\r\n");
    assertThat(r.events.get(1).end()).isEqualTo("\r");
  }

  @Test
  void eachEventIsDeliveredByThePushThatCompletesItAndASplitCharacterStaysWhole() {
    Recorder r = new Recorder();
    SseFramer framer = new SseFramer(1 << 20, r);
    byte[] b = utf8("data: é😀\n\ndata: 2\n\n");
    List<Integer> countAfter = new ArrayList<>();
    for (int i = 0; i < b.length; i++) {
      framer.push(b, i, 1);
      countAfter.add(r.events.size());
    }
    int firstEnd = utf8("data: é😀\n\n").length - 1;
    assertThat(countAfter.get(firstEnd - 1)).isZero();
    assertThat(countAfter.get(firstEnd)).isEqualTo(1);
    assertThat(countAfter.get(b.length - 2)).isEqualTo(1);
    assertThat(countAfter.get(b.length - 1)).isEqualTo(2);
    assertThat(r.events.get(0).data()).isEqualTo("é😀");
  }

  @Test
  void blankLinesBetweenEventsAreGaps() {
    Recorder r = frame("\n\r\ndata: a\n\n\n");
    assertThat(r.order).containsExactly("gap LF", "gap CR", "gap LF", "event", "gap LF");
  }

  @Test
  void anEventCutOffAtTheEndIsCompletedInItsLineStyleAndMarked() {
    Recorder r = frame("data: a\n\nid: 1\r\ndata: b");
    assertThat(r.events).hasSize(2);
    SseEvent cut = r.events.get(1);
    assertThat(cut.cutOff()).isTrue();
    assertThat(cut.data()).isEqualTo("b");
    assertThat(new String(cut.bytes(), StandardCharsets.UTF_8))
        .isEqualTo("id: 1\r\ndata: b\r\n\r\n");
    assertThat(frame("data").events.get(0).bytes()).isEqualTo(utf8("data\n\n"));
    assertThat(frame("data: x\n").events.get(0).data()).isEqualTo("x");
  }

  @Test
  void eventsOfAWholeBody() {
    List<SseEvent> events = SseFramer.events(utf8("data: 1\n\n: c\n\ndata: 2"));
    assertThat(events).extracting(SseEvent::data).containsExactly("1", null, "2");
    assertThat(events).extracting(SseEvent::cutOff).containsExactly(false, false, true);
  }

  @Test
  void anEventOverTheLimitGoesRawFromItsFirstByte() {
    Recorder r = new Recorder();
    SseFramer framer = new SseFramer(12, r);
    byte[] b = utf8("data: 1\n\ndata: 12\ndata: 345\n\ndata: 6\n\n");
    framer.push(b, 0, 20);
    framer.push(b, 20, b.length - 20);
    framer.finish();
    assertThat(r.order).containsExactly("event", "overflow");
    assertThat(r.events.get(0).data()).isEqualTo("1");
    assertThat(r.raw.toString(StandardCharsets.UTF_8))
        .isEqualTo("data: 12\ndata: 345\n\ndata: 6\n\n");
  }

  @Test
  void terminatorsCountTowardsTheLimit() {
    Recorder r = frame("data: 0123456789\n\n"); // 17 bytes with its terminator: fine
    assertThat(r.events).hasSize(1);
    r = new Recorder();
    SseFramer framer = new SseFramer(16, r);
    byte[] b = utf8("data: 0123456789\n\n"); // 16 bytes of text, 17 with the line's LF
    framer.push(b, 0, b.length);
    assertThat(r.order).containsExactly("overflow");
    assertThat(r.raw.toByteArray()).isEqualTo(b);
  }

  @Test
  void aHandlerMayPassTheRestThrough() {
    Recorder r = new Recorder();
    SseFramer[] framer = new SseFramer[1];
    framer[0] =
        new SseFramer(
            1 << 20,
            new SseFramer.Handler() {
              @Override
              public void event(SseEvent event) {
                r.event(event);
                framer[0].passThrough();
              }

              @Override
              public void raw(byte[] b, int off, int len) {
                r.raw(b, off, len);
              }
            });
    byte[] b = utf8("data: 1\r\rdata: 2\n\n");
    framer[0].push(b, 0, 12);
    framer[0].push(b, 12, b.length - 12);
    framer[0].finish();
    assertThat(r.events).hasSize(1);
    assertThat(r.raw.toString(StandardCharsets.UTF_8)).isEqualTo("data: 2\n\n");
  }

  @Test
  void toStringShowsNoText() {
    SseEvent e = frame("data: my secret\n\n").events.get(0);
    assertThat(e.toString()).doesNotContain("secret").contains("data");
  }

  @Test
  void refusesANonPositiveLimitAndBadRanges() {
    assertThatThrownBy(() -> new SseFramer(0, e -> {}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxEventBytes must be > 0, was 0");
    SseFramer framer = new SseFramer(10, e -> {});
    assertThatThrownBy(() -> framer.push(new byte[4], 2, 3))
        .isInstanceOf(IndexOutOfBoundsException.class);
  }
}
