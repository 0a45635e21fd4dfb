package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.Policy;
import org.junit.jupiter.api.Test;

/**
 * Error bodies in the common shape, with Anthropic's top-level type on its Messages API, and with
 * {@code error-shape: native} Ollama's and KServe v2's string {@code error}.
 */
class ErrorBodiesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Decision.Deny DENY =
      new Decision.Deny(403, "parameter_denied", "parameter \"logprobs\" is denied by policy", "r");

  private static JsonNode body(String path) throws Exception {
    ErrorResponse e = ErrorBodies.DEFAULT.error(DENY, "req-1", path);
    assertThat(e.status()).isEqualTo(403);
    assertThat(e.headers()).containsEntry("Content-Type", "application/json");
    return JSON.readTree(e.body());
  }

  @Test
  void everyPathGetsTheCommonShape() throws Exception {
    for (String path : new String[] {"/v1/chat/completions", "/api/chat", null}) {
      JsonNode b = body(path);
      assertThat(b.has("type")).as(String.valueOf(path)).isFalse();
      assertThat(b.path("error").path("type").asText()).isEqualTo("pam_error");
      assertThat(b.path("error").path("code").asText()).isEqualTo("parameter_denied");
      assertThat(b.path("error").path("message").asText())
          .isEqualTo("parameter \"logprobs\" is denied by policy");
      assertThat(b.path("error").path("request_id").asText()).isEqualTo("req-1");
    }
  }

  @Test
  void anthropicsMessagesApiAlsoGetsItsTopLevelType() throws Exception {
    for (String path :
        new String[] {
          "/v1/messages", "/v1/messages/", "/anthropic/v1/messages", "/v1/messages/count_tokens"
        }) {
      JsonNode b = body(path);
      assertThat(b.path("type").asText()).as(path).isEqualTo("error");
      assertThat(b.path("error").path("code").asText()).isEqualTo("parameter_denied");
      assertThat(b.path("error").path("type").asText()).isEqualTo("pam_error");
    }
    assertThat(body("/v1/messagesx").has("type")).isFalse();
  }

  private static JsonNode nativeBody(String basePath, String path) throws Exception {
    ErrorResponse e =
        new ErrorBodies(Policy.ErrorShape.NATIVE, basePath)
            .error(
                new Decision.Deny(
                    429,
                    "quota_exceeded",
                    "quota \"daily\" exhausted",
                    "r",
                    java.util.Map.of("Retry-After", "60")),
                "req-2",
                path);
    assertThat(e.status()).isEqualTo(429);
    assertThat(e.headers())
        .containsEntry("Content-Type", "application/json")
        .containsEntry("Retry-After", "60");
    return JSON.readTree(e.body());
  }

  @Test
  void nativeShapeGivesOllamaAndKServePathsAStringError() throws Exception {
    for (String path :
        new String[] {
          "/api/chat", "/api/pull", "/api/generate/", "/v2/models/m/infer", "/api/blobs/sha256:x"
        }) {
      JsonNode b = nativeBody("", path);
      assertThat(b.path("error").isTextual()).as(path).isTrue();
      assertThat(b.path("error").asText()).isEqualTo("quota \"daily\" exhausted");
      assertThat(b.path("code").asText()).isEqualTo("quota_exceeded");
      assertThat(b.path("type").asText()).isEqualTo("pam_error");
      assertThat(b.path("request_id").asText()).isEqualTo("req-2");
    }
    // Under the base path too; the same path elsewhere, or unreadable, keeps the common shape.
    assertThat(nativeBody("/ollama", "/ollama/api/chat").path("error").isTextual()).isTrue();
    for (String path :
        new String[] {
          "/v1/chat/completions", "/other/api/chat", "/apix/chat", "/api", "/%61pi/chat", null
        }) {
      JsonNode b = nativeBody("/ollama", path);
      assertThat(b.path("error").path("code").asText()).as(path).isEqualTo("quota_exceeded");
    }
    JsonNode anthropic = nativeBody("", "/v1/messages");
    assertThat(anthropic.path("type").asText()).isEqualTo("error");
    assertThat(anthropic.path("error").path("code").asText()).isEqualTo("quota_exceeded");
  }

  @Test
  void theDefaultShapeKeepsTheCodeAtErrorCodeOnOllamaPaths() throws Exception {
    JsonNode b =
        JSON.readTree(
            new ErrorBodies(Policy.ErrorShape.INFERPAM, "")
                .error(DENY, "req-1", "/api/pull")
                .body());
    assertThat(b.path("error").path("code").asText()).isEqualTo("parameter_denied");
  }
}
