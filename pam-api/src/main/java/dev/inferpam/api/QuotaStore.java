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

  /**
   * One step of {@link #admit}: a counter that must have room for {@code amount} more within
   * {@code limit} (its total plus {@code amount} at most {@code limit}), and, when {@code add},
   * that {@code amount} is added to.
   *
   * @param amount {@code > 0}
   */
  record Step(String key, long window, long amount, long limit, Instant windowEnd, boolean add) {
    public Step {
      java.util.Objects.requireNonNull(key, "key");
      java.util.Objects.requireNonNull(windowEnd, "windowEnd");
      if (amount <= 0) throw new IllegalArgumentException("amount must be > 0, was " + amount);
    }
  }

  /**
   * What {@link #admit} found.
   *
   * @param totals per step, in order: the counter's total as the call leaves it (as read, for a
   *     step that only checks; without its amount, for every step when one failed)
   * @param failed the index of the first step without room, or {@code -1} when every step had
   *     room and every adding step was added; when a step fails nothing is added
   */
  record Admission(long[] totals, int failed) {
    public Admission {
      totals = totals.clone();
    }

    @Override
    public long[] totals() {
      return totals.clone();
    }

    /** Whether every step had room. */
    public boolean admitted() {
      return failed < 0;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Admission a
          && a.failed == failed
          && java.util.Arrays.equals(a.totals, totals);
    }

    @Override
    public int hashCode() {
      return 31 * java.util.Arrays.hashCode(totals) + failed;
    }

    @Override
    public String toString() {
      return "Admission[totals=" + java.util.Arrays.toString(totals) + ", failed=" + failed + "]";
    }
  }

  /**
   * Checks and adds for one request in one call: each step in order must have room for its
   * amount within its limit; when one has not, it is the failed one and nothing is added;
   * otherwise the adding steps are added. The engine admits every request with one call, so a
   * store whose round trips cost (a Redis, a database) can make it one atomic round trip (a Redis
   * script, a transaction), and the limits then also hold across counters.
   *
   * <p>The default goes step by step: {@link #get} for a checking step, {@link #addIfWithin} for
   * an adding one, giving back (with {@link #add} and a negative amount) what it added before a
   * step failed. That is atomic per counter only, as each of those calls is.
   */
  default Admission admit(java.util.List<Step> steps) {
    long[] totals = new long[steps.size()];
    for (int i = 0; i < steps.size(); i++) {
      Step s = steps.get(i);
      long total;
      if (s.add()) {
        total = addIfWithin(s.key(), s.window(), s.amount(), s.limit(), s.windowEnd());
        if (total < 0) {
          totals[i] = get(s.key(), s.window());
          for (int j = i - 1; j >= 0; j--) {
            Step back = steps.get(j);
            if (back.add())
              totals[j] = add(back.key(), back.window(), -back.amount(), back.windowEnd());
          }
          return new Admission(totals, i);
        }
      } else {
        total = get(s.key(), s.window());
        if (s.amount() > s.limit() - total) {
          totals[i] = total;
          for (int j = i - 1; j >= 0; j--) {
            Step back = steps.get(j);
            if (back.add())
              totals[j] = add(back.key(), back.window(), -back.amount(), back.windowEnd());
          }
          return new Admission(totals, i);
        }
      }
      totals[i] = total;
    }
    return new Admission(totals, -1);
  }

  /**
   * Charges one exchange in one call, once its response has ended: each adding step's amount is
   * added whatever the total (tokens are charged after the fact; its {@code limit} is not
   * checked), every other step is only read. A store whose round trips cost can make it one
   * round trip. The default goes step by step with {@link #add} and {@link #get}.
   *
   * @return every step's total after the call, in order
   * @throws RuntimeException when the store fails; what was added before may stay added
   */
  default long[] charge(java.util.List<Step> steps) {
    long[] totals = new long[steps.size()];
    for (int i = 0; i < steps.size(); i++) {
      Step s = steps.get(i);
      totals[i] =
          s.add() ? add(s.key(), s.window(), s.amount(), s.windowEnd()) : get(s.key(), s.window());
    }
    return totals;
  }
}
