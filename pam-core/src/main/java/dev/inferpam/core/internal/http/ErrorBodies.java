package dev.inferpam.core.internal.http;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds the OpenAI-style error JSON of {@code docs/policy.md}. */
public final class ErrorBodies {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ErrorBodies() {}

  public static ErrorResponse of(Decision.Deny deny, String requestId) {
    ObjectNode root = JSON.createObjectNode();
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
