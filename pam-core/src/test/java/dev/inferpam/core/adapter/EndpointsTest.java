package dev.inferpam.core.adapter;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.testsupport.MutableClock;
import dev.inferpam.testsupport.Policies;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The /pam endpoints without any HTTP server: what {@link Endpoints} answers (status, headers,
 * body bytes) for each endpoint and each refusal, when it reads a body, and which paths belong to
 * it. The gateway's {@code EndpointsParityTest} checks the same answers against Jetty.
 */
class EndpointsTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String ALICE = "alice-key-1"; // ml: makes requests
  static final String BOB = "bob-key-1"; // security-oncall: reviews
  static final String DAVE = "dave-key-1"; // both
  static final Instant T0 = Instant.parse("2026-11-28T12:00:30Z");
  static final String DUMP_ALL =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"dump all rows\"}]}";

  static final String POLICY =
      """
      version: 1
      identity:
        api-keys:
      """
          + Policies.apiKey("alice", ALICE, "ml")
          + Policies.apiKey("bob", BOB, "security-oncall")
          + Policies.apiKey("dave", DAVE, "ml", "security-oncall")
          + """
          entitlements:
            - groups: [ml]
              models: ["llama-*"]
              operations: [chat]
          limits:
            - groups: [ml]
              models: ["llama-*"]
              operations: [chat]
              requests-per-minute: 5
          approval:
            reviewers: [security-oncall]
            rules:
              - name: bulk-export
                prompt-matches: '(?i)\\bdump all\\b'
          """;

  /** The policy without an approval section. */
  static final String NO_APPROVAL = POLICY.substring(0, POLICY.indexOf("approval:"));

  final MutableClock clock = new MutableClock(T0);
  final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : toClose) c.close();
  }

  PamEngine engine(String yaml) {
    return engine(PamEngine.builder().policy(Policy.parse(yaml)));
  }

  PamEngine engine(PamEngine.Builder builder) {
    PamEngine engine =
        builder.clock(clock).credentialProvider(() -> new Credential("X-Up", "up")).build();
    toClose.add(engine);
    return engine;
  }

  static RequestHead head(String method, String rawPath, String key, String... headers) {
    return headWithQuery(method, rawPath, null, key, headers);
  }

  static RequestHead headWithQuery(
      String method, String rawPath, String query, String key, String... headers) {
    Map<String, List<String>> map = new LinkedHashMap<>();
    if (key != null) map.put("Authorization", List.of("Bearer " + key));
    for (int i = 0; i < headers.length; i += 2) map.put(headers[i], List.of(headers[i + 1]));
    return new RequestHead(method, rawPath, query, map, "127.0.0.1");
  }

  static JsonNode json(EndpointResponse r) throws IOException {
    return JSON.readTree(r.body());
  }

  static void assertError(EndpointResponse r, int status, String code, String message)
      throws IOException {
    assertThat(r.status()).as(r.bodyText()).isEqualTo(status);
    assertThat(r.headers())
        .containsEntry("Content-Type", "application/json")
        .containsEntry("Cache-Control", "no-store");
    JsonNode error = json(r).path("error");
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo(code);
    assertThat(error.path("message").asText()).isEqualTo(message);
    assertThat(error.path("request_id").isNull()).isTrue();
  }

  /** A body reader that fails the test when called. */
  static Endpoints.BodyReader unread() {
    return limit -> {
      throw new AssertionError("the body was read");
    };
  }

  /** Holds a request of {@code key} for review; returns its approval id. */
  static String hold(PamEngine engine, String key) {
    byte[] body = DUMP_ALL.getBytes(StandardCharsets.UTF_8);
    Verdict v =
        engine.begin(
            head("POST", "/v1/chat/completions", key, "Content-Type", "application/json"),
            new ByteArrayInputStream(body),
            body.length);
    assertThat(v).isInstanceOf(Verdict.Held.class);
    Principal reviewer =
        new Principal("reviewer", Set.of("security-oncall"), Principal.VIA_API_KEY, null, Map.of());
    List<ApprovalService.Pending> pending = engine.approvalService().pending(reviewer);
    return pending.get(pending.size() - 1).id();
  }

  // --- health, not_found, the bare /pam
  // -----------------------------------------------------------

  @Test
  void healthAnswersGetAndHeadWithoutACredential() throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    for (String method : List.of("GET", "HEAD")) {
      EndpointResponse r = endpoints.handle(head(method, "/pam/health", null), unread());
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.headers())
          .containsExactly(
              Map.entry("Content-Type", "application/json"),
              Map.entry("Cache-Control", "no-store"));
      assertThat(r.bodyText()).isEqualTo("{\"status\":\"ok\"}");
    }
    // Encoded letters are the same path; a query changes nothing.
    assertThat(
            endpoints
                .handle(headWithQuery("GET", "/p%61m/h%65alth", "x=1", null), unread())
                .status())
        .isEqualTo(200);
  }

  @ParameterizedTest
  @ValueSource(strings = {"POST", "PUT", "DELETE", "get", "OPTIONS"})
  void healthRefusesOtherMethodsWithAllow(String method) throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    EndpointResponse r = endpoints.handle(head(method, "/pam/health", null), unread());
    assertError(r, 405, "method_not_allowed", "use GET");
    assertThat(r.headers()).containsEntry("Allow", "GET, HEAD");
    assertThat(r.headers().keySet()).containsExactly("Allow", "Content-Type", "Cache-Control");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/pam/",
        "/pam/nothing",
        "/pam/health/",
        "/pam/quota/",
        "/pam/quota/alice",
        "/pam/approvalsx",
        "/pam/%C3%A9",
        "/pam/health%3F"
      })
  void otherPathsAre404WithoutACredential(String path) throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    EndpointResponse r = endpoints.handle(head("GET", path, null), unread());
    assertError(r, 404, "not_found", "no such endpoint");
    assertThat(r.headers()).doesNotContainKey("WWW-Authenticate");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      nullValues = "-",
      value = {
        "/pam|-|/pam/",
        "/pam|x=1|/pam/?x=1",
        "/pam|''|/pam/?",
        "/p%61m|-|/pam/",
        "/x/../pam|-|/pam/",
        "/pam;v=1|q|/pam/;v=1?q",
      })
  void theBarePathIsRedirectedAsTheContainerDoes(String path, String query, String location)
      throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    for (String method : List.of("GET", "POST", "HEAD")) {
      EndpointResponse r = endpoints.handle(headWithQuery(method, path, query, null), unread());
      assertThat(r.status()).isEqualTo(301);
      assertThat(r.headers()).containsExactly(Map.entry("Location", location));
      assertThat(r.body()).isEmpty();
    }
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/pam/../pam/health|dot segment in path",
        "/pam/./health|dot segment in path",
        "/pam//health|empty segment (\"//\") in path",
        "/pam/health;x|\";\" in path",
        "/pam;x/health|\";\" in path",
        "/pam/%2e/health|encoded \".\" in path",
        "/pam/a%2fb|encoded \"/\" in path",
        "/pam/%25|encoded \"%\" in path (double encoding)",
        "/pam/%u0041|\"%\" not followed by two hex digits in path",
        "/pam/approvals//|trailing \"/\" in path",
      })
  void ambiguousPathsAreBadPathBeforeAnythingElse(String path, String why) throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    for (String key : new String[] {null, BOB}) {
      EndpointResponse r = endpoints.handle(head("POST", path, key), unread());
      assertError(r, 400, "bad_path", "ambiguous request path: " + why);
      assertThat(r.headers().keySet()).containsExactly("Content-Type", "Cache-Control");
    }
  }

  // --- reviewer endpoints
  // -------------------------------------------------------------------------

  @Test
  void reviewerEndpointsNeedACredentialAndChallenge() throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    for (String path : List.of("/pam/approvals", "/pam/approvals/abc/approve", "/pam/approvals/")) {
      EndpointResponse r = endpoints.handle(head("POST", path, null), unread());
      assertError(r, 401, "unauthenticated", "authentication failed: no credential");
      assertThat(r.headers().get("WWW-Authenticate")).startsWith("Bearer");
      assertThat(r.headers()).containsEntry("Cache-Control", "no-store");
      r = endpoints.handle(head("GET", path, "wrong-key"), unread());
      assertError(r, 401, "unauthenticated", "authentication failed: unknown api key");
    }
  }

  @Test
  void listShowsPendingReviewsToReviewersOnly() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    assertThat(endpoints.handle(head("GET", "/pam/approvals", BOB), unread()).bodyText())
        .isEqualTo("{\"approvals\":[]}");
    String id = hold(engine, ALICE);

    EndpointResponse r = endpoints.handle(head("GET", "/pam/approvals", BOB), unread());
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.headers())
        .containsExactly(
            Map.entry("Content-Type", "application/json"), Map.entry("Cache-Control", "no-store"));
    JsonNode item = json(r).path("approvals").get(0);
    assertThat(item.path("id").asText()).isEqualTo(id);
    assertThat(item.path("principal").asText()).isEqualTo("alice");
    assertThat(item.path("rule").asText()).isEqualTo("bulk-export");
    assertThat(item.path("model").asText()).isEqualTo("llama-3");
    assertThat(item.path("operation").asText()).isEqualTo("chat");
    assertThat(item.path("excerpt").asText()).isEqualTo("dump all rows");
    assertThat(item.path("created").asText()).isEqualTo(T0.toString());
    assertThat(r.bodyText()).doesNotContain(ALICE);

    // Methods are compared case-insensitively here (not on health).
    assertThat(endpoints.handle(head("get", "/pam/approvals", BOB), unread()).status())
        .isEqualTo(200);
    assertError(
        endpoints.handle(head("GET", "/pam/approvals", ALICE), unread()),
        403,
        "not_a_reviewer",
        "only members of the reviewer groups may list or decide approvals");
    EndpointResponse post = endpoints.handle(head("POST", "/pam/approvals", BOB), unread());
    assertError(post, 405, "method_not_allowed", "use GET");
    assertThat(post.headers()).containsEntry("Allow", "GET");
  }

  @Test
  void approveAndRejectDecideWithAnOptionalReason() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String first = hold(engine, ALICE);
    clock.advance(java.time.Duration.ofSeconds(1));

    EndpointResponse r =
        endpoints.handle(
            head("POST", "/pam/approvals/" + first + "/approve", BOB),
            "{\"reason\":\"ticket 42\"}".getBytes(StandardCharsets.UTF_8));
    assertThat(r.status()).as(r.bodyText()).isEqualTo(200);
    assertThat(r.headers())
        .containsExactly(
            Map.entry("Content-Type", "application/json"), Map.entry("Cache-Control", "no-store"));
    JsonNode decision = json(r);
    assertThat(decision.path("id").asText()).isEqualTo(first);
    assertThat(decision.path("status").asText()).isEqualTo("approved");
    assertThat(decision.path("reviewer").asText()).isEqualTo("bob");
    assertThat(decision.path("reason").asText()).isEqualTo("ticket 42");
    assertThat(decision.path("decided").asText()).isEqualTo(T0.plusSeconds(1).toString());

    // Decided already: 409, whichever way.
    assertError(
        endpoints.handle(head("POST", "/pam/approvals/" + first + "/reject", BOB), (byte[]) null),
        409,
        "already_decided",
        "approval " + first + " was already approved");

    String second = hold(engine, ALICE);
    r = endpoints.handle(head("POST", "/pam/approvals/" + second + "/reject", BOB), new byte[0]);
    assertThat(json(r).path("status").asText()).isEqualTo("rejected");
    assertThat(json(r).path("reason").isNull()).isTrue();
  }

  @Test
  void decisionRefusalsInTheirOrder() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String own = hold(engine, DAVE);
    String path = "/pam/approvals/" + own + "/approve";

    EndpointResponse get = endpoints.handle(head("GET", path, BOB), unread());
    assertError(get, 405, "method_not_allowed", "use POST");
    assertThat(get.headers()).containsEntry("Allow", "POST");
    // Not a reviewer: refused before the id is looked up, and before the body is read.
    assertError(
        endpoints.handle(head("POST", "/pam/approvals/nope/approve", ALICE), unread()),
        403,
        "not_a_reviewer",
        "only members of the reviewer groups may list or decide approvals");
    assertError(
        endpoints.handle(head("POST", path, DAVE), new byte[0]),
        403,
        "self_approval",
        "a reviewer cannot decide their own request");
    assertError(
        endpoints.handle(head("POST", "/pam/approvals/nope/reject", BOB), new byte[0]),
        404,
        "not_found",
        "no pending approval nope");
    for (String sub :
        List.of(
            "/pam/approvals/",
            "/pam/approvals/x",
            "/pam/approvals/x/y/approve",
            "/pam/approvals/x/accept",
            "/pam/approvals/x%21/approve")) {
      assertError(
          endpoints.handle(head("POST", sub, BOB), unread()),
          404,
          "not_found",
          "no such reviewer endpoint");
    }
    // Still pending: nothing above decided it.
    assertThat(endpoints.handle(head("GET", "/pam/approvals", BOB), unread()).bodyText())
        .contains(own);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "not json|request body is not valid JSON",
        "[]|request body must be a JSON object like {\"reason\":\"...\"}",
        "{\"reason\":1}|\"reason\" must be a string",
        "{\"reason\":\"a\",\"reason\":\"b\"}|request body is not valid JSON",
        "{} {}|request body is not valid JSON",
      })
  void badDecisionBodiesAre400(String body, String message) throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String id = hold(engine, ALICE);
    assertError(
        endpoints.handle(
            head("POST", "/pam/approvals/" + id + "/approve", BOB),
            body.getBytes(StandardCharsets.UTF_8)),
        400,
        "bad_request",
        message);
  }

  @Test
  void reasonsTooLongAndBodiesNotUtf8Are400() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String path = "/pam/approvals/" + hold(engine, ALICE) + "/approve";
    byte[] tooLong =
        ("{\"reason\":\"" + "x".repeat(ApprovalService.MAX_REASON_CHARS + 1) + "\"}")
            .getBytes(StandardCharsets.UTF_8);
    assertThat(tooLong.length).isLessThanOrEqualTo(Endpoints.MAX_BODY_BYTES);
    assertError(
        endpoints.handle(head("POST", path, BOB), tooLong),
        400,
        "bad_request",
        "\"reason\" is longer than " + ApprovalService.MAX_REASON_CHARS + " chars");
    assertError(
        endpoints.handle(head("POST", path, BOB), new byte[] {'{', '"', (byte) 0xC3, '"', '}'}),
        400,
        "bad_request",
        "request body is not valid UTF-8");
    // The longest reason is taken.
    String longest = "x".repeat(ApprovalService.MAX_REASON_CHARS);
    EndpointResponse r =
        endpoints.handle(
            head("POST", path, BOB),
            ("{\"reason\":\"" + longest + "\"}").getBytes(StandardCharsets.UTF_8));
    assertThat(json(r).path("reason").asText()).isEqualTo(longest);
  }

  @Test
  void bodiesOverTheLimitAre413AndADeclaredOneIsNotRead() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String path = "/pam/approvals/" + hold(engine, ALICE) + "/approve";
    String message = "request body is larger than " + Endpoints.MAX_BODY_BYTES + " bytes";

    // Declared too large: answered without reading.
    assertError(
        endpoints.handle(
            head("POST", path, BOB, "Content-Length", String.valueOf(Endpoints.MAX_BODY_BYTES + 1)),
            unread()),
        413,
        "body_too_large",
        message);
    // Not declared (chunked), read too large: the reader is asked for one byte over the limit.
    AtomicInteger asked = new AtomicInteger();
    assertError(
        endpoints.handle(
            head("POST", path, BOB),
            limit -> {
              asked.set(limit);
              return new byte[limit];
            }),
        413,
        "body_too_large",
        message);
    assertThat(asked).hasValue(Endpoints.MAX_BODY_BYTES + 1);
    // A front's array longer than that is the same.
    assertError(
        endpoints.handle(head("POST", path, BOB), new byte[5000]), 413, "body_too_large", message);
    // The limit itself is fine (then it is not JSON).
    assertThat(
            endpoints.handle(head("POST", path, BOB), new byte[Endpoints.MAX_BODY_BYTES]).status())
        .isEqualTo(400);
    // Unauthenticated, not a reviewer, wrong method: 401/403/405 first, the body never read.
    assertThat(
            endpoints
                .handle(head("POST", path, null, "Content-Length", "99999"), unread())
                .status())
        .isEqualTo(401);
    assertThat(
            endpoints
                .handle(head("POST", path, ALICE, "Content-Length", "99999"), unread())
                .status())
        .isEqualTo(403);
    assertThat(
            endpoints.handle(head("PUT", path, BOB, "Content-Length", "99999"), unread()).status())
        .isEqualTo(405);
  }

  @Test
  void aReaderThatFailsFailsTheCall() {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String path = "/pam/approvals/" + hold(engine, ALICE) + "/approve";
    assertThatThrownBy(
            () ->
                endpoints.handle(
                    head("POST", path, BOB),
                    limit -> {
                      throw new IOException("client went away");
                    }))
        .isInstanceOf(IOException.class)
        .hasMessage("client went away");
  }

  @Test
  void withoutReviewsThereAreNoReviewerEndpoints() throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(NO_APPROVAL));
    assertError(
        endpoints.handle(head("GET", "/pam/approvals", BOB), unread()),
        404,
        "not_found",
        "no such endpoint");
    assertError(
        endpoints.approvals(head("GET", "/pam/approvals", null), null, unread()),
        404,
        "not_found",
        "no such endpoint");
  }

  @Test
  void aBugIsAnswered500WithoutDetails() throws IOException {
    ApprovalService broken =
        (ApprovalService)
            Proxy.newProxyInstance(
                ApprovalService.class.getClassLoader(),
                new Class<?>[] {ApprovalService.class},
                (proxy, method, args) ->
                    switch (method.getName()) {
                      case "isReviewer" -> throw new IllegalStateException("secret detail");
                      case "close" -> null;
                      case "toString" -> "broken";
                      case "hashCode" -> 0;
                      case "equals" -> proxy == args[0];
                      default -> throw new UnsupportedOperationException(method.getName());
                    });
    Endpoints endpoints =
        Endpoints.forEngine(
            engine(PamEngine.builder().policy(Policy.parse(POLICY)).approvalService(broken)));
    EndpointResponse r = endpoints.handle(head("GET", "/pam/approvals", BOB), unread());
    assertError(r, 500, "internal_error", "the request could not be handled");
    assertThat(r.bodyText()).doesNotContain("secret detail").doesNotContain("IllegalState");
  }

  @Test
  void anApprovalServiceThatCannotReachItsStoreIs503ApprovalUnavailable() throws IOException {
    // a shared store (PostgreSQL) that is down: its calls fail, its reviewers are still reviewers
    ApprovalService down =
        (ApprovalService)
            Proxy.newProxyInstance(
                ApprovalService.class.getClassLoader(),
                new Class<?>[] {ApprovalService.class},
                (proxy, method, args) ->
                    switch (method.getName()) {
                      case "isReviewer" -> true;
                      case "close" -> null;
                      case "toString" -> "down";
                      case "hashCode" -> 0;
                      case "equals" -> proxy == args[0];
                      default ->
                          throw new IllegalStateException(
                              "approvals unavailable: jdbc:postgresql://db?password=pw-secret");
                    });
    Endpoints endpoints =
        Endpoints.forEngine(
            engine(PamEngine.builder().policy(Policy.parse(POLICY)).approvalService(down)));
    for (EndpointResponse r :
        List.of(
            endpoints.handle(head("GET", "/pam/approvals", BOB), unread()),
            endpoints.handle(head("POST", "/pam/approvals/apr-1/approve", BOB), new byte[0]),
            endpoints.handle(head("POST", "/pam/approvals/apr-1/reject", BOB), new byte[0]))) {
      assertError(
          r, 503, "approval_unavailable", "the approval service is unavailable; retry later");
      assertThat(r.headers()).containsEntry("Retry-After", "1");
      assertThat(r.bodyText()).doesNotContain("pw-secret").doesNotContain("postgresql");
    }
  }

  // --- quota
  // --------------------------------------------------------------------------------------

  @Test
  void quotaShowsTheCallersOwnBudgets() throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    EndpointResponse r = endpoints.handle(head("GET", "/pam/quota", ALICE), unread());
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.headers())
        .containsExactly(
            Map.entry("Content-Type", "application/json"), Map.entry("Cache-Control", "no-store"));
    assertThat(r.bodyText())
        .isEqualTo(
            "{\"principal\":\"alice\",\"limits\":[{\"rule\":\"limits[0]\",\"models\":[\"llama-*\"],"
                + "\"operations\":[\"chat\"],\"requests_per_minute\":{\"limit\":5,\"used\":0,"
                + "\"remaining\":5,\"resets\":\"2026-11-28T12:01:00Z\"}}]}");
    assertThat(endpoints.handle(head("GET", "/pam/quota", BOB), unread()).bodyText())
        .isEqualTo("{\"principal\":\"bob\",\"limits\":[]}");
    assertThat(endpoints.handle(head("get", "/pam/quota", BOB), unread()).status()).isEqualTo(200);
  }

  @Test
  void quotaRefusals() throws IOException {
    Endpoints endpoints = Endpoints.forEngine(engine(POLICY));
    EndpointResponse anonymous = endpoints.handle(head("GET", "/pam/quota", null), unread());
    assertError(anonymous, 401, "unauthenticated", "authentication failed: no credential");
    assertThat(anonymous.headers()).containsKey("WWW-Authenticate");
    EndpointResponse post = endpoints.handle(head("POST", "/pam/quota", ALICE), unread());
    assertError(post, 405, "method_not_allowed", "use GET");
    assertThat(post.headers()).containsEntry("Allow", "GET");
    // Routed by itself (a servlet mapped with a wildcard): a sub-path is 404 after identity.
    assertError(
        endpoints.quota(head("GET", "/pam/quota/x", ALICE), "/x"),
        404,
        "not_found",
        "no such endpoint");
    assertThat(endpoints.quota(head("GET", "/pam/quota/x", null), "/x").status()).isEqualTo(401);
    assertError(
        endpoints.quota(head("GET", "/pam/quota/.", ALICE), "/"),
        400,
        "bad_path",
        "ambiguous request path: dot segment in path");
  }

  @Test
  void aFailingQuotaStoreIs503() throws IOException {
    QuotaStore failing =
        new QuotaStore() {
          @Override
          public long addIfWithin(
              String key, long window, long amount, long limit, Instant windowEnd) {
            throw new IllegalStateException("redis://secret@host down");
          }

          @Override
          public long add(String key, long window, long amount, Instant windowEnd) {
            throw new IllegalStateException("redis://secret@host down");
          }

          @Override
          public long get(String key, long window) {
            throw new IllegalStateException("redis://secret@host down");
          }
        };
    Endpoints endpoints =
        Endpoints.forEngine(
            engine(PamEngine.builder().policy(Policy.parse(POLICY)).quotaStore(failing)));
    EndpointResponse r = endpoints.handle(head("GET", "/pam/quota", ALICE), unread());
    assertError(r, 503, "quota_unavailable", "quota state is unavailable");
    assertThat(r.bodyText()).doesNotContain("secret");
  }

  // --- servlet-style entry points
  // -----------------------------------------------------------------

  @Test
  void approvalsByItselfRoutesBySubPath() throws IOException {
    PamEngine engine = engine(POLICY);
    Endpoints endpoints = Endpoints.forEngine(engine);
    String id = hold(engine, ALICE);
    // The raw path is only checked; the sub-path is what routes (a servlet's path info).
    RequestHead list = head("GET", "/app/reviews", BOB);
    assertThat(json(endpoints.approvals(list, null, unread())).path("approvals")).hasSize(1);
    assertThat(json(endpoints.approvals(list, "", unread())).path("approvals")).hasSize(1);
    EndpointResponse decided =
        endpoints.approvals(
            head("POST", "/app/reviews/x", BOB), "/" + id + "/reject", limit -> new byte[0]);
    assertThat(json(decided).path("status").asText()).isEqualTo("rejected");
  }

  // --- routing
  // ------------------------------------------------------------------------------------

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/pam",
        "/pam/",
        "/pam/health",
        "/pam/health/",
        "/pam/anything/at/all",
        "/p%61m/health",
        "/%70am",
        "/pa%6D/health",
        "/pam;x",
        "/pam;x/health",
        "/pam/health;x",
        "/pam//health",
        "/pam/./health",
        "/pam/%2e/health",
        "/x/../pam/health",
        "/x/%2e%2e/pam",
        "/pam/../pam/health",
        "/pam/approvals/..;/v1/models",
        "/pam/%u0041",
        "/%u0070am/health",
        "/pam/%C3%A9",
        "/pam/a%2fb",
      })
  void endpointPaths(String path) {
    assertThat(Endpoints.isEndpointPath(path)).isTrue();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "pam/health",
        "/",
        "/pamx",
        "/PAM/health",
        "/Pam",
        "/v1/pam/health",
        "//pam/health",
        "/pam%2fhealth",
        "/pam%2Fhealth",
        "/pam%3bx/health",
        "/pam/..",
        "/pam/.%2e",
        "/pam/%2e%2e/v1/chat/completions",
        "/x;a/../pam",
        "/;x/pam/health",
        "/pam/../..",
        "/..",
        "/pam/%00",
        "/pam%00/health",
        "/pam/%zz",
        "/pam/%4",
        "/pam/%ff",
        "/pam/%C3",
        "/pam/%u00",
      })
  void otherPaths(String path) {
    assertThat(Endpoints.isEndpointPath(path)).isFalse();
  }

  @Test
  void nullIsNoEndpointPath() {
    assertThat(Endpoints.isEndpointPath(null)).isFalse();
  }
}
