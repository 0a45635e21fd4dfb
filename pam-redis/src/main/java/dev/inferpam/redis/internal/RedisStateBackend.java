package dev.inferpam.redis.internal;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.StateBackend;
import dev.inferpam.redis.RedisQuotaStore;
import java.time.Clock;
import java.time.Duration;

/** The {@code state.redis} backend: a {@link RedisQuotaStore} at the policy's URL. */
public final class RedisStateBackend implements StateBackend {
  /** For {@link java.util.ServiceLoader}. */
  public RedisStateBackend() {}

  @Override
  public String kind() {
    return "redis";
  }

  @Override
  public QuotaStore quotaStore(String url, Duration timeout, Clock clock) {
    return RedisQuotaStore.connect(url, timeout, RedisQuotaStore.DEFAULT_PREFIX, clock);
  }
}
