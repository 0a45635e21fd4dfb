package dev.inferpam.testsupport;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis server for the tests: Debian's {@code redis-server} (installed by {@code .ci/run}),
 * started on a free port of 127.0.0.1 without persistence, and stopped by {@link #close()}. A
 * machine without it fails the test, saying how to get it.
 */
public final class RedisServer implements AutoCloseable {
  private static final List<String> PLACES =
      List.of("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server");

  private final Process process;
  private final Path dir;

  /** The port it listens on, on 127.0.0.1. */
  public final int port;

  private RedisServer(Process process, Path dir, int port) {
    this.process = process;
    this.dir = dir;
    this.port = port;
  }

  /** Starts one on a free port; fails, saying how to get it, when {@code redis-server} is not installed. */
  public static RedisServer start() throws IOException, InterruptedException {
    int port;
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = probe.getLocalPort();
    }
    return start(port);
  }

  /** Starts one on {@code port} of 127.0.0.1 (say, where a stopped one was). */
  public static RedisServer start(int port) throws IOException, InterruptedException {
    return start(port, List.of());
  }

  /** A node for a {@link RedisCluster}: cluster mode on, on a free port. */
  static RedisServer startClusterNode() throws IOException, InterruptedException {
    int port;
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = probe.getLocalPort();
    }
    return start(
        port,
        List.of(
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes-" + port + ".conf",
            "--cluster-node-timeout",
            "5000"));
  }

  /**
   * A Sentinel on a free port that monitors the master on {@code masterPort} as {@code master},
   * with a quorum of one.
   */
  static RedisServer startSentinel(int masterPort, String master)
      throws IOException, InterruptedException {
    int port;
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = probe.getLocalPort();
    }
    Path conf = Files.createTempFile("inferpam-sentinel", ".conf");
    Files.writeString(
        conf,
        "sentinel monitor "
            + master
            + " 127.0.0.1 "
            + masterPort
            + " 1\nsentinel down-after-milliseconds "
            + master
            + " 5000\n");
    try {
      return start(port, conf, List.of("--sentinel"));
    } finally {
      conf.toFile().deleteOnExit();
    }
  }

  private static RedisServer start(int port, List<String> extra)
      throws IOException, InterruptedException {
    return start(port, null, extra);
  }

  private static RedisServer start(int port, Path config, List<String> extra)
      throws IOException, InterruptedException {
    String binary =
        PLACES.stream()
            .filter(p -> Files.isExecutable(Path.of(p)))
            .findFirst()
            .orElseThrow(
                () ->
                    new IllegalStateException(
                        "redis-server is not installed: the Redis tests run a real server."
                            + " Install it with `apt-get install -y redis-server` (Debian), as"
                            + " .ci/run does, or put redis-server in /usr/local/bin"));
    Path dir = Files.createTempDirectory("inferpam-redis");
    List<String> cmd = new java.util.ArrayList<>(List.of(binary));
    if (config != null) cmd.add(config.toString()); // a config file comes first
    cmd.addAll(
        List.of(
            "--port",
            Integer.toString(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.toString()));
    cmd.addAll(extra);
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("redis.log").toFile())
            .start();
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (System.nanoTime() < deadline) {
      if (!p.isAlive())
        throw new IllegalStateException(
            "redis-server exited at start: " + Files.readString(dir.resolve("redis.log")));
      try {
        new Socket(InetAddress.getLoopbackAddress(), port).close();
        return new RedisServer(p, dir, port);
      } catch (IOException notYet) {
        Thread.onSpinWait();
        p.waitFor(20, TimeUnit.MILLISECONDS);
      }
    }
    p.destroyForcibly();
    throw new IllegalStateException("redis-server did not listen on " + port + " within 10 s");
  }

  /** {@code redis://127.0.0.1:PORT}. */
  public String url() {
    return "redis://127.0.0.1:" + port;
  }

  @Override
  public void close() throws IOException {
    process.destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }
}
