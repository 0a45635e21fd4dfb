package dev.inferpam.core.internal.recording;

import dev.inferpam.core.Policy;
import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;

/**
 * The writing half of a {@link JsonlRecorder}: the segment files, the hash chain, group commit and
 * what happens on an I/O error (see the recorder's class comment for the rules). It is given
 * records in order ({@link #take}), writes them through a staging buffer, syncs them when due
 * ({@link #step}), and tells the recorder through a {@link Listener} when records became durable,
 * when it failed and when it recovered.
 *
 * <p><b>Thread-safety:</b> confined to the recorder's writer thread (and to its constructor before
 * that thread starts). Calls back into the recorder on that thread.
 */
final class SegmentWriter {
  private static final int STAGING_BYTES = 256 * 1024;
  private static final int TAIL_BYTES = RecordCodec.PREV_TAIL + RecordCodec.HASH_TAIL + 1;

  /** What the recorder hears from its writer. */
  interface Listener {
    /** Every record up to {@code seq} is durable (called after every sync, changed or not). */
    void durable(long seq);

    /** Writing failed; {@code reason} says why, without record content. */
    void failed(String reason);

    /** Writing works again after a failure. */
    void recovered();
  }

  private final Path dir;
  private final Clock clock;
  private final Policy.Recording config;
  private final JsonlRecorder.SegmentIo io;
  private final long retryIntervalNanos;
  private final long batchIntervalNanos;
  private final Logger log;
  private final RecordAdmission admission;
  private final SegmentRetention retention;
  private final Listener listener;

  private final MessageDigest sha = RecordCodec.sha256();
  private final byte[] staging = new byte[STAGING_BYTES];
  private int stagingLen;
  private final ArrayList<QueuedRecord> pending =
      new ArrayList<>(); // taken from the queue, not written
  private final ArrayList<QueuedRecord> unsynced = new ArrayList<>(); // written, not yet durable
  private long firstUnsyncedNanos;
  private SegmentFiles.Segment newest; // newest segment name in use, for naming the next
  private SegmentFiles.Segment current;
  private JsonlRecorder.SegmentOutput out;
  private long outSize;
  private long committedSize; // size of the current segment up to its last durable line
  private String head; // hash of the last line written
  private String committedHead; // hash of the last durable line
  private long writtenSeq;
  private long committedSeq;
  private long forcedSeq; // what the last fsync covered
  private boolean needsForce;
  private boolean failed;
  private long nextRetryNanos;

  SegmentWriter(
      Policy.Recording config,
      Clock clock,
      JsonlRecorder.SegmentIo io,
      Duration retryInterval,
      Logger log,
      RecordAdmission admission,
      Listener listener) {
    this.dir = config.directory();
    this.config = config;
    this.clock = clock;
    this.io = io;
    this.retryIntervalNanos = retryInterval.toNanos();
    this.batchIntervalNanos = config.batchInterval().toNanos();
    this.log = log;
    this.admission = admission;
    this.retention = new SegmentRetention(dir, config.retention(), clock, log);
    this.listener = listener;
  }

  // ------------------------------------------------------------------------------ the loop's view

  /** Whether the last write failed; the writer then waits {@link #retryInNanos} before trying again. */
  boolean failed() {
    return failed;
  }

  /** Nanoseconds until the next attempt after a failure; zero or less when due. */
  long retryInNanos(long nowNanos) {
    return nextRetryNanos - nowNanos;
  }

  /** Whether records were taken and are not written yet. */
  boolean hasPending() {
    return !pending.isEmpty();
  }

  /** Whether records are written but not yet durable. */
  boolean hasUnsynced() {
    return !unsynced.isEmpty();
  }

  /** Nanoseconds until the group commit of the unsynced records is due; zero or less when due. */
  long commitInNanos(long nowNanos) {
    return firstUnsyncedNanos + batchIntervalNanos - nowNanos;
  }

  /** How many more records {@link #take} accepts before the next {@link #step}. */
  int room() {
    return config.batchSize() - pending.size();
  }

  /** Takes the next record to write, in order. */
  void take(QueuedRecord record) {
    pending.add(record);
  }

  // ------------------------------------------------------------------------------ start and stop

  /**
   * Finds where the chain stands and applies retention; runs before the writer thread starts.
   *
   * @throws IOException when the directory cannot be read or retention fails
   */
  void start() throws IOException {
    List<SegmentFiles.Segment> segments = SegmentFiles.list(dir);
    newest = segments.isEmpty() ? null : segments.get(segments.size() - 1);
    head = RecordCodec.GENESIS;
    for (int i = segments.size() - 1; i >= 0; i--) {
      SegmentFiles.Segment s = segments.get(i);
      SegmentFiles.Tail tail = SegmentFiles.tail(s.path());
      if (tail == null) continue;
      if (tail.torn()) {
        log.warn(
            "inferpam: recording segment {} ends with a truncated line (a write cut short by a crash?); "
                + "leaving it as it is and continuing the chain from its last intact line in a new segment",
            s.name());
      }
      if (tail.hash() != null) {
        head = tail.hash();
        break;
      }
    }
    committedHead = head;
    retention();
  }

  /** Syncs what was written (unless failed) and closes the segment; when the writer ends. */
  void stop() {
    if (out == null) return;
    try {
      if (!failed) force();
    } catch (IOException | RuntimeException e) {
      log.error("inferpam: final sync of the recording failed: {}", FileProblems.describe(e));
    }
    closeQuietly(out);
    out = null;
  }

  /** Closes the segment without syncing, when the recorder could not start. */
  void abort() {
    closeQuietly(out);
    out = null;
  }

  // ------------------------------------------------------------------------------ writing

  /**
   * Writes what is pending and syncs when due: an intent, a full batch, the batch interval, or a
   * flush up to {@code target}. A failure is reported to the listener, never thrown.
   */
  void step(long target) {
    boolean recovering = failed;
    try {
      boolean intent = false;
      for (QueuedRecord r : pending) intent |= r.intent;
      if (recovering && pending.isEmpty() && out == null)
        openSegment(false); // prove the disk works
      writePending();
      boolean due =
          !unsynced.isEmpty()
              && (unsynced.size() >= config.batchSize()
                  || System.nanoTime() - firstUnsyncedNanos >= batchIntervalNanos);
      if (recovering || intent || due || target > forcedSeq) force();
      if (recovering) recovered();
    } catch (IOException | RuntimeException e) {
      fail(e);
    }
  }

  private void writePending() throws IOException {
    int staged = 0; // pending[0, staged) are in the staging buffer
    while (staged < pending.size()) {
      QueuedRecord record = pending.get(staged);
      byte[] body = record.body(log);
      if (body == null) { // not encodable: nothing to write, counts as done
        staged++;
        continue;
      }
      int lineLen = body.length + TAIL_BYTES;
      if (needsNewSegment(lineLen)) {
        flushStaging(staged);
        staged = 0;
        if (out == null) {
          openSegment(true);
        } else {
          rotate();
        }
        continue;
      }
      if (stagingLen + lineLen > staging.length) {
        flushStaging(staged);
        staged = 0;
      }
      byte[] tail = RecordCodec.tail(body, head, sha);
      if (lineLen
          > staging.length) { // too big to stage (staging was flushed above): write it directly
        out.write(body, 0, body.length);
        out.write(tail, 0, tail.length);
        outSize += lineLen;
        head = RecordCodec.hashOfTail(tail);
        written(1);
        continue;
      }
      System.arraycopy(body, 0, staging, stagingLen, body.length);
      System.arraycopy(tail, 0, staging, stagingLen + body.length, tail.length);
      stagingLen += lineLen;
      outSize += lineLen;
      head = RecordCodec.hashOfTail(tail);
      staged++;
    }
    flushStaging(staged);
  }

  private boolean needsNewSegment(int lineLen) {
    if (out == null) return true;
    LocalDate today = SegmentFiles.day(clock.instant());
    return today.isAfter(current.day())
        || (outSize > 0 && outSize + lineLen > config.segmentBytes());
  }

  private void flushStaging(int records) throws IOException {
    if (stagingLen > 0) {
      out.write(staging, 0, stagingLen);
      stagingLen = 0;
    }
    if (records > 0) written(records);
  }

  /** The first {@code n} pending records are now in the file. */
  private void written(int n) {
    List<QueuedRecord> done = pending.subList(0, n);
    writtenSeq = done.get(n - 1).seq;
    needsForce = true;
    if (config.durability() == Policy.Durability.ASYNC) {
      // async: a line handed to the OS is as committed as this mode promises
      committedSeq = writtenSeq;
      committedHead = head;
      committedSize = outSize;
      admission.release(done);
    } else {
      if (unsynced.isEmpty()) firstUnsyncedNanos = System.nanoTime();
      unsynced.addAll(done);
    }
    done.clear();
  }

  /** Makes everything written durable and frees the room of the records that became durable. */
  private void force() throws IOException {
    if (out != null && needsForce) out.force();
    needsForce = false;
    committedSeq = writtenSeq;
    committedHead = head;
    committedSize = outSize;
    forcedSeq = writtenSeq;
    admission.release(unsynced);
    unsynced.clear();
    listener.durable(writtenSeq);
  }

  private void rotate() throws IOException {
    force();
    JsonlRecorder.SegmentOutput o = out;
    out = null;
    o.close();
    openSegment(true);
  }

  private void openSegment(boolean retention) throws IOException {
    SegmentFiles.Segment next = SegmentFiles.next(dir, newest, SegmentFiles.day(clock.instant()));
    JsonlRecorder.SegmentOutput o;
    try {
      o = io.create(next.path());
    } catch (FileAlreadyExistsException e) {
      newest = next; // a leftover; the next attempt takes the following name
      throw e;
    }
    newest = next;
    current = next;
    out = o;
    outSize = 0;
    committedSize = 0;
    if (retention) retention();
  }

  /** Removes expired segments, once the line that carries the chain over them is durable. */
  private void retention() throws IOException {
    SegmentRetention.Plan plan = retention.plan(current);
    if (plan == null) return;
    if (out == null) openSegment(false);
    writeChainLine(plan.line());
    retention.remove(plan);
  }

  private void writeChainLine(String body) throws IOException {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    byte[] tail = RecordCodec.tail(b, head, sha);
    out.write(b, 0, b.length);
    out.write(tail, 0, tail.length);
    outSize += b.length + tail.length;
    head = RecordCodec.hashOfTail(tail);
    needsForce = true;
    force();
  }

  // ------------------------------------------------------------------------------ failure

  private void fail(Exception e) {
    String reason = FileProblems.describe(e);
    boolean first = !failed;
    failed = true;
    nextRetryNanos = System.nanoTime() + retryIntervalNanos;
    // what is not durable is written again, chained to the last durable line
    pending.addAll(0, unsynced);
    unsynced.clear();
    stagingLen = 0;
    head = committedHead;
    writtenSeq = committedSeq;
    needsForce = false;
    if (out != null) {
      try {
        out.truncate(committedSize); // drops a half-written line, if the disk lets us
      } catch (IOException | RuntimeException ignored) {
        // the segment stays as it is; verify will name the broken line
      }
      closeQuietly(out);
      out = null;
      if (committedSize == 0) {
        try {
          Files.deleteIfExists(current.path());
        } catch (IOException | RuntimeException ignored) {
          // an empty leftover segment is harmless
        }
      }
    }
    listener.failed(reason);
    if (first) {
      log.error(
          "inferpam: recording to {} failed; new exchanges are refused (503 recording_unavailable) "
              + "until writing works again, retrying every {} ms: {}",
          dir,
          retryIntervalNanos / 1_000_000,
          reason);
    } else {
      log.debug("inferpam: recording still failing: {}", reason);
    }
  }

  private void recovered() {
    failed = false;
    listener.recovered();
    log.info(
        "inferpam: recording to {} works again, continuing in {}",
        dir,
        current == null ? "-" : current.name());
  }

  static void closeQuietly(Closeable c) {
    if (c == null) return;
    try {
      c.close();
    } catch (IOException | RuntimeException ignored) {
      // nothing more to do with it
    }
  }
}
