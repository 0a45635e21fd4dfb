package dev.inferpam.redis;

import dev.inferpam.api.QuotaStore;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;

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
 * refuses the request (fail closed). Lettuce reconnects by itself.
 *
 * <p><b>Thread-safety:</b> thread-safe; one connection, shared (Lettuce multiplexes it). A call
 * blocks its thread until Redis answers: on an event loop, declare nothing about it (it is not
 * an in-memory part), so the gateway's Netty front runs admissions and ends off the loop.
 */
public final class RedisQuotaStore implements QuotaStore, AutoCloseable {
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

  private final RedisClient client;
  private final StatefulRedisConnection<String, String> connection;
  private final RedisCommands<String, String> commands;
  private final String prefix;
  private final Clock clock;
  private final String admitSha;
  private final String addSha;
  private final String chargeSha;

  private RedisQuotaStore(RedisClient client, String prefix, Clock clock) {
    this.client = client;
    this.prefix = prefix;
    this.clock = clock;
    this.connection = client.connect();
    this.commands = connection.sync();
    this.admitSha = commands.scriptLoad(ADMIT);
    this.addSha = commands.scriptLoad(ADD);
    this.chargeSha = commands.scriptLoad(CHARGE);
  }

  /**
   * Connects to {@code url} ({@code redis://[user:password@]host:port[/db]}, {@code rediss://}
   * for TLS, {@code redis-sentinel://}) with {@link #DEFAULT_TIMEOUT} and {@link #DEFAULT_PREFIX}.
   *
   * @throws IllegalArgumentException when the URL cannot be read (the message does not repeat it)
   * @throws RuntimeException         when Redis cannot be reached now
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
    RedisURI uri;
    try {
      uri = RedisURI.create(url);
    } catch (RuntimeException e) {
      // The URL may hold a password: not repeated.
      throw new IllegalArgumentException("not a Redis URL (redis://host:port/db expected)");
    }
    uri.setTimeout(timeout);
    RedisClient client = RedisClient.create(uri);
    try {
      return new RedisQuotaStore(client, prefix, clock);
    } catch (RuntimeException e) {
      client.shutdown();
      throw new IllegalStateException(
          "cannot reach Redis at "
              + uri.getHost()
              + ":"
              + uri.getPort()
              + ": "
              + e.getClass().getSimpleName());
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
        commands.evalsha(
            addSha,
            ScriptOutputType.VALUE,
            new String[] {redisKey(key, window)},
            Long.toString(amount),
            expiry(windowEnd));
    return Long.parseLong(total);
  }

  @Override
  public long get(String key, long window) {
    String v = commands.get(redisKey(key, window));
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
    List<Object> out = commands.evalsha(admitSha, ScriptOutputType.MULTI, keys, args);
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
    List<Object> out = commands.evalsha(chargeSha, ScriptOutputType.MULTI, keys, args);
    long[] totals = new long[steps.size()];
    for (int i = 0; i < totals.length; i++) totals[i] = Long.parseLong(String.valueOf(out.get(i)));
    return totals;
  }

  /** Closes the connection and the client's threads. */
  @Override
  public void close() {
    connection.close();
    client.shutdown();
  }
}
