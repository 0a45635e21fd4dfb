package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.LocalIdentityProvider;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.ModelScript;
import dev.inferpam.testsupport.MutableClock;
import dev.inferpam.testsupport.Policies;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The conformance kit every adapter's tests run: what a caller observes through an adapter
 * (OkHttp interceptor, servlet filter, gateway, or one written outside this project) in front of
 * a model — denial statuses and JSON bodies, OIDC refusals, pass-through, credential injection
 * and hiding, masking of JSON and of streams split across events, one recording line per
 * request, quotas and approvals. Extend it in a JUnit 5 test and answer {@link #start}:
 *
 * <pre>{@code
 * class MyAdapterConformanceTest extends AdapterConformance {
 *   protected Adapter start(PamEngine engine, ModelScript model) {
 *     FakeModelServer server = FakeModelServer.start(model);          // the model, on loopback
 *     OkHttpClient client = MyAdapter.wrap(OkHttpCaller.clientBuilder(), engine).build();
 *     return OkHttpCaller.of(client, server.url("/"), server);        // how a caller reaches it
 *   }
 * }
 * }</pre>
 *
 * <p>The kit builds the engine (policy, {@link #clock}, the upstream credential
 * {@link #UPSTREAM_AUTHORIZATION}, and {@link #recorder} or a JSONL directory), scripts the model
 * through {@link ModelScript} (host it with {@code FakeModelServer}, or play its
 * {@link ModelAnswer}s from a servlet), and closes the adapter and then the engine after each
 * test. {@link #capabilities()} says what differs between kinds of adapter.
 *
 * <p>A model hosted some other way (an application behind a filter) must, for each request it
 * receives, hand it to {@code model.apply(...)} once, answer with the returned answer's status
 * and headers ({@code Content-Length} unless {@link ModelAnswer#streamed()}), and write it with
 * {@link ModelAnswer#writeTo}, flushing each piece; when that throws
 * {@link ModelAnswer.BrokenOff}, the connection must break without ending the body.
 *
 * <p>Each test starts one adapter; tests do not share state. Waits are bounded (10 s): latches,
 * or polling for records an adapter writes after the caller has its answer; nothing sleeps.
 */
public abstract class AdapterConformance {
  /** The kit's clock starts here (after {@link #RETIRED_KEY}'s expiry). */
  protected static final Instant T0 = Instant.parse("2026-11-28T22:00:00.123Z");

  /** Group {@code ml-engineers}: entitled to chat and completion on {@code llama-3.1-*}. */
  protected static final String ALICE_KEY = "alice-key-0001-c0ffee";

  /** Groups {@code ml-engineers} and {@code auditors}: exempt from masking. */
  protected static final String AUDITOR_KEY = "auditor-key-0002-5e1d";

  /** Expired on 2026-01-01. */
  protected static final String RETIRED_KEY = "retired-key-0003-0d9e";

  /** The secret part of the upstream credential the engine injects. */
  protected static final String UPSTREAM_SECRET = "upstream-secret-93b1f0";

  /** The upstream credential's header value. */
  protected static final String UPSTREAM_AUTHORIZATION = "Bearer " + UPSTREAM_SECRET;

  protected static final String MODEL = "llama-3.1-8b";
  protected static final String CHAT = "/v1/chat/completions";

  protected static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  protected static final String CARD = "4111 1111 1111 1111";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration WAIT = Duration.ofSeconds(10);
  private static final String MASKING =
      """
      masking:
        detectors: [email, phone, credit-card]
        exempt-groups: [auditors]
      """;

  /** What differs between kinds of adapter. */
  public enum Capability {
    /**
     * The adapter forwards to an upstream and sets {@link #UPSTREAM_AUTHORIZATION} on what it
     * forwards (a client interceptor, a gateway). Without it the adapter protects the model
     * application itself (a servlet filter): the application receives no credential at all.
     */
    INJECTS_UPSTREAM_CREDENTIAL,
    /**
     * The adapter's HTTP stack asks the model for gzip and decodes it before masking (OkHttp
     * does), so a gzip answer reaches the caller decoded and masked. Without it, an encoded
     * answer that must be masked is refused 502 {@code masking_unavailable}.
     */
    DECODES_GZIP_ANSWERS,
    /**
     * An answer the adapter passes untouched (a binary body) keeps the model's
     * {@code Content-Length}. Without it the adapter may send it chunked (a gateway relaying a
     * stream); a length it sends is never stale either way.
     */
    KEEPS_CONTENT_LENGTH,
  }

  /** The adapter under test, as a caller reaches it. */
  @SuppressWarnings("try") // close() may throw anything a server's stop throws
  public interface Adapter extends AutoCloseable {
    /**
     * Sends {@code request} as a caller would and returns the response once its head arrived;
     * the caller reads the body as it comes.
     *
     * @throws IOException what the caller's HTTP stack throws (a refused or broken connection)
     */
    CallerResponse send(CallerRequest request) throws IOException;

    /** Stops the adapter and whatever {@link #start} started for it; the kit closes the engine. */
    @Override
    void close() throws Exception;
  }

  /**
   * A request as a caller sends it.
   *
   * @param method  e.g. {@code POST}
   * @param path    the request target: path and optional query, sent as given
   * @param headers header lines in order ({@code Content-Type} among them when there is a body)
   * @param body    the body, or {@code null} for none
   */
  public record CallerRequest(
      String method, String path, List<Map.Entry<String, String>> headers, byte[] body) {
    public CallerRequest {
      Objects.requireNonNull(method, "method");
      Objects.requireNonNull(path, "path");
      headers = List.copyOf(headers);
    }
  }

  /** A response as the caller reads it; closing it lets the connection go. */
  public interface CallerResponse extends Closeable {
    int status();

    /** Every header, names as received, values in order. */
    Map<String, List<String>> headers();

    /** The first value of header {@code name} (case-insensitive), or {@code null}. */
    default String header(String name) {
      for (Map.Entry<String, List<String>> h : headers().entrySet()) {
        if (h.getKey().equalsIgnoreCase(name) && !h.getValue().isEmpty())
          return h.getValue().get(0);
      }
      return null;
    }

    /** The body, as it arrives. */
    InputStream body() throws IOException;
  }

  /**
   * Starts the adapter under test, built around {@code engine}, in front of a model that answers
   * from {@code model} and records into it what it received.
   */
  protected abstract Adapter start(PamEngine engine, ModelScript model) throws Exception;

  /**
   * What this adapter does that others may not; by default a forwarding adapter whose HTTP stack
   * does not decode gzip and that keeps lengths: {@link Capability#INJECTS_UPSTREAM_CREDENTIAL},
   * {@link Capability#KEEPS_CONTENT_LENGTH}.
   */
  protected Set<Capability> capabilities() {
    return EnumSet.of(Capability.INJECTS_UPSTREAM_CREDENTIAL, Capability.KEEPS_CONTENT_LENGTH);
  }

  // =================================================================================== fixtures

  /** The kit's clock: {@link #T0} until a test moves it. */
  protected final MutableClock clock = new MutableClock(T0);

  /** The model's script and what it received. */
  protected final ModelScript model = new ModelScript();

  /** Keeps the records of engines built with it. */
  protected final CapturingRecorder recorder = new CapturingRecorder();

  @TempDir protected Path dir;

  private final List<AutoCloseable> toClose = new ArrayList<>();
  private final ExecutorService callers =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "conformance-caller");
            t.setDaemon(true);
            return t;
          });
  private Adapter adapter;

  /** For an adapter's test class to extend. */
  protected AdapterConformance() {}

  @AfterEach
  void closeAdapterAndEngine() throws Exception {
    Exception failure = null;
    if (adapter != null) {
      try {
        adapter.close();
      } catch (Exception e) {
        failure = e;
      }
    }
    for (int i = toClose.size() - 1; i >= 0; i--) {
      try {
        toClose.get(i).close();
      } catch (Exception e) {
        if (failure == null) failure = e;
        else failure.addSuppressed(e);
      }
    }
    callers.shutdownNow();
    if (failure != null) throw failure;
  }

  /** The policy most cases run: api keys, entitlements, the ollama-admin block, a denied parameter. */
  protected static String policy(String... sections) {
    StringBuilder p =
        new StringBuilder(
                """
        version: 1
        request: {max-body: 1KiB}
        identity:
          api-keys:
        """)
            .append(Policies.apiKey("alice", ALICE_KEY, "ml-engineers"))
            .append(Policies.apiKey("auditor", AUDITOR_KEY, "ml-engineers", "auditors"))
            .append("    - {name: retired, sha256: ")
            .append(Policies.sha256(RETIRED_KEY))
            .append(", groups: [ml-engineers], expires: \"2026-01-01T00:00:00Z\"}\n")
            .append(
                """
            entitlements:
              - groups: [ml-engineers]
                models: ["llama-3.1-*"]
                operations: [chat, completion]
            block:
              presets: [ollama-admin]
            parameters:
              deny: [logprobs]
            """);
    for (String s : sections) p.append(s);
    return p.toString();
  }

  /** Starts the adapter on an engine from {@code policyText} recording into {@link #recorder}. */
  protected final Adapter adapter(String policyText) throws Exception {
    return adapter(engineBuilder(policyText).recorder(recorder));
  }

  /** An engine builder with the kit's policy text, clock and upstream credential {@link #UPSTREAM_AUTHORIZATION}. */
  protected final PamEngine.Builder engineBuilder(String policyText) {
    return engineBuilder(policyText, () -> new Credential("Authorization", UPSTREAM_AUTHORIZATION));
  }

  /** An engine builder with the kit's policy text, clock and {@code credentials}. */
  protected final PamEngine.Builder engineBuilder(
      String policyText, CredentialProvider credentials) {
    return PamEngine.builder()
        .policy(Policy.parse(policyText))
        .clock(clock)
        .credentialProvider(credentials);
  }

  /** Builds the engine and starts the adapter on it; both are closed after the test. */
  protected final Adapter adapter(PamEngine.Builder engine) throws Exception {
    if (adapter != null) throw new IllegalStateException("one adapter per test");
    PamEngine built = engine.build();
    toClose.add(built);
    adapter = start(built, model);
    return adapter;
  }

  /**
   * Waits until {@code recordings} holds {@code exchanges} exchange lines (an adapter may end an
   * exchange just after the caller has read its answer), then closes the adapter and its engine.
   */
  protected final void closeAdapterOnceRecorded(Path recordings, int exchanges) throws Exception {
    await(() -> exchangeLines(recordings).size() >= exchanges);
    closeAdapter();
  }

  /** Closes the adapter and then its engine now (their recordings are complete afterwards). */
  protected final void closeAdapter() throws Exception {
    closeAdapterAndEngine();
    adapter = null;
    toClose.clear();
  }

  // ==================================================================================== denials

  /** A request the engine refuses, and what its record must say. */
  protected record Denial(
      String name,
      String path,
      String key,
      String body,
      int status,
      String code,
      String rule,
      String subject,
      String operation,
      String model,
      boolean bodyRead) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Denial> denials() {
    String ok = Policies.chat(MODEL, "");
    return Stream.of(
        new Denial(
            "bad_path",
            "/api/pull;x=1",
            ALICE_KEY,
            ok,
            400,
            "bad_path",
            "path",
            null,
            null,
            null,
            false),
        new Denial(
            "bad_request",
            CHAT,
            ALICE_KEY,
            "{\"model\":",
            400,
            "bad_request",
            "request",
            "alice",
            null,
            null,
            true),
        new Denial(
            "body_too_large",
            CHAT,
            ALICE_KEY,
            Policies.chat(MODEL, "\"pad\":\"" + "x".repeat(2000) + "\""),
            413,
            "body_too_large",
            "request.max-body",
            null,
            null,
            null,
            false),
        // Identity comes from the head: an unauthenticated body is not read.
        new Denial(
            "unknown_key",
            CHAT,
            "not-a-key",
            ok,
            401,
            "unauthenticated",
            "identity",
            null,
            null,
            null,
            false),
        new Denial(
            "no_credential",
            CHAT,
            null,
            ok,
            401,
            "unauthenticated",
            "identity",
            null,
            null,
            null,
            false),
        new Denial(
            "blocked",
            "/api/pull",
            ALICE_KEY,
            "{\"name\":\"llama3\"}",
            403,
            "blocked",
            "block.presets.ollama-admin:/api/pull",
            "alice",
            null,
            null,
            true),
        new Denial(
            "not_allowed",
            "/v1/unknown",
            ALICE_KEY,
            ok,
            403,
            "not_allowed",
            "allow",
            "alice",
            null,
            null,
            true),
        new Denial(
            "not_entitled",
            CHAT,
            ALICE_KEY,
            Policies.chat("gpt-4o", ""),
            403,
            "not_entitled",
            "entitlements",
            "alice",
            "chat",
            "gpt-4o",
            true),
        new Denial(
            "parameter_denied",
            CHAT,
            ALICE_KEY,
            Policies.chat(MODEL, "\"logprobs\":true"),
            403,
            "parameter_denied",
            "parameters.deny",
            "alice",
            "chat",
            MODEL,
            true));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("denials")
  void everyDenialIsAJsonErrorRecordedOnceAndNothingReachesTheModel(Denial d) throws Exception {
    Adapter a = adapter(policy());
    Reply r = post(a, d.path(), d.key(), d.body());
    assertThat(r.status()).as(r.text()).isEqualTo(d.status());
    if (d.status() == 401) {
      assertThat(r.header("WWW-Authenticate")).startsWith("Bearer error=\"invalid_token\"");
      if (d.key() != null) assertThat(r.header("WWW-Authenticate")).doesNotContain(d.key());
    }
    if (d.code().equals("parameter_denied"))
      assertThat(r.error().path("message").asText()).contains("logprobs");
    assertDenialRecorded(d, r);
    assertThat(model.requestCount()).as("requests the model received").isZero();
  }

  /** Asserts the error body and the one record of a refusal sent as {@code r}. */
  protected final void assertDenialRecorded(Denial d, Reply r) throws Exception {
    assertThat(r.header("Content-Type")).startsWith("application/json");
    JsonNode error = r.error();
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo(d.code());
    assertThat(error.path("message").asText()).isNotBlank();
    assertThat(error.path("request_id").asText()).hasSize(26);
    if (d.key() != null) assertThat(r.text()).doesNotContain(d.key());

    SessionRecord rec = onlyRecord();
    assertThat(rec.type()).isEqualTo("exchange");
    assertThat(rec.id()).isEqualTo(error.path("request_id").asText());
    if (d.subject() == null) assertThat(rec.principal()).isNull();
    else assertThat(rec.principal().subject()).isEqualTo(d.subject());
    assertThat(rec.request().method()).isEqualTo("POST");
    assertThat(rec.request().path()).isEqualTo(d.path());
    assertThat(rec.request().operation()).isEqualTo(d.operation());
    assertThat(rec.request().model()).isEqualTo(d.model());
    if (d.key() != null)
      assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
    else assertThat(rec.request().headers()).doesNotContainKey("authorization");
    if (d.bodyRead()) {
      assertThat(rec.request().bytes()).isEqualTo(d.body().getBytes(StandardCharsets.UTF_8).length);
      assertThat(rec.request().body()).isEqualTo(d.body());
    } else {
      assertThat(rec.request().body()).isNull();
    }
    assertThat(rec.decision().outcome()).isEqualTo("deny");
    assertThat(rec.decision().rule()).isEqualTo(d.rule());
    assertThat(rec.decision().code()).isEqualTo(d.code());
    assertThat(rec.decision().message()).isEqualTo(error.path("message").asText());
    assertThat(rec.response().status()).isEqualTo(d.status());
    assertThat(rec.response().streamed()).isFalse();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(r.text());
    assertThat(rec.response().bytes()).isEqualTo(r.bytes().length);
    assertThat(rec.response().usage()).isEmpty();
    if (d.key() != null) assertThat(rec.toString()).doesNotContain(d.key());
  }

  @Test
  void anExpiredKeyIs401SayingSoWithoutTheKey() throws Exception {
    Adapter a = adapter(policy());
    Reply r = post(a, CHAT, RETIRED_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("WWW-Authenticate")).contains("expired").doesNotContain(RETIRED_KEY);
    assertThat(r.error().path("code").asText()).isEqualTo("unauthenticated");
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void aSecondCredentialBesideAValidOneIs401() throws Exception {
    Adapter a = adapter(policy());
    for (String[] extra :
        List.of(
            new String[] {"X-Api-Key", AUDITOR_KEY},
            new String[] {"X-Api-Key", ""},
            new String[] {"Authorization", "Bearer " + ALICE_KEY},
            new String[] {"Proxy-Authorization", "Basic eDp5"})) {
      Reply r =
          send(
              a,
              "POST",
              CHAT,
              Policies.chat(MODEL, ""),
              "Authorization",
              "Bearer " + ALICE_KEY,
              extra[0],
              extra[1]);
      assertThat(r.status()).as("%s: %s", extra[0], r.text()).isEqualTo(401);
      assertThat(r.error().path("code").asText()).isEqualTo("unauthenticated");
      assertThat(r.header("WWW-Authenticate")).contains("more than one");
      assertThat(r.text()).doesNotContain(ALICE_KEY).doesNotContain(AUDITOR_KEY);
    }
    assertThat(model.requestCount()).isZero();
  }

  // =========================================================================== allowed requests

  @Test
  void anAllowedExchangeReachesTheModelWithTheUpstreamCredentialAndIsRecordedOnceWithEveryField()
      throws Exception {
    String answer = Completions.chat("Hello", 41, 120);
    model.enqueue(ModelAnswer.json(answer).withHeader("X-Model-Server", "fake"));
    Adapter a = adapter(policy());
    String body = Policies.chat(MODEL, "");

    Reply r = post(a, CHAT, ALICE_KEY, body);
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("X-Model-Server")).isEqualTo("fake");
    assertThat(r.text()).isEqualTo(answer);
    assertNoStaleLength(r);

    ModelRequest seen = model.takeRequest();
    assertUpstreamCredentialOnly(seen, ALICE_KEY);

    SessionRecord rec = onlyRecord();
    assertThat(rec.type()).isEqualTo("exchange");
    assertThat(rec.id()).hasSize(26);
    assertThat(rec.time()).isEqualTo(T0);
    assertThat(rec.durationMs()).isNotNegative();
    assertThat(rec.principal().subject()).isEqualTo("alice");
    assertThat(rec.principal().groups()).containsExactly("ml-engineers");
    assertThat(rec.request().method()).isEqualTo("POST");
    assertThat(rec.request().path()).isEqualTo(CHAT);
    assertThat(rec.request().operation()).isEqualTo("chat");
    assertThat(rec.request().model()).isEqualTo(MODEL);
    assertThat(rec.request().headers().get("authorization")).containsExactly("[REDACTED]");
    assertThat(rec.request().headers().get("content-type"))
        .singleElement()
        .asString()
        .startsWith("application/json");
    assertThat(rec.request().bytes()).isEqualTo(body.length());
    assertThat(rec.request().body()).isEqualTo(body);
    assertThat(rec.decision())
        .isEqualTo(new SessionRecord.DecisionSummary("allow", "entitlements[0]", null, null));
    assertThat(rec.approval()).isNull();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().streamed()).isFalse();
    assertThat(rec.response().bytes()).isEqualTo(answer.length());
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(answer);
    assertThat(rec.response().usage())
        .isEqualTo(Map.of("prompt_tokens", 41L, "completion_tokens", 120L, "total_tokens", 161L));
    assertThat(rec.toString()).doesNotContain(ALICE_KEY).doesNotContain(UPSTREAM_SECRET);
    assertThat(recorder.intents).as("no strict durability: no intent").isEmpty();
  }

  @Test
  void theModelGetsTheCallersBodyByteForByteWithItsQueryAndOtherHeaders() throws Exception {
    model.enqueue(ModelAnswer.json(Completions.chat("ok")));
    Adapter a = adapter(policy());
    // Odd spacing, key order and non-ASCII: the model must get these exact bytes.
    byte[] body =
        "{ \"messages\":[{\"role\":\"user\",\"content\":\"grüß dich \\u00e9\"}],   \"model\":\"llama-3.1-8b\"}\n"
            .getBytes(StandardCharsets.UTF_8);
    Reply r =
        send(
            a,
            "POST",
            CHAT + "?api-version=2024-10-01&x=a%20b",
            body,
            "Authorization",
            "Bearer " + ALICE_KEY,
            "X-Request-Id",
            "notebook-7",
            "Content-Type",
            "application/json");
    assertThat(r.status()).isEqualTo(200);

    ModelRequest seen = model.takeRequest();
    assertThat(seen.method()).isEqualTo("POST");
    assertThat(seen.target()).isEqualTo(CHAT + "?api-version=2024-10-01&x=a%20b");
    assertThat(seen.header("X-Request-Id")).isEqualTo("notebook-7");
    assertThat(seen.header("Content-Type")).startsWith("application/json");
    assertThat(seen.body()).isEqualTo(body);
    assertUpstreamCredentialOnly(seen, ALICE_KEY);
  }

  @Test
  void aKeyInXApiKeyIsNotForwardedEither() throws Exception {
    model.enqueue(ModelAnswer.json("{\"id\":\"x\"}"));
    Adapter a = adapter(policy());
    Reply r = send(a, "POST", CHAT, Policies.chat(MODEL, ""), "X-Api-Key", ALICE_KEY);
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.text()).isEqualTo("{\"id\":\"x\"}");
    assertUpstreamCredentialOnly(model.takeRequest(), ALICE_KEY);
    SessionRecord rec = onlyRecord();
    assertThat(rec.principal().subject()).isEqualTo("alice");
    assertThat(rec.request().headers().get("x-api-key")).containsExactly("[REDACTED]");
    assertThat(rec.toString()).doesNotContain(ALICE_KEY);
  }

  @Test
  void theModelsErrorStatusHeadersAndBodyPassThrough() throws Exception {
    model.enqueue(
        ModelAnswer.json("{\"error\":\"overloaded\"}")
            .withStatus(503)
            .withHeader("Retry-After", "7"));
    Adapter a = adapter(policy());
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(503);
    assertThat(r.header("Retry-After")).isEqualTo("7");
    assertThat(r.text()).isEqualTo("{\"error\":\"overloaded\"}");
    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(503);
  }

  @Test
  void anUnavailableUpstreamCredentialIs503AndNothingIsForwarded() throws Exception {
    Adapter a =
        adapter(
            engineBuilder(
                    policy(),
                    () -> {
                      throw new CredentialProvider.CredentialUnavailableException(
                          "variable X is not set");
                    })
                .recorder(recorder));
    String body = Policies.chat(MODEL, "");
    Reply r = post(a, CHAT, ALICE_KEY, body);
    assertThat(r.status()).isEqualTo(503);
    assertDenialRecorded(
        new Denial(
            "upstream_credential_unavailable",
            CHAT,
            ALICE_KEY,
            body,
            503,
            "upstream_credential_unavailable",
            "upstream.credential",
            "alice",
            "chat",
            MODEL,
            true),
        r);
    assertThat(model.requestCount()).isZero();
  }

  // ================================================================================ credentials

  @ParameterizedTest
  @ValueSource(strings = {ALICE_KEY, AUDITOR_KEY}) // masked, and exempt from masking
  void anEchoingModelHandsBackNeitherTheUpstreamCredentialNorTheCallersKey(String key)
      throws Exception {
    model.otherwise(ModelAnswer::echo);
    Adapter a =
        adapter(engineBuilder(policy(MASKING, Policies.recording(dir.resolve("rec"), "batched"))));
    Reply r =
        send(
            a,
            "POST",
            CHAT,
            Policies.chat(MODEL, ""),
            "Authorization",
            "Bearer " + key,
            "X-Request-Id",
            "my key is " + key + "/x");
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.text())
        .doesNotContain(UPSTREAM_SECRET)
        .doesNotContain(key)
        .contains("[REDACTED:credential");
    assertThat(r.headerText()).doesNotContain(UPSTREAM_SECRET).doesNotContain(key);
    assertThat(r.header("X-Echo-X-Request-Id")).startsWith("my key is [");
    assertNoStaleLength(r);
    // the caller's note reaches the model (it is no credential); its credential does not
    ModelRequest seen = model.takeRequest();
    assertThat(seen.headers("X-Api-Key")).isEmpty();
    assertThat(seen.headers("Authorization"))
        .isEqualTo(injects() ? List.of(UPSTREAM_AUTHORIZATION) : List.of());
    if (injects()) assertThat(r.header("X-Echo-Authorization")).startsWith("[REDACTED:credential");

    closeAdapterOnceRecorded(dir.resolve("rec"), 1);
    String recording = recordingText(dir.resolve("rec"));
    assertThat(recording)
        .contains("\"type\":\"exchange\"")
        .doesNotContain(UPSTREAM_SECRET)
        .doesNotContain(key);
    JsonNode line = exchangeLines(dir.resolve("rec")).get(0);
    assertThat(line.path("response").path("masked").path("credential").asInt()).isPositive();
  }

  @Test
  void aStreamedEchoOfTheCredentialsSplitAcrossChunksIsReplaced() throws Exception {
    String secrets = "you sent " + (injects() ? UPSTREAM_AUTHORIZATION + " and " : "") + ALICE_KEY;
    model.enqueue(
        ModelAnswer.sse(Completions.sseDelta(secrets), Completions.SSE_DONE).splitEvery(7));
    Adapter a = adapter(policy());
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "\"stream\":true"));
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.text())
        .doesNotContain(UPSTREAM_SECRET)
        .doesNotContain(ALICE_KEY)
        .contains("[REDACTED:credential")
        .endsWith(Completions.SSE_DONE);
    assertThat(onlyRecord().response().body())
        .doesNotContain(UPSTREAM_SECRET)
        .doesNotContain(ALICE_KEY);
  }

  // ======================================================================================= OIDC

  private static final String AZURE_ISSUER = "https://login.microsoftonline.com/0f1e2d3c-4b5a/v2.0";

  /** A Keycloak-shaped realm and an Azure-shaped tenant, both served by {@code idp}. */
  private String oidcPolicy(
      LocalIdentityProvider.Issuer keycloak, LocalIdentityProvider.Issuer azure) {
    return """
        version: 1
        identity:
          oidc:
            - issuer: %s
              audience: inference-gateway
              jwks-uri: %s
              groups-claim: realm_access.roles
              subject-claim: preferred_username
            - issuer: %s
              audience: api://inference
              jwks-uri: %s
              groups-claim: roles
              subject-claim: oid
              require-type: JWT
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
          - groups: [Inference.Chat]
            models: ["gpt-4o-mini"]
            operations: [chat]
        """
        .formatted(keycloak.issuer(), keycloak.jwksUri(), azure.issuer(), azure.jwksUri());
  }

  private LocalIdentityProvider idp() {
    LocalIdentityProvider idp = LocalIdentityProvider.start(clock);
    toClose.add(idp);
    return idp;
  }

  private static LocalIdentityProvider.Token keycloakToken(
      LocalIdentityProvider.Issuer realm, String... roles) {
    return realm
        .token()
        .subject("5b8e-user-id")
        .audience("inference-gateway", "account")
        .claim("typ", "Bearer")
        .claim("azp", "notebook")
        .claim("preferred_username", "alice")
        .claim("realm_access", Map.of("roles", List.of(roles)))
        .claim("resource_access", Map.of("account", Map.of("roles", List.of("view-profile"))));
  }

  @Test
  void aKeycloakTokensRealmRolesDriveEntitlementsAndTheTokenNeverReachesTheModel()
      throws Exception {
    LocalIdentityProvider idp = idp();
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer(AZURE_ISSUER, "/0f1e2d3c-4b5a/discovery/v2.0/keys", "api://inference");
    model.enqueue(ModelAnswer.json("{\"id\":\"chat-1\"}"));
    Adapter a = adapter(oidcPolicy(realm, azure));
    String token = keycloakToken(realm, "ml-engineers", "offline_access").sign();

    Reply allowed = post(a, CHAT, token, Policies.chat(MODEL, ""));
    assertThat(allowed.status()).as(allowed.text()).isEqualTo(200);
    assertThat(allowed.text()).isEqualTo("{\"id\":\"chat-1\"}");
    assertUpstreamCredentialOnly(model.takeRequest(), token);

    Reply denied = post(a, CHAT, token, Policies.chat("gpt-4o-mini", ""));
    assertThat(denied.status()).isEqualTo(403);
    assertThat(denied.error().path("code").asText()).isEqualTo("not_entitled");
    assertThat(model.requestCount()).isEqualTo(1);

    List<SessionRecord> records = awaitRecords(2);
    assertThat(records)
        .allSatisfy(
            rec -> {
              assertThat(rec.principal().subject()).isEqualTo("alice");
              assertThat(rec.principal().via()).isEqualTo("oidc");
              assertThat(rec.principal().issuer()).isEqualTo(realm.issuer());
              assertThat(rec.principal().groups())
                  .containsExactlyInAnyOrder("ml-engineers", "offline_access");
              assertThat(rec.toString()).doesNotContain(token);
            });
    assertThat(idp.jwksFetches()).as("keys came from the identity provider").isPositive();
  }

  @Test
  void anAzureTokensAppRolesDriveEntitlements() throws Exception {
    LocalIdentityProvider idp = idp();
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer(AZURE_ISSUER, "/0f1e2d3c-4b5a/discovery/v2.0/keys", "api://inference");
    model.enqueue(ModelAnswer.json("{\"id\":\"chat-2\"}"));
    Adapter a = adapter(oidcPolicy(realm, azure));
    String token =
        azure
            .token()
            .subject("pairwise-sub")
            .expiresIn(Duration.ofHours(1))
            .notBefore(clock.instant())
            .claim("oid", "7d1c0b2a-oid")
            .claim("tid", "0f1e2d3c-4b5a")
            .claim("roles", List.of("Inference.Chat"))
            .claim("ver", "2.0")
            .sign();

    Reply allowed = post(a, CHAT, token, Policies.chat("gpt-4o-mini", ""));
    assertThat(allowed.status()).as(allowed.text()).isEqualTo(200);
    assertUpstreamCredentialOnly(model.takeRequest(), token);
    Reply denied = post(a, CHAT, token, Policies.chat(MODEL, ""));
    assertThat(denied.status()).isEqualTo(403);
    assertThat(denied.error().path("code").asText()).isEqualTo("not_entitled");
    assertThat(model.requestCount()).isEqualTo(1);

    SessionRecord first = awaitRecords(2).get(0);
    assertThat(first.principal().subject()).isEqualTo("7d1c0b2a-oid");
    assertThat(first.principal().groups()).containsExactly("Inference.Chat");
  }

  @Test
  void aForgedTokenIs401WithTheReasonAndNeverReachesTheModel() throws Exception {
    LocalIdentityProvider idp = idp();
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer(AZURE_ISSUER, "/0f1e2d3c-4b5a/discovery/v2.0/keys", "api://inference");
    Adapter a = adapter(oidcPolicy(realm, azure));
    String forged = keycloakToken(realm, "ml-engineers", "admin").forged().sign();

    Reply r = post(a, CHAT, forged, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("WWW-Authenticate"))
        .isEqualTo("Bearer error=\"invalid_token\", error_description=\"signature invalid\"");
    assertThat(r.error().path("code").asText()).isEqualTo("unauthenticated");
    assertThat(r.text()).doesNotContain(forged);
    assertThat(model.requestCount()).isZero();
    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().code()).isEqualTo("unauthenticated");
    assertThat(rec.response().status()).isEqualTo(401);
    assertThat(rec.toString()).doesNotContain(forged);
  }

  @Test
  void aValidTokenWithASecondCredentialIs401AndNothingReachesTheModel() throws Exception {
    LocalIdentityProvider idp = idp();
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer(AZURE_ISSUER, "/0f1e2d3c-4b5a/discovery/v2.0/keys", "api://inference");
    Adapter a = adapter(oidcPolicy(realm, azure));
    String token = keycloakToken(realm, "ml-engineers").sign();
    for (String[] extra :
        List.of(
            new String[] {"X-Api-Key", "anything"},
            new String[] {"X-Api-Key", ""},
            new String[] {"Authorization", "Bearer " + token},
            new String[] {"Proxy-Authorization", "Basic eDp5"})) {
      Reply r =
          send(
              a,
              "POST",
              CHAT,
              Policies.chat(MODEL, ""),
              "Authorization",
              "Bearer " + token,
              extra[0],
              extra[1]);
      assertThat(r.status()).as("%s: %s", extra[0], r.text()).isEqualTo(401);
      assertThat(r.error().path("code").asText()).isEqualTo("unauthenticated");
      assertThat(r.header("WWW-Authenticate")).contains("more than one");
      assertThat(r.text()).doesNotContain(token);
    }
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void expiredAndWrongAudienceTokensSaySo() throws Exception {
    LocalIdentityProvider idp = idp();
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer(AZURE_ISSUER, "/0f1e2d3c-4b5a/discovery/v2.0/keys", "api://inference");
    Adapter a = adapter(oidcPolicy(realm, azure));
    String expired = keycloakToken(realm, "ml-engineers").expiresIn(Duration.ofMinutes(-5)).sign();
    String otherApi = keycloakToken(realm, "ml-engineers").audience("another-api").sign();

    Reply r = post(a, CHAT, expired, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("WWW-Authenticate"))
        .contains("error_description=\"token expired\"")
        .doesNotContain(expired);
    r = post(a, CHAT, otherApi, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("WWW-Authenticate")).contains("error_description=\"wrong audience\"");
    r = post(a, CHAT, null, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.header("WWW-Authenticate")).startsWith("Bearer");
    assertThat(model.requestCount()).isZero();
  }

  // ==================================================================================== masking

  /** A chat completion naming an e-mail address and a card number, with usage. */
  protected static final String PII_ANSWER =
      Completions.chat("Mail " + EMAIL + " and charge " + CARD + ".", 12, 9);

  protected static final String MASKED_PII_ANSWER =
      PII_ANSWER.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");

  @Test
  void aJsonAnswerReachesTheCallerAndTheRecordMaskedWithoutAStaleLength() throws Exception {
    // cut in the middle of the address: the masker sees the body whole
    model.enqueue(ModelAnswer.json(PII_ANSWER).splitAt(PII_ANSWER.indexOf(EMAIL) + 6));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.text()).isEqualTo(MASKED_PII_ANSWER).doesNotContain(EMAIL).doesNotContain(CARD);
    assertNoStaleLength(r);

    SessionRecord rec = onlyRecord();
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(r.text());
    assertThat(rec.response().bytes()).isEqualTo(r.bytes().length);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(rec.response().usage())
        .containsEntry("prompt_tokens", 12L)
        .containsEntry("total_tokens", 21L);
  }

  @Test
  void anExemptCallerReadsRawValuesWhileTheRecordIsMasked() throws Exception {
    model.enqueue(ModelAnswer.json(PII_ANSWER));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, CHAT, AUDITOR_KEY, Policies.chat(MODEL, ""));
    assertThat(r.text()).isEqualTo(PII_ANSWER);
    assertNoStaleLength(r);
    if (capabilities().contains(Capability.KEEPS_CONTENT_LENGTH)) {
      assertThat(r.header("Content-Length"))
          .as("nothing rewritten: the length holds")
          .isEqualTo(String.valueOf(PII_ANSWER.length()));
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.principal().subject()).isEqualTo("auditor");
    assertThat(rec.response().body())
        .isEqualTo(MASKED_PII_ANSWER)
        .doesNotContain(EMAIL)
        .doesNotContain(CARD);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
    assertThat(rec.response().bytes()).as("what the caller got").isEqualTo(PII_ANSWER.length());
  }

  @Test
  void withBodiesFullTheRecordHoldsTheMaskedTextTheCallerRead() throws Exception {
    model.enqueue(ModelAnswer.json(PII_ANSWER));
    Adapter a =
        adapter(
            policy(
                MASKING,
                "recording: {directory: ./never-opened-a-recorder-is-given, bodies: full}\n"));
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.text()).isEqualTo(MASKED_PII_ANSWER);
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().body()).isEqualTo(MASKED_PII_ANSWER);
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1, "credit-card", 1));
  }

  @Test
  void theModelNeverGetsTheCallersAcceptEncodingForAnAnswerThatIsRewritten() throws Exception {
    model.enqueue(ModelAnswer.json(PII_ANSWER));
    Adapter a = adapter(policy(MASKING));
    Reply r =
        send(
            a,
            "POST",
            CHAT,
            Policies.chat(MODEL, ""),
            "Authorization",
            "Bearer " + ALICE_KEY,
            "Accept-Encoding",
            "br");
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("Content-Encoding")).isNull();
    assertThat(r.text()).isEqualTo(MASKED_PII_ANSWER);
    assertThat(model.takeRequest().header("Accept-Encoding"))
        .as("the adapter's own, or none")
        .isNotEqualTo("br");
  }

  @Test
  void anEmailSplitAcrossTwoStreamedEventsIsMaskedForTheCallerAndInTheRecord() throws Exception {
    model.enqueue(
        ModelAnswer.sse(
            Completions.sseDelta("Write to jane.doe@exa"),
            Completions.sseDelta("mple.com today."),
            Completions.SSE_DONE));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "\"stream\":true"));
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("Content-Type")).startsWith("text/event-stream");
    assertThat(deltas(r.text())).isEqualTo("Write to [EMAIL] today.");
    assertThat(r.text())
        .doesNotContain("jane.doe")
        .doesNotContain("example.com")
        .doesNotContain("@exa")
        .endsWith(Completions.SSE_DONE);
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(r.text());
    assertThat(rec.response().masked()).isEqualTo(Map.of("email", 1));
  }

  @Test
  void anEmailSplitAcrossTwoNdjsonLinesIsMaskedForTheCaller() throws Exception {
    model.enqueue(
        ModelAnswer.ndjson(
            Completions.ollamaChat(MODEL, "Write to jane.doe@exa", false),
            Completions.ollamaChat(MODEL, "mple.com today.", false),
            Completions.ollamaChat(MODEL, "", true)));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, "/api/chat", ALICE_KEY, Policies.chat(MODEL, "\"stream\":true"));
    assertThat(r.status()).isEqualTo(200);
    StringBuilder content = new StringBuilder();
    for (String line : r.text().split("\n"))
      content.append(JSON.readTree(line).path("message").path("content").asText());
    assertThat(content).hasToString("Write to [EMAIL] today.");
    assertThat(r.text()).doesNotContain("jane.doe").doesNotContain("example.com");
    assertThat(onlyRecord().response().masked()).isEqualTo(Map.of("email", 1));
  }

  @Test
  void aMaskedStreamDeliversTheFirstEventBeforeTheModelSendsTheRest() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    ModelAnswer answer =
        ModelAnswer.sse(
                Completions.sseDelta("Hello. "),
                Completions.sseDelta("Reach me at " + EMAIL + "."),
                Completions.SSE_DONE)
            .holdBefore(1, release);
    model.enqueue(answer);
    Adapter a = adapter(policy(MASKING));
    String received;
    try (CallerResponse r = open(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "\"stream\":true"))) {
      InputStream in = r.body();
      // The model sends nothing more until the caller has seen the first event. The masker may
      // hold back the end of its text (it could continue in the next event), never all of it.
      String first = readEvent(in);
      String firstText = deltas(first);
      assertThat(firstText).isNotEmpty();
      assertThat("Hello. ").startsWith(firstText);
      assertThat(answer.isWritten()).isFalse();
      assertThat(recorder.records).isEmpty();
      release.countDown();
      received = first + readToEnd(in);
    } finally {
      release.countDown();
    }
    assertThat(deltas(received)).isEqualTo("Hello. Reach me at [EMAIL].");
    assertThat(onlyRecord().response().body()).isEqualTo(received);
  }

  @Test
  void aBinaryAnswerPassesByteExactWithItsLength() throws Exception {
    byte[] png = new byte[4096];
    for (int i = 0; i < png.length; i++) png[i] = (byte) (i * 31 + 7);
    byte[] email = EMAIL.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(email, 0, png, 100, email.length);
    model.enqueue(ModelAnswer.of(200, "image/png", png));
    Adapter a =
        adapter(
            policy(
                MASKING,
                "recording: {directory: ./never-opened-a-recorder-is-given, bodies: full}\n"));
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.bytes()).isEqualTo(png);
    assertNoStaleLength(r);
    if (capabilities().contains(Capability.KEEPS_CONTENT_LENGTH))
      assertThat(r.header("Content-Length")).isEqualTo("4096");
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().bytes()).isEqualTo(4096);
    assertThat(rec.response().masked()).as("nothing masked on the way to the caller").isEmpty();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {ALICE_KEY, AUDITOR_KEY}) // masked; exempt, but still scanned for credentials
  void anAnswerInAnEncodingTheAdapterCannotReadIsRefused502AndRecorded(String key)
      throws Exception {
    model.enqueue(
        ModelAnswer.of(200, "application/json", "not really brotli")
            .withHeader("Content-Encoding", "br"));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, CHAT, key, Policies.chat(MODEL, ""));
    assertMaskingRefused(r, "br");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {ALICE_KEY, AUDITOR_KEY}) // masked; exempt, but still scanned for credentials
  void aGzipAnswerIsDecodedAndMaskedOrRefused502(String key) throws Exception {
    model.enqueue(
        ModelAnswer.of(200, "application/json", gzip(PII_ANSWER))
            .withHeader("Content-Encoding", "gzip"));
    Adapter a = adapter(policy(MASKING));
    Reply r = post(a, CHAT, key, Policies.chat(MODEL, ""));
    if (capabilities().contains(Capability.DECODES_GZIP_ANSWERS)) {
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("Content-Encoding")).isNull();
      assertThat(r.text()).isEqualTo(key.equals(AUDITOR_KEY) ? PII_ANSWER : MASKED_PII_ANSWER);
      assertThat(onlyRecord().response().body()).isEqualTo(MASKED_PII_ANSWER);
    } else {
      assertMaskingRefused(r, "gzip");
    }
  }

  private void assertMaskingRefused(Reply r, String encoding) throws Exception {
    assertThat(r.status()).isEqualTo(502);
    assertThat(r.header("Content-Encoding")).isNull();
    assertThat(r.header("Content-Type")).startsWith("application/json");
    assertNoStaleLength(r);
    JsonNode error = r.error();
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo("masking_unavailable");
    assertThat(error.path("message").asText())
        .isEqualTo(
            "the response is encoded (Content-Encoding: " + encoding + ") and cannot be masked");
    SessionRecord rec = onlyRecord();
    assertThat(error.path("request_id").asText()).isEqualTo(rec.id());
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(502);
    assertThat(rec.response().body()).isEqualTo(r.text());
    assertThat(rec.response().complete()).isTrue();
  }

  // ================================================================================== recording

  @Test
  void aStreamIsRecordedWholeWithUsageWhileTheCallerGetsTheFirstEventAtOnce() throws Exception {
    String first = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n";
    String rest =
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n"
            + Completions.sseUsage(9, 2)
            + Completions.SSE_DONE;
    CountDownLatch release = new CountDownLatch(1);
    ModelAnswer answer = ModelAnswer.sse(first, rest).holdBefore(1, release);
    model.enqueue(answer);
    Adapter a = adapter(policy());
    String received;
    try (CallerResponse r =
        open(
            a,
            "/v1/completions",
            ALICE_KEY,
            "{\"model\":\"llama-3.1-8b\",\"prompt\":\"hi\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}")) {
      InputStream in = r.body();
      assertThat(readEvent(in)).isEqualTo(first);
      assertThat(answer.isWritten()).as("the model still holds the rest").isFalse();
      assertThat(recorder.records).isEmpty();
      release.countDown();
      received = first + readToEnd(in);
    } finally {
      release.countDown();
    }
    assertThat(received).isEqualTo(first + rest);
    SessionRecord rec = onlyRecord();
    assertThat(rec.request().operation()).isEqualTo("completion");
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().body()).isEqualTo(first + rest);
    assertThat(rec.response().bytes()).isEqualTo((first + rest).length());
    assertThat(rec.response().usage())
        .isEqualTo(Map.of("prompt_tokens", 9L, "completion_tokens", 2L, "total_tokens", 11L));
  }

  @Test
  void aModelThatBreaksOffMidStreamIsRecordedIncompleteAndTheCallerSeesTheBreak() throws Exception {
    String first = Completions.sseDelta("Hel");
    model.enqueue(
        ModelAnswer.sse(first, Completions.sseDelta("lo"), Completions.SSE_DONE).breakAfter(1));
    Adapter a = adapter(policy());
    try (CallerResponse r = open(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "\"stream\":true"))) {
      assertThat(r.status()).isEqualTo(200);
      InputStream in = r.body();
      assertThat(readEvent(in)).isEqualTo(first);
      // A clean end would tell the caller the answer was complete; it must see a broken stream.
      assertThatThrownBy(() -> readToEnd(in)).isInstanceOf(IOException.class);
    }
    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().streamed()).isTrue();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.response().body()).isEqualTo(first);
    assertThat(rec.response().bytes()).isEqualTo(first.length());
  }

  @Test
  void unavailableRecordingIs503AndForwardsNothingUntilTheRecorderRecovers() throws Exception {
    Adapter a = adapter(policy());
    recorder.down = true;
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(503);
    assertThat(r.error().path("code").asText()).isEqualTo("recording_unavailable");
    assertThat(r.error().path("message").asText())
        .isEqualTo("recording is unavailable, the request was not forwarded");
    assertThat(model.requestCount()).isZero();
    // The exchange ends after the answer went out; the recorder is asked once more then.
    await(() -> recorder.admits.get() >= 2);
    assertThat(recorder.records).as("still down: the 503's record could not be taken").isEmpty();

    recorder.down = false;
    model.enqueue(ModelAnswer.json("{}"));
    r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).as("recovers with the recorder").isEqualTo(200);
    assertThat(onlyRecord().decision().outcome()).isEqualTo("allow");
  }

  @Test
  void aRequestRefusedForRecordingIsRecordedWhenTheRecorderTakesItAtTheEnd() throws Exception {
    recorder.refuseAdmissions.set(1); // e.g. the queue is full for a moment
    Adapter a = adapter(policy());
    String body = Policies.chat(MODEL, "");
    Reply r = post(a, CHAT, ALICE_KEY, body);
    assertThat(r.status()).isEqualTo(503);
    assertDenialRecorded(
        new Denial(
            "recording_unavailable",
            CHAT,
            ALICE_KEY,
            body,
            503,
            "recording_unavailable",
            "recording",
            "alice",
            "chat",
            MODEL,
            true),
        r);
    assertThat(model.requestCount()).isZero();
  }

  @Test
  void strictRecordingWritesTheIntentBeforeTheModelRunsThenTheExchangeInAVerifiableChain()
      throws Exception {
    Path recordings = dir.resolve("strict");
    List<List<JsonNode>> seenByModel = new CopyOnWriteArrayList<>();
    model.enqueue(
        request -> {
          seenByModel.add(lines(recordings));
          return ModelAnswer.json(Completions.chat("Hello", 41, 120));
        });
    Adapter a = adapter(engineBuilder(policy(Policies.recording(recordings, "strict"))));
    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(200);
    closeAdapterOnceRecorded(recordings, 1);

    assertThat(seenByModel)
        .singleElement()
        .satisfies(
            before ->
                assertThat(before)
                    .singleElement()
                    .satisfies(
                        intent -> assertThat(intent.path("type").asText()).isEqualTo("intent")));
    List<JsonNode> lines = lines(recordings);
    assertThat(lines).hasSize(2);
    JsonNode intent = lines.get(0);
    JsonNode exchange = lines.get(1);
    assertThat(intent.path("type").asText()).isEqualTo("intent");
    assertThat(intent.path("principal").path("subject").asText()).isEqualTo("alice");
    assertThat(intent.path("request").path("path").asText()).isEqualTo(CHAT);
    assertThat(intent.path("request").path("model").asText()).isEqualTo(MODEL);
    assertThat(exchange.path("type").asText()).isEqualTo("exchange");
    assertThat(exchange.path("id").asText()).isEqualTo(intent.path("id").asText());
    assertThat(exchange.path("decision").path("outcome").asText()).isEqualTo("allow");
    assertThat(exchange.path("request").path("headers").path("authorization").asText())
        .isEqualTo("[REDACTED]");
    assertThat(exchange.path("response").path("body").asText()).isEqualTo(r.text());
    assertThat(exchange.path("response").path("usage").path("total_tokens").asLong())
        .isEqualTo(161);
    assertThat(exchange.path("response").path("complete").asBoolean()).isTrue();
    assertThat(exchange.path("prev").asText()).isEqualTo(intent.path("hash").asText());

    // The same through the public reader: the chain verifies, the intent precedes its exchange.
    Recordings read = Recordings.open(recordings);
    assertThat(read.verify().ok()).isTrue();
    assertThat(read.entries())
        .extracting(e -> e.record().type())
        .containsExactly("intent", "exchange");
    SessionRecord found = read.find(intent.path("id").asText()).orElseThrow().record();
    assertThat(found.principal().subject()).isEqualTo("alice");
    assertThat(found.response().complete()).isTrue();
    assertThat(read.list("alice", null)).hasSize(1);
    assertThat(recordingText(recordings)).doesNotContain(ALICE_KEY).doesNotContain(UPSTREAM_SECRET);
  }

  @Test
  void everyRequestLeavesOneExchangeLineWithItsSizesAndMaskedCountsInAVerifiableChain()
      throws Exception {
    Path recordings = dir.resolve("batched");
    model.enqueue(ModelAnswer.json(PII_ANSWER));
    Adapter a = adapter(engineBuilder(policy(MASKING, Policies.recording(recordings, "batched"))));
    String allowedBody = Policies.chat(MODEL, "");
    Reply allowed = post(a, CHAT, ALICE_KEY, allowedBody);
    Reply denied = post(a, CHAT, ALICE_KEY, Policies.chat("gpt-4o", ""));
    Reply unknown = post(a, CHAT, "not-a-key", allowedBody);
    assertThat(List.of(allowed.status(), denied.status(), unknown.status()))
        .containsExactly(200, 403, 401);
    closeAdapterOnceRecorded(recordings, 3);

    List<JsonNode> lines = exchangeLines(recordings);
    assertThat(lines).hasSize(3);
    assertThat(lines)
        .extracting(l -> l.path("decision").path("outcome").asText())
        .containsExactlyInAnyOrder("allow", "deny", "deny");
    JsonNode allow =
        lines.stream()
            .filter(l -> l.path("decision").path("outcome").asText().equals("allow"))
            .findFirst()
            .orElseThrow();
    assertThat(allow.path("request").path("bytes").asLong()).isEqualTo(allowedBody.length());
    assertThat(allow.path("response").path("bytes").asLong()).isEqualTo(allowed.bytes().length);
    assertThat(allow.path("response").path("body").asText()).isEqualTo(MASKED_PII_ANSWER);
    assertThat(allow.path("response").path("masked").path("email").asInt()).isEqualTo(1);
    assertThat(allow.path("response").path("masked").path("credit-card").asInt()).isEqualTo(1);
    for (JsonNode line : lines) {
      if (line == allow) continue;
      assertThat(line.path("response").path("status").asInt()).isIn(401, 403);
      assertThat(line.path("response").path("bytes").asLong()).isPositive();
    }
    assertThat(Recordings.open(recordings).verify().ok()).isTrue();
    assertThat(recordingText(recordings))
        .doesNotContain(ALICE_KEY)
        .doesNotContain(UPSTREAM_SECRET)
        .doesNotContain(EMAIL);
  }

  // ===================================================================================== quotas

  @Test
  void aRequestOverTheMinutesBudgetIs429WithRetryAfterAndTheModelIsNotCalled() throws Exception {
    Adapter a =
        adapter(
            policy(
                """
        limits:
          - groups: ["*"]
            requests-per-minute: 1
        """));
    model.enqueue(ModelAnswer.json("{\"n\":1}"));
    assertThat(post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "call 1", "")).status())
        .isEqualTo(200);
    awaitRecords(1);

    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "call 2", ""));
    assertThat(r.status()).isEqualTo(429);
    assertThat(r.header("Retry-After")).isNotNull().matches("[1-9][0-9]*");
    assertThat(r.header("Content-Type")).startsWith("application/json");
    assertThat(r.error().path("code").asText()).isEqualTo("quota_exceeded");
    assertThat(r.error().path("message").asText()).contains("limits[0]", "requests-per-minute");
    assertThat(model.requestCount()).isEqualTo(1);
    SessionRecord refused = awaitRecords(2).get(1);
    assertThat(refused.id()).isEqualTo(r.error().path("request_id").asText());
    assertThat(refused.decision().code()).isEqualTo("quota_exceeded");
    assertThat(refused.decision().rule()).isEqualTo("limits[0].requests-per-minute");
    assertThat(refused.response().status()).isEqualTo(429);

    clock.advance(Duration.ofSeconds(Long.parseLong(r.header("Retry-After"))));
    model.enqueue(ModelAnswer.json("{\"n\":2}"));
    assertThat(post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "call 3", "")).status())
        .isEqualTo(200);
    assertThat(model.requestCount()).isEqualTo(2);
  }

  @Test
  void aTokenBudgetIsChargedFromTheModelsUsage() throws Exception {
    Adapter a =
        adapter(
            policy(
                """
        limits:
          - groups: ["*"]
            tokens-per-day: 100
        """));
    model.enqueue(ModelAnswer.json(Completions.chat("long answer", 30, 131)));
    assertThat(post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "")).status()).isEqualTo(200);
    assertThat(awaitRecords(1).get(0).quotaRemaining()).containsEntry("tokens_per_day", 0L);

    Reply r = post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, ""));
    assertThat(r.status()).isEqualTo(429);
    assertThat(r.error().path("code").asText()).isEqualTo("quota_exceeded");
    assertThat(r.header("Retry-After")).isNotNull();
    assertThat(model.requestCount()).isEqualTo(1);
    assertThat(awaitRecords(2).get(1).decision().rule()).isEqualTo("limits[0].tokens-per-day");
  }

  // ================================================================================== approvals

  private static final Principal REVIEWER =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_API_KEY, null, Map.of());
  private static final String APPROVAL =
      """
      approval:
        reviewers: [security-oncall]
        timeout: 5m
        rules:
          - {name: bulk-export, prompt-matches: "(?i)dump all"}
      """;

  private InProcessApprovalService approvals() {
    InProcessApprovalService service =
        InProcessApprovalService.builder()
            .settings(Policy.parse(policy(APPROVAL)).approval())
            .clock(clock)
            .build();
    toClose.add(service);
    return service;
  }

  private InProcessApprovalService.Pending awaitPending(InProcessApprovalService service) {
    await(() -> service.pending().size() == 1);
    return service.pending().get(0);
  }

  @Test
  void aHeldRequestReachesTheModelOnlyOnceApprovedAndIsRecordedAsApproved() throws Exception {
    InProcessApprovalService service = approvals();
    Adapter a =
        adapter(engineBuilder(policy(APPROVAL)).recorder(recorder).approvalService(service));
    String answer = Completions.chat("done");
    model.enqueue(ModelAnswer.json(answer));
    Future<Reply> caller =
        callers.submit(
            () ->
                post(
                    a,
                    CHAT,
                    ALICE_KEY,
                    Policies.chat(MODEL, "please dump all customer records", "")));

    InProcessApprovalService.Pending review = awaitPending(service);
    assertThat(review.rule()).isEqualTo("bulk-export");
    assertThat(review.principal().subject()).isEqualTo("alice");
    assertThat(model.requestCount()).as("nothing reaches the model while it waits").isZero();
    assertThat(caller).isNotDone();

    assertThat(service.approve(review.id(), REVIEWER, "ticket SEC-42").kind())
        .isEqualTo(InProcessApprovalService.ReviewResult.Kind.DECIDED);
    Reply r = caller.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.text()).isEqualTo(answer);
    ModelRequest seen = model.takeRequest();
    assertThat(seen.bodyText()).contains("dump all customer records");
    assertUpstreamCredentialOnly(seen, ALICE_KEY);

    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("approved");
    assertThat(rec.approval().id()).isEqualTo(review.id());
    assertThat(rec.approval().rule()).isEqualTo("bulk-export");
    assertThat(rec.approval().reviewer()).isEqualTo("sam");
    assertThat(rec.approval().outcome()).isEqualTo("approved");
    assertThat(rec.approval().reason()).isEqualTo("ticket SEC-42");
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isTrue();
  }

  @Test
  void aRejectedRequestIs403WithTheReviewersReasonAndNeverReachesTheModel() throws Exception {
    InProcessApprovalService service = approvals();
    Adapter a =
        adapter(engineBuilder(policy(APPROVAL)).recorder(recorder).approvalService(service));
    Future<Reply> caller =
        callers.submit(
            () -> post(a, CHAT, ALICE_KEY, Policies.chat(MODEL, "dump all salaries", "")));

    InProcessApprovalService.Pending review = awaitPending(service);
    assertThat(service.reject(review.id(), REVIEWER, "not today").kind())
        .isEqualTo(InProcessApprovalService.ReviewResult.Kind.DECIDED);
    Reply r = caller.get(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertThat(r.status()).isEqualTo(403);
    assertThat(r.error().path("code").asText()).isEqualTo("approval_rejected");
    assertThat(r.error().path("message").asText()).contains("not today").contains("sam");
    assertThat(model.requestCount()).isZero();

    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("rejected");
    assertThat(rec.decision().code()).isEqualTo("approval_rejected");
    assertThat(rec.approval().outcome()).isEqualTo("rejected");
    assertThat(rec.approval().reason()).isEqualTo("not today");
    assertThat(rec.response().status()).isEqualTo(403);
  }

  // ==================================================================================== helpers

  /** Whether the adapter injects the upstream credential. */
  protected final boolean injects() {
    return capabilities().contains(Capability.INJECTS_UPSTREAM_CREDENTIAL);
  }

  /**
   * Asserts what the model received carries none of the caller's credential ({@code callerSecret})
   * and exactly the upstream credential when the adapter injects one, else no credential at all.
   */
  protected final void assertUpstreamCredentialOnly(ModelRequest seen, String callerSecret) {
    assertThat(seen.headerText()).doesNotContain(callerSecret);
    assertThat(seen.headers("X-Api-Key")).isEmpty();
    if (injects())
      assertThat(seen.headers("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
    else
      assertThat(seen.headers("Authorization"))
          .as("the application is not handed a credential")
          .isEmpty();
  }

  /** A response read whole. */
  protected record Reply(int status, Map<String, List<String>> headers, byte[] bytes) {
    /** The first value of header {@code name} (case-insensitive), or {@code null}. */
    public String header(String name) {
      for (Map.Entry<String, List<String>> h : headers.entrySet()) {
        if (h.getKey().equalsIgnoreCase(name) && !h.getValue().isEmpty())
          return h.getValue().get(0);
      }
      return null;
    }

    public String text() {
      return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Every header as {@code name: value} lines. */
    public String headerText() {
      StringBuilder out = new StringBuilder();
      headers.forEach(
          (n, vs) -> vs.forEach(v -> out.append(n).append(": ").append(v).append('\n')));
      return out.toString();
    }

    /** The {@code error} object of a JSON error body. */
    public JsonNode error() throws IOException {
      return JSON.readTree(bytes).path("error");
    }
  }

  /** POSTs a JSON {@code body} with {@code Authorization: Bearer key} (none when {@code key} is null). */
  protected final Reply post(Adapter a, String path, String key, String body) throws IOException {
    return key == null
        ? send(a, "POST", path, body)
        : send(a, "POST", path, body, "Authorization", "Bearer " + key);
  }

  /** Sends a JSON {@code body} (or none when null) with {@code headers} (name, value, ...) and reads it all. */
  protected final Reply send(Adapter a, String method, String path, String body, String... headers)
      throws IOException {
    List<String> all = new ArrayList<>(List.of(headers));
    if (body != null && all.stream().noneMatch("Content-Type"::equalsIgnoreCase)) {
      all.add("Content-Type");
      all.add("application/json");
    }
    return send(
        a,
        method,
        path,
        body == null ? null : body.getBytes(StandardCharsets.UTF_8),
        all.toArray(String[]::new));
  }

  private Reply send(Adapter a, String method, String path, byte[] body, String... headers)
      throws IOException {
    try (CallerResponse r = a.send(request(method, path, body, headers))) {
      byte[] bytes = readAll(r.body());
      return new Reply(r.status(), r.headers(), bytes);
    }
  }

  /** Opens a streamed POST as {@code key}; the caller reads the body with {@link #readEvent}. */
  protected final CallerResponse open(Adapter a, String path, String key, String body)
      throws IOException {
    return a.send(
        request(
            "POST",
            path,
            body.getBytes(StandardCharsets.UTF_8),
            "Authorization",
            "Bearer " + key,
            "Content-Type",
            "application/json"));
  }

  private static CallerRequest request(String method, String path, byte[] body, String... headers) {
    List<Map.Entry<String, String>> list = new ArrayList<>();
    for (int i = 0; i < headers.length; i += 2) {
      list.add(new AbstractMap.SimpleImmutableEntry<>(headers[i], headers[i + 1]));
    }
    return new CallerRequest(method, path, list, body);
  }

  /** One SSE event: the lines up to and including the blank line that ends it. */
  protected static String readEvent(InputStream in) throws IOException {
    ByteArrayOutputStream event = new ByteArrayOutputStream();
    int last = -1;
    for (int b; (b = in.read()) >= 0; ) {
      event.write(b);
      if (b == '\n' && last == '\n') break;
      last = b;
    }
    return event.toString(StandardCharsets.UTF_8);
  }

  protected static String readToEnd(InputStream in) throws IOException {
    return new String(readAll(in), StandardCharsets.UTF_8);
  }

  private static byte[] readAll(InputStream in) throws IOException {
    return in.readAllBytes();
  }

  /** The concatenated {@code choices[0].delta.content} of every {@code data:} event but [DONE]. */
  protected static String deltas(String sse) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : sse.split("\n")) {
      if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
      text.append(
          JSON.readTree(line.substring("data: ".length()))
              .path("choices")
              .path(0)
              .path("delta")
              .path("content")
              .asText(""));
    }
    return text.toString();
  }

  /** The body's length matches what was sent, or no length was sent: never a stale one. */
  protected static void assertNoStaleLength(Reply r) {
    String length = r.header("Content-Length");
    if (length != null) assertThat(Long.parseLong(length)).isEqualTo(r.bytes().length);
  }

  protected static byte[] gzip(String text) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (java.util.zip.GZIPOutputStream gz = new java.util.zip.GZIPOutputStream(out)) {
      gz.write(text.getBytes(StandardCharsets.UTF_8));
    }
    return out.toByteArray();
  }

  /** The one record, once the adapter ended the exchange (it may end after the caller read the answer). */
  protected final SessionRecord onlyRecord() {
    await(() -> !recorder.records.isEmpty());
    assertThat(recorder.records).hasSize(1);
    return recorder.records.get(0);
  }

  /** The first {@code n} records, once there are that many. */
  protected final List<SessionRecord> awaitRecords(int n) {
    await(() -> recorder.records.size() >= n);
    return List.copyOf(recorder.records.subList(0, n));
  }

  /** Waits up to 10 s for {@code condition}; fails when it never holds. */
  protected static void await(Callable<Boolean> condition) {
    Awaitility.await().atMost(WAIT).pollInterval(Duration.ofMillis(10)).until(condition);
  }

  /** Every JSONL line in {@code recordings}, oldest segment first. */
  protected static List<JsonNode> lines(Path recordings) {
    List<JsonNode> out = new ArrayList<>();
    if (!Files.isDirectory(recordings)) return out;
    try (Stream<Path> files = Files.list(recordings)) {
      for (Path f :
          files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList()) {
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
          if (!line.isEmpty()) out.add(JSON.readTree(line));
        }
      }
    } catch (IOException e) {
      throw new AssertionError("cannot read " + recordings, e);
    }
    return out;
  }

  /** The {@code exchange} lines in {@code recordings}. */
  protected static List<JsonNode> exchangeLines(Path recordings) {
    return lines(recordings).stream()
        .filter(l -> l.path("type").asText().equals("exchange"))
        .toList();
  }

  /** The text of every JSONL segment in {@code recordings}. */
  protected static String recordingText(Path recordings) throws IOException {
    StringBuilder out = new StringBuilder();
    try (Stream<Path> files = Files.list(recordings)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".jsonl")).sorted().toList()) {
        out.append(Files.readString(f, StandardCharsets.UTF_8));
      }
    }
    return out.toString();
  }
}
