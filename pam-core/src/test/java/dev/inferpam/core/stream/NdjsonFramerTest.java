package dev.inferpam.core.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class NdjsonFramerTest {

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void eachLineIsDeliveredByThePushThatBringsItsLineFeedWithItsTerminator() {
    List<String> lines = new ArrayList<>();
    NdjsonFramer framer =
        new NdjsonFramer(1 << 20, (text, term) -> lines.add(text + "|" + term.replace("\r", "CR")));
    byte[] b = utf8("{\"a\":\"é\"}\r\n\n{\"b\":1}\ncut\r");
    framer.push(b, 0, 5);
    assertThat(lines).isEmpty();
    framer.push(b, 5, 8); // through the first LF and the blank line
    assertThat(lines).containsExactly("{\"a\":\"é\"}|CR\n", "|\n");
    framer.push(b, 13, b.length - 13);
    framer.finish();
    assertThat(lines).containsExactly("{\"a\":\"é\"}|CR\n", "|\n", "{\"b\":1}|\n", "cut\r|");
  }

  @Test
  void aLineOverTheLimitGoesRawFromItsFirstByte() {
    List<String> seen = new ArrayList<>();
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    NdjsonFramer framer =
        new NdjsonFramer(
            7,
            new NdjsonFramer.Handler() {
              @Override
              public void line(String text, String terminator) {
                seen.add(text);
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
    byte[] b = utf8("{\"a\":1}\n{\"b\":22}\n{}\n");
    framer.push(b, 0, 12);
    framer.push(b, 12, b.length - 12);
    framer.finish();
    assertThat(seen).containsExactly("{\"a\":1}", "overflow");
    assertThat(raw.toString(StandardCharsets.UTF_8)).isEqualTo("{\"b\":22}\n{}\n");
  }

  @Test
  void scannerReportsLinesInPiecesWithoutHoldingThem() {
    List<String> seen = new ArrayList<>();
    NdjsonScanner scanner =
        new NdjsonScanner(
            new NdjsonScanner.Listener() {
              @Override
              public void text(byte[] b, int off, int len) {
                seen.add(new String(b, off, len, StandardCharsets.UTF_8));
              }

              @Override
              public void lineEnd() {
                seen.add("END");
              }
            });
    byte[] b = utf8("ab\ncd\r\n\nef");
    scanner.push(b, 0, 4);
    scanner.push(b, 4, b.length - 4);
    assertThat(seen).containsExactly("ab", "END", "c", "d\r", "END", "END", "ef");
  }

  @Test
  void refusesANonPositiveLimit() {
    assertThatThrownBy(() -> new NdjsonFramer(-1, (t, e) -> {}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxLineBytes must be > 0, was -1");
  }
}
