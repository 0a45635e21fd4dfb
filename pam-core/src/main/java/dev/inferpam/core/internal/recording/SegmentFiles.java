package dev.inferpam.core.internal.recording;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Segment files of a recording directory: {@code session-<yyyyMMdd>-<seq>.jsonl}, where the date
 * is the UTC day the segment was started and {@code seq} counts segments of that day from
 * {@code 0001} (zero-padded to at least four digits). Chain order is (day, seq) compared as
 * numbers, which is also name order up to 9999 segments a day. Other files are ignored.
 * Stateless and thread-safe.
 */
public final class SegmentFiles {
  private static final Pattern NAME = Pattern.compile("session-(\\d{8})-(\\d{4,9})\\.jsonl");
  private static final DateTimeFormatter DAY = DateTimeFormatter.BASIC_ISO_DATE;
  private static final JsonFactory JSON = new JsonFactory();

  /** How far back a tail read looks before giving up on finding a line end. */
  private static final int TAIL_CHUNK = 64 * 1024;

  private SegmentFiles() {}

  /** One segment file. */
  public record Segment(Path path, LocalDate day, long seq) {
    public String name() {
      return path.getFileName().toString();
    }
  }

  /**
   * The end of a segment.
   *
   * @param hash the last intact line's hash, {@code null} when no line is intact
   * @param time the last intact line's {@code time}, {@code null} when unknown
   * @param torn true when an unterminated line (a write cut short) follows it
   */
  public record Tail(String hash, Instant time, boolean torn) {}

  /** What a retention line needs to know about a segment. */
  public record Summary(long records, String firstPrev, String lastHash) {}

  /** The segments in {@code dir}, in chain order. */
  public static List<Segment> list(Path dir) throws IOException {
    List<Segment> out = new ArrayList<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "session-*.jsonl")) {
      for (Path p : files) {
        Segment s = parse(p);
        if (s != null && Files.isRegularFile(p)) out.add(s);
      }
    }
    out.sort(Comparator.comparing(Segment::day).thenComparingLong(Segment::seq));
    return out;
  }

  /** The segment named by {@code file}, or {@code null} when the name is not a segment name. */
  public static Segment parse(Path file) {
    Matcher m = NAME.matcher(file.getFileName().toString());
    if (!m.matches()) return null;
    try {
      return new Segment(file, LocalDate.parse(m.group(1), DAY), Long.parseLong(m.group(2)));
    } catch (DateTimeParseException e) {
      return null;
    }
  }

  /** The file name of segment {@code seq} of {@code day}. */
  public static String name(LocalDate day, long seq) {
    return String.format("session-%s-%04d.jsonl", DAY.format(day), seq);
  }

  /**
   * The segment to start after {@code newest} (may be {@code null}) on {@code today}. A segment
   * never sorts before an existing one, even when the clock went back: it then keeps the newest
   * segment's day.
   */
  public static Segment next(Path dir, Segment newest, LocalDate today) {
    if (newest == null || today.isAfter(newest.day())) {
      return new Segment(dir.resolve(name(today, 1)), today, 1);
    }
    return new Segment(
        dir.resolve(name(newest.day(), newest.seq() + 1)), newest.day(), newest.seq() + 1);
  }

  /** The UTC day of an instant. */
  public static LocalDate day(Instant t) {
    return LocalDate.ofInstant(t, ZoneOffset.UTC);
  }

  /**
   * Reads the end of a segment without reading all of it.
   *
   * @return the last intact line's hash and time, or {@code null} for an empty file
   * @throws IOException when the last terminated line does not end like a chain line
   */
  public static Tail tail(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size == 0) return null;
      boolean torn = readByte(ch, size - 1) != '\n';
      // the line break that ends the last intact line
      long end = torn ? lastNewline(ch, size - 1) : size - 1;
      if (end < 0) return new Tail(null, null, true);
      long start = lastNewline(ch, end - 1) + 1;
      long len = end - start;
      if (len > RecordLines.MAX_LINE_BYTES)
        throw new IOException("line too long at the end of " + file);
      ByteBuffer b = ByteBuffer.allocate((int) len);
      readFully(ch, b, start);
      RecordCodec.Links links = RecordCodec.links(b.array(), (int) len);
      if (links == null) {
        throw new IOException(
            "the last line of " + file.getFileName() + " does not end with prev and hash members");
      }
      return new Tail(links.hash(), timeOf(b.array(), (int) len), torn);
    }
  }

  /** Counts the intact lines of a segment and reads its first {@code prev} and last {@code hash}. */
  public static Summary summarize(Path file) throws IOException {
    long records = 0;
    String firstPrev = null;
    String lastHash = null;
    try (RecordLines lines = RecordLines.open(file)) {
      RecordLines.Line line;
      while ((line = lines.next()) != null) {
        if (!line.terminated() || line.tooLong()) continue;
        RecordCodec.Links links = RecordCodec.links(line.bytes(), line.length());
        if (links == null) continue;
        if (records == 0) firstPrev = links.prev();
        lastHash = links.hash();
        records++;
      }
    }
    return new Summary(records, firstPrev, lastHash);
  }

  /** The {@code time} member of a line, or {@code null} when absent or unreadable. */
  public static Instant timeOf(byte[] line, int length) {
    try (JsonParser p = JSON.createParser(line, 0, length)) {
      if (p.nextToken() != JsonToken.START_OBJECT) return null;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String field = p.currentName();
        JsonToken value = p.nextToken();
        if ("time".equals(field))
          return value == JsonToken.VALUE_STRING ? Instant.parse(p.getText()) : null;
        p.skipChildren();
      }
      return null;
    } catch (IOException | DateTimeParseException e) {
      return null;
    }
  }

  private static byte readByte(FileChannel ch, long at) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(1);
    readFully(ch, b, at);
    return b.get(0);
  }

  /** Position of the last {@code \n} at or before {@code from}, or -1. */
  private static long lastNewline(FileChannel ch, long from) throws IOException {
    long hi = from + 1;
    while (hi > 0) {
      long lo = Math.max(0, hi - TAIL_CHUNK);
      ByteBuffer b = ByteBuffer.allocate((int) (hi - lo));
      readFully(ch, b, lo);
      byte[] a = b.array();
      for (int i = a.length - 1; i >= 0; i--) {
        if (a[i] == '\n') return lo + i;
      }
      hi = lo;
    }
    return -1;
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
    while (b.hasRemaining()) {
      int n = ch.read(b, at + b.position());
      if (n < 0) throw new IOException("unexpected end of file");
    }
  }
}
