package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.ApprovalService.Outcome;
import dev.inferpam.api.ApprovalService.Pending;
import dev.inferpam.api.ApprovalService.Status;
import dev.inferpam.api.ApprovalService.Ticket;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.testsupport.MutableClock;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Several replicas (each its own pool and replica id) on one real PostgreSQL: a review opened on
 * one is listed and decided on any, the holder learns the decision, bounds and joins hold across
 * the fleet, and a dead replica's reviews are withdrawn.
 */
class PostgresApprovalFleetTest {
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), "api-key");
  private static final Principal SAM = Principal.of("sam", Set.of("oncall"), "api-key");

  private static Databases db;
  private final List<PostgresState> states = new ArrayList<>();
  private final List<PostgresApprovalService> services = new ArrayList<>();

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (db != null) db.close();
  }

  @BeforeEach
  void clear() throws Exception {
    db.clearReviews();
  }

  @AfterEach
  void closeReplicas() {
    services.forEach(PostgresApprovalService::close);
    states.forEach(PostgresState::close);
  }

  private PostgresApprovalService replica(java.time.Clock clock, int perPrincipal) {
    PostgresState state = db.asGateway();
    states.add(state);
    PostgresApprovalService s =
        PostgresApprovalService.builder(state)
            .clock(clock)
            .reviewers(Set.of("oncall"))
            .timeout(Duration.ofMinutes(5))
            .maxPendingPerPrincipal(perPrincipal)
            .maxPending(100)
            .pollInterval(Duration.ofMillis(200))
            .deadAfter(Duration.ofSeconds(30))
            .build();
    services.add(s);
    return s;
  }

  private PostgresApprovalService replica() {
    return replica(java.time.Clock.systemUTC(), 5);
  }

  private static InferenceRequest request(String prompt) {
    return new InferenceRequest(
        "POST",
        "/v1/chat/completions",
        null,
        Map.of("authorization", List.of("Bearer caller-token")),
        ("{\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}")
            .getBytes(StandardCharsets.UTF_8),
        "127.0.0.1");
  }

  private static Ticket ask(ApprovalService s, String prompt) {
    return s.request(ALICE, request(prompt), "bulk-export", "digest-" + prompt);
  }

  private static Outcome outcomeWithin(Ticket t, Duration d) throws Exception {
    return t.outcome().toCompletableFuture().get(d.toMillis(), TimeUnit.MILLISECONDS);
  }

  @Test
  void aReviewHeldOnOneReplicaIsApprovedThroughAnotherAndTheHolderLearnsItAtOnce()
      throws Exception {
    PostgresApprovalService a = replica();
    PostgresApprovalService b = replica();
    PostgresApprovalService c = replica();
    Ticket held = ask(a, "dump all users");

    List<Pending> seenOnB = b.pending(SAM);
    assertThat(seenOnB).extracting(Pending::id).containsExactly(held.approvalId());
    assertThat(seenOnB.get(0).request().headers()).isEmpty();
    assertThat(new String(seenOnB.get(0).request().body(), StandardCharsets.UTF_8))
        .contains("dump all users");

    long before = System.nanoTime();
    ApprovalService.ReviewResult r = c.approve(held.approvalId(), SAM, "fine");
    assertThat(r.kind()).isEqualTo(ApprovalService.ReviewResult.Kind.DECIDED);
    Outcome o = outcomeWithin(held, Duration.ofSeconds(1));
    assertThat(Duration.ofNanos(System.nanoTime() - before)).isLessThan(Duration.ofSeconds(1));
    assertThat(o.status()).isEqualTo(Status.APPROVED);
    assertThat(o.reviewer()).isEqualTo("sam");
    assertThat(o.reason()).isEqualTo("fine");
    assertThat(o.approvalId()).isEqualTo(held.approvalId());
    assertThat(a.pending(SAM)).isEmpty();
    assertThat(b.approve(held.approvalId(), SAM, "again").kind())
        .isEqualTo(ApprovalService.ReviewResult.Kind.ALREADY_DECIDED);
  }

  @Test
  void aDecisionNobodyAnnouncedIsFoundByThePollWithinItsInterval() throws Exception {
    PostgresApprovalService a = replica();
    Ticket held = ask(a, "dump all users");
    // decided behind the service's back, without NOTIFY: as if the notification were lost
    db.server.sql(
        "postgres",
        "UPDATE inferpam.reviews SET status = 'rejected', reviewer = 'sam', reason = 'no',"
            + " decided = now() WHERE id = '"
            + held.approvalId()
            + "'");
    Outcome o = outcomeWithin(held, Duration.ofSeconds(2));
    assertThat(o.status()).isEqualTo(Status.REJECTED);
    assertThat(o.reviewer()).isEqualTo("sam");
  }

  @Test
  void identicalRequestsOnTwoReplicasShareOneReviewThatEndsWhenBothCallersLeave() throws Exception {
    PostgresApprovalService a = replica();
    PostgresApprovalService b = replica();
    Ticket onA = ask(a, "same prompt");
    Ticket onB = ask(b, "same prompt");
    assertThat(onB.approvalId()).isEqualTo(onA.approvalId());
    assertThat(a.pending(SAM)).hasSize(1);

    onA.withdraw();
    assertThat(outcomeWithin(onA, Duration.ofSeconds(1)).status()).isEqualTo(Status.WITHDRAWN);
    assertThat(b.pending(SAM)).as("B's caller still waits").hasSize(1);
    assertThat(onB.outcome().toCompletableFuture()).isNotDone();

    onB.withdraw();
    assertThat(outcomeWithin(onB, Duration.ofSeconds(1)).status()).isEqualTo(Status.WITHDRAWN);
    // A's withdrawal is written by A's own timer thread: the review ends once both are written
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(2))
        .untilAsserted(() -> assertThat(b.pending(SAM)).isEmpty());
    assertThat(a.approve(onA.approvalId(), SAM, null).kind())
        .isEqualTo(ApprovalService.ReviewResult.Kind.ALREADY_DECIDED);
  }

  @Test
  void theBoundPerPrincipalCountsTheWholeFleet() throws Exception {
    PostgresApprovalService a = replica(java.time.Clock.systemUTC(), 1);
    PostgresApprovalService b = replica(java.time.Clock.systemUTC(), 1);
    ask(a, "first");
    Ticket second = ask(b, "second");
    CompletableFuture<Outcome> stage = second.outcome().toCompletableFuture();
    assertThat(stage).isCompletedExceptionally();
    try {
      stage.get();
    } catch (ExecutionException e) {
      assertThat(e.getCause())
          .isInstanceOf(ApprovalLimitException.class)
          .hasMessageContaining("bulk-export");
    }
  }

  @Test
  void closingAReplicaEndsItsCallersButNotAReviewAnotherReplicaWaitsFor() throws Exception {
    PostgresApprovalService a = replica();
    PostgresApprovalService b = replica();
    Ticket onA = ask(a, "same prompt");
    Ticket onB = ask(b, "same prompt");
    a.close();
    assertThat(outcomeWithin(onA, Duration.ofSeconds(1)).status()).isEqualTo(Status.CLOSED);
    assertThat(b.pending(SAM)).hasSize(1);
    assertThat(b.approve(onB.approvalId(), SAM, "ok").kind())
        .isEqualTo(ApprovalService.ReviewResult.Kind.DECIDED);
    assertThat(outcomeWithin(onB, Duration.ofSeconds(1)).status()).isEqualTo(Status.APPROVED);
  }

  @Test
  void aReplicaUnseenForDeadAfterHasItsReviewsWithdrawnByTheOthers() throws Exception {
    MutableClock clock = new MutableClock(Instant.parse("2026-12-01T10:00:00Z"));
    PostgresApprovalService b = replica(clock, 5);
    // a replica that was killed: its heartbeat stopped at 10:00, its caller's review still waits
    db.server.sql(
        "postgres",
        "INSERT INTO inferpam.replicas VALUES ('r-dead', '2026-12-01T09:00:00Z',"
            + " '2026-12-01T10:00:00Z');"
            + " INSERT INTO inferpam.reviews (id, principal_key, subject, principal, rule, digest,"
            + " request, created, expires, status) VALUES ('apr-dead', 'api-key\n\nalice',"
            + " 'alice', '{\"subject\":\"alice\",\"groups\":[\"ml\"],\"via\":\"api-key\"}',"
            + " 'bulk-export', 'd1', '{\"method\":\"POST\",\"path\":\"/v1/chat/completions\"}',"
            + " '2026-12-01T10:00:00Z', '2026-12-01T10:05:00Z', 'waiting');"
            + " INSERT INTO inferpam.review_waiters VALUES ('apr-dead', 'r-dead')");
    assertThat(b.pending(SAM)).extracting(Pending::id).containsExactly("apr-dead");

    clock.advance(Duration.ofSeconds(20));
    assertThat(b.reapDead()).as("seen 20 s ago: alive").isZero();
    assertThat(b.pending(SAM)).hasSize(1);

    clock.advance(Duration.ofSeconds(11));
    assertThat(b.reapDead()).isEqualTo(1);
    assertThat(b.pending(SAM)).isEmpty();
    assertThat(db.server.sql("postgres", "SELECT status, reason FROM inferpam.reviews"))
        .isEqualTo("withdrawn|" + PostgresApprovalService.DEAD_REASON);
    assertThat(b.approve("apr-dead", SAM, null).outcome().status()).isEqualTo(Status.WITHDRAWN);
  }

  @Test
  void aGrantGivenThroughOneReplicaApprovesTheNextRequestOnAnother() throws Exception {
    PostgresState sa = db.asGateway();
    PostgresState sb = db.asGateway();
    states.add(sa);
    states.add(sb);
    PostgresApprovalService a =
        PostgresApprovalService.builder(sa)
            .reviewers(Set.of("oncall"))
            .grant(Duration.ofMinutes(10))
            .pollInterval(Duration.ofMillis(200))
            .build();
    PostgresApprovalService b =
        PostgresApprovalService.builder(sb)
            .reviewers(Set.of("oncall"))
            .grant(Duration.ofMinutes(10))
            .pollInterval(Duration.ofMillis(200))
            .build();
    services.add(a);
    services.add(b);
    Ticket first = ask(a, "first");
    b.approve(first.approvalId(), SAM, "ok for today");
    assertThat(outcomeWithin(first, Duration.ofSeconds(1)).status()).isEqualTo(Status.APPROVED);

    Ticket later = ask(b, "another prompt");
    Outcome o = outcomeWithin(later, Duration.ofSeconds(1));
    assertThat(o.status()).isEqualTo(Status.APPROVED);
    assertThat(o.approvalId()).isEqualTo(first.approvalId());
    assertThat(o.reason())
        .isEqualTo("within the 10m grant of approval " + first.approvalId() + ": ok for today");
  }
}
