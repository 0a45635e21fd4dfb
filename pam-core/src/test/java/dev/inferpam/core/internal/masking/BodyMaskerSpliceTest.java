package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.chatChunk;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.chatFinish;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.parse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.sse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.sseData;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.str;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.utf8;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy.MaskStrategy;
import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * SSE events and NDJSON lines are masked by splicing: an event with nothing to mask leaves byte
 * for byte as it came; a masked string is written again, escaped, at its place, and every other
 * byte is kept (spacing, key order, number spellings, the escapes of other strings).
 */
class BodyMaskerSpliceTest {
  private static final BlockMasker REAL =
      new BlockMasker(Detectors.all(), MaskStrategy.REDACT, null);
  private static final String SSE = "text/event-stream";
  private static final String NDJSON = "application/x-ndjson";

  /** Valid JSON as no serializer writes it: spacing, escapes of every kind, numbers as spelled. */
  private static final String EXOTIC =
      "{ \"type\":\"message_start\" ,\"message\" : {\"id\" :\t\"msg_01\",\"role\":\"assistant\","
          + "\"content\" : [ ] ,\"note\":\"caf\\u00e9 \\u00E9 \\/ \\\"q\\\" \\\\ \\n \\ud83d\\ude00"
          + " \u00e9 \ud83d\ude00 \\u0041\",\"usage\":{\"input_tokens\":1.0e10,\"x\":-0,\"y\":1E+2,"
          + "\"z\":0.10,\"big\":123456789012345678901234567890,\"small\":-1.5E-300},\"ok\":true,"
          + "\"none\":null,\"empty\":{ },\"list\":[ 1 ,2.50 ,\"a\" ]}}";

  private static byte[] run(Masker masker, String contentType, byte[] body, boolean byteByByte) {
    BodyMasker m = BodyMasker.open(masker, contentType);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    if (byteByByte) {
      for (int i = 0; i < body.length; i++) out.writeBytes(m.push(body, i, 1));
    } else {
      out.writeBytes(m.push(body, 0, body.length));
    }
    out.writeBytes(m.finish());
    return out.toByteArray();
  }

  private static void assertUnchanged(Masker masker, String contentType, String body) {
    byte[] in = utf8(body);
    assertThat(run(masker, contentType, in, false)).as(body).isEqualTo(in);
    assertThat(run(masker, contentType, in, true)).as(body).isEqualTo(in);
  }

  @Test
  void anEventWithNothingToMaskLeavesByteForByte() {
    assertUnchanged(REAL, SSE, "event: message_start\r\ndata:" + EXOTIC + "\r\n\r\n");
    assertUnchanged(REAL, SSE, ": keep-alive\n\nid: 7\nevent: x\ndata:  " + EXOTIC + " \n\n");
    assertUnchanged(REAL, NDJSON, EXOTIC + "\n" + EXOTIC + "\r\n");
    // an OpenAI role chunk, streamed fields and all, however it is spaced
    String role =
        "{ \"id\":\"chatcmpl-1\" , \"object\":\"chat.completion.chunk\",\"created\":1.0e9,"
            + "\"choices\" : [ { \"index\" : 0 , \"delta\" : { \"role\":\"assistant\" ,"
            + " \"content\" : \"\" } , \"logprobs\" : null , \"finish_reason\" : null } ] }";
    assertUnchanged(REAL, SSE, "data: " + role + "\n\ndata: [DONE]\n\n");
  }

  @Test
  void aWholeStreamThroughTheIdentityMaskerLeavesByteForByte() {
    String body =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\\u00e9 \\\"q\\\"\\n\"}}],"
            + "\"created\" : 1.0e10}\n\n"
            + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
            + "\"delta\":{ \"type\":\"text_delta\", \"text\":\"\\u0041 \\/\" }}\n\n"
            + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            + "data: [DONE]\n\n";
    assertUnchanged(Masker.IDENTITY, SSE, body);
    assertUnchanged(
        Masker.IDENTITY,
        NDJSON,
        "{\"message\":{\"content\":\"a\\u0040b\"} ,\"done\":false}\n{\"response\":\"\",\"done\":true}\n");
  }

  @Test
  void aMaskedStringIsWrittenAgainEscapedAndNothingElseMoves() {
    String data =
        "{ \"error\" : { \"message\" : \"a \\\"q\\\" \\\\ \\/ \\n\\t\\u0001\\u001f caf\\u00e9 \u00e9"
            + " \ud83d\ude00 \\ud800 SECRET\" , \"code\" : 1.0e10 } , \"other\":\"caf\\u00e9\" }";
    String out = str(BodyMaskerFixtures.run(SSE, utf8(sse(data))));
    String expected =
        data.replace(
            "\"a \\\"q\\\" \\\\ \\/ \\n\\t\\u0001\\u001f caf\\u00e9 \u00e9 \ud83d\ude00 \\ud800 SECRET\"",
            "\"a \\\"q\\\" \\\\ / \\n\\t\\u0001\\u001F caf\u00e9 \u00e9 \ud83d\ude00 \\uD800 [S]\"");
    assertThat(expected).isNotEqualTo(data);
    assertThat(out).isEqualTo(sse(expected));
    assertThat(parse(sseData(out).get(0)).path("error").path("message").textValue())
        .isEqualTo("a \"q\" \\ / \n\t\u0001\u001f caf\u00e9 \u00e9 \ud83d\ude00 \ud800 [S]");
    // a key too, in an NDJSON line
    String line = "{\"a\" : {\"SECRET \\\"k\\\"\" : [1.50, \"x\\u00e9\"]}}";
    assertThat(str(BodyMaskerFixtures.run(NDJSON, utf8(line + "\n"))))
        .isEqualTo("{\"a\" : {\"[S] \\\"k\\\"\" : [1.50, \"x\\u00e9\"]}}\n");
  }

  @Test
  void streamedTextNeedingEscapesIsSplicedEscaped() {
    List<String> outs =
        BodyMaskerFixtures.feed(
            BodyMaskerFixtures.open(SSE),
            sse(chatChunk("say \"SEC")),
            sse(chatChunk("RET\"\n\u0002 \\ done")),
            sse(chatFinish()));
    String all = String.join("", outs);
    StringBuilder text = new StringBuilder();
    for (String d : sseData(all)) {
      JsonNode content = parse(d).path("choices").path(0).path("delta").path("content");
      if (content.isTextual()) text.append(content.textValue());
    }
    assertThat(text.toString()).isEqualTo("say \"[S]\"\n\u0002 \\ done");
    assertThat(outs.get(1)).contains("\"content\":\"[S]\\\"\\n\\u0002 \\\\ done\"");
    // everything but the content value is the chunk as it came
    assertThat(outs.get(0)).isEqualTo(sse(chatChunk("say \"")));
  }

  @Test
  void piiWrittenWithEscapesIsStillMasked() {
    String data = "{\"error\" : {\"message\":\"write to alice\\u0040example\\u002ecom\"}}";
    String out = str(run(REAL, SSE, utf8(sse(data)), false));
    assertThat(out)
        .isEqualTo(sse(data.replace("write to alice\\u0040example\\u002ecom", "write to [EMAIL]")));
    // as a key
    out = str(run(REAL, NDJSON, utf8("{ \"alice\\u0040example.com\" : 1 }\n"), false));
    assertThat(out).isEqualTo("{ \"[EMAIL]\" : 1 }\n");
    // split across streamed events, the escape in the first
    String body =
        sse(
            chatChunk("Write to alice").replace("alice", "alice\\u0040exa"),
            chatChunk("mple.com today."),
            chatFinish(),
            "[DONE]");
    assertThat(body).contains("alice\\u0040exa");
    out = str(run(REAL, SSE, utf8(body), false));
    StringBuilder text = new StringBuilder();
    for (String d : sseData(out)) {
      if (d.equals("[DONE]")) continue;
      JsonNode content = parse(d).path("choices").path(0).path("delta").path("content");
      if (content.isTextual()) text.append(content.textValue());
    }
    assertThat(text.toString()).isEqualTo("Write to [EMAIL] today.");
    assertThat(out).doesNotContain("alice", "example");
    // and in an Ollama stream
    String ndjson =
        "{\"response\":\"mail bob\\u0040\",\"done\":false}\n"
            + "{\"response\":\"example.org now\",\"done\":false}\n"
            + "{\"response\":\"\",\"done\":true}\n";
    out = str(run(REAL, NDJSON, utf8(ndjson), false));
    StringBuilder response = new StringBuilder();
    for (String l : out.split("\n")) response.append(parse(l).path("response").textValue());
    assertThat(response.toString()).isEqualTo("mail [EMAIL] now");
  }

  @Test
  void aFinishingChunkTakesTheTailIntoItsEmptyDeltaKeepingTheRest() {
    String finish =
        "{\"id\":\"c\", \"choices\":[ {\"index\":0, \"delta\": { } , \"logprobs\" : null,"
            + " \"finish_reason\":\"stop\"} ], \"usage\" : {\"total_tokens\": 1.0e1} }";
    List<String> outs =
        BodyMaskerFixtures.feed(
            BodyMaskerFixtures.open(SSE), sse(chatChunk("x SEC")), sse(finish), sse("[DONE]"));
    assertThat(outs.get(1)).isEqualTo(sse(finish.replace("{ }", "{\"content\":\"SEC\" }")));
    // a delta with members: after the last
    String withRole = finish.replace("{ }", "{\"role\":\"assistant\"}");
    outs =
        BodyMaskerFixtures.feed(
            BodyMaskerFixtures.open(SSE), sse(chatChunk("x SEC")), sse(withRole));
    assertThat(outs.get(1))
        .isEqualTo(
            sse(
                withRole.replace(
                    "{\"role\":\"assistant\"}", "{\"role\":\"assistant\",\"content\":\"SEC\"}")));
  }

  @Test
  void malformedUtf8InAStringIsReadAsReplacementCharacters() {
    byte[] body =
        concat(
            utf8("data: {\"a\" : \""),
            new byte[] {(byte) 0xFF, ' ', (byte) 0xC0, (byte) 0xAF},
            utf8(" SECRET\", \"n\":1.0e10}\n\n"));
    String out = str(BodyMaskerFixtures.run(SSE, body));
    assertThat(out).isEqualTo("data: {\"a\" : \"\ufffd \ufffd\ufffd [S]\", \"n\":1.0e10}\n\n");
    // nothing to mask, but still not passed as it came
    body = concat(utf8("{\"a\":\""), new byte[] {(byte) 0xC0, (byte) 0xAF}, utf8("\"}\n"));
    assertThat(str(BodyMaskerFixtures.run(NDJSON, body))).isEqualTo("{\"a\":\"\ufffd\ufffd\"}\n");
  }

  @Test
  void whatJacksonRefusesIsMaskedAsText() {
    List<String> notJson =
        List.of(
            "{\"a\":01,\"b\":\"SECRET\"}",
            "{\"a\":[1,],\"b\":\"SECRET\"}",
            "{\"a\":NaN,\"b\":\"SECRET\"}",
            "{'b':'SECRET'}",
            "{\"b\":\"SECRET\\x\"}",
            "{\"b\":\"SECRET\t\"}",
            "{\"b\":\"SECRET\"} x",
            "[".repeat(1001) + "\"SECRET\"" + "]".repeat(1001));
    for (String data : notJson) {
      assertThat(BodyMaskerJson.parse(data)).as(data).isNull();
      String out = str(BodyMaskerFixtures.run(SSE, utf8(sse(data))));
      assertThat(out).as(data).isEqualTo(sse(data.replace("SECRET", "[S]")));
    }
    // just within the nesting limit: JSON, masked value by value
    String deep = "[".repeat(1000) + "\"SECRET\"" + "]".repeat(1000);
    assertThat(str(BodyMaskerFixtures.run(NDJSON, utf8(deep + "\n"))))
        .isEqualTo(deep.replace("SECRET", "[S]") + "\n");
  }

  @Test
  void countsAreThoseOfTheTree() {
    BodyMasker masker = BodyMasker.open(REAL, SSE);
    byte[] b =
        utf8(
            sse(
                "{\"error\":{\"message\":\"mail a@example.com or b\\u0040example.com\","
                    + "\"x@example.com\":\"4111 1111 1111 1111\"}}"));
    masker.push(b, 0, b.length);
    masker.finish();
    assertThat(masker.counts()).isEqualTo(Map.of("email", 3, "credit-card", 1));
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.writeBytes(p);
    return out.toByteArray();
  }
}
