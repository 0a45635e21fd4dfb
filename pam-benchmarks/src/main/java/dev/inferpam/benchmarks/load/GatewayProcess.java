package dev.inferpam.benchmarks.load;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The gateway under test in its own process, as it runs in production: {@code java [JVM args]
 * -jar pam-gateway.jar serve --policy FILE --upstream URL --port 0}, ready once it has printed
 * {@code listening on http://ADDR:PORT}. Its standard output and error go to files in a work
 * directory, so nothing has to read them while it runs.
 *
 * <p><b>Thread-safety:</b> none needed; one owner starts and closes it.
 */
final class GatewayProcess implements AutoCloseable {

  private static final String LISTENING = "listening on ";

  private final Process process;
  private final URI uri;
  private final Path java;
  private final Path stderr;

  private GatewayProcess(Process process, URI uri, Path java, Path stderr) {
    this.process = process;
    this.uri = uri;
    this.java = java;
    this.stderr = stderr;
  }

  /**
   * Starts the gateway and waits for its {@code listening on} line.
   *
   * @throws IOException when it cannot be started, exits, or does not listen within {@code
   *     timeout}; the message ends with the last lines of its standard error
   */
  static GatewayProcess start(
      Path java,
      List<String> jvmArgs,
      Path jar,
      Path policy,
      URI upstream,
      Path workDir,
      Duration timeout)
      throws IOException, InterruptedException {
    if (!Files.isRegularFile(jar)) {
      throw new IOException(
          "no gateway jar at "
              + jar
              + " (build it: ./mvnw -B -o -pl pam-gateway -am package -DskipTests, or give"
              + " --gateway-jar)");
    }
    List<String> command = new ArrayList<>();
    command.add(java.toString());
    command.addAll(jvmArgs);
    command.addAll(
        List.of(
            "-jar",
            jar.toString(),
            "serve",
            "--policy",
            policy.toString(),
            "--upstream",
            upstream.toString(),
            "--port",
            "0"));
    Path stdout = workDir.resolve("gateway.out");
    Path stderr = workDir.resolve("gateway.err");
    Process p =
        new ProcessBuilder(command)
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile())
            .start();
    GatewayProcess started = null;
    long end = System.nanoTime() + timeout.toNanos();
    try {
      while (true) {
        for (String line : Files.readAllLines(stdout, StandardCharsets.UTF_8)) {
          if (line.startsWith(LISTENING)) {
            URI uri = URI.create(line.substring(LISTENING.length()).trim());
            started = new GatewayProcess(p, uri, java, stderr);
            return started;
          }
        }
        if (!p.isAlive()) {
          throw new IOException("the gateway exited with status " + p.exitValue() + tail(stderr));
        }
        if (System.nanoTime() - end > 0) {
          throw new IOException("the gateway did not listen within " + timeout + tail(stderr));
        }
        // a process that starts in seconds, polled: no thread has to sit on its output
        Thread.sleep(20);
      }
    } finally {
      if (started == null) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  /** Where it listens, e.g. {@code http://127.0.0.1:41234}. */
  URI uri() {
    return uri;
  }

  long pid() {
    return process.pid();
  }

  boolean alive() {
    return process.isAlive();
  }

  /** The {@code jcmd} next to the gateway's {@code java}, or the one on the {@code PATH}. */
  Path jcmd() {
    Path dir = java.toAbsolutePath().getParent();
    Path beside = dir == null ? null : dir.resolve("jcmd");
    return beside != null && Files.isExecutable(beside) ? beside : Path.of("jcmd");
  }

  /** The last lines of its standard error, for a report. */
  String stderrTail() {
    return tail(stderr);
  }

  /** SIGTERM (it drains and exits), then after 40 s SIGKILL. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(40, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private static String tail(Path file) {
    try {
      List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
      List<String> last = lines.subList(Math.max(0, lines.size() - 15), lines.size());
      return last.isEmpty() ? "" : ":\n  " + String.join("\n  ", last);
    } catch (IOException e) {
      return "";
    }
  }
}
