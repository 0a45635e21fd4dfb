package dev.inferpam.servlet.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class EncodingWriterTest {
  /** Counts bytes that reached the stream, to prove nothing waits in the writer. */
  private static final class Sink extends OutputStream {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int flushes;
    boolean closed;

    @Override
    public void write(int b) {
      bytes.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      bytes.write(b, off, len);
    }

    @Override
    public void flush() {
      flushes++;
    }

    @Override
    public void close() {
      closed = true;
    }

    String text() {
      return bytes.toString(StandardCharsets.UTF_8);
    }
  }

  @Test
  void everyWriteReachesTheStreamAtOnce() throws IOException {
    Sink sink = new Sink();
    EncodingWriter writer = new EncodingWriter(sink, StandardCharsets.UTF_8);

    writer.write("data: ünï ✓\n\n");

    assertThat(sink.text()).isEqualTo("data: ünï ✓\n\n");
    assertThat(sink.flushes).isZero();
    writer.flush();
    assertThat(sink.flushes).isEqualTo(1);
  }

  @Test
  void surrogatePairSplitBetweenWritesIsEncodedWhole() throws IOException {
    Sink sink = new Sink();
    EncodingWriter writer = new EncodingWriter(sink, StandardCharsets.UTF_8);
    String emoji = "😀";

    writer.write("a" + emoji.charAt(0));
    assertThat(sink.text()).isEqualTo("a");
    writer.write(emoji.charAt(1) + "b");

    assertThat(sink.text()).isEqualTo("a" + emoji + "b");
  }

  @Test
  void loneHighSurrogateAtCloseIsReplacedAndTheStreamClosed() throws IOException {
    Sink sink = new Sink();
    EncodingWriter writer = new EncodingWriter(sink, StandardCharsets.UTF_8);

    writer.write("x\uD83D");
    writer.close();

    assertThat(sink.text()).isEqualTo("x?");
    assertThat(sink.closed).isTrue();
  }

  @Test
  void writesLargerThanTheEncodeBufferArriveComplete() throws IOException {
    Sink sink = new Sink();
    EncodingWriter writer = new EncodingWriter(sink, StandardCharsets.UTF_8);
    String big = "✓".repeat(10_000);

    writer.write(big);

    assertThat(sink.text()).isEqualTo(big);
  }

  @Test
  void usesTheGivenCharset() throws IOException {
    Sink sink = new Sink();
    EncodingWriter writer = new EncodingWriter(sink, StandardCharsets.ISO_8859_1);

    writer.write("é€");

    assertThat(sink.bytes.toByteArray()).containsExactly(0xE9, '?');
  }
}
