package dev.inferpam.testsupport;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis Cluster for the tests: {@code n} {@link RedisServer}s started with
 * {@code cluster-enabled}, joined by {@code redis-cli --cluster create} (Debian's
 * {@code redis-tools}, which comes with {@code redis-server}) with the 16384 slots spread over
 * them and no replicas; ready when every node says {@code cluster_state:ok}.
 */
public final class RedisCluster implements AutoCloseable {
  private final List<RedisServer> nodes;

  private RedisCluster(List<RedisServer> nodes) {
    this.nodes = List.copyOf(nodes);
  }

  /** Starts {@code n} (at least 3) nodes and joins them. */
  public static RedisCluster start(int n) throws IOException, InterruptedException {
    if (n < 3) throw new IllegalArgumentException("a cluster needs at least 3 masters");
    List<RedisServer> nodes = new ArrayList<>();
    try {
      for (int i = 0; i < n; i++) nodes.add(RedisServer.startClusterNode());
      List<String> cmd = new ArrayList<>(List.of(cli(), "--cluster", "create"));
      for (RedisServer s : nodes) cmd.add("127.0.0.1:" + s.port);
      cmd.addAll(List.of("--cluster-replicas", "0", "--cluster-yes"));
      run(cmd);
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      for (RedisServer s : nodes) {
        while (!run(List.of(
                cli(), "-h", "127.0.0.1", "-p", Integer.toString(s.port), "cluster", "info"))
            .contains("cluster_state:ok")) {
          if (System.nanoTime() > deadline)
            throw new IllegalStateException("the Redis cluster did not reach cluster_state:ok");
          Thread.sleep(50);
        }
      }
      return new RedisCluster(nodes);
    } catch (IOException | InterruptedException | RuntimeException e) {
      for (RedisServer s : nodes) s.close();
      throw e;
    }
  }

  /** {@code redis-cluster://127.0.0.1:P1,127.0.0.1:P2,...}. */
  public String url() {
    StringBuilder b = new StringBuilder("redis-cluster://");
    for (int i = 0; i < nodes.size(); i++) {
      if (i > 0) b.append(',');
      b.append("127.0.0.1:").append(nodes.get(i).port);
    }
    return b.toString();
  }

  /** The nodes, in start order. */
  public List<RedisServer> nodes() {
    return nodes;
  }

  private static String cli() {
    for (String p : List.of("/usr/bin/redis-cli", "/usr/local/bin/redis-cli")) {
      if (Files.isExecutable(Path.of(p))) return p;
    }
    throw new IllegalStateException(
        "redis-cli is not installed: the Redis Cluster test joins real nodes with it. Install"
            + " it with `apt-get install -y redis-server` (Debian; it brings redis-tools), as"
            + " .ci/run does");
  }

  private static String run(List<String> cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0)
      throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out.strip());
    return out;
  }

  @Override
  public void close() throws IOException {
    for (RedisServer s : nodes) s.close();
  }
}
