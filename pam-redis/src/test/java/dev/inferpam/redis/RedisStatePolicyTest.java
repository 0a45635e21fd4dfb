package dev.inferpam.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.core.ExchangeInfo;
import dev.inferpam.core.ExchangeListener;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.RedisServer;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The policy's {@code state.redis}: engines built from it count their limits in Redis, so that
 * several replicas share one budget; a Redis that is down refuses requests 503
 * {@code quota_unavailable}, or admits them uncounted with {@code when-unavailable: allow}; an
 * engine that cannot reach it at start does not start, and never shows the URL's password.
 */
class RedisStatePolicyTest {
  private static final String KEY = "alice-key-0123";

  @TempDir Path dir;
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void close() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
  }

  private String policy(String url, String extra) throws Exception {
    Path file = dir.resolve("redis-url");
    Files.writeString(file, url + "\n");
    return "version: 1\n"
        + "identity:\n  api-keys:\n"
        + Policies.apiKey("alice", KEY, "ml")
        + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
        + "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 30\n"
        + "state:\n  redis:\n    url-from-file: "
        + Policies.quoted(file.toString())
        + "\n    timeout: 300ms\n"
        + extra;
  }

  private PamEngine engine(String policy, ExchangeListener listener) {
    PamEngine e = PamEngine.builder().policy(Policy.parse(policy)).eventListener(listener).build();
    toClose.add(e);
    return e;
  }

  /** One chat call through the engine as an adapter makes it; the status the caller gets. */
  private static int call(PamEngine engine) {
    byte[] body = Policies.chat("llama-3.1-8b", "").getBytes(StandardCharsets.UTF_8);
    RequestHead head =
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of(
                "Authorization", List.of("Bearer " + KEY),
                "Content-Type", List.of("application/json")),
            "127.0.0.1");
    Verdict v = engine.begin(head, new ByteArrayInputStream(body), body.length);
    if (v instanceof Verdict.Allowed a) {
      a.respond(200, Map.of("Content-Type", List.of("application/json")));
      a.end(true);
      return 200;
    }
    Verdict.Denied d = (Verdict.Denied) v;
    d.end(true);
    return d.error().status();
  }

  @Test
  void threeEnginesOnOneRedisShareOneBudget() throws Exception {
    try (RedisServer redis = RedisServer.start()) {
      String policy = policy(redis.url(), "");
      List<PamEngine> fleet =
          List.of(
              engine(policy, ExchangeListener.NONE),
              engine(policy, ExchangeListener.NONE),
              engine(policy, ExchangeListener.NONE));
      int allowed = 0;
      int refused = 0;
      for (int i = 0; i < 90; i++) {
        int status = call(fleet.get(i % 3));
        if (status == 200) allowed++;
        if (status == 429) refused++;
      }
      assertThat(allowed).as("requests-per-minute: 30 over the whole fleet").isEqualTo(30);
      assertThat(refused).isEqualTo(60);
      assertThat(fleet.get(0).decidesWithoutWaiting()).as("Redis is not in memory").isFalse();
      assertThat(fleet.get(0).endsWithoutWaiting()).isFalse();
    }
  }

  @Test
  void aRedisThatGoesDownRefusesRequestsUnlessToldToAllowThem() throws Exception {
    RedisServer redis = RedisServer.start();
    AtomicInteger uncounted = new AtomicInteger();
    ExchangeListener listener =
        new ExchangeListener() {
          @Override
          public void failed(ExchangeInfo exchange, Failure failure) {
            if (failure == Failure.QUOTAS) uncounted.incrementAndGet();
          }
        };
    PamEngine refusing;
    PamEngine allowing;
    try {
      refusing = engine(policy(redis.url(), ""), ExchangeListener.NONE);
      allowing = engine(policy(redis.url(), "    when-unavailable: allow\n"), listener);
      assertThat(call(refusing)).isEqualTo(200);
      assertThat(call(allowing)).isEqualTo(200);
    } finally {
      redis.close();
    }
    assertThat(call(refusing)).as("503 quota_unavailable").isEqualTo(503);
    assertThat(call(allowing)).isEqualTo(200);
    assertThat(uncounted).hasValue(1);
  }

  @Test
  void anEngineStartsWhileRedisIsDownAndRefusesUntilItAnswers() throws Exception {
    int port;
    try (RedisServer gone = RedisServer.start()) {
      port = gone.port;
    }
    PamEngine engine = engine(policy("redis://127.0.0.1:" + port, ""), ExchangeListener.NONE);
    assertThat(call(engine)).as("503 quota_unavailable while Redis is down").isEqualTo(503);
    RedisServer back = RedisServer.start(port);
    try {
      await()
          .atMost(java.time.Duration.ofSeconds(5))
          .pollInterval(java.time.Duration.ofMillis(200))
          .until(() -> call(engine) == 200);
    } finally {
      back.close();
    }
  }

  @Test
  void aStateBackendThatIsMissingOrAMalformedUrlStopsTheStartWithoutShowingIt() throws Exception {
    String policy = policy("not a url :pw-s3cret@", "");
    assertThatThrownBy(() -> PamEngine.builder().policy(Policy.parse(policy)).build())
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("state.redis: ")
        .hasMessageNotContaining("pw-s3cret");
  }

  @Test
  void thePolicySaysWhatIsWrongWithItsStateSection() {
    assertThatThrownBy(() -> Policy.parse("version: 1\nstate:\n  redis: {}\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("state.redis: exactly one of url-from-env / url-from-file");
    assertThatThrownBy(
            () ->
                Policy.parse(
                    "version: 1\nstate:\n  redis: {url-from-env: R, when-unavailable: maybe}\n"))
        .hasMessage("state.redis.when-unavailable: expected refuse or allow, was \"maybe\"");
    assertThatThrownBy(() -> Policy.parse("version: 1\nstate:\n  postgres: {}\n"))
        .hasMessageStartingWith("state.postgres: ");
    assertThat(Policy.parse("version: 1\nstate:\n  redis: {url-from-env: R}\n").state().redis())
        .isEqualTo(new Policy.Redis("R", null, Policy.Redis.DEFAULT_TIMEOUT, false));
  }
}
