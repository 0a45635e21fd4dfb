package dev.inferpam.core.adapter;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** A client adapter's request body: kept up to the limit and one byte more, the rest counted. */
class BodyCaptureTest {
  @Test
  void aBodyWithinTheLimitIsKeptWhole() throws Exception {
    BodyCapture c = new BodyCapture(10);
    c.write("hello".getBytes(StandardCharsets.UTF_8));
    c.write('!');
    assertThat(c.size()).isEqualTo(6);
    assertThat(new String(c.bytes(), StandardCharsets.UTF_8)).isEqualTo("hello!");
    assertThat(c.in().readAllBytes()).isEqualTo(c.bytes());
  }

  @Test
  void aBodyOverTheLimitKeepsOneByteMoreAndCountsTheRest() {
    BodyCapture c = new BodyCapture(4);
    for (int i = 0; i < 1000; i++) c.write(new byte[1000], 0, 1000);
    assertThat(c.size()).isEqualTo(1_000_000);
    assertThat(c.bytes()).hasSize(5);
  }
}
