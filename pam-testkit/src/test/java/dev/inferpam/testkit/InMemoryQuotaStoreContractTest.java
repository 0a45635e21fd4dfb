package dev.inferpam.testkit;

import dev.inferpam.api.QuotaStore;
import dev.inferpam.core.InMemoryQuotaStore;
import java.time.Clock;

/** The default store against the contract; its own behaviour is in pam-core's {@code InMemoryQuotaStoreTest}. */
class InMemoryQuotaStoreContractTest extends QuotaStoreContract {
  @Override
  protected QuotaStore newStore(Clock clock) {
    return new InMemoryQuotaStore(clock);
  }
}
