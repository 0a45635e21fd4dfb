package dev.inferpam.core.internal.recording;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import org.slf4j.Logger;

/**
 * Retention of a {@link JsonlRecorder}'s directory ({@code recording.retention}): which segments
 * have expired, the line that carries the chain over them, and their removal.
 *
 * <p>The oldest segments whose newest record is older than the retention (by the clock) expire —
 * whole files, oldest first, never the newest segment nor the one being written. A segment's day
 * bounds its lines (a segment holds lines written on its day or earlier), so a day that ended
 * before the cutoff expires without reading the file. The writer appends the retention line (see
 * {@link RecordCodec#retentionBody}) and makes it durable before {@link #remove} deletes anything.
 *
 * <p><b>Thread-safety:</b> used by the recorder's writer thread only.
 */
final class SegmentRetention {
  private final Path dir;
  private final Duration keep;
  private final Clock clock;
  private final ExchangeIds ids;
  private final Logger log;

  /** What expired: the segments and the chain line that names them. */
  record Plan(String line, List<Path> files, List<RecordCodec.Removed> removed) {}

  /**
   * @param keep {@code recording.retention}; {@code null}: keep everything
   */
  SegmentRetention(Path dir, Duration keep, Clock clock, Logger log) {
    this.dir = dir;
    this.keep = keep;
    this.clock = clock;
    this.ids = new ExchangeIds(clock);
    this.log = log;
  }

  /**
   * The segments expired now, or {@code null} when none did.
   *
   * @param current the segment being written, or {@code null}; it and those after it stay
   * @throws IOException when the directory cannot be listed or an expired segment cannot be read
   */
  Plan plan(SegmentFiles.Segment current) throws IOException {
    if (keep == null) return null;
    Instant now = clock.instant();
    Instant cutoff = now.minus(keep);
    List<SegmentFiles.Segment> segments = SegmentFiles.list(dir);
    List<RecordCodec.Removed> removed = new ArrayList<>();
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < segments.size() - 1; i++) { // never the newest
      SegmentFiles.Segment s = segments.get(i);
      if (current != null && s.path().equals(current.path())) break;
      Instant dayEnd = s.day().plusDays(1).atStartOfDay(ZoneOffset.UTC).toInstant();
      if (dayEnd.isAfter(cutoff)) {
        SegmentFiles.Tail tail;
        try {
          tail = SegmentFiles.tail(s.path());
        } catch (IOException e) {
          log.warn("inferpam: retention stops at {}: {}", s.name(), FileProblems.describe(e));
          break;
        }
        if (tail == null || tail.time() == null || !tail.time().isBefore(cutoff)) break;
      }
      SegmentFiles.Summary sum = SegmentFiles.summarize(s.path());
      removed.add(
          new RecordCodec.Removed(s.name(), sum.records(), sum.firstPrev(), sum.lastHash()));
      files.add(s.path());
    }
    if (removed.isEmpty()) return null;
    return new Plan(
        RecordCodec.retentionBody(ids.next(), now, removed),
        List.copyOf(files),
        List.copyOf(removed));
  }

  /** Deletes the segments of {@code plan}, whose chain line is durable; a file that resists is logged. */
  void remove(Plan plan) {
    for (Path f : plan.files()) {
      try {
        Files.deleteIfExists(f);
      } catch (IOException e) {
        log.warn(
            "inferpam: retention could not remove {}: {}",
            f.getFileName(),
            FileProblems.describe(e));
      }
    }
    log.info(
        "inferpam: retention removed {} recording segment(s) older than {}: {}",
        plan.files().size(),
        keep,
        plan.removed().stream().map(RecordCodec.Removed::file).collect(Collectors.joining(", ")));
  }
}
