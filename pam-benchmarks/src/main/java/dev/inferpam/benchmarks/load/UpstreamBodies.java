package dev.inferpam.benchmarks.load;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The bodies the benchmarks' model servers answer with, as {@code ../shared/bench/gateway}'s
 * {@code upstream.mjs} does: OpenAI chat completion chunks and a chat completion.
 */
public final class UpstreamBodies {
  private static final String ID = "chatcmpl-bench0000000000000000000000000";
  private static final String WORDS =
      "the quick brown fox jumps over a lazy dog while latency budgets stay small and tails stay"
          + " short";

  private UpstreamBodies() {}

  /** The events of a stream, as OpenAI sends them (and as upstream.mjs does). */
  public static List<byte[]> chunkEvents(int count) {
    String[] words = WORDS.split(" ");
    List<byte[]> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      String delta;
      String finish = "null";
      if (i == 0) {
        delta = "{\"role\":\"assistant\",\"content\":\"\"}";
      } else if (i == count - 1) {
        delta = "{}";
        finish = "\"stop\"";
      } else {
        delta = "{\"content\":\"" + words[i % words.length] + " \"}";
      }
      String data =
          "data: {\"id\":\""
              + ID
              + "\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,"
              + "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_bench00000\","
              + "\"choices\":[{\"index\":0,\"delta\":"
              + delta
              + ",\"logprobs\":null,\"finish_reason\":"
              + finish
              + "}]}\n\n";
      out.add(data.getBytes(StandardCharsets.UTF_8));
    }
    return List.copyOf(out);
  }

  /** A chat completion of about {@code size} bytes. */
  public static byte[] completionBody(int size) {
    String head =
        "{\"id\":\""
            + ID
            + "\",\"object\":\"chat.completion\",\"created\":1735689600,"
            + "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_bench00000\","
            + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"";
    String tail =
        ".\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":230,\"completion_tokens\":400,\"total_tokens\":630}}";
    StringBuilder content = new StringBuilder();
    String[] words = WORDS.split(" ");
    for (int i = 0; content.length() < size - head.length() - tail.length(); i++) {
      content.append(words[i % words.length]).append(' ');
    }
    return (head + content.toString().trim() + tail).getBytes(StandardCharsets.UTF_8);
  }
}
