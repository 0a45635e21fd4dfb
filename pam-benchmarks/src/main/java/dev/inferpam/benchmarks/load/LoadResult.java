package dev.inferpam.benchmarks.load;

import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What happened to the streams of one run against one target.
 *
 * @param target the target's name
 * @param streams streams the run was to open
 * @param completed streams answered 200 with every event and {@code [DONE]}
 * @param firstEventNanos sorted, for every stream that received an event: from its start to its
 *     first {@code data:} line
 * @param durationNanos sorted, for every completed stream: from its start to {@code [DONE]}
 * @param lagNanos sorted, for every stream opened: how much later than its schedule the client
 *     opened it (the client's own delay; large values mean the client is the bottleneck)
 * @param errors by kind, most frequent first; streams that did not complete, each counted once
 * @param samples for each kind, what the first such stream said (a body, an event count)
 * @param errorAfterNanos for each kind, sorted: how long after its start each such stream ended
 *     (a timeout shows as a wall of equal values)
 * @param peakOpen the most streams open at once (request sent, not yet ended)
 * @param wallNanos from the first stream's start to the end of the last
 */
record LoadResult(
    String target,
    int streams,
    int completed,
    long[] firstEventNanos,
    long[] durationNanos,
    long[] lagNanos,
    Map<String, Integer> errors,
    Map<String, String> samples,
    Map<String, long[]> errorAfterNanos,
    int peakOpen,
    long wallNanos) {

  LoadResult {
    LinkedHashMap<String, Integer> sorted = new LinkedHashMap<>();
    errors.entrySet().stream()
        .sorted(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder()))
        .forEach(e -> sorted.put(e.getKey(), e.getValue()));
    errors = Collections.unmodifiableMap(sorted);
    samples = Collections.unmodifiableMap(new LinkedHashMap<>(samples));
    errorAfterNanos = Collections.unmodifiableMap(new LinkedHashMap<>(errorAfterNanos));
  }

  /** Streams that did not complete. */
  int failed() {
    return errors.values().stream().mapToInt(Integer::intValue).sum();
  }

  /** Whether every stream completed. */
  boolean clean() {
    return completed == streams && errors.isEmpty();
  }

  /**
   * The {@code p} quantile of {@code sorted}, in milliseconds, as {@code
   * ../shared/bench/gateway/concurrency.py} takes it: the element at {@code min(n - 1, floor(p *
   * n))}; {@code NaN} when there is none.
   *
   * @throws IllegalArgumentException when {@code p} is not within [0, 1]
   */
  static double quantileMillis(long[] sorted, double p) {
    if (p < 0 || p > 1) throw new IllegalArgumentException("quantile must be in [0, 1], was " + p);
    if (sorted.length == 0) return Double.NaN;
    int i = Math.min(sorted.length - 1, (int) (p * sorted.length));
    return sorted[i] / 1e6;
  }
}
