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

  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }
}
