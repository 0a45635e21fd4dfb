package dev.inferpam.core.internal.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.Policy;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Builds the error JSON of {@code docs/policy.md}, shaped for the API family of the request and
 * the policy's {@code request.error-shape}.
 *
 * <p><b>Thread-safety:</b> immutable; one instance per engine.
 */
public final class ErrorBodies {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** {@code error-shape: inferpam} at the root: what an engine without a policy setting uses. */
  public static final ErrorBodies DEFAULT = new ErrorBodies(Policy.ErrorShape.INFERPAM, "");

  private final Policy.ErrorShape shape;
  private final String basePath;

  /**
   * @param shape    the policy's {@code request.error-shape}
   * @param basePath the policy's {@code request.base-path} ({@code ""} for none), under which
   *                 the native API families' paths are recognised as well as at the root
   */
  public ErrorBodies(Policy.ErrorShape shape, String basePath) {
    this.shape = Objects.requireNonNull(shape, "shape");
    this.basePath = basePath == null ? "" : basePath;
  }

  public static ErrorResponse of(Decision.Deny deny, String requestId) {
    return DEFAULT.error(deny, requestId, null);
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
   * Whether {@code path} is on an API whose clients read {@code "error"} as a string: Ollama's
   * ({@code /api/...}) or KServe v2's ({@code /v2/...}), at the root or under the base path, as
   * received (the shape of an error grants nothing, so a path written oddly just keeps the common
   * shape).
   */
  boolean stringError(String path) {
    if (path == null) return false;
    String p = path;
    if (!basePath.isEmpty() && p.startsWith(basePath + "/")) p = p.substring(basePath.length());
    return p.startsWith("/api/") || p.startsWith("/v2/");
  }

  /**
   * The error body for a request to {@code path}: {@code
   * {"error":{"type":"pam_error","code","message","request_id"}}}, and on Anthropic's Messages
   * API also {@code "type":"error"} at the top, the shape of Anthropic's own errors (a compatible
   * addition: every field of the common shape is there). With {@code error-shape: native}, on
   * Ollama and KServe v2 paths: {@code {"error":"<message>","type":"pam_error","code",
   * "request_id"}}.
   *
   * @param path the request's path as received, or {@code null} when there is none to go by
   */
  public ErrorResponse error(Decision.Deny deny, String requestId, String path) {
    ObjectNode root = JSON.createObjectNode();
    if (shape == Policy.ErrorShape.NATIVE && stringError(path)) {
      root.put("error", deny.message());
      root.put("type", "pam_error");
      root.put("code", deny.code());
      root.put("request_id", requestId);
    } else {
      if (anthropic(path)) root.put("type", "error");
      ObjectNode error = root.putObject("error");
      error.put("type", "pam_error");
      error.put("code", deny.code());
      error.put("message", deny.message());
      error.put("request_id", requestId);
    }
    Map<String, String> headers = new LinkedHashMap<>(deny.headers());
    headers.put("Content-Type", "application/json");
    try {
      return new ErrorResponse(deny.status(), headers, JSON.writeValueAsBytes(root));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise an error body", e);
    }
  }
}
