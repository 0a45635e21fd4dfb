package dev.inferpam.core;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.core.internal.recording.RecordLines;
import dev.inferpam.core.internal.recording.SegmentFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Reads a recording directory written by the JSONL recorder ({@code docs/recording.md}): lists
 * and finds exchanges, and verifies the hash chain.
 *
 * <p>Files are streamed; nothing but the current line and the returned entries is held. Segments
 * are read in chain order ({@code session-<yyyyMMdd>-<seq>.jsonl} by day, then number); other
 * files are ignored. Lines that cannot be read (torn, malformed, too long) are skipped by
 * {@link #list} and {@link #find} and reported by {@link #verify}. While a recorder is writing,
 * its last line may be caught half-written: verify a directory after the recorder was flushed or
 * closed.
 *
 * <p><b>Thread-safety:</b> immutable; every call reads the directory afresh.
 */
public final class Recordings implements StoredRecords {
  private final Path dir;

  private Recordings(Path dir) {
    this.dir = dir;
  }

  /**
   * Opens a recording directory for reading.
   *
   * @throws IOException {@code "no recording directory: DIR"} when {@code dir} is not a directory
   */
  public static Recordings open(Path dir) throws IOException {
    Objects.requireNonNull(dir, "dir");
    if (!Files.isDirectory(dir)) throw new IOException("no recording directory: " + dir);
    return new Recordings(dir);
  }

  /**
   * The exchange lines, oldest first, optionally only those of one subject and from a time on.
   * Oldest is by {@code time}, when the exchange began: a line is written when its exchange ends,
   * so a long stream, or a request that waited for a reviewer, stands in the files after exchanges
   * that began later; it is listed where it began (exchanges that began at the same moment in the
   * order their lines were written). Every matching entry is returned in one list: narrow large
   * directories with the filters.
   *
   * @param subject the principal's subject to match exactly, or {@code null} for all
   *                (unidentified callers then included)
   * @param since   only exchanges whose {@code time} is at or after this, or {@code null}
   */
  @Override
  public List<Entry> list(String subject, Instant since) throws IOException {
    List<Entry> out = new ArrayList<>();
    scan(
        e -> {
          SessionRecord r = e.record();
          if (!SessionRecord.TYPE_EXCHANGE.equals(r.type())) return true;
          if (subject != null
              && (r.principal() == null || !subject.equals(r.principal().subject()))) return true;
          if (since != null && r.time().isBefore(since)) return true;
          out.add(e);
          return true;
        });
    out.sort(Comparator.comparing(e -> e.record().time())); // stable: ties keep file order
    return out;
  }

  /**
   * Every exchange and intent line, oldest first (retention lines are left out). An intent
   * without an exchange line of the same id marks an exchange that never ended.
   */
  public List<Entry> entries() throws IOException {
    List<Entry> out = new ArrayList<>();
    scan(
        e -> {
          out.add(e);
          return true;
        });
    return out;
  }

  /** Every exchange and intent line with this id, in file order. */
  @Override
  public List<Entry> lines(String id) throws IOException {
    Objects.requireNonNull(id, "id");
    List<Entry> out = new ArrayList<>();
    scan(
        e -> {
          if (id.equals(e.record().id())) out.add(e);
          return true;
        });
    return out;
  }

  /** The directory. */
  @Override
  public String location() {
    return dir.toString();
  }

  /** The exchange line with this id (the first, should there be several). */
  @Override
  public Optional<Entry> find(String id) throws IOException {
    Objects.requireNonNull(id, "id");
    Entry[] found = new Entry[1];
    scan(
        e -> {
          if (id.equals(e.record().id()) && SessionRecord.TYPE_EXCHANGE.equals(e.record().type())) {
            found[0] = e;
            return false;
          }
          return true;
        });
    return Optional.ofNullable(found[0]);
  }

  /**
   * Recomputes every line's hash and link across all segments in order and reports the first
   * line that breaks the chain. Finds an edited, deleted, inserted or reordered line, a truncated
   * last line, and a missing first segment not covered by a retention line.
   */
  @Override
  public Verification verify() throws IOException {
    MessageDigest sha = RecordCodec.sha256();
    long records = 0;
    String expected = null; // hash of the line before; null before the first line
    String uncovered = null; // first prev, when not the genesis, until a retention line names it
    String uncoveredFile = null;
    for (SegmentFiles.Segment s : SegmentFiles.list(dir)) {
      String file = s.name();
      long lineNo = 0;
      try (RecordLines lines = RecordLines.open(s.path())) {
        RecordLines.Line line;
        while ((line = lines.next()) != null) {
          lineNo++;
          String reason = null;
          RecordCodec.Links links = null;
          if (line.tooLong()) {
            reason = "malformed line";
          } else if (!line.terminated()) {
            reason = "truncated line";
          } else if ((links = RecordCodec.links(line.bytes(), line.length())) == null) {
            reason = "malformed line";
          } else if (!RecordCodec.hashOf(line.bytes(), line.length() - RecordCodec.HASH_TAIL, sha)
              .equals(links.hash())) {
            reason = "hash mismatch";
          } else if (expected != null && !expected.equals(links.prev())) {
            reason = "prev does not match previous line";
          }
          if (reason != null) {
            // an uncovered start is the earlier break: lines after a break cannot vouch for it
            if (uncovered != null) return broken(records, uncoveredFile, 1, UNCOVERED);
            return broken(records, file, lineNo, reason);
          }
          if (expected == null && !RecordCodec.GENESIS.equals(links.prev())) {
            uncovered = links.prev();
            uncoveredFile = file;
          }
          // lines are only parsed while a retention line is still wanted, and only those that
          // say so near their start (type is the second member)
          if (uncovered != null
              && startsAsRetention(line)
              && RecordCodec.TYPE_RETENTION.equals(RecordCodec.typeOf(line.text()))) {
            try {
              for (RecordCodec.Removed r : RecordCodec.decodeRetention(line.text()).removed()) {
                if (uncovered.equals(r.lastHash())) uncovered = null;
              }
            } catch (IllegalArgumentException e) {
              return broken(records, file, lineNo, "malformed line");
            }
          }
          expected = links.hash();
          records++;
        }
      }
    }
    if (uncovered != null) return broken(records, uncoveredFile, 1, UNCOVERED);
    return new Verification(true, records, null, 0, null);
  }

  private static final byte[] RETENTION_TYPE =
      ("\"type\":\"" + RecordCodec.TYPE_RETENTION + "\"").getBytes(StandardCharsets.US_ASCII);

  private static boolean startsAsRetention(RecordLines.Line line) {
    byte[] b = line.bytes();
    int end = Math.min(line.length(), 64) - RETENTION_TYPE.length;
    outer:
    for (int i = 0; i <= end; i++) {
      for (int k = 0; k < RETENTION_TYPE.length; k++) {
        if (b[i + k] != RETENTION_TYPE[k]) continue outer;
      }
      return true;
    }
    return false;
  }

  private static final String UNCOVERED =
      "first segment does not start the chain and no retention line covers it";

  private static Verification broken(long records, String file, long line, String reason) {
    return new Verification(false, records, file, line, reason);
  }

  private interface Visitor {
    /** Returns false to stop. */
    boolean visit(Entry entry) throws IOException;
  }

  /** Calls {@code v} with every exchange or intent line that decodes, in chain order. */
  private void scan(Visitor v) throws IOException {
    for (SegmentFiles.Segment s : SegmentFiles.list(dir)) {
      long lineNo = 0;
      try (RecordLines lines = RecordLines.open(s.path())) {
        RecordLines.Line line;
        while ((line = lines.next()) != null) {
          lineNo++;
          if (!line.terminated() || line.tooLong()) continue;
          String json = line.text();
          SessionRecord record;
          try {
            record = RecordCodec.decode(json);
          } catch (IllegalArgumentException e) {
            continue; // retention, future line types, or damage that verify() reports
          }
          if (!v.visit(new Entry(s.name(), lineNo, record, json))) return;
        }
      }
    }
  }

  @Override
  public String toString() {
    return "Recordings[" + dir + "]";
  }

  /**
   * One recorded line.
   *
   * @param file   the segment file name
   * @param line   1-based line number in that file
   * @param record the decoded record
   * @param json   the line as stored (without the line break)
   */
  public record Entry(String file, long line, SessionRecord record, String json) {}

  /**
   * The result of {@link #verify()}.
   *
   * @param ok      true when every line and link checks out
   * @param records lines verified (all types); when broken, the intact lines before the break
   *                (a database store: the rows read)
   * @param file    the segment of the first broken line, {@code null} when ok (a database store:
   *                the writer of the first break)
   * @param line    its 1-based line number, 0 when ok (a database store: the sequence number)
   * @param reason  {@code hash mismatch}, {@code prev does not match previous line},
   *                {@code malformed line}, {@code truncated line}, or {@code first segment does
   *                not start the chain and no retention line covers it}; {@code null} when ok
   *                (a database store adds {@code missing})
   * @param breaks  every break found, in order, each with where it is in words ({@code
   *                session-20261128-0001.jsonl:3}, {@code writer r-1a2b seq 17}); a directory
   *                reports its first break only, a database store the breaks of every writer
   */
  public record Verification(
      boolean ok, long records, String file, long line, String reason, List<Break> breaks) {
    public Verification {
      breaks = breaks == null ? List.of() : List.copyOf(breaks);
    }

    /** A result with at most the one break it names ({@code file:line}). */
    public Verification(boolean ok, long records, String file, long line, String reason) {
      this(
          ok,
          records,
          file,
          line,
          reason,
          ok ? List.of() : List.of(new Break(file == null ? null : file + ":" + line, reason)));
    }
  }

  /**
   * One break of a chain.
   *
   * @param where  where it is, in words, or {@code null} when nowhere in particular
   * @param reason what is wrong there
   */
  public record Break(String where, String reason) {}
}
