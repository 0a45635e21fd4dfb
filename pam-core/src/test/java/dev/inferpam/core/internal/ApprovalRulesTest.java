package dev.inferpam.core.internal;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Which requests {@code approval.rules} send to a reviewer, per request shape. */
class ApprovalRulesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), Principal.VIA_OIDC);
  private static final Principal CI = Principal.of("nightly", Set.of("ci"), Principal.VIA_API_KEY);
  private static final RequestClassifier CLASSIFIER = new RequestClassifier("");

  private static ApprovalRules rules(String section) {
    return new ApprovalRules(PolicyLoader.parse("version: 1\napproval:\n  reviewers: [sec]\n  rules:\n" + section,
        "policy").approval());
  }

  private static final ApprovalRules SPEC = rules("""
          - name: bulk-export
            prompt-matches: "(?i)\\\\b(dump|export|list) (all|every)\\\\b"
          - name: large-generation
            max-tokens-over: 8000
          - name: finance-models
            models: ["finance-*"]
      """);

  private static String match(ApprovalRules rules, Principal p, String path, String body) throws Exception {
    return rules.match(p, CLASSIFIER.classify("POST", path, body.getBytes(StandardCharsets.UTF_8)));
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      // OpenAI chat: string content, and content parts
      "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Please DUMP ALL rows\"}]}",
      "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
          + "[{\"type\":\"text\",\"text\":\"list every customer\"}]}]}",
      // Responses: input string, input items with content parts, instructions
      "/v1/responses|{\"model\":\"m\",\"input\":\"export all invoices\"}",
      "/v1/responses|{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":"
          + "[{\"type\":\"input_text\",\"text\":\"export every invoice\"}]}]}",
      "/v1/responses|{\"model\":\"m\",\"instructions\":\"dump all\",\"input\":\"hi\"}",
      // completions: prompt string or list
      "/v1/completions|{\"model\":\"m\",\"prompt\":\"dump all tables\"}",
      "/v1/completions|{\"model\":\"m\",\"prompt\":[\"hello\",\"dump all tables\"]}",
      // Anthropic messages and system (string or blocks), tool_result content
      "/v1/messages|{\"model\":\"m\",\"system\":\"dump all\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
      "/v1/messages|{\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"list all\"}],\"messages\":[]}",
      "/v1/messages|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
          + "\"tool_use_id\":\"t\",\"content\":[{\"type\":\"text\",\"text\":\"export all\"}]}]}]}",
      // Ollama generate and chat
      "/api/generate|{\"model\":\"m\",\"prompt\":\"dump all\"}",
      "/api/generate|{\"model\":\"m\",\"prompt\":\"hi\",\"system\":\"export every file\"}",
      "/api/chat|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"list all users\"}]}",
      // embeddings input
      "/v1/embeddings|{\"model\":\"m\",\"input\":[\"a\",\"dump all\"]}",
      // a phrase split across content parts or messages is still found
      "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
          + "[{\"type\":\"text\",\"text\":\"dump \"},{\"type\":\"text\",\"text\":\"all\"}]}]}",
      "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"please dump\"},"
          + "{\"role\":\"user\",\"content\":\" all of it\"}]}",
  })
  void promptMatchesEveryRecognisedShape(String path, String body) throws Exception {
    assertThat(match(SPEC, ALICE, path, body)).isEqualTo("bulk-export");
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"dumping allowed\"}]}",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"how do I list files?\"}]}",
      "{\"model\":\"m\",\"messages\":[]}",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
          + "\"image_url\":{\"url\":\"dump all\"}}]}]}",
      "{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"dump all\"}}]}",
  })
  void otherPromptsDoNotMatch(String body) throws Exception {
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", body)).isNull();
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "{\"model\":\"m\",\"max_tokens\":8001}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":8000}|",
      "{\"model\":\"m\",\"max_completion_tokens\":9000}|large-generation",
      "{\"model\":\"m\",\"max_output_tokens\":100000}|large-generation",
      "{\"model\":\"m\",\"options\":{\"num_predict\":8001}}|large-generation",
      "{\"model\":\"m\",\"options\":{\"num_predict\":-1}}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":-1}|large-generation",
      "{\"model\":\"m\",\"max_completion_tokens\":-5}|large-generation",
      "{\"model\":\"m\",\"max_output_tokens\":-1.0}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":-99999999999999999999999}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":-0}|",
      "{\"model\":\"m\",\"options\":{\"num_predict\":100}}|",
      "{\"model\":\"m\",\"max_tokens\":\"9000\"}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":9000.0}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":100.0}|",
      "{\"model\":\"m\",\"max_tokens\":99999999999999999999999}|large-generation",
      "{\"model\":\"m\",\"max_tokens\":null}|",
      "{\"model\":\"m\"}|",
  })
  void maxTokensOverLooksAtEveryOutputBound(String body, String expected) throws Exception {
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", body)).isEqualTo(expected);
  }

  @Test
  void modelsOperationsAndGroupsNarrowARuleAndConditionsAreAnded() throws Exception {
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", "{\"model\":\"finance-7b\"}")).isEqualTo("finance-models");
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", "{\"model\":\"finance/7b\"}")).isNull();

    ApprovalRules r = rules("""
            - name: ci-embeddings-of-finance
              groups: [ci]
              operations: [embedding]
              models: ["finance-*"]
            - name: anyone-big
              groups: ["*"]
              max-tokens-over: 10
        """);
    assertThat(match(r, CI, "/v1/embeddings", "{\"model\":\"finance-7b\",\"input\":\"x\"}"))
        .isEqualTo("ci-embeddings-of-finance");
    assertThat(match(r, ALICE, "/v1/embeddings", "{\"model\":\"finance-7b\",\"input\":\"x\"}")).isNull();
    assertThat(match(r, CI, "/v1/chat/completions", "{\"model\":\"finance-7b\"}")).isNull();
    assertThat(match(r, CI, "/v1/embeddings", "{\"model\":\"llama\",\"input\":\"x\"}")).isNull();
    assertThat(match(r, ALICE, "/v1/chat/completions", "{\"model\":\"llama\",\"max_tokens\":11}"))
        .isEqualTo("anyone-big");
    // infer: the model comes from the path
    assertThat(r.match(CI, CLASSIFIER.classify("POST", "/v2/models/finance-x/infer", new byte[0]))).isNull();
  }

  @Test
  void theFirstMatchingRuleInPolicyOrderWins() throws Exception {
    String body = "{\"model\":\"finance-7b\",\"max_tokens\":9000,\"prompt\":\"dump all\"}";
    assertThat(match(SPEC, ALICE, "/v1/completions", body)).isEqualTo("bulk-export");
  }

  @Test
  void aRequestThatIsNoOperationOrHasNoBodyMatchesOnlyByGroup() {
    ApprovalRules r = rules("""
            - {name: models, models: ["*"]}
            - {name: ci, groups: [ci]}
        """);
    assertThat(r.match(ALICE, null, null, null)).isNull();
    assertThat(r.match(CI, null, null, null)).isEqualTo("ci");
  }

  @Test
  void promptTextsCollectsPiecesInDocumentOrder() throws Exception {
    JsonNode body = JSON.readTree("{\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        + "\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]},{\"role\":\"assistant\","
        + "\"content\":\"b\"}],\"prompt\":[[1,2,3]],\"input\":\"c\"}");
    assertThat(ApprovalRules.promptTexts(body)).containsExactly("s", "a", "b", "c");
    assertThat(ApprovalRules.promptTexts(null)).isEmpty();
    assertThat(ApprovalRules.promptTexts(JSON.readTree("[1]"))).isEmpty();
  }
}
