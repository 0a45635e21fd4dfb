package dev.inferpam.api;

import java.time.Instant;
import java.util.concurrent.CompletionStage;

/**
 * Holds requests that need a human reviewer's approval.
 *
 * <p>Asynchronous so that servers can wait without pinning a thread: {@link #request} returns at
 * once with a stage that completes with the outcome (approved, rejected, or expired once the
 * timeout passes). Implementations must complete every stage eventually.
 *
 * <p><b>Thread-safety:</b> called concurrently from request threads and reviewer threads;
 * implementations must be thread-safe.
 */
public interface ApprovalService {

  /**
   * Submits a request for review under {@code rule}.
   *
   * @param digest a digest of the exact request (method, path, body, principal); an approval
   *     covers that request only
   */
  CompletionStage<Outcome> request(Principal principal, InferenceRequest request, String rule,
                                   String digest);

  /** How a review ended. */
  record Outcome(String approvalId, Status status, String reviewer, String reason, Instant decided) {}

  /** The end state of a review. */
  enum Status { APPROVED, REJECTED, EXPIRED }

  /** Refuses every review at once, as expired: used when no approval section is configured. */
  ApprovalService NONE = (principal, request, rule, digest) ->
      java.util.concurrent.CompletableFuture.completedFuture(
          new Outcome(null, Status.EXPIRED, null, "no approval service configured", Instant.now()));
}
