package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.assertEveryEventIsJson;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.parse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.quote;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.sseData;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.str;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.utf8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Streamed tool-call arguments are masked across events: a value split over two fragments (an
 * email, a card number) never reaches the client, with the built-in detectors.
 */
class BodyMaskerToolCallTest {
  private static final String SSE = "text/event-stream";
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), Policy.MaskStrategy.REDACT, null);

  /** Each event pushed on its own; what every push and the finish returned, joined. */
  private static String run(BodyMasker masker, List<String> events) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String e : events) {
      byte[] b = utf8(e);
      out.writeBytes(masker.push(b, 0, b.length));
    }
    out.writeBytes(masker.finish());
    return str(out.toByteArray());
  }

  private static String collect(String out, Function<JsonNode, String> field) {
    StringBuilder all = new StringBuilder();
    for (String data : sseData(out)) {
      if (!data.equals("[DONE]")) all.append(field.apply(parse(data)));
    }
    return all.toString();
  }

  private static String toolChunk(int tool, String arguments) {
    return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
        + "{\"tool_calls\":[{\"index\":"
        + tool
        + ",\"function\":{\"arguments\":"
        + quote(arguments)
        + "}}]},"
        + "\"finish_reason\":null}]}\n\n";
  }

  private static String openAiArguments(String out, int tool) {
    return collect(
        out,
        event -> {
          StringBuilder s = new StringBuilder();
          for (JsonNode call : event.path("choices").path(0).path("delta").path("tool_calls")) {
            if (call.path("index").asInt() == tool)
              s.append(call.path("function").path("arguments").asText(""));
          }
          return s.toString();
        });
  }

  @Test
  void openAiToolCallArgumentsSplitAcrossEventsAreMasked() {
    List<String> events =
        List.of(
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                + "\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                + "{\"name\":\"send\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
            toolChunk(0, "{\"to\":\"john.do"),
            toolChunk(0, "e@example.com\",\"card\":\"4111 1111 "),
            toolChunk(0, "1111 1111\"}"),
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
                + "\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n");
    BodyMasker masker = BodyMasker.open(MASKER, SSE);
    String out = run(masker, events);

    assertThat(out).doesNotContain("john").doesNotContain("example.com").doesNotContain("4111");
    assertThat(openAiArguments(out, 0))
        .isEqualTo("{\"to\":\"[EMAIL]\",\"card\":\"[CREDIT_CARD]\"}");
    assertThat(masker.counts()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertEveryEventIsJson(out);
    // the tail came with the finishing chunk, before [DONE]; the call's id and name are kept
    List<String> data = sseData(out);
    assertThat(data.get(data.size() - 1)).isEqualTo("[DONE]");
    assertThat(
            parse(data.get(data.size() - 2)).path("choices").path(0).path("finish_reason").asText())
        .isEqualTo("tool_calls");
    assertThat(out).contains("\"id\":\"call_1\"").contains("\"name\":\"send\"");
  }

  @Test
  void twoToolCallsInterleavedAreTwoStreamsAndAnUnfinishedOneIsReleasedAtTheEnd() {
    List<String> events =
        List.of(
            toolChunk(0, "{\"a\":\"jane@exa"),
            toolChunk(1, "{\"b\":\"bob@exa"),
            toolChunk(0, "mple.org\"}"),
            toolChunk(1, "mple.net\"}"),
            "data: [DONE]\n\n");
    String out = run(BodyMasker.open(MASKER, SSE), events);
    assertThat(out).doesNotContain("jane").doesNotContain("bob@");
    assertThat(openAiArguments(out, 0)).isEqualTo("{\"a\":\"[EMAIL]\"}");
    assertThat(openAiArguments(out, 1)).isEqualTo("{\"b\":\"[EMAIL]\"}");
    assertEveryEventIsJson(out);
  }

  @Test
  void legacyFunctionCallArgumentsAreOneStream() {
    String head = "data: {\"choices\":[{\"index\":0,\"delta\":{\"function_call\":{\"arguments\":";
    List<String> events =
        List.of(
            head + quote("{\"to\":\"john.do") + "}},\"finish_reason\":null}]}\n\n",
            head + quote("e@example.com\"}") + "}},\"finish_reason\":null}]}\n\n",
            "data: [DONE]\n\n");
    String out = run(BodyMasker.open(MASKER, SSE), events);
    assertThat(out).doesNotContain("john");
    assertThat(
            collect(
                out,
                e ->
                    e.path("choices")
                        .path(0)
                        .path("delta")
                        .path("function_call")
                        .path("arguments")
                        .asText("")))
        .isEqualTo("{\"to\":\"[EMAIL]\"}");
  }

  private static String anthropicJson(String partial) {
    return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        + "{\"type\":\"input_json_delta\",\"partial_json\":"
        + quote(partial)
        + "}}\n\n";
  }

  @Test
  void anthropicInputJsonDeltaSplitAcrossEventsIsMaskedAndTheTailComesBeforeTheBlockStop() {
    List<String> events =
        List.of(
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
                + "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"send\",\"input\":{}}}\n\n",
            anthropicJson("{\"to\": \"john.do"),
            anthropicJson("e@example.com\", \"card\": \"4111-1111-"),
            anthropicJson("1111-1111\"}"),
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    String out = run(BodyMasker.open(MASKER, SSE), events);
    assertThat(out).doesNotContain("john").doesNotContain("4111");
    String json = collect(out, e -> e.path("delta").path("partial_json").asText(""));
    assertThat(json).isEqualTo("{\"to\": \"[EMAIL]\", \"card\": \"[CREDIT_CARD]\"}");
    assertThat(out.indexOf("[CREDIT_CARD]")).isLessThan(out.indexOf("content_block_stop"));
    assertEveryEventIsJson(out);
  }

  @Test
  void responsesFunctionCallArgumentsSplitAcrossEventsAreMasked() {
    List<String> events = new ArrayList<>();
    for (String piece : List.of("{\"to\":\"john.do", "e@example.com\"}")) {
      events.add(
          "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments"
              + ".delta\",\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":"
              + quote(piece)
              + "}\n\n");
    }
    events.add(
        "event: response.function_call_arguments.done\ndata: {\"type\":\"response.function_call_arguments"
            + ".done\",\"item_id\":\"fc_1\",\"output_index\":0,\"arguments\":"
            + quote("{\"to\":\"john.doe@example.com\"}")
            + "}\n\n");
    String out = run(BodyMasker.open(MASKER, SSE), events);
    assertThat(out).doesNotContain("john");
    String streamed =
        collect(
            out,
            e ->
                e.path("type").asText().equals("response.function_call_arguments.delta")
                    ? e.path("delta").asText("")
                    : "");
    assertThat(streamed).isEqualTo("{\"to\":\"[EMAIL]\"}");
    assertThat(out)
        .contains("\"arguments\":\"{\\\"to\\\":\\\"[EMAIL]\\\"}\"")
        .contains("\"item_id\":\"fc_1\"");
  }
}
