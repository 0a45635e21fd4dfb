package dev.inferpam.okhttp;

import static dev.inferpam.testsupport.Policies.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testkit.CapturingRecorder;
import dev.inferpam.testsupport.MutableClock;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.Call;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Just-in-time approval through the OkHttp adapter: the call waits on its own thread until a
 * reviewer decides, the review expires, or the caller gives up; the caller sees the upstream
 * answer only after an approval, and every outcome leaves one record with its review.
 */
class PamInterceptorApprovalTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final Instant START = Instant.parse("2026-11-28T12:00:00Z");
  static final String CAROL = "carol-key-0001";
  static final String SAM = "sam-key-0002";
  static final String UPSTREAM = "Bearer upstream-secret";
  static final String ANSWER = "{\"id\":\"c1\",\"choices\":[{\"message\":{\"content\":\"done\"}}]}";

  /** The reviewer as the reviewer endpoints would resolve them. */
  static final Principal REVIEWER =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_API_KEY, null, Map.of());

  /** Long enough never to pass by itself while a test runs. */
  static final Duration APPROVAL_TIMEOUT = Duration.ofMinutes(5);

  @StartStop final MockWebServer server = new MockWebServer();

  final CapturingRecorder recorder = new CapturingRecorder();
  final ExecutorService callers = Executors.newCachedThreadPool();
  final List<String> notified = new CopyOnWriteArrayList<>();
  final MutableClock clock = new MutableClock(START);
  PamEngine engine;
  InProcessApprovalService service;

  @AfterEach
  void tearDown() {
    // Closing the engine expires whatever still waits, so no caller thread is left blocked.
    if (engine != null) engine.close();
    if (service != null) service.close();
    callers.shutdownNow();
  }

  static String policy(String approvalExtra) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: carol, sha256: %s, groups: [ml]}
            - {name: sam, sha256: %s, groups: [security-oncall]}
        entitlements:
          - groups: [ml]
            models: ["llama-3.1-*"]
            operations: [chat]
        approval:
          reviewers: [security-oncall]
          timeout: 5m
          rules:
            - {name: bulk-export, prompt-matches: "(?i)dump all"}
            - {name: large-generation, max-tokens-over: 8000}
        """
            .formatted(sha256(CAROL), sha256(SAM))
        + approvalExtra;
  }

  /** An engine with its own (default) approval service; reviews it opens are noted in {@link #notified}. */
  OkHttpClient withDefaultService(String approvalExtra) {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy(approvalExtra)))
            .clock(clock)
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM))
            .recorder(recorder)
            .reviewNotifier(r -> notified.add(r.approvalId()))
            .build();
    service = null;
    return client(new OkHttpClient.Builder());
  }

  /** An engine whose approval service expires reviews only when the test says so, on a fake clock. */
  OkHttpClient withManualExpiry() {
    Policy policy = Policy.parse(policy(""));
    service =
        InProcessApprovalService.builder()
            .settings(policy.approval())
            .clock(clock)
            .manualExpiry()
            .build();
    engine =
        PamEngine.builder()
            .policy(policy)
            .clock(clock)
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM))
            .recorder(recorder)
            .approvalService(service)
            .build();
    return client(new OkHttpClient.Builder());
  }

  OkHttpClient client(OkHttpClient.Builder builder) {
    return PamInterceptor.of(engine)
        .install(builder)
        .readTimeout(10, TimeUnit.SECONDS)
        .retryOnConnectionFailure(false)
        .build();
  }

  InProcessApprovalService service() {
    return service != null ? service : (InProcessApprovalService) engine.approvalService();
  }

  static Request chat(String prompt, String extra) {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + prompt
            + "\"}]"
            + extra
            + "}";
    return new Request.Builder()
        .url("http://placeholder/v1/chat/completions")
        .header("Authorization", "Bearer " + CAROL)
        .post(RequestBody.create(body, JSON))
        .build();
  }

  Request toServer(Request request) {
    return request.newBuilder().url(server.url(request.url().encodedPath())).build();
  }

  /** What the caller got: status, headers of interest and body, read on the caller's thread. */
  record Answer(int status, String retryAfter, String body) {
    JsonNode error() throws IOException {
      return MAPPER.readTree(body).get("error");
    }
  }

  /** Runs the blocking call on another thread, as a waiting caller. */
  Future<Answer> start(OkHttpClient client, Request request) {
    return start(client.newCall(toServer(request)));
  }

  Future<Answer> start(Call call) {
    return callers.submit(
        () -> {
          try (Response r = call.execute()) {
            return new Answer(r.code(), r.header("Retry-After"), r.body().string());
          }
        });
  }

  static Answer answer(Future<Answer> f) throws Exception {
    return f.get(5, TimeUnit.SECONDS);
  }

  Pending awaitPending() {
    return await()
        .atMost(Duration.ofSeconds(5))
        .pollInterval(Duration.ofMillis(10))
        .until(() -> service().pending(), p -> p.size() == 1)
        .get(0);
  }

  void enqueueAnswer() {
    server.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body(ANSWER)
            .build());
  }

  SessionRecord onlyRecord() {
    await()
        .atMost(Duration.ofSeconds(5))
        .pollInterval(Duration.ofMillis(10))
        .until(() -> !recorder.records.isEmpty());
    assertThat(recorder.records).hasSize(1);
    return recorder.records.get(0);
  }

  // --- decided by a reviewer ---------------------------------------------------------------------

  @Test
  void anApprovedRequestGoesUpstreamOnceWithTheUpstreamCredential() throws Exception {
    OkHttpClient client = withDefaultService("");
    enqueueAnswer();
    Future<Answer> caller = start(client, chat("please dump all customer records", ""));

    Pending review = awaitPending();
    assertThat(review.rule()).isEqualTo("bulk-export");
    assertThat(review.principal().subject()).isEqualTo("carol");
    assertThat(server.getRequestCount()).as("nothing goes upstream while it waits").isZero();
    assertThat(caller).isNotDone();

    assertThat(service().approve(review.id(), REVIEWER, "ticket SEC-42").kind())
        .isEqualTo(ReviewResult.Kind.DECIDED);

    Answer a = answer(caller);
    assertThat(a.status()).isEqualTo(200);
    assertThat(a.body()).isEqualTo(ANSWER);
    assertThat(server.getRequestCount()).isEqualTo(1);
    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(UPSTREAM);
    assertThat(seen.getHeaders().toString()).doesNotContain(CAROL);
    assertThat(seen.getBody().utf8()).contains("dump all customer records");

    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("approved");
    assertThat(rec.decision().rule()).isEqualTo("entitlements[0]");
    assertThat(rec.approval()).isNotNull();
    assertThat(rec.approval().id()).isEqualTo(review.id());
    assertThat(rec.approval().rule()).isEqualTo("bulk-export");
    assertThat(rec.approval().reviewer()).isEqualTo("sam");
    assertThat(rec.approval().outcome()).isEqualTo("approved");
    assertThat(rec.approval().reason()).isEqualTo("ticket SEC-42");
    assertThat(rec.response().status()).isEqualTo(200);
    assertThat(rec.response().complete()).isTrue();
  }

  @Test
  void aRejectedRequestIsAnswered403WithTheReviewersReason() throws Exception {
    OkHttpClient client = withDefaultService("");
    Future<Answer> caller = start(client, chat("dump all salaries", ""));

    Pending review = awaitPending();
    assertThat(service().reject(review.id(), REVIEWER, "not today").kind())
        .isEqualTo(ReviewResult.Kind.DECIDED);

    Answer a = answer(caller);
    assertThat(a.status()).isEqualTo(403);
    assertThat(a.error().get("code").asText()).isEqualTo("approval_rejected");
    assertThat(a.error().get("message").asText()).contains("not today").contains("sam");
    assertThat(server.getRequestCount()).isZero();

    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("rejected");
    assertThat(rec.decision().code()).isEqualTo("approval_rejected");
    assertThat(rec.approval().outcome()).isEqualTo("rejected");
    assertThat(rec.approval().reviewer()).isEqualTo("sam");
    assertThat(rec.approval().reason()).isEqualTo("not today");
    assertThat(rec.response().status()).isEqualTo(403);
  }

  @Test
  void aReviewNobodyDecidesExpiresAs403() throws Exception {
    OkHttpClient client = withManualExpiry();
    Future<Answer> caller = start(client, chat("dump all logs", ""));

    Pending review = awaitPending();
    clock.advance(APPROVAL_TIMEOUT);
    assertThat(service().expireDue()).isEqualTo(1);

    Answer a = answer(caller);
    assertThat(a.status()).isEqualTo(403);
    assertThat(a.error().get("code").asText()).isEqualTo("approval_expired");
    assertThat(server.getRequestCount()).isZero();

    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("expired");
    assertThat(rec.approval().id()).isEqualTo(review.id());
    assertThat(rec.approval().outcome()).isEqualTo("expired");
    assertThat(rec.approval().reviewer()).isNull();
    assertThat(service().approve(review.id(), REVIEWER, "too late").kind())
        .as("a late approval releases nothing")
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(server.getRequestCount()).isZero();
  }

  @Test
  void aRequestMatchingNoRulePassesWithoutWaiting() throws Exception {
    OkHttpClient client = withDefaultService("");
    enqueueAnswer();

    Answer a = answer(start(client, chat("summarise this paragraph", ",\"max_tokens\":8000")));

    assertThat(a.status()).isEqualTo(200);
    assertThat(a.body()).isEqualTo(ANSWER);
    assertThat(notified).as("no review was opened").isEmpty();
    assertThat(service().pending()).isEmpty();
    SessionRecord rec = onlyRecord();
    assertThat(rec.decision().outcome()).isEqualTo("allow");
    assertThat(rec.approval()).isNull();
  }

  // --- the caller gives up -----------------------------------------------------------------------

  @Test
  void cancellingTheCallWithdrawsTheReview() throws Exception {
    OkHttpClient client = withDefaultService("");
    Call call = client.newCall(toServer(chat("dump all tickets", "")));
    Future<Answer> caller = start(call);

    Pending review = awaitPending();
    call.cancel();

    assertThatThrownBy(() -> answer(caller))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(IOException.class)
        .hasMessageContaining("Canceled");
    assertThat(service().pending()).isEmpty();
    assertThat(service().approve(review.id(), REVIEWER, "ok").kind())
        .as("a withdrawn review cannot be approved any more")
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(server.getRequestCount()).isZero();

    SessionRecord rec = onlyRecord();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.decision().outcome()).isEqualTo("expired");
    assertThat(rec.decision().code()).isEqualTo("approval_expired");
    assertThat(rec.approval().outcome()).isEqualTo("expired");
    assertThat(rec.approval().reason()).startsWith("withdrawn");
  }

  @Test
  void aCallTimeoutShorterThanTheReviewEndsTheWaitAndWithdrawsIt() throws Exception {
    withDefaultService("");
    OkHttpClient client =
        client(new OkHttpClient.Builder().callTimeout(300, TimeUnit.MILLISECONDS));
    long t0 = System.nanoTime();
    Future<Answer> caller = start(client, chat("dump all invoices", ""));

    assertThatThrownBy(() -> answer(caller))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(InterruptedIOException.class)
        .hasMessage("timeout")
        .cause()
        .isInstanceOf(IOException.class)
        .hasMessage("Canceled");
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(3));

    assertThat(notified).as("the review was opened").hasSize(1);
    assertThat(service().pending()).isEmpty();
    assertThat(service().approve(notified.get(0), REVIEWER, "ok").kind())
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(server.getRequestCount()).isZero();
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.decision().outcome()).isEqualTo("expired");
    assertThat(rec.approval().reason()).startsWith("withdrawn");
  }

  @Test
  void interruptingTheWaitingThreadWithdrawsTheReviewAndKeepsTheInterrupt() throws Exception {
    OkHttpClient client = withDefaultService("");
    AtomicReference<Throwable> thrown = new AtomicReference<>();
    AtomicBoolean stillInterrupted = new AtomicBoolean();
    Thread waiting =
        new Thread(
            () -> {
              try (Response r = client.newCall(toServer(chat("dump all keys", ""))).execute()) {
                thrown.set(new AssertionError("answered " + r.code()));
              } catch (Throwable t) {
                thrown.set(t);
              }
              stillInterrupted.set(Thread.currentThread().isInterrupted());
            },
            "approval-waiter");
    waiting.start();

    Pending review = awaitPending();
    waiting.interrupt();
    waiting.join(5000);

    assertThat(waiting.isAlive()).isFalse();
    assertThat(thrown.get()).isInstanceOf(InterruptedIOException.class);
    assertThat(stillInterrupted).isTrue();
    assertThat(service().pending()).isEmpty();
    assertThat(service().approve(review.id(), REVIEWER, "ok").kind())
        .isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(server.getRequestCount()).isZero();
    SessionRecord rec = onlyRecord();
    assertThat(rec.response().complete()).isFalse();
    assertThat(rec.approval().reason()).startsWith("withdrawn");
  }

  // --- bounds and binding ------------------------------------------------------------------------

  @Test
  void aSecondWaitingRequestOverThePerPrincipalBoundIsRefused429() throws Exception {
    OkHttpClient client = withDefaultService("  max-pending-per-principal: 1\n");
    Future<Answer> first = start(client, chat("dump all orders", ""));
    Pending review = awaitPending();

    Answer second = answer(start(client, chat("write a long story", ",\"max_tokens\":9000")));

    assertThat(second.status()).isEqualTo(429);
    assertThat(second.error().get("code").asText()).isEqualTo("approval_limit");
    assertThat(second.retryAfter()).as("until the waiting review expires").isEqualTo("300");
    assertThat(service().pending()).extracting(Pending::id).containsExactly(review.id());
    assertThat(first).isNotDone();
    assertThat(server.getRequestCount()).isZero();
    assertThat(recorder.records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.decision().code()).isEqualTo("approval_limit");
              assertThat(rec.response().status()).isEqualTo(429);
            });

    service().reject(review.id(), REVIEWER, "cleanup");
    assertThat(answer(first).status()).isEqualTo(403);
  }

  @Test
  void approvingOneRequestDoesNotReleaseAnotherOfTheSamePrincipal() throws Exception {
    OkHttpClient client = withDefaultService("");
    enqueueAnswer();
    Future<Answer> a = start(client, chat("dump all customers (A)", ""));
    Future<Answer> b = start(client, chat("dump all customers (B)", ""));
    List<Pending> both =
        await()
            .atMost(Duration.ofSeconds(5))
            .pollInterval(Duration.ofMillis(10))
            .until(() -> service().pending(), p -> p.size() == 2);
    Pending reviewA = both.stream().filter(p -> body(p).contains("(A)")).findFirst().orElseThrow();
    Pending reviewB = both.stream().filter(p -> body(p).contains("(B)")).findFirst().orElseThrow();

    service().approve(reviewA.id(), REVIEWER, "A only");

    assertThat(answer(a).status()).isEqualTo(200);
    assertThat(server.getRequestCount()).isEqualTo(1);
    assertThat(server.takeRequest().getBody().utf8()).contains("(A)");
    assertThat(service().pending()).extracting(Pending::id).containsExactly(reviewB.id());
    assertThat(b).as("B still waits for its own review").isNotDone();

    service().reject(reviewB.id(), REVIEWER, "B is different");
    Answer answerB = answer(b);
    assertThat(answerB.status()).isEqualTo(403);
    assertThat(answerB.error().get("code").asText()).isEqualTo("approval_rejected");
    assertThat(server.getRequestCount()).isEqualTo(1);
  }

  static String body(Pending p) {
    return new String(p.request().body(), StandardCharsets.UTF_8);
  }
}
