/** inferpam state in Redis: {@code RedisQuotaStore}, quota counters shared by a fleet. */
module dev.inferpam.redis {
  requires transitive dev.inferpam.api;
  requires lettuce.core;
  requires org.slf4j;

  exports dev.inferpam.redis;
}
