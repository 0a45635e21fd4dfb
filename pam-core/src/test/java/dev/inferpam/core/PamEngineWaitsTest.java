package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.testsupport.Policies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whether an engine's decisions and ends may wait ({@link PamEngine#decidesWithoutWaiting()},
 * {@link PamEngine#endsWithoutWaiting()}), which tells an event-loop front where it may run them:
 * the engine's own in-memory parts never wait; strict recording, OIDC, an upstream credential,
 * quota store, recorder, resolver or reviewer given to the builder may, unless the builder is told
 * they never wait.
 */
class PamEngineWaitsTest {
  @TempDir Path dir;

  private String policy(String durability, String extra) throws IOException {
    Path key = dir.resolve("upstream-key");
    Files.writeString(key, "sk-upstream-0123456789");
    return "version: 1\n"
        + "identity:\n  api-keys:\n"
        + Policies.apiKey("alice", "alice-key-0123", "ml")
        + "upstream:\n  credential: {from-file: "
        + Policies.quoted(key.toString())
        + "}\n"
        + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
        + "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 100\n"
        + Policies.recording(dir.resolve("rec"), durability)
        + extra;
  }

  private static PamEngine build(String policy, UnaryOperator<PamEngine.Builder> more) {
    return more.apply(PamEngine.builder().policy(Policy.parse(policy))).build();
  }

  @Test
  void theEnginesOwnInMemoryPartsNeverWait() throws IOException {
    try (PamEngine engine = build(policy("batched", ""), b -> b)) {
      assertThat(engine.decidesWithoutWaiting()).isTrue();
      assertThat(engine.endsWithoutWaiting()).isTrue();
    }
    String approvals =
        "approval:\n  reviewers: [ops]\n  timeout: 5m\n  rules:\n"
            + "    - name: export\n      prompt-matches: 'export all'\n";
    try (PamEngine engine = build(policy("async", approvals), b -> b)) {
      assertThat(engine.decidesWithoutWaiting()).as("in-process reviews, no notifier").isTrue();
    }
  }

  @Test
  void strictRecordingWaitsForTheDiskBothWhenDecidingAndEnding() throws IOException {
    try (PamEngine engine = build(policy("strict", ""), b -> b)) {
      assertThat(engine.decidesWithoutWaiting()).isFalse();
      assertThat(engine.endsWithoutWaiting()).isFalse();
    }
  }

  /** A store of the application's (a database, say): the engine cannot see into it. */
  private static QuotaStore applicationStore() {
    QuotaStore memory = new InMemoryQuotaStore(java.time.Clock.systemUTC());
    return new QuotaStore() {
      @Override
      public long addIfWithin(
          String key, long window, long amount, long limit, java.time.Instant windowEnd) {
        return memory.addIfWithin(key, window, amount, limit, windowEnd);
      }

      @Override
      public long add(String key, long window, long amount, java.time.Instant windowEnd) {
        return memory.add(key, window, amount, windowEnd);
      }

      @Override
      public long get(String key, long window) {
        return memory.get(key, window);
      }
    };
  }

  @Test
  void aQuotaStoreGivenToTheBuilderMayWaitUnlessDeclaredNotTo() throws IOException {
    String policy = policy("batched", "");
    try (PamEngine engine = build(policy, b -> b.quotaStore(applicationStore()))) {
      assertThat(engine.decidesWithoutWaiting()).isFalse();
      assertThat(engine.endsWithoutWaiting()).isFalse();
    }
    try (PamEngine engine =
        build(policy, b -> b.quotaStore(new InMemoryQuotaStore(java.time.Clock.systemUTC())))) {
      assertThat(engine.decidesWithoutWaiting()).as("the in-memory store, given").isTrue();
    }
    try (PamEngine engine =
        build(policy, b -> b.quotaStore(applicationStore()).givenPartsNeverWait())) {
      assertThat(engine.decidesWithoutWaiting()).isTrue();
      assertThat(engine.endsWithoutWaiting()).isTrue();
    }
  }

  @Test
  void givenIdentityCredentialOrReviewNotifierMakeDecisionsWaitButNotEnds() throws IOException {
    String policy = policy("batched", "");
    try (PamEngine engine =
        build(
            policy,
            b ->
                b.identityResolver(
                    r ->
                        Optional.of(
                            new Principal("x", null, Principal.VIA_API_KEY, null, null))))) {
      assertThat(engine.decidesWithoutWaiting()).as("a resolver of the application's").isFalse();
      assertThat(engine.endsWithoutWaiting()).isTrue();
    }
    try (PamEngine engine =
        build(policy, b -> b.credentialProvider(() -> new Credential("Authorization", "k")))) {
      assertThat(engine.decidesWithoutWaiting())
          .as("a credential provider of the application's")
          .isFalse();
      assertThat(engine.endsWithoutWaiting()).isTrue();
    }
    String approvals =
        "approval:\n  reviewers: [ops]\n  timeout: 5m\n  rules:\n"
            + "    - name: export\n      prompt-matches: 'export all'\n";
    try (PamEngine engine =
        build(policy("batched", approvals), b -> b.reviewNotifier(request -> {}))) {
      assertThat(engine.decidesWithoutWaiting())
          .as("a review notifier of the application's")
          .isFalse();
    }
    try (PamEngine engine =
        build(
            policy("batched", approvals),
            b ->
                b.credentialProvider(() -> new Credential("Authorization", "k"))
                    .reviewNotifier(request -> {})
                    .givenPartsNeverWait())) {
      assertThat(engine.decidesWithoutWaiting()).isTrue();
    }
  }
}
