package dev.inferpam.core.internal.quotas;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class UsageExtractorTest {

  static Map<String, Long> usage(String contentType, String body) {
    UsageExtractor x = UsageExtractor.forContentType(contentType);
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    x.accept(bytes, 0, bytes.length);
    return x.usage();
  }

  /** Feeds {@code body} in two pieces split at {@code at}, then in single bytes. */
  static void assertSameAtEverySplit(String contentType, String body, Map<String, Long> expected) {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    for (int at = 0; at <= bytes.length; at++) {
      UsageExtractor x = UsageExtractor.forContentType(contentType);
      x.accept(bytes, 0, at);
      x.accept(bytes, at, bytes.length - at);
      assertThat(x.usage()).as("split at byte %d", at).isEqualTo(expected);
    }
    UsageExtractor single = UsageExtractor.forContentType(contentType);
    for (int i = 0; i < bytes.length; i++) single.accept(bytes, i, 1);
    assertThat(single.usage()).as("byte by byte").isEqualTo(expected);
  }

  static Map<String, Long> tokens(long prompt, long completion) {
    return Map.of("prompt_tokens", prompt, "completion_tokens", completion);
  }

  static Map<String, Long> tokens(long prompt, long completion, long total) {
    return Map.of("prompt_tokens", prompt, "completion_tokens", completion, "total_tokens", total);
  }

  // --- JSON ------------------------------------------------------------------------------------

  static final String OPENAI_JSON =
      """
      {"id":"chatcmpl-1","object":"chat.completion","model":"llama-3.1-8b",
       "choices":[{"index":0,"message":{"role":"assistant","content":"a \\"usage\\": {\\"prompt_tokens\\": 999}"},
                   "finish_reason":"stop","usage":{"prompt_tokens":555}}],
       "usage":{"prompt_tokens":41,"completion_tokens":120,"total_tokens":161,
                "prompt_tokens_details":{"cached_tokens":0}}}""";

  static final String ANTHROPIC_JSON =
      """
      {"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi"}],
       "model":"claude","stop_reason":"end_turn",
       "usage":{"input_tokens":12,"output_tokens":6,"cache_read_input_tokens":0}}""";

  static final String OLLAMA_JSON =
      """
      {"model":"llama3","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi"},
       "done":true,"total_duration":5191566416,"prompt_eval_count":26,"prompt_eval_duration":1,
       "eval_count":298,"eval_duration":2,"context":[1,2,3]}""";

  static final String RESPONSES_JSON =
      """
      {"id":"resp_1","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]}],
       "usage":{"input_tokens":36,"output_tokens":87,"total_tokens":123,"output_tokens_details":{"reasoning_tokens":0}}}""";

  static Stream<Arguments> jsonShapes() {
    return Stream.of(
        Arguments.of("openai", OPENAI_JSON, tokens(41, 120, 161)),
        Arguments.of("anthropic", ANTHROPIC_JSON, tokens(12, 6)),
        Arguments.of("ollama", OLLAMA_JSON, tokens(26, 298)),
        Arguments.of("openai responses", RESPONSES_JSON, tokens(36, 87, 123)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("jsonShapes")
  void readsTopLevelUsageOfJsonResponses(String name, String body, Map<String, Long> expected) {
    assertThat(usage("application/json", body)).isEqualTo(expected);
    assertThat(usage("application/json; charset=utf-8", body)).isEqualTo(expected);
    assertSameAtEverySplit("application/json", body, expected);
  }

  @Test
  void ignoresUsageThatIsNotAtTheTopLevel() {
    assertThat(
            usage(
                "application/json",
                "{\"choices\":[{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}],\"data\":{\"usage\":{\"prompt_tokens\":7}}}"))
        .isEmpty();
  }

  @Test
  void ignoresAnythingButWholeNonNegativeNumbers() {
    assertThat(
            usage(
                "application/json",
                "{\"usage\":{\"prompt_tokens\":\"41\",\"completion_tokens\":-1,\"total_tokens\":1.5}}"))
        .isEmpty();
    assertThat(usage("application/json", "{\"usage\":null}")).isEmpty();
    assertThat(usage("application/json", "{\"usage\":[1,2]}")).isEmpty();
  }

  @Test
  void reportsWhatIsPresentOnly() {
    assertThat(usage("application/json", "{\"usage\":{\"prompt_tokens\":8}}"))
        .isEqualTo(Map.of("prompt_tokens", 8L));
  }

  @Test
  void otherTypesAndMalformedBodiesGiveNothing() {
    assertThat(usage("text/plain", OPENAI_JSON)).isEmpty();
    assertThat(usage(null, OPENAI_JSON)).isEmpty();
    assertThat(usage("application/json", "{\"usage\":{\"prompt_tokens\":4")).isEmpty();
    assertThat(usage("application/json", "}}}]]{\"usage\":{\"prompt_tokens\":4}}")).isEmpty();
    assertThat(usage("application/json", "not json at all")).isEmpty();
    assertThat(usage("application/json", "")).isEmpty();
  }

  @Test
  void aHugeValueElsewhereCostsNothingAndAHugeUsageIsSkipped() {
    String big = "x".repeat(5_000_000);
    assertThat(
            usage(
                "application/json",
                "{\"choices\":[{\"message\":{\"content\":\""
                    + big
                    + "\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}"))
        .isEqualTo(tokens(1, 2));
    String hugeUsage =
        "{\"usage\":{\"pad\":\""
            + "y".repeat(UsageExtractor.MAX_VALUE_BYTES)
            + "\",\"prompt_tokens\":3}}";
    assertThat(usage("application/json", hugeUsage)).isEmpty();
  }

  @Test
  void escapedKeysAndQuotesInStringsDoNotConfuseTheWalk() {
    assertThat(
            usage(
                "application/json",
                "{\"a\\\"b\":\"}\\\\\",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}"))
        .isEqualTo(tokens(2, 3));
    // a key spelled with an escape is not taken for "usage"
    assertThat(usage("application/json", "{\"us\\u0061ge\":{\"prompt_tokens\":2}}")).isEmpty();
  }

  @Test
  void onlyTheExactKeysCount() {
    String u = "{\"prompt_tokens\":1,\"completion_tokens\":2}";
    for (String near :
        new String[] {
          "usages", "Usage", "usag", "xusage", "usage ", "eval_counts", "prompt_eval_coun"
        }) {
      assertThat(usage("application/json", "{\"" + near + "\":" + u + "}")).as(near).isEmpty();
    }
    assertThat(usage("application/json", "{\"message\":{\"usage\":" + u + "}}"))
        .isEqualTo(tokens(1, 2));
    assertThat(usage("application/json", "{\"response\":{\"usage\":" + u + "}}"))
        .isEqualTo(tokens(1, 2));
    assertThat(usage("application/json", "{\"messages\":{\"usage\":" + u + "}}")).isEmpty();
    assertThat(usage("application/json", "{\"data\":{\"usage\":" + u + "}}")).isEmpty();
    // the parent key is forgotten when the next level-1 key comes
    assertThat(usage("application/json", "{\"message\":{},\"x\":{\"usage\":" + u + "}}")).isEmpty();
  }

  @Test
  void usageSpelledOutInsideTextIsNotUsage() {
    String body =
        "{\"choices\":[{\"message\":{\"content\":\"say \\\"usage\\\":{\\\"prompt_tokens\\\":99} "
            + "and {\\\"usage\\\": 1} \\\\\"}}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}";
    assertSameAtEverySplit("application/json", body, tokens(2, 3));
    assertSameAtEverySplit(
        "application/json", "{\"text\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\"}", Map.of());
  }

  @Test
  void aLineEndInsideAnUnterminatedStringEndsTheEventOrLine() {
    String sse =
        "data: {\"choices\":[{\"delta\":{\"content\":\"cut off\n\n"
            + "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5}}\n\n";
    assertSameAtEverySplit("text/event-stream", sse, tokens(4, 5));
    String sseCr =
        "data: {\"choices\":[{\"delta\":{\"content\":\"cut off\r\n\r\n"
            + "data: {\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5}}\r\n\r\n";
    assertSameAtEverySplit("text/event-stream", sseCr, tokens(4, 5));
    String ndjson =
        "{\"message\":{\"content\":\"cut off\n"
            + "{\"done\":true,\"prompt_eval_count\":6,\"eval_count\":7}\n";
    assertSameAtEverySplit("application/x-ndjson", ndjson, tokens(6, 7));
  }

  @Test
  void vendorJsonTypesAreJson() {
    assertThat(
            usage(
                "application/vnd.api+json",
                "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"))
        .isEqualTo(tokens(1, 1));
  }

  // --- SSE -------------------------------------------------------------------------------------

  static final String OPENAI_SSE =
      ""
          + "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n"
          + "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n"
          + "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
          + "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n"
          + "data: [DONE]\n\n";

  static final String ANTHROPIC_SSE =
      ""
          + "event: message_start\n"
          + "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
          + "\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
          + "event: content_block_start\n"
          + "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
          + "event: ping\ndata: {\"type\": \"ping\"}\n\n"
          + "event: content_block_delta\n"
          + "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
          + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
          + "event: message_delta\n"
          + "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n"
          + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

  static final String RESPONSES_SSE =
      ""
          + "event: response.output_text.delta\n"
          + "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n"
          + "event: response.completed\n"
          + "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"output\":[],"
          + "\"usage\":{\"input_tokens\":5,\"output_tokens\":7,\"total_tokens\":12}}}\n\n";

  static Stream<Arguments> sseShapes() {
    return Stream.of(
        Arguments.of("openai with include_usage", OPENAI_SSE, tokens(9, 12, 21)),
        Arguments.of("anthropic", ANTHROPIC_SSE, tokens(25, 15)),
        Arguments.of("openai responses", RESPONSES_SSE, tokens(5, 7, 12)),
        Arguments.of("crlf line ends", OPENAI_SSE.replace("\n", "\r\n"), tokens(9, 12, 21)),
        Arguments.of("cr line ends", ANTHROPIC_SSE.replace("\n", "\r"), tokens(25, 15)),
        Arguments.of(
            "no space after colon, comments, ids",
            ": keep-alive\nid: 7\nretry: 10\n"
                + "data:{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n",
            tokens(1, 2)),
        Arguments.of(
            "json spread over data lines",
            "data: {\"usage\":\ndata: {\"prompt_tokens\":3,\n"
                + "data: \"completion_tokens\":4}}\n\n",
            tokens(3, 4)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sseShapes")
  void readsUsageFromServerSentEventsSplitAnywhere(
      String name, String stream, Map<String, Long> expected) {
    assertSameAtEverySplit("text/event-stream; charset=utf-8", stream, expected);
  }

  @Test
  void sseWithoutUsageGivesNothing() {
    String stream = "data: {\"choices\":[{\"delta\":{\"content\":\"usage\"}}]}\n\ndata: [DONE]\n\n";
    assertThat(usage("text/event-stream", stream)).isEmpty();
  }

  @Test
  void otherSseFieldsAreNotData() {
    assertThat(
            usage(
                "text/event-stream",
                "event: {\"usage\":{\"prompt_tokens\":1}}\n"
                    + "database: {\"usage\":{\"prompt_tokens\":1}}\n\n"))
        .isEmpty();
  }

  @Test
  void aBrokenEventDoesNotSpoilTheNext() {
    String stream =
        "data: {\"usage\":{\"prompt_tokens\":1\n\n"
            + "data: ]]]}}}\n\n"
            + "data: {\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n\n";
    assertSameAtEverySplit("text/event-stream", stream, tokens(2, 3));
  }

  // --- NDJSON ----------------------------------------------------------------------------------

  static final String OLLAMA_NDJSON =
      ""
          + "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"He\"},\"done\":false}\n"
          + "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"llo\"},\"done\":false}\n"
          + "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
          + "\"done_reason\":\"stop\",\"total_duration\":1,\"prompt_eval_count\":26,\"eval_count\":290,\"eval_duration\":3}\n";

  @Test
  void readsOllamaFinalLine() {
    assertSameAtEverySplit("application/x-ndjson", OLLAMA_NDJSON, tokens(26, 290));
  }

  @Test
  void ollamaGenerateWithAHugeContextArray() {
    StringBuilder context = new StringBuilder();
    for (int i = 0; i < 200_000; i++) context.append(i).append(',');
    context.append('0');
    String stream =
        "{\"response\":\"a\",\"done\":false}\n"
            + "{\"response\":\"\",\"done\":true,\"context\":["
            + context
            + "],\"prompt_eval_count\":10,\"eval_count\":20}\n";
    assertThat(usage("application/x-ndjson", stream)).isEqualTo(tokens(10, 20));
  }

  @Test
  void streamingTypes() {
    assertThat(UsageExtractor.isStreamingType("text/event-stream")).isTrue();
    assertThat(UsageExtractor.isStreamingType("Text/Event-Stream; charset=UTF-8")).isTrue();
    assertThat(UsageExtractor.isStreamingType("application/x-ndjson")).isTrue();
    assertThat(UsageExtractor.isStreamingType("application/json")).isFalse();
    assertThat(UsageExtractor.isStreamingType(null)).isFalse();
  }
}
