package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveDuration;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveInt;
import static dev.inferpam.core.internal.policy.PolicyNodes.size;
import static dev.inferpam.core.internal.policy.PolicyNodes.strings;
import static dev.inferpam.core.internal.policy.PolicyNodes.text;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import dev.inferpam.core.adapter.ForwardHeaders;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The {@code request} section (an inferpam extension) with {@code base-path} ({@code ""} or
 * {@code /a/b}), {@code max-body} (bytes, or a whole number of {@code KiB}, {@code MiB},
 * {@code GiB}; default {@value Policy#DEFAULT_MAX_BODY_BYTES} bytes), {@code body-timeout} and
 * {@code head-timeout} (durations, 1ms to 1h; default 30s each), {@code min-body-rate} (bytes per
 * second, written as a size; default 1KiB) and {@code max-connections-per-client} (a positive
 * whole number; absent: no cap) and {@code forward-headers} (header names the gateway forwards
 * from callers besides its own allow-list; see {@link ForwardHeaders}) and {@code max-in-flight}
 * (a positive whole number; default {@value Policy.RequestSettings#DEFAULT_MAX_IN_FLIGHT}) and
 * {@code error-shape} ({@code inferpam}, the default, or {@code native}). Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class RequestSection {
  /** Characters a base path may hold: RFC 3986 unreserved and a few sub-delims, no '%' or ';'. */
  private static final Pattern BASE_PATH_SEGMENT = Pattern.compile("[A-Za-z0-9._~!$&'()*+,=:@-]+");

  private RequestSection() {}

  static Policy.RequestSettings read(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "base-path",
            "max-body",
            "body-timeout",
            "min-body-rate",
            "head-timeout",
            "max-connections-per-client",
            "forward-headers",
            "max-in-flight",
            "error-shape"),
        Set.of());
    String basePath = "";
    long maxBody = Policy.DEFAULT_MAX_BODY_BYTES;
    java.time.Duration bodyTimeout = Policy.RequestSettings.DEFAULT_BODY_TIMEOUT;
    long minBodyRate = Policy.RequestSettings.DEFAULT_MIN_BODY_RATE;
    java.time.Duration headTimeout = Policy.RequestSettings.DEFAULT_HEAD_TIMEOUT;
    int maxConnections = 0;
    if (n.has("base-path")) basePath = basePath(n.get("base-path"), child(path, "base-path"));
    if (n.has("max-body")) maxBody = size(n.get("max-body"), child(path, "max-body"));
    if (n.has("body-timeout"))
      bodyTimeout = boundedTimeout(n.get("body-timeout"), child(path, "body-timeout"));
    if (n.has("min-body-rate"))
      minBodyRate = size(n.get("min-body-rate"), child(path, "min-body-rate"));
    if (n.has("head-timeout"))
      headTimeout = boundedTimeout(n.get("head-timeout"), child(path, "head-timeout"));
    if (n.has("max-connections-per-client")) {
      maxConnections =
          positiveInt(
              n.get("max-connections-per-client"), child(path, "max-connections-per-client"));
    }
    // Checked (names, duplicates, headers never taken from a caller) by RequestSettings itself.
    List<String> forwardHeaders =
        n.has("forward-headers")
            ? strings(n.get("forward-headers"), child(path, "forward-headers"), false)
            : List.of();
    int maxInFlight = Policy.RequestSettings.DEFAULT_MAX_IN_FLIGHT;
    if (n.has("max-in-flight")) {
      maxInFlight = positiveInt(n.get("max-in-flight"), child(path, "max-in-flight"));
    }
    Policy.ErrorShape errorShape = Policy.ErrorShape.INFERPAM;
    if (n.has("error-shape")) {
      String shape = text(n.get("error-shape"), child(path, "error-shape"));
      errorShape =
          switch (shape) {
            case "inferpam" -> Policy.ErrorShape.INFERPAM;
            case "native" -> Policy.ErrorShape.NATIVE;
            default ->
                throw fail(
                    child(path, "error-shape"),
                    "must be \"inferpam\" or \"native\", was " + PolicyText.quote(shape));
          };
    }
    return new Policy.RequestSettings(
        basePath,
        maxBody,
        bodyTimeout,
        minBodyRate,
        headTimeout,
        maxConnections,
        forwardHeaders,
        maxInFlight,
        errorShape);
  }

  /** A timeout for reading a request: 1ms to 1h (a longer one would not bound anything). */
  private static java.time.Duration boundedTimeout(JsonNode n, String path) {
    java.time.Duration d = positiveDuration(n, path);
    if (d.compareTo(java.time.Duration.ofHours(1)) > 0) {
      throw fail(path, "must be at most 1h, was " + PolicyText.quote(n.textValue()));
    }
    return d;
  }

  private static String basePath(JsonNode n, String path) {
    String s = text(n, path);
    if (s.isEmpty()) return s;
    if (!s.startsWith("/") || s.endsWith("/")) {
      throw fail(
          path,
          "must be empty or start with \"/\" and not end with \"/\", was " + PolicyText.quote(s));
    }
    for (String segment : s.substring(1).split("/", -1)) {
      // The engine compares canonical paths with it, so it must itself be canonical.
      if (segment.equals(".")
          || segment.equals("..")
          || !BASE_PATH_SEGMENT.matcher(segment).matches()) {
        throw fail(
            path,
            "must be a plain path such as /openai (no empty, dot, encoded or special segments), was "
                + PolicyText.quote(s));
      }
    }
    return s;
  }
}
