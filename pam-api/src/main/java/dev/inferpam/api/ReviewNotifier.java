package dev.inferpam.api;

import java.net.URI;
import java.time.Instant;
import java.util.Objects;

/**
 * Tells reviewers that a request is waiting for their approval (chat webhook, e-mail, pager).
 *
 * <p>Called on the request thread when a request starts waiting for review, once per review (a
 * request that joins a review already waiting, or passes under a grant, is not announced again).
 * {@link #pending} must not block that thread and must not throw: an implementation that does I/O
 * hands the notice to its own thread or executor and returns at once, and a notice that cannot be
 * delivered is dropped (and counted or logged by the implementation), never surfaced to the
 * caller. Delivery is best effort; reviewers can always list waiting reviews through the reviewer
 * endpoints.
 *
 * <p><b>Thread-safety:</b> {@link #pending} is called concurrently from many request threads;
 * implementations must be thread-safe.
 *
 * <p><b>Secrets:</b> a {@link ReviewRequest} holds what a reviewer needs to decide and nothing
 * else: never the caller's credential, the request headers or the raw prompt.
 */
@FunctionalInterface
public interface ReviewNotifier {

  /**
   * Announces a review that has started waiting. Returns promptly without blocking on I/O and
   * without throwing for delivery failures.
   *
   * @throws NullPointerException when {@code request} is null
   */
  void pending(ReviewRequest request);

  /** A notifier that tells nobody: reviewers find waiting reviews through the reviewer endpoints. */
  ReviewNotifier NONE = request -> Objects.requireNonNull(request, "request");

  /**
   * A review waiting for a decision, as announced to reviewers. Immutable and thread-safe.
   *
   * @param approvalId the review's id (what a reviewer approves or rejects)
   * @param rule       the approval rule that required the review
   * @param principal  the requesting principal's subject
   * @param model      the requested model, {@code null} when the request names none
   * @param operation  the classified operation (e.g. {@code chat}), {@code null} when
   *                   unknown
   * @param created    when the review started waiting
   * @param expires    when it expires unless decided
   * @param reviewUrl  where a reviewer decides it, {@code null} when no reviewer endpoint is
   *                   published
   * @param excerpt    a short excerpt of the prompt, {@code null} when there is none. The caller
   *                   promises it is already <b>masked</b>: notifiers send it as it is.
   */
  record ReviewRequest(
      String approvalId,
      String rule,
      String principal,
      String model,
      String operation,
      Instant created,
      Instant expires,
      URI reviewUrl,
      String excerpt) {

    /** Longest {@link #excerpt()} accepted, in chars. */
    public static final int MAX_EXCERPT_CHARS = 500;

    /**
     * @throws NullPointerException     when {@code approvalId}, {@code rule}, {@code principal},
     *                                  {@code created} or {@code expires} is null
     * @throws IllegalArgumentException when an id, rule or principal is blank, {@code expires} is
     *                                  before {@code created}, or the excerpt is longer than
     *                                  {@value #MAX_EXCERPT_CHARS} chars
     */
    public ReviewRequest {
      Objects.requireNonNull(approvalId, "approvalId");
      Objects.requireNonNull(rule, "rule");
      Objects.requireNonNull(principal, "principal");
      Objects.requireNonNull(created, "created");
      Objects.requireNonNull(expires, "expires");
      if (approvalId.isBlank()) throw new IllegalArgumentException("approvalId must not be blank");
      if (rule.isBlank()) throw new IllegalArgumentException("rule must not be blank");
      if (principal.isBlank()) throw new IllegalArgumentException("principal must not be blank");
      if (expires.isBefore(created)) {
        throw new IllegalArgumentException(
            "expires must not be before created, was " + expires + " < " + created);
      }
      if (excerpt != null && excerpt.length() > MAX_EXCERPT_CHARS) {
        throw new IllegalArgumentException(
            "excerpt must be at most " + MAX_EXCERPT_CHARS + " chars, was " + excerpt.length());
      }
    }
  }
}
