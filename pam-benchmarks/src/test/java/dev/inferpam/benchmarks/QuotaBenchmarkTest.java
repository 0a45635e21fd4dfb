package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import dev.inferpam.core.internal.quotas.Quotas;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Runs the benchmark methods a few times outside JMH, so a broken setup fails {@code ./mvnw
 * verify} rather than the next person's benchmark run, and checks that each call is admitted,
 * counted and charged its tokens. Measures nothing.
 */
class QuotaBenchmarkTest {

  private final QuotaBenchmark benchmark = new QuotaBenchmark();
  private final QuotaBenchmark.Budget state = new QuotaBenchmark.Budget();

  @Test
  void everyCallIsAdmittedCountedAndCharged() throws Exception {
    state.setUp(); // itself one request, checked
    int calls = 1;
    for (int i = 0; i < 50; i++) {
      Map<String, Long> left =
          i % 2 == 0 ? benchmark.onePrincipal1Thread(state) : benchmark.onePrincipal8Threads(state);
      calls++;
      assertThat(left)
          .containsExactlyInAnyOrderEntriesOf(
              Map.of(
                  "requests_per_minute", QuotaBenchmark.BOUND - calls,
                  "tokens_per_minute",
                      QuotaBenchmark.BOUND - calls * QuotaBenchmark.TOKENS_PER_REQUEST,
                  "tokens_per_day",
                      QuotaBenchmark.BOUND - calls * QuotaBenchmark.TOKENS_PER_REQUEST));
    }
    assertUsed(calls);
  }

  @Test
  void eightThreadsOnOnePrincipalLoseNoCount() throws Exception {
    state.setUp();
    eightThreads(500);
    assertUsed(1 + 8 * 500);
  }

  @Test
  void withTheRedisStoreEightThreadsLoseNoCountEither() throws Exception {
    state.store = "redis";
    state.setUp(); // starts a redis-server of its own
    try {
      eightThreads(50);
      assertUsed(1 + 8 * 50);
    } finally {
      state.tearDown();
    }
  }

  /** Eight threads, each making {@code perThread} requests on the one principal. */
  private void eightThreads(int perThread) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        done.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < perThread; i++) benchmark.onePrincipal8Threads(state);
                }));
      }
      for (Future<?> f : done) f.get(30, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
  }

  /** The counters, as the quota endpoint reads them: every call counted once, with its tokens. */
  private void assertUsed(long calls) {
    List<Quotas.EntryStatus> status = state.quotas.status(state.principal);
    assertThat(status).hasSize(1);
    assertThat(status.get(0).bounds())
        .extracting(Quotas.BoundStatus::bound, Quotas.BoundStatus::used)
        .containsExactly(
            tuple(Quotas.Bound.REQUESTS_PER_MINUTE, calls),
            tuple(Quotas.Bound.TOKENS_PER_MINUTE, calls * QuotaBenchmark.TOKENS_PER_REQUEST),
            tuple(Quotas.Bound.TOKENS_PER_DAY, calls * QuotaBenchmark.TOKENS_PER_REQUEST));
  }
}
