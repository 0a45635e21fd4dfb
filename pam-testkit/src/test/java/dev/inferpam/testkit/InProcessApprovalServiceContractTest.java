package dev.inferpam.testkit;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.core.InProcessApprovalService;
import java.time.Clock;
import org.junit.jupiter.api.Nested;

/**
 * The default approval service against the contract: expiring what is due on every call, and
 * expiring on a nudge ({@code expireDue()}, as its scheduler does) after the clock moved. Its own
 * behaviour (grants, the scheduler) is in pam-core's {@code InProcessApprovalServiceTest}.
 */
class InProcessApprovalServiceContractTest {

  static InProcessApprovalService build(Clock clock, ApprovalServiceContract.Settings settings) {
    return InProcessApprovalService.builder()
        .clock(clock)
        .reviewers(settings.reviewerGroups())
        .timeout(settings.timeout())
        .maxPendingPerPrincipal(settings.maxPendingPerPrincipal())
        .maxPending(settings.maxPending())
        .manualExpiry()
        .build();
  }

  @Nested
  class ExpiringOnEveryCall extends ApprovalServiceContract {
    @Override
    protected ApprovalService createService(Clock clock, Settings settings) {
      return build(clock, settings);
    }
  }

  @Nested
  class ExpiringOnItsSchedule extends ApprovalServiceContract {
    @Override
    protected ApprovalService createService(Clock clock, Settings settings) {
      return build(clock, settings);
    }

    @Override
    protected void clockMoved(ApprovalService service) {
      ((InProcessApprovalService) service).expireDue();
    }
  }
}
