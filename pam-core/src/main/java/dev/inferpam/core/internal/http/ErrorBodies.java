package dev.inferpam.core.internal.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds the error JSON of {@code docs/policy.md}, shaped for the API family of the request. */
public final class ErrorBodies {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ErrorBodies() {}

  public static ErrorResponse of(Decision.Deny deny, String requestId) {
    return of(deny, requestId, null);
  }

  /**
   * Whether {@code path} (under any base path) is Anthropic's Messages API, whose clients expect
   * {@code "type":"error"} at the top of an error body.
   */
  static boolean anthropic(String path) {
    if (path == null) return false;
    String p = path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
    return p.endsWith("/v1/messages")
        || p.endsWith("/v1/messages/count_tokens")
        || p.endsWith("/v1/complete");
  }

  /**
   * The error body for a request to {@code path}: {@code
   * {"error":{"type":"pam_error","code","message","request_id"}}}, and on Anthropic's Messages
   * API also {@code "type":"error"} at the top, the shape of Anthropic's own errors (a compatible
   * addition: every field of the common shape is there).
   */
  public static ErrorResponse of(Decision.Deny deny, String requestId, String path) {
    ObjectNode root = JSON.createObjectNode();
    if (anthropic(path)) root.put("type", "error");
    ObjectNode error = root.putObject("error");
    error.put("type", "pam_error");
    error.put("code", deny.code());
    error.put("message", deny.message());
    error.put("request_id", requestId);
    Map<String, String> headers = new LinkedHashMap<>(deny.headers());
    headers.put("Content-Type", "application/json");
    try {
      return new ErrorResponse(deny.status(), headers, JSON.writeValueAsBytes(root));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise an error body", e);
    }
  }
}
