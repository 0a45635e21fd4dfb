package dev.inferpam.core.internal.quotas;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Principal;
import dev.inferpam.core.InMemoryQuotaStore;
import dev.inferpam.core.Policy;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Budgets belong to one identity each, also past the table of recent principals' keys that
 * {@link Quotas} reuses: more principals than its slots, and principals that share a subject.
 */
class QuotasKeysTest {
  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2026-11-29T12:00:10Z"), ZoneOffset.UTC);

  private final Quotas quotas =
      new Quotas(
          List.of(new Policy.Limit(Set.of("*"), List.of(), Set.of(), 2L, null, null)),
          new InMemoryQuotaStore(CLOCK),
          CLOCK);

  private boolean admitted(Principal p) {
    Quotas.Check c = quotas.admit(p, "chat", "llama-3", null);
    return c.admission() != null;
  }

  @Test
  void eachOfManyMorePrincipalsThanCachedKeysHasItsOwnBudget() {
    int n =
        1000; // several times the 256 slots of recent keys, so slots are taken over again and again
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < n; i++) {
        assertThat(admitted(Principal.of("user-" + i, Set.of(), Principal.VIA_API_KEY)))
            .as("user-%d", i)
            .isTrue();
      }
    }
    for (int i = 0; i < n; i++) {
      assertThat(admitted(Principal.of("user-" + i, Set.of(), Principal.VIA_API_KEY)))
          .as("user-%d", i)
          .isFalse();
    }
  }

  @Test
  void theSameSubjectUnderAnotherIdentitySourceOrIssuerIsAnotherBudget() {
    Principal key = Principal.of("alice", Set.of(), Principal.VIA_API_KEY);
    Principal idpA =
        new Principal("alice", Set.of(), Principal.VIA_OIDC, "https://a.example", Map.of());
    Principal idpB =
        new Principal("alice", Set.of(), Principal.VIA_OIDC, "https://b.example", Map.of());
    for (Principal p : List.of(key, idpA, idpB)) {
      assertThat(admitted(p)).isTrue();
      assertThat(admitted(p)).isTrue();
    }
    for (Principal p : List.of(key, idpA, idpB)) assertThat(admitted(p)).isFalse();
    // A fresh but equal principal object is the same budget.
    assertThat(
            admitted(
                new Principal(
                    "alice", Set.of(), Principal.VIA_OIDC, "https://a.example", Map.of())))
        .isFalse();
  }
}
