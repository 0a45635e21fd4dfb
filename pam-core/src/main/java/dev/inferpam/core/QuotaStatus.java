package dev.inferpam.core;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * One {@code limits} entry that applies to a principal, with what is used and left of each of its
 * bounds now: what {@link PamEngine#quotaStatus} returns and the quota endpoint shows. Immutable.
 *
 * @param rule       the entry, e.g. {@code limits[0]}
 * @param models     the entry's model globs as written; empty for any model
 * @param operations the entry's operations; empty for any
 * @param budgets    one per bound the entry sets, in the order requests-per-minute,
 *                   tokens-per-minute, tokens-per-day
 */
public record QuotaStatus(
    String rule, List<String> models, Set<String> operations, List<Budget> budgets) {
  public QuotaStatus {
    Objects.requireNonNull(rule, "rule");
    models = List.copyOf(models);
    operations = Set.copyOf(operations);
    budgets = List.copyOf(budgets);
  }

  /**
   * One bound of the entry in the current window.
   *
   * @param bound  {@code requests_per_minute}, {@code tokens_per_minute} or {@code tokens_per_day}
   * @param limit  the bound
   * @param used   counted in the current window (tokens may pass the bound, see the policy
   *               reference)
   * @param resets when the current window ends
   */
  public record Budget(String bound, long limit, long used, Instant resets) {
    public Budget {
      Objects.requireNonNull(bound, "bound");
      Objects.requireNonNull(resets, "resets");
    }

    /** What is left, never below 0. */
    public long remaining() {
      return Math.max(0, limit - used);
    }
  }
}
