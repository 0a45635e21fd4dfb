package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Runs each benchmark of {@link InterceptorCostBenchmark} once outside JMH, with each policy
 * variant, and checks what the caller got and what was recorded. Measures nothing.
 */
class InterceptorCostBenchmarkTest {

  @ParameterizedTest
  @ValueSource(strings = {"full", "no-masking", "no-recording", "bare"})
  void everyCallIsAnsweredInFullAndRecordedWhenThePolicyRecords(String policy) throws Exception {
    InterceptorCostBenchmark benchmark = new InterceptorCostBenchmark();
    InterceptorCostBenchmark.Rig rig = new InterceptorCostBenchmark.Rig();
    rig.policy = policy;
    rig.setUp();
    Path recordings = rig.dir.resolve("recordings");
    try {
      byte[] plain = benchmark.completionPlain(rig);
      byte[] intercepted = benchmark.completionInterceptor(rig);
      assertThat(plain).isEqualTo(EndToEndBenchmark.completionBody());
      // Nothing in the completion is personal data: masking, when on, changes nothing.
      assertThat(intercepted).isEqualTo(plain);
      assertThat(benchmark.streamPlain(rig)).isEqualTo(EndToEndBenchmark.EVENTS);
      assertThat(benchmark.streamInterceptor(rig)).isEqualTo(EndToEndBenchmark.EVENTS);
    } finally {
      rig.engine.close(); // flushes the recorder before its lines are counted
    }
    long lines;
    try (Stream<Path> files = Files.list(recordings)) {
      lines =
          files
              .filter(f -> f.getFileName().toString().endsWith(".jsonl"))
              .mapToLong(
                  f -> {
                    try (Stream<String> l = Files.lines(f)) {
                      return l.count();
                    } catch (java.io.IOException e) {
                      throw new java.io.UncheckedIOException(e);
                    }
                  })
              .sum();
    } finally {
      rig.tearDown();
    }
    boolean records = policy.equals("full") || policy.equals("no-masking");
    // setup makes one completion and one stream through the interceptor, the test one more each
    assertThat(lines).isEqualTo(records ? 4 : 0);
  }
}
