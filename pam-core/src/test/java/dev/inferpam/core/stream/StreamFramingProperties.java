package dev.inferpam.core.stream;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

/**
 * What the framers deliver depends on the bytes only, never on how they were cut into pushes; it
 * keeps every byte; and the events' data is what a reader of the format finds.
 */
class StreamFramingProperties {

  /** Pieces of streams: fields with and without colon and space, every line end, UTF-8, JSON. */
  private static final String[] PIECES = {
    "data: ",
    "data:",
    "data",
    "data:  ",
    "event: delta",
    "event",
    "id: 7",
    "retry: 3000",
    ": keep-alive",
    ":",
    "dat",
    "datax: y",
    "Data: no",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\r\n\r\n",
    "\r\r",
    "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
    "[DONE]",
    "é",
    "😀",
    "ü:x",
    " ",
    "x".repeat(40),
    "{\"response\":\"a\",\"done\":false}",
    "\"text\"",
    "{"
  };

  @Provide
  Arbitrary<byte[]> streams() {
    return Arbitraries.of(PIECES)
        .list()
        .ofMaxSize(40)
        .map(p -> String.join("", p).getBytes(StandardCharsets.UTF_8));
  }

  @Provide
  Arbitrary<byte[]> anyBytes() {
    // any byte, half of them one that matters to the framing
    Arbitrary<Byte> structural =
        Arbitraries.of(
            (byte) '\r',
            (byte) '\n',
            (byte) ':',
            (byte) ' ',
            (byte) 'd',
            (byte) 'a',
            (byte) 't',
            (byte) 0xc3,
            (byte) 0xa9);
    return Arbitraries.oneOf(Arbitraries.bytes(), structural).array(byte[].class).ofMaxSize(200);
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return Arbitraries.integers().between(0, 50).list().ofMaxSize(30);
  }

  @Property(tries = 1000)
  void sseEventsDoNotDependOnHowTheBytesAreCut(
      @ForAll("streams") byte[] body, @ForAll("cuts") List<Integer> cuts) {
    assertThat(sse(body, cuts, Long.MAX_VALUE)).isEqualTo(sse(body, List.of(), Long.MAX_VALUE));
  }

  @Property(tries = 1000)
  void sseEventsDoNotDependOnHowArbitraryBytesAreCut(
      @ForAll("anyBytes") byte[] body, @ForAll("cuts") List<Integer> cuts) {
    assertThat(sse(body, cuts, Long.MAX_VALUE)).isEqualTo(sse(body, List.of(), Long.MAX_VALUE));
  }

  @Property(tries = 1000)
  void anOverflowHappensAtTheSameByteHoweverTheBytesAreCut(
      @ForAll("streams") byte[] body,
      @ForAll("cuts") List<Integer> cuts,
      @ForAll @IntRange(min = 1, max = 120) int max) {
    assertThat(sse(body, cuts, max)).isEqualTo(sse(body, List.of(), max));
  }

  @Property(tries = 1000)
  void sseFramingKeepsEveryByte(
      @ForAll("streams") byte[] body,
      @ForAll("cuts") List<Integer> cuts,
      @ForAll @IntRange(min = 1, max = 400) int max) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    boolean[] cutOff = {false};
    SseFramer framer =
        new SseFramer(
            max,
            new SseFramer.Handler() {
              @Override
              public void event(SseEvent event) {
                if (event.cutOff()) cutOff[0] = true;
                else out.writeBytes(event.bytes());
              }

              @Override
              public void gap(String terminators) {
                out.writeBytes(terminators.getBytes(StandardCharsets.US_ASCII));
              }

              @Override
              public void raw(byte[] b, int off, int len) {
                out.write(b, off, len);
              }
            });
    push(body, cuts, framer::push);
    framer.finish();
    if (!cutOff[0]) assertThat(out.toByteArray()).isEqualTo(body);
    else assertThat(java.util.Arrays.copyOf(body, out.size())).isEqualTo(out.toByteArray());
  }

  @Property(tries = 1000)
  void sseScannerReportsEveryByteOnce(
      @ForAll("streams") byte[] body, @ForAll("cuts") List<Integer> cuts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    SseScanner scanner =
        new SseScanner(
            new SseScanner.Listener() {
              @Override
              public void text(byte[] b, int off, int len) {
                assertThat(len).isPositive();
                out.write(b, off, len);
              }

              @Override
              public void value(SseField field) {}

              @Override
              public void lineEnd(String terminator) {
                out.writeBytes(terminator.getBytes(StandardCharsets.US_ASCII));
              }

              @Override
              public void blankLine(String terminator, boolean endsEvent) {
                out.writeBytes(terminator.getBytes(StandardCharsets.US_ASCII));
              }

              @Override
              public void lf() {
                out.write('\n');
              }
            });
    push(body, cuts, scanner::push);
    scanner.finish();
    assertThat(out.toByteArray()).isEqualTo(body);
  }

  @Property(tries = 1000)
  void eventDataIsWhatAReaderOfTheFormatFinds(
      @ForAll("streams") byte[] body, @ForAll("cuts") List<Integer> cuts) {
    List<String> data = new ArrayList<>();
    List<String> types = new ArrayList<>();
    SseFramer framer =
        new SseFramer(
            Long.MAX_VALUE,
            event -> {
              if (event.data() != null) {
                data.add(event.data());
                types.add(event.type());
              }
            });
    push(body, cuts, framer::push); // no finish: a reader drops an event cut off at the end
    Reference reference = Reference.read(new String(body, StandardCharsets.UTF_8));
    assertThat(data).isEqualTo(reference.data);
    assertThat(types).isEqualTo(reference.types);
  }

  @Property(tries = 1000)
  void ndjsonLinesDoNotDependOnHowTheBytesAreCutAndKeepEveryByte(
      @ForAll("streams") byte[] body,
      @ForAll("cuts") List<Integer> cuts,
      @ForAll @IntRange(min = 1, max = 400) int max) {
    List<String> whole = ndjson(body, List.of(), max);
    assertThat(ndjson(body, cuts, max)).isEqualTo(whole);
    StringBuilder out = new StringBuilder();
    for (String item : whole) out.append(item.substring(2));
    assertThat(out.toString()).isEqualTo(new String(body, StandardCharsets.UTF_8));
  }

  // ---------------------------------------------------------------------------------------------

  /** What the framer delivers, written down: events in full, gaps, the overflow and raw bytes (joined). */
  static List<String> sse(byte[] body, List<Integer> cuts, long max) {
    List<String> seen = new ArrayList<>();
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    SseFramer framer =
        new SseFramer(
            max,
            new SseFramer.Handler() {
              @Override
              public void event(SseEvent event) {
                StringBuilder s = new StringBuilder("event");
                for (SseEvent.Line line : event.lines()) {
                  s.append(" [")
                      .append(line.field())
                      .append('|')
                      .append(line.text())
                      .append('|')
                      .append(line.value())
                      .append('|')
                      .append(escape(line.terminator()))
                      .append(']');
                }
                seen.add(
                    s.append(" end=")
                        .append(escape(event.end()))
                        .append(" cut=")
                        .append(event.cutOff())
                        .append(" data=")
                        .append(event.data())
                        .toString());
              }

              @Override
              public void gap(String terminators) {
                seen.add("gap " + escape(terminators));
              }

              @Override
              public void overflow() {
                seen.add("overflow");
              }

              @Override
              public void raw(byte[] b, int off, int len) {
                raw.write(b, off, len);
              }
            });
    push(body, cuts, framer::push);
    framer.finish();
    if (raw.size() > 0) seen.add("raw " + escape(raw.toString(StandardCharsets.UTF_8)));
    return seen;
  }

  /** Each line as "L:text+terminator", overflow as "O:", raw bytes (joined) as "R:...". */
  static List<String> ndjson(byte[] body, List<Integer> cuts, long max) {
    List<String> seen = new ArrayList<>();
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    NdjsonFramer framer =
        new NdjsonFramer(
            max,
            new NdjsonFramer.Handler() {
              @Override
              public void line(String text, String terminator) {
                assertThat(text).doesNotContain("\n");
                seen.add("L:" + text + terminator);
              }

              @Override
              public void overflow() {
                seen.add("O:");
              }

              @Override
              public void raw(byte[] b, int off, int len) {
                raw.write(b, off, len);
              }
            });
    push(body, cuts, framer::push);
    framer.finish();
    if (raw.size() > 0) seen.add("R:" + raw.toString(StandardCharsets.UTF_8));
    return seen;
  }

  interface Sink {
    void push(byte[] b, int off, int len);
  }

  /** Pushes {@code body} in pieces of the sizes in {@code cuts}, then the rest. */
  static void push(byte[] body, List<Integer> cuts, Sink sink) {
    int at = 0;
    for (int cut : cuts) {
      int n = Math.min(cut, body.length - at);
      sink.push(body, at, n);
      at += n;
    }
    sink.push(body, at, body.length - at);
  }

  private static String escape(String s) {
    return s.replace("\r", "\\r").replace("\n", "\\n");
  }

  /**
   * The format's reading of a whole stream, written plainly: split into lines at CRLF, CR or LF;
   * a blank line dispatches the data lines' values (joined by LF) when there are any; an event cut
   * off at the end is dropped.
   */
  record Reference(List<String> data, List<String> types) {
    private static final Pattern LINE_END = Pattern.compile("\r\n|\r|\n");

    static Reference read(String stream) {
      List<String> data = new ArrayList<>();
      List<String> types = new ArrayList<>();
      String[] lines = LINE_END.split(stream, -1);
      StringBuilder buffer = null;
      String type = null;
      // the last piece is a line without terminator (or "" after the last one): never dispatched
      for (int i = 0; i < lines.length - 1; i++) {
        String line = lines[i];
        if (line.isEmpty()) {
          if (buffer != null) {
            data.add(buffer.toString());
            types.add(type);
          }
          buffer = null;
          type = null;
          continue;
        }
        int colon = line.indexOf(':');
        String name = colon < 0 ? line : line.substring(0, colon);
        String value = colon < 0 ? "" : line.substring(colon + 1);
        if (value.startsWith(" ")) value = value.substring(1);
        if (name.equals("data")) {
          buffer = buffer == null ? new StringBuilder(value) : buffer.append('\n').append(value);
        } else if (name.equals("event")) {
          type = value;
        }
      }
      return new Reference(data, types);
    }
  }
}
