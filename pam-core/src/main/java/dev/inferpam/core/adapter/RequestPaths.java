package dev.inferpam.core.adapter;

import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.internal.http.ErrorBodies;
import dev.inferpam.core.internal.policy.Decider;
import java.util.Optional;

/**
 * The engine's path check, for the endpoints that answer next to it (reviewer, quota, health)
 * and must refuse the paths it refuses: every path a proxy, servlet container or model server
 * could read as another one ({@code %2F}, {@code ;}, dot segments, {@code //}, bad
 * percent-encoding, a trailing {@code /}, ...; see {@code docs/policy.md}). Stateless and
 * thread-safe.
 */
public final class RequestPaths {
  private RequestPaths() {}

  /**
   * The engine's answer to a path it refuses: 400 {@code bad_path} in its error shape, without a
   * request id; empty when the path is canonical.
   *
   * @param rawPath the request path as received, still percent-encoded, without the query;
   *                {@code null} is refused as empty
   * @return the answer to send, or empty
   */
  public static Optional<ErrorResponse> refusal(String rawPath) {
    return Decider.canonicalPathOrDeny(rawPath == null ? "" : rawPath) instanceof Decision.Deny deny
        ? Optional.of(ErrorBodies.of(deny, null))
        : Optional.empty();
  }

  /**
   * As {@link #refusal}, for an endpoint that matches its paths exactly: one trailing {@code /}
   * is let through, since such a path reaches no other handler there ({@code /pam/approvals/} is
   * a 404). Call it before asking a servlet container for a decoded path, which it may throw on.
   *
   * @param rawPath the request path as received ({@code HttpServletRequest.getRequestURI()}), or
   *                {@code null}
   * @return the answer to send, or empty
   */
  public static Optional<ErrorResponse> endpointRefusal(String rawPath) {
    String path = rawPath == null ? "" : rawPath;
    if (path.length() > 1 && path.endsWith("/")) path = path.substring(0, path.length() - 1);
    return refusal(path);
  }
}
