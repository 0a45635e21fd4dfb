package dev.inferpam.testkit;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link Recorder} for adapter tests that keeps every record in memory, in order, and can
 * refuse admission: while {@link #down} is set (a full disk), and for the next
 * {@link #refuseAdmissions} admissions (a queue full for a moment). {@link #admits} counts every
 * admission asked for, refused or not.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; the lists are copy-on-write.
 */
public final class CapturingRecorder implements Recorder {
  /** Exchange records, in the order they were recorded. */
  public final List<SessionRecord> records = new CopyOnWriteArrayList<>();

  /** Intent records (strict durability), in order. */
  public final List<SessionRecord> intents = new CopyOnWriteArrayList<>();

  /** How many admissions were asked for. */
  public final AtomicInteger admits = new AtomicInteger();

  /** How many of the next admissions to refuse. */
  public final AtomicInteger refuseAdmissions = new AtomicInteger();

  /** While set, every admission is refused. */
  public volatile boolean down;

  /** A recorder that has captured nothing yet. */
  public CapturingRecorder() {}

  @Override
  public void admit() throws IOException {
    admits.incrementAndGet();
    if (down) throw new IOException("disk full");
    if (refuseAdmissions.getAndUpdate(n -> Math.max(0, n - 1)) > 0)
      throw new IOException("recording queue full");
  }

  @Override
  public void record(SessionRecord record) {
    records.add(record);
  }

  @Override
  public void intent(SessionRecord record) {
    intents.add(record);
  }

  @Override
  public String toString() {
    return "CapturingRecorder[" + records.size() + " records, " + intents.size() + " intents]";
  }
}
