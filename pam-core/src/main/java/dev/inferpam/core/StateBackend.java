package dev.inferpam.core;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.api.Recorder;
import java.time.Clock;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * Builds what the policy's {@code state} section asks for; found with {@link java.util.ServiceLoader}
 * when an engine is built from such a policy. Module {@code pam-redis} provides the {@code redis}
 * backend: with {@code state.redis} in the policy and no {@link PamEngine.Builder#quotaStore}
 * given, the engine takes its quota counters from there. Module {@code pam-postgres} provides the
 * {@code postgres} backend: with {@code state.postgres}, pending reviews (and, with {@code
 * recording.store: postgres}, the records) live in that database. The engine refuses to start
 * when no module on the class or module path provides a backend the policy names.
 */
public interface StateBackend {
  /** The {@code state} key this backend serves: {@code redis} or {@code postgres}. */
  String kind();

  /**
   * A quota store at {@code url}, connected now; the engine closes it (when it is
   * {@link AutoCloseable}) when it closes. Default: this backend keeps no quota counters.
   *
   * @param url     the URL as configured (it may hold a password: never put it in a message)
   * @param timeout how long one call may take
   * @param clock   the engine's clock
   * @throws RuntimeException when the URL is not one this backend reads, or nothing answers there
   */
  default QuotaStore quotaStore(String url, Duration timeout, Clock clock) {
    throw new UnsupportedOperationException(kind() + " keeps no quota counters");
  }

  /**
   * The database of {@code state.postgres}, connected now (its schema checked, and migrated when
   * {@link Database#migrate()}); the engine closes it when it closes. Default: this backend is
   * no database.
   *
   * @throws RuntimeException when nothing answers, the credentials are refused, or the schema is
   *     not one this code can use; the message never holds the password
   */
  default SharedState open(Database database, Clock clock) {
    throw new UnsupportedOperationException(kind() + " is not a database");
  }

  /**
   * Where {@code state.postgres} points, read from the environment and files.
   *
   * @param url          the JDBC URL (it may hold a password: never put it in a message)
   * @param user         the role, or {@code null} when the URL names it
   * @param password     the password, or {@code null} when the URL holds it or none is needed
   * @param timeout      connecting, and one statement, at most
   * @param migrate      apply the schema migrations at start
   * @param pollInterval how often a replica looks for decisions it was not notified of
   */
  record Database(
      String url,
      String user,
      String password,
      Duration timeout,
      boolean migrate,
      Duration pollInterval) {
    @Override
    public String toString() {
      return "Database[user=" + user + ", timeout=" + timeout + ", migrate=" + migrate + "]";
    }
  }

  /**
   * State in one database, shared by every replica that uses it: what the engine builds its
   * parts from. Closing it releases its connections, after the parts made from it are closed.
   */
  interface SharedState extends AutoCloseable {
    /**
     * The approval service of the policy's {@code approval} section, its reviews kept here: a
     * review requested on any replica is listed and decided on any, and the replica that holds
     * the request learns the decision.
     *
     * @param approval the policy's approval settings
     * @param clock    the engine's clock
     * @param onReview told of each review opened by this replica (the review notifier)
     */
    ApprovalService approvalService(
        Policy.Approval approval, Clock clock, Consumer<ApprovalService.Pending> onReview);

    /**
     * The recorder of {@code recording.store: postgres}. Default: this state keeps no records.
     *
     * @param recording the policy's recording settings
     * @param clock     the engine's clock
     */
    default Recorder recorder(Policy.Recording recording, Clock clock) {
      throw new UnsupportedOperationException("this state keeps no records");
    }

    /**
     * The records of {@code recording.store: postgres}, for reading (the {@code replay}
     * commands); closing them leaves this state open. Default: this state keeps no records.
     */
    default StoredRecords storedRecords() {
      throw new UnsupportedOperationException("this state keeps no records");
    }

    @Override
    void close();
  }
}
