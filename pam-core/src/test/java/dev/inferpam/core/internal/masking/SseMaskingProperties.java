package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.core.Policy.MaskStrategy;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The streaming property, end to end through {@link BodyMasker} with the real masker: a
 * random text seeded with values of every detector is cut into random OpenAI chat SSE events
 * (a value may be split across any number of them), the bytes reach the masker in random pieces;
 * every delivered event parses, the delivered text never holds a raw value and equals the block
 * masker's result on the whole text.
 */
class SseMaskingProperties {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);
  private static final ObjectMapper JSON = new ObjectMapper();

  @Provide
  Arbitrary<StreamingMaskerProperties.Seeded> texts() {
    return new StreamingMaskerProperties().texts();
  }

  @Provide
  Arbitrary<List<Integer>> cuts() {
    return new StreamingMaskerProperties().cuts();
  }

  @Property(tries = 300)
  void deliveredEventsParseLeakNothingAndEqualBlockMasking(
      @ForAll("texts") StreamingMaskerProperties.Seeded seeded,
      @ForAll("cuts") List<Integer> eventCuts,
      @ForAll("cuts") List<Integer> byteCuts)
      throws IOException {
    String text = seeded.text();
    byte[] upstream = sse(text, StreamingMaskerProperties.cuts(text.length(), eventCuts));
    BodyMasker body = BodyMasker.open(MASKER, "text/event-stream; charset=utf-8");
    ByteArrayOutputStream delivered = new ByteArrayOutputStream();
    int at = 0;
    for (int c : StreamingMaskerProperties.cuts(upstream.length, byteCuts)) {
      delivered.write(body.push(upstream, at, c - at));
      at = c;
    }
    delivered.write(body.push(upstream, at, upstream.length - at));
    delivered.write(body.finish());

    StringBuilder content = new StringBuilder();
    boolean done = false;
    for (String event : delivered.toString(StandardCharsets.UTF_8).split("\n\n")) {
      if (event.isBlank()) continue;
      assertThat(event).startsWith("data: ");
      String data = event.substring("data: ".length());
      if (data.equals("[DONE]")) {
        done = true;
        continue;
      }
      assertThat(done).as("no event after [DONE]").isFalse();
      JsonNode chunk = JSON.readTree(data); // every event parses
      JsonNode piece = chunk.path("choices").path(0).path("delta").path("content");
      if (piece.isTextual()) content.append(piece.textValue());
    }
    assertThat(done).isTrue();
    assertThat(content.toString()).isEqualTo(MASKER.mask(text));
    for (String v : seeded.values()) assertThat(content.toString()).doesNotContain(v);
  }

  /**
   * Latency: 200 events of prose with PII; each event comes out of the very push that completed
   * it (the client has it before the upstream sends the next one), and all text is released
   * except a tail that could still be part of a value (never more than the last partial word or
   * value here).
   */
  @Example
  void everyEventIsDeliveredByThePushThatCompletedItHoldingBackOnlyAnUndecidedTail()
      throws IOException {
    StringBuilder t = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      t.append(
          i % 10 == 3
              ? "mail alice@example.com or call (415) 555-2671 "
              : "the model answered the question ");
    }
    String text = t.toString();
    TreeSet<Integer> cuts = new TreeSet<>();
    for (int i = 1; i < 200; i++) cuts.add(i * text.length() / 200);
    String[] events = new String(sse(text, cuts), StandardCharsets.UTF_8).split("(?<=\n\n)");
    assertThat(events).hasSize(202); // 200 content events, the finishing chunk, [DONE]
    BodyMasker body = BodyMasker.open(MASKER, "text/event-stream");
    StringBuilder released = new StringBuilder();
    int sent = 0;
    for (int i = 0; i < 200; i++) {
      byte[] in = events[i].getBytes(StandardCharsets.UTF_8);
      String out = new String(body.push(in, 0, in.length), StandardCharsets.UTF_8);
      assertThat(out)
          .as("event %d", i)
          .startsWith("data: ")
          .endsWith("\n\n")
          .doesNotContain("\n\ndata");
      released.append(
          JSON.readTree(out.substring(6))
              .path("choices")
              .path(0)
              .path("delta")
              .path("content")
              .asText());
      sent =
          cuts.stream().filter(c -> c <= text.length()).skip(i).findFirst().orElse(text.length());
      String upstreamSoFar = text.substring(0, sent);
      String maskedSoFar = MASKER.mask(upstreamSoFar);
      // what is missing is only the undecided tail: at most the last 40 chars of the upstream text
      assertThat(maskedSoFar).startsWith(released.toString());
      assertThat(upstreamSoFar.length() - unmaskedLength(released.toString()))
          .as("held at event %d", i)
          .isLessThanOrEqualTo(40);
    }
  }

  /** Length of the upstream text that {@code masked} stands for (labels back to their values). */
  private static int unmaskedLength(String masked) {
    return masked
        .replace("[EMAIL]", "alice@example.com")
        .replace("[PHONE]", "(415) 555-2671")
        .length();
  }

  /** OpenAI chat chunks carrying {@code text} cut at {@code cuts}, a finishing chunk and [DONE]. */
  static byte[] sse(String text, TreeSet<Integer> cuts) {
    List<String> pieces = new ArrayList<>();
    int at = 0;
    for (int c : cuts) {
      // an upstream sends whole code points: never cut a surrogate pair
      if (c > 0 && c < text.length() && Character.isLowSurrogate(text.charAt(c))) continue;
      pieces.add(text.substring(at, c));
      at = c;
    }
    pieces.add(text.substring(at));
    StringBuilder b = new StringBuilder();
    for (String p : pieces) {
      ObjectNode chunk = chunk();
      chunk
          .withArray("choices")
          .addObject()
          .put("index", 0)
          .putNull("finish_reason")
          .putObject("delta")
          .put("content", p);
      b.append("data: ").append(chunk).append("\n\n");
    }
    ObjectNode last = chunk();
    last.withArray("choices")
        .addObject()
        .put("index", 0)
        .put("finish_reason", "stop")
        .putObject("delta");
    b.append("data: ").append(last).append("\n\n").append("data: [DONE]\n\n");
    return b.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Where streamed tool-call arguments travel. */
  enum ToolShape {
    OPENAI,
    ANTHROPIC,
    RESPONSES
  }

  /**
   * The cross-event carry-over of tool-call arguments: the seeded text streamed as the arguments
   * of two interleaved tool calls (OpenAI {@code tool_calls} indexes 0 and 1, Anthropic blocks
   * 1 and 2, Responses output items 0 and 1), cut into random fragments and random byte pieces.
   * Each call's delivered arguments equal the block masker's result on its whole text, no raw
   * value is delivered, and every event parses.
   */
  @Property(tries = 200)
  void toolArgumentsAcrossEventsLeakNothingAndEqualBlockMasking(
      @ForAll("texts") StreamingMaskerProperties.Seeded seeded,
      @ForAll("cuts") List<Integer> eventCuts,
      @ForAll("cuts") List<Integer> byteCuts,
      @ForAll ToolShape shape)
      throws IOException {
    String text = seeded.text();
    List<String> pieces = new ArrayList<>();
    int at = 0;
    for (int c : StreamingMaskerProperties.cuts(text.length(), eventCuts)) {
      if (c > 0 && c < text.length() && Character.isLowSurrogate(text.charAt(c))) continue;
      pieces.add(text.substring(at, c));
      at = c;
    }
    pieces.add(text.substring(at));
    StringBuilder b = new StringBuilder();
    for (String p : pieces) {
      for (int call = 0; call < 2; call++)
        b.append(toolEvent(shape, call, call == 0 ? p : p.toUpperCase(java.util.Locale.ROOT)));
    }
    b.append(
        switch (shape) {
          case OPENAI ->
              "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
          case ANTHROPIC ->
              "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
                  + "data: {\"type\":\"content_block_stop\",\"index\":2}\n\ndata: {\"type\":\"message_stop\"}\n\n";
          case RESPONSES -> "data: {\"type\":\"response.completed\"}\n\n";
        });
    byte[] upstream = b.toString().getBytes(StandardCharsets.UTF_8);
    BodyMasker body = BodyMasker.open(MASKER, "text/event-stream");
    ByteArrayOutputStream delivered = new ByteArrayOutputStream();
    at = 0;
    for (int c : StreamingMaskerProperties.cuts(upstream.length, byteCuts)) {
      delivered.write(body.push(upstream, at, c - at));
      at = c;
    }
    delivered.write(body.push(upstream, at, upstream.length - at));
    delivered.write(body.finish());

    StringBuilder[] arguments = {new StringBuilder(), new StringBuilder()};
    for (String event : delivered.toString(StandardCharsets.UTF_8).split("\n\n")) {
      if (event.isBlank() || event.equals("data: [DONE]")) continue;
      JsonNode e =
          JSON.readTree(event.substring(event.indexOf("data: ") + 6)); // every event parses
      switch (shape) {
        case OPENAI -> {
          for (JsonNode call : e.path("choices").path(0).path("delta").path("tool_calls")) {
            arguments[call.path("index").asInt()].append(
                call.path("function").path("arguments").asText(""));
          }
        }
        case ANTHROPIC -> {
          if (e.path("type").asText().equals("content_block_delta")) {
            arguments[e.path("index").asInt() - 1].append(
                e.path("delta").path("partial_json").asText(""));
          }
        }
        case RESPONSES -> {
          if (e.path("type").asText().equals("response.function_call_arguments.delta")) {
            arguments[e.path("output_index").asInt()].append(e.path("delta").asText(""));
          }
        }
      }
    }
    assertThat(arguments[0].toString()).isEqualTo(MASKER.mask(text));
    assertThat(arguments[1].toString())
        .isEqualTo(MASKER.mask(text.toUpperCase(java.util.Locale.ROOT)));
    for (String v : seeded.values()) {
      assertThat(arguments[0].toString()).doesNotContain(v);
      assertThat(delivered.toString(StandardCharsets.UTF_8)).doesNotContain(quoted(v));
    }
  }

  /** {@code v} as it would appear inside a JSON string (without the quotes). */
  private static String quoted(String v) throws IOException {
    String q = JSON.writeValueAsString(v);
    return q.substring(1, q.length() - 1);
  }

  private static String toolEvent(ToolShape shape, int call, String fragment) {
    ObjectNode e = JsonNodeFactory.instance.objectNode();
    switch (shape) {
      case OPENAI ->
          e.withArray("choices")
              .addObject()
              .put("index", 0)
              .putNull("finish_reason")
              .putObject("delta")
              .withArray("tool_calls")
              .addObject()
              .put("index", call)
              .putObject("function")
              .put("arguments", fragment);
      case ANTHROPIC ->
          e.put("type", "content_block_delta")
              .put("index", call + 1)
              .putObject("delta")
              .put("type", "input_json_delta")
              .put("partial_json", fragment);
      case RESPONSES ->
          e.put("type", "response.function_call_arguments.delta")
              .put("item_id", "fc_" + call)
              .put("output_index", call)
              .put("delta", fragment);
    }
    return "data: " + e + "\n\n";
  }

  private static ObjectNode chunk() {
    ObjectNode chunk = JsonNodeFactory.instance.objectNode();
    chunk
        .put("id", "chatcmpl-1")
        .put("object", "chat.completion.chunk")
        .put("created", 1700000000)
        .put("model", "m");
    return chunk;
  }
}
