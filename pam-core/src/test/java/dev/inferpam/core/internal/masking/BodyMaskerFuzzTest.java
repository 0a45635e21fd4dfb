package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.core.Policy.MaskStrategy;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the streaming response maskers ({@link BodyMasker}: SSE, NDJSON,
 * JSON, text) with the built-in detectors.
 *
 * <p><b>Input</b> (regression corpus: {@code BodyMaskerFuzzTestInputs/mask}): a first line naming
 * the mode, a second line of cut positions (any digit runs), then the payload.
 * <ul>
 *   <li>{@code raw <content type>}: the payload is the response body as it is. Contract: no
 *       exception, and the output does not depend on how the bytes are split (one push, the
 *       fuzzer's cuts, one byte at a time).
 *   <li>{@code openai}, {@code completions}, {@code responses}, {@code anthropic},
 *       {@code ollama-chat}, {@code ollama-generate}: the payload is text a model streams, with
 *       {@code {email}} and {@code {card}} standing for an e-mail address and a card number in
 *       prose (planted as words between spaces; other copies of those two values are removed). The text is cut into that API's events at the fuzzer's cuts (so a value may be
 *       split across events) and the stream's bytes reach the masker at the same cuts.
 *       Contract: the same output for every split; every event parses; the text the client
 *       reassembles equals the block masker's result on the whole text; and no planted value
 *       appears in the output bytes or in any JSON string of it.
 * </ul>
 */
class BodyMaskerFuzzTest {
  private static final BlockMasker MASKER =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EMAIL = "alice@example.com";
  private static final String CARD = "4111111111111111";
  private static final Pattern NUMBER = Pattern.compile("\\d{1,6}");

  /** How a stream API frames text: the body, and how a client reads its text back. */
  private record Api(
      String contentType, Function<List<String>, String> frame, Function<JsonNode, String> text) {}

  private static final Map<String, Api> APIS =
      Map.of(
          "openai",
              new Api(
                  "text/event-stream",
                  BodyMaskerFuzzTest::openAi,
                  n -> n.path("choices").path(0).path("delta").path("content").asText("")),
          "completions",
              new Api(
                  "text/event-stream",
                  BodyMaskerFuzzTest::completions,
                  n -> n.path("choices").path(0).path("text").asText("")),
          "responses",
              new Api(
                  "text/event-stream",
                  BodyMaskerFuzzTest::responses,
                  n ->
                      n.path("type").asText().equals("response.output_text.delta")
                          ? n.path("delta").asText("")
                          : ""),
          "anthropic",
              new Api(
                  "text/event-stream",
                  BodyMaskerFuzzTest::anthropic,
                  n -> n.path("delta").path("text").asText("")),
          "ollama-chat",
              new Api(
                  "application/x-ndjson",
                  pieces -> ollama(pieces, "message"),
                  n -> n.path("message").path("content").asText("")),
          "ollama-generate",
              new Api(
                  "application/x-ndjson",
                  pieces -> ollama(pieces, "response"),
                  n -> n.path("response").asText("")));

  @FuzzTest(maxDuration = "10s")
  void mask(byte[] input) throws JsonProcessingException {
    int nl1 = indexOf(input, 0);
    int nl2 = nl1 < 0 ? -1 : indexOf(input, nl1 + 1);
    if (nl2 < 0) return;
    String mode = new String(input, 0, nl1, StandardCharsets.UTF_8);
    List<Integer> cuts =
        numbers(new String(input, nl1 + 1, nl2 - nl1 - 1, StandardCharsets.US_ASCII));
    byte[] payload = Arrays.copyOfRange(input, nl2 + 1, input.length);

    if (mode.startsWith("raw ")) {
      BodyMasker probe = BodyMasker.open(MASKER, mode.substring(4));
      if (probe == null) return; // a binary type: passed untouched
      assertSplitInvariant(mode.substring(4), payload, cuts);
      return;
    }
    Api api = APIS.get(mode);
    if (api == null) return;
    // The raw values only where planted, as words in prose: the fuzzer's own copies (glued to other
    // text, where a detector may rightly not see a value) are taken out first.
    String text =
        new String(payload, StandardCharsets.UTF_8)
            .replace(EMAIL, "#")
            .replace(CARD, "#")
            .replace("{email}", " mail " + EMAIL + " now ")
            .replace("{card}", " card " + CARD + " ok ");
    byte[] body = api.frame().apply(pieces(text, cuts)).getBytes(StandardCharsets.UTF_8);
    byte[] out = assertSplitInvariant(api.contentType(), body, cuts);

    String delivered = new String(out, StandardCharsets.UTF_8);
    assertThat(delivered).doesNotContain(EMAIL, CARD);
    StringBuilder reassembled = new StringBuilder();
    for (JsonNode event : events(delivered, api.contentType())) {
      reassembled.append(api.text().apply(event));
      assertNoPlantedValue(event);
    }
    assertThat(reassembled.toString()).isEqualTo(MASKER.mask(text));
  }

  /** Runs the body whole, at {@code cuts}, and (when short) a byte at a time; returns the output. */
  private static byte[] assertSplitInvariant(String contentType, byte[] body, List<Integer> cuts) {
    byte[] whole = run(contentType, body, new TreeSet<>());
    TreeSet<Integer> at = new TreeSet<>();
    for (int c : cuts) if (body.length > 0) at.add(c % body.length);
    assertThat(run(contentType, body, at)).as("split at %s", at).isEqualTo(whole);
    if (body.length <= 256) {
      TreeSet<Integer> every = new TreeSet<>();
      for (int i = 1; i < body.length; i++) every.add(i);
      assertThat(run(contentType, body, every)).as("one byte at a time").isEqualTo(whole);
    }
    return whole;
  }

  private static byte[] run(String contentType, byte[] body, TreeSet<Integer> cuts) {
    BodyMasker masker = BodyMasker.open(MASKER, contentType);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int from = 0;
    for (int cut : cuts) {
      out.writeBytes(masker.push(body, from, cut - from));
      from = cut;
    }
    out.writeBytes(masker.push(body, from, body.length - from));
    out.writeBytes(masker.finish());
    return out.toByteArray();
  }

  /** The JSON of every SSE event's data or NDJSON line; each must parse ({@code [DONE]} aside). */
  private static List<JsonNode> events(String body, String contentType)
      throws JsonProcessingException {
    List<JsonNode> events = new ArrayList<>();
    if (contentType.equals("application/x-ndjson")) {
      for (String line : body.split("\n")) if (!line.isEmpty()) events.add(JSON.readTree(line));
      return events;
    }
    for (String event : body.split("\n\n")) {
      StringBuilder data = new StringBuilder();
      for (String line : event.split("\n")) {
        if (line.startsWith("data: "))
          data.append(data.length() == 0 ? "" : "\n").append(line.substring(6));
      }
      if (data.length() > 0 && !data.toString().equals("[DONE]"))
        events.add(JSON.readTree(data.toString()));
    }
    return events;
  }

  private static void assertNoPlantedValue(JsonNode node) {
    if (node.isTextual()) assertThat(node.textValue()).doesNotContain(EMAIL, CARD);
    node.forEach(BodyMaskerFuzzTest::assertNoPlantedValue);
  }

  /** {@code text} cut at {@code cuts} (modulo its length), never inside a surrogate pair. */
  private static List<String> pieces(String text, List<Integer> cuts) {
    TreeSet<Integer> at = new TreeSet<>();
    for (int c : cuts) {
      if (text.isEmpty()) break;
      int i = c % text.length();
      if (i > 0 && Character.isLowSurrogate(text.charAt(i))) continue;
      at.add(i);
    }
    List<String> pieces = new ArrayList<>();
    int from = 0;
    for (int c : at) {
      pieces.add(text.substring(from, c));
      from = c;
    }
    pieces.add(text.substring(from));
    return pieces;
  }

  private static String openAi(List<String> pieces) {
    StringBuilder b = new StringBuilder();
    for (String p : pieces) {
      ObjectNode chunk = chunk("chat.completion.chunk");
      chunk
          .withArray("choices")
          .addObject()
          .put("index", 0)
          .putNull("finish_reason")
          .putObject("delta")
          .put("content", p);
      b.append("data: ").append(chunk).append("\n\n");
    }
    ObjectNode last = chunk("chat.completion.chunk");
    last.withArray("choices")
        .addObject()
        .put("index", 0)
        .put("finish_reason", "stop")
        .putObject("delta");
    return b.append("data: ").append(last).append("\n\ndata: [DONE]\n\n").toString();
  }

  private static String completions(List<String> pieces) {
    StringBuilder b = new StringBuilder();
    for (String p : pieces) {
      ObjectNode chunk = chunk("text_completion");
      chunk
          .withArray("choices")
          .addObject()
          .put("index", 0)
          .put("text", p)
          .putNull("finish_reason");
      b.append("data: ").append(chunk).append("\n\n");
    }
    ObjectNode last = chunk("text_completion");
    last.withArray("choices")
        .addObject()
        .put("index", 0)
        .put("text", "")
        .put("finish_reason", "length");
    return b.append("data: ").append(last).append("\n\ndata: [DONE]\n\n").toString();
  }

  private static String responses(List<String> pieces) {
    StringBuilder b = new StringBuilder();
    for (String p : pieces) {
      ObjectNode e =
          JsonNodeFactory.instance
              .objectNode()
              .put("type", "response.output_text.delta")
              .put("item_id", "msg_1")
              .put("output_index", 0)
              .put("content_index", 0)
              .put("delta", p);
      b.append("event: response.output_text.delta\ndata: ").append(e).append("\n\n");
    }
    ObjectNode done =
        JsonNodeFactory.instance
            .objectNode()
            .put("type", "response.output_text.done")
            .put("item_id", "msg_1")
            .put("output_index", 0)
            .put("content_index", 0)
            .put("text", String.join("", pieces));
    b.append("event: response.output_text.done\ndata: ").append(done).append("\n\n");
    return b.append("event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n")
        .toString();
  }

  private static String anthropic(List<String> pieces) {
    StringBuilder b =
        new StringBuilder("event: message_start\ndata: {\"type\":\"message_start\"}\n\n");
    for (String p : pieces) {
      ObjectNode e =
          JsonNodeFactory.instance.objectNode().put("type", "content_block_delta").put("index", 0);
      e.putObject("delta").put("type", "text_delta").put("text", p);
      b.append("event: content_block_delta\ndata: ").append(e).append("\n\n");
    }
    b.append("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    return b.append("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n").toString();
  }

  private static String ollama(List<String> pieces, String field) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i <= pieces.size(); i++) {
      String p = i < pieces.size() ? pieces.get(i) : "";
      ObjectNode line = JsonNodeFactory.instance.objectNode().put("model", "llama3");
      if (field.equals("message")) {
        line.putObject("message").put("role", "assistant").put("content", p);
      } else {
        line.put("response", p);
      }
      b.append(line.put("done", i == pieces.size())).append('\n');
    }
    return b.toString();
  }

  private static ObjectNode chunk(String object) {
    return JsonNodeFactory.instance
        .objectNode()
        .put("id", "c-1")
        .put("object", object)
        .put("created", 1700000000)
        .put("model", "m");
  }

  private static List<Integer> numbers(String s) {
    List<Integer> out = new ArrayList<>();
    Matcher m = NUMBER.matcher(s);
    while (m.find() && out.size() < 64) out.add(Integer.parseInt(m.group()));
    return out;
  }

  private static int indexOf(byte[] b, int from) {
    for (int i = from; i < b.length; i++) {
      if (b[i] == '\n') return i;
    }
    return -1;
  }
}
