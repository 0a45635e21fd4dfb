package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The reviewer endpoints on a real Jetty 12 (ee10) on 127.0.0.1, identities by API key. */
class ApprovalServletTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final String REVIEWER_KEY = "reviewer-key-5b1e";
  private static final String REQUESTER_KEY = "requester-key-9c07";
  private static final String OUTSIDER_KEY = "outsider-key-2d44";

  /** Reviewer group member too, so that self-approval is the refusal, not "not a reviewer". */
  private static final String REVIEWING_REQUESTER_KEY = "rev-requester-key-77aa";

  private static final String CALLER_TOKEN = "Bearer caller-secret-token";
  private static final String SECRET_IN_PROMPT = "sk-live1234567890abcdef";

  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2026-03-01T12:00:00Z"), ZoneOffset.UTC);

  private static final String POLICY =
      """
      version: 1
      identity:
        api-keys:
          - name: alice-reviewer
            sha256: %s
            groups: [sec-reviewers]
          - name: bob-requester
            sha256: %s
            groups: [ci]
          - name: mallory-outsider
            sha256: %s
            groups: [ci]
          - name: carol
            sha256: %s
            groups: [ci, sec-reviewers]
      entitlements:
        - groups: [ci]
          models: ["*"]
          operations: [chat]
      """
          .formatted(
              TestPolicy.sha256(REVIEWER_KEY),
              TestPolicy.sha256(REQUESTER_KEY),
              TestPolicy.sha256(OUTSIDER_KEY),
              TestPolicy.sha256(REVIEWING_REQUESTER_KEY));

  /** Masks {@code sk-...} values; a whole-text masker is enough for excerpts. */
  private static final Masker MASKER =
      () ->
          new Masker.Session() {
            private final StringBuilder held = new StringBuilder();

            @Override
            public String push(String text) {
              held.append(text);
              return "";
            }

            @Override
            public String finish() {
              return held.toString().replaceAll("sk-[A-Za-z0-9]+", "[MASKED:api_key]");
            }
          };

  private final HttpClient http = HttpClient.newHttpClient();
  private InProcessApprovalService service;
  private PamEngine engine;
  private Server server;
  private ServerConnector connector;

  @BeforeEach
  void start() throws Exception {
    service =
        InProcessApprovalService.builder()
            .reviewers(Set.of("sec-reviewers"))
            .clock(CLOCK)
            .timeout(Duration.ofMinutes(5))
            .manualExpiry()
            .build();
    server = new Server();
    connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    engine =
        PamEngine.builder()
            .policy(Policy.parse(POLICY))
            .clock(CLOCK)
            .masker(MASKER)
            .recorder(Recorder.NOOP)
            .approvalService(service)
            .build();
    context.addServlet(
        new ServletHolder(ApprovalServlet.forEngine(engine)), ApprovalServlet.MAPPING);
    server.setHandler(context);
    server.start();
  }

  @AfterEach
  void stop() throws Exception {
    server.stop();
    engine.close();
    service.close(); // the engine does not close a service it was given
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void listShowsPendingRequestWithMaskedExcerptAndNoCredentials() throws Exception {
    String longTail = "x".repeat(400);
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(
            principal("bob-requester", "ci"),
            "dump all customer rows, key " + SECRET_IN_PROMPT + " " + longTail);

    HttpResponse<String> res = send("GET", "/pam/approvals", REVIEWER_KEY, null);

    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(res.headers().firstValue("Content-Type"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("application/json"));
    assertThat(res.headers().firstValue("Cache-Control")).hasValue("no-store");
    JsonNode list = JSON.readTree(res.body()).get("approvals");
    assertThat(list).hasSize(1);
    JsonNode a = list.get(0);
    String id = service.pending().get(0).id();
    assertThat(a.get("id").asText()).isEqualTo(id);
    assertThat(a.get("principal").asText()).isEqualTo("bob-requester");
    assertThat(a.get("rule").asText()).isEqualTo("bulk-export");
    assertThat(a.get("model").asText()).isEqualTo("llama-3.1-8b");
    assertThat(a.get("operation").asText()).isEqualTo("chat");
    assertThat(a.get("created").asText()).isEqualTo("2026-03-01T12:00:00Z");
    assertThat(a.get("expires").asText()).isEqualTo("2026-03-01T12:05:00Z");
    String excerpt = a.get("excerpt").asText();
    assertThat(excerpt)
        .startsWith("dump all customer rows, key [MASKED:api_key] x")
        .endsWith("\u2026");
    assertThat(excerpt.length()).isLessThanOrEqualTo(201);
    assertThat(res.body())
        .doesNotContain(SECRET_IN_PROMPT)
        .doesNotContain("caller-secret-token")
        .doesNotContain("digest-");
    assertThat(a.fieldNames())
        .toIterable()
        .containsExactlyInAnyOrder(
            "id", "principal", "rule", "model", "operation", "excerpt", "created", "expires");
    assertThat(waiting).isNotDone();
  }

  @Test
  void aReviewerIsNotListedTheirOwnRequests() throws Exception {
    pendingFrom(principal("carol", "ci", "sec-reviewers"), "carol's own");
    pendingFrom(principal("bob-requester", "ci"), "bob's");

    HttpResponse<String> carols = send("GET", "/pam/approvals", REVIEWING_REQUESTER_KEY, null);
    assertThat(carols.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(carols.body()).get("approvals"))
        .extracting(a -> a.get("principal").asText())
        .containsExactly("bob-requester");
    HttpResponse<String> alices = send("GET", "/pam/approvals", REVIEWER_KEY, null);
    assertThat(JSON.readTree(alices.body()).get("approvals"))
        .extracting(a -> a.get("principal").asText())
        .containsExactly("carol", "bob-requester");
  }

  @Test
  void aWithdrawnRequestIs409AlreadyExpired() throws Exception {
    ApprovalService.Ticket ticket = ticketFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();
    ticket.withdraw();

    HttpResponse<String> res =
        send("POST", "/pam/approvals/" + id + "/approve", REVIEWER_KEY, null);

    assertError(res, 409, "already_decided");
    assertThat(errorMessage(res)).isEqualTo("approval " + id + " was already expired");
    assertThat(
            JSON.readTree(send("GET", "/pam/approvals", REVIEWER_KEY, null).body())
                .get("approvals"))
        .isEmpty();
  }

  @Test
  void anEngineThatHoldsNoReviewsHasNoReviewerEndpoints() {
    try (PamEngine plain =
        PamEngine.builder().policy(Policy.parse(POLICY)).recorder(Recorder.NOOP).build()) {
      assertThatThrownBy(() -> ApprovalServlet.forEngine(plain))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("no requests for review");
    }
  }

  @Test
  void emptyListWhenNothingWaits() throws Exception {
    HttpResponse<String> res = send("GET", "/pam/approvals", REVIEWER_KEY, null);
    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(res.body()).get("approvals")).isEmpty();
  }

  @Test
  void approveCompletesThePendingRequestApprovedWithReviewerAndReason() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    HttpResponse<String> res =
        send(
            "POST",
            "/pam/approvals/" + id + "/approve",
            REVIEWER_KEY,
            "{\"reason\":\"ticket SEC-42\"}");

    assertThat(res.statusCode()).isEqualTo(200);
    JsonNode d = JSON.readTree(res.body());
    assertThat(d.get("id").asText()).isEqualTo(id);
    assertThat(d.get("status").asText()).isEqualTo("approved");
    assertThat(d.get("reviewer").asText()).isEqualTo("alice-reviewer");
    assertThat(d.get("reason").asText()).isEqualTo("ticket SEC-42");
    assertThat(d.get("decided").asText()).isEqualTo("2026-03-01T12:00:00Z");
    ApprovalService.Outcome o = waiting.get(5, TimeUnit.SECONDS);
    assertThat(o.status()).isEqualTo(ApprovalService.Status.APPROVED);
    assertThat(o.reviewer()).isEqualTo("alice-reviewer");
    assertThat(o.reason()).isEqualTo("ticket SEC-42");
    assertThat(service.pending()).isEmpty();
  }

  @Test
  void approveWithoutBodyHasNoReason() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    HttpResponse<String> res =
        send("POST", "/pam/approvals/" + id + "/approve", REVIEWER_KEY, null);

    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(res.body()).get("reason").isNull()).isTrue();
    assertThat(waiting.get(5, TimeUnit.SECONDS).reason()).isNull();
  }

  @Test
  void rejectCompletesThePendingRequestRejectedWithReason() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    HttpResponse<String> res =
        send(
            "POST",
            "/pam/approvals/" + id + "/reject",
            REVIEWER_KEY,
            "{\"reason\":\"not during the freeze\"}");

    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(res.body()).get("status").asText()).isEqualTo("rejected");
    ApprovalService.Outcome o = waiting.get(5, TimeUnit.SECONDS);
    assertThat(o.status()).isEqualTo(ApprovalService.Status.REJECTED);
    assertThat(o.reviewer()).isEqualTo("alice-reviewer");
    assertThat(o.reason()).isEqualTo("not during the freeze");
  }

  @Test
  void requesterCannotDecideOwnRequest() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("carol", "ci", "sec-reviewers"), "hello");
    String id = service.pending().get(0).id();

    HttpResponse<String> res =
        send("POST", "/pam/approvals/" + id + "/approve", REVIEWING_REQUESTER_KEY, null);

    assertError(res, 403, "self_approval");
    assertThat(errorMessage(res)).contains("own request");
    assertThat(waiting).isNotDone();
    // A requester outside the reviewer groups is refused as a non-reviewer first.
    CompletableFuture<ApprovalService.Outcome> bobs =
        pendingFrom(principal("bob-requester", "ci"), "other");
    String bobsId = service.pending().get(1).id();
    assertError(
        send("POST", "/pam/approvals/" + bobsId + "/approve", REQUESTER_KEY, null),
        403,
        "not_a_reviewer");
    assertThat(bobs).isNotDone();
  }

  @Test
  void outsiderCannotListOrDecide() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    HttpResponse<String> list = send("GET", "/pam/approvals", OUTSIDER_KEY, null);
    assertError(list, 403, "not_a_reviewer");
    assertThat(list.body()).doesNotContain(id);
    assertThat(errorMessage(list)).contains("reviewer groups");
    assertError(
        send("POST", "/pam/approvals/" + id + "/approve", OUTSIDER_KEY, null),
        403,
        "not_a_reviewer");
    assertError(
        send("POST", "/pam/approvals/" + id + "/reject", OUTSIDER_KEY, null),
        403,
        "not_a_reviewer");
    // Unknown ids and malformed bodies are not revealed to non-reviewers either.
    assertError(
        send("POST", "/pam/approvals/apr-nope/approve", OUTSIDER_KEY, null), 403, "not_a_reviewer");
    assertError(
        send("POST", "/pam/approvals/" + id + "/approve", OUTSIDER_KEY, "{oops"),
        403,
        "not_a_reviewer");
    assertThat(waiting).isNotDone();
    assertThat(service.pending()).hasSize(1);
  }

  @Test
  void unknownIdIs404() throws Exception {
    assertError(
        send("POST", "/pam/approvals/apr-00000000000000000000/approve", REVIEWER_KEY, null),
        404,
        "not_found");
    assertError(
        send("POST", "/pam/approvals/apr-00000000000000000000/reject", REVIEWER_KEY, null),
        404,
        "not_found");
  }

  @Test
  void secondDecisionIs409() throws Exception {
    pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();
    assertThat(send("POST", "/pam/approvals/" + id + "/approve", REVIEWER_KEY, null).statusCode())
        .isEqualTo(200);

    HttpResponse<String> again =
        send("POST", "/pam/approvals/" + id + "/reject", REVIEWER_KEY, null);

    assertError(again, 409, "already_decided");
    assertThat(errorMessage(again)).contains("approved");
    assertError(
        send("POST", "/pam/approvals/" + id + "/approve", REVIEWER_KEY, null),
        409,
        "already_decided");
  }

  @Test
  void malformedBodiesAre400AndLeaveTheRequestWaiting() throws Exception {
    CompletableFuture<ApprovalService.Outcome> waiting =
        pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();
    String url = "/pam/approvals/" + id + "/approve";

    for (String bad :
        List.of(
            "{oops",
            "[\"reason\"]",
            "\"just a string\"",
            "{\"reason\":42}",
            "{\"reason\":\"a\",\"reason\":\"b\"}",
            "{\"reason\":\"a\"} trailing",
            "{\"reason\":\"" + "r".repeat(ApprovalService.MAX_REASON_CHARS + 1) + "\"}")) {
      HttpResponse<String> res = send("POST", url, REVIEWER_KEY, bad);
      assertError(res, 400, "bad_request");
      assertThat(res.body()).doesNotContain("Exception").doesNotContain("\tat ");
    }
    assertError(
        send("POST", url, REVIEWER_KEY, "{\"reason\":\"" + "r".repeat(2000) + "\"}"),
        413,
        "body_too_large");
    assertThat(waiting).isNotDone();
    assertThat(send("POST", url, REVIEWER_KEY, "{}").statusCode()).isEqualTo(200);
  }

  @Test
  void noCredentialIs401WithBearerChallenge() throws Exception {
    pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    for (HttpResponse<String> res :
        List.of(
            send("GET", "/pam/approvals", null, null),
            send("POST", "/pam/approvals/" + id + "/approve", null, null),
            send("GET", "/pam/approvals/elsewhere", null, null))) {
      assertError(res, 401, "unauthenticated");
      assertThat(res.headers().firstValue("WWW-Authenticate"))
          .hasValueSatisfying(v -> assertThat(v).startsWith("Bearer"));
      assertThat(res.body()).doesNotContain(id);
    }
    HttpResponse<String> wrongKey = send("GET", "/pam/approvals", "not-a-known-key", null);
    assertError(wrongKey, 401, "unauthenticated");
    assertThat(wrongKey.headers().firstValue("WWW-Authenticate"))
        .hasValueSatisfying(v -> assertThat(v).startsWith("Bearer"));
    assertThat(wrongKey.body()).doesNotContain("not-a-known-key");
    assertThat(service.pending()).hasSize(1);
  }

  @Test
  void otherPathsAre404AndWrongMethodsAre405WithAllow() throws Exception {
    pendingFrom(principal("bob-requester", "ci"), "hello");
    String id = service.pending().get(0).id();

    for (String path :
        List.of(
            "/pam/approvals/",
            "/pam/approvals/" + id,
            "/pam/approvals/" + id + "/approve/x",
            "/pam/approvals/" + id + "/delete",
            "/pam/approvals/x/y/z")) {
      assertError(send("POST", path, REVIEWER_KEY, null), 404, "not_found");
    }
    HttpResponse<String> postList = send("POST", "/pam/approvals", REVIEWER_KEY, null);
    assertError(postList, 405, "method_not_allowed");
    assertThat(postList.headers().firstValue("Allow")).hasValue("GET");
    HttpResponse<String> getApprove =
        send("GET", "/pam/approvals/" + id + "/approve", REVIEWER_KEY, null);
    assertError(getApprove, 405, "method_not_allowed");
    assertThat(getApprove.headers().firstValue("Allow")).hasValue("POST");
    HttpResponse<String> deleteReject =
        send("DELETE", "/pam/approvals/" + id + "/reject", REVIEWER_KEY, null);
    assertError(deleteReject, 405, "method_not_allowed");
    assertThat(deleteReject.headers().firstValue("Allow")).hasValue("POST");
    assertThat(service.pending()).hasSize(1);
  }

  // ---------------------------------------------------------------------------------------------

  private static Principal principal(String subject, String... groups) {
    return Principal.of(subject, Set.of(groups), Principal.VIA_API_KEY);
  }

  /** Holds a chat request for review directly in the service, as the engine would. */
  private CompletableFuture<ApprovalService.Outcome> pendingFrom(Principal who, String prompt)
      throws Exception {
    return ticketFrom(who, prompt).outcome().toCompletableFuture();
  }

  private ApprovalService.Ticket ticketFrom(Principal who, String prompt) throws Exception {
    String body =
        JSON.writeValueAsString(
            Map.of(
                "model",
                "llama-3.1-8b",
                "messages",
                List.of(Map.of("role", "user", "content", prompt))));
    InferenceRequest request =
        new InferenceRequest(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of("authorization", List.of(CALLER_TOKEN)),
            body.getBytes(StandardCharsets.UTF_8),
            "127.0.0.1");
    return service.request(who, request, "bulk-export", "digest-" + prompt.hashCode());
  }

  private HttpResponse<String> send(String method, String path, String key, String body)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + connector.getLocalPort() + path))
            .timeout(Duration.ofSeconds(10))
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body));
    if (key != null) b.header("Authorization", "Bearer " + key);
    if (body != null) b.header("Content-Type", "application/json");
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
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

  private static String errorMessage(HttpResponse<String> res) throws Exception {
    return JSON.readTree(res.body()).get("error").get("message").asText();
  }
}
