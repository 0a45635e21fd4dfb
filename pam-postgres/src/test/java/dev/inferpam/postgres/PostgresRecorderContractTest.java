package dev.inferpam.postgres;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RecordFormat;
import dev.inferpam.testkit.RecorderContract;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** The recorder contract, every record a row of a real PostgreSQL, as the least-privileged role. */
class PostgresRecorderContractTest extends RecorderContract {
  private static Databases db;
  private static PostgresState state;
  private PostgresRecorder recorder;

  @BeforeAll
  static void startDatabase() throws Exception {
    db = Databases.start();
    state = db.asGateway();
  }

  @AfterAll
  static void stopDatabase() throws Exception {
    if (state != null) state.close();
    if (db != null) db.close();
  }

  @Override
  protected Recorder createRecorder() {
    // strict, the default: intents are committed before intent() returns
    recorder = PostgresRecorder.builder(state).settings(Policy.Recording.inPostgres()).build();
    return recorder;
  }

  /** This test's writer's rows, in seq order, decoded from their lines. */
  @Override
  protected List<SessionRecord> storedRecords() throws Exception {
    List<SessionRecord> out = new ArrayList<>();
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement("SELECT line FROM inferpam.records WHERE writer = ? ORDER BY seq")) {
      s.setString(1, recorder.writer());
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) out.add(RecordFormat.decode(r.getString(1)));
      }
    }
    return out;
  }
}
