package dev.inferpam.core.internal.http;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.internal.http.RequestClassifier.Classification;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RequestClassifierTest {

  private static final byte[] LLAMA = json("{\"model\":\"llama-3.1-8b\",\"messages\":[]}");

  private final RequestClassifier root = new RequestClassifier("");
  private final RequestClassifier openai = new RequestClassifier("/openai");

  private static byte[] json(String text) {
    return text.getBytes(UTF_8);
  }

  @ParameterizedTest
  @CsvSource({
    "/v1/chat/completions, chat",
    "/v1/responses,        chat",
    "/v1/messages,         chat",
    "/api/chat,            chat",
    "/v1/completions,      completion",
    "/api/generate,        completion",
    "/v1/embeddings,       embedding",
    "/api/embed,           embedding",
    "/api/embeddings,      embedding",
  })
  void recognisesBodyModelOperations(String path, String operation) throws BadRequestException {
    Classification c = root.classify("POST", path, LLAMA);

    assertThat(c.operation()).isEqualTo(operation);
    assertThat(c.model()).isEqualTo("llama-3.1-8b");
    assertThat(c.relativePath()).isEqualTo(path);
    assertThat(c.body().get("messages").isArray()).isTrue();
    assertThat(c.isInference()).isTrue();
  }

  @ParameterizedTest
  @CsvSource({
    "/v2/models/resnet50/infer,                    resnet50",
    "/v2/models/resnet50/versions/3/infer,         resnet50",
    "/v2/models/llama-3.1-8b/versions/latest/infer, llama-3.1-8b",
    "'/v2/models/my model/infer',                   my model",
  })
  void recognisesInferWithTheModelFromThePath(String path, String model)
      throws BadRequestException {
    Classification c = root.classify("POST", path, json("{\"inputs\":[]}"));

    assertThat(c.operation()).isEqualTo("infer");
    assertThat(c.model()).isEqualTo(model);
    assertThat(c.body().has("inputs")).isTrue();
  }

  @Test
  void inferTakesTheModelFromThePathNotTheBody() throws BadRequestException {
    Classification c =
        root.classify("POST", "/v2/models/small/infer", json("{\"model\":\"huge\",\"inputs\":[]}"));
    assertThat(c.model()).isEqualTo("small");
  }

  @Test
  void inferPassesNonJsonBodiesThroughUnparsed() throws BadRequestException {
    Classification binary = root.classify("POST", "/v2/models/m/infer", new byte[] {0, 1, 2, 3});
    Classification empty = root.classify("POST", "/v2/models/m/infer", new byte[0]);
    Classification none = root.classify("POST", "/v2/models/m/infer", null);

    assertThat(binary.operation()).isEqualTo("infer");
    assertThat(binary.body()).isNull();
    assertThat(empty.body()).isNull();
    assertThat(none.body()).isNull();
    assertThat(none.model()).isEqualTo("m");
  }

  @Test
  void inferParsesJsonAfterLeadingWhitespace() throws BadRequestException {
    Classification c = root.classify("POST", "/v2/models/m/infer", json(" \n{\"inputs\":[]}"));
    assertThat(c.body()).isNotNull();
  }

  @Test
  void inferRefusesMalformedJson() {
    assertThatThrownBy(() -> root.classify("POST", "/v2/models/m/infer", json("{\"inputs\":")))
        .isInstanceOf(BadRequestException.class)
        .hasMessageStartingWith("malformed JSON body: ");
  }

  @Test
  void inferRefusesKserveBinaryExtensionBodiesForNow() {
    byte[] header = json("{\"inputs\":[{\"name\":\"x\",\"parameters\":{\"binary_data_size\":4}}]}");
    byte[] body = java.util.Arrays.copyOf(header, header.length + 4);
    body[header.length] = 1;
    assertThatThrownBy(() -> root.classify("POST", "/v2/models/m/infer", body))
        .isInstanceOf(BadRequestException.class)
        .hasMessageStartingWith("malformed JSON body: ");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/v2/models/m/infer/x",
        "/v2/models/infer",
        "/v2/models/m/versions/infer",
        "/v2/models/m/releases/3/infer",
        "/v2/models/m/versions/3/x/infer",
        "/v2/models/m",
        "/v2/models/m/ready",
        "/v2/models/m/generate",
        "/v1/models",
        "/v1/chat",
        "/v1/chat/completions/x",
        "/V1/CHAT/COMPLETIONS",
        "/api/pull",
        "/",
      })
  void otherPostsAreNotOperations(String path) throws BadRequestException {
    Classification c = root.classify("POST", path, json("not json at all"));

    assertThat(c.operation()).isNull();
    assertThat(c.model()).isNull();
    assertThat(c.body()).isNull();
    assertThat(c.relativePath()).isEqualTo(path);
    assertThat(c.isInference()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(strings = {"GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
  void otherMethodsOnInferencePathsAreNotOperations(String method) throws BadRequestException {
    for (String path : new String[] {"/v1/chat/completions", "/api/embed", "/v2/models/m/infer"}) {
      Classification c = root.classify(method, path, json("{"));
      assertThat(c.operation()).as(method + " " + path).isNull();
      assertThat(c.body()).isNull();
    }
  }

  @Test
  void matchesTheMethodCaseInsensitively() throws BadRequestException {
    assertThat(root.classify("post", "/v1/chat/completions", LLAMA).operation()).isEqualTo("chat");
  }

  @Nested
  class BasePath {

    @Test
    void recognisesOperationsUnderTheBasePath() throws BadRequestException {
      Classification c = openai.classify("POST", "/openai/v1/chat/completions", LLAMA);

      assertThat(c.operation()).isEqualTo("chat");
      assertThat(c.relativePath()).isEqualTo("/v1/chat/completions");
    }

    @Test
    void recognisesInferUnderTheBasePath() throws BadRequestException {
      Classification c = openai.classify("POST", "/openai/v2/models/m/versions/1/infer", null);
      assertThat(c.operation()).isEqualTo("infer");
      assertThat(c.model()).isEqualTo("m");
    }

    @Test
    void stillRecognisesOperationsAtTheRoot() throws BadRequestException {
      Classification c = openai.classify("POST", "/v1/embeddings", LLAMA);

      assertThat(c.operation()).isEqualTo("embedding");
      assertThat(c.relativePath()).isEqualTo("/v1/embeddings");
    }

    @Test
    void stripsTheBasePathOnlyAtASegmentBoundary() throws BadRequestException {
      Classification c = openai.classify("POST", "/openaiX/v1/chat/completions", LLAMA);

      assertThat(c.operation()).isNull();
      assertThat(c.relativePath()).isEqualTo("/openaiX/v1/chat/completions");
    }

    @Test
    void theBasePathItselfIsTheRelativeRoot() throws BadRequestException {
      assertThat(openai.classify("GET", "/openai", null).relativePath()).isEqualTo("/");
    }

    @Test
    void leavesPathsOutsideTheBaseAlone() throws BadRequestException {
      assertThat(openai.classify("GET", "/health", null).relativePath()).isEqualTo("/health");
    }

    @Test
    void doesNotStripTheBasePathTwice() throws BadRequestException {
      Classification c = openai.classify("POST", "/openai/openai/v1/chat/completions", LLAMA);
      assertThat(c.operation()).isNull();
      assertThat(c.relativePath()).isEqualTo("/openai/v1/chat/completions");
    }

    @Test
    void acceptsMultiSegmentBasePathsAndIgnoresATrailingSlash() throws BadRequestException {
      RequestClassifier classifier = new RequestClassifier("/gw/ollama/");
      assertThat(classifier.basePath()).isEqualTo("/gw/ollama");
      assertThat(classifier.classify("POST", "/gw/ollama/api/chat", LLAMA).operation())
          .isEqualTo("chat");
    }

    @Test
    void treatsNullAndSlashAsNoBasePath() {
      assertThat(new RequestClassifier(null).basePath()).isEmpty();
      assertThat(new RequestClassifier("/").basePath()).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(
        strings = {"openai", "/open//ai", "/open/../ai", "/open%2fai", "/open%41i", "/a;b"})
    void refusesNonCanonicalBasePaths(String base) {
      assertThatThrownBy(() -> new RequestClassifier(base))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("request.base-path: ");
    }
  }

  @Nested
  class MalformedBodies {

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "\n\t "})
    void refusesEmptyBodies(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("request body is empty");
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", null))
          .hasMessage("request body is empty");
    }

    @ParameterizedTest
    @ValueSource(
        strings = {
          "{",
          "{\"model\":",
          "{\"model\":\"a\",}",
          "{model:\"a\"}",
          "{'model':'a'}",
          "not json",
          "{\"model\":\"a\"} {\"model\":\"b\"}",
          "{\"model\":\"a\"} x",
          "{\"model\":\"a\"}]",
          "{\"model\":\"a\" /* c */}",
          "{\"model\":NaN}",
        })
    void refusesMalformedJson(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessageStartingWith("malformed JSON body: ");
    }

    @Test
    void refusesOverlongUtf8ThatJacksonAloneWouldDecode() {
      // C0 AF is an overlong "/": Jackson would read model "a/b", other parsers refuse it.
      byte[] body = {
        '{',
        '"',
        'm',
        'o',
        'd',
        'e',
        'l',
        '"',
        ':',
        '"',
        'a',
        (byte) 0xC0,
        (byte) 0xAF,
        'b',
        '"',
        '}'
      };
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", body))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("malformed JSON body: not valid UTF-8");
    }

    @Test
    void asciiAndNonAsciiBodiesReadAlikeAndNulIsNotTakenForUtf16() throws Exception {
      byte[] ascii =
          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"cafe\"}]}"
              .getBytes(java.nio.charset.StandardCharsets.UTF_8);
      byte[] utf8 =
          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\u00e9\"}]}"
              .getBytes(java.nio.charset.StandardCharsets.UTF_8);
      assertThat(root.classify("POST", "/v1/chat/completions", ascii).model()).isEqualTo("gpt-4o");
      assertThat(root.classify("POST", "/v1/chat/completions", utf8).model()).isEqualTo("gpt-4o");
      assertThat(
              root.classify("POST", "/v1/chat/completions", utf8)
                  .body()
                  .at("/messages/0/content")
                  .asText())
          .isEqualTo("caf\u00e9");
      // NUL-interleaved ASCII is what UTF-16 looks like to Jackson's detection: refused, never read
      // as UTF-16
      byte[] nul = {0, '{', 0, '"', 0, 'm', 0, '"', 0, ':', 0, '1', 0, '}'};
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", nul))
          .hasMessageStartingWith("malformed JSON body: ");
    }

    @Test
    void refusesBodiesThatAreNotUtf8() {
      byte[] utf16 = "{\"model\":\"a\"}".getBytes(java.nio.charset.StandardCharsets.UTF_16LE);
      byte[] latin1 =
          "{\"model\":\"caf\u00e9\"}".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", utf16))
          .hasMessageStartingWith("malformed JSON body: ");
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", latin1))
          .hasMessage("malformed JSON body: not valid UTF-8");
    }

    @Test
    void refusesAByteOrderMark() {
      byte[] body = json("\uFEFF{\"model\":\"a\"}");
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", body))
          .hasMessageStartingWith("malformed JSON body: ");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[]", "[{\"model\":\"a\"}]", "\"model\"", "42", "null", "true"})
    void refusesNonObjectJson(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/v1/completions", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("request body is not a JSON object");
    }

    @ParameterizedTest
    @ValueSource(
        strings = {"{}", "{\"messages\":[]}", "{\"model\":null}", "{\"params\":{\"model\":\"a\"}}"})
    void refusesBodiesWithoutModel(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/v1/embeddings", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("request body has no \"model\"");
    }

    @ParameterizedTest
    @ValueSource(
        strings = {
          "{\"model\":42}",
          "{\"model\":[\"a\"]}",
          "{\"model\":{\"name\":\"a\"}}",
          "{\"model\":true}"
        })
    void refusesNonStringModels(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/api/generate", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("\"model\" in request body is not a string");
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"model\":\"\"}", "{\"model\":\"  \"}", "{\"model\":\"\\t\"}"})
    void refusesBlankModels(String body) {
      assertThatThrownBy(() -> root.classify("POST", "/api/chat", json(body)))
          .isInstanceOf(BadRequestException.class)
          .hasMessage("\"model\" in request body is blank");
    }

    @Test
    void refusesDuplicateModelKeysSoWeAndTheUpstreamCannotSeeDifferentModels() {
      byte[] body =
          json("{\"model\":\"gpt-4o-mini\",\"messages\":[],\"model\":\"finance-secret\"}");
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", body))
          .isInstanceOf(BadRequestException.class)
          .hasMessageStartingWith("malformed JSON body: ")
          .hasMessageContaining("Duplicate")
          .hasMessageContaining("model");
    }

    @Test
    void refusesDuplicateKeysAtAnyDepth() {
      byte[] body = json("{\"model\":\"a\",\"options\":{\"logprobs\":false,\"logprobs\":true}}");
      assertThatThrownBy(() -> root.classify("POST", "/api/generate", body))
          .hasMessageContaining("Duplicate");
    }

    @Test
    void refusesDeepNesting() {
      String deep = "{\"model\":\"a\",\"x\":" + "[".repeat(1000) + "]".repeat(1000) + "}";
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", json(deep)))
          .isInstanceOf(BadRequestException.class)
          .hasMessageStartingWith("malformed JSON body: ")
          .hasMessageContaining("nesting depth");
    }

    @Test
    void acceptsNestingUpToTheLimit() throws BadRequestException {
      int arrays = RequestClassifier.MAX_NESTING_DEPTH - 1; // the outer object is one level
      String body = "{\"model\":\"a\",\"x\":" + "[".repeat(arrays) + "]".repeat(arrays) + "}";
      assertThat(root.classify("POST", "/v1/chat/completions", json(body)).model()).isEqualTo("a");
    }

    @Test
    void quotesOnlyAShortExcerptOfTheBody() {
      String secret = "sk-" + "x".repeat(5_000);
      byte[] body = json("{\"model\":\"a\",\"k\":" + secret + "}");
      assertThatThrownBy(() -> root.classify("POST", "/v1/chat/completions", body))
          .isInstanceOf(BadRequestException.class)
          .satisfies(
              e -> {
                assertThat(e.getMessage()).hasSizeLessThan(200).doesNotContain("x".repeat(40));
                assertThat(e.getStackTrace()).isEmpty();
              });
    }
  }

  @Test
  void readsUtf8ModelNames() throws BadRequestException {
    Classification c =
        root.classify("POST", "/v1/embeddings", json("{\"model\":\"mod\u00e8le-\u6a21\u578b\"}"));
    assertThat(c.model()).isEqualTo("mod\u00e8le-\u6a21\u578b");
  }

  @Test
  void keepsTheModelVerbatim() throws BadRequestException {
    Classification c =
        root.classify(
            "POST",
            "/v1/chat/completions",
            json("{\"model\":\"Llama 3.1:8b-Q4_K_M\",\"messages\":[]}"));
    assertThat(c.model()).isEqualTo("Llama 3.1:8b-Q4_K_M");
  }

  /** A body key that Go's case-insensitive matching reads as "model" is refused, not taken as absent. */
  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"Model\":\"a\"}                 | Model",
        "{\"MODEL\":\"a\"}                 | MODEL",
        "{\"model\":\"a\",\"MODEL\":\"b\"}   | MODEL",
        "{\"MODEL\":\"b\",\"model\":\"a\"}   | MODEL"
      })
  void refusesCaseVariantsOfModel(String body, String key) {
    assertThatThrownBy(() -> root.classify("POST", "/v1/embeddings", json(body)))
        .isInstanceOf(BadRequestException.class)
        .hasMessage(
            "request body key \""
                + key
                + "\" is not the exact spelling of \"model\"; servers that"
                + " match keys ignoring case would read it as that");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama\\u0000",
        "\\u0000llama",
        "lla\\u0000ma",
        "llama\\n",
        "llama\\u0007x",
        "llama\\u007f",
        "llama\\u0085",
        "llama\\u009b",
        "llama\\tx"
      })
  void refusesModelNamesWithControlCharacters(String escaped) {
    assertThatThrownBy(
            () ->
                root.classify(
                    "POST",
                    "/v1/chat/completions",
                    json("{\"model\":\"" + escaped + "\",\"messages\":[]}")))
        .isInstanceOf(BadRequestException.class)
        .hasMessage("\"model\" in request body has a control character");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        " llama",
        "llama ",
        " llama-3.1-8b ",
        "llama\\u00a0",
        "\\u2007llama",
        "llama\\u3000",
        "llama\\u202f",
        "\\u2028llama"
      })
  void refusesModelNamesWithSurroundingWhiteSpace(String escaped) {
    assertThatThrownBy(
            () ->
                root.classify(
                    "POST",
                    "/v1/chat/completions",
                    json("{\"model\":\"" + escaped + "\",\"messages\":[]}")))
        .isInstanceOf(BadRequestException.class)
        .hasMessage("\"model\" in request body starts or ends with white space");
  }

  @Test
  void refusesAPathModelWithSurroundingWhiteSpace() {
    assertThatThrownBy(() -> root.classify("POST", "/v2/models/ resnet/infer", null))
        .isInstanceOf(BadRequestException.class)
        .hasMessage("the model in the path starts or ends with white space");
  }

  @Test
  void checksInferBodiesForDecoderAgreement() {
    assertThatThrownBy(
            () ->
                root.classify(
                    "POST",
                    "/v2/models/m/infer",
                    json("{\"inputs\":[],\"parameters\":{\"a\":1,\"A\":2}}")))
        .isInstanceOf(BadRequestException.class)
        .hasMessage(
            "request body keys \"parameters.a\" and \"parameters.A\" are one key to servers that match"
                + " keys ignoring case");
  }

  @Test
  void checksBodiesWithThePolicysGovernedNames() {
    RequestClassifier governed =
        new RequestClassifier("", new DecoderAgreement(java.util.List.of("logprobs")));
    byte[] body = json("{\"model\":\"m\",\"LogProbs\":true}");
    assertThatThrownBy(() -> governed.classify("POST", "/v1/chat/completions", body))
        .isInstanceOf(BadRequestException.class)
        .hasMessageContaining("\"LogProbs\" is not the exact spelling of \"logprobs\"");
  }

  @Test
  void toStringLeavesTheBodyOut() throws BadRequestException {
    Classification c =
        root.classify(
            "POST",
            "/v1/chat/completions",
            json(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"my password is hunter2\"}]}"));
    assertThat(c.toString())
        .contains("chat", "m", "/v1/chat/completions")
        .doesNotContain("hunter2");
  }

  @Test
  void classificationRefusesInconsistentValues() {
    assertThatThrownBy(() -> new Classification("train", "m", "/x", null))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new Classification("chat", null, "/x", null))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
