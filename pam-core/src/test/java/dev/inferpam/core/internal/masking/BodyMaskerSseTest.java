package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.assertEveryEventIsJson;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.assertSplitInvariant;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.chatChunk;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.chatFinish;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.feed;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.open;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.parse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.quote;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.run;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.sse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.sseData;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.str;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.utf8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** Server-sent events: text streams across events, tails, framing, splits, limits. */
class BodyMaskerSseTest {
  private static final String SSE = "text/event-stream; charset=utf-8";

  /** Concatenated choices[0].delta.content (or .text) as a client sees it. */
  private static String openAiText(String out) {
    return collect(
        out,
        event -> {
          JsonNode choice = event.path("choices").path(0);
          JsonNode content = choice.path("delta").path("content");
          return content.isTextual() ? content.textValue() : choice.path("text").asText("");
        });
  }

  private static String anthropicText(String out) {
    return collect(
        out,
        event ->
            event.path("type").asText().equals("content_block_delta")
                ? event.path("delta").path("text").asText("")
                : "");
  }

  private static String responsesText(String out) {
    return collect(
        out,
        event ->
            event.path("type").asText().equals("response.output_text.delta")
                ? event.path("delta").asText("")
                : "");
  }

  private static String collect(String out, Function<JsonNode, String> text) {
    StringBuilder all = new StringBuilder();
    for (String data : sseData(out)) {
      if (!data.equals("[DONE]")) all.append(text.apply(parse(data)));
    }
    return all.toString();
  }

  @Test
  void openAiValueSplitAcrossTwoEventsIsMaskedAndEachEventDeliveredAtOnce() {
    BodyMasker masker = open(SSE);
    List<String> outs =
        feed(
            masker,
            sse(chatChunk("my SEC")),
            sse(chatChunk("RET is safe")),
            sse(chatFinish()),
            sse("[DONE]"));

    // every push returned its own, complete event
    for (int i = 0; i < 4; i++) {
      assertThat(outs.get(i)).startsWith("data: ").endsWith("\n\n");
      assertThat(sseData(outs.get(i))).hasSize(1);
    }
    assertThat(outs.get(4)).isEmpty();
    String all = String.join("", outs);
    assertThat(openAiText(all)).isEqualTo("my [S] is safe").doesNotContain("SECRET");
    assertThat(all).doesNotContain("SECRET");
    assertEveryEventIsJson(all);
    assertThat(sseData(outs.get(0)).get(0)).isEqualTo(chatChunk("my "));
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 1));
  }

  @Test
  void openAiValueSplitAcrossThreeEvents() {
    List<String> outs =
        feed(
            open(SSE),
            sse(chatChunk("a SE")),
            sse(chatChunk("CR")),
            sse(chatChunk("ET b")),
            sse(chatFinish()),
            sse("[DONE]"));
    String all = String.join("", outs);
    assertThat(openAiText(all)).isEqualTo("a [S] b");
    assertThat(sseData(outs.get(1)).get(0)).isEqualTo(chatChunk("")); // held back, event kept
    assertThat(all).doesNotContain("SECRET");
    assertEveryEventIsJson(all);
  }

  @Test
  void finishingChunkCarriesTheTail() {
    List<String> outs = feed(open(SSE), sse(chatChunk("ends with SECR")), sse(chatFinish()));
    JsonNode finish = parse(sseData(outs.get(1)).get(0));
    assertThat(finish.path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
    assertThat(finish.path("choices").path(0).path("delta").path("content").asText())
        .isEqualTo("SECR");
    assertThat(openAiText(String.join("", outs))).isEqualTo("ends with SECR");
  }

  @Test
  void doneReleasesTheTailBeforeDone() {
    List<String> outs = feed(open(SSE), sse(chatChunk("value SEC")), sse("[DONE]"));
    List<String> last = sseData(outs.get(1));
    assertThat(last).hasSize(2);
    assertThat(last.get(1)).isEqualTo("[DONE]");
    JsonNode synthetic = parse(last.get(0));
    assertThat(synthetic.path("object").asText()).isEqualTo("chat.completion.chunk");
    assertThat(synthetic.path("choices").path(0).path("delta").path("content").asText())
        .isEqualTo("SEC");
    assertThat(synthetic.path("choices").path(0).path("finish_reason").isNull()).isTrue();
    assertThat(openAiText(String.join("", outs))).isEqualTo("value SEC");
  }

  @Test
  void endOfBodyWithoutEndMarkerReleasesTailsAsEvents() {
    List<String> outs = feed(open(SSE), sse(chatChunk("cut SECRE")));
    assertThat(outs.get(0)).isEqualTo(sse(chatChunk("cut ")));
    assertThat(sseData(outs.get(1))).containsExactly(chatChunk("SECRE"));
  }

  @Test
  void cutOffLastEventIsCompletedBeforeTheTail() {
    String out = String.join("", feed(open(SSE), "data: " + chatChunk("x SEC")));
    assertThat(out).isEqualTo(sse(chatChunk("x "), chatChunk("SEC")));
  }

  @Test
  void completionsTextAndSeveralChoicesAreSeparateStreams() {
    String c0 =
        "{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"SE\",\"finish_reason\":null}]}";
    String c1 =
        "{\"object\":\"text_completion\",\"choices\":[{\"index\":1,\"text\":\"SECRET\",\"finish_reason\":null}]}";
    String c0b =
        "{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"CRET\",\"finish_reason\":\"stop\"}]}";
    String out = String.join("", feed(open(SSE), sse(c0), sse(c1), sse(c0b), sse("[DONE]")));
    assertThat(out).doesNotContain("SECRET");
    List<String> data = sseData(out);
    assertThat(parse(data.get(0)).path("choices").path(0).path("text").asText()).isEmpty();
    assertThat(parse(data.get(1)).path("choices").path(0).path("text").asText()).isEqualTo("[S]");
    assertThat(parse(data.get(2)).path("choices").path(0).path("text").asText()).isEqualTo("[S]");
  }

  @Test
  void anthropicStreamReleasesTheTailBeforeContentBlockStop() {
    String body =
        ""
            + "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
            + "\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":5}}}\n\n"
            + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
            + "event: ping\ndata: {\"type\": \"ping\"}\n\n"
            + delta("The SE")
            + delta("CRET is out, and SECR")
            + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            + "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"
            + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    String out = str(run(SSE, utf8(body)));
    assertThat(anthropicText(out)).isEqualTo("The [S] is out, and SECR");
    assertThat(out).doesNotContain("SECRET");
    assertEveryEventIsJson(out);
    String synthetic =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            + "\"delta\":{\"type\":\"text_delta\",\"text\":\"SECR\"}}\n\n";
    assertThat(out).contains(synthetic + "event: content_block_stop\n");
    assertThat(out)
        .startsWith(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"");
  }

  @Test
  void anthropicMessageStopEndsOpenBlocks() {
    String body = delta("tail SEC") + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    List<String> outs =
        feed(
            open(SSE),
            body.substring(0, body.indexOf("event: message_stop")),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    assertThat(anthropicText(outs.get(1))).isEqualTo("SEC");
    assertThat(outs.get(1)).endsWith("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  }

  private static String delta(String text) {
    return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        + "\"delta\":{\"type\":\"text_delta\",\"text\":"
        + quote(text)
        + "}}\n\n";
  }

  @Test
  void responsesApiDeltasAreOneStreamAndDoneIsMaskedWhole() {
    String body =
        ""
            + "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n"
            + rdelta(1, "key: SEC")
            + rdelta(2, "RET and SE")
            + "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"sequence_number\":3,\"item_id\":\"msg_1\","
            + "\"output_index\":0,\"content_index\":0,\"text\":\"key: SECRET and SE\",\"logprobs\":[]}\n\n"
            + "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":4,\"response\":{\"id\":\"resp_1\","
            + "\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\","
            + "\"content\":[{\"type\":\"output_text\",\"text\":\"key: SECRET and SE\",\"annotations\":[]}]}]}}\n\n";
    String out = str(run(SSE, utf8(body)));
    assertThat(out).doesNotContain("SECRET");
    assertThat(responsesText(out)).isEqualTo("key: [S] and SE");
    assertEveryEventIsJson(out);
    List<String> data = sseData(out);
    assertThat(data).hasSize(6); // created, 2 deltas, synthetic tail delta, done, completed
    JsonNode synthetic = parse(data.get(3));
    assertThat(synthetic.path("type").asText()).isEqualTo("response.output_text.delta");
    assertThat(synthetic.path("delta").asText()).isEqualTo("SE");
    JsonNode done = parse(data.get(4));
    assertThat(done.path("text").asText()).isEqualTo("key: [S] and SE");
    assertThat(done.path("item_id").asText()).isEqualTo("msg_1");
    assertThat(parse(data.get(5)).at("/response/output/0/content/0/text").asText())
        .isEqualTo("key: [S] and SE");
    assertThat(out)
        .contains(
            "event: response.output_text.delta\ndata: "
                + data.get(3)
                + "\n\nevent: response.output_text.done");
  }

  private static String rdelta(int seq, String text) {
    return "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":"
        + seq
        + ",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":"
        + quote(text)
        + ",\"logprobs\":[]}\n\n";
  }

  @Test
  void crlfFramingIsKeptAndEventsAreNotDelayed() {
    String a = "data: " + chatChunk("one SEC") + "\r\n\r\n";
    String b = "data: " + chatChunk("RET two") + "\r\n\r\n";
    BodyMasker masker = open(SSE);
    List<String> outs = feed(masker, a, b, "data: [DONE]\r\n\r\n");
    assertThat(outs.get(0)).isEqualTo("data: " + chatChunk("one ") + "\r\n\r\n");
    assertThat(outs.get(1)).isEqualTo("data: " + chatChunk("[S] two") + "\r\n\r\n");
    assertThat(outs.get(2)).isEqualTo("data: [DONE]\r\n\r\n");
    // an event ended by "\r" is delivered without waiting for the "\n" after it
    BodyMasker cut = open(SSE);
    String head = a.substring(0, a.length() - 1);
    assertThat(str(cut.push(utf8(head), 0, utf8(head).length)))
        .isEqualTo("data: " + chatChunk("one ") + "\r\n\r");
    assertThat(str(cut.push(utf8("\n"), 0, 1))).isEqualTo("\n");
  }

  @Test
  void bareCrLinesWork() {
    String body =
        "data: " + chatChunk("x SE") + "\r\rdata: " + chatChunk("CRET") + "\r\rdata: [DONE]\r\r";
    String out = str(run(SSE, utf8(body)));
    assertThat(out)
        .isEqualTo(
            "data: " + chatChunk("x ") + "\r\rdata: " + chatChunk("[S]") + "\r\rdata: [DONE]\r\r");
    assertSplitInvariant(SSE, body);
  }

  @Test
  void commentsEventAndIdLinesKeepTheirFramingAndPassTheMasker() {
    String body =
        ": ping SECRET\n\n"
            + "id: 7\nevent: message\nretry: 1000\ndata: "
            + chatChunk("SECRET")
            + "\n\n"
            + "event: heartbeat\n\n"
            + "\n";
    String out = str(run(SSE, utf8(body)));
    assertThat(out)
        .isEqualTo(
            ": ping [S]\n\n"
                + "id: 7\nevent: message\nretry: 1000\ndata: "
                + chatChunk("[S]")
                + "\n\n"
                + "event: heartbeat\n\n"
                + "\n");
  }

  @Test
  void commentEventIdAndUnknownFieldLinesAreMasked() {
    String body =
        ":SECRET\n: a SECRET b\n\n"
            + "id: SECRET-7\nevent: SECRET\nx-note: SECRET\nSECRET\ndata: "
            + chatChunk("hi")
            + "\n\n"
            + "data: [DONE]\n\n";
    BodyMasker masker = open(SSE);
    String out = String.join("", feed(masker, body));
    assertThat(out)
        .isEqualTo(
            ":[S]\n: a [S] b\n\n"
                + "id: [S]-7\nevent: [S]\nx-note: [S]\n[S]\ndata: "
                + chatChunk("hi")
                + "\n\n"
                + "data: [DONE]\n\n");
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 6));
    assertSplitInvariant(SSE, body);
  }

  @Test
  void aSyntheticTailEventCarriesTheMaskedEventLine() {
    String body =
        "event: SECRET\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            + "\"delta\":{\"type\":\"text_delta\",\"text\":\"x SEC\"}}\n\n";
    String out = str(run(SSE, utf8(body)));
    assertThat(out).doesNotContain("SECRET").contains("event: [S]\ndata: ");
  }

  @Test
  void otherJsonEventsAreMaskedValueByValueKeysIncluded() {
    String error =
        "{\"error\":{\"message\":\"bad SECRET\",\"type\":\"SECRET_type\",\"SECRET\":1.50}}";
    String out = str(run(SSE, utf8(sse(error))));
    assertThat(sseData(out))
        .containsExactly(
            "{\"error\":{\"message\":\"bad [S]\",\"type\":\"SECRET_type\",\"[S]\":1.50}}");
  }

  @Test
  void nonJsonDataIsMaskedAsAWholeTextOverItsLines() {
    String out = str(run(SSE, utf8("event: note\ndata: plain SEC\ndata: RET {\n\n")));
    assertThat(out)
        .isEqualTo("event: note\ndata: plain SEC\ndata: RET {\n\n"); // "SEC\nRET" is not the value
    out = str(run(SSE, utf8("data: plain SECRET\ndata: and more\n\n")));
    assertThat(out).isEqualTo("data: plain [S]\ndata: and more\n\n");
  }

  @Test
  void multiLineJsonDataBecomesOneLine() {
    String out = str(run(SSE, utf8("data: {\"a\":\ndata:  \"SECRET\"}\n\n")));
    assertThat(out).isEqualTo("data: {\"a\":\"[S]\"}\n\n");
  }

  @Test
  void sameBytesGiveTheSameOutputHoweverTheyAreSplit() {
    String body =
        ": hi\r\n\r\n"
            + "data: "
            + chatChunk("héllo wörld 😀 SEC")
            + "\r\n\r\n"
            + "id: 2\ndata: "
            + chatChunk("RET ✓ SE")
            + "\n\n"
            + "data: "
            + chatChunk("CR")
            + "\r\r"
            + "data: "
            + chatChunk("ET done SECR")
            + "\n\n"
            + "data: [DONE]\r\n\r\n";
    assertSplitInvariant(SSE, body);
    String out = str(run(SSE, utf8(body)));
    assertThat(openAiText(out)).isEqualTo("héllo wörld 😀 [S] ✓ [S] done SECR");
    assertEveryEventIsJson(out);
    assertSplitInvariant(
        SSE,
        delta("a SE")
            + delta("CRET é")
            + "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n");
  }

  @Test
  void multibyteCharactersSplitAcrossPushesSurvive() {
    byte[] body = utf8(sse(chatChunk("€ 😀 ü")));
    int emoji = indexOf(body, utf8("😀"));
    byte[] out = run(SSE, body, emoji + 1, emoji + 3);
    assertThat(openAiText(str(out))).isEqualTo("€ 😀 ü");
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  @Test
  void anEventOverTheCapFallsBackToTextAfterReleasingTails() {
    SseMasker sse =
        new SseMasker(new BodyMaskerValues(new BodyMaskerFixtures.SecretMasker()), 250, 8);
    byte[] first = utf8(sse(chatChunk("a SEC")));
    String out = sse.push(first, 0, first.length);
    assertThat(out).isEqualTo(sse(chatChunk("a ")));
    byte[] big = utf8("data: " + "x".repeat(300) + " SECRET\n\ndata: SECRET\n\n");
    out = sse.push(big, 0, big.length) + sse.finish();
    assertThat(sseData(out).get(0)).isEqualTo(chatChunk("SEC"));
    assertThat(out).doesNotContain("SECRET").contains("x [S]\n\ndata: [S]\n\n");
  }

  @Test
  void tooManyStreamsFallBackToText() {
    SseMasker sse =
        new SseMasker(new BodyMaskerValues(new BodyMaskerFixtures.SecretMasker()), 1 << 20, 2);
    StringBuilder body = new StringBuilder();
    for (int i = 0; i < 3; i++) {
      body.append(
          sse("{\"choices\":[{\"index\":" + i + ",\"delta\":{\"content\":\"c" + i + " SE\"}}]}"));
    }
    body.append(sse("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"CRET\"}}]}"));
    byte[] b = utf8(body.toString());
    String out = sse.push(b, 0, b.length) + sse.finish();
    assertThat(out).doesNotContain("SECRET");
    List<String> data = sseData(out);
    assertThat(data.get(2))
        .isEqualTo("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SE\"}}]}"); // tail released
    assertThat(out)
        .endsWith(
            "data: {\"choices\":[{\"index\":2,\"delta\":{\"content\":\"c2 SE\"}}]}\n\n"
                + "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"CRET\"}}]}\n\n");
  }

  @Test
  void tooMuchTemplateDataFallsBackToText() {
    SseMasker sse =
        new SseMasker(new BodyMaskerValues(new BodyMaskerFixtures.SecretMasker()), 300, 8);
    String pad = "p".repeat(150);
    String c0 =
        "{\"pad\":\"" + pad + "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"SE\"}}]}";
    String c1 =
        "{\"pad\":\"" + pad + "\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"SECRET\"}}]}";
    String c0again =
        "{\"pad\":\"" + pad + "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"CRET\"}}]}";
    byte[] b = utf8(sse(c0, c0again)); // one stream: its template is replaced, not added
    assertThat(sseData(sse.push(b, 0, b.length)))
        .containsExactly(c0.replace("\"SE\"", "\"\""), c0again.replace("\"CRET\"", "\"[S]\""));
    b = utf8(sse(c1)); // a second template would exceed 300 chars
    String out = sse.push(b, 0, b.length) + sse.finish();
    assertThat(out).isEqualTo(sse(c1.replace("SECRET", "[S]")));
  }

  @Test
  void countsMergeEveryStreamAndValue() {
    BodyMasker masker = open(SSE);
    String body =
        sse(chatChunk("SECRET SE"), "{\"error\":\"SECRET\"}", chatChunk("CRET"), "[DONE]");
    byte[] b = utf8(body);
    masker.push(b, 0, b.length);
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 3));
    masker.finish();
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 3));
  }

  @Test
  void garbageNeverThrowsAndNeverLeaks() {
    List<String> bodies =
        new ArrayList<>(
            List.of(
                "data: {\"choices\":5}\n\n",
                "data: {\"choices\":[null,1,{\"delta\":7}]}\n\n",
                "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":5}}\n\n",
                "data: {\"type\":\"content_block_stop\"}\n\n",
                "data: [1,\"SECRET\"]\n\n",
                "data: \"SECRET\"\n\n",
                "data\n\n",
                ":\n\n",
                "\n\n\n",
                "data: {\"a\":\"SECRET\"\n\n",
                "foo: SECRET\n\n",
                "\r\n\r",
                "data: {\"type\":\"response.output_text.delta\",\"delta\":null}\n\n",
                "data: " + "[".repeat(5000) + "\n\n"));
    for (String body : bodies) {
      String out = str(run(SSE, utf8(body)));
      assertThat(out).as(body).doesNotContain("SECRET");
    }
  }
}
