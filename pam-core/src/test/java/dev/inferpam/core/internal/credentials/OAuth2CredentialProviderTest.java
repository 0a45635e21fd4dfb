package dev.inferpam.core.internal.credentials;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.MutableClock;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class OAuth2CredentialProviderTest {
  static final Instant T0 = Instant.parse("2026-11-28T12:00:00Z");

  /** Characters that Basic authentication must form-encode (RFC 6749 §2.3.1). */
  static final String SECRET = "s3cr:t/+&=x";

  static final String CLIENT_ID = "inference gateway";
  static final Map<String, String> ENV = Map.of("CLIENT_SECRET", SECRET);
  static final OAuth2CredentialProvider.Tuning FAST =
      new OAuth2CredentialProvider.Tuning(
          Duration.ofSeconds(2), Duration.ofMillis(500), Duration.ofSeconds(1));

  @StartStop final MockWebServer server = new MockWebServer();
  final TokenEndpoint endpoint = new TokenEndpoint();
  final MutableClock clock = new MutableClock(T0);
  final ExecutorService pool = Executors.newFixedThreadPool(100);

  @TempDir Path dir;

  @BeforeEach
  void setUp() {
    server.setDispatcher(endpoint);
  }

  @AfterEach
  void tearDown() {
    endpoint.release();
    pool.shutdownNow();
  }

  // --- the request ---------------------------------------------------------------------------

  @Test
  void sendsAClientCredentialsGrantWithFormEncodedBasicAuthentication() throws Exception {
    endpoint.respond(token("tok-1", 3600));
    OAuth2CredentialProvider provider =
        provider(config("models.invoke", "https://api.example.com", null));

    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer tok-1"));

    RecordedRequest seen = server.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getMethod()).isEqualTo("POST");
    assertThat(seen.getUrl().encodedPath()).isEqualTo("/oauth/token");
    assertThat(seen.getHeaders().get("Content-Type"))
        .isEqualTo("application/x-www-form-urlencoded");
    assertThat(seen.getHeaders().get("Accept")).isEqualTo("application/json");
    assertThat(seen.getBody().utf8())
        .isEqualTo(
            "grant_type=client_credentials&scope=models.invoke&audience=https%3A%2F%2Fapi.example.com");
    String basic =
        Base64.getEncoder()
            .encodeToString(
                "inference+gateway:s3cr%3At%2F%2B%26%3Dx".getBytes(StandardCharsets.US_ASCII));
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo("Basic " + basic);
  }

  @Test
  void sendsOnlyTheGrantTypeWhenNoScopeOrAudienceIsSet() throws Exception {
    endpoint.respond(token("tok-1", 3600));
    provider(config(null, null, null)).current();
    assertThat(server.takeRequest(5, TimeUnit.SECONDS).getBody().utf8())
        .isEqualTo("grant_type=client_credentials");
  }

  @Test
  void readsTheClientSecretFromAFileAndPicksUpARotation() throws Exception {
    Path file = Files.writeString(dir.resolve("client-secret"), "first-secret\n");
    Policy.OAuth2 config =
        new Policy.OAuth2(tokenUri(), "gw", null, file, null, null, Duration.ofSeconds(60));
    OAuth2CredentialProvider provider = provider(config);
    endpoint.respond(token("tok-1", 120));
    provider.current();
    assertThat(basicSecret(server.takeRequest(5, TimeUnit.SECONDS))).isEqualTo("gw:first-secret");

    Files.writeString(file, "second-secret-longer\n");
    clock.set(T0.plusSeconds(121)); // the first token has expired
    endpoint.respond(token("tok-2", 120));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-2");
    assertThat(basicSecret(server.takeRequest(5, TimeUnit.SECONDS)))
        .isEqualTo("gw:second-secret-longer");
  }

  @Test
  void usesTheConfiguredHeaderAndScheme() throws Exception {
    endpoint.respond(token("tok-1", 3600));
    OAuth2CredentialProvider provider =
        new OAuth2CredentialProvider(
            "api-key", "", config(null, null, null), ENV::get, clock, FAST);
    assertThat(provider.current()).isEqualTo(new Credential("api-key", "tok-1"));
  }

  // --- caching and single flight -------------------------------------------------------------

  @Test
  void oneTokenFetchServesOneHundredConcurrentCalls() throws Exception {
    OAuth2CredentialProvider provider = provider(config(null, null, null));
    endpoint.hold(); // hold the token response until every caller is waiting for it
    endpoint.respond(token("tok-1", 3600));

    List<Future<Credential>> results = callConcurrently(100, provider::current);
    assertThat(server.takeRequest(5, TimeUnit.SECONDS)).isNotNull();
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> endpoint.waiting.get() == 1 && workersBlocked() == 100);
    endpoint.release();

    for (Future<Credential> r : results) {
      assertThat(r.get(10, TimeUnit.SECONDS).value()).isEqualTo("Bearer tok-1");
    }
    assertThat(server.getRequestCount()).isEqualTo(1);
    assertThat(provider.current().value()).isEqualTo("Bearer tok-1");
    assertThat(server.getRequestCount()).isEqualTo(1);
  }

  @Test
  void refreshesOnceBeforeExpiryWhileTheValidTokenKeepsBeingServed() throws Exception {
    OAuth2CredentialProvider provider = provider(config(null, null, Duration.ofSeconds(60)));
    endpoint.respond(token("tok-1", 3600));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-1");

    clock.set(T0.plusSeconds(3600 - 60 - 1)); // not yet due
    assertThat(provider.current().value()).isEqualTo("Bearer tok-1");
    assertThat(server.getRequestCount()).isEqualTo(1);

    // Due: one refresh starts, and while it hangs every caller still gets the valid token at once.
    clock.set(T0.plusSeconds(3600 - 60 + 1));
    endpoint.hold();
    endpoint.respond(token("tok-2", 3600));
    List<Future<Credential>> results = callConcurrently(100, provider::current);
    for (Future<Credential> r : results) {
      assertThat(r.get(10, TimeUnit.SECONDS).value()).isEqualTo("Bearer tok-1");
    }
    server.takeRequest(5, TimeUnit.SECONDS);
    assertThat(server.takeRequest(5, TimeUnit.SECONDS)).isNotNull();
    endpoint.release();

    // Past the old token's expiry the new one is served (waiting for the refresh if need be).
    clock.set(T0.plusSeconds(3600 + 1));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-2");
    assertThat(server.getRequestCount()).isEqualTo(2);
  }

  @Test
  void aTokenShorterLivedThanTwiceRefreshBeforeIsRefreshedHalfwayThrough() throws Exception {
    OAuth2CredentialProvider provider = provider(config(null, null, Duration.ofSeconds(60)));
    endpoint.respond(token("tok-1", 60));
    provider.current();

    clock.set(T0.plusSeconds(29));
    provider.current();
    assertThat(server.getRequestCount()).isEqualTo(1);

    endpoint.respond(token("tok-2", 60));
    clock.set(T0.plusSeconds(31));
    provider.current(); // starts the refresh
    clock.set(T0.plusSeconds(60)); // tok-1 has expired; tok-2 is not yet due
    assertThat(provider.current().value()).isEqualTo("Bearer tok-2");
    assertThat(server.getRequestCount()).isEqualTo(2);
  }

  @Test
  void withoutExpiresInATokenIsAssumedToLiveFiveMinutes() throws Exception {
    OAuth2CredentialProvider provider = provider(config(null, null, Duration.ofSeconds(60)));
    endpoint.respond(json(200, "{\"access_token\":\"tok-1\",\"token_type\":\"bearer\"}"));
    provider.current();
    clock.set(T0.plusSeconds(5 * 60 - 61));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-1");
    assertThat(server.getRequestCount()).isEqualTo(1);

    endpoint.respond(token("tok-2", 3600));
    clock.set(T0.plusSeconds(5 * 60 + 1));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-2");
  }

  // --- failures ------------------------------------------------------------------------------

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      quoteCharacter = '`',
      value = {
        "500 | `{\"error\":\"server_error\"}` | HTTP 500 (server_error)",
        "401 | `{\"error\":\"invalid_client\",\"error_description\":\"bad secret s3cr:t/+&=x\"}` | HTTP 401 (invalid_client)",
        "400 | `{\"error\":\"s3cr:t/+&=x\"}` | HTTP 400",
        "302 | `` | HTTP 302",
        "200 | `<html>tok-leak</html>` | malformed token response (not JSON)",
        "200 | `[\"tok-leak\"]` | malformed token response (not a JSON object)",
        "200 | `{\"token_type\":\"Bearer\",\"expires_in\":60}` | malformed token response (no access_token)",
        "200 | `{\"access_token\":\"tok-leak\\n\",\"expires_in\":60}` | malformed token response (access_token holds",
        "200 | `{\"access_token\":\"tok-leak\",\"token_type\":\"mac\",\"expires_in\":60}` | token_type \"mac\" is not Bearer",
        "200 | `{\"access_token\":\"tok-leak\",\"token_type\":\"N_A tok-leak\"}` | token_type of the response is not Bearer",
        "200 | `{\"access_token\":\"tok-leak\",\"expires_in\":-5}` | malformed token response (expires_in",
        "200 | `{\"access_token\":\"tok-leak\",\"expires_in\":\"soon\"}` | malformed token response (expires_in",
      })
  void aBadTokenResponseIsUnavailableWithoutSecretOrToken(
      int status, String body, String expected) {
    endpoint.respond(json(status, body));
    OAuth2CredentialProvider provider = provider(config(null, null, null));

    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessageStartingWith("OAuth2 token endpoint " + hostPort() + ": " + expected)
        .hasMessageNotContaining(SECRET)
        .hasMessageNotContaining("s3cr")
        .hasMessageNotContaining("tok-leak");
  }

  @Test
  void aTokenBodyOverTheSizeLimitIsRefused() {
    String padding = "x".repeat(OAuth2CredentialProvider.MAX_RESPONSE_BYTES);
    endpoint.respond(json(200, "{\"access_token\":\"tok-leak\",\"pad\":\"" + padding + "\"}"));
    assertThatThrownBy(provider(config(null, null, null))::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage(
            "OAuth2 token endpoint " + hostPort() + ": token response larger than 65536 bytes");
  }

  @Test
  void aStalledTokenEndpointTimesOutWithinTheBound() {
    endpoint.respond(
        new MockResponse.Builder().onResponseStart(SocketEffect.Stall.INSTANCE).build());
    OAuth2CredentialProvider provider = provider(config(null, null, null));

    CredentialUnavailableException e =
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> catchUnavailable(provider));
    assertThat(e).hasMessage("OAuth2 token endpoint " + hostPort() + ": no response within 500ms");
  }

  @Test
  void anUnreachableTokenEndpointIsUnavailable() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort(); // closed again: nothing listens there
    }
    Policy.OAuth2 config =
        new Policy.OAuth2(
            URI.create("http://127.0.0.1:" + port + "/token"),
            "gw",
            "CLIENT_SECRET",
            null,
            null,
            null,
            null);
    assertThatThrownBy(provider(config)::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage("OAuth2 token endpoint 127.0.0.1:" + port + ": connection failed");
  }

  @Test
  void anUnsetClientSecretIsUnavailableAndNeverCallsTheEndpoint() {
    OAuth2CredentialProvider provider =
        new OAuth2CredentialProvider(
            "Authorization", "Bearer", config(null, null, null), name -> null, clock, FAST);
    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage(
            "OAuth2 client secret unavailable: environment variable CLIENT_SECRET is not set");
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void aFailureIsRememberedForTheBackOffOnly() throws Exception {
    OAuth2CredentialProvider provider = provider(config(null, null, null));
    endpoint.respond(json(503, ""));
    String message = "OAuth2 token endpoint " + hostPort() + ": HTTP 503";
    assertThatThrownBy(provider::current).hasMessage(message);

    clock.set(T0.plusMillis(999));
    for (int i = 0; i < 50; i++) assertThatThrownBy(provider::current).hasMessage(message);
    assertThat(server.getRequestCount()).isEqualTo(1);

    clock.set(T0.plusSeconds(1));
    endpoint.respond(token("tok-1", 3600));
    assertThat(provider.current().value()).isEqualTo("Bearer tok-1");
    assertThat(server.getRequestCount()).isEqualTo(2);
  }

  @Test
  void aFailedRefreshKeepsServingTheValidTokenUntilItExpires() throws Exception {
    // A back-off longer than the rest of the token's life makes the outcome after expiry certain.
    OAuth2CredentialProvider provider =
        new OAuth2CredentialProvider(
            "Authorization",
            "Bearer",
            config(null, null, Duration.ofSeconds(60)),
            ENV::get,
            clock,
            new OAuth2CredentialProvider.Tuning(
                Duration.ofSeconds(2), Duration.ofMillis(500), Duration.ofMinutes(5)));
    endpoint.respond(token("tok-1", 3600));
    provider.current();

    clock.set(T0.plusSeconds(3600 - 30));
    endpoint.respond(json(500, ""));
    for (int i = 0; i < 20; i++) assertThat(provider.current().value()).isEqualTo("Bearer tok-1");

    clock.set(T0.plusSeconds(3600 + 1));
    assertThatThrownBy(provider::current)
        .hasMessage("OAuth2 token endpoint " + hostPort() + ": HTTP 500");
    assertThat(server.getRequestCount()).isEqualTo(2);
  }

  // --- threads and closing -------------------------------------------------------------------

  @Test
  void runsTokenRequestsOnTheGivenExecutorAndNeverShutsItDown() throws Exception {
    endpoint.respond(token("tok-1", 3600));
    AtomicInteger tasks = new AtomicInteger();
    OAuth2CredentialProvider provider =
        new OAuth2CredentialProvider(
            "Authorization",
            "Bearer",
            config(null, null, null),
            ENV::get,
            clock,
            task -> {
              tasks.incrementAndGet();
              pool.execute(task);
            },
            FAST);

    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer tok-1"));
    assertThat(tasks.get()).isPositive();
    provider.close();
    assertThat(pool.isShutdown()).isFalse();
  }

  @Test
  void closeAbandonsTheRequestInFlightAndRefusesLaterCalls() throws Exception {
    endpoint.respond(token("tok-1", 120));
    OAuth2CredentialProvider provider =
        new OAuth2CredentialProvider(
            "Authorization",
            "Bearer",
            config(null, null, Duration.ofSeconds(60)),
            ENV::get,
            clock,
            new OAuth2CredentialProvider.Tuning(
                Duration.ofSeconds(2), Duration.ofSeconds(30), Duration.ofSeconds(1)));
    provider.current();
    clock.set(T0.plusSeconds(121)); // expired: the next caller waits for a new token
    endpoint.hold();
    Future<Credential> waiting = pool.submit(provider::current);
    await().atMost(Duration.ofSeconds(5)).until(() -> endpoint.waiting.get() == 1);

    provider.close();

    String closed = "OAuth2 credential provider for " + hostPort() + " is closed";
    assertThatThrownBy(() -> waiting.get(5, TimeUnit.SECONDS)) // not the 30s request timeout
        .hasCauseInstanceOf(CredentialUnavailableException.class)
        .cause()
        .hasMessage(closed);
    assertThatThrownBy(provider::current)
        .isInstanceOf(CredentialUnavailableException.class)
        .hasMessage(closed);
    provider.close(); // idempotent
    // The abandoned request is still held at the endpoint: give it an answer to end with, so the
    // server does not wait out its poll at shutdown.
    endpoint.respond(token("tok-2", 120));
  }

  // --- configuration -------------------------------------------------------------------------

  @Test
  void refusesAnInsecureOrMalformedTokenEndpoint() {
    assertThat(
            OAuth2CredentialProvider.tokenEndpointProblem(
                URI.create("https://idp.example.com/token")))
        .isNull();
    assertThat(
            OAuth2CredentialProvider.tokenEndpointProblem(
                URI.create("http://localhost:8080/token")))
        .isNull();
    assertThat(OAuth2CredentialProvider.tokenEndpointProblem(URI.create("http://127.0.0.1/token")))
        .isNull();
    assertThat(OAuth2CredentialProvider.tokenEndpointProblem(URI.create("http://[::1]:9/token")))
        .isNull();
    assertThat(
            OAuth2CredentialProvider.tokenEndpointProblem(
                URI.create("http://idp.example.com/token")))
        .isEqualTo(
            "must be https; http is allowed only for loopback hosts (127.0.0.1, localhost, [::1]), "
                + "was \"http://idp.example.com/token\"");
    assertThat(OAuth2CredentialProvider.tokenEndpointProblem(URI.create("/token")))
        .isEqualTo("expected an absolute https URL, was \"/token\"");
    assertThat(OAuth2CredentialProvider.tokenEndpointProblem(URI.create("ftp://idp/token")))
        .isEqualTo("expected an absolute https URL, was \"ftp://idp/token\"");
    assertThat(
            OAuth2CredentialProvider.tokenEndpointProblem(
                URI.create("https://gw:hunter2@idp/token")))
        .doesNotContain("hunter2")
        .contains("user info");

    assertThatThrownBy(
            () ->
                new OAuth2CredentialProvider(
                    "Authorization",
                    "Bearer",
                    new Policy.OAuth2(
                        URI.create("http://idp.example.com/t"), "gw", "S", null, null, null, null),
                    ENV::get,
                    clock))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("upstream.credential.oauth2.token-endpoint: must be https");
    assertThatThrownBy(
            () ->
                new OAuth2CredentialProvider(
                    "Authorization",
                    "Bearer",
                    new Policy.OAuth2(tokenUri(), "gw", "S", dir.resolve("s"), null, null, null),
                    ENV::get,
                    clock))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "upstream.credential.oauth2: exactly one of client-secret-from-env / client-secret-from-file must be set");
    assertThatThrownBy(
            () ->
                new OAuth2CredentialProvider(
                    "Authorization",
                    "Bearer",
                    new Policy.OAuth2(tokenUri(), " ", "S", null, null, null, null),
                    ENV::get,
                    clock))
        .hasMessage("upstream.credential.oauth2.client-id must not be blank");
    assertThatThrownBy(
            () ->
                new OAuth2CredentialProvider(
                    "Authorization",
                    "Bearer",
                    new Policy.OAuth2(
                        tokenUri(), "gw", "S", null, null, null, Duration.ofSeconds(-1)),
                    ENV::get,
                    clock))
        .hasMessage("upstream.credential.oauth2.refresh-before must be >= 0, was PT-1S");
  }

  @Test
  void toStringShowsNeitherSecretNorToken() throws Exception {
    endpoint.respond(token("tok-secret-value", 3600));
    OAuth2CredentialProvider provider = provider(config(null, null, null));
    provider.current();
    assertThat(provider.toString())
        .isEqualTo(
            "OAuth2CredentialProvider[Authorization from token endpoint "
                + hostPort()
                + ", client inference gateway]")
        .doesNotContain(SECRET)
        .doesNotContain("tok-secret-value");
    assertThat(provider.current().toString()).doesNotContain("tok-secret-value");
  }

  @Test
  void credentialProvidersBuildsItFromThePolicy() throws Exception {
    endpoint.respond(token("tok-1", 3600));
    var provider =
        CredentialProviders.from(
            new Policy.CredentialSource(null, null, null, null, config(null, null, null)),
            ENV::get,
            clock);
    assertThat(provider).isInstanceOf(OAuth2CredentialProvider.class);
    assertThat(provider.current()).isEqualTo(new Credential("Authorization", "Bearer tok-1"));
  }

  // --- helpers -------------------------------------------------------------------------------

  OAuth2CredentialProvider provider(Policy.OAuth2 config) {
    return new OAuth2CredentialProvider("Authorization", "Bearer", config, ENV::get, clock, FAST);
  }

  URI tokenUri() {
    return server.url("/oauth/token").uri();
  }

  String hostPort() {
    return tokenUri().getHost() + ":" + tokenUri().getPort();
  }

  Policy.OAuth2 config(String scope, String audience, Duration refreshBefore) {
    return new Policy.OAuth2(
        tokenUri(), CLIENT_ID, "CLIENT_SECRET", null, scope, audience, refreshBefore);
  }

  static MockResponse token(String accessToken, long expiresIn) {
    return json(
        200,
        "{\"access_token\":\""
            + accessToken
            + "\",\"token_type\":\"Bearer\",\"expires_in\":"
            + expiresIn
            + "}");
  }

  static MockResponse json(int status, String body) {
    return new MockResponse.Builder()
        .code(status)
        .setHeader("Content-Type", "application/json")
        .body(body)
        .build();
  }

  static String basicSecret(RecordedRequest request) {
    String header = request.getHeaders().get("Authorization");
    assertThat(header).startsWith("Basic ");
    return new String(Base64.getDecoder().decode(header.substring(6)), StandardCharsets.UTF_8);
  }

  static CredentialUnavailableException catchUnavailable(OAuth2CredentialProvider provider) {
    try {
      provider.current();
    } catch (CredentialUnavailableException e) {
      return e;
    }
    throw new AssertionError("expected CredentialUnavailableException");
  }

  final List<Thread> workers = new ArrayList<>();

  /** Runs {@code call} on {@code n} threads released together. */
  <T> List<Future<T>> callConcurrently(int n, Callable<T> call) throws InterruptedException {
    CountDownLatch ready = new CountDownLatch(n);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<T>> results = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      results.add(
          pool.submit(
              () -> {
                synchronized (workers) {
                  workers.add(Thread.currentThread());
                }
                ready.countDown();
                go.await();
                return call.call();
              }));
    }
    assertThat(ready.await(10, TimeUnit.SECONDS)).isTrue();
    go.countDown();
    return results;
  }

  /** Workers parked or blocked inside {@code current()}. */
  int workersBlocked() {
    synchronized (workers) {
      return (int)
          workers.stream()
              .filter(
                  t ->
                      t.getState() == Thread.State.WAITING
                          || t.getState() == Thread.State.TIMED_WAITING
                          || t.getState() == Thread.State.BLOCKED)
              .count();
    }
  }

  /** A token endpoint whose answers can be held back until the test opens the gate. */
  static final class TokenEndpoint extends Dispatcher {
    private final BlockingQueue<MockResponse> responses = new LinkedBlockingQueue<>();
    private final AtomicReference<CountDownLatch> gate =
        new AtomicReference<>(new CountDownLatch(0));
    final AtomicInteger waiting = new AtomicInteger();

    void respond(MockResponse response) {
      responses.add(response);
    }

    void hold() {
      gate.set(new CountDownLatch(1));
    }

    void release() {
      gate.get().countDown();
    }

    @Override
    public void close() {
      release(); // the server is shutting down: let a held request finish
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) throws InterruptedException {
      waiting.incrementAndGet();
      try {
        gate.get().await(10, TimeUnit.SECONDS);
      } finally {
        waiting.decrementAndGet();
      }
      MockResponse next = responses.poll(5, TimeUnit.SECONDS);
      return next != null ? next : json(500, "{\"error\":\"no_response_queued\"}");
    }
  }
}
