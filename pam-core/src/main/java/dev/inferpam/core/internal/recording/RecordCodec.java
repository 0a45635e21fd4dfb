package dev.inferpam.core.internal.recording;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.Sha256;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Encodes {@link SessionRecord}s as recording lines ({@code docs/recording.md}, version 1) and
 * decodes them back. Stateless and thread-safe.
 *
 * <p><b>Line layout.</b> A line is compact JSON (no whitespace between tokens) with members in
 * this order, {@code null} written as {@code null}:
 * <pre>
 * exchange:  v, type, id, time, duration_ms,
 *            principal{subject, groups, via, issuer} | null,
 *            request{method, path, operation, model, headers, bytes, body, body_sha256},
 *            decision{outcome, rule, code, message} | null,
 *            approval{id, rule, reviewer, decided, outcome, reason}   (only when present),
 *            response{status, streamed, bytes, complete, body, body_sha256, masked, usage} | null,
 *            quota_remaining{requests_per_minute, tokens_per_minute, tokens_per_day}
 *                                                                    (only when not empty),
 *            prev, hash
 * intent:    v, type, id, time, principal, request, prev, hash
 * retention: v, type, id, time, removed[{file, records, first_prev, last_hash}], prev, hash
 * </pre>
 * {@code body} is written when the record has one (and as {@code null} when it has neither a
 * body nor a hash); {@code body_sha256} only when set. Times are ISO-8601 UTC with exactly three
 * fraction digits ({@code 2026-11-28T22:00:00.123Z}); finer precision is cut off. Header names,
 * groups, {@code masked}, {@code usage} and {@code quota_remaining} keys are written sorted so that equal records encode
 * to equal bytes; a header with one value is written as a string, with several as an array.
 * Principal {@code attributes} are not part of the format and are not written.
 *
 * <p><b>Hash chain.</b> {@code hash} is the lower-case hex SHA-256 of the line's UTF-8 bytes up
 * to (not including) {@code ,"hash":}, followed by {@code }}. {@code prev} is the hash of the
 * line before ({@link #GENESIS} for the first line ever written). A line therefore always ends
 * with the fixed-width tail {@code ,"prev":"<64 hex>","hash":"<64 hex>"}}.
 *
 * <p><b>Decoding</b> ignores members it does not know (forward compatible) and treats missing
 * ones as {@code null}/0/false; it throws {@link IllegalArgumentException} for text that is not
 * a JSON object or not an {@code exchange}/{@code intent} line.
 */
public final class RecordCodec {
  /** Format version written in {@code v}. */
  public static final int VERSION = 1;

  /** {@code prev} of the first line ever written: 64 zeros. */
  public static final String GENESIS = "0".repeat(64);

  /** Type of the line written when retention removes segments. */
  public static final String TYPE_RETENTION = "retention";

  /** Length of {@code ,"hash":"<64 hex>"}}, the fixed end of every line. */
  public static final int HASH_TAIL = 9 + 64 + 2;

  /** Length of {@code ,"prev":"<64 hex>"}, which precedes the hash tail. */
  public static final int PREV_TAIL = 9 + 64 + 1;

  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT)
          .withZone(ZoneOffset.UTC);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HexFormat HEX = HexFormat.of();
  private static final byte[] PREV_OPEN = ",\"prev\":\"".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] HASH_OPEN = ",\"hash\":\"".getBytes(StandardCharsets.US_ASCII);
  private static final String[] NO_STRINGS = new String[0];

  private RecordCodec() {}

  /** What a retention line says about one removed segment. Counts are of intact lines. */
  public record Removed(String file, long records, String firstPrev, String lastHash) {}

  /** A decoded retention line. */
  public record Retention(String id, Instant time, List<Removed> removed) {
    public Retention {
      removed = List.copyOf(removed);
    }
  }

  // ---------------------------------------------------------------------------------- encoding

  /**
   * The line of {@code record} chained to {@code prev}, without the line break.
   *
   * @throws IllegalArgumentException when {@code prev} is not 64 lower-case hex digits
   */
  public static String encode(SessionRecord record, String prev) {
    return chain(body(record), prev);
  }

  /**
   * The start of a record's line: everything before {@code ,"prev":}. The text of
   * {@link #bodyBytes}.
   */
  public static String body(SessionRecord r) {
    return new String(bodyBytes(r), StandardCharsets.UTF_8);
  }

  /**
   * The start of a record's line, everything before {@code ,"prev":}, as the UTF-8 bytes that go
   * to disk. Encoding this on the caller's thread keeps the recorder's single writer thread to
   * hashing and writing; it is encoded straight to bytes, with no intermediate text, because
   * request threads pay for it.
   */
  public static byte[] bodyBytes(SessionRecord r) {
    Utf8 out = new Utf8(512 + length(r));
    boolean intent = SessionRecord.TYPE_INTENT.equals(r.type());
    out.ascii("{\"v\":").num(VERSION);
    out.ascii(",\"type\":").str(r.type());
    out.ascii(",\"id\":").str(r.id());
    out.ascii(",\"time\":").time(r.time());
    if (!intent) out.ascii(",\"duration_ms\":").num(r.durationMs());
    out.ascii(",\"principal\":");
    principal(out, r.principal());
    out.ascii(",\"request\":");
    request(out, r.request());
    if (!intent) {
      out.ascii(",\"decision\":");
      decision(out, r.decision());
      if (r.approval() != null) {
        out.ascii(",\"approval\":");
        approval(out, r.approval());
      }
      out.ascii(",\"response\":");
      response(out, r.response());
      if (!r.quotaRemaining().isEmpty()) {
        out.ascii(",\"quota_remaining\":");
        numbers(out, r.quotaRemaining());
      }
    }
    return out.toArray();
  }

  /** The start of a retention line: everything before {@code ,"prev":}. */
  public static String retentionBody(String id, Instant time, List<Removed> removed) {
    Utf8 out = new Utf8(128 + removed.size() * 200);
    out.ascii("{\"v\":").num(VERSION).ascii(",\"type\":\"").ascii(TYPE_RETENTION).ch('"');
    out.ascii(",\"id\":").str(id);
    out.ascii(",\"time\":").time(time);
    out.ascii(",\"removed\":[");
    for (int i = 0; i < removed.size(); i++) {
      Removed r = removed.get(i);
      if (i > 0) out.ch(',');
      out.ascii("{\"file\":").str(r.file());
      out.ascii(",\"records\":").num(r.records());
      out.ascii(",\"first_prev\":").str(r.firstPrev());
      out.ascii(",\"last_hash\":").str(r.lastHash());
      out.ch('}');
    }
    out.ch(']');
    return new String(out.toArray(), StandardCharsets.UTF_8);
  }

  /** Appends {@code prev} and {@code hash} to a line body (see {@link #body}). */
  public static String chain(String body, String prev) {
    checkHash(prev, "prev");
    String upToHash = body + ",\"prev\":\"" + prev + '"';
    return upToHash + ",\"hash\":\"" + hashOf(upToHash.getBytes(StandardCharsets.UTF_8)) + "\"}";
  }

  /**
   * Chains an already UTF-8 encoded body: fills {@code digest} and returns the bytes that follow
   * the body on disk, {@code ,"prev":"..","hash":".."}} and a line break. The hash is then
   * {@code new String(tail, PREV_TAIL + 9, 64)}. Used by the writer thread with its own digest.
   */
  public static byte[] tail(byte[] body, String prev, MessageDigest digest) {
    byte[] out = new byte[PREV_TAIL + HASH_TAIL + 1];
    System.arraycopy(PREV_OPEN, 0, out, 0, PREV_OPEN.length);
    for (int i = 0; i < 64; i++) out[PREV_OPEN.length + i] = (byte) prev.charAt(i); // ASCII hex
    out[PREV_TAIL - 1] = '"';
    digest.reset();
    digest.update(body);
    digest.update(out, 0, PREV_TAIL);
    digest.update((byte) '}');
    byte[] hash = HEX.formatHex(digest.digest()).getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(HASH_OPEN, 0, out, PREV_TAIL, HASH_OPEN.length);
    System.arraycopy(hash, 0, out, PREV_TAIL + HASH_OPEN.length, 64);
    out[out.length - 3] = '"';
    out[out.length - 2] = '}';
    out[out.length - 1] = '\n';
    return out;
  }

  /** The hash of a chain tail made by {@link #tail}. */
  public static String hashOfTail(byte[] tail) {
    return new String(tail, PREV_TAIL + HASH_OPEN.length, 64, StandardCharsets.US_ASCII);
  }

  /** The chain members at the end of a line. */
  public record Links(String prev, String hash) {}

  /**
   * Reads the fixed end {@code ,"prev":"<64 hex>","hash":"<64 hex>"}} of the line held in
   * {@code line[0, length)}; {@code null} when the line does not end that way.
   */
  public static Links links(byte[] line, int length) {
    if (length < PREV_TAIL + HASH_TAIL + 2 || line[0] != '{') return null;
    int h = length - HASH_TAIL;
    int p = h - PREV_TAIL;
    if (!startsWith(line, p, PREV_OPEN)
        || line[h - 1] != '"'
        || !startsWith(line, h, HASH_OPEN)
        || line[length - 2] != '"'
        || line[length - 1] != '}') {
      return null;
    }
    String prev = new String(line, p + PREV_OPEN.length, 64, StandardCharsets.US_ASCII);
    String hash = new String(line, h + HASH_OPEN.length, 64, StandardCharsets.US_ASCII);
    return isHash(prev) && isHash(hash) ? new Links(prev, hash) : null;
  }

  private static boolean startsWith(byte[] b, int at, byte[] prefix) {
    for (int i = 0; i < prefix.length; i++) {
      if (b[at + i] != prefix[i]) return false;
    }
    return true;
  }

  /** Lower-case hex SHA-256 of {@code upToHash} followed by {@code }}. */
  public static String hashOf(byte[] upToHash) {
    return hashOf(upToHash, upToHash.length, sha256());
  }

  /** Lower-case hex SHA-256 of the first {@code length} bytes of {@code line} followed by {@code }}. */
  public static String hashOf(byte[] line, int length, MessageDigest digest) {
    digest.reset();
    digest.update(line, 0, length);
    digest.update((byte) '}');
    return HEX.formatHex(digest.digest());
  }

  /** A fresh SHA-256 digest (not thread-safe; one per thread). */
  public static MessageDigest sha256() {
    return Sha256.newDigest();
  }

  /** True when {@code s} is 64 lower-case hex digits. */
  public static boolean isHash(String s) {
    if (s == null || s.length() != 64) return false;
    for (int i = 0; i < 64; i++) {
      char c = s.charAt(i);
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  }

  /** Formats a time as recorded: ISO-8601 UTC with milliseconds. */
  public static String formatTime(Instant time) {
    return TIME.format(time);
  }

  private static void checkHash(String value, String name) {
    if (!isHash(value)) {
      throw new IllegalArgumentException(name + " must be 64 lower-case hex digits, was " + value);
    }
  }

  private static int length(SessionRecord r) {
    long n = 0;
    if (r.request().body() != null) n += r.request().body().length();
    if (r.response() != null && r.response().body() != null) n += r.response().body().length();
    return (int) Math.min(n + n / 8, Integer.MAX_VALUE - 1024);
  }

  private static void principal(Utf8 out, Principal p) {
    if (p == null) {
      out.ascii("null");
      return;
    }
    out.ascii("{\"subject\":").str(p.subject());
    out.ascii(",\"groups\":[");
    String[] groups = sorted(p.groups());
    for (int i = 0; i < groups.length; i++) {
      if (i > 0) out.ch(',');
      out.str(groups[i]);
    }
    out.ascii("],\"via\":").str(p.via());
    out.ascii(",\"issuer\":").str(p.issuer());
    out.ch('}');
  }

  private static void request(Utf8 out, SessionRecord.Request q) {
    out.ascii("{\"method\":").str(q.method());
    out.ascii(",\"path\":").str(q.path());
    out.ascii(",\"operation\":").str(q.operation());
    out.ascii(",\"model\":").str(q.model());
    out.ascii(",\"headers\":{");
    Map<String, List<String>> headers = q.headers();
    String[] names = sorted(headers.keySet());
    for (int h = 0; h < names.length; h++) {
      if (h > 0) out.ch(',');
      out.str(names[h]).ch(':');
      List<String> values = headers.get(names[h]);
      if (values.size() == 1) {
        out.str(values.get(0));
      } else {
        out.ch('[');
        for (int i = 0; i < values.size(); i++) {
          if (i > 0) out.ch(',');
          out.str(values.get(i));
        }
        out.ch(']');
      }
    }
    out.ascii("},\"bytes\":").num(q.bytes());
    body(out, q.body(), q.bodySha256());
    out.ch('}');
  }

  private static void body(Utf8 out, String body, String sha) {
    if (body != null || sha == null) out.ascii(",\"body\":").str(body);
    if (sha != null) out.ascii(",\"body_sha256\":").str(sha);
  }

  private static void decision(Utf8 out, SessionRecord.DecisionSummary d) {
    if (d == null) {
      out.ascii("null");
      return;
    }
    out.ascii("{\"outcome\":").str(d.outcome());
    out.ascii(",\"rule\":").str(d.rule());
    out.ascii(",\"code\":").str(d.code());
    out.ascii(",\"message\":").str(d.message());
    out.ch('}');
  }

  private static void approval(Utf8 out, SessionRecord.Approval a) {
    out.ascii("{\"id\":").str(a.id());
    out.ascii(",\"rule\":").str(a.rule());
    out.ascii(",\"reviewer\":").str(a.reviewer());
    out.ascii(",\"decided\":").time(a.decided());
    out.ascii(",\"outcome\":").str(a.outcome());
    out.ascii(",\"reason\":").str(a.reason());
    out.ch('}');
  }

  private static void response(Utf8 out, SessionRecord.Response r) {
    if (r == null) {
      out.ascii("null");
      return;
    }
    out.ascii("{\"status\":").num(r.status());
    out.ascii(",\"streamed\":").bool(r.streamed());
    out.ascii(",\"bytes\":").num(r.bytes());
    out.ascii(",\"complete\":").bool(r.complete());
    body(out, r.body(), r.bodySha256());
    out.ascii(",\"masked\":");
    numbers(out, r.masked());
    out.ascii(",\"usage\":");
    numbers(out, r.usage());
    out.ch('}');
  }

  private static void numbers(Utf8 out, Map<String, ? extends Number> map) {
    out.ch('{');
    String[] keys = sorted(map.keySet());
    for (int i = 0; i < keys.length; i++) {
      if (i > 0) out.ch(',');
      out.str(keys[i]).ch(':');
      Number value = map.get(keys[i]);
      if (value == null) {
        out.ascii("null");
      } else {
        out.num(value.longValue());
      }
    }
    out.ch('}');
  }

  /** The elements in their natural order, as a {@code TreeMap} or {@code sorted()} would give them. */
  private static String[] sorted(java.util.Collection<String> strings) {
    if (strings.isEmpty()) return NO_STRINGS;
    String[] a = strings.toArray(NO_STRINGS);
    if (a.length > 1) Arrays.sort(a);
    return a;
  }

  /**
   * A line being encoded: UTF-8 bytes in a growing array. Strings are written as JSON strings,
   * escaping only what JSON requires ({@code "}, {@code \}, control characters) so bodies stay
   * readable; a lone surrogate, which has no UTF-8 form, is written as a {@code \}{@code uXXXX}
   * escape so that the text round-trips and the bytes are well-defined.
   */
  private static final class Utf8 {
    /** Strings this long or longer are encoded in bulk. */
    private static final int BULK = 16;

    private static final VarHandle LONGS =
        MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long HIGH_BITS = 0x8080808080808080L;
    private static final long FIRST_4_DIGIT_YEAR = LocalDate.of(0, 1, 1).toEpochDay() * 86_400;
    private static final long LAST_4_DIGIT_YEAR =
        LocalDate.of(10_000, 1, 1).toEpochDay() * 86_400 - 1;

    private static final long LOW7 = 0x7F7F7F7F7F7F7F7FL;

    /**
     * The high bit of every byte of {@code x} that must be escaped in a JSON string: a control
     * character (below 0x20), a quote or a backslash; exact per byte (no borrow runs between
     * bytes: each byte's low seven bits are compared with a sum that cannot carry out of it).
     * Bytes from 0x80 up (parts of multi-byte characters) never need escaping.
     */
    private static long escapeMask(long x) {
      long low7 = x & LOW7;
      long printable = low7 + 0x6060606060606060L; // high bit set: 0x20 or above
      long notQuote = (low7 ^ 0x2222222222222222L) + LOW7; // high bit set: not '"'
      long notBackslash = (low7 ^ 0x5C5C5C5C5C5C5C5CL) + LOW7; // high bit set: not '\\'
      return ~(printable & notQuote & notBackslash) & ~x & HIGH_BITS;
    }

    /** The high bit of every {@code '?'} byte of {@code x}, exactly. */
    private static long questionMask(long x) {
      return ~(((x & LOW7) ^ 0x3F3F3F3F3F3F3F3FL) + LOW7) & ~x & HIGH_BITS;
    }

    private byte[] b;
    private int n;

    Utf8(int capacity) {
      b = new byte[capacity];
    }

    /** Room for {@code more} bytes after what is written. */
    private void room(int more) {
      if (more > b.length - n) {
        int need = Math.addExact(n, more);
        b = Arrays.copyOf(b, Math.max(need, (int) Math.min(2L * b.length, Integer.MAX_VALUE - 8)));
      }
    }

    byte[] toArray() {
      return Arrays.copyOf(b, n);
    }

    /** Appends text that is ASCII and needs no escaping (member names, literals). */
    Utf8 ascii(String s) {
      int len = s.length();
      room(len);
      for (int i = 0; i < len; i++) b[n + i] = (byte) s.charAt(i);
      n += len;
      return this;
    }

    Utf8 ch(char c) {
      room(1);
      b[n++] = (byte) c;
      return this;
    }

    Utf8 num(long v) {
      return ascii(Long.toString(v));
    }

    Utf8 bool(boolean v) {
      return ascii(v ? "true" : "false");
    }

    /** A time as {@link #TIME} formats it; written directly for the years 0000 to 9999. */
    Utf8 time(Instant t) {
      if (t == null) return ascii("null");
      long sec = t.getEpochSecond();
      if (sec < FIRST_4_DIGIT_YEAR || sec > LAST_4_DIGIT_YEAR)
        return ch('"').ascii(TIME.format(t)).ch('"');
      LocalDate day = LocalDate.ofEpochDay(Math.floorDiv(sec, 86_400));
      int s = Math.floorMod(sec, 86_400);
      room(26);
      b[n++] = '"';
      digits(day.getYear(), 4)
          .ch('-')
          .digits(day.getMonthValue(), 2)
          .ch('-')
          .digits(day.getDayOfMonth(), 2);
      ch('T').digits(s / 3600, 2).ch(':').digits(s / 60 % 60, 2).ch(':').digits(s % 60, 2);
      return ch('.').digits(t.getNano() / 1_000_000, 3).ch('Z').ch('"');
    }

    /** {@code v}, not negative, zero-padded to {@code width} digits (it has no more). */
    private Utf8 digits(int v, int width) {
      room(width);
      for (int k = width - 1; k >= 0; k--) {
        b[n + k] = (byte) ('0' + v % 10);
        v /= 10;
      }
      n += width;
      return this;
    }

    /** Appends a JSON string, or {@code null}. */
    Utf8 str(String s) {
      if (s == null) return ascii("null");
      if (s.length() >= BULK) {
        // the JDK's UTF-8 encoder (vectorised for ASCII) replaces a lone surrogate with '?': when
        // the bytes hold no more '?' than the text, they are exactly its UTF-8 form
        byte[] u = s.getBytes(StandardCharsets.UTF_8);
        int start = n;
        if (quoted(u) == count(s, '?')) return this;
        n = start; // a lone surrogate: char by char
      }
      return chars(s);
    }

    /**
     * Appends UTF-8 bytes as a JSON string and returns how many {@code '?'} they hold. Eight bytes
     * at a time: a word with nothing to escape is copied at once; in one that has, each flagged
     * byte is escaped in turn and the bytes between are copied as the rest of the word shifted
     * down, so text dense with quotes (JSON inside a string) is not handled byte by byte.
     */
    private int quoted(byte[] u) {
      int len = u.length;
      room(len + (len >>> 3) + 64);
      byte[] b = this.b;
      int n = this.n;
      b[n++] = '"';
      int questions = 0;
      int i = 0;
      while (len - i >= 8) {
        // a word escaped at worst: 8 escapes of 6 bytes, and a word written past them
        if (b.length - n < 64) {
          this.n = n;
          room(Math.max(64, (len - i) + ((len - i) >>> 2) + 64));
          b = this.b;
        }
        long x = (long) LONGS.get(u, i);
        questions += Long.bitCount(questionMask(x));
        long mask = escapeMask(x);
        if (mask == 0) {
          LONGS.set(b, n, x);
          n += 8;
          i += 8;
          continue;
        }
        int done = 0; // bytes of this word written
        do {
          int p = Long.numberOfTrailingZeros(mask) >>> 3;
          LONGS.set(b, n, x >>> (done << 3)); // bytes done..7; those past p are rewritten
          n += p - done;
          n = escape(b, n, (char) ((x >>> (p << 3)) & 0xff));
          done = p + 1;
          mask &= mask - 1;
        } while (mask != 0);
        if (done < 8) {
          LONGS.set(b, n, x >>> (done << 3));
          n += 8 - done;
        }
        i += 8;
      }
      if (b.length - n < 6 * 8 + 2) {
        this.n = n;
        room(6 * 8 + 2);
        b = this.b;
      }
      while (i < len) {
        byte c = u[i++];
        if (c == '?') questions++;
        if ((c >= 0x20 || c < 0) && c != '"' && c != '\\') { // bytes of multi-byte chars are < 0
          b[n++] = c;
        } else {
          n = escape(b, n, (char) c);
        }
      }
      b[n++] = '"';
      this.n = n;
      return questions;
    }

    private static int count(String s, char c) {
      int k = 0;
      for (int i = s.indexOf(c); i >= 0; i = s.indexOf(c, i + 1)) k++;
      return k;
    }

    /** Appends a JSON string char by char. */
    private Utf8 chars(String s) {
      int len = s.length();
      room(len + 2); // enough when nothing needs escaping; special() makes room for more
      byte[] b = this.b;
      int n = this.n;
      b[n++] = '"';
      int i = 0;
      while (i < len) {
        char c = s.charAt(i);
        if (c < 0x80 && c >= 0x20 && c != '"' && c != '\\') {
          b[n++] = (byte) c;
          i++;
        } else {
          this.n = n;
          i = special(s, i, c);
          b = this.b;
          n = this.n;
        }
      }
      b[n++] = '"';
      this.n = n;
      return this;
    }

    /**
     * Appends {@code c = s.charAt(i)}, which is not printable ASCII, and returns the index of the
     * next character. Leaves room for every remaining character as one byte, and the closing quote.
     */
    private int special(String s, int i, char c) {
      room(6 + (s.length() - i) + 1); // at most six bytes for this character
      if (c < 0x80) {
        n = escape(b, n, c);
      } else if (c < 0x800) {
        b[n++] = (byte) (0xc0 | (c >> 6));
        b[n++] = (byte) (0x80 | (c & 0x3f));
      } else if (!Character.isSurrogate(c)) {
        b[n++] = (byte) (0xe0 | (c >> 12));
        b[n++] = (byte) (0x80 | ((c >> 6) & 0x3f));
        b[n++] = (byte) (0x80 | (c & 0x3f));
      } else if (Character.isHighSurrogate(c)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        int cp = Character.toCodePoint(c, s.charAt(i + 1)); // a valid pair is plain text
        b[n++] = (byte) (0xf0 | (cp >> 18));
        b[n++] = (byte) (0x80 | ((cp >> 12) & 0x3f));
        b[n++] = (byte) (0x80 | ((cp >> 6) & 0x3f));
        b[n++] = (byte) (0x80 | (cp & 0x3f));
        return i + 2;
      } else {
        n = unicodeEscape(b, n, c); // a lone surrogate
      }
      return i + 1;
    }

    /** Writes the escape of a quote, a backslash or a control character at {@code b[n]}; returns the new end. */
    private static int escape(byte[] b, int n, char c) {
      char e =
          switch (c) {
            case '"' -> '"';
            case '\\' -> '\\';
            case '\n' -> 'n';
            case '\r' -> 'r';
            case '\t' -> 't';
            case '\b' -> 'b';
            case '\f' -> 'f';
            default -> 0;
          };
      if (e == 0) return unicodeEscape(b, n, c); // other control characters
      b[n] = '\\';
      b[n + 1] = (byte) e;
      return n + 2;
    }

    /** Writes {@code \}{@code uXXXX} (lower-case hex) at {@code b[n]}; returns the new end. */
    private static int unicodeEscape(byte[] b, int n, char c) {
      b[n++] = '\\';
      b[n++] = 'u';
      String hex = Integer.toHexString(c);
      for (int k = hex.length(); k < 4; k++) b[n++] = '0';
      for (int k = 0; k < hex.length(); k++) b[n++] = (byte) hex.charAt(k);
      return n;
    }
  }

  // ---------------------------------------------------------------------------------- decoding

  /**
   * Decodes an {@code exchange} or {@code intent} line. Unknown members are ignored; the chain
   * members are not checked here (see {@code Recordings.verify()}).
   *
   * @throws IllegalArgumentException when the text is not such a line
   */
  public static SessionRecord decode(String line) {
    JsonNode n = parse(line);
    String type = text(n, "type");
    if (!SessionRecord.TYPE_EXCHANGE.equals(type) && !SessionRecord.TYPE_INTENT.equals(type)) {
      throw new IllegalArgumentException("not an exchange or intent line: type " + type);
    }
    String id = text(n, "id");
    Instant time = instant(n, "time");
    if (id == null || time == null) throw new IllegalArgumentException("line without id or time");
    JsonNode req = n.get("request");
    if (req == null || !req.isObject()) throw new IllegalArgumentException("line without request");
    if (SessionRecord.TYPE_INTENT.equals(type)) {
      // An intent has no outcome: members only an exchange has are ignored, as the writer never
      // writes them.
      return new SessionRecord(
          type,
          id,
          time,
          0,
          decodePrincipal(n.get("principal")),
          decodeRequest(req),
          null,
          null,
          null);
    }
    return new SessionRecord(
        type,
        id,
        time,
        n.path("duration_ms").asLong(0),
        decodePrincipal(n.get("principal")),
        decodeRequest(req),
        decodeDecision(n.get("decision")),
        decodeApproval(n.get("approval")),
        decodeResponse(n.get("response")),
        longs(n.path("quota_remaining")));
  }

  /**
   * Decodes a {@code retention} line.
   *
   * @throws IllegalArgumentException when the text is not a retention line
   */
  public static Retention decodeRetention(String line) {
    JsonNode n = parse(line);
    if (!TYPE_RETENTION.equals(text(n, "type"))) {
      throw new IllegalArgumentException("not a retention line: type " + text(n, "type"));
    }
    List<Removed> removed = new ArrayList<>();
    for (JsonNode r : n.path("removed")) {
      removed.add(
          new Removed(
              text(r, "file"),
              r.path("records").asLong(0),
              text(r, "first_prev"),
              text(r, "last_hash")));
    }
    return new Retention(text(n, "id"), instant(n, "time"), removed);
  }

  /** The {@code type} member of a line, or {@code null} when absent or not JSON. */
  public static String typeOf(String line) {
    try {
      JsonNode n = JSON.readTree(line);
      return n == null ? null : text(n, "type");
    } catch (JsonProcessingException e) {
      return null;
    }
  }

  private static JsonNode parse(String line) {
    JsonNode n;
    try {
      n = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
    }
    if (n == null || !n.isObject()) throw new IllegalArgumentException("not a JSON object");
    return n;
  }

  private static Principal decodePrincipal(JsonNode p) {
    if (p == null || !p.isObject()) return null;
    String subject = text(p, "subject");
    String via = text(p, "via");
    if (subject == null || subject.isBlank() || via == null) return null;
    Set<String> groups = new LinkedHashSet<>();
    for (JsonNode g : p.path("groups")) {
      if (g.isTextual()) groups.add(g.asText());
    }
    return new Principal(subject, groups, via, text(p, "issuer"), Map.of());
  }

  private static SessionRecord.Request decodeRequest(JsonNode q) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> h : q.path("headers").properties()) {
      JsonNode v = h.getValue();
      if (v.isArray()) {
        List<String> values = new ArrayList<>();
        for (JsonNode e : v) values.add(e.isNull() ? null : e.asText());
        headers.put(h.getKey(), values);
      } else if (!v.isNull()) {
        headers.put(h.getKey(), List.of(v.asText()));
      }
    }
    return new SessionRecord.Request(
        text(q, "method"),
        text(q, "path"),
        text(q, "operation"),
        text(q, "model"),
        headers,
        q.path("bytes").asLong(0),
        text(q, "body"),
        text(q, "body_sha256"));
  }

  private static SessionRecord.DecisionSummary decodeDecision(JsonNode d) {
    if (d == null || !d.isObject()) return null;
    return new SessionRecord.DecisionSummary(
        text(d, "outcome"), text(d, "rule"), text(d, "code"), text(d, "message"));
  }

  private static SessionRecord.Approval decodeApproval(JsonNode a) {
    if (a == null || !a.isObject()) return null;
    return new SessionRecord.Approval(
        text(a, "id"),
        text(a, "rule"),
        text(a, "reviewer"),
        instant(a, "decided"),
        text(a, "outcome"),
        text(a, "reason"));
  }

  private static SessionRecord.Response decodeResponse(JsonNode r) {
    if (r == null || !r.isObject()) return null;
    Map<String, Integer> masked = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : r.path("masked").properties()) {
      if (e.getValue().isNumber()) masked.put(e.getKey(), e.getValue().asInt());
    }
    return new SessionRecord.Response(
        r.path("status").asInt(0),
        r.path("streamed").asBoolean(false),
        r.path("bytes").asLong(0),
        r.path("complete").asBoolean(false),
        text(r, "body"),
        masked,
        longs(r.path("usage")),
        text(r, "body_sha256"));
  }

  /** The numeric members of an object (others are skipped); empty for a missing member. */
  private static Map<String, Long> longs(JsonNode object) {
    Map<String, Long> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : object.properties()) {
      if (e.getValue().isNumber()) out.put(e.getKey(), e.getValue().asLong());
    }
    return out;
  }

  private static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }

  private static Instant instant(JsonNode n, String field) {
    String s = text(n, field);
    if (s == null) return null;
    try {
      return Instant.parse(s);
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException(field + " is not an ISO-8601 instant: " + s);
    }
  }
}
