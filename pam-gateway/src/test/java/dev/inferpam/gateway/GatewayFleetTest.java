package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.PostgresServer;
import dev.inferpam.testsupport.RedisServer;
import dev.inferpam.testsupport.RoundRobinProxy;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.ConnectionPool;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fleet of issue #19: three gateway replicas on 127.0.0.1 behind a round-robin proxy, one
 * real Redis (quotas) and one real PostgreSQL (reviews), the replicas connecting as the
 * least-privileged role of {@code gateway-role.sql}. A budget holds across the fleet, a request
 * held on one replica is approved through another and answered at once, and a Redis outage is a
 * clear 503 that ends when Redis returns.
 */
class GatewayFleetTest {
  /**
   * The replicas' clock, standing in the middle of a minute: requests per minute are counted in
   * fixed minute windows, which a run crossing a minute's end would split.
   */
  private static final java.time.Clock MID_MINUTE =
      java.time.Clock.fixed(
          java.time.Instant.parse("2026-12-01T10:00:30Z"), java.time.ZoneOffset.UTC);

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final String ROLE_PASSWORD = "fleet-gw-pw-71";

  private static PostgresServer postgres;

  @TempDir Path dir;
  private RedisServer redis;
  private MockWebServer upstream;
  private RoundRobinProxy proxy;
  private final List<Gateway> fleet = new ArrayList<>();

  /** A connection per request, so that the proxy sends each to the next replica. */
  private final OkHttpClient client =
      new OkHttpClient.Builder()
          .connectionPool(new ConnectionPool(0, 1, TimeUnit.SECONDS))
          .readTimeout(Duration.ofSeconds(20))
          .build();

  @BeforeAll
  static void startPostgres() throws Exception {
    postgres = PostgresServer.start();
    // the schema's owner migrates once; the replicas connect as the role the docs give
    dev.inferpam.postgres.PostgresState.connect(
            postgres.jdbcUrl(),
            PostgresServer.SUPERUSER,
            PostgresServer.SUPERUSER_PASSWORD,
            Duration.ofSeconds(5),
            true)
        .close();
    try (InputStream in =
        GatewayFleetTest.class.getResourceAsStream("/dev/inferpam/postgres/gateway-role.sql")) {
      String sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      postgres.sql("postgres", sql.replace("'change-me'", "'" + ROLE_PASSWORD + "'"));
    }
  }

  @AfterAll
  static void stopPostgres() throws IOException {
    if (postgres != null) postgres.close();
  }

  @AfterEach
  void tearDown() throws Exception {
    client.dispatcher().cancelAll();
    client.dispatcher().executorService().shutdown();
    if (proxy != null) proxy.close();
    for (Gateway g : fleet) g.close(Duration.ofSeconds(5));
    if (upstream != null) upstream.close();
    if (redis != null) redis.close();
    postgres.sql(
        "postgres", "TRUNCATE inferpam.review_waiters, inferpam.reviews, inferpam.replicas");
  }

  private void startFleet(String limits) throws Exception {
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
                        + "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,"
                        + "\"total_tokens\":2}}")
                .build();
          }
        });
    upstream.start(java.net.InetAddress.getLoopbackAddress(), 0);
    Path redisUrl = dir.resolve("redis-url");
    Files.writeString(redisUrl, redis.url());
    Path pgUrl = dir.resolve("pg-url");
    Files.writeString(pgUrl, postgres.jdbcUrl());
    Path pgPassword = dir.resolve("pg-password");
    Files.writeString(pgPassword, ROLE_PASSWORD);
    Path key = dir.resolve("upstream-key");
    Files.writeString(key, "upstream-secret-93b1");
    String policy =
        "version: 1\n"
            + "identity:\n  api-keys:\n"
            + Policies.apiKey("alice", ALICE_KEY, "ml")
            + Policies.apiKey("bob", BOB_KEY, "security-oncall")
            + "upstream:\n  credential: {from-file: "
            + Policies.quoted(key.toString())
            + "}\n"
            + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
            + "approval:\n  reviewers: [security-oncall]\n  timeout: 5m\n  rules:\n"
            + "    - name: bulk-export\n      prompt-matches: '(?i)dump all'\n"
            + limits
            + "state:\n"
            + "  redis:\n    url-from-file: "
            + Policies.quoted(redisUrl.toString())
            + "\n    timeout: 300ms\n"
            + "  postgres:\n    url-from-file: "
            + Policies.quoted(pgUrl.toString())
            + "\n    user: inferpam_gateway\n    password-from-file: "
            + Policies.quoted(pgPassword.toString())
            + "\n    migrate: false\n    poll-interval: 200ms\n";
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      PamEngine engine = PamEngine.builder().policy(Policy.parse(policy)).clock(MID_MINUTE).build();
      Gateway g = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
      fleet.add(g);
      ports.add(g.port());
    }
    proxy = RoundRobinProxy.start(ports);
  }

  private Request chat(int port, String prompt) {
    return new Request.Builder()
        .url("http://127.0.0.1:" + port + "/v1/chat/completions")
        .header("Authorization", "Bearer " + ALICE_KEY)
        .post(RequestBody.create(Policies.chat("llama-3.1-8b", prompt, ""), JSON_TYPE))
        .build();
  }

  private record Answer(int status, String body) {}

  private Answer send(Request r) throws IOException {
    try (Response res = client.newCall(r).execute()) {
      return new Answer(res.code(), res.body().string());
    }
  }

  @Test
  void aBudgetHoldsAcrossTheReplicasBehindTheBalancer() throws Exception {
    startFleet("limits:\n  - groups: [ml]\n    requests-per-minute: 30\n");
    int ok = 0;
    int limited = 0;
    for (int i = 0; i < 90; i++) {
      Answer a = send(chat(proxy.port(), "hello " + i));
      if (a.status() == 200) ok++;
      else if (a.status() == 429) limited++;
      else throw new AssertionError("unexpected " + a);
    }
    assertThat(ok).isEqualTo(30);
    assertThat(limited).isEqualTo(60);
    assertThat(upstream.getRequestCount()).isEqualTo(30);
  }

  @Test
  void aRequestHeldOnOneReplicaIsApprovedThroughAnotherAndAnsweredWithinASecond() throws Exception {
    startFleet("");
    Gateway a = fleet.get(0);
    Gateway b = fleet.get(1);
    Gateway c = fleet.get(2);
    CompletableFuture<Answer> held =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return send(chat(a.port(), "please dump all customer rows"));
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });

    JsonNode listed =
        await()
            .atMost(Duration.ofSeconds(10))
            .until(
                () -> {
                  Answer list =
                      send(
                          new Request.Builder()
                              .url("http://127.0.0.1:" + b.port() + "/pam/approvals")
                              .header("Authorization", "Bearer " + BOB_KEY)
                              .build());
                  assertThat(list.status()).isEqualTo(200);
                  return JSON.readTree(list.body()).path("approvals");
                },
                items -> items.size() == 1);
    String id = listed.get(0).path("id").asText();
    assertThat(listed.get(0).path("principal").asText()).isEqualTo("alice");
    assertThat(held).isNotDone();
    assertThat(upstream.getRequestCount()).isZero();

    long approvedAt = System.nanoTime();
    Answer decision =
        send(
            new Request.Builder()
                .url("http://127.0.0.1:" + c.port() + "/pam/approvals/" + id + "/approve")
                .header("Authorization", "Bearer " + BOB_KEY)
                .post(RequestBody.create("{\"reason\":\"fine\"}", JSON_TYPE))
                .build());
    assertThat(decision.status()).isEqualTo(200);
    Answer answer = held.get(1, TimeUnit.SECONDS);
    assertThat(Duration.ofNanos(System.nanoTime() - approvedAt)).isLessThan(Duration.ofSeconds(1));
    assertThat(answer.status()).isEqualTo(200);
    assertThat(answer.body()).contains("\"content\":\"ok\"");
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  @Test
  void withRedisStoppedTheFleetAnswers503QuotaUnavailableAndRecoversWhenItReturns()
      throws Exception {
    startFleet("limits:\n  - groups: [ml]\n    requests-per-minute: 1000\n");
    assertThat(send(chat(proxy.port(), "before")).status()).isEqualTo(200);
    int port = redis.port;
    redis.close();
    redis = null;
    for (int i = 0; i < 3; i++) {
      long t0 = System.nanoTime();
      Answer a = send(chat(proxy.port(), "during " + i));
      assertThat(a.status()).isEqualTo(503);
      assertThat(JSON.readTree(a.body()).path("error").path("code").asText())
          .isEqualTo("quota_unavailable");
      assertThat(a.body()).doesNotContain("redis://");
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(3));
    }
    redis = RedisServer.start(port);
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              for (int i = 0; i < 3; i++) {
                if (send(chat(proxy.port(), "after " + i)).status() != 200) return false;
              }
              return true;
            });
  }
}
