package dev.inferpam.boot4tests;

import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** What the Boot 4 tests share: the policy file they start with, and the records it writes. */
final class Boot4App {
  static final String ALICE = "alice-key-0001";
  static final String SAM = "sam-reviewer-key-0002";
  static final String UPSTREAM = "upstream-secret-0123456789";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  private Boot4App() {}

  /**
   * A policy in {@code dir}: alice (group ml) may chat and embed with llama-*, sam reviews,
   * logprobs are denied, e-mail addresses and card numbers masked, the upstream credential read
   * from a file, records in {@code dir/rec}.
   */
  static Path policy(Path dir) throws IOException {
    Path key = dir.resolve("upstream-key");
    Files.writeString(key, UPSTREAM);
    Path policy = dir.resolve("policy.yaml");
    Files.writeString(
        policy,
        """
        version: 1
        identity:
          api-keys:
        """
            + Policies.apiKey("alice", ALICE, "ml")
            + Policies.apiKey("sam", SAM, "oncall")
            + """
        upstream:
          credential: {header: Authorization, scheme: Bearer, from-file: %s}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat, embedding]
        parameters:
          deny: [logprobs]
        masking:
          detectors: [email, credit-card]
        approval:
          reviewers: [oncall]
          rules:
            - name: bulk-export
              prompt-matches: "(?i)\\\\bdump all\\\\b"
        recording:
          directory: %s
          durability: batched
        """
                .formatted(
                    Policies.quoted(key.toString()),
                    Policies.quoted(dir.resolve("rec").toString())));
    return policy;
  }

  /** Every record line written so far (the engine flushes them at close, or within batch-interval). */
  static String recordings(Path dir) throws IOException {
    Path rec = dir.resolve("rec");
    if (!Files.isDirectory(rec)) return "";
    try (Stream<Path> files = Files.walk(rec)) {
      List<Path> all = files.filter(Files::isRegularFile).sorted().collect(Collectors.toList());
      StringBuilder out = new StringBuilder();
      for (Path f : all) out.append(Files.readString(f));
      return out.toString();
    }
  }

  /** A whole {@code chat.completion} as the OpenAI SDK reads it, with usage. */
  static String completion(String content) {
    return "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"llama-3.1-8b\","
        + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
        + content
        + "\"},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
  }

  /** One {@code chat.completion.chunk} event carrying {@code content}. */
  static String chunk(String content) {
    return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
        + content
        + "\"},\"finish_reason\":null}]}\n\n";
  }

  /** The last chunk, with the finish reason. */
  static String lastChunk() {
    return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        + "\"model\":\"llama-3.1-8b\",\"choices\":[{\"index\":0,\"delta\":{},"
        + "\"finish_reason\":\"stop\"}]}\n\n";
  }

  static final String DONE = "data: [DONE]\n\n";
}
