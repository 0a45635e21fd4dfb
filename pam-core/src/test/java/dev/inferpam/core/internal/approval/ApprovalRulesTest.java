package dev.inferpam.core.internal.approval;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.http.RequestClassifier;
import dev.inferpam.core.internal.policy.PolicyLoader;
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
    return new ApprovalRules(
        PolicyLoader.parse(
                "version: 1\napproval:\n  reviewers: [sec]\n  rules:\n" + section, "policy")
            .approval());
  }

  private static final ApprovalRules SPEC =
      rules(
          """
          - name: bulk-export
            prompt-matches: "(?i)\\\\b(dump|export|list) (all|every)\\\\b"
          - name: large-generation
            max-tokens-over: 8000
          - name: finance-models
            models: ["finance-*"]
      """);

  private static String match(ApprovalRules rules, Principal p, String path, String body)
      throws Exception {
    return rules.match(p, CLASSIFIER.classify("POST", path, body.getBytes(StandardCharsets.UTF_8)));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
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
        // ... and so is one split with no space at all: the pieces are joined with one
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"please dump\"},"
            + "{\"role\":\"user\",\"content\":\"all rows\"}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"dump\"},"
            + "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"all\"}]}]}",
        // every other field that reaches the model as text
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"name\":\"dump all\",\"content\":\"hi\"}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
            + "\"type\":\"function\",\"function\":{\"name\":\"q\",\"arguments\":\"{\\\"sql\\\":\\\"dump all\\\"}\"}}]}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"dump all\"}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":"
            + "{\"name\":\"f\",\"description\":\"dump all\"}}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":"
            + "{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\","
            + "\"description\":\"list every row\"}}}}}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[],\"functions\":[{\"name\":\"f\",\"description\":\"export all\"}]}",
        "/v1/chat/completions|{\"model\":\"m\",\"messages\":[],\"response_format\":{\"type\":\"json_schema\","
            + "\"json_schema\":{\"name\":\"r\",\"schema\":{\"description\":\"dump all\"}}}}",
        "/v1/messages|{\"model\":\"m\",\"messages\":[],\"tools\":[{\"name\":\"t\",\"description\":\"dump all\","
            + "\"input_schema\":{\"type\":\"object\"}}]}",
        "/v1/messages|{\"model\":\"m\",\"messages\":[],\"tools\":[{\"name\":\"t\","
            + "\"input_schema\":{\"type\":\"object\",\"properties\":{\"x\":{\"enum\":[\"dump all\"]}}}}]}",
        "/v1/messages|{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
            + "\"id\":\"t1\",\"name\":\"sql\",\"input\":{\"query\":\"dump all\"}}]}]}",
        "/v1/messages|{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
            + "\"thinking\":\"I will dump all\",\"signature\":\"s\"}]}]}",
        "/v1/messages|{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
            + "\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"dump all\"}}]}]}",
        "/v1/responses|{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"q\","
            + "\"arguments\":\"{}\"},{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":\"dump all\"}]}",
        "/v1/responses|{\"model\":\"m\",\"input\":\"hi\",\"tools\":[{\"type\":\"function\",\"name\":\"f\","
            + "\"description\":\"export every row\",\"parameters\":{}}]}",
        "/v1/responses|{\"model\":\"m\",\"input\":\"hi\",\"instructions\":[{\"type\":\"message\",\"role\":\"developer\","
            + "\"content\":[{\"type\":\"input_text\",\"text\":\"dump all\"}]}]}",
        "/api/generate|{\"model\":\"m\",\"prompt\":\"hi\",\"template\":\"{{ .Prompt }} dump all\"}",
        "/api/generate|{\"model\":\"m\",\"prompt\":\"hi\",\"suffix\":\"export all\"}",
        "/api/chat|{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
            + "[{\"function\":{\"name\":\"sql\",\"arguments\":{\"q\":\"dump all\"}}}]}]}",
        "/api/chat|{\"model\":\"m\",\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
            + "\"parameters\":{\"properties\":{\"dump all\":{\"type\":\"string\"}}}}}]}",
      })
  void promptMatchesEveryRecognisedShape(String path, String body) throws Exception {
    assertThat(match(SPEC, ALICE, path, body)).isEqualTo("bulk-export");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"dumping allowed\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"how do I list files?\"}]}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
            + "\"image_url\":{\"url\":\"dump all\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"dumpall, dump ail, dump the lot, d u m p all\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
            + "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"dump all\"}}]}]}",
        "{\"model\":\"dump all\",\"user\":\"dump all\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}",
      })
  void otherPromptsDoNotMatch(String body) throws Exception {
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", body)).isNull();
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
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
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", "{\"model\":\"finance-7b\"}"))
        .isEqualTo("finance-models");
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", "{\"model\":\"finance/7b\"}")).isNull();

    ApprovalRules r =
        rules(
            """
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
    assertThat(match(r, ALICE, "/v1/embeddings", "{\"model\":\"finance-7b\",\"input\":\"x\"}"))
        .isNull();
    assertThat(match(r, CI, "/v1/chat/completions", "{\"model\":\"finance-7b\"}")).isNull();
    assertThat(match(r, CI, "/v1/embeddings", "{\"model\":\"llama\",\"input\":\"x\"}")).isNull();
    assertThat(match(r, ALICE, "/v1/chat/completions", "{\"model\":\"llama\",\"max_tokens\":11}"))
        .isEqualTo("anyone-big");
    // infer: the model comes from the path
    assertThat(r.match(CI, CLASSIFIER.classify("POST", "/v2/models/finance-x/infer", new byte[0])))
        .isNull();
  }

  @Test
  void theFirstMatchingRuleInPolicyOrderWins() throws Exception {
    String body = "{\"model\":\"finance-7b\",\"max_tokens\":9000,\"prompt\":\"dump all\"}";
    assertThat(match(SPEC, ALICE, "/v1/completions", body)).isEqualTo("bulk-export");
  }

  @Test
  void aRequestThatIsNoOperationOrHasNoBodyMatchesOnlyByGroup() {
    ApprovalRules r =
        rules(
            """
            - {name: models, models: ["*"]}
            - {name: ci, groups: [ci]}
        """);
    assertThat(r.match(ALICE, null, null, null)).isNull();
    assertThat(r.match(CI, null, null, null)).isEqualTo("ci");
  }

  @Test
  void promptTextsCollectsPiecesInDocumentOrder() throws Exception {
    JsonNode body =
        JSON.readTree(
            "{\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                + "\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]},{\"role\":\"assistant\","
                + "\"content\":\"b\"}],\"prompt\":[[1,2,3]],\"input\":\"c\"}");
    assertThat(ApprovalRules.promptTexts(body)).containsExactly("s", "a", "b", "c");
    assertThat(ApprovalRules.promptTexts(null)).isEmpty();
    assertThat(ApprovalRules.promptTexts(JSON.readTree("[1]"))).isEmpty();
  }

  private static final ApprovalRules PLAIN =
      rules(
          """
          - name: dump-all
            prompt-matches: "dump all"
      """);

  /** A chat request whose messages are {@code contents}, JSON-encoded as they are. */
  private static String chat(String... contents) throws Exception {
    var messages = JSON.createArrayNode();
    for (String c : contents) messages.addObject().put("role", "user").put("content", c);
    var body = JSON.createObjectNode().put("model", "m");
    body.set("messages", messages);
    return JSON.writeValueAsString(body);
  }

  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> disguises() {
    StringBuilder tags = new StringBuilder("hello");
    "dump all".chars().forEach(c -> tags.appendCodePoint(0xE0000 + c));
    return java.util.stream.Stream.of(
            new String[] {"the issue: a phrase split across messages", "please dump", "all rows"},
            new String[] {"upper case and a run of spaces", "please DUMP  all rows"},
            new String[] {"no-break space", "dump\u00A0all"},
            new String[] {"em space and ideographic space", "dump\u2003\u3000all"},
            new String[] {"newline", "dump\nall"},
            new String[] {"CR LF and tab", "dump\r\n\tall"},
            new String[] {"line separator and NEL", "dump\u2028\u0085all"},
            new String[] {"zero-width joiners inside the words", "du\u200Dmp a\u200Cl\u200Bl"},
            new String[] {"soft hyphen between the words", "dump\u00ADall"},
            new String[] {"zero-width space between the words", "dump\u200Ball"},
            new String[] {"soft hyphen and BOM inside the words", "d\u00ADump al\uFEFFl"},
            new String[] {"bidi controls", "\u202Edump\u202C \u2066all\u2069"},
            new String[] {"variation selectors", "du\uFE0Fmp all\uFE0E"},
            new String[] {"Cyrillic a", "dump \u0430ll"},
            new String[] {"Cyrillic d, u, r, a", "\u0501\u057Dm\u0440 \u0430ll"},
            new String[] {"Greek alpha and omicron-free l as capital I", "dump \u03B1II"},
            new String[] {"digit one for l", "DUMP A11"},
            new String[] {"rn for m", "durnp all"},
            new String[] {"fullwidth letters", "\uFF44\uFF55\uFF4D\uFF50 \uFF41\uFF4C\uFF4C"},
            new String[] {
              "mathematical bold", "\uD835\uDC1D\uD835\uDC2E\uD835\uDC26\uD835\uDC29 all"
            },
            new String[] {"upper-case Cyrillic", "DUMP \u0410LL"},
            new String[] {"hidden in tag characters", tags.toString()})
        .map(
            a ->
                org.junit.jupiter.params.provider.Arguments.of(
                    a[0], java.util.Arrays.copyOfRange(a, 1, a.length)));
  }

  @ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.MethodSource("disguises")
  void aPhraseIsFoundHoweverItIsWrittenForAReader(String what, String[] contents) throws Exception {
    String body = chat(contents);
    assertThat(match(PLAIN, ALICE, "/v1/chat/completions", body)).isEqualTo("dump-all");
    assertThat(match(SPEC, ALICE, "/v1/chat/completions", body)).isEqualTo("bulk-export");
  }

  @Test
  void patternLiteralsAreReadAsTheTextIsCaseLookAlikesAndWhitespaceIncluded() throws Exception {
    ApprovalRules r =
        rules(
            """
            - {name: upper, prompt-matches: "DUMP ALL"}
        """);
    assertThat(match(r, ALICE, "/v1/chat/completions", chat("please dump all rows")))
        .isEqualTo("upper");
    ApprovalRules cyrillic =
        rules(
            """
            - {name: cyrillic, prompt-matches: "\u0501ump\u00A0\u00A0all"}
        """);
    assertThat(match(cyrillic, ALICE, "/v1/chat/completions", chat("dump all")))
        .isEqualTo("cyrillic");
    ApprovalRules newline =
        rules(
            """
            - {name: newline, prompt-matches: "dump\\nall"}
        """);
    assertThat(match(newline, ALICE, "/v1/chat/completions", chat("dump all")))
        .isEqualTo("newline");
    ApprovalRules digits =
        rules(
            """
            - {name: digits, prompt-matches: "card \\\\d{4}"}
        """);
    assertThat(match(digits, ALICE, "/v1/chat/completions", chat("CARD\u00A01011")))
        .isEqualTo("digits");
    assertThat(match(digits, ALICE, "/v1/chat/completions", chat("card 10l1"))).isNull();
  }

  @Test
  void anAnchoredPatternIsAlsoSearchedInEachPieceAlone() throws Exception {
    ApprovalRules r =
        rules(
            """
            - {name: starts, prompt-matches: "^dump all$"}
        """);
    assertThat(match(r, ALICE, "/v1/chat/completions", chat("hello", "  DUMP \u0430ll\n", "bye")))
        .isEqualTo("starts");
    assertThat(match(r, ALICE, "/v1/chat/completions", chat("hello dump all"))).isNull();
  }
}
