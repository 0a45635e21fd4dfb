package dev.inferpam.benchmarks.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class LoadResultTest {

  @Test
  void quantilesAreTakenAsConcurrencyPyTakesThem() {
    // 1..100 ms: concurrency.py's a[min(n - 1, int(p * n))]
    long[] sorted = LongStream.rangeClosed(1, 100).map(v -> v * 1_000_000).toArray();
    assertThat(LoadResult.quantileMillis(sorted, 0.5)).isEqualTo(51.0);
    assertThat(LoadResult.quantileMillis(sorted, 0.9)).isEqualTo(91.0);
    assertThat(LoadResult.quantileMillis(sorted, 0.99)).isEqualTo(100.0);
    assertThat(LoadResult.quantileMillis(sorted, 1)).isEqualTo(100.0);
    assertThat(LoadResult.quantileMillis(new long[] {2_500_000}, 0.99)).isEqualTo(2.5);
    assertThat(LoadResult.quantileMillis(new long[0], 0.5)).isNaN();
    assertThatThrownBy(() -> LoadResult.quantileMillis(sorted, 1.5))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("quantile must be in [0, 1], was 1.5");
  }

  @Test
  void errorsAreListedMostFrequentFirstAndMakeTheRunUnclean() {
    LoadResult r =
        new LoadResult(
            "gateway",
            10,
            4,
            new long[0],
            new long[0],
            new long[0],
            Map.of("status 503", 1, "unfinished at deadline: streaming", 5),
            Map.of(),
            Map.of(),
            10,
            1);
    assertThat(r.errors().keySet())
        .containsExactly("unfinished at deadline: streaming", "status 503");
    assertThat(r.failed()).isEqualTo(6);
    assertThat(r.clean()).isFalse();
    assertThat(
            new LoadResult("direct", 3, 3, null, null, null, Map.of(), Map.of(), Map.of(), 3, 1)
                .clean())
        .isTrue();
  }
}
