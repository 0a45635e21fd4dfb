package dev.inferpam.testsupport;

import java.io.IOException;

/**
 * A real Redis behind a Sentinel for the tests: a master ({@link RedisServer}) and one Sentinel
 * ({@code redis-server --sentinel}, Debian's {@code redis-server} package) monitoring it as
 * {@value #MASTER}, so that clients find the master through the Sentinel as in production.
 */
public final class RedisSentinel implements AutoCloseable {
  /** The name the Sentinel knows the master by. */
  public static final String MASTER = "inferpam";

  private final RedisServer master;
  private final RedisServer sentinel;

  private RedisSentinel(RedisServer master, RedisServer sentinel) {
    this.master = master;
    this.sentinel = sentinel;
  }

  /** Starts the master, then the Sentinel; fails, saying how to get it, without redis-server. */
  public static RedisSentinel start() throws IOException, InterruptedException {
    RedisServer master = RedisServer.start();
    try {
      return new RedisSentinel(master, RedisServer.startSentinel(master.port, MASTER));
    } catch (IOException | InterruptedException | RuntimeException e) {
      master.close();
      throw e;
    }
  }

  /** {@code redis-sentinel://127.0.0.1:SENTINEL_PORT#inferpam}. */
  public String url() {
    return "redis-sentinel://127.0.0.1:" + sentinel.port + "#" + MASTER;
  }

  /** The master itself, to look at what the clients wrote. */
  public RedisServer master() {
    return master;
  }

  @Override
  public void close() throws IOException {
    try {
      sentinel.close();
    } finally {
      master.close();
    }
  }
}
