package dev.inferpam.gateway.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.gateway.Gateway;
import dev.inferpam.gateway.TestPolicies;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The warm-up pass on its own: what it runs, and that it cleans up after itself. */
class WarmupTest {
  private static final Duration BUDGET = Duration.ofMinutes(2);

  @TempDir Path dir;

  /** The gateway tests' policy with masking, batched recording and a tight request limit. */
  private Policy fullPolicy() {
    return Policy.parse(
        TestPolicies.policyRecordingTo(dir.resolve("recordings"), "batched")
            + "masking:\n  strategy: redact\n"
            + "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 2\n");
  }

  @Test
  void runsEveryCallThroughAGatewayAndEachGetsAWholeAnswer() {
    Policy policy = fullPolicy();
    List<Policy> warmPolicies = new ArrayList<>();
    Warmup.Result result =
        Warmup.run(
            policy,
            (engine, upstream) -> {
              warmPolicies.add(engine.policy());
              return Gateway.start(engine, upstream, "127.0.0.1", 0);
            },
            200,
            BUDGET);

    // 200 calls, a quarter of them streamed, through limits of 2 requests a minute: the pass has
    // its own identity and its own counters, with bounds it never reaches.
    assertThat(result.calls()).isEqualTo(200);
    assertThat(result.failures()).isZero();
    assertThat(warmPolicies).hasSize(1);
    Policy warm = warmPolicies.get(0);
    assertThat(warm.masking()).isEqualTo(policy.masking());
    assertThat(warm.approval()).isNull();
    assertThat(warm.recording().durability()).isEqualTo(Policy.Durability.BATCHED);
    assertThat(warm.recording().directory()).doesNotExist();
    assertThat(warm.identity().apiKeys()).hasSize(1);
    assertThat(warm.identity().apiKeys().get(0).groups()).containsExactly(Warmup.GROUP);
  }

  @Test
  void theGivenListenerHearsEveryExchangeOfThePass() {
    java.util.concurrent.atomic.AtomicInteger allowed =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger complete =
        new java.util.concurrent.atomic.AtomicInteger();
    dev.inferpam.core.ExchangeListener listener =
        new dev.inferpam.core.ExchangeListener() {
          @Override
          public void decided(
              dev.inferpam.core.ExchangeInfo exchange, dev.inferpam.api.Decision decision) {
            if (decision instanceof dev.inferpam.api.Decision.Allow) allowed.incrementAndGet();
          }

          @Override
          public void ended(dev.inferpam.core.ExchangeInfo exchange, boolean done) {
            if (done) complete.incrementAndGet();
          }
        };
    Warmup.Result result =
        Warmup.run(
            fullPolicy(),
            (engine, upstream) -> Gateway.start(engine, upstream, "127.0.0.1", 0),
            40,
            BUDGET,
            listener);
    assertThat(result.calls()).isEqualTo(40);
    assertThat(result.failures()).isZero();
    assertThat(allowed.get()).isEqualTo(40);
    assertThat(complete.get()).isEqualTo(40);
  }

  @Test
  void writesNothingIntoTheRealRecordingDirectory() throws IOException {
    Policy policy = fullPolicy();
    // The real engine, built first as `serve` builds it: it holds the real directory meanwhile.
    try (PamEngine real = PamEngine.builder().policy(policy).build()) {
      Warmup.Result result =
          Warmup.run(
              real.policy(),
              (engine, upstream) -> Gateway.start(engine, upstream, "127.0.0.1", 0),
              50,
              BUDGET);
      assertThat(result.calls()).isEqualTo(50);
      assertThat(result.failures()).isZero();
      assertThat(Recordings.open(dir.resolve("recordings")).entries()).isEmpty();
    }
  }

  @Test
  void zeroCallsStartsNothing() {
    AtomicInteger starts = new AtomicInteger();
    Warmup.Result result =
        Warmup.run(
            fullPolicy(),
            (engine, upstream) -> {
              starts.incrementAndGet();
              return Gateway.start(engine, upstream, "127.0.0.1", 0);
            },
            0,
            BUDGET);
    assertThat(result).isEqualTo(Warmup.Result.NONE);
    assertThat(starts).hasValue(0);
  }

  @Test
  void aSpentBudgetStartsNoCall() {
    Warmup.Result result =
        Warmup.run(
            fullPolicy(),
            (engine, upstream) -> Gateway.start(engine, upstream, "127.0.0.1", 0),
            1000,
            Duration.ZERO);
    assertThat(result.calls()).isZero();
    assertThat(result.failures()).isZero();
  }

  @Test
  void aGatewayThatCannotStartSkipsThePassAndLeavesNoDirectoryBehind() throws IOException {
    List<Path> warmDirs = new ArrayList<>();
    Warmup.Result result =
        Warmup.run(
            fullPolicy(),
            (engine, upstream) -> {
              warmDirs.add(engine.policy().recording().directory().getParent());
              throw new IOException("cannot listen");
            },
            100,
            BUDGET);
    assertThat(result).isEqualTo(Warmup.Result.NONE);
    assertThat(warmDirs).hasSize(1);
    assertThat(warmDirs.get(0)).doesNotExist();
  }

  @Test
  void aPolicyWithoutRecordingOrMaskingWarmsUpToo() {
    Warmup.Result result =
        Warmup.run(
            Policy.parse(TestPolicies.POLICY),
            (engine, upstream) -> Gateway.start(engine, upstream, "127.0.0.1", 0),
            40,
            BUDGET);
    assertThat(result.calls()).isEqualTo(40);
    assertThat(result.failures()).isZero();
  }
}
