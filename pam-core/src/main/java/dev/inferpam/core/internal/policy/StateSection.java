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
 * {@code timeout}, {@code when-unavailable: refuse | allow}). {@code postgres} is refused until it
 * is implemented, so that a policy that names it is not silently served by one process's memory.
 * Stateless; failures are {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class StateSection {
  private static final Duration MAX_TIMEOUT = Duration.ofSeconds(30);

  private StateSection() {}

  static Policy.State read(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("redis"), Set.of("postgres"));
    if (!n.has("redis")) throw fail(path, "expected redis");
    return new Policy.State(redis(n.get("redis"), child(path, "redis")));
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
    if (n.has("timeout")) {
      String timeoutPath = child(path, "timeout");
      timeout = positiveDuration(n.get("timeout"), timeoutPath);
      if (timeout.compareTo(MAX_TIMEOUT) > 0)
        throw fail(timeoutPath, "expected at most 30s, was " + Durations.format(timeout));
    }
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
