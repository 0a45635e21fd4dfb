package dev.inferpam.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.ApprovalService.Outcome;
import dev.inferpam.api.ApprovalService.Status;
import dev.inferpam.api.ApprovalService.Ticket;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * PostgreSQL stopped under a running replica and started again: new reviews and reviewer calls
 * fail clearly while it is away, a caller already waiting keeps waiting, and everything works
 * again once it is back, without restarting the replica.
 */
class PostgresOutageTest {
  private static final Principal ALICE = Principal.of("alice", Set.of("ml"), "api-key");
  private static final Principal SAM = Principal.of("sam", Set.of("oncall"), "api-key");

  private Databases db;
  private PostgresState state;
  private PostgresApprovalService service;

  @BeforeEach
  void start() throws Exception {
    db = Databases.start();
    state = db.asGateway(Duration.ofMillis(500));
    service =
        PostgresApprovalService.builder(state)
            .reviewers(Set.of("oncall"))
            .pollInterval(Duration.ofMillis(200))
            .build();
  }

  @AfterEach
  void stop() throws Exception {
    if (service != null) service.close();
    if (state != null) state.close();
    if (db != null) db.close();
  }

  private Ticket ask(String prompt) {
    InferenceRequest r =
        new InferenceRequest(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of(),
            ("{\"prompt\":\"" + prompt + "\"}").getBytes(StandardCharsets.UTF_8),
            "127.0.0.1");
    return service.request(ALICE, r, "bulk-export", "digest-" + prompt);
  }

  @Test
  void whilePostgresIsAwayReviewsFailClearlyAndWhenItReturnsTheyWorkWithoutARestart()
      throws Exception {
    Ticket waiting = ask("before the outage");
    String id = waiting.approvalId();

    db.server.stop();

    CompletableFuture<Outcome> refused = ask("during the outage").outcome().toCompletableFuture();
    assertThat(refused).isCompletedExceptionally();
    assertThatThrownBy(refused::get)
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(IllegalStateException.class)
        .hasMessageStartingWith("approvals unavailable: PostgreSQL did not answer")
        .hasMessageNotContaining(Databases.ROLE_PASSWORD);
    assertThatThrownBy(() -> service.pending(SAM))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageStartingWith("approvals unavailable");
    assertThatThrownBy(() -> service.approve(id, SAM, "ok"))
        .isInstanceOf(IllegalStateException.class);
    assertThat(waiting.outcome().toCompletableFuture()).as("still waiting").isNotDone();

    db.server.restart();

    // the pool reconnects by itself, within a few of its connection attempts
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(15))
        .ignoreExceptionsInstanceOf(IllegalStateException.class)
        .untilAsserted(
            () -> assertThat(service.pending(SAM)).extracting(p -> p.id()).containsExactly(id));
    assertThat(service.approve(id, SAM, "after the outage").kind())
        .isEqualTo(dev.inferpam.api.ApprovalService.ReviewResult.Kind.DECIDED);
    Outcome o = waiting.outcome().toCompletableFuture().get(2, TimeUnit.SECONDS);
    assertThat(o.status()).isEqualTo(Status.APPROVED);
    assertThat(o.reason()).isEqualTo("after the outage");
    Ticket next = ask("after the outage");
    assertThat(next.outcome().toCompletableFuture()).isNotDone();
    assertThat(service.pending(SAM)).extracting(p -> p.id()).containsExactly(next.approvalId());
  }

  @Test
  void aDecisionMadeElsewhereAfterTheOutageReachesTheListenerOnceItReconnects() throws Exception {
    Ticket waiting = ask("held");
    db.server.stop();
    db.server.restart();
    // another replica decides: the listener reconnects (and polls) on its own
    PostgresState other = db.asGateway();
    PostgresApprovalService elsewhere =
        PostgresApprovalService.builder(other).reviewers(Set.of("oncall")).build();
    try {
      elsewhere.reject(waiting.approvalId(), SAM, "no");
      Outcome o = waiting.outcome().toCompletableFuture().get(3, TimeUnit.SECONDS);
      assertThat(o.status()).isEqualTo(Status.REJECTED);
    } finally {
      elsewhere.close();
      other.close();
    }
  }
}
