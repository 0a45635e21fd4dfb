package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.InMemoryQuotaStore;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The quota endpoint on a real Jetty 12 (ee10) on 127.0.0.1: budgets used by exchanges driven
 * through the engine as an adapter would, read back over HTTP on a clock the test moves.
 */
class QuotaServletTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final String ALICE_KEY = "alice-quota-key-1a2b";
  private static final String BOB_KEY = "bob-quota-key-3c4d";
  private static final String SERVICE_HEADER = "X-Test-Service";

  private static final String IDENTITY =
      """
      version: 1
      identity:
        api-keys:
          - name: alice
            sha256: %s
            groups: [ml-engineers]
          - name: bob
            sha256: %s
            groups: [ci]
      entitlements:
        - groups: [ml-engineers, ci]
          models: ["llama-3.1-*", "gpt-4o-mini"]
          operations: [chat, embedding]
      """
          .formatted(TestPolicy.sha256(ALICE_KEY), TestPolicy.sha256(BOB_KEY));

  private static final String POLICY =
      IDENTITY
          + """
      limits:
        - groups: ["*"]
          requests-per-minute: 5
          tokens-per-day: 1000
        - groups: [ml-engineers]
          models: ["gpt-4o*"]
          operations: [embedding, chat]
          requests-per-minute: 2
          tokens-per-minute: 300
      """;

  private final HttpClient http = HttpClient.newHttpClient();
  private final MutableClock clock = new MutableClock(Instant.parse("2026-11-28T12:00:15Z"));
  private final FailingStore store = new FailingStore(new InMemoryQuotaStore(clock));
  private final List<AutoCloseable> toClose = new ArrayList<>();
  private PamEngine engine;
  private int port;

  @BeforeEach
  void start() throws Exception {
    engine = engine(POLICY);
    port = serve(QuotaServlet.forEngine(engine), QuotaServlet.MAPPING);
  }

  @AfterEach
  void stop() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void showsTheCallersBudgetsWithWhatTheirExchangesUsed() throws Exception {
    chatExchange(ALICE_KEY, "llama-3.1-8b", 10, 20);
    chatExchange(ALICE_KEY, "llama-3.1-8b", 10, 20);

    HttpResponse<String> res = get(ALICE_KEY);

    assertThat(res.statusCode()).as(res.body()).isEqualTo(200);
    assertThat(res.headers().firstValue("Content-Type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("application/json"));
    assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
    JsonNode body = JSON.readTree(res.body());
    assertThat(body.fieldNames()).toIterable().containsExactly("principal", "limits");
    assertThat(body.path("principal").asText()).isEqualTo("alice");
    JsonNode limits = body.path("limits");
    assertThat(limits).hasSize(2);

    JsonNode everyone = limits.get(0);
    assertThat(everyone.fieldNames())
        .toIterable()
        .containsExactly("rule", "models", "operations", "requests_per_minute", "tokens_per_day");
    assertThat(everyone.path("rule").asText()).isEqualTo("limits[0]");
    assertThat(everyone.path("models")).isEmpty();
    assertThat(everyone.path("operations")).isEmpty();
    assertBudget(everyone.path("requests_per_minute"), 5, 2, 3, "2026-11-28T12:01:00Z");
    assertBudget(everyone.path("tokens_per_day"), 1000, 60, 940, "2026-11-29T00:00:00Z");

    // Applies to alice by group, though her exchanges (llama) did not fall under it.
    JsonNode gpt = limits.get(1);
    assertThat(gpt.fieldNames())
        .toIterable()
        .containsExactly(
            "rule", "models", "operations", "requests_per_minute", "tokens_per_minute");
    assertThat(gpt.path("rule").asText()).isEqualTo("limits[1]");
    assertThat(texts(gpt.path("models"))).containsExactly("gpt-4o*");
    assertThat(texts(gpt.path("operations"))).containsExactly("chat", "embedding");
    assertBudget(gpt.path("requests_per_minute"), 2, 0, 2, "2026-11-28T12:01:00Z");
    assertBudget(gpt.path("tokens_per_minute"), 300, 0, 300, "2026-11-28T12:01:00Z");
  }

  @Test
  void anExchangeUnderBothEntriesCountsInEach() throws Exception {
    chatExchange(ALICE_KEY, "gpt-4o-mini", 40, 60);

    JsonNode limits = JSON.readTree(get(ALICE_KEY).body()).path("limits");

    assertBudget(limits.get(0).path("requests_per_minute"), 5, 1, 4, "2026-11-28T12:01:00Z");
    assertBudget(limits.get(0).path("tokens_per_day"), 1000, 100, 900, "2026-11-29T00:00:00Z");
    assertBudget(limits.get(1).path("requests_per_minute"), 2, 1, 1, "2026-11-28T12:01:00Z");
    assertBudget(limits.get(1).path("tokens_per_minute"), 300, 100, 200, "2026-11-28T12:01:00Z");
  }

  @Test
  void callersSeeOnlyTheirOwnBudgetsAndEntries() throws Exception {
    chatExchange(ALICE_KEY, "llama-3.1-8b", 100, 100);

    JsonNode bob = JSON.readTree(get(BOB_KEY).body());

    assertThat(bob.path("principal").asText()).isEqualTo("bob");
    // Not in ml-engineers: the second entry is not his; alice's use is not his either.
    assertThat(bob.path("limits")).hasSize(1);
    assertBudget(
        bob.path("limits").get(0).path("requests_per_minute"), 5, 0, 5, "2026-11-28T12:01:00Z");
    assertBudget(
        bob.path("limits").get(0).path("tokens_per_day"), 1000, 0, 1000, "2026-11-29T00:00:00Z");
    // The query string names nobody else's budget.
    HttpResponse<String> probing = send("GET", QuotaServlet.MAPPING + "?principal=alice", BOB_KEY);
    assertThat(JSON.readTree(probing.body()).path("principal").asText()).isEqualTo("bob");
  }

  @Test
  void usedTokensPastTheBoundShowNothingRemaining() throws Exception {
    chatExchange(ALICE_KEY, "llama-3.1-8b", 900, 300);

    JsonNode day =
        JSON.readTree(get(ALICE_KEY).body()).path("limits").get(0).path("tokens_per_day");

    assertBudget(day, 1000, 1200, 0, "2026-11-29T00:00:00Z");
  }

  @Test
  void windowsStartAfreshOnTheEnginesClock() throws Exception {
    chatExchange(ALICE_KEY, "llama-3.1-8b", 10, 20);

    clock.set(Instant.parse("2026-11-28T12:01:00Z"));
    JsonNode nextMinute = JSON.readTree(get(ALICE_KEY).body()).path("limits").get(0);
    assertBudget(nextMinute.path("requests_per_minute"), 5, 0, 5, "2026-11-28T12:02:00Z");
    assertBudget(nextMinute.path("tokens_per_day"), 1000, 30, 970, "2026-11-29T00:00:00Z");

    clock.set(Instant.parse("2026-11-29T00:00:00Z"));
    JsonNode nextDay = JSON.readTree(get(ALICE_KEY).body()).path("limits").get(0);
    assertBudget(nextDay.path("tokens_per_day"), 1000, 0, 1000, "2026-11-30T00:00:00Z");
  }

  @Test
  void readingTheBudgetCountsAgainstNoBudget() throws Exception {
    for (int i = 0; i < 7; i++) assertThat(get(ALICE_KEY).statusCode()).isEqualTo(200);

    JsonNode limits = JSON.readTree(get(ALICE_KEY).body()).path("limits");
    assertBudget(limits.get(0).path("requests_per_minute"), 5, 0, 5, "2026-11-28T12:01:00Z");
    assertBudget(limits.get(0).path("tokens_per_day"), 1000, 0, 1000, "2026-11-29T00:00:00Z");
  }

  @Test
  void policyWithoutLimitsAnswersAnEmptyList() throws Exception {
    int bare = serve(QuotaServlet.forEngine(engine(IDENTITY)), QuotaServlet.MAPPING);

    HttpResponse<String> res = send(bare, "GET", QuotaServlet.MAPPING, ALICE_KEY);

    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
    assertThat(JSON.readTree(res.body()))
        .isEqualTo(JSON.readTree("{\"principal\":\"alice\",\"limits\":[]}"));
  }

  @Test
  void identifiesCallersWithTheEnginesExtraResolversToo() throws Exception {
    HttpResponse<String> res =
        send("GET", QuotaServlet.MAPPING, null, SERVICE_HEADER, "batch-runner");

    assertThat(res.statusCode()).as(res.body()).isEqualTo(200);
    JsonNode body = JSON.readTree(res.body());
    assertThat(body.path("principal").asText()).isEqualTo("batch-runner");
    assertThat(body.path("limits")).hasSize(1);
  }

  @Test
  void noOrUnknownCredentialIs401WithBearerChallenge() throws Exception {
    chatExchange(ALICE_KEY, "llama-3.1-8b", 10, 20);

    for (HttpResponse<String> res :
        List.of(get(null), send("POST", QuotaServlet.MAPPING, null), get("not-a-known-key"))) {
      assertError(res, 401, "unauthenticated");
      assertThat(res.headers().firstValue("WWW-Authenticate"))
          .hasValueSatisfying(v -> assertThat(v).startsWith("Bearer"));
      assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
      assertThat(res.body())
          .doesNotContain("not-a-known-key")
          .doesNotContain("limits[")
          .doesNotContain("alice");
    }
  }

  @Test
  void otherMethodsAre405WithAllowGet() throws Exception {
    for (String method : List.of("POST", "PUT", "DELETE", "PATCH")) {
      HttpResponse<String> res = send(method, QuotaServlet.MAPPING, ALICE_KEY);
      assertError(res, 405, "method_not_allowed");
      assertThat(res.headers().firstValue("Allow")).hasValue("GET");
      assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
    }
    HttpResponse<String> head = send("HEAD", QuotaServlet.MAPPING, ALICE_KEY);
    assertThat(head.statusCode()).isEqualTo(405);
    assertThat(head.headers().firstValue("Allow")).hasValue("GET");
  }

  @Test
  void pathsBelowAWildcardMappingAre404() throws Exception {
    int wild = serve(QuotaServlet.forEngine(engine), QuotaServlet.MAPPING + "/*");

    assertThat(send(wild, "GET", QuotaServlet.MAPPING, ALICE_KEY).statusCode()).isEqualTo(200);
    for (String path : List.of("/pam/quota/", "/pam/quota/bob", "/pam/quota/alice/limits")) {
      assertError(send(wild, "GET", path, ALICE_KEY), 404, "not_found");
    }
    // Anonymous callers learn nothing about which paths exist.
    assertError(send(wild, "GET", "/pam/quota/bob", null), 401, "unauthenticated");
  }

  @Test
  void failingStoreIs503WithoutDetails() throws Exception {
    store.down = true;

    HttpResponse<String> res = get(ALICE_KEY);

    assertError(res, 503, "quota_unavailable");
    assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
    assertThat(res.body())
        .doesNotContain("Exception")
        .doesNotContain("\tat ")
        .doesNotContain(FailingStore.DETAIL);
    store.down = false;
    assertThat(get(ALICE_KEY).statusCode()).isEqualTo(200);
  }

  @Test
  void forEngineRefusesNull() {
    org.assertj.core.api.Assertions.assertThatNullPointerException()
        .isThrownBy(() -> QuotaServlet.forEngine(null));
  }

  // ---------------------------------------------------------------------------------------------

  private PamEngine engine(String policy) {
    PamEngine e =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .credentialProvider(
                () -> new dev.inferpam.api.Credential("Authorization", TestPolicy.UPSTREAM_SECRET))
            .recorder(r -> {})
            .quotaStore(store)
            .identityResolver(
                request ->
                    Optional.ofNullable(request.header(SERVICE_HEADER))
                        .map(name -> Principal.of(name, Set.of("batch"), "test")))
            .clock(clock)
            .build();
    toClose.add(e);
    return e;
  }

  private int serve(QuotaServlet servlet, String mapping) throws Exception {
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    context.addServlet(new ServletHolder(servlet), mapping);
    server.setHandler(context);
    server.start();
    toClose.add(server::stop);
    return connector.getLocalPort();
  }

  /**
   * One chat exchange through the engine, as an adapter drives it: allowed, answered with a JSON
   * body carrying {@code usage}, delivered and ended.
   */
  private void chatExchange(String key, String model, int promptTokens, int completionTokens) {
    byte[] body =
        ("{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
            .getBytes(StandardCharsets.UTF_8);
    RequestHead head =
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of(
                "authorization",
                List.of("Bearer " + key),
                "content-type",
                List.of("application/json")),
            "127.0.0.1");
    Verdict verdict = engine.begin(head, new ByteArrayInputStream(body), body.length);
    assertThat(verdict.decision()).isInstanceOf(Decision.Allow.class);
    Verdict.Allowed exchange = (Verdict.Allowed) verdict;
    try {
      exchange.forward();
      ResponsePlan.Relay relay =
          (ResponsePlan.Relay)
              exchange.respond(200, Map.of("Content-Type", List.of("application/json")));
      byte[] answer =
          ("{\"choices\":[],\"usage\":{\"prompt_tokens\":"
                  + promptTokens
                  + ",\"completion_tokens\":"
                  + completionTokens
                  + "}}")
              .getBytes(StandardCharsets.UTF_8);
      relay.delivered(answer, 0, answer.length);
    } finally {
      exchange.end(true);
    }
  }

  private HttpResponse<String> get(String key) throws Exception {
    return send("GET", QuotaServlet.MAPPING, key);
  }

  private HttpResponse<String> send(String method, String path, String key) throws Exception {
    return send(port, method, path, key);
  }

  private HttpResponse<String> send(int toPort, String method, String path, String key)
      throws Exception {
    return send(toPort, method, path, key, null, null);
  }

  private HttpResponse<String> send(
      String method, String path, String key, String header, String value) throws Exception {
    return send(port, method, path, key, header, value);
  }

  private HttpResponse<String> send(
      int toPort, String method, String path, String key, String header, String value)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + toPort + path))
            .timeout(Duration.ofSeconds(10))
            .method(method, HttpRequest.BodyPublishers.noBody());
    if (key != null) b.header("Authorization", "Bearer " + key);
    if (header != null) b.header(header, value);
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static void assertBudget(
      JsonNode budget, long limit, long used, long remaining, String resets) {
    assertThat(budget.fieldNames())
        .toIterable()
        .containsExactly("limit", "used", "remaining", "resets");
    assertThat(budget.path("limit").asLong()).as("limit of %s", budget).isEqualTo(limit);
    assertThat(budget.path("used").asLong()).as("used of %s", budget).isEqualTo(used);
    assertThat(budget.path("remaining").asLong())
        .as("remaining of %s", budget)
        .isEqualTo(remaining);
    assertThat(budget.path("resets").asText()).isEqualTo(resets);
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static void assertError(HttpResponse<String> res, int status, String code)
      throws Exception {
    assertThat(res.statusCode()).as(res.body()).isEqualTo(status);
    JsonNode error = JSON.readTree(res.body()).get("error");
    assertThat(error.get("type").asText()).isEqualTo("pam_error");
    assertThat(error.get("code").asText()).isEqualTo(code);
    assertThat(error.has("message")).isTrue();
    assertThat(error.has("request_id")).isTrue();
    assertThat(res.headers().firstValue("Content-Type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("application/json"));
  }

  /** The in-memory store, failing with a detailed message while {@link #down}. */
  private static final class FailingStore implements QuotaStore {
    static final String DETAIL = "jdbc:postgresql://quota-db/counters?password=hunter2";

    private final QuotaStore delegate;
    volatile boolean down;

    FailingStore(QuotaStore delegate) {
      this.delegate = delegate;
    }

    private void check() {
      if (down) throw new IllegalStateException("cannot reach " + DETAIL);
    }

    @Override
    public long addIfWithin(String key, long window, long amount, long limit, Instant windowEnd) {
      check();
      return delegate.addIfWithin(key, window, amount, limit, windowEnd);
    }

    @Override
    public long add(String key, long window, long amount, Instant windowEnd) {
      check();
      return delegate.add(key, window, amount, windowEnd);
    }

    @Override
    public long get(String key, long window) {
      check();
      return delegate.get(key, window);
    }
  }
}
