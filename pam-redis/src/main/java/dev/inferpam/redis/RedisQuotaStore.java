package dev.inferpam.redis;

import dev.inferpam.api.QuotaStore;
import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisScriptingCommands;
import io.lettuce.core.api.sync.RedisStringCommands;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link QuotaStore} in Redis, so that a policy's {@code limits} hold across every replica of a
 * fleet: each call is one round trip running a Lua script, atomic on the server: {@link #admit}
 * checks and counts all of a request's counters in one such script, {@link #charge} charges all
 * of an exchange's in one.
 *
 * <p><b>Keys.</b> {@code <prefix>{<tag>}:<counter>:<window>}: {@code counter} is a hash of the
 * engine's key (which may be long and holds a subject), {@code tag} a hash of its first line (the
 * engine's keys start with the principal), so that the counters of one principal share a Redis
 * Cluster hash slot and {@link #admit}'s script may touch them all. Each counter expires by
 * itself a minute after its window ends.
 *
 * <p><b>Failures.</b> A call that cannot reach Redis, or gets no answer within the timeout,
 * throws a {@link RuntimeException} naming neither the URL's password nor a key: the engine then
 * refuses the request (fail closed). A store made while Redis is down connects on a later call;
 * once connected, Lettuce reconnects by itself; a Redis that restarted and forgot the scripts
 * is sent them again.
 *
 * <p><b>Thread-safety:</b> thread-safe; one connection, shared (Lettuce multiplexes it). A call
 * blocks its thread until Redis answers: on an event loop, declare nothing about it (it is not
 * an in-memory part), so the gateway's Netty front runs admissions and ends off the loop.
 */
public final class RedisQuotaStore implements QuotaStore, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RedisQuotaStore.class);

  /** The default key prefix. */
  public static final String DEFAULT_PREFIX = "inferpam:q:";

  /** The default time a call waits for Redis. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofMillis(500);

  /** How long after its window ends a counter is kept. */
  static final long GRACE_MILLIS = 60_000;

  /**
   * Checks, then adds. KEYS: the counters; ARGV: per counter its amount, limit, whether to add
   * (1 or 0) and in how many milliseconds it expires. Returns, as strings, the index (1-based) of
   * the first counter without room, or 0, followed by every counter's total as the script leaves
   * it.
   */
  static final String ADMIT =
      """
      -- Exact for all 64-bit totals: Lua's numbers are doubles, so whether total + amount <= limit
      -- is judged on each number split at its ninth decimal digit (both halves exact as doubles).
      local function parts(s)
        local n = #s
        if n <= 9 then return 0, tonumber(s) end
        return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
      end
      local function fits(total, amount, limit)
        if string.sub(total, 1, 1) == '-' or string.sub(limit, 1, 1) == '-' then
          return tonumber(amount) <= tonumber(limit) - tonumber(total)
        end
        local th, tl = parts(total)
        local ah, al = parts(amount)
        local lh, ll = parts(limit)
        local sh, sl = th + ah, tl + al
        if sl >= 1000000000 then sl = sl - 1000000000; sh = sh + 1 end
        if sh ~= lh then return sh < lh end
        return sl <= ll
      end
      local n = #KEYS
      local totals = {}
      for i = 1, n do
        totals[i] = redis.call('GET', KEYS[i]) or '0'
        if not fits(totals[i], ARGV[4 * i - 3], ARGV[4 * i - 2]) then
          local out = {tostring(i)}
          for j = 1, n do out[j + 1] = totals[j] or redis.call('GET', KEYS[j]) or '0' end
          return out
        end
      end
      local out = {'0'}
      for i = 1, n do
        if ARGV[4 * i - 1] == '1' then
          redis.call('INCRBY', KEYS[i], ARGV[4 * i - 3])
          redis.call('PEXPIRE', KEYS[i], ARGV[4 * i])
          totals[i] = redis.call('GET', KEYS[i])
        end
        out[i + 1] = totals[i]
      end
      return out
      """;

  /**
   * Charges. KEYS: the counters; ARGV: per counter its amount, whether to add (1 or 0) and in how
   * many milliseconds it expires. Returns every counter's total, as a string.
   */
  static final String CHARGE =
      """
      local out = {}
      for i = 1, #KEYS do
        if ARGV[3 * i - 1] == '1' then
          redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
          redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
        end
        out[i] = redis.call('GET', KEYS[i]) or '0'
      end
      return out
      """;

  /** Adds whatever the total. KEYS[1]; ARGV: amount, milliseconds to expiry. Returns the total, as a string. */
  static final String ADD =
      """
      redis.call('INCRBY', KEYS[1], ARGV[1])
      redis.call('PEXPIRE', KEYS[1], ARGV[2])
      return redis.call('GET', KEYS[1])
      """;

  private static final String CLUSTER_SCHEME = "redis-cluster://";
  private static final String CLUSTER_TLS_SCHEME = "rediss-cluster://";
  private static final String NOT_A_URL =
      "not a Redis URL (redis://host:port/db or redis-cluster://host:port,host:port expected)";

  /** The scripts' SHA-1 digests, by which Redis runs a script it already holds. */
  private static final String ADMIT_SHA = digest(ADMIT);

  private static final String CHARGE_SHA = digest(CHARGE);
  private static final String ADD_SHA = digest(ADD);

  private final AbstractRedisClient client;
  private final String where;
  private final String prefix;
  private final Clock clock;

  /** Connecting, one caller at a time (a lock, not a monitor: a virtual thread is not pinned). */
  private final ReentrantLock connecting = new ReentrantLock();

  private volatile StatefulConnection<String, String> connection;

  /** The connection's commands: a single Redis's, or a cluster's (routed by key slot). */
  private volatile Commands commands;

  /** What the store sends: scripts and GET, on a single Redis or a cluster alike. */
  private record Commands(
      RedisScriptingCommands<String, String> scripts,
      RedisStringCommands<String, String> strings) {}

  /** Before this (System.nanoTime), a failed connect is not tried again: calls fail at once. */
  private long retryAfter;

  private volatile boolean closed;

  private RedisQuotaStore(AbstractRedisClient client, String where, String prefix, Clock clock) {
    this.client = client;
    this.where = where;
    this.prefix = prefix;
    this.clock = clock;
  }

  /**
   * A store for {@code url} ({@code redis://[user:password@]host:port[/db]}, {@code rediss://}
   * for TLS, {@code redis-sentinel://}, or a Redis Cluster's seed nodes as {@code
   * redis-cluster://[user:password@]host:port[,host:port...]} / {@code rediss-cluster://}) with
   * {@link #DEFAULT_TIMEOUT} and {@link #DEFAULT_PREFIX}.
   * It connects now when it can; a Redis that cannot be reached yet is connected to by a later
   * call (every call fails meanwhile, at most one connect attempt a second), so a replica starts
   * and refuses what needs Redis until Redis answers.
   *
   * @throws IllegalArgumentException when the URL cannot be read (the message does not repeat it)
   */
  public static RedisQuotaStore connect(String url) {
    return connect(url, DEFAULT_TIMEOUT, DEFAULT_PREFIX, Clock.systemUTC());
  }

  /**
   * As {@link #connect(String)}, with a timeout per call, a key prefix of your own, and the clock
   * the engine uses (a counter expires a minute after its window ends by that clock).
   */
  public static RedisQuotaStore connect(String url, Duration timeout, String prefix, Clock clock) {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(clock, "clock");
    Objects.requireNonNull(timeout, "timeout");
    Objects.requireNonNull(prefix, "prefix");
    RedisQuotaStore store;
    if (url.startsWith(CLUSTER_SCHEME) || url.startsWith(CLUSTER_TLS_SCHEME)) {
      List<RedisURI> seeds = clusterSeeds(url, timeout);
      RedisClusterClient cluster = RedisClusterClient.create(seeds);
      StringBuilder where = new StringBuilder("cluster ");
      for (RedisURI u : seeds) {
        if (where.length() > 8) where.append(',');
        where.append(u.getHost()).append(':').append(u.getPort());
      }
      store = new RedisQuotaStore(cluster, where.toString(), prefix, clock);
    } else {
      RedisURI uri;
      try {
        uri = RedisURI.create(url);
      } catch (RuntimeException e) {
        // The URL may hold a password: not repeated.
        throw new IllegalArgumentException(NOT_A_URL);
      }
      uri.setTimeout(timeout);
      store =
          new RedisQuotaStore(
              RedisClient.create(uri), uri.getHost() + ":" + uri.getPort(), prefix, clock);
    }
    try {
      store.commands();
    } catch (RuntimeException e) {
      log.warn("inferpam: {}; requests under limits are refused until it answers", e.getMessage());
    }
    return store;
  }

  /**
   * The seed nodes of {@code redis-cluster://[user:password@]host:port[,host:port...]} (or
   * {@code rediss-cluster://} for TLS): each a {@code redis://} (or {@code rediss://}) URI with the
   * same credentials; the client learns the rest of the cluster from them.
   */
  private static List<RedisURI> clusterSeeds(String url, Duration timeout) {
    boolean tls = url.startsWith(CLUSTER_TLS_SCHEME);
    String rest = url.substring((tls ? CLUSTER_TLS_SCHEME : CLUSTER_SCHEME).length());
    int slash = rest.indexOf('/');
    if (slash >= 0) rest = rest.substring(0, slash); // a cluster has one database
    int at = rest.lastIndexOf('@');
    String userInfo = at < 0 ? "" : rest.substring(0, at + 1);
    String hosts = rest.substring(at + 1);
    List<RedisURI> seeds = new ArrayList<>();
    for (String host : hosts.split(",")) {
      if (host.isBlank()) continue;
      try {
        RedisURI u = RedisURI.create((tls ? "rediss://" : "redis://") + userInfo + host.strip());
        u.setTimeout(timeout);
        seeds.add(u);
      } catch (RuntimeException e) {
        throw new IllegalArgumentException(NOT_A_URL);
      }
    }
    if (seeds.isEmpty()) throw new IllegalArgumentException(NOT_A_URL);
    return seeds;
  }

  /** The connection's commands, connecting first when there is none. */
  private Commands commands() {
    Commands c = commands;
    if (c != null) return c;
    connecting.lock();
    try {
      if (closed) throw new IllegalStateException("the Redis quota store is closed");
      if (commands != null) return commands;
      long now = System.nanoTime();
      if (retryAfter != 0 && now - retryAfter < 0)
        throw new IllegalStateException("cannot reach Redis at " + where + " (retrying)");
      try {
        if (client instanceof RedisClusterClient cluster) {
          StatefulRedisClusterConnection<String, String> conn = cluster.connect();
          connection = conn;
          commands = new Commands(conn.sync(), conn.sync());
        } else {
          StatefulRedisConnection<String, String> conn = ((RedisClient) client).connect();
          connection = conn;
          commands = new Commands(conn.sync(), conn.sync());
        }
        retryAfter = 0;
        return commands;
      } catch (RuntimeException e) {
        retryAfter = now + TimeUnit.SECONDS.toNanos(1);
        // Lettuce's message may name the URL: only the exception's kind is said
        throw new IllegalStateException(
            "cannot reach Redis at " + where + ": " + e.getClass().getSimpleName());
      }
    } finally {
      connecting.unlock();
    }
  }

  /**
   * Runs a script by its digest, sending it whole when Redis does not know it (a Redis that
   * restarted forgets loaded scripts).
   */
  private <T> T script(
      String script, String sha, ScriptOutputType type, String[] keys, String... args) {
    RedisScriptingCommands<String, String> c = commands().scripts();
    try {
      return c.evalsha(sha, type, keys, args);
    } catch (RedisNoScriptException e) {
      return c.eval(script, type, keys, args);
    }
  }

  private static String digest(String script) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-1").digest(script.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-1 is missing from this JVM", e);
    }
  }

  /** The Redis key of a counter in a window. */
  String redisKey(String key, long window) {
    int line = key.indexOf('\n');
    String first = line < 0 ? key : key.substring(0, line);
    return prefix + "{" + hash(first, 12) + "}:" + hash(key, 24) + ":" + window;
  }

  private static String hash(String s, int hexChars) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d).substring(0, hexChars);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /** Milliseconds until a minute after {@code windowEnd}, by the engine's clock (a minute at least). */
  private String expiry(Instant windowEnd) {
    return Long.toString(Math.max(0, windowEnd.toEpochMilli() - clock.millis()) + GRACE_MILLIS);
  }

  @Override
  public long addIfWithin(String key, long window, long amount, long limit, Instant windowEnd) {
    Admission a = admit(List.of(new Step(key, window, amount, limit, windowEnd, true)));
    return a.admitted() ? a.totals()[0] : -1;
  }

  @Override
  public long add(String key, long window, long amount, Instant windowEnd) {
    String total =
        script(
            ADD,
            ADD_SHA,
            ScriptOutputType.VALUE,
            new String[] {redisKey(key, window)},
            Long.toString(amount),
            expiry(windowEnd));
    return Long.parseLong(total);
  }

  @Override
  public long get(String key, long window) {
    String v = commands().strings().get(redisKey(key, window));
    return v == null ? 0 : Long.parseLong(v);
  }

  @Override
  public Admission admit(List<Step> steps) {
    if (steps.isEmpty()) return new Admission(new long[0], -1);
    String[] keys = new String[steps.size()];
    String[] args = new String[steps.size() * 4];
    for (int i = 0; i < steps.size(); i++) {
      Step s = steps.get(i);
      keys[i] = redisKey(s.key(), s.window());
      args[4 * i] = Long.toString(s.amount());
      args[4 * i + 1] = Long.toString(s.limit());
      args[4 * i + 2] = s.add() ? "1" : "0";
      args[4 * i + 3] = expiry(s.windowEnd());
    }
    // Every value comes back as a string: Lua would round 64-bit totals held as its numbers.
    List<Object> out = script(ADMIT, ADMIT_SHA, ScriptOutputType.MULTI, keys, args);
    long[] totals = new long[steps.size()];
    for (int i = 0; i < totals.length; i++)
      totals[i] = Long.parseLong(String.valueOf(out.get(i + 1)));
    return new Admission(totals, Integer.parseInt(String.valueOf(out.get(0))) - 1);
  }

  @Override
  public long[] charge(List<Step> steps) {
    if (steps.isEmpty()) return new long[0];
    String[] keys = new String[steps.size()];
    String[] args = new String[steps.size() * 3];
    for (int i = 0; i < steps.size(); i++) {
      Step s = steps.get(i);
      keys[i] = redisKey(s.key(), s.window());
      args[3 * i] = Long.toString(s.amount());
      args[3 * i + 1] = s.add() ? "1" : "0";
      args[3 * i + 2] = expiry(s.windowEnd());
    }
    List<Object> out = script(CHARGE, CHARGE_SHA, ScriptOutputType.MULTI, keys, args);
    long[] totals = new long[steps.size()];
    for (int i = 0; i < totals.length; i++) totals[i] = Long.parseLong(String.valueOf(out.get(i)));
    return totals;
  }

  /** Closes the connection and the client's threads. */
  @Override
  public void close() {
    connecting.lock();
    try {
      closed = true;
      if (connection != null) connection.close();
    } finally {
      connecting.unlock();
    }
    client.shutdown();
  }
}
