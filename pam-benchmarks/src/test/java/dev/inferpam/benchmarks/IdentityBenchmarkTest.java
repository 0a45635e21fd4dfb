package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Runs each benchmark once per token outside JMH, so a broken setup fails {@code ./mvnw verify}
 * rather than the next person's benchmark run. Measures nothing.
 */
class IdentityBenchmarkTest {

  private final IdentityBenchmark benchmark = new IdentityBenchmark();
  private final IdentityBenchmark.Issuer state = new IdentityBenchmark.Issuer();
  private final IdentityBenchmark.Cursor freshCursor = new IdentityBenchmark.Cursor();
  private final IdentityBenchmark.Cursor bareCursor = new IdentityBenchmark.Cursor();

  @AfterEach
  void tearDown() throws Exception {
    state.tearDown();
  }

  @Test
  void everyBenchmarkResolvesAliceWithoutRefetchingKeys() throws Exception {
    state.setUp();
    int fetchesAfterSetup = state.issuer.jwksFetches();

    for (int i = 0; i < IdentityBenchmark.RING; i++) {
      assertThat(benchmark.cachedToken(state).subject()).isEqualTo("alice");
      assertThat(benchmark.freshRs256(state, freshCursor).subject()).isEqualTo("alice");
      assertThat(benchmark.bareJdkSignatureVerify(state, bareCursor)).isTrue();
    }
    assertThat(fetchesAfterSetup).isPositive();
    assertThat(state.issuer.jwksFetches()).isEqualTo(fetchesAfterSetup);
  }
}
