package dev.inferpam.api;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Holds requests that need a human reviewer's approval: the requester side, on which the engine
 * submits a request and waits, and the reviewer side, on which reviewer endpoints list what
 * waits and decide it. Any implementation serves both: the reviewer endpoints
 * ({@code pam-servlet}'s {@code ApprovalServlet}, the gateway's {@code /pam/approvals}) work with
 * whichever service the engine holds.
 *
 * <h2>Requester side</h2>
 * {@link #request} returns at once with a {@link Ticket}: the review's id and a stage that
 * completes with the {@link Outcome} ({@link Status#APPROVED}, {@link Status#REJECTED},
 * {@link Status#EXPIRED} once the timeout passes, {@link Status#WITHDRAWN} after
 * {@link Ticket#withdraw()}, {@link Status#CLOSED} when the service closes first), so that servers
 * wait without pinning a thread. A bound on waiting reviews reached is no outcome: the stage
 * completes exceptionally with {@link ApprovalLimitException}. Implementations must complete
 * every stage eventually.
 *
 * <h2>Reviewer side</h2>
 * Only reviewers ({@link #isReviewer}) list ({@link #pending}) and decide ({@link #approve},
 * {@link #reject}), and nobody decides a request made under their own subject, whatever the
 * issuer or the way they were identified (a person with an OIDC login and an API key of the same
 * name is one person). A decision answers with a {@link ReviewResult} whose
 * {@link ReviewResult.Kind} says what happened; the refusals are checked in this order:
 * {@link ReviewResult.Kind#NOT_A_REVIEWER} (before the id is looked up, so that ids cannot be
 * probed), {@link ReviewResult.Kind#NOT_FOUND}, {@link ReviewResult.Kind#ALREADY_DECIDED} (decided,
 * expired, withdrawn or closed before), {@link ReviewResult.Kind#SELF_APPROVAL}. A deadline that
 * has passed wins over a late decision.
 *
 * <h2>Binding</h2>
 * A review is for one request: its principal, rule and digest. Deciding review A completes only
 * the stages of A's requests; a request with another digest waits for its own review. A request
 * with the same principal, rule and digest as one still waiting joins that review (same id, same
 * outcome) and does not count against the bounds again.
 *
 * <p><b>Thread-safety:</b> called concurrently from request threads and reviewer threads;
 * implementations must be thread-safe. Stages may be completed on any thread; the engine hands
 * what follows to its adapters' threads.
 *
 * <p><b>Secrets:</b> a {@link Pending} review's request keeps no headers (they carry the caller's
 * credential); its body is the prompt, which reviewer endpoints show only masked.
 *
 * <p>{@code pam-testkit}'s {@code ApprovalServiceContract} checks an implementation against this
 * contract.
 */
public interface ApprovalService extends AutoCloseable {

  /** Longest reviewer reason a service must accept, in chars; reviewer endpoints refuse longer ones. */
  int MAX_REASON_CHARS = 1000;

  // -------------------------------------------------------------------------------- requester

  /**
   * Submits a request for review under {@code rule}, or joins the waiting review of an identical
   * request. Returns at once.
   *
   * @param digest a digest of the exact request (method, path, body, principal); an approval
   *     covers that request only
   * @return the request's ticket, never {@code null}
   */
  Ticket request(Principal principal, InferenceRequest request, String rule, String digest);

  /**
   * One caller's place in review. Thread-safe.
   */
  interface Ticket {
    /**
     * The id of the review the caller waits for (or whose decision already covers it), for the
     * record; {@code null} when no review was opened (a bound was reached, the service is closed).
     */
    String approvalId();

    /**
     * Completes with the outcome, or exceptionally with {@link ApprovalLimitException} (or
     * another failure, which the engine answers 503 {@code approval_unavailable}). Never
     * {@code null}; the same stage on every call.
     */
    CompletionStage<Outcome> outcome();

    /**
     * The caller stopped waiting (the client went away, the call was cancelled): the stage
     * completes {@link Status#WITHDRAWN} unless it is complete already, and a review no caller
     * waits for any more ends {@link Status#WITHDRAWN} (reviewers no longer see it; deciding it
     * answers {@link ReviewResult.Kind#ALREADY_DECIDED}). A review joined by another caller who
     * still waits stays. Idempotent; never throws.
     */
    void withdraw();

    /**
     * A ticket that is settled already: for a request decided on the spot (a grant, a closed
     * service). {@link #withdraw()} does nothing.
     *
     * @throws NullPointerException when {@code outcome} is null
     */
    static Ticket decided(Outcome outcome) {
      Objects.requireNonNull(outcome, "outcome");
      CompletableFuture<Outcome> done = CompletableFuture.completedFuture(outcome);
      String id = outcome.approvalId();
      return new Ticket() {
        @Override
        public String approvalId() {
          return id;
        }

        @Override
        public CompletionStage<Outcome> outcome() {
          return done;
        }

        @Override
        public void withdraw() {}

        @Override
        public String toString() {
          return "Ticket[" + id + " " + outcome.status() + "]";
        }
      };
    }

    /**
     * A ticket for a request that no review was opened for: its stage is completed exceptionally
     * with {@code cause}, typically an {@link ApprovalLimitException}. {@link #withdraw()} does
     * nothing.
     *
     * @throws NullPointerException when {@code cause} is null
     */
    static Ticket refused(Throwable cause) {
      Objects.requireNonNull(cause, "cause");
      CompletableFuture<Outcome> failed = CompletableFuture.failedFuture(cause);
      return new Ticket() {
        @Override
        public String approvalId() {
          return null;
        }

        @Override
        public CompletionStage<Outcome> outcome() {
          return failed;
        }

        @Override
        public void withdraw() {}

        @Override
        public String toString() {
          return "Ticket[refused: " + cause.getClass().getSimpleName() + "]";
        }
      };
    }
  }

  /**
   * How a review ended for a caller.
   *
   * @param approvalId the review's id ({@code null} when none was opened)
   * @param status     the end state
   * @param reviewer   the deciding reviewer's subject, {@code null} unless approved or rejected
   * @param reason     the reviewer's reason, or why the review ended otherwise; may be {@code null}
   * @param decided    when it ended
   */
  record Outcome(
      String approvalId, Status status, String reviewer, String reason, Instant decided) {}

  /**
   * The end state of a review. The record's {@code approval.outcome} is {@code approved},
   * {@code rejected} or {@code expired}: {@link #WITHDRAWN} and {@link #CLOSED} are recorded as
   * {@code expired} (with their reason), and all three answer the caller 403
   * {@code approval_expired}.
   */
  enum Status {
    /** A reviewer approved (or a grant of an earlier approval covers the request). */
    APPROVED,
    /** A reviewer rejected. */
    REJECTED,
    /** Nobody decided before the timeout. */
    EXPIRED,
    /** The caller stopped waiting ({@link Ticket#withdraw()}). */
    WITHDRAWN,
    /** The service was closed (a shutdown) before anyone decided. */
    CLOSED
  }

  // --------------------------------------------------------------------------------- reviewer

  /**
   * Whether {@code principal} may list and decide reviews (is in one of the reviewer groups).
   *
   * @throws NullPointerException when {@code principal} is null
   */
  boolean isReviewer(Principal principal);

  /**
   * The reviews {@code reviewer} may decide now, oldest first: every waiting review except those
   * requested under the reviewer's own subject; empty for someone who is not a reviewer. Reviews
   * whose deadline has passed are not listed.
   *
   * @throws NullPointerException when {@code reviewer} is null
   */
  List<Pending> pending(Principal reviewer);

  /**
   * Approves review {@code approvalId}: its callers' stages complete {@link Status#APPROVED} with
   * the reviewer's subject, the reason and the time, which the {@link ReviewResult} carries.
   *
   * @param reason optional; at most {@value #MAX_REASON_CHARS} chars
   * @throws NullPointerException     when {@code approvalId} or {@code reviewer} is null
   * @throws IllegalArgumentException when the reason is longer than {@value #MAX_REASON_CHARS}
   */
  ReviewResult approve(String approvalId, Principal reviewer, String reason);

  /**
   * Rejects review {@code approvalId}: its callers' stages complete {@link Status#REJECTED}. Same
   * checks and answers as {@link #approve}.
   */
  ReviewResult reject(String approvalId, Principal reviewer, String reason);

  /**
   * Ends every review this instance's callers wait for with {@link Status#CLOSED}, and answers
   * later requests the same way at once; releases what the service holds. Idempotent. Default:
   * nothing to do.
   */
  @Override
  default void close() {}

  /**
   * A review waiting for a decision, as reviewers see it. Immutable.
   *
   * @param id        the review's id
   * @param principal the requester
   * @param rule      the approval rule that required the review
   * @param digest    the request's digest
   * @param request   the request, without its headers
   * @param created   when the review opened
   * @param expires   when it expires unless decided
   */
  record Pending(
      String id,
      Principal principal,
      String rule,
      String digest,
      InferenceRequest request,
      Instant created,
      Instant expires) {
    /** @throws NullPointerException when a component is null */
    public Pending {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(rule, "rule");
      Objects.requireNonNull(digest, "digest");
      Objects.requireNonNull(request, "request");
      Objects.requireNonNull(created, "created");
      Objects.requireNonNull(expires, "expires");
    }
  }

  /**
   * What became of a reviewer's {@link #approve} or {@link #reject}.
   *
   * @param kind    what happened
   * @param outcome the decision made ({@link Kind#DECIDED}), the earlier one when known
   *                ({@link Kind#ALREADY_DECIDED}), else {@code null}
   */
  record ReviewResult(Kind kind, Outcome outcome) {
    /**
     * @throws NullPointerException when {@code kind} is null, or {@code outcome} is null for
     *     {@link Kind#DECIDED}
     */
    public ReviewResult {
      Objects.requireNonNull(kind, "kind");
      if (kind == Kind.DECIDED) Objects.requireNonNull(outcome, "outcome");
    }

    /** The decision just made. */
    public static ReviewResult decided(Outcome outcome) {
      return new ReviewResult(Kind.DECIDED, outcome);
    }

    /** A refusal without an outcome. */
    public static ReviewResult refused(Kind kind) {
      if (kind == Kind.DECIDED) throw new IllegalArgumentException("DECIDED is not a refusal");
      return new ReviewResult(kind, null);
    }

    /** How a decision attempt ended. */
    public enum Kind {
      /** Decided now. */
      DECIDED,
      /** The caller is not a reviewer. */
      NOT_A_REVIEWER,
      /** No such review, or one too old to be remembered. */
      NOT_FOUND,
      /** Decided, expired, withdrawn or closed before. */
      ALREADY_DECIDED,
      /** The reviewer made the request. */
      SELF_APPROVAL
    }
  }

  /**
   * No reviews at all: every request is refused at once as {@link Status#EXPIRED}, nobody is a
   * reviewer. The engine's service when the policy has no {@code approval} section.
   */
  ApprovalService NONE =
      new ApprovalService() {
        @Override
        public Ticket request(
            Principal principal, InferenceRequest request, String rule, String digest) {
          return Ticket.decided(
              new Outcome(
                  null, Status.EXPIRED, null, "no approval service configured", Instant.now()));
        }

        @Override
        public boolean isReviewer(Principal principal) {
          Objects.requireNonNull(principal, "principal");
          return false;
        }

        @Override
        public List<Pending> pending(Principal reviewer) {
          Objects.requireNonNull(reviewer, "reviewer");
          return List.of();
        }

        @Override
        public ReviewResult approve(String approvalId, Principal reviewer, String reason) {
          return reject(approvalId, reviewer, reason);
        }

        @Override
        public ReviewResult reject(String approvalId, Principal reviewer, String reason) {
          Objects.requireNonNull(approvalId, "approvalId");
          Objects.requireNonNull(reviewer, "reviewer");
          return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
        }

        @Override
        public String toString() {
          return "ApprovalService.NONE";
        }
      };
}
