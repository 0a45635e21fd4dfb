package dev.inferpam.testkit;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/** The JSONL recorder passes the contract in every durability mode, read back through {@link Recordings}. */
class JsonlRecorderContractTest {

  abstract static class Jsonl extends RecorderContract {
    @TempDir Path dir;

    abstract Policy.Durability durability();

    @Override
    protected Recorder createRecorder() {
      return new JsonlRecorder(
          new Policy.Recording(dir, null, durability(), null, 0, 0, null, 0), Clock.systemUTC());
    }

    @Override
    protected List<SessionRecord> storedRecords() throws Exception {
      return Recordings.open(dir).entries().stream().map(Recordings.Entry::record).toList();
    }
  }

  @Nested
  class Strict extends Jsonl {
    @Override
    Policy.Durability durability() {
      return Policy.Durability.STRICT;
    }
  }

  @Nested
  class Batched extends Jsonl {
    @Override
    Policy.Durability durability() {
      return Policy.Durability.BATCHED;
    }
  }

  @Nested
  class Async extends Jsonl {
    @Override
    Policy.Durability durability() {
      return Policy.Durability.ASYNC;
    }
  }
}
