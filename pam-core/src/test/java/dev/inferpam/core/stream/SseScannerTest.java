package dev.inferpam.core.stream;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SseScannerTest {

  /** Writes down every callback. */
  static final class Log implements SseScanner.Listener {
    final List<String> seen = new ArrayList<>();

    @Override
    public void text(byte[] b, int off, int len) {
      seen.add("'" + new String(b, off, len, StandardCharsets.UTF_8) + "'");
    }

    @Override
    public void value(SseField field) {
      seen.add(field.name());
    }

    @Override
    public void lineEnd(String terminator) {
      seen.add("end" + terminator.replace("\r", "CR").replace("\n", "LF"));
    }

    @Override
    public void blankLine(String terminator, boolean endsEvent) {
      seen.add(
          (endsEvent ? "dispatch" : "blank") + terminator.replace("\r", "CR").replace("\n", "LF"));
    }

    @Override
    public void lf() {
      seen.add("lf");
    }
  }

  @Test
  void aLineBreakIsFoundWhereverItFallsInALongValue() {
    for (String terminator : List.of("\n", "\r", "\r\n")) {
      for (int length = 0; length < 40; length++) {
        String value = "é0123456789abcdefghijklmnopqrstuvwxyz".repeat(2).substring(0, length);
        Log log = new Log();
        SseScanner scanner = new SseScanner(log);
        byte[] b = ("data:" + value + terminator + "x").getBytes(StandardCharsets.UTF_8);
        scanner.push(b, 0, b.length);
        List<String> expected = new ArrayList<>(List.of("'data:'", "DATA"));
        if (!value.isEmpty()) expected.add("'" + value + "'");
        expected.add("end" + (terminator.startsWith("\r") ? "CR" : "LF"));
        if (terminator.equals("\r\n")) expected.add("lf");
        expected.add("'x'");
        assertThat(log.seen).as("%d chars, %s", length, terminator).isEqualTo(expected);
      }
    }
  }

  @Test
  void reportsFieldNameThenValueInPiecesAsTheyArriveHoldingNothing() {
    Log log = new Log();
    SseScanner scanner = new SseScanner(log);
    byte[] b = "data: {\"a\":1}\r\n\r\n".getBytes(StandardCharsets.UTF_8);
    scanner.push(b, 0, 3); // "dat"
    scanner.push(b, 3, 2); // "a:"  (the space that may follow is not yet known)
    scanner.push(b, 5, 4); // " {\"a"
    scanner.push(b, 9, b.length - 9);
    assertThat(log.seen)
        .containsExactly(
            "'dat'", "'a:'", "' '", "DATA", "'{\"a'", "'\":1}'", "endCR", "lf", "dispatchCR", "lf");
  }

  @Test
  void aLineWithoutColonIsAFieldWithAnEmptyValueAndBlankLinesOutsideEventsDispatchNothing() {
    Log log = new Log();
    SseScanner scanner = new SseScanner(log);
    byte[] b = "\ndata\n: c\n\n".getBytes(StandardCharsets.UTF_8);
    scanner.push(b, 0, b.length);
    assertThat(log.seen)
        .containsExactly(
            "blankLF", "'data'", "DATA", "endLF", "': '", "COMMENT", "'c'", "endLF", "dispatchLF");
  }

  @Test
  void finishEndsACutOffLineAndSaysWhetherAnEventWasCutOff() {
    Log log = new Log();
    SseScanner scanner = new SseScanner(log);
    byte[] b = "data: 1\n\nevent: x\nretr".getBytes(StandardCharsets.UTF_8);
    scanner.push(b, 0, b.length);
    assertThat(scanner.finish()).isTrue();
    assertThat(log.seen.subList(log.seen.size() - 3, log.seen.size()))
        .containsExactly("'retr'", "OTHER", "end");
    assertThat(scanner.finish()).isFalse();
  }
}
