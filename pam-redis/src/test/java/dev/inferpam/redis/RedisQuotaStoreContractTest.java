package dev.inferpam.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.testkit.QuotaStoreContract;
import dev.inferpam.testsupport.RedisServer;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisQuotaStore} against a real Redis server: the whole {@link QuotaStoreContract}, and
 * what is Redis's own — counters expire by themselves, keys of one principal share a cluster slot,
 * a Redis that is gone fails calls without naming the password.
 */
class RedisQuotaStoreContractTest extends QuotaStoreContract {
  private static RedisServer redis;
  private final List<RedisQuotaStore> stores = new ArrayList<>();

  @BeforeAll
  static void startRedis() throws Exception {
    redis = RedisServer.start();
  }

  @AfterAll
  static void stopRedis() throws Exception {
    if (redis != null) redis.close();
  }

  @AfterEach
  void closeStores() {
    for (RedisQuotaStore s : stores) s.close();
  }

  @Override
  protected QuotaStore newStore(Clock clock) {
    RedisQuotaStore store =
        RedisQuotaStore.connect(
            redis.url(), RedisQuotaStore.DEFAULT_TIMEOUT, RedisQuotaStore.DEFAULT_PREFIX, clock);
    stores.add(store);
    return store;
  }

  @Test
  void countersExpireAMinuteAfterTheirWindowEnds() {
    RedisQuotaStore store = (RedisQuotaStore) newStore(clock);
    store.add(key("expiring"), MINUTE, 3, MINUTE_END);
    try (var client = io.lettuce.core.RedisClient.create(redis.url());
        var c = client.connect()) {
      long ttl = c.sync().pttl(store.redisKey(key("expiring"), MINUTE));
      // the clock stands 40 s before the window's end
      long expected = 40_000 + RedisQuotaStore.GRACE_MILLIS;
      assertThat(ttl).isBetween(expected - 5_000, expected);
    }
  }

  @Test
  void theCountersOfOnePrincipalShareAHashTag() {
    RedisQuotaStore store = (RedisQuotaStore) newStore(clock);
    String rpm = store.redisKey("alice\n0\nrequests-per-minute", MINUTE);
    String tpd = store.redisKey("alice\n1\ntokens-per-day", DAY);
    String bob = store.redisKey("bob\n0\nrequests-per-minute", MINUTE);
    assertThat(rpm).startsWith(RedisQuotaStore.DEFAULT_PREFIX + "{");
    assertThat(tag(rpm)).isEqualTo(tag(tpd)).isNotEqualTo(tag(bob));
    assertThat(rpm).doesNotContain("alice");
  }

  private static String tag(String key) {
    return key.substring(key.indexOf('{'), key.indexOf('}') + 1);
  }

  @Test
  void aRedisThatIsGoneFailsEachCallWithinTheTimeoutWithoutThePassword() throws Exception {
    RedisServer own = RedisServer.start();
    String url = "redis://:s3cret-pw@127.0.0.1:" + own.port;
    RedisQuotaStore store;
    try {
      store =
          RedisQuotaStore.connect(
              "redis://127.0.0.1:" + own.port, Duration.ofMillis(300), "t:", clock);
      stores.add(store);
      assertThat(store.add(key("x"), MINUTE, 1, MINUTE_END)).isEqualTo(1);
    } finally {
      own.close();
    }
    assertThatThrownBy(() -> store.get(key("x"), MINUTE)).isInstanceOf(RuntimeException.class);
    assertThatThrownBy(() -> RedisQuotaStore.connect(url, Duration.ofMillis(300), "t:", clock))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageStartingWith("cannot reach Redis at 127.0.0.1:" + own.port)
        .hasMessageNotContaining("s3cret-pw");
  }
}
