package dev.inferpam.core;

import dev.inferpam.api.Decision;
import java.util.Map;

/**
 * Hears the life of every exchange: the one place that metrics and traces hook into, set with
 * {@link PamEngine.Builder#eventListener}. Every method does nothing by default; override those
 * you need. Called by the engine, never by adapters, in this order for one exchange:
 * <ol>
 *   <li>{@link #decided} once per decision: a request held for review hears
 *       {@link Decision.RequireApproval} first, then its final decision;</li>
 *   <li>for an allowed request, {@link #forwarded} when the adapter takes what to send upstream,
 *       then {@link #firstByte} when the response starts (or {@link #failed} with
 *       {@link Failure#UPSTREAM} when none came);</li>
 *   <li>{@link #masked} when the masker ran over the response on its way to the caller (not when
 *       it failed: that is {@link #failed} with {@link Failure#MASKING}, when it happens);</li>
 *   <li>{@link #quotaCharged} when the policy's {@code limits} applied and the exchange was
 *       charged;</li>
 *   <li>{@link #recorded} once the record is handed to the recorder (not with no recorder; a
 *       record the recorder refuses is {@link #failed} with {@link Failure#RECORDING});</li>
 *   <li>{@link #ended}, last.</li>
 * </ol>
 *
 * <p>One event belongs to no exchange: {@link #keyFetchFailed}, when an OIDC issuer's keys could
 * not be fetched.
 *
 * <p>Calls are made synchronously on the thread doing the work (a request thread, a response
 * reader, or, for a decision after review, the thread that ended the review): keep them short and
 * non-blocking. An exception thrown by a listener is logged and otherwise ignored; it never
 * changes an exchange. Implementations must be thread-safe: exchanges run concurrently.
 */
public interface ExchangeListener {

  /** A listener that hears nothing; the default. */
  ExchangeListener NONE = new ExchangeListener() {};

  /** What went wrong, for {@link #failed}. */
  enum Failure {
    /** The forwarded request got no answer from the upstream. */
    UPSTREAM,
    /** The masker failed mid-response; the response was cut off. */
    MASKING,
    /** The recorder refused or failed to take the record. */
    RECORDING,
    /**
     * The quota store failed and the request was admitted uncounted
     * ({@code state.redis.when-unavailable: allow}).
     */
    QUOTAS
  }

  /** The engine decided (or, after a review, decided again). */
  default void decided(ExchangeInfo exchange, Decision decision) {}

  /** The adapter is forwarding the allowed request. */
  default void forwarded(ExchangeInfo exchange) {}

  /** The response started: its status line and headers are known. */
  default void firstByte(ExchangeInfo exchange, int status) {}

  /**
   * The response was masked on its way to the caller.
   *
   * @param counts values masked per detector (empty when none was found)
   */
  default void masked(ExchangeInfo exchange, Map<String, Integer> counts) {}

  /**
   * The exchange was charged against the policy's {@code limits}: what the caller has left, as a
   * fraction of each bound, the least over the limit entries that apply to it.
   *
   * @param fractionLeft by bound as records name them ({@code tokens_per_day},
   *                     {@code requests_per_minute}, ...), from 0 (used up) to 1; empty when the
   *                     quota store could not say
   */
  default void quotaCharged(ExchangeInfo exchange, Map<String, Double> fractionLeft) {}

  /** The exchange's record was handed to the recorder. */
  default void recorded(ExchangeInfo exchange) {}

  /** Something failed; the exchange goes on to its end. */
  default void failed(ExchangeInfo exchange, Failure failure) {}

  /**
   * The exchange ended.
   *
   * @param complete false when the upstream or the client broke off, or the caller gave up
   */
  default void ended(ExchangeInfo exchange, boolean complete) {}

  /**
   * An OIDC issuer's discovery document or key set could not be fetched: unreachable, an error
   * status, slower than the fetch deadline, or not a valid document — on a request's path or in
   * a background refresh. While no keys of the issuer are cached, its tokens are refused 401
   * {@code unauthenticated}; fetches are retried at most once per refetch interval. Called on the
   * thread that fetched; belongs to no exchange.
   *
   * @param issuer the issuer as the policy names it ({@code identity.oidc[].issuer})
   */
  default void keyFetchFailed(String issuer) {}
}
