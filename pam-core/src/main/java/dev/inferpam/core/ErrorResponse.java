package dev.inferpam.core;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The HTTP answer for a denied request, ready to write: status, headers (including
 * {@code Content-Type}, and {@code WWW-Authenticate} / {@code Retry-After} where they apply)
 * and the JSON body {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":...}}}.
 */
public record ErrorResponse(int status, Map<String, String> headers, byte[] body) {
  public ErrorResponse {
    headers = Map.copyOf(headers);
  }

  /**
   * An error answer in the same JSON shape as the engine's denials, for adapters and gateways
   * that refuse on their own (e.g. {@code upstream_unavailable}).
   *
   * @param requestId the exchange id, or {@code null} when there is no exchange
   */
  public static ErrorResponse of(int status, String code, String message, String requestId) {
    return dev.inferpam.core.internal.http.ErrorBodies.of(
        new dev.inferpam.api.Decision.Deny(status, code, message, code), requestId);
  }

  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }
}
