package com.example.thirdparty;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.testkit.ApprovalServiceContract;
import dev.inferpam.testkit.RecorderContract;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/** Implementations written outside the project pass the kits the built-in ones pass. */
class ThirdPartyContractTest {

  @Nested
  class TheMapApprovalService extends ApprovalServiceContract {
    @Override
    protected ApprovalService createService(Clock clock, Settings settings) {
      return new MapApprovalService(
          clock,
          settings.reviewerGroups(),
          settings.timeout(),
          settings.maxPendingPerPrincipal(),
          settings.maxPending());
    }
  }

  @Nested
  class TheThreadedRecorder extends RecorderContract {
    private ThreadedRecorder recorder;

    @Override
    protected Recorder createRecorder() {
      return recorder = new ThreadedRecorder();
    }

    @Override
    protected List<SessionRecord> storedRecords() {
      return recorder.records();
    }

    @Test
    void buildsRecordsHandedOverUnbuiltOnItsOwnThread() throws Exception {
      recorder()
          .recordLater(
              later(exchange("ex-1", "alice", 1), new java.util.concurrent.atomic.AtomicInteger()));
      recorder().flush();

      assertThat(recorder.builtOn()).containsExactly(ThreadedRecorder.THREAD);
    }
  }
}
