package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Runs the benchmark methods a few times outside JMH, so a broken setup fails {@code ./mvnw
 * verify} rather than the next person's benchmark run, and checks what a caller would receive.
 * Measures nothing.
 */
class RelayBenchmarkTest {
  private final RelayBenchmark benchmark = new RelayBenchmark();

  @Test
  void everyExchangeIsRelayedWholeWithEitherPolicy() throws Exception {
    for (String policy : new String[] {"full", "identity"}) {
      RelayBenchmark.Rig rig = new RelayBenchmark.Rig();
      rig.policy = policy;
      rig.start(); // itself one exchange of each kind, checked
      try {
        for (int i = 0; i < 20; i++) {
          String completion = new String(benchmark.completion(rig), StandardCharsets.UTF_8);
          assertThat(completion).startsWith("{\"id\":").contains("\"total_tokens\":630");
          String stream = new String(benchmark.stream(rig), StandardCharsets.UTF_8);
          assertThat(stream.split("\n\n")).as(policy).hasSize(101);
          assertThat(stream).startsWith("data: {").endsWith("data: [DONE]\n\n");
        }
      } finally {
        rig.stop();
      }
    }
  }
}
