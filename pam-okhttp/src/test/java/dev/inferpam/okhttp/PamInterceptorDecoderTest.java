package dev.inferpam.okhttp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Through the real interceptor: bodies that a model server's JSON decoder could read otherwise
 * than the engine (issue #16, defect 1) are refused 400 naming the key and never reach the server;
 * negative bounds and the extraction preset's switches are refused 403.
 */
class PamInterceptorDecoderTest {
  static final String ALICE = "alice-key-0001";

  @StartStop final MockWebServer server = new MockWebServer();
  final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  OkHttpClient client;

  @BeforeEach
  void setUp() {
    Policy policy =
        Policy.parse(
            """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        entitlements:
          - groups: [ml-engineers]
            models: ["llama3.1"]
            operations: [chat, completion, infer]
        parameters:
          presets: [extraction]
          max: {max_tokens: 4096}
        """
                .formatted(Policies.sha256(ALICE)));
    PamEngine engine =
        PamEngine.builder()
            .policy(policy)
            .clock(PamInterceptorTest.CLOCK)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .recorder(records::add)
            .build();
    client =
        PamInterceptor.of(engine)
            .install(new OkHttpClient.Builder())
            .readTimeout(10, TimeUnit.SECONDS)
            .build();
  }

  private Response post(String path, String body) throws Exception {
    return client
        .newCall(
            new Request.Builder()
                .url(server.url(path))
                .header("Authorization", "Bearer " + ALICE)
                .post(
                    RequestBody.create(
                        body.getBytes(StandardCharsets.UTF_8), PamInterceptorTest.JSON))
                .build())
        .execute();
  }

  private JsonNode refused(String path, String body, int status, String code) throws Exception {
    try (Response r = post(path, body)) {
      assertThat(r.code()).as(body).isEqualTo(status);
      JsonNode error = PamInterceptorTest.error(r);
      assertThat(error.get("code").asText()).as(body).isEqualTo(code);
      assertThat(server.getRequestCount()).as(body).isZero();
      return error;
    }
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        // the examples: entitled as llama3.1, served as gpt-4; denied switches in other
        // spellings
        "/api/chat            | {\"model\":\"llama3.1\",\"MODEL\":\"gpt-4\"}                 | \"MODEL\"",
        "/v1/chat/completions | {\"model\":\"llama3.1\",\"LogProbs\":true}                   | \"LogProbs\"",
        "/v1/chat/completions | {\"model\":\"llama3.1\",\"TOP_LOGPROBS\":5}                   | \"TOP_LOGPROBS\"",
        "/v1/chat/completions | {\"model\":\"llama3.1\",\"logprob\\u017f\":true}              | \"logprob\u017f\"",
        // the same inside Ollama's options and in the objects the prompt rules read
        "/api/generate        | {\"model\":\"llama3.1\",\"options\":{\"LogProbs\":true}}      | \"options.LogProbs\"",
        "/api/generate        | {\"model\":\"llama3.1\",\"options\":{\"num_predict\":1,\"NUM_PREDICT\":-1}} | \"options.NUM_PREDICT\"",
        "/api/chat            | {\"model\":\"llama3.1\",\"messages\":[{\"role\":\"user\",\"Content\":\"x\"}]} | \"messages[0].Content\"",
        // two keys Go takes for one, though no rule reads them
        "/api/chat            | {\"model\":\"llama3.1\",\"stream\":false,\"\\u017ftream\":true} | \"\u017ftream\"",
        // a string that Go reads as U+FFFD, Python keeps and serde_json refuses
        "/api/chat            | {\"model\":\"llama3.1\\ud800\"}                               | \"model\"",
      })
  void bodiesThatDecodersReadOtherwiseAre400NamingTheKeyAndNeverForwarded(
      String path, String body, String key) throws Exception {
    JsonNode error = refused(path, body, 400, "bad_request");
    assertThat(error.get("message").asText()).contains(key);
    assertThat(records)
        .singleElement()
        .satisfies(rec -> assertThat(rec.decision().outcome()).isEqualTo("deny"));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"model\":\"llama3.1\\u0000\"}            | has a control character",
        "{\"model\":\"llama3.1\\u007f\"}            | has a control character",
        "{\"model\":\"llama3.1\\u0085\"}            | has a control character",
        "{\"model\":\" llama3.1\"}                  | starts or ends with white space",
        "{\"model\":\"llama3.1\\u00a0\"}            | starts or ends with white space",
      })
  void modelNamesWithControlCharactersOrSurroundingWhiteSpaceAre400(String body, String why)
      throws Exception {
    JsonNode error = refused("/v1/chat/completions", body, 400, "bad_request");
    assertThat(error.get("message").asText()).isEqualTo("\"model\" in request body " + why);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/completions | {\"model\":\"llama3.1\",\"max_tokens\":-1}               | max_tokens",
        "/api/generate   | {\"model\":\"llama3.1\",\"options\":{\"num_predict\":-1}}  | options.num_predict",
        "/v1/responses   | {\"model\":\"llama3.1\",\"max_output_tokens\":-2}        | max_output_tokens",
      })
  void negativeBoundsAreRefusedSayingTheAllowedRange(String path, String body, String name)
      throws Exception {
    JsonNode error = refused(path, body, 403, "parameter_denied");
    assertThat(error.get("message").asText())
        .isEqualTo(
            "parameter \""
                + name
                + "\" is "
                + body.replaceAll(".*:(-\\d+)}+$", "$1")
                + ", outside the allowed range 0..4096");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/completions          | {\"model\":\"llama3.1\",\"prompt_logprobs\":1}         | prompt_logprobs",
        "/v1/completions          | {\"model\":\"llama3.1\",\"echo\":true}                 | echo",
        "/v1/chat/completions     | {\"model\":\"llama3.1\",\"return_tokens_as_token_ids\":true} | return_tokens_as_token_ids",
        "/api/chat                | {\"model\":\"llama3.1\",\"options\":{\"logprobs\":true}} | logprobs",
        "/v1/responses            | {\"model\":\"llama3.1\",\"include\":[\"message.output_text.logprobs\"]} | include",
        "/v2/models/llama3.1/infer | {\"inputs\":[],\"parameters\":{\"decoder_input_details\":true}} | decoder_input_details",
        "/v2/models/llama3.1/infer | {\"inputs\":[],\"parameters\":{\"top_n_tokens\":5}}    | top_n_tokens",
      })
  void theExtractionPresetRefusesEachServersSwitches(String path, String body, String name)
      throws Exception {
    JsonNode error = refused(path, body, 403, "parameter_denied");
    assertThat(error.get("message").asText())
        .startsWith("parameter \"" + name + "\"")
        .endsWith("(preset extraction)");
  }

  @Test
  void anOrdinaryBodyIsForwardedAsItCame() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    String body =
        "{\"model\":\"llama3.1\",\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9 \\ud83d\\ude00\"}],"
            + "\"max_tokens\":4096,\"logprobs\":false,\"include\":[\"reasoning.encrypted_content\"],"
            + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"car\",\"parameters\":{\"properties\":"
            + "{\"Model\":{\"type\":\"string\"}}}}}]}";
    try (Response r = post("/v1/chat/completions", body)) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(server.takeRequest().getBody().utf8()).isEqualTo(body);
  }
}
