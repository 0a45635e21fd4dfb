package dev.inferpam.core;

import dev.inferpam.api.QuotaStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ServiceLoader;

/** Finds the {@link StateBackend} a policy's {@code state} section names, and reads its URL. */
final class StateBackends {
  private StateBackends() {}

  /**
   * The quota store of {@code state.redis}.
   *
   * @throws PolicyException when no module provides the backend, the URL cannot be read, or the
   *     store cannot connect; the message never holds the URL
   */
  static QuotaStore redisQuotaStore(Policy.Redis redis, Clock clock) {
    StateBackend backend = find("redis");
    String url = url(redis);
    try {
      return backend.quotaStore(url, redis.timeout(), clock);
    } catch (RuntimeException e) {
      String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
      // a backend's message names no password; the URL itself is never repeated
      throw new PolicyException("state.redis: " + why.replace(url, "<url>"));
    }
  }

  private static StateBackend find(String kind) {
    for (StateBackend b :
        ServiceLoader.load(StateBackend.class, StateBackends.class.getClassLoader())) {
      if (kind.equals(b.kind())) return b;
    }
    for (StateBackend b : ServiceLoader.load(StateBackend.class)) {
      if (kind.equals(b.kind())) return b;
    }
    throw new PolicyException(
        "state."
            + kind
            + ": no "
            + kind
            + " backend: add the module pam-"
            + kind
            + " (dev.inferpam:pam-"
            + kind
            + ") to the class or module path");
  }

  private static String url(Policy.Redis redis) {
    if (redis.urlFromEnv() != null) {
      String v = System.getenv(redis.urlFromEnv());
      if (v == null || v.isBlank())
        throw new PolicyException(
            "state.redis.url-from-env: environment variable " + redis.urlFromEnv() + " is not set");
      return v.strip();
    }
    try {
      String v = Files.readString(redis.urlFromFile(), StandardCharsets.UTF_8).strip();
      if (v.isEmpty())
        throw new PolicyException(
            "state.redis.url-from-file: " + redis.urlFromFile() + " is empty");
      return v;
    } catch (IOException e) {
      throw new PolicyException(
          "state.redis.url-from-file: cannot read "
              + redis.urlFromFile()
              + ": "
              + e.getClass().getSimpleName());
    }
  }
}
