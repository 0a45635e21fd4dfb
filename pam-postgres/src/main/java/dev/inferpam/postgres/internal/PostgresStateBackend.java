package dev.inferpam.postgres.internal;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.Policy;
import dev.inferpam.core.StateBackend;
import dev.inferpam.core.StoredRecords;
import dev.inferpam.postgres.PostgresApprovalService;
import dev.inferpam.postgres.PostgresRecorder;
import dev.inferpam.postgres.PostgresRecords;
import dev.inferpam.postgres.PostgresState;
import java.time.Clock;
import java.util.function.Consumer;

/** The {@code postgres} backend of a policy's {@code state} section (found by ServiceLoader). */
public final class PostgresStateBackend implements StateBackend {
  /** For ServiceLoader. */
  public PostgresStateBackend() {}

  @Override
  public String kind() {
    return "postgres";
  }

  @Override
  public SharedState open(Database database, Clock clock) {
    PostgresState state =
        PostgresState.connect(
            database.url(),
            database.user(),
            database.password(),
            database.timeout(),
            database.migrate());
    return new Shared(state, database);
  }

  /** The parts of one engine, made from one pool. */
  private static final class Shared implements SharedState {
    private final PostgresState state;
    private final Database database;

    Shared(PostgresState state, Database database) {
      this.state = state;
      this.database = database;
    }

    @Override
    public ApprovalService approvalService(
        Policy.Approval approval, Clock clock, Consumer<ApprovalService.Pending> onReview) {
      return PostgresApprovalService.builder(state)
          .settings(approval)
          .clock(clock)
          .pollInterval(database.pollInterval())
          .onReview(onReview)
          .build();
    }

    @Override
    public Recorder recorder(Policy.Recording recording, Clock clock) {
      return PostgresRecorder.builder(state).settings(recording).clock(clock).build();
    }

    @Override
    public StoredRecords storedRecords() {
      return PostgresRecords.of(state);
    }

    @Override
    public void close() {
      state.close();
    }

    @Override
    public String toString() {
      return state.toString();
    }
  }
}
