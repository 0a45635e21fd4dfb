package dev.inferpam.gateway;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import java.nio.file.Path;

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

  public static final String POLICY =
      """
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
      """
          .formatted(sha256(ALICE_KEY), sha256(CI_KEY), UPSTREAM_ENV);

  private TestPolicies() {}

  /**
   * An engine that injects {@link #UPSTREAM_AUTHORIZATION} and records into {@code recorder},
   * which must answer at once (the tests' recorders add to a queue): the engine is told its given
   * parts never wait, so the Netty front decides and ends these exchanges on its event loop.
   */
  public static PamEngine engine(Recorder recorder) {
    return PamEngine.builder()
        .policy(Policy.parse(POLICY))
        .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
        .recorder(recorder)
        .givenPartsNeverWait()
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

  /**
   * {@link #POLICY} with a {@code limits} section of {@code entries}: YAML list items indented two
   * spaces, e.g. {@code "  - groups: [\"*\"]\n    requests-per-minute: 3\n"}.
   */
  public static String limitsPolicy(String entries) {
    return POLICY + "limits:\n" + entries;
  }

  /** Keys of {@link #approvalPolicy}'s reviewer (bob), plain caller (carol) and reviewer-caller (dave). */
  public static final String BOB_KEY = "bob-key-3c0a91";

  public static final String CAROL_KEY = "carol-key-7e24b5";
  public static final String DAVE_KEY = "dave-key-19f6d0";

  /**
   * A policy with just-in-time approval: alice ({@link #ALICE_KEY}) and carol are group
   * {@code ml}, entitled to chat on {@code llama-3.1-*}; bob is {@code security-oncall}, the
   * reviewer group; dave is both. One approval rule, {@code bulk-export}, holds prompts that say
   * "dump all" or "export all".
   *
   * @param timeout        {@code approval.timeout}, e.g. {@code 5m}
   * @param grant          {@code approval.grant}, e.g. {@code 0s}
   * @param approvalExtra  more keys of the {@code approval} section, one per line, indented two
   *                       spaces (e.g. {@code "  max-pending-per-principal: 1\n"}), or {@code ""}
   * @param extraSections  more top-level sections (e.g. {@code masking}), or {@code ""}
   */
  public static String approvalPolicy(
      String timeout, String grant, String approvalExtra, String extraSections) {
    return """
        version: 1
        identity:
          api-keys:
            - name: alice
              sha256: %s
              groups: [ml]
            - name: bob
              sha256: %s
              groups: [security-oncall]
            - name: carol
              sha256: %s
              groups: [ml]
            - name: dave
              sha256: %s
              groups: [ml, security-oncall]
        upstream:
          credential:
            from-env: %s
        entitlements:
          - groups: [ml]
            models: ["llama-3.1-*"]
            operations: [chat]
        approval:
          reviewers: [security-oncall]
          timeout: %s
          grant: %s
        %s  rules:
            - name: bulk-export
              prompt-matches: '(?i)\\b(dump|export) all\\b'
        """
            .formatted(
                sha256(ALICE_KEY),
                sha256(BOB_KEY),
                sha256(CAROL_KEY),
                sha256(DAVE_KEY),
                UPSTREAM_ENV,
                timeout,
                grant,
                approvalExtra)
        + extraSections;
  }

  public static String chat(String model, String extraFields) {
    return Policies.chat(model, extraFields);
  }

  public static String sha256(String key) {
    return Policies.sha256(key);
  }
}
