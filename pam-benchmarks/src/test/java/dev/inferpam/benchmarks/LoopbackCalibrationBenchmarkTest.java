package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Runs {@link LoopbackCalibrationBenchmark} once outside JMH: the call is the plain completion,
 * and the spin before it lasts at least what it is asked to. Measures nothing.
 */
class LoopbackCalibrationBenchmarkTest {

  @Test
  void theCallAfterTheSpinIsThePlainCompletion() throws Exception {
    EndToEndBenchmark.Rig rig = new EndToEndBenchmark.Rig();
    rig.policy = "bare";
    rig.setUp();
    try {
      LoopbackCalibrationBenchmark.Busy busy = new LoopbackCalibrationBenchmark.Busy();
      busy.busyMicros = 5;
      assertThat(new LoopbackCalibrationBenchmark().completionPlainAfterSpin(rig, busy))
          .isEqualTo(EndToEndBenchmark.completionBody());
    } finally {
      rig.tearDown();
    }
  }

  @Test
  void aSpinLastsAtLeastItsTimeAndNoSpinReturnsAtOnce() {
    assertThat(LoopbackCalibrationBenchmark.spin(0)).isZero();

    long start = System.nanoTime();
    long loops = LoopbackCalibrationBenchmark.spin(300);
    long took = System.nanoTime() - start;

    assertThat(took).isGreaterThanOrEqualTo(TimeUnit.MICROSECONDS.toNanos(300));
    assertThat(loops).isPositive();
  }
}
