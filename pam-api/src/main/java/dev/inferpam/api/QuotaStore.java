package dev.inferpam.api;

import java.time.Instant;

/**
 * Where quota counters live (the policy's {@code limits}).
 *
 * <p>A counter is named by an opaque {@code key} (the engine builds it from the principal, the
 * limit entry and the bound) and a {@code window}: the index of the fixed window it counts in
 * (the UTC minute or day since the epoch). Each counter starts at 0 in every window; a store may
 * forget a counter once its {@code windowEnd} has passed. Keys are at most a few hundred
 * characters and hold no secret.
 *
 * <p><b>Atomicity:</b> each call must be atomic for its counter: {@link #addIfWithin} in
 * particular must never let two concurrent callers both pass the limit. A store shared by several
 * replicas (a database row per key and window updated with
 * {@code SET used = used + ? WHERE key = ? AND window = ? AND used + ? <= ?}, or a Redis script)
 * makes the limits hold across them. Nothing needs to be atomic across counters.
 *
 * <p><b>Thread-safety:</b> called concurrently from request threads; implementations must be
 * thread-safe. A store that fails (throws) makes the engine refuse the request (fail closed) at
 * admission; a failure while charging tokens after a response is logged and the tokens are lost.
 */
public interface QuotaStore {

  /**
   * Adds {@code amount} to the counter when the total stays at most {@code limit}.
   *
   * @param amount    {@code > 0}
   * @param limit     the largest total allowed
   * @param windowEnd when the window ends (the counter may be dropped after it)
   * @return the total after adding, or {@code -1} when adding would pass {@code limit} (nothing
   *     is added then)
   */
  long addIfWithin(String key, long window, long amount, long limit, Instant windowEnd);

  /**
   * Adds {@code amount} (which may be negative, to give back what {@link #addIfWithin} took)
   * whatever the total; tokens are charged this way after the response, so a total may pass its
   * limit by what requests already admitted used.
   *
   * @return the total after adding
   */
  long add(String key, long window, long amount, Instant windowEnd);

  /** The counter's total, {@code 0} when it was never added to in this window. */
  long get(String key, long window);
}
