package dev.inferpam.servlet;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;

/** The policy and engine every filter test runs against. */
final class TestPolicy {
  static final String CI_KEY = "ci-key-7f3a9b";
  static final String RESEARCH_KEY = "research-key-41c2";
  static final String EXPIRED_KEY = "expired-key-0d9e";
  static final String UPSTREAM_SECRET = "Bearer upstream-secret";
  static final String MODEL = "llama-3.1-8b";

  /** After the expired key's expiry, before the others'. */
  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-03-01T12:00:00Z"), ZoneOffset.UTC);

  static final String POLICY =
      """
      version: 1
      request:
        max-body: 1KiB
      identity:
        api-keys:
          - name: nightly-ci
            sha256: %s
            groups: [ci]
            expires: 2027-01-01T00:00:00Z
          - name: researcher
            sha256: %s
            groups: [ci, ml-research]
          - name: retired
            sha256: %s
            groups: [ci]
            expires: 2026-01-01T00:00:00Z
      entitlements:
        - groups: [ci]
          models: ["llama-3.1-*"]
          operations: [chat, completion, embedding]
      allow:
        - groups: ["*"]
          methods: [GET]
          paths: ["/v1/models"]
      block:
        presets: [ollama-admin]
      parameters:
        deny: [logprobs, logit_bias, top_logprobs]
        max:
          max_tokens: 256
        exempt-groups: [ml-research]
      """
          .formatted(sha256(CI_KEY), sha256(RESEARCH_KEY), sha256(EXPIRED_KEY));

  private TestPolicy() {}

  static PamEngine engine(Recorder recorder) {
    return PamEngine.builder()
        .policy(Policy.parse(POLICY))
        .credentialProvider(() -> new Credential("Authorization", UPSTREAM_SECRET))
        .recorder(recorder)
        .clock(CLOCK)
        .build();
  }

  static String chat(String extraFields) {
    return Policies.chat(MODEL, extraFields);
  }

  static String sha256(String key) {
    return Policies.sha256(key);
  }
}
