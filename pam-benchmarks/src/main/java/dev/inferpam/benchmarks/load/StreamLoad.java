package dev.inferpam.benchmarks.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * The load benchmark: N concurrent slow streams through the gateway, against a direct baseline in
 * the same run, on {@code 127.0.0.1} only and bounded in time. Not JMH: a load test, run as
 *
 * <pre>
 * java -cp pam-benchmarks/target/benchmarks.jar dev.inferpam.benchmarks.load.StreamLoad \
 *     --streams 5000 --ramp 5 [--gateway-java /usr/lib/jvm/temurin-25-jdk-amd64/bin/java]
 * </pre>
 *
 * <p>It starts a slow model server in this process ({@link SseUpstream}: 100 events and {@code
 * [DONE]} 50 ms apart, about 5 s a stream, no thread per stream), the gateway as a separate
 * process ({@link GatewayProcess}, {@code pam-gateway.jar serve} with a policy it writes: an API
 * key entitled to the model, the full default policy or identity and entitlements only), and then,
 * target after target (direct to the model server first, then the gateway, then any {@code
 * --target}), opens N streams at an even rate over the ramp with a non-blocking client ({@link
 * StreamClient}) and follows each to its end. For each target it reports completion, errors by
 * kind, the most streams open at once, time to first event and stream duration, and for the
 * gateway process its CPU time per stream, resident memory and heap (after a full collection)
 * before the load and at its plateau, and so memory per held stream. {@code --help} lists the
 * options; exit status 0 when every stream of every target completed, 1 otherwise, 2 on a bad
 * argument.
 */
public final class StreamLoad {

  static final String MODEL = "gpt-4o-mini";
  static final String DIRECT = "direct";
  static final String GATEWAY = "gateway";

  private static final String USAGE =
      String.join(
          "\n",
          "usage: java -cp benchmarks.jar dev.inferpam.benchmarks.load.StreamLoad [options]",
          "  --streams N            concurrent streams per target (default 1000)",
          "  --ramp SECONDS         open them at an even rate over this long (default 5)",
          "  --interval-ms MS       between two events of a stream (default 50)",
          "  --events N             chunk events before [DONE] (default 100: 101 writes, 5 s)",
          "  --deadline SECONDS     per target; then what is open is unfinished",
          "                         (default ramp + 2 x stream length + 30)",
          "  --warmup N             streams per target before measuring, opened over one",
          "                         stream's length (at least 1 s; default 100)",
          "  --policy-kind KIND     full (default: masking, batched recording, parameters,",
          "                         blocks, upstream credential) | identity (API key and",
          "                         entitlements only)",
          "  --gateway-java PATH    java for the gateway (default: this one)",
          "  --gateway-jvm-args S   JVM options for the gateway, split on spaces",
          "  --gateway-jar PATH     default pam-gateway/target/pam-gateway.jar",
          "  --no-gateway           only direct and --target targets",
          "  --target NAME=URL[;Header=Value...]  one more target after the gateway (127.0.0.1",
          "                         only; a URL without a path gets /v1/chat/completions)",
          "  --pid NAME=PID         measure this process (RSS, CPU) while target NAME runs",
          "  --upstream-port N      the model server's port (default 0: a free one), to put",
          "                         e.g. an nginx in front of it",
          "  --client-threads N     client selector threads (default 2)",
          "  --upstream-threads N   model server selector threads (default 2)",
          "  --no-heap              no jcmd GC.run / GC.heap_info in the gateway",
          "  --json FILE            also write the results as JSON");

  private StreamLoad() {}

  public static void main(String[] args) throws Exception {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs the benchmark; returns the exit status. */
  static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      err.println("StreamLoad: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    if (o.help) {
      out.println(USAGE);
      return 0;
    }
    return new StreamLoad.Session(o, out).run();
  }

  /** One invocation: the model server, the gateway, the targets, the report. */
  private static final class Session {
    private final Options o;
    private final PrintStream out;
    private final long self = ProcessHandle.current().pid();
    private final long ticksPerSecond = ProcessProbe.ticksPerSecond();
    private final List<Map<String, Object>> json = new ArrayList<>();
    private final List<Row> rows = new ArrayList<>();

    Session(Options o, PrintStream out) {
      this.o = o;
      this.out = out;
    }

    int run() throws Exception {
      long streamMillis = o.events * o.intervalMs;
      double deadline =
          Double.isNaN(o.deadlineSeconds)
              ? o.rampSeconds + 2 * streamMillis / 1000.0 + 30
              : o.deadlineSeconds;
      out.printf(
          Locale.ROOT,
          "StreamLoad: %d streams a target over %.1f s; %d events + [DONE] %d ms apart (%.2f s a"
              + " stream); deadline %.0f s a target; warm-up %d streams a target; threads: %d"
              + " client, %d model server%n",
          o.streams,
          o.rampSeconds,
          o.events,
          o.intervalMs,
          streamMillis / 1000.0,
          deadline,
          o.warmup,
          o.clientThreads,
          o.upstreamThreads);
      out.println(
          "machine: "
              + Runtime.getRuntime().availableProcessors()
              + " cpus, load average "
              + loadAverage()
              + "; this JVM "
              + System.getProperty("java.version"));
      // each stream: the client's socket and the model server's here; the gateway's two there
      long needed = 2L * o.streams + 200;
      checkFiles("this process", ProcessProbe.openFilesLimit(self), needed);

      Path work = Files.createTempDirectory("inferpam-load-");
      byte[] body =
          ("{\"model\":\""
                  + MODEL
                  + "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}")
              .getBytes(StandardCharsets.UTF_8);
      GatewayProcess gateway = null;
      Thread hook = null;
      try (SseUpstream upstream =
          SseUpstream.start(o.upstreamPort, o.events, o.intervalMs, o.upstreamThreads)) {
        out.println("model server: " + upstream.uri() + " (in this process)");
        List<StreamClient.Target> targets = new ArrayList<>();
        targets.add(
            new StreamClient.Target(
                DIRECT,
                new InetSocketAddress("127.0.0.1", upstream.uri().getPort()),
                SseUpstream.PATH,
                Map.of("Authorization", "Bearer sk-load-upstream")));
        if (o.gateway) {
          String key = apiKey();
          Path credential = Files.writeString(work.resolve("upstream-key"), "sk-load-upstream\n");
          Path policy =
              Files.writeString(
                  work.resolve("policy.yaml"),
                  policyYaml(o.policyKind, sha256(key), credential, work.resolve("recordings")));
          gateway =
              GatewayProcess.start(
                  o.gatewayJava,
                  o.gatewayJvmArgs,
                  o.gatewayJar,
                  policy,
                  upstream.uri(),
                  work,
                  Duration.ofSeconds(60));
          GatewayProcess g = gateway;
          hook = new Thread(() -> ProcessHandle.of(g.pid()).ifPresent(ProcessHandle::destroy));
          Runtime.getRuntime().addShutdownHook(hook);
          out.println(
              "gateway: "
                  + gateway.uri()
                  + " pid "
                  + gateway.pid()
                  + ", "
                  + o.gatewayJava
                  + (o.gatewayJvmArgs.isEmpty() ? "" : " " + String.join(" ", o.gatewayJvmArgs))
                  + ", policy "
                  + o.policyKind);
          checkFiles("the gateway", ProcessProbe.openFilesLimit(gateway.pid()), needed);
          targets.add(
              new StreamClient.Target(
                  GATEWAY,
                  new InetSocketAddress("127.0.0.1", gateway.uri().getPort()),
                  SseUpstream.PATH,
                  Map.of("Authorization", "Bearer " + key)));
        }
        targets.addAll(o.extras);

        for (StreamClient.Target t : targets) {
          Probe probe = null;
          if (t.name().equals(GATEWAY) && gateway != null) {
            probe = new Probe(gateway.pid(), o.heap ? gateway.jcmd() : null);
          } else if (o.pids.containsKey(t.name())) {
            probe = new Probe(o.pids.get(t.name()), null);
          }
          measure(t, body, probe, (long) (deadline * 1e9), upstream);
          if (t.name().equals(GATEWAY) && gateway != null) {
            if (!gateway.alive()) {
              out.println("the gateway has exited:" + gateway.stderrTail());
              gateway = null;
            } else if (!rows.get(rows.size() - 1).result.clean()) {
              String tail = gateway.stderrTail();
              if (!tail.isEmpty()) out.println("  the gateway's standard error ends" + tail);
            }
          }
        }
      } finally {
        if (gateway != null) gateway.close();
        if (hook != null) Runtime.getRuntime().removeShutdownHook(hook);
        deleteTree(work);
      }

      report();
      if (o.json != null) writeJson(deadline);
      boolean clean = rows.stream().allMatch(r -> r.result.clean());
      out.println(clean ? "all streams completed" : "NOT all streams completed: exit 1");
      return clean ? 0 : 1;
    }

    private void measure(
        StreamClient.Target t, byte[] body, Probe probe, long deadlineNanos, SseUpstream upstream)
        throws InterruptedException {
      out.println();
      out.println(
          t.name()
              + ": http://"
              + t.address().getHostString()
              + ":"
              + t.address().getPort()
              + t.path());
      if (o.warmup > 0) {
        // gently, over a stream's length: a cold JVM is slow, and this is to warm it, not load it
        long warmRamp = Math.max(TimeUnit.SECONDS.toNanos(1), upstream.streamNanos());
        long warmDeadline = warmRamp + 2 * upstream.streamNanos() + TimeUnit.SECONDS.toNanos(30);
        LoadResult w =
            StreamClient.start(t, body, o.warmup, warmRamp, warmDeadline, o.events, o.clientThreads)
                .await();
        out.println(
            "  warm-up: "
                + w.completed()
                + "/"
                + w.streams()
                + " completed"
                + (w.errors().isEmpty() ? "" : ", errors " + w.errors() + " " + w.samples()));
      }
      Row row = new Row(t.name(), probe);
      if (probe != null) {
        probe.heapIdle = probe.heap();
        probe.rssIdle = ProcessProbe.rssKib(probe.pid);
        probe.cpuBefore = ProcessProbe.cpuTicks(probe.pid);
      }
      OptionalLong selfCpuBefore = ProcessProbe.cpuTicks(self);
      String loadBefore = loadAverage();

      StreamClient.Run run =
          StreamClient.start(
              t,
              body,
              o.streams,
              (long) (o.rampSeconds * 1e9),
              deadlineNanos,
              o.events,
              o.clientThreads);
      ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor();
      AtomicLong rssMax = new AtomicLong(-1);
      if (probe != null) {
        long pid = probe.pid;
        sampler.scheduleAtFixedRate(
            () -> ProcessProbe.rssKib(pid).ifPresent(v -> rssMax.accumulateAndGet(v, Math::max)),
            0,
            100,
            TimeUnit.MILLISECONDS);
      }
      try {
        if (run.awaitRampEnd(deadlineNanos, TimeUnit.NANOSECONDS) && probe != null) {
          // the plateau: every stream opened, none of the first ones finished yet
          int openBefore = run.open();
          probe.rssPlateau = ProcessProbe.rssKib(probe.pid);
          probe.filesPlateau = ProcessProbe.openFiles(probe.pid);
          if (probe.jcmd != null) {
            long gc = System.nanoTime();
            probe.heapPlateau = probe.heap();
            probe.plateauJcmdMillis = (System.nanoTime() - gc) / 1e6;
          }
          probe.openAtPlateau = (openBefore + run.open()) / 2.0;
        }
        row.result = run.await();
      } finally {
        sampler.shutdownNow();
      }
      row.loadAverage = loadBefore + " -> " + loadAverage();
      row.selfCpuMillisPerStream = cpuMillisPerStream(selfCpuBefore, ProcessProbe.cpuTicks(self));
      if (probe != null) {
        probe.cpuMillisPerStream =
            cpuMillisPerStream(probe.cpuBefore, ProcessProbe.cpuTicks(probe.pid));
        probe.rssMax = rssMax.get() < 0 ? OptionalLong.empty() : OptionalLong.of(rssMax.get());
        probe.hwm = ProcessProbe.peakRssKib(probe.pid);
      }
      rows.add(row);
      printRow(row);
      out.println(
          "  model server so far: "
              + upstream.streamsStarted()
              + " streams begun, "
              + upstream.streamsCompleted()
              + " completed, "
              + upstream.streamsFailed()
              + " cut off, "
              + upstream.connectionsAccepted()
              + " connections accepted");
    }

    private double cpuMillisPerStream(OptionalLong before, OptionalLong after) {
      if (before.isEmpty() || after.isEmpty()) return Double.NaN;
      return (after.getAsLong() - before.getAsLong()) * 1000.0 / ticksPerSecond / o.streams;
    }

    private void printRow(Row r) {
      LoadResult x = r.result;
      out.printf(
          Locale.ROOT,
          "  done %d/%d, errors %d, peak open %d | first event ms p50 %s p90 %s p99 %s max %s"
              + " | stream ms p50 %s p99 %s max %s | client lag ms p99 %s max %s | wall %.1f s%n",
          x.completed(),
          x.streams(),
          x.failed(),
          x.peakOpen(),
          ms(x.firstEventNanos(), 0.5),
          ms(x.firstEventNanos(), 0.9),
          ms(x.firstEventNanos(), 0.99),
          ms(x.firstEventNanos(), 1),
          ms(x.durationNanos(), 0.5),
          ms(x.durationNanos(), 0.99),
          ms(x.durationNanos(), 1),
          ms(x.lagNanos(), 0.99),
          ms(x.lagNanos(), 1),
          x.wallNanos() / 1e9);
      x.errors()
          .forEach(
              (kind, count) -> {
                String sample = x.samples().getOrDefault(kind, "");
                long[] after = x.errorAfterNanos().getOrDefault(kind, new long[0]);
                out.println(
                    "  error: "
                        + count
                        + " x "
                        + kind
                        + (after.length == 0
                            ? ""
                            : String.format(
                                Locale.ROOT,
                                " (ended %.1f s after the stream's start at the least, %.1f s"
                                    + " median)",
                                after[0] / 1e9,
                                after[after.length / 2] / 1e9))
                        + (sample.isEmpty() ? "" : " — " + sample.replaceAll("\\s+", " ")));
              });
      out.printf(
          Locale.ROOT,
          "  this process (client + model server) CPU %.2f ms a stream; load average %s%n",
          r.selfCpuMillisPerStream,
          r.loadAverage);
      Probe p = r.probe;
      if (p != null) {
        out.printf(
            Locale.ROOT,
            "  process %d: CPU %.2f ms a stream | RSS MiB idle %s, plateau %s, max sampled %s,"
                + " VmHWM %s | heap after GC MiB idle %s, plateau %s%s | open at plateau %.0f, fds"
                + " %s | per held stream: heap %s KiB, RSS %s KiB%n",
            p.pid,
            p.cpuMillisPerStream,
            mib(p.rssIdle),
            mib(p.rssPlateau),
            mib(p.rssMax),
            mib(p.hwm),
            mib(p.heapIdle),
            mib(p.heapPlateau),
            Double.isNaN(p.plateauJcmdMillis)
                ? ""
                : String.format(Locale.ROOT, " (jcmd %.0f ms)", p.plateauJcmdMillis),
            p.openAtPlateau,
            p.filesPlateau.isPresent() ? Long.toString(p.filesPlateau.getAsLong()) : "-",
            perStream(p.heapIdle, p.heapPlateau, p.openAtPlateau),
            perStream(p.rssIdle, p.rssPlateau, p.openAtPlateau));
      }
    }

    private void report() {
      out.println();
      out.printf(
          Locale.ROOT,
          "%-10s %11s %7s %9s | %-29s | %-20s | %9s | %s%n",
          "target",
          "done",
          "errors",
          "peak open",
          "first event ms p50/p90/p99/max",
          "stream ms p50/p99",
          "cpu ms/st",
          "per held stream heap / RSS KiB");
      for (Row r : rows) {
        LoadResult x = r.result;
        Probe p = r.probe;
        out.printf(
            Locale.ROOT,
            "%-10s %11s %7d %9d | %-29s | %-20s | %9s | %s%n",
            x.target(),
            x.completed() + "/" + x.streams(),
            x.failed(),
            x.peakOpen(),
            ms(x.firstEventNanos(), 0.5)
                + " / "
                + ms(x.firstEventNanos(), 0.9)
                + " / "
                + ms(x.firstEventNanos(), 0.99)
                + " / "
                + ms(x.firstEventNanos(), 1),
            ms(x.durationNanos(), 0.5) + " / " + ms(x.durationNanos(), 0.99),
            p == null ? "-" : String.format(Locale.ROOT, "%.2f", p.cpuMillisPerStream),
            p == null
                ? "-"
                : perStream(p.heapIdle, p.heapPlateau, p.openAtPlateau)
                    + " / "
                    + perStream(p.rssIdle, p.rssPlateau, p.openAtPlateau));
      }
      rows.stream()
          .filter(r -> r.result.target().equals(DIRECT))
          .findFirst()
          .ifPresent(
              d -> {
                double p99 = LoadResult.quantileMillis(d.result.firstEventNanos(), 0.99);
                double lag = LoadResult.quantileMillis(d.result.lagNanos(), 0.99);
                if (!(p99 <= 50) || !(lag <= 10)) {
                  out.printf(
                      Locale.ROOT,
                      "WARNING: direct's first event p99 is %.1f ms and the client opened streams"
                          + " up to %.1f ms late (p99): the client or the machine is a bottleneck"
                          + " here, so the other targets' figures are an upper bound (try more"
                          + " --client-threads or --upstream-threads, fewer streams, or a quieter"
                          + " machine)%n",
                      p99,
                      lag);
                }
              });
    }

    private void writeJson(double deadline) throws IOException {
      Map<String, Object> root = new LinkedHashMap<>();
      Map<String, Object> config = new LinkedHashMap<>();
      config.put("streams", o.streams);
      config.put("ramp_s", o.rampSeconds);
      config.put("events", o.events);
      config.put("interval_ms", o.intervalMs);
      config.put("deadline_s", deadline);
      config.put("warmup", o.warmup);
      config.put("policy_kind", o.policyKind);
      config.put("gateway_java", o.gatewayJava.toString());
      config.put("gateway_jvm_args", o.gatewayJvmArgs);
      config.put("client_threads", o.clientThreads);
      config.put("upstream_threads", o.upstreamThreads);
      config.put("cpus", Runtime.getRuntime().availableProcessors());
      root.put("config", config);
      List<Map<String, Object>> targets = new ArrayList<>();
      for (Row r : rows) targets.add(r.toJson());
      root.put("targets", targets);
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .writeValue(o.json.toFile(), root);
      out.println("wrote " + o.json);
    }

    private void checkFiles(String who, OptionalLong limit, long needed) {
      if (limit.isEmpty()) {
        out.println("open files: " + who + " has no limit");
      } else if (limit.getAsLong() < needed) {
        out.printf(
            "WARNING: open files limit of %s is %d, below the about %d needed (2 a stream + 200):"
                + " raise it (ulimit -n %d) or streams will fail with 'Too many open files'%n",
            who, limit.getAsLong(), needed, needed);
      } else {
        out.printf(
            "open files: %s may open %d (about %d needed)%n", who, limit.getAsLong(), needed);
      }
    }
  }

  /** What is measured of a process while one target runs. */
  private static final class Probe {
    final long pid;
    final Path jcmd;
    OptionalLong heapIdle = OptionalLong.empty();
    OptionalLong heapPlateau = OptionalLong.empty();
    OptionalLong rssIdle = OptionalLong.empty();
    OptionalLong rssPlateau = OptionalLong.empty();
    OptionalLong rssMax = OptionalLong.empty();
    OptionalLong hwm = OptionalLong.empty();
    OptionalLong filesPlateau = OptionalLong.empty();
    OptionalLong cpuBefore = OptionalLong.empty();
    double openAtPlateau = Double.NaN;
    double plateauJcmdMillis = Double.NaN;
    double cpuMillisPerStream = Double.NaN;

    Probe(long pid, Path jcmd) {
      this.pid = pid;
      this.jcmd = jcmd;
    }

    OptionalLong heap() {
      return jcmd == null ? OptionalLong.empty() : ProcessProbe.heapUsedAfterGcKib(jcmd, pid);
    }
  }

  /** One target's line in the report. */
  private static final class Row {
    final String target;
    final Probe probe;
    LoadResult result;
    double selfCpuMillisPerStream;
    String loadAverage;

    Row(String target, Probe probe) {
      this.target = target;
      this.probe = probe;
    }

    Map<String, Object> toJson() {
      LoadResult x = result;
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", target);
      m.put("n", x.streams());
      m.put("done", x.completed());
      m.put("errors", x.errors());
      m.put("error_samples", x.samples());
      Map<String, Object> after = new LinkedHashMap<>();
      x.errorAfterNanos().forEach((k, v) -> after.put(k, quantiles(v, false)));
      m.put("error_after_ms", after);
      m.put("peak_open", x.peakOpen());
      m.put("first_ms", quantiles(x.firstEventNanos(), true));
      m.put("stream_ms", quantiles(x.durationNanos(), false));
      m.put("client_lag_ms", quantiles(x.lagNanos(), false));
      m.put("wall_s", x.wallNanos() / 1e9);
      m.put("self_cpu_ms_per_stream", number(selfCpuMillisPerStream));
      m.put("load_average", loadAverage);
      if (probe != null) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("pid", probe.pid);
        p.put("cpu_ms_per_stream", number(probe.cpuMillisPerStream));
        p.put("rss_idle_mib", mibNumber(probe.rssIdle));
        p.put("rss_plateau_mib", mibNumber(probe.rssPlateau));
        p.put("rss_peak_mib", mibNumber(probe.rssMax));
        p.put("vm_hwm_mib", mibNumber(probe.hwm));
        p.put("heap_idle_mib", mibNumber(probe.heapIdle));
        p.put("heap_plateau_mib", mibNumber(probe.heapPlateau));
        p.put("open_at_plateau", number(probe.openAtPlateau));
        p.put("plateau_jcmd_ms", number(probe.plateauJcmdMillis));
        p.put(
            "fds_at_plateau",
            probe.filesPlateau.isPresent() ? probe.filesPlateau.getAsLong() : null);
        p.put(
            "heap_per_stream_kib",
            perStreamNumber(probe.heapIdle, probe.heapPlateau, probe.openAtPlateau));
        p.put(
            "rss_per_stream_kib",
            perStreamNumber(probe.rssIdle, probe.rssPlateau, probe.openAtPlateau));
        m.put("process", p);
      }
      return m;
    }

    private static Map<String, Object> quantiles(long[] sorted, boolean p90) {
      Map<String, Object> q = new LinkedHashMap<>();
      q.put("p50", number(LoadResult.quantileMillis(sorted, 0.5)));
      if (p90) q.put("p90", number(LoadResult.quantileMillis(sorted, 0.9)));
      q.put("p99", number(LoadResult.quantileMillis(sorted, 0.99)));
      q.put("max", number(LoadResult.quantileMillis(sorted, 1)));
      return q;
    }
  }

  // ---------------------------------------------------------------------------------------
  // formatting

  static String ms(long[] sorted, double p) {
    double v = LoadResult.quantileMillis(sorted, p);
    if (Double.isNaN(v)) return "-";
    return v < 10 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.0f", v);
  }

  private static String mib(OptionalLong kib) {
    return kib.isPresent() ? String.format(Locale.ROOT, "%.0f", kib.getAsLong() / 1024.0) : "-";
  }

  private static Double mibNumber(OptionalLong kib) {
    return kib.isPresent() ? kib.getAsLong() / 1024.0 : null;
  }

  /** (plateau - idle) / open, KiB, or "-". */
  static String perStream(OptionalLong idle, OptionalLong plateau, double open) {
    Double v = perStreamNumber(idle, plateau, open);
    return v == null ? "-" : String.format(Locale.ROOT, "%.1f", v);
  }

  private static Double perStreamNumber(OptionalLong idle, OptionalLong plateau, double open) {
    if (idle.isEmpty() || plateau.isEmpty() || !(open >= 1)) return null;
    return (plateau.getAsLong() - idle.getAsLong()) / open;
  }

  private static Double number(double v) {
    return Double.isNaN(v) ? null : v;
  }

  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return String.format(
          Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }
  }

  // ---------------------------------------------------------------------------------------
  // the gateway's policy

  /**
   * The gateway's policy: an API key (group {@code load}) entitled to {@value #MODEL} for chat and
   * completion; {@code identity} stops there, {@code full} adds the upstream credential from a
   * file, the admin presets blocked, the parameter rules, masking with every built-in detector
   * ({@code redact}) and batched recording of masked bodies.
   *
   * @throws IllegalArgumentException when {@code kind} is neither
   */
  static String policyYaml(String kind, String keySha256, Path credential, Path recordings) {
    String identity =
        "version: 1\n"
            + "identity:\n"
            + "  api-keys:\n"
            + "    - name: stream-load\n"
            + "      sha256: "
            + keySha256
            + "\n"
            + "      groups: [load]\n"
            + "entitlements:\n"
            + "  - groups: [load]\n"
            + "    models: [\""
            + MODEL
            + "\"]\n"
            + "    operations: [chat, completion]\n";
    return switch (kind) {
      case "identity" -> identity;
      case "full" ->
          identity
              + "upstream:\n"
              + "  credential:\n"
              + "    from-file: "
              + credential
              + "\n"
              + "block:\n"
              + "  presets: [ollama-admin, vllm-admin, triton-admin, torchserve-admin,"
              + " openai-admin]\n"
              + "parameters:\n"
              + "  deny: [logit_bias, logprobs, top_logprobs, echo, prompt_logprobs]\n"
              + "  max:\n"
              + "    max_tokens: 4096\n"
              + "    n: 1\n"
              + "masking:\n"
              + "  strategy: redact\n"
              + "recording:\n"
              + "  directory: "
              + recordings
              + "\n"
              + "  bodies: masked\n"
              + "  durability: batched\n";
      default ->
          throw new IllegalArgumentException("--policy-kind must be full or identity, was " + kind);
    };
  }

  static String apiKey() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return "sk-load-" + HexFormat.of().formatHex(b);
  }

  static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) return;
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // options

  /** The command line, validated. */
  static final class Options {
    int streams = 1000;
    double rampSeconds = 5;
    long intervalMs = 50;
    int events = 100;
    double deadlineSeconds = Double.NaN;
    int warmup = 100;
    String policyKind = "full";
    Path gatewayJava = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> gatewayJvmArgs = List.of();
    Path gatewayJar = Path.of("pam-gateway", "target", "pam-gateway.jar");
    boolean gateway = true;
    final List<StreamClient.Target> extras = new ArrayList<>();
    final Map<String, Long> pids = new LinkedHashMap<>();
    int upstreamPort = 0;
    int clientThreads = 2;
    int upstreamThreads = 2;
    Path json;
    boolean heap = true;
    boolean help;

    /**
     * @throws IllegalArgumentException naming the option and the bad value
     */
    static Options parse(String... args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        switch (a) {
          case "--help", "-h" -> o.help = true;
          case "--no-gateway" -> o.gateway = false;
          case "--no-heap" -> o.heap = false;
          default -> {
            if (i + 1 >= args.length) throw new IllegalArgumentException("unknown option " + a);
            String v = args[++i];
            switch (a) {
              case "--streams" -> o.streams = positiveInt(a, v);
              case "--ramp" -> o.rampSeconds = nonNegative(a, v);
              case "--interval-ms" -> o.intervalMs = (long) nonNegative(a, v);
              case "--events" -> {
                o.events = positiveInt(a, v);
                if (o.events < 2)
                  throw new IllegalArgumentException("--events must be >= 2, was " + v);
              }
              case "--deadline" -> {
                o.deadlineSeconds = nonNegative(a, v);
                if (o.deadlineSeconds == 0)
                  throw new IllegalArgumentException("--deadline must be > 0");
              }
              case "--warmup" -> o.warmup = (int) nonNegative(a, v);
              case "--policy-kind" -> {
                if (!v.equals("full") && !v.equals("identity")) {
                  throw new IllegalArgumentException(
                      "--policy-kind must be full or identity, was " + v);
                }
                o.policyKind = v;
              }
              case "--gateway-java" -> o.gatewayJava = Path.of(v);
              case "--gateway-jvm-args" ->
                  o.gatewayJvmArgs = v.isBlank() ? List.of() : List.of(v.trim().split("\\s+"));
              case "--gateway-jar" -> o.gatewayJar = Path.of(v);
              case "--target" -> o.extras.add(target(v));
              case "--pid" -> {
                int eq = v.indexOf('=');
                if (eq <= 0) throw new IllegalArgumentException("--pid must be NAME=PID, was " + v);
                o.pids.put(v.substring(0, eq), (long) positiveInt(a, v.substring(eq + 1)));
              }
              case "--upstream-port" -> o.upstreamPort = (int) nonNegative(a, v);
              case "--client-threads" -> o.clientThreads = positiveInt(a, v);
              case "--upstream-threads" -> o.upstreamThreads = positiveInt(a, v);
              case "--json" -> o.json = Path.of(v);
              default -> throw new IllegalArgumentException("unknown option " + a);
            }
          }
        }
      }
      return o;
    }

    /** {@code NAME=http://127.0.0.1:PORT[/path][;Header=Value...]}. */
    static StreamClient.Target target(String spec) {
      int eq = spec.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException(
            "--target must be NAME=URL[;Header=Value...], was " + spec);
      }
      String name = spec.substring(0, eq);
      if (name.equals(DIRECT) || name.equals(GATEWAY)) {
        throw new IllegalArgumentException("--target name " + name + " is taken");
      }
      String[] parts = spec.substring(eq + 1).split(";");
      URI uri;
      try {
        uri = URI.create(parts[0]);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--target " + name + ": bad URL " + parts[0]);
      }
      if (!"http".equals(uri.getScheme()) || uri.getPort() < 0) {
        throw new IllegalArgumentException(
            "--target " + name + ": need http://127.0.0.1:PORT, was " + parts[0]);
      }
      InetAddress address;
      try {
        address = InetAddress.getByName(uri.getHost());
      } catch (IOException e) {
        throw new IllegalArgumentException("--target " + name + ": unknown host " + uri.getHost());
      }
      if (!address.isLoopbackAddress()) {
        throw new IllegalArgumentException(
            "--target " + name + ": loopback addresses only, was " + uri.getHost());
      }
      String path =
          uri.getRawPath() == null || uri.getRawPath().isEmpty() || uri.getRawPath().equals("/")
              ? SseUpstream.PATH
              : uri.getRawPath();
      Map<String, String> headers = new LinkedHashMap<>();
      for (int i = 1; i < parts.length; i++) {
        int h = parts[i].indexOf('=');
        if (h <= 0) {
          throw new IllegalArgumentException(
              "--target " + name + ": a header must be Name=Value, was " + parts[i]);
        }
        headers.put(parts[i].substring(0, h), parts[i].substring(h + 1));
      }
      return new StreamClient.Target(
          name, new InetSocketAddress(address, uri.getPort()), path, headers);
    }

    private static int positiveInt(String option, String v) {
      try {
        int n = Integer.parseInt(v);
        if (n > 0) return n;
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new IllegalArgumentException(option + " must be a whole number > 0, was " + v);
    }

    private static double nonNegative(String option, String v) {
      try {
        double d = Double.parseDouble(v);
        if (d >= 0 && Double.isFinite(d)) return d;
      } catch (NumberFormatException e) {
        // reported below
      }
      throw new IllegalArgumentException(option + " must be a number >= 0, was " + v);
    }
  }
}
