package dev.inferpam.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

class InMemoryRecorderContractTest extends RecorderContract {
  private InMemoryRecorder recorder;

  @Override
  protected Recorder createRecorder() {
    return recorder = new InMemoryRecorder();
  }

  @Override
  protected List<SessionRecord> storedRecords() {
    return recorder.records();
  }

  @Test
  void refusesAdmissionWhenFullButStoresWhatItAdmitted() throws IOException {
    InMemoryRecorder small = new InMemoryRecorder(2);
    small.admit();
    small.admit();

    assertThatThrownBy(small::admit)
        .isInstanceOf(IOException.class)
        .hasMessage("recording queue full");
    small.record(exchange("a", "alice", 1)); // the admitted records always fit
    small.record(exchange("b", "alice", 2));
    assertThatThrownBy(() -> small.record(exchange("x", "alice", 0)))
        .isInstanceOf(IOException.class)
        .hasMessage("recording queue full"); // not admitted, no room
    assertThat(small.records()).extracting(SessionRecord::id).containsExactly("a", "b");

    small.clear();
    assertThat(small.records()).isEmpty();
    small.admit();
  }

  @Test
  void aRecordThatFailsToBuildGivesBackTheRoomItsAdmissionReserved() throws IOException {
    InMemoryRecorder one = new InMemoryRecorder(1);
    one.admit();
    assertThatThrownBy(
            () ->
                one.recordLater(
                    PendingRecord.of(
                        "ex-broken",
                        0,
                        () -> {
                          throw new IllegalStateException("bug");
                        })))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("bug");

    one.admit(); // the room is free again
    one.recordLater(PendingRecord.of(exchange("ok", "alice", 1)));
    assertThat(one.records()).extracting(SessionRecord::id).containsExactly("ok");
  }

  @Test
  void refusesANonPositiveCapacity() {
    assertThatThrownBy(() -> new InMemoryRecorder(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("capacity must be > 0, was 0");
  }
}
