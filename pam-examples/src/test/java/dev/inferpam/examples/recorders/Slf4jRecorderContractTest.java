package dev.inferpam.examples.recorders;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.testkit.RecorderContract;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * {@link Slf4jRecorder} passes the recorder compatibility kit. What it stored is read back from
 * the lines it handed to its sink, which {@link Slf4jRecorderTest} shows are the lines it logged.
 *
 * <p>With {@link Slf4jRecorder.Bodies#KEEP}: the kit checks that a record reads back equal to
 * the one given, bodies included, which the default ({@code OMIT}) by design does not do;
 * {@link Slf4jRecorderTest} covers what the default leaves out and keeps.
 */
class Slf4jRecorderContractTest extends RecorderContract {
  private final ConcurrentLinkedQueue<String> lines = new ConcurrentLinkedQueue<>();

  @Override
  protected Recorder createRecorder() {
    // A capturing logger rather than slf4j-simple: the kit records thousands of lines.
    return new Slf4jRecorder(
        new CapturingLogger(Slf4jRecorder.LOGGER_NAME), lines::add, Slf4jRecorder.Bodies.KEEP);
  }

  @Override
  protected List<SessionRecord> storedRecords() throws Exception {
    List<SessionRecord> records = new ArrayList<>();
    for (String line : lines) records.add(Slf4jRecorder.fromJson(line));
    return records;
  }
}
