package dev.inferpam.benchmarks.load;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads what a process costs from Linux's {@code /proc} (resident memory, its high-water mark, CPU
 * time, the open-files limit) and, for a JVM, the heap in use after a full collection, with the
 * {@code jcmd} of that JVM's own JDK. Every reading is empty where it cannot be had (not Linux, the
 * process gone, no {@code jcmd}), never an exception.
 *
 * <p><b>Thread-safety:</b> stateless; {@link #heapUsedAfterGcKib} runs two {@code jcmd} processes
 * and waits for them.
 */
final class ProcessProbe {

  private static final Pattern USED = Pattern.compile("used (\\d+)([KMG])");

  private ProcessProbe() {}

  /** {@code VmRSS}: resident memory now, KiB. */
  static OptionalLong rssKib(long pid) {
    return statusField(pid, "VmRSS:");
  }

  /** {@code VmHWM}: the most resident memory the process has had, KiB. */
  static OptionalLong peakRssKib(long pid) {
    return statusField(pid, "VmHWM:");
  }

  private static OptionalLong statusField(long pid, String name) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(name)) {
          return OptionalLong.of(
              Long.parseLong(line.substring(name.length()).trim().split("\\s+")[0]));
        }
      }
    } catch (IOException | RuntimeException e) {
      // the process is gone, or this is not Linux
    }
    return OptionalLong.empty();
  }

  /** User and system CPU time the process has used, in clock ticks ({@link #ticksPerSecond}). */
  static OptionalLong cpuTicks(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      // after the command name in parentheses: field 3 (state) onwards; utime is 14, stime 15
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return OptionalLong.of(Long.parseLong(f[11]) + Long.parseLong(f[12]));
    } catch (IOException | RuntimeException e) {
      return OptionalLong.empty();
    }
  }

  /** {@code getconf CLK_TCK}, 100 when it cannot be asked. */
  static long ticksPerSecond() {
    try {
      Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
      if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0) return Long.parseLong(out);
    } catch (IOException | RuntimeException e) {
      // fall through to the usual value
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return 100;
  }

  /** The soft limit on open files, from {@code /proc/PID/limits}; empty when unlimited. */
  static OptionalLong openFilesLimit(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "limits"))) {
        if (line.startsWith("Max open files")) {
          String soft = line.substring("Max open files".length()).trim().split("\\s+")[0];
          return soft.equals("unlimited")
              ? OptionalLong.empty()
              : OptionalLong.of(Long.parseLong(soft));
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or gone
    }
    return OptionalLong.empty();
  }

  /** Files the process has open now (entries of {@code /proc/PID/fd}). */
  static OptionalLong openFiles(long pid) {
    try (var fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      return OptionalLong.of(fds.count());
    } catch (IOException | RuntimeException e) {
      return OptionalLong.empty();
    }
  }

  /**
   * Runs a full collection in the JVM {@code pid} ({@code jcmd PID GC.run}) and returns its heap
   * in use afterwards ({@code jcmd PID GC.heap_info}), KiB.
   *
   * @param jcmd the {@code jcmd} of the JDK the process runs on
   */
  static OptionalLong heapUsedAfterGcKib(Path jcmd, long pid) {
    try {
      if (run(List.of(jcmd.toString(), Long.toString(pid), "GC.run")) == null) {
        return OptionalLong.empty();
      }
      String info = run(List.of(jcmd.toString(), Long.toString(pid), "GC.heap_info"));
      return info == null ? OptionalLong.empty() : heapUsedKib(info);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return OptionalLong.empty();
    }
  }

  /**
   * The heap in use in the output of {@code jcmd GC.heap_info}: the sum of every "used N[KMG]" on
   * lines about the heap (G1's one line, Parallel's and Serial's generations, ZGC's), leaving out
   * Metaspace and class space.
   */
  static OptionalLong heapUsedKib(String heapInfo) {
    long kib = 0;
    boolean any = false;
    for (String line : heapInfo.split("\n")) {
      String t = line.trim();
      if (t.startsWith("Metaspace") || t.startsWith("class space")) continue;
      Matcher m = USED.matcher(t);
      if (m.find()) {
        long v = Long.parseLong(m.group(1));
        kib +=
            switch (m.group(2)) {
              case "G" -> v * 1024 * 1024;
              case "M" -> v * 1024;
              default -> v;
            };
        any = true;
      }
    }
    return any ? OptionalLong.of(kib) : OptionalLong.empty();
  }

  private static String run(List<String> command) throws InterruptedException {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return null;
      }
      return p.exitValue() == 0 ? out : null;
    } catch (IOException e) {
      return null;
    }
  }
}
