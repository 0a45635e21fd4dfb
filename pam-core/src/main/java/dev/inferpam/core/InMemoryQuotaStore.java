package dev.inferpam.core;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import dev.inferpam.api.QuotaStore;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The default {@link QuotaStore}: counters in this process's memory (a Caffeine cache), so limits
 * hold per process, not across replicas. Each counter is dropped once its window has ended, as
 * read from the injected {@link Clock}.
 *
 * <p><b>Bounded:</b> at most {@link #DEFAULT_MAXIMUM_COUNTERS} counters (or the number given),
 * about 150 bytes each. A principal uses one counter per matching limit entry and bound in the
 * current window, so the default holds some 30,000 principals with three bounds each. Past the
 * bound counters are dropped (Caffeine's size eviction, which favours keeping frequently used
 * ones: those added to; a {@link #get} alone does not count), which resets those budgets: size
 * it for the principals you expect.
 *
 * <p><b>Thread-safety:</b> thread-safe; each call is atomic for its counter (a lock-free
 * compare-and-set on the counter).
 */
public final class InMemoryQuotaStore implements QuotaStore {
  /** Counters kept at most by default. */
  public static final long DEFAULT_MAXIMUM_COUNTERS = 100_000;

  private record Counter(AtomicLong total, Instant windowEnd) {}

  private record Key(String key, long window) {}

  private final Cache<Key, Counter> counters;

  /** A store with {@link #DEFAULT_MAXIMUM_COUNTERS} on {@code clock}. */
  public InMemoryQuotaStore(Clock clock) {
    this(clock, DEFAULT_MAXIMUM_COUNTERS);
  }

  /**
   * @throws IllegalArgumentException when {@code maximumCounters} is not positive
   * @throws NullPointerException     when {@code clock} is null
   */
  public InMemoryQuotaStore(Clock clock, long maximumCounters) {
    Objects.requireNonNull(clock, "clock");
    if (maximumCounters <= 0) {
      throw new IllegalArgumentException("maximumCounters must be > 0, was " + maximumCounters);
    }
    this.counters =
        Caffeine.newBuilder()
            .maximumSize(maximumCounters)
            // Caffeine's clock: the injected one, so that a fake clock also expires counters.
            .ticker(() -> TimeUnit.MILLISECONDS.toNanos(clock.millis()))
            .expireAfter(
                Expiry.<Key, Counter>creating(
                    (k, c) -> {
                      Duration left = Duration.between(clock.instant(), c.windowEnd());
                      return left.isNegative() ? Duration.ZERO : left;
                    }))
            .build();
  }

  private AtomicLong counter(String key, long window, Instant windowEnd) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(windowEnd, "windowEnd");
    return counters
        .get(new Key(key, window), k -> new Counter(new AtomicLong(), windowEnd))
        .total();
  }

  @Override
  public long addIfWithin(String key, long window, long amount, long limit, Instant windowEnd) {
    AtomicLong total = counter(key, window, windowEnd);
    while (true) {
      long current = total.get();
      long next = current + amount;
      if (next > limit || next < current) return -1;
      if (total.compareAndSet(current, next)) return next;
    }
  }

  @Override
  public long add(String key, long window, long amount, Instant windowEnd) {
    return counter(key, window, windowEnd).addAndGet(amount);
  }

  @Override
  public long get(String key, long window) {
    // Quietly: a read leaves the eviction order alone; what keeps a counter is being added to (the
    // engine adds to a request counter on admission, to token counters after a forwarded request).
    // Recording reads as well made Caffeine replay twice as many accesses per request.
    Counter c =
        counters.policy().getIfPresentQuietly(new Key(Objects.requireNonNull(key, "key"), window));
    return c == null ? 0 : c.total().get();
  }

  @Override
  public String toString() {
    return "InMemoryQuotaStore[" + counters.estimatedSize() + " counters]";
  }
}
