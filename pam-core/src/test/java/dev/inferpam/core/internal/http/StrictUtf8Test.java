package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class StrictUtf8Test {

  @Test
  void decodesValidUtf8AndRefusesWhatALenientDecoderWouldReplace() {
    assertThat(StrictUtf8.decode(new byte[] {'c', 'a', 'f', (byte) 0xC3, (byte) 0xA9}))
        .isEqualTo("caf\u00e9");
    assertThat(StrictUtf8.decode(new byte[0])).isEmpty();
    assertThat(StrictUtf8.decode(new byte[] {(byte) 0xC0, (byte) 0xAF}))
        .as("overlong '/'")
        .isNull();
    assertThat(StrictUtf8.decode(new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80}))
        .as("encoded surrogate")
        .isNull();
    assertThat(StrictUtf8.decode(new byte[] {'a', (byte) 0xC3})).as("cut short").isNull();
    assertThat(StrictUtf8.decode(new byte[] {(byte) 0xFF, 'a', 'b', (byte) 0xFF}, 1, 2))
        .as("a range")
        .isEqualTo("ab");
  }
}
