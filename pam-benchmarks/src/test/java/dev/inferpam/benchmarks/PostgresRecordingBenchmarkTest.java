package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.Recordings;
import dev.inferpam.postgres.PostgresRecords;
import org.junit.jupiter.api.Test;

/**
 * Runs the benchmark methods once outside JMH against the PostgreSQL they start, so a broken
 * setup fails {@code ./mvnw verify} rather than the next benchmark run, and checks that every
 * record measured is a row of a chain that verifies. Measures nothing.
 */
class PostgresRecordingBenchmarkTest {
  private final PostgresRecordingBenchmark benchmark = new PostgresRecordingBenchmark();

  @Test
  void batchedRecordsAreCommittedAndVerify() throws Exception {
    PostgresRecordingBenchmark.Batched store = new PostgresRecordingBenchmark.Batched();
    store.start(); // itself an intent and a record, checked
    try {
      benchmark.batchedThroughput(store);
      store.drain();
      assertThat(PostgresRecords.of(store.state).verify())
          .isEqualTo(
              new Recordings.Verification(
                  true, 2 + PostgresRecordingBenchmark.RECORDS_PER_FLUSH, null, 0, null));
    } finally {
      store.stop();
    }
  }

  @Test
  void strictIntentsAreCommittedAndVerify() throws Exception {
    PostgresRecordingBenchmark.Strict store = new PostgresRecordingBenchmark.Strict();
    store.start();
    try {
      for (int i = 0; i < 20; i++) benchmark.strictIntent(store);
      store.drain();
      assertThat(PostgresRecords.of(store.state).verify())
          .isEqualTo(new Recordings.Verification(true, 2 + 40, null, 0, null));
    } finally {
      store.stop();
    }
  }
}
