package dev.inferpam.examples;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The policy the gateway tests run against, and helpers to build engines from it. */
public final class TestPolicies {
  public static final String ALICE_KEY = "alice-key-5d1e0c";
  public static final String CI_KEY = "ci-key-8a77f2";
  public static final String UPSTREAM_AUTHORIZATION = "Bearer upstream-secret-93b1";
  /**
   * The environment variable the policy takes the upstream credential from. In-process tests
   * override the provider instead; the child-process test sets it.
   */
  public static final String UPSTREAM_ENV = "INFERPAM_TEST_UPSTREAM_KEY";

  public static final String POLICY = """
      version: 1
      identity:
        api-keys:
          - name: alice
            sha256: %s
            groups: [ml-engineers]
          - name: ci-bot
            sha256: %s
            groups: [ci]
      upstream:
        credential:
          from-env: %s
      entitlements:
        - groups: [ml-engineers]
          models: ["llama-3.1-*", "gpt-4o-mini"]
          operations: [chat, completion, embedding]
        - groups: [ci]
          models: ["llama-3.1-8b"]
          operations: [chat]
      allow:
        - groups: ["*"]
          methods: [GET]
          paths: ["/v1/models"]
      block:
        presets: [ollama-admin]
      parameters:
        deny: [logprobs, logit_bias, top_logprobs]
      """.formatted(sha256(ALICE_KEY), sha256(CI_KEY), UPSTREAM_ENV);

  private TestPolicies() {}

  /** An engine that injects {@link #UPSTREAM_AUTHORIZATION} and records into {@code recorder}. */
  public static PamEngine engine(Recorder recorder) {
    return PamEngine.builder()
        .policy(Policy.parse(POLICY))
        .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
        .recorder(recorder)
        .build();
  }

  /**
   * {@link #POLICY} with a {@code recording} section: JSONL segments in {@code directory} with
   * the given {@code durability} ({@code strict}, {@code batched} or {@code async}).
   */
  public static String policyRecordingTo(Path directory, String durability) {
    // double-quoted YAML scalar: a Windows path's backslashes must be escaped
    String path = directory.toAbsolutePath().toString().replace("\\", "\\\\").replace("\"", "\\\"");
    return POLICY + "recording:\n  directory: \"" + path + "\"\n  durability: " + durability + "\n";
  }

  public static String chat(String model, String extraFields) {
    return "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
        + (extraFields.isEmpty() ? "" : "," + extraFields) + "}";
  }

  public static String sha256(String key) {
    try {
      return HexFormat.of().formatHex(
          MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
