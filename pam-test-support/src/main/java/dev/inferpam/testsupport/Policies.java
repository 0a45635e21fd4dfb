package dev.inferpam.testsupport;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * Pieces of policy YAML ({@code docs/policy.md}) that tests put together, and the request bodies
 * they send, so that a key's digest, a quoted path or a chat body is written one way everywhere.
 *
 * <pre>{@code
 * String policy = """
 *     version: 1
 *     identity:
 *       api-keys:
 *     """ + Policies.apiKey("alice", ALICE_KEY, "ml-engineers") + """
 *     entitlements: ...
 *     """ + Policies.recording(dir, "strict");
 * }</pre>
 *
 * <p>Stateless; every method is safe for concurrent use.
 */
public final class Policies {
  private Policies() {}

  /** The lower-case hex SHA-256 of {@code secret}'s UTF-8 bytes: what {@code api-keys[].sha256} holds. */
  public static String sha256(String secret) {
    Objects.requireNonNull(secret, "secret");
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /**
   * One {@code identity.api-keys} list item, indented for the list under {@code api-keys:} (four
   * spaces) and ending in a newline: {@code - {name: alice, sha256: <hex>, groups: [ml]}}.
   */
  public static String apiKey(String name, String key, String... groups) {
    return "    - {name: "
        + name
        + ", sha256: "
        + sha256(key)
        + ", groups: "
        + flow(List.of(groups))
        + "}\n";
  }

  /**
   * The client adapters' tests' policy: the service key {@code key} (caller alice, group ml) may
   * chat with {@code llama-*} models, {@code logprobs} is denied, e-mail addresses and card
   * numbers are masked, and recording is batched (the tests give the engine a recorder of their
   * own, so its directory is never opened).
   */
  public static String clientAdapterPolicy(String key) {
    return """
        version: 1
        identity:
          api-keys:
        """
        + apiKey("alice", key, "ml")
        + """
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        parameters:
          deny: [logprobs]
        masking:
          detectors: [email, credit-card]
        recording:
          directory: ./never-opened-a-recorder-is-given
          durability: batched
        """;
  }

  /** {@code values} as a YAML flow sequence of double-quoted strings: {@code ["a", "b"]}. */
  public static String flow(List<String> values) {
    return values.stream().map(Policies::quoted).collect(Collectors.joining(", ", "[", "]"));
  }

  /** {@code text} as a double-quoted YAML scalar: backslashes and quotes escaped (Windows paths). */
  public static String quoted(String text) {
    StringBuilder out = new StringBuilder(text.length() + 2).append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '\\' -> out.append("\\\\");
        case '"' -> out.append("\\\"");
        case '\n' -> out.append("\\n");
        case '\t' -> out.append("\\t");
        default -> out.append(c);
      }
    }
    return out.append('"').toString();
  }

  /**
   * A top-level {@code recording} section writing JSONL segments into {@code directory} with
   * {@code durability} ({@code strict}, {@code batched} or {@code async}); ends in a newline.
   */
  public static String recording(Path directory, String durability) {
    return "recording:\n  directory: "
        + quoted(directory.toAbsolutePath().toString())
        + "\n  durability: "
        + durability
        + "\n";
  }

  /**
   * An OpenAI-style chat body for {@code model} with one user message "hi", and
   * {@code extraFields} (e.g. {@code "\"stream\":true"}, or empty) appended as more fields.
   */
  public static String chat(String model, String extraFields) {
    return chat(model, "hi", extraFields);
  }

  /** As {@link #chat(String, String)}, with {@code prompt} as the user message (JSON-escaped). */
  public static String chat(String model, String prompt, String extraFields) {
    return "{\"model\":"
        + Json.string(model)
        + ",\"messages\":[{\"role\":\"user\",\"content\":"
        + Json.string(prompt)
        + "}]"
        + (extraFields.isEmpty() ? "" : "," + extraFields)
        + "}";
  }
}
