package dev.inferpam.core.internal.masking;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Masker;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** A streaming fake masker and helpers shared by the BodyMasker tests. */
final class BodyMaskerFixtures {
  static final ObjectMapper JSON = new ObjectMapper();

  private BodyMaskerFixtures() {}

  /**
   * Replaces the literal {@code SECRET} with {@code [S]} (detector "secret"), holding back up to
   * five trailing chars that could start it.
   */
  static final class SecretMasker implements Masker {
    static final String SECRET = "SECRET";

    @Override
    public Session open() {
      return new Session() {
        private String held = "";
        private int found;

        @Override
        public String push(String text) {
          String s = held + text;
          StringBuilder out = new StringBuilder();
          int i = 0;
          for (int k; (k = s.indexOf(SECRET, i)) >= 0; i = k + SECRET.length()) {
            out.append(s, i, k).append("[S]");
            found++;
          }
          String rest = s.substring(i);
          int hold = 0;
          for (int h = Math.min(SECRET.length() - 1, rest.length()); h > 0 && hold == 0; h--) {
            if (SECRET.startsWith(rest.substring(rest.length() - h))) hold = h;
          }
          held = rest.substring(rest.length() - hold);
          return out.append(rest, 0, rest.length() - hold).toString();
        }

        @Override
        public String finish() {
          String tail = held;
          held = "";
          return tail;
        }

        @Override
        public Map<String, Integer> counts() {
          return found == 0 ? Map.of() : Map.of("secret", found);
        }
      };
    }
  }

  static BodyMasker open(String contentType) {
    return BodyMasker.open(new SecretMasker(), contentType);
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String str(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  /** What each push returned, then what finish returned (last element). */
  static List<String> feed(BodyMasker masker, String... pieces) {
    List<String> outs = new ArrayList<>();
    for (String piece : pieces) {
      byte[] b = utf8(piece);
      outs.add(str(masker.push(b, 0, b.length)));
    }
    outs.add(str(masker.finish()));
    return outs;
  }

  /** The whole output for {@code body} cut into the given byte chunks. */
  static byte[] run(String contentType, byte[] body, int... cuts) {
    BodyMasker masker = open(contentType);
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

  static byte[] oneByteAtATime(String contentType, byte[] body) {
    BodyMasker masker = open(contentType);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < body.length; i++) out.writeBytes(masker.push(body, i, 1));
    out.writeBytes(masker.finish());
    return out.toByteArray();
  }

  /** The same output whatever the cuts: one push, one byte a time, every two-piece split. */
  static void assertSplitInvariant(String contentType, String body) {
    byte[] bytes = utf8(body);
    byte[] whole = run(contentType, bytes);
    assertThat(oneByteAtATime(contentType, bytes)).isEqualTo(whole);
    for (int cut = 0; cut <= bytes.length; cut++) {
      byte[] split = run(contentType, bytes, cut);
      if (!java.util.Arrays.equals(split, whole)) {
        assertThat(str(split)).as("split at byte %d", cut).isEqualTo(str(whole));
      }
    }
  }

  static JsonNode parse(String json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The data of each event in an SSE text (lines joined by \n); any line ending accepted. */
  static List<String> sseData(String sse) {
    List<String> events = new ArrayList<>();
    StringBuilder data = null;
    for (String line : sse.split("\r\n|\r|\n", -1)) {
      if (line.isEmpty()) {
        if (data != null) events.add(data.toString());
        data = null;
      } else if (line.startsWith("data:")) {
        String value = line.substring(5);
        if (value.startsWith(" ")) value = value.substring(1);
        if (data == null) data = new StringBuilder();
        else data.append('\n');
        data.append(value);
      }
    }
    if (data != null) events.add(data.toString());
    return events;
  }

  /** Every event's data parses as JSON, except [DONE]. */
  static void assertEveryEventIsJson(String sse) {
    for (String data : sseData(sse)) {
      if (data.equals("[DONE]")) continue;
      assertThat(parse(data)).as(data).isNotNull();
    }
  }

  /** SSE text of events, each {@code data: <json>} and a blank line. */
  static String sse(String... datas) {
    StringBuilder out = new StringBuilder();
    for (String d : datas) out.append("data: ").append(d).append("\n\n");
    return out.toString();
  }

  static String chatChunk(String content) {
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\","
        + "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        + quote(content)
        + "},\"logprobs\":null,\"finish_reason\":null}]}";
  }

  static String chatFinish() {
    return "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\","
        + "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}";
  }

  static String quote(String s) {
    try {
      return JSON.writeValueAsString(s);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
