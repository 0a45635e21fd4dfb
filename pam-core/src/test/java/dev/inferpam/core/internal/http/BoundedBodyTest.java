package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class BoundedBodyTest {

  private static byte[] bytes(int n) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) b[i] = (byte) ('a' + i % 26);
    return b;
  }

  /** Counts what was read, to prove the limit is never read past by more than one byte. */
  private static final class Counting extends ByteArrayInputStream {
    int read;

    Counting(byte[] b) {
      super(b);
    }

    @Override
    public synchronized int read() {
      int c = super.read();
      if (c >= 0) read++;
      return c;
    }

    @Override
    public synchronized int read(byte[] b, int off, int len) {
      int n = super.read(b, off, len);
      if (n > 0) read += n;
      return n;
    }
  }

  @Test
  void readsABodyOfTheDeclaredLength() throws IOException {
    byte[] body = bytes(1024);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), 1024, 4096)).isEqualTo(body);
  }

  @Test
  void readsABodyOfUnknownLength() throws IOException {
    byte[] body = bytes(20_000);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), -1, 65_536)).isEqualTo(body);
  }

  @Test
  void keepsWhatArrivedWhenTheBodyIsShorterThanDeclared() throws IOException {
    byte[] body = bytes(100);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), 300, 4096)).isEqualTo(body);
  }

  @Test
  void readsOnWhenTheBodyIsLongerThanDeclared() throws IOException {
    byte[] body = bytes(10_000);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), 100, 65_536)).isEqualTo(body);
  }

  @Test
  void refusesADeclaredLengthOverTheLimitWithoutReading() {
    Counting in = new Counting(bytes(10));
    assertThatThrownBy(() -> BoundedBody.read(in, 5000, 4096))
        .isInstanceOf(BoundedBody.TooLargeException.class)
        .hasMessage("request body is larger than 4096 bytes");
    assertThat(in.read).isZero();
  }

  @Test
  void refusesABodyLongerThanTheLimitReadingAtMostOneBytePastIt() {
    for (long declared : new long[] {-1, 0, 100, 4096}) {
      Counting in = new Counting(bytes(50_000));
      assertThatThrownBy(() -> BoundedBody.read(in, declared, 4096))
          .as("declared %d", declared)
          .isInstanceOf(BoundedBody.TooLargeException.class);
      assertThat(in.read).as("declared %d", declared).isLessThanOrEqualTo(4097);
    }
  }

  @Test
  void acceptsABodyOfExactlyTheLimit() throws IOException {
    byte[] body = bytes(4096);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), -1, 4096)).isEqualTo(body);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), 4096, 4096)).isEqualTo(body);
    assertThat(BoundedBody.read(new ByteArrayInputStream(body), 10, 4096)).isEqualTo(body);
  }

  @Test
  void anAbsentOrEmptyBodyIsEmpty() throws IOException {
    assertThat(BoundedBody.read(null, -1, 10)).isEmpty();
    assertThat(BoundedBody.read(InputStream.nullInputStream(), 0, 10)).isEmpty();
    assertThat(BoundedBody.read(InputStream.nullInputStream(), -1, 10)).isEmpty();
    assertThat(Arrays.equals(BoundedBody.read(InputStream.nullInputStream(), 5, 10), new byte[0]))
        .isTrue();
  }
}
