package dev.inferpam.core;

import dev.inferpam.api.QuotaStore;
import java.time.Clock;
import java.time.Duration;

/**
 * Builds what the policy's {@code state} section asks for; found with {@link java.util.ServiceLoader}
 * when an engine is built from such a policy. Module {@code pam-redis} provides the {@code redis}
 * backend: with {@code state.redis} in the policy and no {@link PamEngine.Builder#quotaStore}
 * given, the engine takes its quota counters from there, and refuses to start when no module on
 * the class or module path provides the backend.
 */
public interface StateBackend {
  /** The {@code state} key this backend serves, e.g. {@code redis}. */
  String kind();

  /**
   * A quota store at {@code url}, connected now; the engine closes it (when it is
   * {@link AutoCloseable}) when it closes.
   *
   * @param url     the URL as configured (it may hold a password: never put it in a message)
   * @param timeout how long one call may take
   * @param clock   the engine's clock
   * @throws RuntimeException when the URL is not one this backend reads, or nothing answers there
   */
  QuotaStore quotaStore(String url, Duration timeout, Clock clock);
}
