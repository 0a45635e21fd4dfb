/**
 * inferpam state in Redis: {@code RedisQuotaStore}, quota counters shared by a fleet, and the
 * {@code state.redis} backend an engine finds when its policy names it.
 */
module dev.inferpam.redis {
  requires transitive dev.inferpam.api;
  requires dev.inferpam.core;
  requires lettuce.core;
  requires org.slf4j;

  exports dev.inferpam.redis;

  provides dev.inferpam.core.StateBackend with
      dev.inferpam.redis.internal.RedisStateBackend;
}
