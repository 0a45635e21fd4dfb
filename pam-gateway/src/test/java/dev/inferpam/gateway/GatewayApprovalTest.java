package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static dev.inferpam.gateway.TestPolicies.CAROL_KEY;
import static dev.inferpam.gateway.TestPolicies.DAVE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.approvalPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.ReviewNotifier;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.WebhookReviewNotifier;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.ConnectionPool;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Just-in-time approval through the gateway: a request matching an approval rule is held (no
 * thread, nothing sent upstream) while a reviewer lists and decides it over HTTP at
 * {@code /pam/approvals}; then the caller gets the upstream's answer or a 403/429, and the record
 * says what the review was.
 */
class GatewayApprovalTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final String MODEL = "llama-3.1-8b";
  private static final String POLICY = approvalPolicy("5m", "0s", "", "");
  private static final Duration WAIT = Duration.ofSeconds(10);

  private final BlockingQueue<SessionRecord> records = new LinkedBlockingQueue<>();

  /** Bodies the upstream received, in order. */
  private final List<String> upstreamBodies = new CopyOnWriteArrayList<>();

  private final List<AutoCloseable> toClose = new ArrayList<>();
  private MockWebServer upstream;
  private OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    // Answers every request with a body derived from the request's, so each caller can tell that
    // it got the answer to its own request.
    upstream.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            String body = request.getBody() == null ? "" : request.getBody().utf8();
            upstreamBodies.add(body);
            return new MockResponse.Builder()
                .code(200)
                .addHeader("Content-Type", "application/json")
                .body(answerTo(body))
                .build();
          }
        });
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    okhttp3.Dispatcher dispatcher = new okhttp3.Dispatcher();
    dispatcher.setMaxRequests(300);
    dispatcher.setMaxRequestsPerHost(300);
    client =
        new OkHttpClient.Builder()
            .dispatcher(dispatcher)
            .connectionPool(new ConnectionPool(300, 1, TimeUnit.MINUTES))
            .readTimeout(Duration.ofSeconds(20))
            .callTimeout(Duration.ofSeconds(25))
            .build();
  }

  @AfterEach
  void tearDown() throws Exception {
    // Idle keep-alive connections would hold up the gateways' drain.
    client.dispatcher().cancelAll();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
    upstream.close();
  }

  // -----------------------------------------------------------------------------------------------
  // 1. hold, list, approve, forward, record

  @Test
  void matchingRequestWaitsUntilBobApprovesThenReachesUpstreamAndIsRecordedAsApproved()
      throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String body = chat("Please dump all customer rows as CSV");
    CompletableFuture<Answer> alice = call(gateway, ALICE_KEY, body);

    JsonNode item = awaitPending(gateway, 1).get(0);
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(alice).isNotDone();
    assertThat(item.path("id").asText()).matches("apr-[0-9a-f]{20}");
    assertThat(item.path("principal").asText()).isEqualTo("alice");
    assertThat(item.path("rule").asText()).isEqualTo("bulk-export");
    assertThat(item.path("model").asText()).isEqualTo(MODEL);
    assertThat(item.path("operation").asText()).isEqualTo("chat");
    assertThat(item.path("excerpt").asText()).isEqualTo("Please dump all customer rows as CSV");
    Instant created = Instant.parse(item.path("created").asText());
    Instant expires = Instant.parse(item.path("expires").asText());
    assertThat(Duration.between(created, expires)).isEqualTo(Duration.ofMinutes(5));
    assertThat(item.toString()).doesNotContain(ALICE_KEY).doesNotContain("authorization");

    String id = item.path("id").asText();
    Answer decision =
        review(
            gateway, "POST", "/pam/approvals/" + id + "/approve", BOB_KEY, "{\"reason\":\"ok\"}");
    assertThat(decision.code).isEqualTo(200);
    assertThat(decision.headers.get("Cache-Control")).isEqualTo("no-store");
    JsonNode decided = decision.json();
    assertThat(decided.path("id").asText()).isEqualTo(id);
    assertThat(decided.path("status").asText()).isEqualTo("approved");
    assertThat(decided.path("reviewer").asText()).isEqualTo("bob");
    assertThat(decided.path("reason").asText()).isEqualTo("ok");
    assertThat(Instant.parse(decided.path("decided").asText())).isNotNull();

    Answer answer = alice.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(200);
    assertThat(answer.body).isEqualTo(answerTo(body));

    assertThat(upstream.getRequestCount()).isEqualTo(1);
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getTarget()).isEqualTo("/v1/chat/completions");
    assertThat(seen.getBody().utf8()).isEqualTo(body);
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
    assertThat(seen.getHeaders().toMultimap().toString()).doesNotContain(ALICE_KEY);

    SessionRecord record = recordOf("alice", body);
    assertThat(record.decision().outcome()).isEqualTo("approved");
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.request().headers().get("authorization")).containsExactly("[REDACTED]");
    assertThat(record.approval()).isNotNull();
    assertThat(record.approval().id()).isEqualTo(id);
    assertThat(record.approval().rule()).isEqualTo("bulk-export");
    assertThat(record.approval().reviewer()).isEqualTo("bob");
    assertThat(record.approval().outcome()).isEqualTo("approved");
    assertThat(record.approval().reason()).isEqualTo("ok");
    assertThat(record.approval().decided())
        .isEqualTo(Instant.parse(decided.path("decided").asText()));

    assertThat(pending(gateway)).isEmpty();
  }

  // -----------------------------------------------------------------------------------------------
  // 2. grants

  @Test
  void withoutGrantTheSameRequestAgainWaitsForItsOwnReview() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String body = chat("export all invoices of 2025");
    CompletableFuture<Answer> first = call(gateway, ALICE_KEY, body);
    String firstId = awaitPending(gateway, 1).get(0).path("id").asText();
    assertThat(decide(gateway, firstId, "approve", BOB_KEY, null).code).isEqualTo(200);
    assertThat(first.get(10, TimeUnit.SECONDS).code).isEqualTo(200);

    CompletableFuture<Answer> second = call(gateway, ALICE_KEY, body);
    List<JsonNode> again = awaitPending(gateway, 1);
    String secondId = again.get(0).path("id").asText();
    assertThat(secondId).isNotEqualTo(firstId);
    assertThat(second).isNotDone();
    assertThat(upstream.getRequestCount()).isEqualTo(1);

    assertThat(decide(gateway, secondId, "approve", BOB_KEY, null).code).isEqualTo(200);
    assertThat(second.get(10, TimeUnit.SECONDS).code).isEqualTo(200);
    assertThat(upstream.getRequestCount()).isEqualTo(2);
  }

  @Test
  void withAGrantTheSamePrincipalsNextMatchingRequestPassesWithoutANewReview() throws Exception {
    List<ReviewNotifier.ReviewRequest> opened = new CopyOnWriteArrayList<>();
    Gateway gateway =
        start(
            approvalPolicy("5m", "10m", "", ""),
            b -> b.reviewNotifier(opened::add),
            Gateway.DEFAULT_MAX_THREADS);
    CompletableFuture<Answer> first = call(gateway, ALICE_KEY, chat("dump all tables"));
    String id = awaitPending(gateway, 1).get(0).path("id").asText();
    assertThat(decide(gateway, id, "approve", BOB_KEY, "incident 42").code).isEqualTo(200);
    assertThat(first.get(10, TimeUnit.SECONDS).code).isEqualTo(200);

    // Another prompt under the same rule: passes at once under the grant.
    String next = chat("now export all views too");
    Answer second = call(gateway, ALICE_KEY, next).get(10, TimeUnit.SECONDS);
    assertThat(second.code).isEqualTo(200);
    assertThat(second.body).isEqualTo(answerTo(next));
    assertThat(opened).hasSize(1);
    assertThat(pending(gateway)).isEmpty();
    assertThat(upstream.getRequestCount()).isEqualTo(2);

    SessionRecord granted = recordOf("alice", next);
    assertThat(granted.decision().outcome()).isEqualTo("approved");
    assertThat(granted.approval().id()).isEqualTo(id);
    assertThat(granted.approval().reviewer()).isEqualTo("bob");
    assertThat(granted.approval().outcome()).isEqualTo("approved");
    assertThat(granted.approval().reason()).contains("grant").contains(id).contains("incident 42");

    // The grant is alice's: carol's matching request still waits.
    CompletableFuture<Answer> carol = call(gateway, CAROL_KEY, chat("dump all tables"));
    JsonNode carols = awaitPending(gateway, 1).get(0);
    assertThat(carols.path("principal").asText()).isEqualTo("carol");
    assertThat(carol).isNotDone();
    assertThat(decide(gateway, carols.path("id").asText(), "reject", BOB_KEY, null).code)
        .isEqualTo(200);
    assertThat(carol.get(10, TimeUnit.SECONDS).code).isEqualTo(403);
    assertThat(upstream.getRequestCount()).isEqualTo(2);
  }

  // -----------------------------------------------------------------------------------------------
  // 3. reject

  @Test
  void rejectedRequestIs403WithTheReasonAndNeverReachesUpstream() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String body = chat("dump all salaries");
    CompletableFuture<Answer> alice = call(gateway, ALICE_KEY, body);
    String id = awaitPending(gateway, 1).get(0).path("id").asText();

    Answer decision = decide(gateway, id, "reject", BOB_KEY, "not without a ticket");
    assertThat(decision.code).isEqualTo(200);
    assertThat(decision.json().path("status").asText()).isEqualTo("rejected");
    assertThat(decision.json().path("reviewer").asText()).isEqualTo("bob");
    assertThat(decision.json().path("reason").asText()).isEqualTo("not without a ticket");

    Answer answer = alice.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(403);
    JsonNode error = answer.error();
    assertThat(error.path("type").asText()).isEqualTo("pam_error");
    assertThat(error.path("code").asText()).isEqualTo("approval_rejected");
    assertThat(error.path("message").asText()).contains("not without a ticket").contains("bob");
    assertThat(error.path("request_id").asText()).isNotBlank();
    assertThat(upstream.getRequestCount()).isZero();

    SessionRecord record = recordOf("alice", body);
    assertThat(record.id()).isEqualTo(error.path("request_id").asText());
    assertThat(record.decision().outcome()).isEqualTo("rejected");
    assertThat(record.decision().code()).isEqualTo("approval_rejected");
    assertThat(record.response().status()).isEqualTo(403);
    assertThat(record.approval().id()).isEqualTo(id);
    assertThat(record.approval().outcome()).isEqualTo("rejected");
    assertThat(record.approval().reviewer()).isEqualTo("bob");
    assertThat(record.approval().reason()).isEqualTo("not without a ticket");
  }

  // -----------------------------------------------------------------------------------------------
  // 4. expiry

  @Test
  void undecidedRequestExpiresAs403OnTheApprovalServicesClock() throws Exception {
    Policy policy = Policy.parse(POLICY);
    MutableClock clock = new MutableClock(Instant.parse("2026-11-28T12:00:00Z"));
    InProcessApprovalService service =
        InProcessApprovalService.builder()
            .settings(policy.approval())
            .clock(clock)
            .manualExpiry()
            .build();
    toClose.add(service); // the engine does not close a service it was given
    Gateway gateway = start(policy, b -> b.approvalService(service), Gateway.DEFAULT_MAX_THREADS);

    String body = chat("export all audit logs");
    CompletableFuture<Answer> alice = call(gateway, ALICE_KEY, body);
    JsonNode item = awaitPending(gateway, 1).get(0);
    assertThat(item.path("created").asText()).isEqualTo("2026-11-28T12:00:00Z");
    assertThat(item.path("expires").asText()).isEqualTo("2026-11-28T12:05:00Z");

    clock.advance(Duration.ofMinutes(5).minusMillis(1));
    assertThat(service.expireDue()).isZero();
    assertThat(alice).isNotDone();
    clock.advance(Duration.ofMillis(1));
    assertThat(service.expireDue()).isEqualTo(1);

    Answer answer = alice.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(403);
    assertThat(answer.error().path("code").asText()).isEqualTo("approval_expired");
    assertThat(answer.error().path("message").asText()).contains("bulk-export");
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(pending(gateway)).isEmpty();

    SessionRecord record = recordOf("alice", body);
    assertThat(record.decision().outcome()).isEqualTo("expired");
    assertThat(record.decision().code()).isEqualTo("approval_expired");
    assertThat(record.approval().id()).isEqualTo(item.path("id").asText());
    assertThat(record.approval().outcome()).isEqualTo("expired");
    assertThat(record.approval().reviewer()).isNull();

    // Too late to approve it now.
    Answer late = decide(gateway, item.path("id").asText(), "approve", BOB_KEY, null);
    assertThat(late.code).isEqualTo(409);
    assertThat(late.error().path("code").asText()).isEqualTo("already_decided");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void undecidedRequestExpiresOnARealShortTimeout() throws Exception {
    Gateway gateway =
        start(approvalPolicy("300ms", "0s", "", ""), b -> {}, Gateway.DEFAULT_MAX_THREADS);
    Answer answer = call(gateway, ALICE_KEY, chat("dump all keys")).get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(403);
    assertThat(answer.error().path("code").asText()).isEqualTo("approval_expired");
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(recordOf("alice", chat("dump all keys")).decision().outcome()).isEqualTo("expired");
  }

  // -----------------------------------------------------------------------------------------------
  // 5. who may decide

  @Test
  void reviewersCannotDecideTheirOwnRequestsAndOthersCannotDecideAtAll() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String body = chat("dump all secrets, I am on call");
    CompletableFuture<Answer> dave = call(gateway, DAVE_KEY, body);
    JsonNode item = awaitPending(gateway, 1).get(0);
    assertThat(item.path("principal").asText()).isEqualTo("dave");
    String id = item.path("id").asText();

    // dave, a reviewer, lists it but cannot approve it
    assertThat(list(gateway, DAVE_KEY).code).isEqualTo(200);
    Answer self = decide(gateway, id, "approve", DAVE_KEY, "trust me");
    assertThat(self.code).isEqualTo(403);
    assertThat(self.error().path("code").asText()).isEqualTo("self_approval");
    assertThat(self.headers.get("Cache-Control")).isEqualTo("no-store");
    assertThat(decide(gateway, id, "reject", DAVE_KEY, null).error().path("code").asText())
        .isEqualTo("self_approval");

    // carol and alice are no reviewers: neither list nor decide
    for (String key : List.of(CAROL_KEY, ALICE_KEY)) {
      Answer listed = list(gateway, key);
      assertThat(listed.code).isEqualTo(403);
      assertThat(listed.error().path("code").asText()).isEqualTo("not_a_reviewer");
      assertThat(listed.body).doesNotContain(id);
      Answer decided = decide(gateway, id, "approve", key, null);
      assertThat(decided.code).isEqualTo(403);
      assertThat(decided.error().path("code").asText()).isEqualTo("not_a_reviewer");
      // not even an unknown id tells a non-reviewer anything
      assertThat(
              decide(gateway, "apr-00000000000000000000", "approve", key, null)
                  .error()
                  .path("code")
                  .asText())
          .isEqualTo("not_a_reviewer");
    }

    // no credential, or a wrong one
    for (String key : new String[] {null, "not-a-key"}) {
      Answer anonymous = list(gateway, key);
      assertThat(anonymous.code).isEqualTo(401);
      assertThat(anonymous.headers.get("WWW-Authenticate")).startsWith("Bearer");
      assertThat(anonymous.error().path("code").asText()).isEqualTo("unauthenticated");
      assertThat(decide(gateway, id, "approve", key, null).code).isEqualTo(401);
    }

    Answer unknown = decide(gateway, "apr-00000000000000000000", "approve", BOB_KEY, null);
    assertThat(unknown.code).isEqualTo(404);
    assertThat(unknown.error().path("code").asText()).isEqualTo("not_found");
    assertThat(review(gateway, "POST", "/pam/approvals/" + id + "/promote", BOB_KEY, "{}").code)
        .isEqualTo(404);
    Answer wrongMethod = review(gateway, "GET", "/pam/approvals/" + id + "/approve", BOB_KEY, null);
    assertThat(wrongMethod.code).isEqualTo(405);
    assertThat(wrongMethod.headers.get("Allow")).isEqualTo("POST");
    Answer badBody = review(gateway, "POST", "/pam/approvals/" + id + "/approve", BOB_KEY, "[1,2]");
    assertThat(badBody.code).isEqualTo(400);
    assertThat(badBody.error().path("code").asText()).isEqualTo("bad_request");

    // none of that decided anything
    assertThat(dave).isNotDone();
    assertThat(pending(gateway)).hasSize(1);
    assertThat(upstream.getRequestCount()).isZero();

    // bob can
    assertThat(decide(gateway, id, "approve", BOB_KEY, "checked").code).isEqualTo(200);
    Answer answer = dave.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(200);
    assertThat(answer.body).isEqualTo(answerTo(body));

    Answer again = decide(gateway, id, "approve", BOB_KEY, null);
    assertThat(again.code).isEqualTo(409);
    assertThat(again.error().path("code").asText()).isEqualTo("already_decided");
    assertThat(decide(gateway, id, "reject", BOB_KEY, null).code).isEqualTo(409);
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  // -----------------------------------------------------------------------------------------------
  // 6. an approval is for one request

  @Test
  void approvingOneRequestReleasesThatRequestOnly() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String bodyA = chat("dump all users");
    String bodyB = chat("export all users with their passwords");
    CompletableFuture<Answer> a = call(gateway, ALICE_KEY, bodyA);
    awaitPending(gateway, 1);
    CompletableFuture<Answer> b = call(gateway, ALICE_KEY, bodyB);
    List<JsonNode> items = awaitPending(gateway, 2);
    JsonNode itemA =
        items.stream()
            .filter(i -> i.path("excerpt").asText().equals("dump all users"))
            .findFirst()
            .orElseThrow();
    JsonNode itemB =
        items.stream()
            .filter(i -> i.path("excerpt").asText().startsWith("export all"))
            .findFirst()
            .orElseThrow();
    assertThat(itemA.path("id").asText()).isNotEqualTo(itemB.path("id").asText());

    assertThat(decide(gateway, itemA.path("id").asText(), "approve", BOB_KEY, null).code)
        .isEqualTo(200);
    Answer answerA = a.get(10, TimeUnit.SECONDS);
    assertThat(answerA.code).isEqualTo(200);
    assertThat(answerA.body).isEqualTo(answerTo(bodyA));
    assertThat(upstreamBodies).containsExactly(bodyA);

    assertThat(b).isNotDone();
    assertThat(pending(gateway))
        .extracting(i -> i.path("id").asText())
        .containsExactly(itemB.path("id").asText());

    assertThat(decide(gateway, itemB.path("id").asText(), "reject", BOB_KEY, "no passwords").code)
        .isEqualTo(200);
    Answer answerB = b.get(10, TimeUnit.SECONDS);
    assertThat(answerB.code).isEqualTo(403);
    assertThat(answerB.error().path("code").asText()).isEqualTo("approval_rejected");
    assertThat(upstreamBodies).containsExactly(bodyA);
  }

  // -----------------------------------------------------------------------------------------------
  // 7. load: waiting requests hold no thread

  @Test
  void twoHundredWaitingRequestsHoldNoThreadsOfASixteenThreadGateway() throws Exception {
    Gateway gateway =
        start(approvalPolicy("5m", "0s", "  max-pending-per-principal: 200\n", ""), b -> {}, 16);
    int n = 200;
    List<String> bodies = new ArrayList<>();
    List<CompletableFuture<Answer>> calls = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String body = chat("dump all rows of shard " + i);
      bodies.add(body);
      calls.add(call(gateway, ALICE_KEY, body));
    }
    await()
        .atMost(Duration.ofSeconds(20))
        .pollInterval(Duration.ofMillis(50))
        .until(() -> pending(gateway).size() == n);
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(calls).noneMatch(CompletableFuture::isDone);

    // The gateway still answers other traffic at once.
    OkHttpClient prompt = client.newBuilder().callTimeout(Duration.ofSeconds(5)).build();
    String plain = chat("hello there");
    try (Response r = prompt.newCall(post(gateway, ALICE_KEY, plain)).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo(answerTo(plain));
    }
    try (Response r =
        prompt.newCall(new Request.Builder().url(url(gateway, "/pam/health")).build()).execute()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo("{\"status\":\"ok\"}");
    }
    assertThat(calls).noneMatch(CompletableFuture::isDone);

    for (JsonNode item : pending(gateway)) {
      assertThat(decide(gateway, item.path("id").asText(), "approve", BOB_KEY, null).code)
          .isEqualTo(200);
    }
    for (int i = 0; i < n; i++) {
      Answer answer = calls.get(i).get(20, TimeUnit.SECONDS);
      assertThat(answer.code).as("call %d", i).isEqualTo(200);
      assertThat(answer.body).as("call %d", i).isEqualTo(answerTo(bodies.get(i)));
    }
    assertThat(upstream.getRequestCount()).isEqualTo(n + 1);
    assertThat(pending(gateway)).isEmpty();
  }

  // -----------------------------------------------------------------------------------------------
  // 8. bounds

  @Test
  void tooManyWaitingRequestsOfOnePrincipalAre429WithRetryAfter() throws Exception {
    Gateway gateway =
        start(
            approvalPolicy("5m", "0s", "  max-pending-per-principal: 1\n", ""),
            b -> {},
            Gateway.DEFAULT_MAX_THREADS);
    String bodyA = chat("dump all orders");
    CompletableFuture<Answer> a = call(gateway, ALICE_KEY, bodyA);
    String id = awaitPending(gateway, 1).get(0).path("id").asText();

    String bodyB = chat("export all refunds");
    Answer b = call(gateway, ALICE_KEY, bodyB).get(10, TimeUnit.SECONDS);
    assertThat(b.code).isEqualTo(429);
    assertThat(b.headers.get("Retry-After")).isNotNull();
    assertThat(Long.parseLong(b.headers.get("Retry-After"))).isBetween(1L, 300L);
    assertThat(b.error().path("code").asText()).isEqualTo("approval_limit");
    assertThat(b.error().path("request_id").asText()).isNotBlank();
    SessionRecord limited = recordOf("alice", bodyB);
    assertThat(limited.decision().outcome()).isEqualTo("deny");
    assertThat(limited.decision().code()).isEqualTo("approval_limit");
    assertThat(limited.response().status()).isEqualTo(429);

    // The very same request again joins the waiting review instead of counting again.
    CompletableFuture<Answer> aAgain = call(gateway, ALICE_KEY, bodyA);
    // The bound is alice's: carol's request waits for its own review.
    CompletableFuture<Answer> carol = call(gateway, CAROL_KEY, chat("export all refunds"));
    List<JsonNode> items = awaitPending(gateway, 2);
    assertThat(items)
        .extracting(i -> i.path("principal").asText())
        .containsExactly("alice", "carol");
    assertThat(aAgain).isNotDone();

    assertThat(decide(gateway, id, "approve", BOB_KEY, null).code).isEqualTo(200);
    assertThat(a.get(10, TimeUnit.SECONDS).code).isEqualTo(200);
    assertThat(aAgain.get(10, TimeUnit.SECONDS).code).isEqualTo(200);
    assertThat(decide(gateway, items.get(1).path("id").asText(), "reject", BOB_KEY, null).code)
        .isEqualTo(200);
    assertThat(carol.get(10, TimeUnit.SECONDS).code).isEqualTo(403);
    assertThat(upstreamBodies).containsExactly(bodyA, bodyA);
  }

  // -----------------------------------------------------------------------------------------------
  // 9. /pam endpoints

  @Test
  void healthNeedsNoCredentialAndOtherPamPathsAre404Json() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    Answer health = review(gateway, "GET", "/pam/health", null, null);
    assertThat(health.code).isEqualTo(200);
    assertThat(health.headers.get("Content-Type")).startsWith("application/json");
    assertThat(health.json()).isEqualTo(JSON.readTree("{\"status\":\"ok\"}"));

    for (String path : List.of("/pam/nothing", "/pam", "/pam/", "/pam/approvalsx")) {
      Answer nothing = review(gateway, "GET", path, BOB_KEY, null);
      assertThat(nothing.code).as(path).isEqualTo(404);
      assertThat(nothing.headers.get("Content-Type")).as(path).startsWith("application/json");
      assertThat(nothing.error().path("type").asText()).as(path).isEqualTo("pam_error");
      assertThat(nothing.error().path("code").asText()).as(path).isEqualTo("not_found");
    }
    Answer post = review(gateway, "POST", "/pam/health", null, "{}");
    assertThat(post.code).isEqualTo(405);
    assertThat(post.error().path("code").asText()).isEqualTo("method_not_allowed");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void withoutAnApprovalSectionThereAreNoReviewerEndpoints() throws Exception {
    Gateway gateway =
        Gateway.start(TestPolicies.engine(records::add), upstream.url("/"), "127.0.0.1", 0);
    toClose.add(gateway);
    Answer approvals = review(gateway, "GET", "/pam/approvals", ALICE_KEY, null);
    assertThat(approvals.code).isEqualTo(404);
    assertThat(approvals.error().path("code").asText()).isEqualTo("not_found");
    assertThat(review(gateway, "GET", "/pam/health", null, null).code).isEqualTo(200);
    assertThat(upstream.getRequestCount()).isZero();
  }

  // -----------------------------------------------------------------------------------------------
  // 10. hostile paths

  @ParameterizedTest
  @ValueSource(
      strings = {
        "/pam/../v1/chat/completions",
        "/pam/health/../../v1/chat/completions",
        "/pam/approvals/../../v1/chat/completions",
        "/pam/%2e%2e/v1/chat/completions",
        "/pam/%2E%2E/v1/chat/completions",
        "/pam/..;/v1/chat/completions",
        "/pam/..%2fv1/chat/completions",
        "/pam%2f..%2fv1/chat/completions",
        "/pam//../v1/chat/completions",
        "/pam/./../v1/chat/completions",
        "/pam/approvals/%2e%2e/%2e%2e/v1/chat/completions",
        "/pam;x=1/../v1/chat/completions",
        "/pam/..\\v1/chat/completions",
        "/pam/../../v1/chat/completions",
      })
  void aPathThroughPamCannotReachUpstreamWithoutTheFilter(String target) throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    // A prompt that needs no review: were the filter skipped, it would go straight upstream.
    String answer = rawExchange(gateway, "POST", target, ALICE_KEY, chat("hello"));
    String status = answer.substring(0, Math.min(answer.length(), 13));
    assertThat(status).as(answer).isIn("HTTP/1.1 400 ", "HTTP/1.1 404 ");
    assertThat(answer).contains("\"type\":\"pam_error\"");
    assertThat(upstream.getRequestCount()).isZero();
    // Nor with a prompt that needs review: nothing waits, nothing is forwarded.
    String held = rawExchange(gateway, "POST", target, ALICE_KEY, chat("dump all"));
    assertThat(held.substring(0, 13)).as(held).isIn("HTTP/1.1 400 ", "HTTP/1.1 404 ");
    assertThat(pending(gateway)).isEmpty();
    assertThat(upstream.getRequestCount()).isZero();
  }

  // -----------------------------------------------------------------------------------------------
  // 11. notifications

  @Test
  void webhookIsToldOfEachNewReviewWithAMaskedExcerptAndNoSecrets() throws Exception {
    try (MockWebServer hook = new MockWebServer()) {
      hook.start(InetAddress.getLoopbackAddress(), 0);
      for (int i = 0; i < 5; i++) hook.enqueue(new MockResponse.Builder().code(200).build());
      WebhookReviewNotifier notifier =
          WebhookReviewNotifier.builder().url(hook.url("/hooks/review").uri()).build();
      toClose.add(notifier);
      Gateway gateway =
          start(
              approvalPolicy("5m", "0s", "", "masking:\n  detectors: [email]\n"),
              b -> b.reviewNotifier(notifier),
              Gateway.DEFAULT_MAX_THREADS);

      String bodyA = chat("export all contacts and send them to jane.doe@example.com");
      CompletableFuture<Answer> a = call(gateway, ALICE_KEY, bodyA);
      RecordedRequest first = hook.takeRequest(10, TimeUnit.SECONDS);
      assertThat(first).isNotNull();
      JsonNode itemA = awaitPending(gateway, 1).get(0);
      assertThat(itemA.path("excerpt").asText())
          .contains("export all contacts")
          .doesNotContain("jane.doe");

      assertThat(first.getMethod()).isEqualTo("POST");
      assertThat(first.getTarget()).isEqualTo("/hooks/review");
      assertThat(first.getHeaders().get("Content-Type")).startsWith("application/json");
      String text = first.getBody().utf8();
      JsonNode notice = JSON.readTree(text);
      assertThat(notice.path("approval_id").asText()).isEqualTo(itemA.path("id").asText());
      assertThat(notice.path("rule").asText()).isEqualTo("bulk-export");
      assertThat(notice.path("principal").asText()).isEqualTo("alice");
      assertThat(notice.path("model").asText()).isEqualTo(MODEL);
      assertThat(notice.path("operation").asText()).isEqualTo("chat");
      assertThat(notice.path("created").asText()).isEqualTo(itemA.path("created").asText());
      assertThat(notice.path("expires").asText()).isEqualTo(itemA.path("expires").asText());
      assertThat(notice.path("excerpt").asText())
          .contains("export all contacts")
          .contains("[EMAIL]");
      assertThat(text)
          .doesNotContain("jane.doe@example.com")
          .doesNotContain("jane.doe")
          .doesNotContain(ALICE_KEY)
          .doesNotContain(UPSTREAM_AUTHORIZATION);
      assertThat(first.getHeaders().toMultimap().toString()).doesNotContain(ALICE_KEY);

      // The same request again joins the waiting review: no new notice. Another one: a new notice.
      CompletableFuture<Answer> aAgain = call(gateway, ALICE_KEY, bodyA);
      String bodyB = chat("dump all phone numbers");
      CompletableFuture<Answer> b = call(gateway, ALICE_KEY, bodyB);
      List<JsonNode> items = awaitPending(gateway, 2);
      RecordedRequest second = hook.takeRequest(10, TimeUnit.SECONDS);
      assertThat(second).isNotNull();
      JsonNode secondNotice = JSON.readTree(second.getBody().utf8());
      assertThat(secondNotice.path("approval_id").asText())
          .isEqualTo(items.get(1).path("id").asText());
      assertThat(secondNotice.path("excerpt").asText()).isEqualTo("dump all phone numbers");
      // Notices go out in order, so a notice for the joining request would have come before B's.
      assertThat(hook.getRequestCount()).isEqualTo(2);
      assertThat(aAgain).isNotDone();

      assertThat(decide(gateway, itemA.path("id").asText(), "approve", BOB_KEY, null).code)
          .isEqualTo(200);
      assertThat(decide(gateway, items.get(1).path("id").asText(), "reject", BOB_KEY, null).code)
          .isEqualTo(200);
      assertThat(a.get(10, TimeUnit.SECONDS).code).isEqualTo(200);
      assertThat(aAgain.get(10, TimeUnit.SECONDS).code).isEqualTo(200);
      assertThat(b.get(10, TimeUnit.SECONDS).code).isEqualTo(403);
      // The model gets the prompt as sent; only what reviewers are shown is masked.
      assertThat(upstreamBodies).containsExactly(bodyA, bodyA);
      assertThat(hook.getRequestCount()).isEqualTo(2);
      await().atMost(WAIT).until(() -> notifier.delivered() == 2);
    }
  }

  // -----------------------------------------------------------------------------------------------
  // shutting down

  @Test
  void closingWithARequestWaitingForReviewAnswersItAsTheRecordSays() throws Exception {
    Gateway gateway = start(POLICY, b -> {}, Gateway.DEFAULT_MAX_THREADS);
    String body = chat("dump all tables before shutdown");
    try (Socket socket = openRaw(gateway, "POST", "/v1/chat/completions", ALICE_KEY, body)) {
      awaitPending(gateway, 1);
      gateway.close(Duration.ofMillis(500));
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      SessionRecord record = recordOf("alice", body);
      assertThat(record.decision().outcome()).isEqualTo("expired");
      // The waiting caller is answered before the drain, as its record says.
      assertThat(answer)
          .startsWith("HTTP/1.1 403 ")
          .contains("\"code\":\"approval_expired\"", "shutting down")
          .doesNotContain("internal_error");
      assertThat(record.response().status()).isEqualTo(403);
      assertThat(record.decision().code()).isEqualTo("approval_expired");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }

  // -----------------------------------------------------------------------------------------------
  // fixtures

  private Gateway start(String policyYaml, Consumer<PamEngine.Builder> customize, int maxThreads)
      throws IOException {
    return start(Policy.parse(policyYaml), customize, maxThreads);
  }

  private Gateway start(Policy policy, Consumer<PamEngine.Builder> customize, int maxThreads)
      throws IOException {
    PamEngine.Builder builder =
        PamEngine.builder()
            .policy(policy)
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(records::add);
    customize.accept(builder);
    Gateway gateway = Gateway.start(builder.build(), upstream.url("/"), "127.0.0.1", 0, maxThreads);
    toClose.add(() -> gateway.close(Duration.ofSeconds(5)));
    return gateway;
  }

  /** What the upstream answers to a request with {@code body}. */
  private static String answerTo(String body) {
    return "{\"answer\":\"" + TestPolicies.sha256(body).substring(0, 16) + "\"}";
  }

  private static String chat(String prompt) {
    ObjectNode root = JSON.createObjectNode();
    root.put("model", MODEL);
    root.putArray("messages").addObject().put("role", "user").put("content", prompt);
    return root.toString();
  }

  private static HttpUrl url(Gateway gateway, String path) {
    return HttpUrl.get(gateway.uri()).newBuilder().encodedPath(path).build();
  }

  private static Request post(Gateway gateway, String key, String body) {
    Request.Builder b =
        new Request.Builder()
            .url(url(gateway, "/v1/chat/completions"))
            .post(RequestBody.create(body, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return b.build();
  }

  /** Sends a chat completion without waiting for its answer. */
  private CompletableFuture<Answer> call(Gateway gateway, String key, String body) {
    CompletableFuture<Answer> answer = new CompletableFuture<>();
    client
        .newCall(post(gateway, key, body))
        .enqueue(
            new Callback() {
              @Override
              public void onFailure(Call call, IOException e) {
                answer.completeExceptionally(e);
              }

              @Override
              public void onResponse(Call call, Response response) {
                try (response) {
                  answer.complete(
                      new Answer(response.code(), response.headers(), response.body().string()));
                } catch (IOException | RuntimeException e) {
                  answer.completeExceptionally(e);
                }
              }
            });
    return answer;
  }

  /** A call to the gateway as a reviewer would make it. */
  private Answer review(Gateway gateway, String method, String path, String key, String body)
      throws IOException {
    Request.Builder b =
        new Request.Builder()
            .url(url(gateway, path))
            .method(
                method,
                body == null
                    ? (method.equals("POST") ? RequestBody.create(new byte[0]) : null)
                    : RequestBody.create(body, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    try (Response r = client.newCall(b.build()).execute()) {
      return new Answer(r.code(), r.headers(), r.body().string());
    }
  }

  private Answer list(Gateway gateway, String key) throws IOException {
    return review(gateway, "GET", "/pam/approvals", key, null);
  }

  private Answer decide(Gateway gateway, String id, String action, String key, String reason)
      throws IOException {
    String body = reason == null ? null : JSON.createObjectNode().put("reason", reason).toString();
    return review(gateway, "POST", "/pam/approvals/" + id + "/" + action, key, body);
  }

  /** The waiting approvals as bob sees them. */
  private List<JsonNode> pending(Gateway gateway) throws IOException {
    Answer listed = list(gateway, BOB_KEY);
    assertThat(listed.code).as(listed.body).isEqualTo(200);
    assertThat(listed.headers.get("Cache-Control")).isEqualTo("no-store");
    List<JsonNode> items = new ArrayList<>();
    listed.json().path("approvals").forEach(items::add);
    return items;
  }

  private List<JsonNode> awaitPending(Gateway gateway, int count) {
    return await()
        .atMost(WAIT)
        .pollInterval(Duration.ofMillis(20))
        .until(() -> pending(gateway), items -> items.size() == count);
  }

  /** The record of the exchange of {@code subject} with this request body (records come in as exchanges end). */
  private SessionRecord recordOf(String subject, String body) {
    return await()
        .atMost(WAIT)
        .pollInterval(Duration.ofMillis(20))
        .until(
            () ->
                records.stream()
                    .filter(r -> SessionRecord.TYPE_EXCHANGE.equals(r.type()))
                    .filter(r -> r.principal() != null && subject.equals(r.principal().subject()))
                    .filter(r -> body.equals(r.request().body()))
                    .reduce((x, y) -> y)
                    .orElse(null),
            r -> r != null);
  }

  /** Sends bytes exactly as given (OkHttp would normalise the path) and reads to the end. */
  private static String rawExchange(
      Gateway gateway, String method, String target, String key, String body) throws IOException {
    try (Socket socket = openRaw(gateway, method, target, key, body)) {
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /** Sends a request exactly as given and returns the open socket, its answer still to read. */
  private static Socket openRaw(
      Gateway gateway, String method, String target, String key, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    String raw =
        method
            + " "
            + target
            + " HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\n"
            + "Authorization: Bearer "
            + key
            + "\r\n"
            + "Content-Type: application/json\r\n"
            + "Content-Length: "
            + bytes.length
            + "\r\n"
            + "Connection: close\r\n\r\n";
    Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port());
    try {
      socket.setSoTimeout(20_000);
      OutputStream out = socket.getOutputStream();
      out.write(raw.getBytes(StandardCharsets.US_ASCII));
      out.write(bytes);
      out.flush();
      return socket;
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  record Answer(int code, Headers headers, String body) {
    JsonNode json() throws IOException {
      return JSON.readTree(body);
    }

    JsonNode error() throws IOException {
      return json().path("error");
    }
  }
}
