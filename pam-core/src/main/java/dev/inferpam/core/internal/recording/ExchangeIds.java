package dev.inferpam.core.internal.recording;

import java.security.SecureRandom;
import java.time.Clock;

/**
 * Generates ULID-style exchange ids: 26 Crockford base32 characters, 48 bits of milliseconds
 * then 80 random bits, so ids sort by time. Thread-safe.
 */
public final class ExchangeIds {
  private static final char[] ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ".toCharArray();
  private final Clock clock;
  private final SecureRandom random = new SecureRandom();

  public ExchangeIds(Clock clock) {
    this.clock = clock;
  }

  public String next() {
    long time = clock.millis();
    byte[] rnd = new byte[10];
    random.nextBytes(rnd);
    char[] out = new char[26];
    for (int i = 9; i >= 0; i--) {
      out[i] = ALPHABET[(int) (time & 31)];
      time >>>= 5;
    }
    // 80 random bits -> 16 characters
    long hi = 0;
    for (int i = 0; i < 5; i++) hi = (hi << 8) | (rnd[i] & 0xff);
    long lo = 0;
    for (int i = 5; i < 10; i++) lo = (lo << 8) | (rnd[i] & 0xff);
    for (int i = 17; i >= 10; i--) {
      out[i] = ALPHABET[(int) (hi & 31)];
      hi >>>= 5;
    }
    for (int i = 25; i >= 18; i--) {
      out[i] = ALPHABET[(int) (lo & 31)];
      lo >>>= 5;
    }
    return new String(out);
  }
}
