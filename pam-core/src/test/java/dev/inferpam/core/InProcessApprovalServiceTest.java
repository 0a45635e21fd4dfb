package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService.Outcome;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.ApprovalService.Status;
import dev.inferpam.api.ApprovalService.Ticket;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.approval.RequestDigest;
import dev.inferpam.testsupport.MutableClock;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The in-process approval service, driven by a fake clock and {@code expireDue()}: no sleeps. */
class InProcessApprovalServiceTest {
  static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");
  static final Principal ALICE =
      new Principal("alice", Set.of("ml"), Principal.VIA_OIDC, "https://idp", Map.of());
  static final Principal BOB =
      new Principal("bob", Set.of("ml"), Principal.VIA_OIDC, "https://idp", Map.of());
  static final Principal SEC =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_OIDC, "https://idp", Map.of());

  /** A reviewer who is also the requester ALICE, under another issuer. */
  static final Principal ALICE_REVIEWER =
      Principal.of("alice", Set.of("security-oncall"), Principal.VIA_API_KEY);

  final MutableClock clock = new MutableClock(T0);
  InProcessApprovalService service;

  InProcessApprovalService service(Duration grant, int perPrincipal, int total) {
    service =
        InProcessApprovalService.builder()
            .clock(clock)
            .reviewers(Set.of("security-oncall"))
            .timeout(Duration.ofMinutes(5))
            .grant(grant)
            .maxPendingPerPrincipal(perPrincipal)
            .maxPending(total)
            .manualExpiry()
            .build();
    return service;
  }

  InProcessApprovalService service() {
    return service(Duration.ZERO, 5, 1000);
  }

  @AfterEach
  void close() {
    if (service != null) service.close();
  }

  static InferenceRequest req(String prompt) {
    String body = "{\"model\":\"m\",\"prompt\":\"" + prompt + "\"}";
    return new InferenceRequest(
        "POST",
        "/v1/completions",
        null,
        Map.of("authorization", List.of("Bearer tok")),
        body.getBytes(StandardCharsets.UTF_8),
        "10.0.0.1");
  }

  CompletableFuture<Outcome> ask(Principal p, String prompt) {
    return ask(p, prompt, "bulk-export");
  }

  CompletableFuture<Outcome> ask(Principal p, String prompt, String rule) {
    return submit(p, prompt, rule).outcome().toCompletableFuture();
  }

  Ticket submit(Principal p, String prompt, String rule) {
    InferenceRequest r = req(prompt);
    return service.request(p, r, rule, RequestDigest.of(p, r));
  }

  String onlyPendingId() {
    List<Pending> pending = service.pending();
    assertThat(pending).hasSize(1);
    return pending.get(0).id();
  }

  @Test
  void approveCompletesTheWaitingStageWithReviewerReasonAndTime() throws Exception {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    assertThat(stage).isNotDone();
    Pending p = service.pending().get(0);
    assertThat(p.id()).matches("apr-[0-9a-f]{20}");
    assertThat(p.principal()).isEqualTo(ALICE);
    assertThat(p.rule()).isEqualTo("bulk-export");
    assertThat(p.digest()).isEqualTo(RequestDigest.of(ALICE, req("dump all")));
    assertThat(p.created()).isEqualTo(T0);
    assertThat(p.expires()).isEqualTo(T0.plus(Duration.ofMinutes(5)));
    assertThat(p.request().headers()).isEmpty(); // the caller's credential is not kept
    assertThat(p.request().bodyText()).contains("dump all");

    clock.advance(Duration.ofSeconds(30));
    ReviewResult r = service.approve(p.id(), SEC, "ticket 42");
    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.DECIDED);
    Outcome expected = new Outcome(p.id(), Status.APPROVED, "sam", "ticket 42", T0.plusSeconds(30));
    assertThat(r.outcome()).isEqualTo(expected);
    assertThat(stage).isCompletedWithValue(expected);
    assertThat(service.pending()).isEmpty();
  }

  @Test
  void rejectCompletesTheStageRejected() {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    ReviewResult r = service.reject(onlyPendingId(), SEC, "not for prod data");
    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.DECIDED);
    assertThat(stage.join().status()).isEqualTo(Status.REJECTED);
    assertThat(stage.join().reviewer()).isEqualTo("sam");
    assertThat(stage.join().reason()).isEqualTo("not for prod data");
  }

  @Test
  void noDecisionByTheTimeoutExpiresWithTheFakeClock() {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    String id = onlyPendingId();
    clock.advance(Duration.ofMinutes(5).minusMillis(1));
    assertThat(service.expireDue()).isZero();
    assertThat(stage).isNotDone();
    clock.advance(Duration.ofMillis(1));
    assertThat(service.expireDue()).isEqualTo(1);
    Outcome o = stage.join();
    assertThat(o.status()).isEqualTo(Status.EXPIRED);
    assertThat(o.approvalId()).isEqualTo(id);
    assertThat(o.reviewer()).isNull();
    assertThat(o.reason()).isEqualTo("no decision within 5m");
    assertThat(o.decided()).isEqualTo(T0.plus(Duration.ofMinutes(5)));
    assertThat(service.approve(id, SEC, null).kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
  }

  @Test
  void aLateDecisionLosesToTheDeadlineEvenWithoutTheExpiryThread() {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    String id = onlyPendingId();
    clock.advance(Duration.ofMinutes(6));
    ReviewResult r = service.approve(id, SEC, "late");
    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(r.outcome().status()).isEqualTo(Status.EXPIRED);
    assertThat(stage.join().status()).isEqualTo(Status.EXPIRED);
  }

  @Test
  void nobodyDecidesTheirOwnRequest() {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    String id = onlyPendingId();
    assertThat(service.approve(id, ALICE_REVIEWER, "me").kind())
        .isEqualTo(ReviewResult.Kind.SELF_APPROVAL);
    assertThat(service.reject(id, ALICE_REVIEWER, "me").kind())
        .isEqualTo(ReviewResult.Kind.SELF_APPROVAL);
    assertThat(stage).isNotDone();
    assertThat(service.pending()).hasSize(1);
  }

  @Test
  void aReviewerIsNotShownTheirOwnRequestsAndANonReviewerIsShownNothing() {
    service();
    ask(ALICE, "dump all");
    ask(BOB, "dump all");
    assertThat(service.pending()).hasSize(2);
    assertThat(service.pending(SEC))
        .extracting(p -> p.principal().subject())
        .containsExactly("alice", "bob");
    assertThat(service.pending(ALICE_REVIEWER))
        .extracting(p -> p.principal().subject())
        .containsExactly("bob");
    assertThat(service.pending(BOB)).isEmpty();
    assertThat(service.isReviewer(ALICE_REVIEWER)).isTrue();
    assertThat(service.isReviewer(BOB)).isFalse();
  }

  @Test
  void onlyReviewersDecideAndTheyCannotProbeIds() {
    service();
    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    String id = onlyPendingId();
    assertThat(service.approve(id, BOB, null).kind()).isEqualTo(ReviewResult.Kind.NOT_A_REVIEWER);
    assertThat(service.approve("apr-nope", BOB, null).kind())
        .isEqualTo(ReviewResult.Kind.NOT_A_REVIEWER);
    assertThat(stage).isNotDone();
  }

  @Test
  void anUnknownIdIsNotFoundAndASecondDecisionIsAlreadyDecidedWithTheFirstOutcome() {
    service();
    ReviewResult unknown = service.approve("apr-00000000000000000000", SEC, null);
    assertThat(unknown.kind()).isEqualTo(ReviewResult.Kind.NOT_FOUND);
    assertThat(unknown.outcome()).isNull();

    CompletableFuture<Outcome> stage = ask(ALICE, "dump all");
    String id = onlyPendingId();
    Outcome first = service.approve(id, SEC, "ok").outcome();
    ReviewResult again = service.reject(id, SEC, "changed my mind");
    assertThat(again.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(again.outcome()).isEqualTo(first);
    assertThat(stage.join().status()).isEqualTo(Status.APPROVED);
  }

  @Test
  void anApprovalForOneRequestDoesNotLetAnotherThrough() {
    service();
    CompletableFuture<Outcome> a = ask(ALICE, "dump all users");
    CompletableFuture<Outcome> b = ask(ALICE, "dump all salaries");
    List<Pending> pending = service.pending();
    assertThat(pending).hasSize(2);
    assertThat(pending.get(0).digest()).isNotEqualTo(pending.get(1).digest());
    service.approve(pending.get(0).id(), SEC, "users are fine");
    assertThat(a.join().status()).isEqualTo(Status.APPROVED);
    assertThat(b).isNotDone();
    // With grant 0 the same request again waits for a new review.
    CompletableFuture<Outcome> again = ask(ALICE, "dump all users");
    assertThat(again).isNotDone();
    assertThat(service.pending())
        .extracting(Pending::id)
        .doesNotContain(pending.get(0).id())
        .hasSize(2);
  }

  @Test
  void anIdenticalRequestWhileTheFirstWaitsJoinsItsReview() {
    service(Duration.ZERO, 1, 10);
    CompletableFuture<Outcome> first = ask(ALICE, "dump all");
    CompletableFuture<Outcome> retry =
        ask(ALICE, "dump all"); // same digest: no new review, no bound hit
    String id = onlyPendingId();
    service.approve(id, SEC, "ok");
    assertThat(first.join()).isEqualTo(retry.join());
  }

  @Test
  void withGrantZeroEveryRequestWaits() {
    service(Duration.ZERO, 5, 1000);
    ask(ALICE, "dump all");
    service.approve(onlyPendingId(), SEC, "ok");
    assertThat(ask(ALICE, "dump every row")).isNotDone();
  }

  @Test
  void aGrantCoversThePrincipalsLaterRequestsUnderTheSameRuleForItsWindow() {
    service(Duration.ofMinutes(10), 5, 1000);
    ask(ALICE, "dump all");
    String id = onlyPendingId();
    service.approve(id, SEC, "quarterly export");
    Instant decided = T0;

    clock.advance(Duration.ofMinutes(9));
    CompletableFuture<Outcome> covered = ask(ALICE, "dump every other table");
    assertThat(covered).isDone();
    Outcome o = covered.join();
    assertThat(o.status()).isEqualTo(Status.APPROVED);
    assertThat(o.approvalId()).isEqualTo(id);
    assertThat(o.reviewer()).isEqualTo("sam");
    assertThat(o.decided()).isEqualTo(decided);
    assertThat(o.reason())
        .isEqualTo("within the 10m grant of approval " + id + ": quarterly export");
    assertThat(service.pending()).isEmpty();

    // Not for another rule, not for another principal.
    assertThat(ask(ALICE, "x", "large-generation")).isNotDone();
    assertThat(ask(BOB, "dump all")).isNotDone();

    // Not after the window.
    clock.advance(Duration.ofMinutes(1));
    assertThat(ask(ALICE, "dump all again")).isNotDone();
  }

  @Test
  void aRejectionGrantsNothing() {
    service(Duration.ofMinutes(10), 5, 1000);
    ask(ALICE, "dump all");
    service.reject(onlyPendingId(), SEC, "no");
    assertThat(ask(ALICE, "dump all")).isNotDone();
  }

  @Test
  void pendingReviewsAreBoundedPerPrincipal() {
    service(Duration.ZERO, 2, 10);
    ask(ALICE, "a");
    clock.advance(Duration.ofSeconds(10));
    ask(ALICE, "b");
    CompletableFuture<Outcome> third = ask(ALICE, "c");
    assertThat(third).isCompletedExceptionally();
    ApprovalLimitException e = cause(third);
    assertThat(e.scope()).isEqualTo(ApprovalLimitException.Scope.PRINCIPAL);
    assertThat(e.limit()).isEqualTo(2);
    // The first of ALICE's reviews expires 4m50s from now.
    assertThat(e.retryAfter()).isEqualTo(Duration.ofMinutes(5).minusSeconds(10));
    assertThat(e.getMessage())
        .isEqualTo(
            "approval rule \"bulk-export\": this principal already has 2 requests "
                + "waiting for review (approval.max-pending-per-principal)");
    assertThat(service.pending()).hasSize(2);
    // Others still get in; a decision frees room.
    assertThat(ask(BOB, "a")).isNotDone();
    service.reject(service.pending().get(0).id(), SEC, null);
    assertThat(ask(ALICE, "c")).isNotDone();
  }

  @Test
  void pendingReviewsAreBoundedInTotal() {
    service(Duration.ZERO, 1, 2);
    ask(ALICE, "a");
    ask(BOB, "a");
    CompletableFuture<Outcome> third = ask(SEC, "a");
    ApprovalLimitException e = cause(third);
    assertThat(e.scope()).isEqualTo(ApprovalLimitException.Scope.TOTAL);
    assertThat(e.limit()).isEqualTo(2);
    assertThat(e.retryAfter()).isEqualTo(Duration.ofMinutes(5));
    assertThat(ApprovalLimitException.CODE).isEqualTo("approval_limit");
    // Expiry frees room too.
    clock.advance(Duration.ofMinutes(5));
    assertThat(ask(SEC, "a")).isNotDone();
  }

  @Test
  void aCallerThatWithdrawsEndsItsReviewWithdrawn() {
    service(Duration.ZERO, 1, 10);
    Ticket ticket = submit(ALICE, "a", "bulk-export");
    String id = onlyPendingId();
    assertThat(ticket.approvalId()).isEqualTo(id);
    clock.advance(Duration.ofSeconds(3));
    ticket.withdraw();
    assertThat(ticket.outcome().toCompletableFuture())
        .isCompletedWithValue(
            new Outcome(
                id,
                Status.WITHDRAWN,
                null,
                "withdrawn: the caller stopped waiting",
                T0.plusSeconds(3)));
    assertThat(service.pending()).isEmpty();
    ReviewResult late = service.approve(id, SEC, null);
    assertThat(late.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(late.outcome().status()).isEqualTo(Status.WITHDRAWN);
    ticket.withdraw(); // idempotent
    assertThat(ask(ALICE, "b")).isNotDone(); // its place is free again
  }

  @Test
  void aCallerThatCancelsItsStageWithdrawsItsReview() {
    service(Duration.ZERO, 1, 10);
    CompletableFuture<Outcome> first = ask(ALICE, "a");
    String id = onlyPendingId();
    first.cancel(false);
    assertThat(service.pending()).isEmpty();
    assertThat(service.approve(id, SEC, null).kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(ask(ALICE, "b")).isNotDone(); // its place is free again
  }

  @Test
  void aJoinedReviewStaysWhileOneCallerStillWaits() {
    service();
    CompletableFuture<Outcome> first = ask(ALICE, "a");
    Ticket second = submit(ALICE, "a", "bulk-export");
    Ticket third = submit(ALICE, "a", "bulk-export");
    first.cancel(false);
    third.withdraw();
    assertThat(third.outcome().toCompletableFuture().join().status()).isEqualTo(Status.WITHDRAWN);
    service.approve(onlyPendingId(), SEC, null);
    assertThat(second.outcome().toCompletableFuture().join().status()).isEqualTo(Status.APPROVED);
  }

  @Test
  void aWithdrawalAfterTheDecisionKeepsTheDecision() {
    service();
    Ticket ticket = submit(ALICE, "a", "bulk-export");
    service.approve(onlyPendingId(), SEC, "ok");
    ticket.withdraw();
    assertThat(ticket.outcome().toCompletableFuture().join().status()).isEqualTo(Status.APPROVED);
  }

  @Test
  void closeEndsEveryWaitingReviewClosedAndRefusesLaterRequests() {
    service();
    CompletableFuture<Outcome> waiting = ask(ALICE, "a");
    service.close();
    assertThat(waiting.join().status()).isEqualTo(Status.CLOSED);
    assertThat(waiting.join().reason()).isEqualTo("approval service closed");
    Ticket later = submit(BOB, "a", "bulk-export");
    assertThat(later.approvalId()).isNull();
    assertThat(later.outcome().toCompletableFuture().join().status()).isEqualTo(Status.CLOSED);
  }

  @Test
  void theOwnExpiryThreadIsStoppedOnClose() {
    InProcessApprovalService s =
        InProcessApprovalService.builder().reviewers(Set.of("sec")).build();
    CompletionStage<Outcome> stage = s.request(ALICE, req("a"), "r", "d").outcome();
    s.close();
    assertThat(stage.toCompletableFuture().join().status()).isEqualTo(Status.CLOSED);
  }

  @Test
  void settingsComeFromThePolicySection() {
    Policy.Approval a =
        Policy.parse(
                """
        version: 1
        approval:
          reviewers: [security-oncall]
          timeout: 30s
          grant: 1m
          max-pending-per-principal: 1
          max-pending: 3
          rules:
            - {name: r, max-tokens-over: 1}
        """)
            .approval();
    service = InProcessApprovalService.builder().settings(a).clock(clock).manualExpiry().build();
    CompletableFuture<Outcome> stage = ask(ALICE, "a");
    assertThat(service.pending().get(0).expires()).isEqualTo(T0.plusSeconds(30));
    assertThat(ask(ALICE, "b")).isCompletedExceptionally();
    clock.advance(Duration.ofSeconds(30));
    service.expireDue();
    assertThat(stage.join().reason()).isEqualTo("no decision within 30s");
  }

  @Test
  void badArgumentsAreRefused() {
    service();
    assertThatThrownBy(() -> service.request(ALICE, req("a"), " ", "d"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> service.request(ALICE, req("a"), "r", ""))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> service.request(null, req("a"), "r", "d"))
        .isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> service.approve("x", SEC, "y".repeat(1001)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("reason is longer than 1000 chars");
    assertThatThrownBy(() -> InProcessApprovalService.builder().build())
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> InProcessApprovalService.builder().reviewers(Set.of("*")))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> InProcessApprovalService.builder().timeout(Duration.ZERO))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(
            () ->
                InProcessApprovalService.builder()
                    .reviewers(Set.of("s"))
                    .maxPendingPerPrincipal(3)
                    .maxPending(2)
                    .build())
        .isInstanceOf(IllegalStateException.class);
  }

  @Test
  void concurrentRequestsAndDecisionsCompleteEveryStageOnce() throws Exception {
    service(Duration.ZERO, 5, 1000);
    int threads = 8;
    int perThread = 50;
    List<CompletableFuture<Outcome>> stages =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    java.util.concurrent.atomic.AtomicInteger decided =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newFixedThreadPool(threads + 2);
    try {
      java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
      List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        done.add(
            pool.submit(
                () -> {
                  start.await();
                  for (int i = 0; i < perThread; i++) {
                    Principal p =
                        Principal.of(
                            "user-" + thread + "-" + i, Set.of("ml"), Principal.VIA_API_KEY);
                    stages.add(ask(p, "q" + i));
                  }
                  return null;
                }));
      }
      // Two reviewers decide while requests arrive, racing for the same ids, until all are decided.
      for (int t = 0; t < 2; t++) {
        boolean approve = t == 0;
        done.add(
            pool.submit(
                () -> {
                  start.await();
                  while (decided.get() < threads * perThread) {
                    for (Pending p : service.pending()) {
                      ReviewResult r =
                          approve
                              ? service.approve(p.id(), SEC, null)
                              : service.reject(p.id(), SEC, null);
                      if (r.kind() == ReviewResult.Kind.DECIDED) decided.incrementAndGet();
                    }
                    Thread.onSpinWait();
                  }
                  return null;
                }));
      }
      start.countDown();
      for (java.util.concurrent.Future<?> f : done)
        f.get(30, java.util.concurrent.TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }
    assertThat(stages).hasSize(threads * perThread).allSatisfy(s -> assertThat(s).isDone());
    assertThat(stages.stream().map(s -> s.join().approvalId()).distinct())
        .hasSize(threads * perThread);
    assertThat(decided.get()).isEqualTo(threads * perThread);
    assertThat(service.pending()).isEmpty();
  }

  private static ApprovalLimitException cause(CompletableFuture<Outcome> stage) {
    try {
      stage.get();
    } catch (ExecutionException e) {
      assertThat(e.getCause()).isInstanceOf(ApprovalLimitException.class);
      return (ApprovalLimitException) e.getCause();
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
    throw new AssertionError("stage completed normally");
  }
}
