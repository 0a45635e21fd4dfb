package dev.inferpam.core;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.ApprovalService.Outcome;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * Approval services for tests whose requester side is one function giving the outcome stage
 * (which may misbehave: throw, give {@code null}, never complete), and which have no reviewers.
 */
final class StageApprovalService {
  private StageApprovalService() {}

  /** The stage a request gets. */
  @FunctionalInterface
  interface Stage {
    CompletionStage<Outcome> of(
        Principal principal, InferenceRequest request, String rule, String digest);
  }

  /** A service whose tickets carry no id and the stage {@code stage} gives; withdrawing cancels it. */
  static ApprovalService of(Stage stage) {
    return new NoReviewers() {
      @Override
      public Ticket request(
          Principal principal, InferenceRequest request, String rule, String digest) {
        CompletionStage<Outcome> s = stage.of(principal, request, rule, digest);
        return new Ticket() {
          @Override
          public String approvalId() {
            return null;
          }

          @Override
          public CompletionStage<Outcome> outcome() {
            return s;
          }

          @Override
          public void withdraw() {
            if (s != null) s.toCompletableFuture().cancel(false);
          }
        };
      }
    };
  }

  /**
   * A service whose one ticket has id {@code id} and stage {@code stage}, and which only notes a
   * withdrawal (in {@code withdrawn}) without completing the stage.
   */
  static ApprovalService deaf(String id, CompletionStage<Outcome> stage, List<String> withdrawn) {
    return new NoReviewers() {
      @Override
      public Ticket request(
          Principal principal, InferenceRequest request, String rule, String digest) {
        return new Ticket() {
          @Override
          public String approvalId() {
            return id;
          }

          @Override
          public CompletionStage<Outcome> outcome() {
            return stage;
          }

          @Override
          public void withdraw() {
            withdrawn.add(id);
          }
        };
      }
    };
  }

  /** A service that breaks the contract by giving no ticket at all. */
  static ApprovalService nullTicket() {
    return new NoReviewers() {
      @Override
      public Ticket request(
          Principal principal, InferenceRequest request, String rule, String digest) {
        return null;
      }
    };
  }

  /** The reviewer side of these services: nobody reviews. */
  private abstract static class NoReviewers implements ApprovalService {
    @Override
    public boolean isReviewer(Principal principal) {
      return false;
    }

    @Override
    public List<Pending> pending(Principal reviewer) {
      return List.of();
    }

    @Override
    public ReviewResult approve(String approvalId, Principal reviewer, String reason) {
      return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
    }

    @Override
    public ReviewResult reject(String approvalId, Principal reviewer, String reason) {
      return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
    }
  }
}
