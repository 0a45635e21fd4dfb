package dev.inferpam.core.internal.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision;
import dev.inferpam.core.ErrorResponse;
import org.junit.jupiter.api.Test;

/** Error bodies in the common shape, with Anthropic's top-level type on its Messages API. */
class ErrorBodiesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Decision.Deny DENY =
      new Decision.Deny(403, "parameter_denied", "parameter \"logprobs\" is denied by policy", "r");

  private static JsonNode body(String path) throws Exception {
    ErrorResponse e = ErrorBodies.of(DENY, "req-1", path);
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
}
