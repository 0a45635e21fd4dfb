package dev.inferpam.postgres;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.testkit.ApprovalServiceContract;
import java.time.Clock;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** The approval contract, every review in a real PostgreSQL, as the least-privileged role. */
class PostgresApprovalServiceContractTest extends ApprovalServiceContract {
  private static Databases db;
  private static PostgresState state;

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
    state = db.asGateway();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (state != null) state.close();
    if (db != null) db.close();
  }

  @Override
  protected ApprovalService createService(Clock clock, Settings settings) throws Exception {
    db.clearReviews();
    return PostgresApprovalService.builder(state)
        .clock(clock)
        .reviewers(settings.reviewerGroups())
        .timeout(settings.timeout())
        .maxPendingPerPrincipal(settings.maxPendingPerPrincipal())
        .maxPending(settings.maxPending())
        .pollInterval(Duration.ofMillis(200))
        .build();
  }

  @Override
  protected void clockMoved(ApprovalService service) {
    ((PostgresApprovalService) service).expireDue();
  }
}
