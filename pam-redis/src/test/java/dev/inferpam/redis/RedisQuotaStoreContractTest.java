package dev.inferpam.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

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
  void aRedisThatIsGoneFailsEachCallUntilItIsBackAndNeverShowsThePassword() throws Exception {
    RedisServer own = RedisServer.start();
    int port = own.port;
    RedisQuotaStore store =
        RedisQuotaStore.connect(
            "redis://:s3cret-pw@127.0.0.1:" + port, Duration.ofMillis(300), "t:", clock);
    stores.add(store);
    own.close();
    assertThatThrownBy(() -> store.get(key("x"), MINUTE))
        .isInstanceOf(RuntimeException.class)
        .satisfies(e -> assertThat(String.valueOf(e.getMessage())).doesNotContain("s3cret-pw"));

    RedisQuotaStore late =
        RedisQuotaStore.connect("redis://127.0.0.1:" + port, Duration.ofMillis(300), "t:", clock);
    stores.add(late);
    assertThatThrownBy(() -> late.add(key("y"), MINUTE, 1, MINUTE_END))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageStartingWith("cannot reach Redis at 127.0.0.1:" + port);
    RedisServer back = RedisServer.start(port);
    try {
      // at most one connect attempt a second: the next call within the second fails at once
      await()
          .atMost(Duration.ofSeconds(5))
          .pollInterval(Duration.ofMillis(100))
          .ignoreExceptions()
          .until(() -> late.add(key("y"), MINUTE, 1, MINUTE_END) == 1);
      assertThat(late.get(key("y"), MINUTE)).isEqualTo(1);
    } finally {
      back.close();
    }
  }
}
