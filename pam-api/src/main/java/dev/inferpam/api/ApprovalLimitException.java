package dev.inferpam.api;

import java.time.Duration;
import java.util.Objects;

/**
 * A review was not opened because too many are already waiting: the cause with which an
 * {@link ApprovalService} completes a {@link ApprovalService.Ticket#outcome() ticket's stage}
 * exceptionally (dependent stages wrap it in a
 * {@link java.util.concurrent.CompletionException}) when one of its bounds is reached.
 *
 * <p>It is neither a rejection nor an expiry, so it is not an {@link ApprovalService.Status}:
 * the engine answers it with 429 {@value #CODE} and {@code Retry-After: }{@link #retryAfter()}
 * (rounded up to whole seconds), names the bound as the deciding rule
 * ({@code approval.max-pending-per-principal} or {@code approval.max-pending}), and records the
 * request as a {@code deny} without an {@code approval} section (no review happened). The
 * message names the bound and the rule, never the request's content. Immutable.
 */
public final class ApprovalLimitException extends Exception {
  private static final long serialVersionUID = 1L;

  /** The {@code error.code} the engine answers with (HTTP 429). */
  public static final String CODE = "approval_limit";

  /** Which bound was reached. */
  public enum Scope {
    /** {@code approval.max-pending-per-principal}: this principal has too many waiting. */
    PRINCIPAL,
    /** {@code approval.max-pending}: too many are waiting in total. */
    TOTAL
  }

  private final Scope scope;
  private final int limit;
  private final Duration retryAfter;

  /**
   * @param scope      which bound was reached
   * @param limit      the bound's value
   * @param retryAfter when the first waiting review counted against the bound expires at the
   *                   latest (a decision may free room sooner); {@code null} or negative counts as
   *                   zero
   * @param rule       the approval rule the request was to be reviewed under
   * @throws NullPointerException when {@code scope} is null
   */
  public ApprovalLimitException(Scope scope, int limit, Duration retryAfter, String rule) {
    super(message(scope, limit, rule));
    this.scope = Objects.requireNonNull(scope, "scope");
    this.limit = limit;
    this.retryAfter = retryAfter == null || retryAfter.isNegative() ? Duration.ZERO : retryAfter;
  }

  private static String message(Scope scope, int limit, String rule) {
    String what =
        scope == Scope.PRINCIPAL
            ? "this principal already has "
                + limit
                + " requests waiting for review (approval.max-pending-per-principal)"
            : limit + " requests are already waiting for review (approval.max-pending)";
    return "approval rule \"" + rule + "\": " + what;
  }

  public Scope scope() {
    return scope;
  }

  public int limit() {
    return limit;
  }

  /** How long until room is certain to free up; the value for {@code Retry-After}. */
  public Duration retryAfter() {
    return retryAfter;
  }
}
