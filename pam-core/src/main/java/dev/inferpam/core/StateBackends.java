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

  /**
   * The database of {@code state.postgres}, connected and its schema checked.
   *
   * @throws PolicyException when no module provides the backend, the URL or a credential cannot
   *     be read, or the database cannot be used; the message never holds the URL or the password
   */
  static StateBackend.SharedState postgres(Policy.Postgres pg, Clock clock) {
    StateBackend backend = find("postgres");
    String url =
        pg.urlFromEnv() != null
            ? env("state.postgres.url-from-env", pg.urlFromEnv())
            : file("state.postgres.url-from-file", pg.urlFromFile());
    String user =
        pg.userFromEnv() != null
            ? env("state.postgres.user-from-env", pg.userFromEnv())
            : pg.user();
    String password =
        pg.passwordFromEnv() != null
            ? env("state.postgres.password-from-env", pg.passwordFromEnv())
            : pg.passwordFromFile() != null
                ? file("state.postgres.password-from-file", pg.passwordFromFile())
                : null;
    StateBackend.Database db =
        new StateBackend.Database(
            url, user, password, pg.timeout(), pg.migrate(), pg.pollInterval());
    try {
      return backend.open(db, clock);
    } catch (RuntimeException e) {
      String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
      why = why.replace(url, "<url>");
      // a backend names no password; should a long one slip through, it is not repeated
      if (password != null && password.length() >= 6) why = why.replace(password, "<password>");
      throw new PolicyException("state.postgres: " + why);
    }
  }

  private static String env(String key, String name) {
    String v = System.getenv(name);
    if (v == null || v.isBlank())
      throw new PolicyException(key + ": environment variable " + name + " is not set");
    return v.strip();
  }

  private static String file(String key, java.nio.file.Path path) {
    try {
      String v = Files.readString(path, StandardCharsets.UTF_8).strip();
      if (v.isEmpty()) throw new PolicyException(key + ": " + path + " is empty");
      return v;
    } catch (IOException e) {
      throw new PolicyException(
          key + ": cannot read " + path + ": " + e.getClass().getSimpleName());
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
    return redis.urlFromEnv() != null
        ? env("state.redis.url-from-env", redis.urlFromEnv())
        : file("state.redis.url-from-file", redis.urlFromFile());
  }
}
