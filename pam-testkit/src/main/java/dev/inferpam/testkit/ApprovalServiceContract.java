package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.ApprovalService.Outcome;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.ApprovalService.Status;
import dev.inferpam.api.ApprovalService.Ticket;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.testsupport.MutableClock;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The compatibility kit for {@link ApprovalService} implementations: extend it in a JUnit 5
 * test, implement {@link #createService(Clock, Settings)}, and the tests check what the engine
 * and the reviewer endpoints rely on — the requester side (tickets, outcomes, withdrawal,
 * bounds, close), the reviewer side (who may list and decide, self-approval, typed results),
 * binding of a review to one request, expiry on the injected clock, and thread-safety.
 *
 * <pre>{@code
 * class MyApprovalServiceContractTest extends ApprovalServiceContract {
 *   protected ApprovalService createService(Clock clock, Settings settings) {
 *     return new MyApprovalService(clock, settings.reviewerGroups(), settings.timeout(),
 *         settings.maxPendingPerPrincipal(), settings.maxPending());
 *   }
 * }
 * }</pre>
 *
 * <p>Each test creates one service (a fresh one per test, with a clock the test moves by hand)
 * and closes it afterwards. Time only passes when a test moves the clock: a deadline is reached
 * when the clock says so, and the kit then calls {@link #clockMoved(ApprovalService)} (a hook
 * for services that expire on their own schedule) before it asks the service anything. A stage
 * the contract expects to complete is waited for at most {@link #outcomeWait()}.
 */
public abstract class ApprovalServiceContract {
  /** When every test starts, on the test's clock. */
  protected static final Instant T0 = Instant.parse("2026-11-28T12:00:00Z");

  /** The reviewer group of the default settings. */
  protected static final String REVIEWERS = "security-oncall";

  /** A requester. */
  protected static final Principal ALICE =
      new Principal("alice", Set.of("ml"), Principal.VIA_OIDC, "https://idp.example.com", Map.of());

  /** Another requester. */
  protected static final Principal BOB = Principal.of("bob", Set.of("ml"), Principal.VIA_API_KEY);

  /** A reviewer. */
  protected static final Principal SAM =
      new Principal(
          "sam", Set.of(REVIEWERS), Principal.VIA_OIDC, "https://idp.example.com", Map.of());

  /** Another reviewer. */
  protected static final Principal RITA =
      Principal.of("rita", Set.of(REVIEWERS, "ml"), Principal.VIA_API_KEY);

  /** ALICE again, as a reviewer identified another way (an API key under the same subject). */
  protected static final Principal ALICE_AS_REVIEWER =
      Principal.of("alice", Set.of(REVIEWERS), Principal.VIA_API_KEY);

  /**
   * What a service under test is configured with.
   *
   * @param reviewerGroups         groups whose members are reviewers
   * @param timeout                how long a review waits for a decision
   * @param maxPendingPerPrincipal reviews waiting per requester at most
   * @param maxPending             reviews waiting in total at most
   */
  protected record Settings(
      Set<String> reviewerGroups, Duration timeout, int maxPendingPerPrincipal, int maxPending) {
    public Settings {
      reviewerGroups = Set.copyOf(reviewerGroups);
      Objects.requireNonNull(timeout, "timeout");
    }
  }

  /** The settings of most tests: reviewers {@value #REVIEWERS}, 5 minutes, 5 per principal, 100 in total. */
  protected static final Settings DEFAULTS =
      new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 5, 100);

  private final MutableClock clock = new MutableClock(T0);
  private ApprovalService service;

  /** For an approval service's test class to extend. */
  protected ApprovalServiceContract() {}

  /** A new, empty service on {@code clock}; called once per test. */
  protected abstract ApprovalService createService(Clock clock, Settings settings) throws Exception;

  /**
   * Called after a test moved the clock, before it asks the service anything: a service that
   * expires reviews on its own schedule (not on every call) does so now. Default: nothing.
   */
  protected void clockMoved(ApprovalService service) throws Exception {}

  /** How long a stage the contract expects to complete may take; default 5 seconds. */
  protected Duration outcomeWait() {
    return Duration.ofSeconds(5);
  }

  /** The service of the current test, created with {@code settings} on first use. */
  protected final ApprovalService service(Settings settings) throws Exception {
    if (service == null) service = createService(clock, settings);
    return service;
  }

  /** The service of the current test, created with {@link #DEFAULTS} on first use. */
  protected final ApprovalService service() throws Exception {
    return service(DEFAULTS);
  }

  @AfterEach
  void closeService() {
    if (service != null) service.close();
  }

  // ---------------------------------------------------------------------------------- fixtures

  /** A chat request with {@code prompt}, carrying the caller's credential as the engine hands it over. */
  protected static InferenceRequest request(String prompt) {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + prompt
            + "\"}]}";
    return new InferenceRequest(
        "POST",
        "/v1/chat/completions",
        null,
        Map.of("authorization", List.of("Bearer caller-token-7f3a")),
        body.getBytes(StandardCharsets.UTF_8),
        "127.0.0.1");
  }

  /** The digest of {@code prompt} asked by {@code who} (any stable string will do for a service). */
  protected static String digest(Principal who, String prompt) {
    return "sha256-" + who.subject() + "-" + Integer.toHexString(prompt.hashCode());
  }

  /** Submits {@code who}'s request with {@code prompt} under rule {@code bulk-export}. */
  protected final Ticket ask(Principal who, String prompt) throws Exception {
    return ask(who, prompt, "bulk-export");
  }

  protected final Ticket ask(Principal who, String prompt, String rule) throws Exception {
    Ticket t = service().request(who, request(prompt), rule, digest(who, prompt));
    assertThat(t).as("the ticket of a request").isNotNull();
    assertThat(t.outcome()).as("the ticket's stage").isNotNull();
    return t;
  }

  /** Moves the test's clock and tells the service. */
  protected final void advance(Duration d) throws Exception {
    clock.advance(d);
    clockMoved(service());
  }

  private CompletableFuture<Outcome> stage(Ticket t) {
    return t.outcome().toCompletableFuture();
  }

  private Outcome outcome(Ticket t) throws Exception {
    try {
      return stage(t).get(outcomeWait().toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new AssertionError("the ticket's stage did not complete within " + outcomeWait(), e);
    }
  }

  private ApprovalLimitException limit(Ticket t) throws Exception {
    try {
      Outcome o = stage(t).get(outcomeWait().toMillis(), TimeUnit.MILLISECONDS);
      throw new AssertionError(
          "expected the stage to fail with ApprovalLimitException, it completed " + o);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      assertThat(cause).isInstanceOf(ApprovalLimitException.class);
      return (ApprovalLimitException) cause;
    }
  }

  private String onlyPendingId() throws Exception {
    List<Pending> pending = service().pending(SAM);
    assertThat(pending).hasSize(1);
    return pending.get(0).id();
  }

  // ----------------------------------------------------------------------------- requester side

  @Test
  void aRequestOpensAReviewThatReviewersSeeWithoutTheCallersHeaders() throws Exception {
    Ticket t = ask(ALICE, "dump all customer rows");

    assertThat(stage(t)).isNotDone();
    assertThat(t.approvalId()).as("the review's id").isNotBlank();
    List<Pending> pending = service().pending(SAM);
    assertThat(pending).hasSize(1);
    Pending p = pending.get(0);
    assertThat(p.id()).isEqualTo(t.approvalId());
    assertThat(p.principal().subject()).isEqualTo("alice");
    assertThat(p.rule()).isEqualTo("bulk-export");
    assertThat(p.digest()).isEqualTo(digest(ALICE, "dump all customer rows"));
    assertThat(p.created()).isEqualTo(T0);
    assertThat(p.expires()).isEqualTo(T0.plus(DEFAULTS.timeout()));
    InferenceRequest asked = request("dump all customer rows");
    assertThat(p.request().method()).isEqualTo(asked.method());
    assertThat(p.request().path()).isEqualTo(asked.path());
    assertThat(p.request().body()).isEqualTo(asked.body());
    assertThat(p.request().headers()).as("the caller's credential is not kept").isEmpty();
  }

  @Test
  void approvingCompletesTheCallerApprovedWithReviewerReasonAndTime() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    String id = onlyPendingId();
    advance(Duration.ofSeconds(30));

    ReviewResult r = service().approve(id, SAM, "ticket SEC-42");

    Outcome expected = new Outcome(id, Status.APPROVED, "sam", "ticket SEC-42", T0.plusSeconds(30));
    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.DECIDED);
    assertThat(r.outcome()).isEqualTo(expected);
    assertThat(outcome(t)).isEqualTo(expected);
    assertThat(service().pending(SAM)).isEmpty();
  }

  @Test
  void rejectingCompletesTheCallerRejectedWithReviewerAndReason() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    String id = onlyPendingId();

    ReviewResult r = service().reject(id, RITA, "not during the freeze");

    Outcome expected = new Outcome(id, Status.REJECTED, "rita", "not during the freeze", T0);
    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.DECIDED);
    assertThat(r.outcome()).isEqualTo(expected);
    assertThat(outcome(t)).isEqualTo(expected);
    assertThat(service().pending(SAM)).isEmpty();
  }

  @Test
  void aReasonIsOptionalAndKeptWhole() throws Exception {
    Ticket first = ask(ALICE, "one");
    Ticket second = ask(ALICE, "two");
    String longest = "r".repeat(ApprovalService.MAX_REASON_CHARS);

    assertThat(service().approve(first.approvalId(), SAM, null).outcome().reason()).isNull();
    assertThat(service().approve(second.approvalId(), SAM, longest).outcome().reason())
        .isEqualTo(longest);
    assertThat(outcome(first).reason()).isNull();
    assertThat(outcome(second).reason()).isEqualTo(longest);
  }

  @Test
  void aReviewNobodyDecidesExpiresAtItsDeadline() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    String id = onlyPendingId();

    advance(DEFAULTS.timeout().minusMillis(1));
    assertThat(service().pending(SAM)).extracting(Pending::id).containsExactly(id);
    assertThat(stage(t)).isNotDone();

    advance(Duration.ofMillis(1));
    assertThat(service().pending(SAM)).as("expired reviews are not listed").isEmpty();
    Outcome o = outcome(t);
    assertThat(o.status()).isEqualTo(Status.EXPIRED);
    assertThat(o.approvalId()).isEqualTo(id);
    assertThat(o.reviewer()).isNull();
    assertThat(o.decided()).isAfterOrEqualTo(T0.plus(DEFAULTS.timeout()));
    ReviewResult late = service().approve(id, SAM, "late");
    assertThat(late.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    assertThat(outcome(t).status()).isEqualTo(Status.EXPIRED);
  }

  @Test
  void aDeadlineThatHasPassedWinsOverALateDecision() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    String id = onlyPendingId();
    clock.advance(
        DEFAULTS.timeout().plusMinutes(1)); // the service is not told: the decision comes first

    ReviewResult r = service().approve(id, SAM, "late");

    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    if (r.outcome() != null) assertThat(r.outcome().status()).isEqualTo(Status.EXPIRED);
    assertThat(outcome(t).status()).isEqualTo(Status.EXPIRED);
  }

  @Test
  void withdrawingEndsTheCallersWaitWithdrawnAndFreesItsPlace() throws Exception {
    ApprovalService s = service(new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 1, 10));
    Ticket t = ask(ALICE, "dump all");
    String id = t.approvalId();
    advance(Duration.ofSeconds(3));

    t.withdraw();

    Outcome o = outcome(t);
    assertThat(o.status()).isEqualTo(Status.WITHDRAWN);
    assertThat(o.approvalId()).isEqualTo(id);
    assertThat(o.reviewer()).isNull();
    assertThat(s.pending(SAM)).as("a withdrawn request is not listed").isEmpty();
    ReviewResult late = s.approve(id, SAM, "too late");
    assertThat(late.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    if (late.outcome() != null) assertThat(late.outcome().status()).isEqualTo(Status.WITHDRAWN);
    assertThatCode(t::withdraw).as("withdrawing twice").doesNotThrowAnyException();
    assertThat(outcome(t).status()).isEqualTo(Status.WITHDRAWN);
    assertThat(stage(ask(ALICE, "something else"))).as("its place is free again").isNotDone();
  }

  @Test
  void aWithdrawalAfterTheDecisionKeepsTheDecision() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    service().approve(onlyPendingId(), SAM, "ok");

    t.withdraw();

    assertThat(outcome(t).status()).isEqualTo(Status.APPROVED);
  }

  @Test
  void closingEndsEveryWaitingReviewClosedAndRefusesLaterRequests() throws Exception {
    Ticket waiting = ask(ALICE, "dump all");
    Ticket other = ask(BOB, "export all");

    service().close();

    assertThat(outcome(waiting).status()).isEqualTo(Status.CLOSED);
    assertThat(outcome(other).status()).isEqualTo(Status.CLOSED);
    Ticket later = service().request(ALICE, request("x"), "bulk-export", digest(ALICE, "x"));
    assertThat(later.approvalId()).isNull();
    assertThat(stage(later)).as("answered at once").isDone();
    assertThat(outcome(later).status()).isEqualTo(Status.CLOSED);
    assertThatCode(service()::close).as("closing twice").doesNotThrowAnyException();
  }

  // ---------------------------------------------------------------------------------- binding

  @Test
  void anApprovalCoversOnlyTheRequestItWasGivenFor() throws Exception {
    Ticket users = ask(ALICE, "dump all users");
    Ticket salaries = ask(ALICE, "dump all salaries");
    assertThat(users.approvalId()).isNotEqualTo(salaries.approvalId());
    assertThat(service().pending(SAM))
        .extracting(Pending::id)
        .containsExactly(users.approvalId(), salaries.approvalId());

    service().approve(users.approvalId(), SAM, "users are fine");

    assertThat(outcome(users).status()).isEqualTo(Status.APPROVED);
    assertThat(stage(salaries)).isNotDone();
    assertThat(service().pending(SAM))
        .extracting(Pending::id)
        .containsExactly(salaries.approvalId());
  }

  @Test
  void anIdenticalRequestJoinsTheWaitingReviewAndCountsOnce() throws Exception {
    service(new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 1, 10));
    Ticket first = ask(ALICE, "dump all");
    Ticket retry = ask(ALICE, "dump all");

    assertThat(retry.approvalId()).isEqualTo(first.approvalId());
    assertThat(stage(retry)).as("not refused by the bound of 1").isNotDone();
    assertThat(service().pending(SAM)).hasSize(1);
    service().approve(first.approvalId(), SAM, "ok");
    assertThat(outcome(retry)).isEqualTo(outcome(first));
  }

  @Test
  void theSameRequestFromAnotherPrincipalIsAnotherReview() throws Exception {
    Ticket alices = ask(ALICE, "dump all");
    Ticket bobs =
        service().request(BOB, request("dump all"), "bulk-export", digest(ALICE, "dump all"));

    assertThat(bobs.approvalId()).isNotEqualTo(alices.approvalId());
    service().reject(alices.approvalId(), SAM, "no");
    assertThat(stage(bobs)).isNotDone();
  }

  @Test
  void aJoinedReviewStaysWhileAnotherCallerStillWaits() throws Exception {
    Ticket first = ask(ALICE, "dump all");
    Ticket second = ask(ALICE, "dump all");

    first.withdraw();

    assertThat(outcome(first).status()).isEqualTo(Status.WITHDRAWN);
    assertThat(service().pending(SAM)).extracting(Pending::id).containsExactly(second.approvalId());
    service().approve(second.approvalId(), SAM, "ok");
    assertThat(outcome(second).status()).isEqualTo(Status.APPROVED);
  }

  // ---------------------------------------------------------------------------------- bounds

  @Test
  void reviewsWaitingPerPrincipalAreBounded() throws Exception {
    service(new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 2, 10));
    Ticket a = ask(ALICE, "a");
    advance(Duration.ofSeconds(10));
    ask(ALICE, "b");

    Ticket third = ask(ALICE, "c");

    ApprovalLimitException e = limit(third);
    assertThat(e.scope()).isEqualTo(ApprovalLimitException.Scope.PRINCIPAL);
    assertThat(e.limit()).isEqualTo(2);
    assertThat(e.retryAfter())
        .as("at most until the first of alice's reviews expires")
        .isPositive()
        .isLessThanOrEqualTo(Duration.ofMinutes(5).minusSeconds(10));
    assertThat(e.getMessage()).contains("bulk-export").doesNotContain("caller-token");
    assertThat(service().pending(SAM)).hasSize(2);
    assertThat(stage(ask(BOB, "a"))).as("others still get in").isNotDone();
    service().reject(a.approvalId(), SAM, null);
    assertThat(stage(ask(ALICE, "c"))).as("a decision frees room").isNotDone();
  }

  @Test
  void reviewsWaitingInTotalAreBounded() throws Exception {
    service(new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 1, 2));
    ask(ALICE, "a");
    ask(BOB, "a");

    ApprovalLimitException e = limit(ask(RITA, "a"));

    assertThat(e.scope()).isEqualTo(ApprovalLimitException.Scope.TOTAL);
    assertThat(e.limit()).isEqualTo(2);
    assertThat(e.retryAfter()).isPositive().isLessThanOrEqualTo(Duration.ofMinutes(5));
    advance(Duration.ofMinutes(5));
    assertThat(service().pending(SAM)).isEmpty();
    assertThat(stage(ask(RITA, "a"))).as("expiry frees room").isNotDone();
  }

  // ---------------------------------------------------------------------------------- reviewers

  @Test
  void onlyReviewersListOrDecideAndTheyCannotProbeIds() throws Exception {
    Ticket t = ask(ALICE, "dump all");

    assertThat(service().isReviewer(SAM)).isTrue();
    assertThat(service().isReviewer(BOB)).isFalse();
    assertThat(service().pending(BOB)).isEmpty();
    assertThat(service().approve(t.approvalId(), BOB, null).kind())
        .isEqualTo(ReviewResult.Kind.NOT_A_REVIEWER);
    assertThat(service().reject(t.approvalId(), BOB, null).kind())
        .isEqualTo(ReviewResult.Kind.NOT_A_REVIEWER);
    assertThat(service().approve("apr-0000-no-such-id", BOB, null).kind())
        .isEqualTo(ReviewResult.Kind.NOT_A_REVIEWER);
    assertThat(stage(t)).isNotDone();
    assertThat(service().pending(SAM)).hasSize(1);
  }

  @Test
  void nobodyDecidesOrIsShownTheirOwnRequest() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    Ticket bobs = ask(BOB, "dump all");

    assertThat(service().isReviewer(ALICE_AS_REVIEWER)).isTrue();
    assertThat(service().pending(ALICE_AS_REVIEWER))
        .extracting(p -> p.principal().subject())
        .containsExactly("bob");
    assertThat(service().approve(t.approvalId(), ALICE_AS_REVIEWER, "me").kind())
        .isEqualTo(ReviewResult.Kind.SELF_APPROVAL);
    assertThat(service().reject(t.approvalId(), ALICE_AS_REVIEWER, "me").kind())
        .isEqualTo(ReviewResult.Kind.SELF_APPROVAL);
    assertThat(stage(t)).isNotDone();
    assertThat(service().pending(SAM)).hasSize(2);
    assertThat(service().approve(bobs.approvalId(), ALICE_AS_REVIEWER, "ok").kind())
        .isEqualTo(ReviewResult.Kind.DECIDED);
  }

  @Test
  void anUnknownIdIsNotFound() throws Exception {
    ReviewResult r = service().approve("apr-0000-no-such-id", SAM, null);

    assertThat(r.kind()).isEqualTo(ReviewResult.Kind.NOT_FOUND);
    assertThat(r.outcome()).isNull();
    assertThat(service().reject("apr-0000-no-such-id", SAM, null).kind())
        .isEqualTo(ReviewResult.Kind.NOT_FOUND);
  }

  @Test
  void aSecondDecisionIsAlreadyDecidedAndChangesNothing() throws Exception {
    Ticket t = ask(ALICE, "dump all");
    String id = t.approvalId();
    Outcome first = service().approve(id, SAM, "ok").outcome();

    ReviewResult again = service().reject(id, RITA, "changed my mind");

    assertThat(again.kind()).isEqualTo(ReviewResult.Kind.ALREADY_DECIDED);
    if (again.outcome() != null) assertThat(again.outcome()).isEqualTo(first);
    assertThat(outcome(t)).isEqualTo(first);
  }

  @Test
  void reviewsAreListedOldestFirst() throws Exception {
    Ticket a = ask(ALICE, "a");
    advance(Duration.ofSeconds(1));
    Ticket b = ask(BOB, "b");
    advance(Duration.ofSeconds(1));
    Ticket c = ask(ALICE, "c");

    assertThat(service().pending(SAM))
        .extracting(Pending::id)
        .containsExactly(a.approvalId(), b.approvalId(), c.approvalId());
  }

  @Test
  void nullArgumentsAreRefused() throws Exception {
    ApprovalService s = service();
    assertThatThrownBy(() -> s.isReviewer(null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> s.pending(null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> s.approve(null, SAM, null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> s.approve("x", null, null)).isInstanceOf(NullPointerException.class);
    assertThatThrownBy(() -> s.reject(null, SAM, null)).isInstanceOf(NullPointerException.class);
  }

  // ------------------------------------------------------------------------------- concurrency

  @Test
  void concurrentRequestsAndDecisionsCompleteEveryStageExactlyOnce() throws Exception {
    ApprovalService s = service(new Settings(Set.of(REVIEWERS), Duration.ofMinutes(5), 5, 1000));
    int threads = 8;
    int perThread = 25;
    int total = threads * perThread;
    List<Ticket> tickets = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger decided = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(threads + 2);
    try {
      CountDownLatch start = new CountDownLatch(1);
      List<Future<?>> done = new ArrayList<>();
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
                    tickets.add(s.request(p, request("q" + i), "bulk-export", digest(p, "q" + i)));
                  }
                  return null;
                }));
      }
      // Two reviewers decide while requests arrive, racing for the same ids, until all are decided.
      for (Principal reviewer : List.of(SAM, RITA)) {
        boolean approve = reviewer == SAM;
        done.add(
            pool.submit(
                () -> {
                  start.await();
                  long deadline = System.nanoTime() + outcomeWait().toNanos() * 4;
                  while (decided.get() < total && System.nanoTime() < deadline) {
                    for (Pending p : s.pending(reviewer)) {
                      ReviewResult r =
                          approve
                              ? s.approve(p.id(), reviewer, null)
                              : s.reject(p.id(), reviewer, null);
                      if (r.kind() == ReviewResult.Kind.DECIDED) decided.incrementAndGet();
                    }
                    Thread.onSpinWait();
                  }
                  return null;
                }));
      }
      start.countDown();
      for (Future<?> f : done) f.get(outcomeWait().toMillis() * 6, TimeUnit.MILLISECONDS);
    } finally {
      pool.shutdownNow();
    }
    assertThat(decided).as("decisions made").hasValue(total);
    assertThat(tickets).hasSize(total);
    List<String> ids = new ArrayList<>();
    for (Ticket t : tickets) {
      Outcome o = outcome(t);
      assertThat(o.status()).isIn(Status.APPROVED, Status.REJECTED);
      ids.add(o.approvalId());
    }
    assertThat(ids).doesNotHaveDuplicates();
    assertThat(s.pending(SAM)).isEmpty();
  }
}
