package dev.inferpam.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.testkit.QuotaStoreContract;
import dev.inferpam.testsupport.RedisCluster;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisQuotaStore} on a real three-node Redis Cluster ({@code redis-cluster://}): the whole
 * {@link QuotaStoreContract}, each admission still one script (a principal's counters share a
 * slot), and principals spread over the nodes.
 */
class RedisQuotaStoreClusterTest extends QuotaStoreContract {
  private static RedisCluster cluster;
  private final List<RedisQuotaStore> stores = new ArrayList<>();

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = RedisCluster.start(3);
  }

  @AfterAll
  static void stopCluster() throws Exception {
    if (cluster != null) cluster.close();
  }

  @AfterEach
  void closeStores() {
    for (RedisQuotaStore s : stores) s.close();
  }

  @Override
  protected QuotaStore newStore(Clock clock) {
    RedisQuotaStore store =
        RedisQuotaStore.connect(
            cluster.url(), Duration.ofSeconds(2), RedisQuotaStore.DEFAULT_PREFIX, clock);
    stores.add(store);
    return store;
  }

  @Test
  void principalsCountersLandOnEveryNodeOfTheCluster() throws Exception {
    RedisQuotaStore store = (RedisQuotaStore) newStore(clock);
    for (int i = 0; i < 60; i++) {
      String k = "principal-" + i + "\nrequests-per-minute";
      assertThat(store.addIfWithin(k, MINUTE, 1, 10, MINUTE_END)).isEqualTo(1);
    }
    Set<Integer> nodesWithKeys = new HashSet<>();
    for (var node : cluster.nodes()) {
      try (var client = io.lettuce.core.RedisClient.create("redis://127.0.0.1:" + node.port);
          var c = client.connect()) {
        if (c.sync().dbsize() > 0) nodesWithKeys.add(node.port);
      }
    }
    assertThat(nodesWithKeys).hasSize(3);
  }

  @Test
  void aClusterUrlThatCannotBeReadIsRefusedWithoutRepeatingIt() {
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> RedisQuotaStore.connect("redis-cluster://:pw-secret-9@"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageNotContaining("pw-secret-9")
        .hasMessageStartingWith("not a Redis URL");
  }
}
