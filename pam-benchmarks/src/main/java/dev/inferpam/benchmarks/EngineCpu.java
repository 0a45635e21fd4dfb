package dev.inferpam.benchmarks;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;

/**
 * The engine's processor time per exchange and per streamed event, every thread counted: the
 * caller's (what {@link RelayBenchmark} times) and the recorder's, which encodes, hashes and writes
 * the record on its own thread and which a JMH average leaves out. Same rig as {@link
 * RelayBenchmark} ({@code policy=full}: masking, batched recording); after a warm-up, {@code
 * N} completions and {@code N} streams, then CPU time per exchange by thread, and per event:
 * (stream − completion) / 101.
 *
 * <p>Run: {@code java -cp pam-benchmarks/target/benchmarks.jar
 * dev.inferpam.benchmarks.EngineCpu [warm-up] [N]} (defaults 30000 and 20000). Thread CPU time is
 * the kernel's, so another process on the cores changes it little.
 */
public final class EngineCpu {
  private EngineCpu() {}

  public static void main(String[] args) throws Exception {
    int warmup = args.length > 0 ? Integer.parseInt(args[0]) : 30_000;
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 20_000;
    RelayBenchmark.Rig rig = new RelayBenchmark.Rig();
    rig.policy = "full";
    rig.start();
    try {
      ThreadMXBean threads = ManagementFactory.getThreadMXBean();
      for (int i = 0; i < warmup; i++) {
        RelayBenchmark.exchange(
            rig, rig.request, java.util.List.of(rig.completion), "application/json");
        RelayBenchmark.exchange(rig, rig.streamRequest, rig.events, "text/event-stream");
      }
      double[] completion =
          measure(
              threads,
              n,
              () ->
                  RelayBenchmark.exchange(
                      rig, rig.request, java.util.List.of(rig.completion), "application/json"));
      double[] stream =
          measure(
              threads,
              n,
              () ->
                  RelayBenchmark.exchange(rig, rig.streamRequest, rig.events, "text/event-stream"));
      System.out.printf(
          "completion: caller %.2f us, recorder %.2f us, total %.2f us%n",
          completion[0], completion[1], completion[0] + completion[1]);
      System.out.printf(
          "stream:     caller %.2f us, recorder %.2f us, total %.2f us%n",
          stream[0], stream[1], stream[0] + stream[1]);
      int events = rig.events.size();
      System.out.printf(
          "per event (stream - completion) / %d: caller %.2f us, recorder %.2f us, total %.2f us%n",
          events,
          (stream[0] - completion[0]) / events,
          (stream[1] - completion[1]) / events,
          (stream[0] + stream[1] - completion[0] - completion[1]) / events);
    } finally {
      rig.stop();
    }
  }

  interface Exchange {
    void run() throws Exception;
  }

  /** Microseconds of CPU per exchange: the calling thread's, the recorder thread's. */
  private static double[] measure(ThreadMXBean threads, int n, Exchange exchange) throws Exception {
    long recorder0 = recorderCpu(threads);
    long caller0 = threads.getCurrentThreadCpuTime();
    for (int i = 0; i < n; i++) exchange.run();
    long caller1 = threads.getCurrentThreadCpuTime();
    // let the recorder catch up with what was handed over
    long recorder1 = recorderCpu(threads);
    for (int i = 0; i < 50; i++) {
      Thread.sleep(20);
      long r = recorderCpu(threads);
      if (r == recorder1) break;
      recorder1 = r;
    }
    return new double[] {(caller1 - caller0) / 1e3 / n, (recorder1 - recorder0) / 1e3 / n};
  }

  private static long recorderCpu(ThreadMXBean threads) {
    long sum = 0;
    for (ThreadInfo t : threads.getThreadInfo(threads.getAllThreadIds())) {
      if (t != null && t.getThreadName().startsWith("inferpam-recorder")) {
        long c = threads.getThreadCpuTime(t.getThreadId());
        if (c > 0) sum += c;
      }
    }
    return sum;
  }
}
