package dev.inferpam.benchmarks;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What a ratio to {@link EndToEndBenchmark#completionPlain} means on the machine at hand: the
 * same plain call (same model server, same client, same bodies) with {@code busyMicros} of pure
 * CPU spent on the calling thread before each call, a spin on {@link System#nanoTime()} that
 * touches no memory, so that no cache or allocation effect is in it.
 *
 * <p>An adapter cannot cost less than a spin of the same CPU time, so the ratio this benchmark
 * measures for a spin of <i>x</i> µs is a lower bound for any caller-side work of <i>x</i> µs.
 * On a small (virtual) machine the wall time grows by more than the spin: the model server's
 * threads, given a little longer, have gone to sleep by the time the request arrives, and waking
 * them (an interrupt to another virtual CPU) is slow. {@code busyMicros=0} is the plain call
 * itself, measured in the same run for the ratios.
 *
 * <p>Run: {@code java -jar pam-benchmarks/target/benchmarks.jar LoopbackCalibrationBenchmark}
 * (about 6 minutes).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Threads(1)
@Fork(1)
@Warmup(iterations = 15, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 3, timeUnit = TimeUnit.SECONDS)
public class LoopbackCalibrationBenchmark {

  /** The CPU time spent before each call. */
  @State(Scope.Thread)
  public static class Busy {
    @Param({"0", "5", "10", "20"})
    public long busyMicros;
  }

  /** Spins for {@code micros} µs of wall time on the calling thread; returns the loop count. */
  static long spin(long micros) {
    if (micros <= 0) return 0;
    long end = System.nanoTime() + TimeUnit.MICROSECONDS.toNanos(micros);
    long loops = 0;
    while (System.nanoTime() < end) loops++;
    return loops;
  }

  @Benchmark
  public byte[] completionPlainAfterSpin(EndToEndBenchmark.Rig rig, Busy busy) throws IOException {
    spin(busy.busyMicros); // its loop calls System.nanoTime() until the time is up: never optimised
    // away
    return EndToEndBenchmark.complete(rig.plain, rig.completionPlain);
  }
}
