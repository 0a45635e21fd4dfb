package dev.inferpam.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.testkit.QuotaStoreContract;
import dev.inferpam.testsupport.RedisSentinel;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisQuotaStore} through a real Redis Sentinel ({@code redis-sentinel://host:port#master}):
 * the whole {@link QuotaStoreContract}, the counters landing on the master the Sentinel names.
 */
class RedisQuotaStoreSentinelTest extends QuotaStoreContract {
  private static RedisSentinel redis;
  private final List<RedisQuotaStore> stores = new ArrayList<>();

  @BeforeAll
  static void startSentinel() throws Exception {
    redis = RedisSentinel.start();
  }

  @AfterAll
  static void stopSentinel() throws Exception {
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
            redis.url(), Duration.ofSeconds(2), RedisQuotaStore.DEFAULT_PREFIX, clock);
    stores.add(store);
    return store;
  }

  @Test
  void theCountersAreOnTheMasterTheSentinelNames() throws Exception {
    RedisQuotaStore store = (RedisQuotaStore) newStore(clock);
    assertThat(
            store.addIfWithin("sentinel-principal\nrequests-per-minute", MINUTE, 1, 10, MINUTE_END))
        .isEqualTo(1);
    try (var client = io.lettuce.core.RedisClient.create(redis.master().url());
        var c = client.connect()) {
      assertThat(c.sync().dbsize()).isPositive();
    }
  }
}
