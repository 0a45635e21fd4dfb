package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.RedisServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three gateway replicas whose policy says {@code state.redis}, with one real Redis: a caller's
 * budget holds across the fleet however its requests are spread over the replicas — requests per
 * minute, and tokens per day charged from the answers' usage.
 */
class GatewayFleetQuotaTest {
  /**
   * The replicas' clock, standing in the middle of a minute: requests per minute are counted in
   * fixed minute windows, which a run crossing a minute's end would split.
   */
  private static final java.time.Clock MID_MINUTE =
      java.time.Clock.fixed(
          java.time.Instant.parse("2026-12-01T10:00:30Z"), java.time.ZoneOffset.UTC);

  private static final MediaType JSON = MediaType.get("application/json");

  @TempDir Path dir;
  private RedisServer redis;
  private MockWebServer upstream;
  private final List<Gateway> fleet = new ArrayList<>();

  /** Exchanges ended (tokens charged) on any replica. */
  private final java.util.concurrent.atomic.AtomicInteger ended =
      new java.util.concurrent.atomic.AtomicInteger();

  private final OkHttpClient client =
      new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10)).build();

  @BeforeEach
  void setUp() throws Exception {
    redis = RedisServer.start();
    upstream = new MockWebServer();
    upstream.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            return new MockResponse.Builder()
                .code(200)
                .addHeader("Content-Type", "application/json")
                .body(
                    "{\"choices\":[{\"message\":{\"content\":\"ok\"}}],"
                        + "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,"
                        + "\"total_tokens\":30}}")
                .build();
          }
        });
    upstream.start(java.net.InetAddress.getLoopbackAddress(), 0);
  }

  @AfterEach
  void tearDown() throws Exception {
    for (Gateway g : fleet) g.close(Duration.ofSeconds(5));
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    upstream.close();
    redis.close();
  }

  private void startFleet(String limits) throws IOException {
    Path url = dir.resolve("redis-url");
    Files.writeString(url, redis.url());
    Path key = dir.resolve("upstream-key");
    Files.writeString(key, "upstream-secret-93b1");
    String policy =
        "version: 1\n"
            + "identity:\n  api-keys:\n"
            + Policies.apiKey("alice", ALICE_KEY, "ml")
            + "upstream:\n  credential: {from-file: "
            + Policies.quoted(key.toString())
            + "}\n"
            + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
            + "limits:\n"
            + limits
            + "state:\n  redis:\n    url-from-file: "
            + Policies.quoted(url.toString())
            + "\n";
    for (int i = 0; i < 3; i++) {
      PamEngine engine =
          PamEngine.builder()
              .policy(Policy.parse(policy))
              .clock(MID_MINUTE)
              .eventListener(
                  new dev.inferpam.core.ExchangeListener() {
                    @Override
                    public void ended(dev.inferpam.core.ExchangeInfo exchange, boolean complete) {
                      ended.incrementAndGet();
                    }
                  })
              .build();
      fleet.add(Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0));
    }
  }

  private int call(Gateway g) throws IOException {
    Request r =
        new Request.Builder()
            .url("http://127.0.0.1:" + g.port() + "/v1/chat/completions")
            .header("Authorization", "Bearer " + ALICE_KEY)
            .post(RequestBody.create(Policies.chat("llama-3.1-8b", ""), JSON))
            .build();
    int before = ended.get();
    try (Response response = client.newCall(r).execute()) {
      response.body().string();
      // Tokens are charged when the exchange ends, just after its answer; the next call, maybe to
      // another replica, comes once they are (a fleet does not order calls across replicas).
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(10))
          .pollDelay(Duration.ZERO)
          .pollInterval(Duration.ofMillis(2))
          .until(() -> ended.get() > before);
      return response.code();
    }
  }

  @Test
  void requestsPerMinuteHoldAcrossTheReplicas() throws Exception {
    startFleet("  - groups: [\"*\"]\n    requests-per-minute: 30\n");
    int ok = 0;
    int refused = 0;
    for (int i = 0; i < 90; i++) {
      int status = call(fleet.get(i % 3));
      if (status == 200) ok++;
      else if (status == 429) refused++;
    }
    assertThat(ok).as("30 of 90, spread over three replicas").isEqualTo(30);
    assertThat(refused).isEqualTo(60);
    assertThat(upstream.getRequestCount()).isEqualTo(30);
  }

  @Test
  void aTokenBudgetHoldsAcrossTheReplicas() throws Exception {
    // 30 tokens an answer: the fourth request is admitted with 10 left, then the budget is spent
    startFleet("  - groups: [\"*\"]\n    tokens-per-day: 100\n");
    List<Integer> statuses = new ArrayList<>();
    for (int i = 0; i < 9; i++) statuses.add(call(fleet.get(i % 3)));
    assertThat(statuses).containsExactly(200, 200, 200, 200, 429, 429, 429, 429, 429);
  }
}
