package dev.inferpam.gateway.internal.netty;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.RequestPaths;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The gateway's own endpoints under {@code /pam} on the Netty front, as
 * {@link dev.inferpam.gateway.internal.PamEndpoints} serves them on Jetty. Called off the event
 * loop: they may block (identity, the approval service, the quota store).
 */
final class Endpoints {
  private static final byte[] OK = "{\"status\":\"ok\"}".getBytes(StandardCharsets.UTF_8);

  /** Largest body an endpoint request may have (413 above it). */
  static final int MAX_BODY = 64 * 1024;

  /** An endpoint's answer. */
  record Answer(int status, Map<String, String> headers, byte[] body) {}

  private final PamEngine engine;

  Endpoints(PamEngine engine) {
    this.engine = engine;
  }

  /**
   * Whether a request for {@code rawPath} goes to the endpoints rather than to the engine and the
   * upstream: {@code /pam} and everything under it, however it is spelled after that.
   */
  static boolean isEndpointPath(String rawPath) {
    if (!rawPath.startsWith("/pam")) return false;
    if (rawPath.length() == 4) return true;
    char next = rawPath.charAt(4);
    return next == '/' || next == ';' || next == '%' || next == '?';
  }

  /** Answers one request. */
  Answer handle(RequestHead head, byte[] body) {
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(head.rawPath());
    if (refused.isPresent()) return json(refused.get().status(), refused.get().body());
    String path = head.rawPath();
    if (path.equals("/pam/health")) {
      if (!head.method().equals("GET") && !head.method().equals("HEAD")) {
        Answer a = json(405, ErrorResponse.of(405, "method_not_allowed", "use GET", null).body());
        a.headers().put("Allow", "GET, HEAD");
        return a;
      }
      return json(200, OK);
    }
    return json(404, ErrorResponse.of(404, "not_found", "no such endpoint", null).body());
  }

  private static Answer json(int status, byte[] body) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", "application/json");
    headers.put("Cache-Control", "no-store");
    return new Answer(status, headers, body);
  }

  PamEngine engine() {
    return engine;
  }
}
