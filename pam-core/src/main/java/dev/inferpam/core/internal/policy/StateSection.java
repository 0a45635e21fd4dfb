package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.envVarName;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.filePath;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveDuration;
import static dev.inferpam.core.internal.policy.PolicyNodes.text;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import java.time.Duration;
import java.util.Set;

/**
 * The {@code state} section: {@code redis} ({@code url-from-env} or {@code url-from-file},
 * {@code timeout}, {@code when-unavailable: refuse | allow}) and {@code postgres}
 * ({@code url-from-env} or {@code url-from-file}, {@code user} or {@code user-from-env},
 * {@code password-from-env} or {@code password-from-file}, {@code timeout}, {@code migrate},
 * {@code poll-interval}). Stateless; failures are {@link dev.inferpam.core.PolicyException}s
 * naming the key path.
 */
final class StateSection {
  private static final Duration MAX_TIMEOUT = Duration.ofSeconds(30);

  private StateSection() {}

  static Policy.State read(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("redis", "postgres"), Set.of());
    if (!n.has("redis") && !n.has("postgres")) throw fail(path, "expected redis or postgres");
    return new Policy.State(
        n.has("redis") ? redis(n.get("redis"), child(path, "redis")) : null,
        n.has("postgres") ? postgres(n.get("postgres"), child(path, "postgres")) : null);
  }

  private static Policy.Postgres postgres(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "url-from-env",
            "url-from-file",
            "user",
            "user-from-env",
            "password-from-env",
            "password-from-file",
            "timeout",
            "migrate",
            "poll-interval"),
        Set.of());
    if (n.has("url-from-env") == n.has("url-from-file"))
      throw fail(path, "exactly one of url-from-env / url-from-file");
    if (n.has("user") && n.has("user-from-env"))
      throw fail(path, "at most one of user / user-from-env");
    if (n.has("password-from-env") && n.has("password-from-file"))
      throw fail(path, "at most one of password-from-env / password-from-file");
    String urlEnv =
        n.has("url-from-env")
            ? envVarName(n.get("url-from-env"), child(path, "url-from-env"))
            : null;
    java.nio.file.Path urlFile =
        n.has("url-from-file")
            ? filePath(n.get("url-from-file"), child(path, "url-from-file"))
            : null;
    String user = n.has("user") ? text(n.get("user"), child(path, "user")) : null;
    if (user != null && (user.isBlank() || user.length() > 63))
      throw fail(child(path, "user"), "expected a role name of 1 to 63 characters");
    String userEnv =
        n.has("user-from-env")
            ? envVarName(n.get("user-from-env"), child(path, "user-from-env"))
            : null;
    String passwordEnv =
        n.has("password-from-env")
            ? envVarName(n.get("password-from-env"), child(path, "password-from-env"))
            : null;
    java.nio.file.Path passwordFile =
        n.has("password-from-file")
            ? filePath(n.get("password-from-file"), child(path, "password-from-file"))
            : null;
    Duration timeout = null;
    if (n.has("timeout")) timeout = bounded(n.get("timeout"), child(path, "timeout"));
    Duration poll = null;
    if (n.has("poll-interval"))
      poll = bounded(n.get("poll-interval"), child(path, "poll-interval"));
    boolean migrate = true;
    if (n.has("migrate")) {
      JsonNode m = n.get("migrate");
      if (!m.isBoolean()) throw fail(child(path, "migrate"), "expected true or false");
      migrate = m.booleanValue();
    }
    return new Policy.Postgres(
        urlEnv, urlFile, user, userEnv, passwordEnv, passwordFile, timeout, migrate, poll);
  }

  /** A positive duration of at most 30 s. */
  private static Duration bounded(JsonNode n, String path) {
    Duration d = positiveDuration(n, path);
    if (d.compareTo(MAX_TIMEOUT) > 0)
      throw fail(path, "expected at most 30s, was " + Durations.format(d));
    return d;
  }

  private static Policy.Redis redis(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("url-from-env", "url-from-file", "timeout", "when-unavailable"), Set.of());
    if (n.has("url-from-env") == n.has("url-from-file"))
      throw fail(path, "exactly one of url-from-env / url-from-file");
    String env = null;
    java.nio.file.Path file = null;
    if (n.has("url-from-env")) {
      env = envVarName(n.get("url-from-env"), child(path, "url-from-env"));
    } else {
      file = filePath(n.get("url-from-file"), child(path, "url-from-file"));
    }
    Duration timeout = null;
    if (n.has("timeout")) timeout = bounded(n.get("timeout"), child(path, "timeout"));
    boolean allow = false;
    if (n.has("when-unavailable")) {
      String whenPath = child(path, "when-unavailable");
      String when = text(n.get("when-unavailable"), whenPath);
      switch (when) {
        case "refuse" -> allow = false;
        case "allow" -> allow = true;
        default -> throw fail(whenPath, "expected refuse or allow, was " + PolicyText.quote(when));
      }
    }
    return new Policy.Redis(env, file, timeout, allow);
  }
}
