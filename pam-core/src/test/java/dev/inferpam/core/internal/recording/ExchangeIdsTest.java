package dev.inferpam.core.internal.recording;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class ExchangeIdsTest {
  private static final String ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  private static final Instant NOW = Instant.parse("2026-11-29T12:34:56.789Z");

  static long decode(String base32) {
    long v = 0;
    for (char c : base32.toCharArray()) v = (v << 5) | ALPHABET.indexOf(c);
    return v;
  }

  @Test
  void anIdIsTheClocksMillisecondsThenRandomBitsInCrockfordBase32() {
    ExchangeIds ids = new ExchangeIds(Clock.fixed(NOW, ZoneOffset.UTC));

    String a = ids.next();
    String b = ids.next();

    assertThat(a).hasSize(26).matches("[0-9A-HJKMNP-TV-Z]{26}");
    assertThat(decode(a.substring(0, 10))).isEqualTo(NOW.toEpochMilli());
    assertThat(b.substring(0, 10)).isEqualTo(a.substring(0, 10));
    assertThat(b.substring(10))
        .as("same millisecond, other random bits")
        .isNotEqualTo(a.substring(10));
  }

  @Test
  void idsMadeByManyThreadsAtOnceAreDistinctAndEachThreadsSortByTime() throws Exception {
    ExchangeIds ids = new ExchangeIds(Clock.systemUTC());
    int threads = 8;
    int each = 5_000;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      CountDownLatch start = new CountDownLatch(1);
      List<Future<List<String>>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        Callable<List<String>> task =
            () -> {
              start.await();
              List<String> mine = new ArrayList<>(each);
              for (int i = 0; i < each; i++) mine.add(ids.next());
              return mine;
            };
        futures.add(pool.submit(task));
      }
      start.countDown();
      Set<String> all = new HashSet<>();
      for (Future<List<String>> f : futures) {
        List<String> mine = f.get();
        for (int i = 1; i < mine.size(); i++) {
          assertThat(mine.get(i).substring(0, 10))
              .isGreaterThanOrEqualTo(mine.get(i - 1).substring(0, 10));
        }
        all.addAll(mine);
      }
      assertThat(all).hasSize(threads * each);
    } finally {
      pool.shutdownNow();
    }
  }
}
