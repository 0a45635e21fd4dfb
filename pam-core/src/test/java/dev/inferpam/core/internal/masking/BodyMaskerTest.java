package dev.inferpam.core.internal.masking;

import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.assertSplitInvariant;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.feed;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.open;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.parse;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.run;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.str;
import static dev.inferpam.core.internal.masking.BodyMaskerFixtures.utf8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Masker;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Content types, whole JSON bodies, NDJSON, plain text. */
class BodyMaskerTest {
  private static final String JSON = "application/json";
  private static final String NDJSON = "application/x-ndjson";

  @Test
  void contentTypesChooseTheFraming() {
    for (String binary :
        List.of(
            "image/png",
            "audio/wav",
            "video/mp4",
            "application/octet-stream",
            "application/x-protobuf",
            "application/grpc",
            "application/pdf")) {
      assertThat(open(binary)).as(binary).isNull();
    }
    assertThat(BodyMasker.mediaType(" Text/Event-Stream ; charset=UTF-8"))
        .isEqualTo("text/event-stream");
    // JSON types buffer, text types stream
    for (String json :
        List.of(
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/vnd.api+json")) {
      BodyMasker m = open(json);
      assertThat(m.push(utf8("{\"a\":\"SECRET\"}"), 0, 14)).as(json).isEmpty();
      assertThat(str(m.finish())).isEqualTo("{\"a\":\"[S]\"}");
    }
    for (String text :
        new String[] {null, "", "text/plain", "text/html; charset=utf-8", "TEXT/MARKDOWN"}) {
      BodyMasker m = open(text);
      assertThat(str(m.push(utf8("a SECRET b"), 0, 10))).as(text).isEqualTo("a [S] b");
      assertThat(m.finish()).isEmpty();
    }
    for (String ndjson :
        List.of("application/x-ndjson", "application/ndjson", "application/jsonl")) {
      assertThat(feed(open(ndjson), "{\"x\":\"SECRET\"}\n"))
          .as(ndjson)
          .containsExactly("{\"x\":\"[S]\"}\n", "");
    }
    assertThat(feed(open("text/event-stream"), "data: {\"x\":\"SECRET\"}\n\n"))
        .containsExactly("data: {\"x\":\"[S]\"}\n\n", "");
  }

  @Test
  void chatCompletionValuesAndKeysAreMaskedStructuralValuesAndStructureKept() {
    String body =
        "{\n  \"id\": \"chatcmpl-SECRET\",\n  \"object\": \"chat.completion\",\n  \"created\": 1700000000,\n"
            + "  \"model\": \"SECRET-model\",\n  \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\","
            + " \"content\": \"the SECRET is 42\", \"refusal\": null}, \"logprobs\": null, \"finish_reason\": \"stop\"}],\n"
            + "  \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 12, \"total_tokens\": 21},\n"
            + "  \"SECRET\": [\"SECRET\", true, 1.0e-3, {\"SECRET\": \"x SECRET\"}]\n}";
    BodyMasker masker = open(JSON);
    String out = String.join("", feed(masker, body));
    assertThat(out)
        .isEqualTo(
            "{\"id\":\"chatcmpl-SECRET\",\"object\":\"chat.completion\",\"created\":1700000000,"
                + "\"model\":\"SECRET-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                + "\"content\":\"the [S] is 42\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                + "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21},"
                + "\"[S]\":[\"[S]\",true,1.0e-3,{\"[S]\":\"x [S]\"}]}");
    assertThat(parse(out)).isNotNull();
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 5));
  }

  @Test
  void aDocumentWithNothingToMaskPassesAsItCame() {
    String body =
        "{\n  \"id\": \"chatcmpl-1\",\n  \"choices\": [{\"message\": {\"content\": \"caf\u00e9 \\u00e9 \\\"ok\\\"\"},"
            + " \"logprobs\": null}],\n  \"n\": 1.50e+2, \"flag\" : true\n}\n";
    BodyMasker masker = open(JSON);
    assertThat(String.join("", feed(masker, body))).isEqualTo(body);
    assertThat(masker.counts()).isEmpty();
    // one value to mask: the document is written again, compact, with only that value changed
    BodyMasker masking = open(JSON);
    assertThat(String.join("", feed(masking, body.replace("ok", "SECRET"))))
        .isEqualTo(
            "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"caf\u00e9 \u00e9 \\\"[S]\\\"\"},"
                + "\"logprobs\":null}],\"n\":1.50e+2,\"flag\":true}");
    assertThat(masking.counts()).isEqualTo(Map.of("secret", 1));
  }

  @Test
  void aDocumentWithNothingToMaskButOverlongUtf8IsWrittenAgainAsItWasScanned() {
    // C1 81 is an overlong 'A': Jackson reads "xAy" (and the detectors scanned that), a strict
    // decoder refuses it, a lenient one reads U+FFFD. The client gets what was scanned.
    byte[] body = {'{', '"', 'a', '"', ':', ' ', '"', 'x', (byte) 0xC1, (byte) 0x81, 'y', '"', '}'};
    BodyMasker masker = open(JSON);
    assertThat(masker.push(body, 0, body.length)).isEmpty();
    assertThat(str(masker.finish())).isEqualTo("{\"a\":\"xAy\"}");
    assertThat(masker.counts()).isEmpty();
    // strict UTF-8 beyond ASCII still passes as it came
    byte[] valid = utf8("{\"a\": \"caf\u00e9\"}");
    BodyMasker plain = open(JSON);
    plain.push(valid, 0, valid.length);
    assertThat(plain.finish()).isEqualTo(valid);
  }

  @Test
  void anthropicMessageIsMasked() {
    String body =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\","
            + "\"content\":[{\"type\":\"text\",\"text\":\"hi SECRET\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
            + "\"name\":\"lookup\",\"input\":{\"q\":\"SECRET\"}},{\"type\":\"thinking\",\"thinking\":\"SECRET\","
            + "\"signature\":\"SECRETsig==\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":3}}";
    String out = str(run(JSON, utf8(body)));
    assertThat(out)
        .isEqualTo(
            body.replace("hi SECRET", "hi [S]")
                .replace("\"q\":\"SECRET\"", "\"q\":\"[S]\"")
                .replace("\"thinking\":\"SECRET\"", "\"thinking\":\"[S]\""));
  }

  @Test
  void embeddingsPassBitExact() {
    String floats =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
            + "[0.0023064255,-0.009327292,1.0E-7,3,-0.00000000000000000012345678901234567890123,1e400]}],"
            + "\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";
    assertThat(str(run(JSON, utf8(floats)))).isEqualTo(floats);
    String base64 =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
            + "\"embedding\":\"SECRETAAAAAAgD8AAIA/+/SECRET==\"}],\"model\":\"m\"}";
    assertThat(str(run(JSON, utf8(base64)))).isEqualTo(base64);
    String ollama = "{\"model\":\"all-minilm\",\"embeddings\":[[0.010071029,-0.0017594862],[1.5]]}";
    assertThat(str(run(JSON, utf8(ollama)))).isEqualTo(ollama);
  }

  @Test
  void onlyAStringRightUnderAnAllowListedKeyIsKept() {
    // fail closed: an object or array under a structural key is masked like any other value
    String body =
        "{\"id\":{\"note\":\"SECRET\"},\"type\":[\"SECRET\"],\"model\":\"SECRET-m\","
            + "\"embeddings\":[[1.5,\"SECRET\"]],\"metadata\":{\"user\":\"SECRET\"},\"stop_sequence\":\"SECRET\"}";
    BodyMasker masker = open(JSON);
    assertThat(String.join("", feed(masker, body)))
        .isEqualTo(
            "{\"id\":{\"note\":\"[S]\"},\"type\":[\"[S]\"],"
                + "\"model\":\"SECRET-m\",\"embeddings\":[[1.5,\"[S]\"]],\"metadata\":{\"user\":\"[S]\"},"
                + "\"stop_sequence\":\"[S]\"}");
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 5));
    // the same in an SSE event and an NDJSON line
    String sse = String.join("", feed(open("text/event-stream"), "data: " + body + "\n\n"));
    assertThat(sse).doesNotContain("\"SECRET\"").contains("\"model\":\"SECRET-m\"");
    String ndjson = String.join("", feed(open("application/x-ndjson"), body + "\n"));
    assertThat(ndjson).doesNotContain("\"SECRET\"").contains("\"model\":\"SECRET-m\"");
  }

  @Test
  void keysAreMaskedToo() {
    String body = "{\"choices\":[{\"logprobs\":{\"top_logprobs\":[{\"SECRET\":-0.5,\"x\":-1}]}}]}";
    assertThat(String.join("", feed(open(JSON), body)))
        .isEqualTo("{\"choices\":[{\"logprobs\":{\"top_logprobs\":[{\"[S]\":-0.5,\"x\":-1}]}}]}");
    String line =
        String.join(
            "",
            feed(
                open("application/x-ndjson"),
                "{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":{\"SECRET\":true}}}]}}\n"));
    assertThat(line)
        .isEqualTo(
            "{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":{\"[S]\":true}}}]}}\n");
  }

  @Test
  void malformedJsonFallsBackToTextMasking() {
    for (String bad :
        List.of(
            "{\"a\": \"SECRET\"",
            "{\"a\":1} SECRET",
            "SECRET",
            "{\"a\":\"SECRET\"}{\"b\":2}",
            "[1,2,]  SECRET",
            "{'a': 'SECRET'}")) {
      BodyMasker m = open(JSON);
      assertThat(String.join("", feed(m, bad))).as(bad).isEqualTo(bad.replace("SECRET", "[S]"));
      assertThat(m.counts().get("secret")).as(bad).isEqualTo(bad.split("SECRET", -1).length - 1);
    }
    assertThat(feed(open(JSON))).containsExactly(""); // empty body
  }

  @Test
  void jsonBodyOverTheCapStreamsAsText() {
    BodyMaskerJson.Body body =
        new BodyMaskerJson.Body(new BodyMaskerValues(new BodyMaskerFixtures.SecretMasker()), 16);
    byte[] a = utf8("{\"a\":\"SEC");
    byte[] b = utf8("RET and more\"}");
    assertThat(body.push(a, 0, a.length)).isEmpty();
    assertThat(body.push(b, 0, b.length)).isEqualTo("{\"a\":\"[S] and more\"}");
    assertThat(body.finish()).isEmpty();
  }

  @Test
  void ollamaChatStreamCarriesTheTailInTheDoneLine() {
    String body =
        ""
            + "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"a SE\"},\"done\":false}\n"
            + "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:01Z\",\"message\":{\"role\":\"assistant\",\"content\":\"CRET b SEC\"},\"done\":false}\n"
            + "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:02Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
            + "\"done_reason\":\"stop\",\"done\":true,\"total_duration\":123,\"eval_count\":2}\n";
    String[] lines = body.split("(?<=\n)");
    BodyMasker masker = open(NDJSON);
    List<String> outs = feed(masker, lines);
    assertThat(outs.get(0)).isEqualTo(lines[0].replace("a SE", "a "));
    assertThat(outs.get(1)).isEqualTo(lines[1].replace("CRET b SEC", "[S] b "));
    assertThat(outs.get(2)).isEqualTo(lines[2].replace("\"content\":\"\"", "\"content\":\"SEC\""));
    assertThat(outs.get(3)).isEmpty();
    assertThat(masker.counts()).isEqualTo(Map.of("secret", 1));
    assertSplitInvariant(NDJSON, body);
  }

  @Test
  void ollamaGenerateStreamAndLinesCutAnywhere() {
    String body =
        "{\"model\":\"m\",\"response\":\"x SEC\",\"done\":false}\r\n"
            + "{\"model\":\"m\",\"response\":\"RET é 😀 SE\",\"done\":false}\r\n"
            + "{\"error\":\"SECRET failed\"}\n"
            + "not json SECRET\n"
            + "\n"
            + "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"context\":[1,2,3]}\n";
    String out = str(run(NDJSON, utf8(body)));
    assertThat(out)
        .isEqualTo(
            "{\"model\":\"m\",\"response\":\"x \",\"done\":false}\r\n"
                + "{\"model\":\"m\",\"response\":\"[S] é 😀 \",\"done\":false}\r\n"
                + "{\"error\":\"[S] failed\"}\n"
                + "not json [S]\n"
                + "\n"
                + "{\"model\":\"m\",\"response\":\"SE\",\"done\":true,\"context\":[1,2,3]}\n");
    assertSplitInvariant(NDJSON, body);
  }

  @Test
  void ndjsonWithoutDoneLineReleasesTheTailInAClonedLine() {
    List<String> outs =
        feed(
            open(NDJSON),
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"cut SECR\"},\"done\":false}");
    assertThat(outs.get(0)).isEmpty();
    assertThat(outs.get(1))
        .isEqualTo(
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"cut \"},\"done\":false}\n"
                + "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"SECR\"},\"done\":false}\n");
  }

  @Test
  void ndjsonLineOverTheCapFallsBackToText() {
    NdjsonMasker ndjson =
        new NdjsonMasker(new BodyMaskerValues(new BodyMaskerFixtures.SecretMasker()), 40);
    byte[] b =
        utf8(
            "{\"response\":\"a SEC\",\"done\":false}\n{\"response\":\""
                + "x".repeat(50)
                + " SECRET\"}\nSECRET\n");
    String out = ndjson.push(b, 0, b.length) + ndjson.finish();
    assertThat(out)
        .isEqualTo(
            "{\"response\":\"a \",\"done\":false}\n{\"response\":\"SEC\",\"done\":false}\n"
                + "{\"response\":\""
                + "x".repeat(50)
                + " [S]\"}\n[S]\n");
  }

  @Test
  void plainTextStreamsThroughOneSessionAndSurvivesSplitCharacters() {
    BodyMasker masker = open("text/plain; charset=utf-8");
    byte[] body = utf8("é SECRET 😀 SEC");
    List<String> outs = new java.util.ArrayList<>();
    for (int i = 0; i < body.length; i++) outs.add(str(masker.push(body, i, 1)));
    outs.add(str(masker.finish()));
    assertThat(String.join("", outs)).isEqualTo("é [S] 😀 SEC");
    assertThat(outs).doesNotContain("\uFFFD");
    assertSplitInvariant("text/plain", "é SECRET 😀 SECRET ü");
  }

  @Test
  void jsonBodySplitAnywhereGivesTheSameOutput() {
    assertSplitInvariant(JSON, "{\"content\":\"é SECRET 😀\",\"embedding\":[1.50,2]}");
  }

  @Test
  void invalidUtf8IsReplacedNotPassed() {
    byte[] body = {'a', (byte) 0xC3, '(', ' ', 'S', 'E', 'C', 'R', 'E', 'T'};
    assertThat(str(run("text/plain", body))).isEqualTo("a\uFFFD( [S]");
    byte[] json = {
      '{', '"', 'a', '"', ':', '"', (byte) 0xFF, 'S', 'E', 'C', 'R', 'E', 'T', '"', '}'
    };
    assertThat(str(run(JSON, json))).isEqualTo("{\"a\":\"\uFFFD[S]\"}");
  }

  @Test
  void pushAfterFinishIsRefusedAndFinishIsIdempotent() {
    BodyMasker masker = open("text/plain");
    masker.finish();
    assertThat(masker.finish()).isEmpty();
    assertThatThrownBy(() -> masker.push(new byte[1], 0, 1))
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void identityMaskerChangesNothingNotEvenFormatting() {
    BodyMasker masker = BodyMasker.open(Masker.IDENTITY, "text/event-stream");
    byte[] b = utf8("data: {\"a\": \"b\"}\n\n");
    assertThat(masker.push(b, 0, b.length)).isEqualTo(b);
    masker = BodyMasker.open(Masker.IDENTITY, "application/x-ndjson");
    b = utf8("{ \"a\" : [1.0e10, \"b\\u0040\"] }\r\n");
    assertThat(masker.push(b, 0, b.length)).isEqualTo(b);
  }
}
