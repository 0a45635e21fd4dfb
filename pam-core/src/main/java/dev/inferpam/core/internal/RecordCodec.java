package dev.inferpam.core.internal;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Encodes {@link SessionRecord}s as recording lines ({@code spec/recording.md}, version 1) and
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
 *            prev, hash
 * intent:    v, type, id, time, principal, request, prev, hash
 * retention: v, type, id, time, removed[{file, records, first_prev, last_hash}], prev, hash
 * </pre>
 * {@code body} is written when the record has one (and as {@code null} when it has neither a
 * body nor a hash); {@code body_sha256} only when set. Times are ISO-8601 UTC with exactly three
 * fraction digits ({@code 2026-11-28T22:00:00.123Z}); finer precision is cut off. Header names,
 * groups, {@code masked} and {@code usage} keys are written sorted so that equal records encode
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
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT).withZone(ZoneOffset.UTC);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HexFormat HEX = HexFormat.of();
  private static final byte[] PREV_OPEN = ",\"prev\":\"".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] HASH_OPEN = ",\"hash\":\"".getBytes(StandardCharsets.US_ASCII);

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
   * The start of a record's line: everything before {@code ,"prev":}. Encoding this on the
   * caller's thread keeps the recorder's single writer thread to hashing and writing.
   */
  public static String body(SessionRecord r) {
    StringBuilder sb = new StringBuilder(512 + length(r));
    boolean intent = SessionRecord.TYPE_INTENT.equals(r.type());
    sb.append("{\"v\":").append(VERSION);
    sb.append(",\"type\":");
    str(sb, r.type());
    sb.append(",\"id\":");
    str(sb, r.id());
    sb.append(",\"time\":");
    time(sb, r.time());
    if (!intent) sb.append(",\"duration_ms\":").append(r.durationMs());
    sb.append(",\"principal\":");
    principal(sb, r.principal());
    sb.append(",\"request\":");
    request(sb, r.request());
    if (!intent) {
      sb.append(",\"decision\":");
      decision(sb, r.decision());
      if (r.approval() != null) {
        sb.append(",\"approval\":");
        approval(sb, r.approval());
      }
      sb.append(",\"response\":");
      response(sb, r.response());
    }
    return sb.toString();
  }

  /** The start of a retention line: everything before {@code ,"prev":}. */
  public static String retentionBody(String id, Instant time, List<Removed> removed) {
    StringBuilder sb = new StringBuilder(128 + removed.size() * 200);
    sb.append("{\"v\":").append(VERSION).append(",\"type\":\"").append(TYPE_RETENTION).append('"');
    sb.append(",\"id\":");
    str(sb, id);
    sb.append(",\"time\":");
    time(sb, time);
    sb.append(",\"removed\":[");
    for (int i = 0; i < removed.size(); i++) {
      Removed r = removed.get(i);
      if (i > 0) sb.append(',');
      sb.append("{\"file\":");
      str(sb, r.file());
      sb.append(",\"records\":").append(r.records());
      sb.append(",\"first_prev\":");
      str(sb, r.firstPrev());
      sb.append(",\"last_hash\":");
      str(sb, r.lastHash());
      sb.append('}');
    }
    sb.append(']');
    return sb.toString();
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
    if (!startsWith(line, p, PREV_OPEN) || line[h - 1] != '"' || !startsWith(line, h, HASH_OPEN)
        || line[length - 2] != '"' || line[length - 1] != '}') {
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
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every Java platform", e);
    }
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

  private static void principal(StringBuilder sb, Principal p) {
    if (p == null) {
      sb.append("null");
      return;
    }
    sb.append("{\"subject\":");
    str(sb, p.subject());
    sb.append(",\"groups\":[");
    boolean first = true;
    for (String g : p.groups().stream().sorted().toList()) {
      if (!first) sb.append(',');
      first = false;
      str(sb, g);
    }
    sb.append("],\"via\":");
    str(sb, p.via());
    sb.append(",\"issuer\":");
    str(sb, p.issuer());
    sb.append('}');
  }

  private static void request(StringBuilder sb, SessionRecord.Request q) {
    sb.append("{\"method\":");
    str(sb, q.method());
    sb.append(",\"path\":");
    str(sb, q.path());
    sb.append(",\"operation\":");
    str(sb, q.operation());
    sb.append(",\"model\":");
    str(sb, q.model());
    sb.append(",\"headers\":{");
    boolean first = true;
    for (Map.Entry<String, List<String>> h : new TreeMap<>(q.headers()).entrySet()) {
      if (!first) sb.append(',');
      first = false;
      str(sb, h.getKey());
      sb.append(':');
      List<String> values = h.getValue();
      if (values.size() == 1) {
        str(sb, values.get(0));
      } else {
        sb.append('[');
        for (int i = 0; i < values.size(); i++) {
          if (i > 0) sb.append(',');
          str(sb, values.get(i));
        }
        sb.append(']');
      }
    }
    sb.append("},\"bytes\":").append(q.bytes());
    body(sb, q.body(), q.bodySha256());
    sb.append('}');
  }

  private static void body(StringBuilder sb, String body, String sha) {
    if (body != null || sha == null) {
      sb.append(",\"body\":");
      str(sb, body);
    }
    if (sha != null) {
      sb.append(",\"body_sha256\":");
      str(sb, sha);
    }
  }

  private static void decision(StringBuilder sb, SessionRecord.DecisionSummary d) {
    if (d == null) {
      sb.append("null");
      return;
    }
    sb.append("{\"outcome\":");
    str(sb, d.outcome());
    sb.append(",\"rule\":");
    str(sb, d.rule());
    sb.append(",\"code\":");
    str(sb, d.code());
    sb.append(",\"message\":");
    str(sb, d.message());
    sb.append('}');
  }

  private static void approval(StringBuilder sb, SessionRecord.Approval a) {
    sb.append("{\"id\":");
    str(sb, a.id());
    sb.append(",\"rule\":");
    str(sb, a.rule());
    sb.append(",\"reviewer\":");
    str(sb, a.reviewer());
    sb.append(",\"decided\":");
    time(sb, a.decided());
    sb.append(",\"outcome\":");
    str(sb, a.outcome());
    sb.append(",\"reason\":");
    str(sb, a.reason());
    sb.append('}');
  }

  private static void response(StringBuilder sb, SessionRecord.Response r) {
    if (r == null) {
      sb.append("null");
      return;
    }
    sb.append("{\"status\":").append(r.status());
    sb.append(",\"streamed\":").append(r.streamed());
    sb.append(",\"bytes\":").append(r.bytes());
    sb.append(",\"complete\":").append(r.complete());
    body(sb, r.body(), r.bodySha256());
    sb.append(",\"masked\":");
    numbers(sb, r.masked());
    sb.append(",\"usage\":");
    numbers(sb, r.usage());
    sb.append('}');
  }

  private static void numbers(StringBuilder sb, Map<String, ? extends Number> map) {
    sb.append('{');
    boolean first = true;
    for (Map.Entry<String, ? extends Number> e : new TreeMap<>(map).entrySet()) {
      if (!first) sb.append(',');
      first = false;
      str(sb, e.getKey());
      sb.append(':').append(e.getValue() == null ? "null" : Long.toString(e.getValue().longValue()));
    }
    sb.append('}');
  }

  private static void time(StringBuilder sb, Instant t) {
    if (t == null) {
      sb.append("null");
    } else {
      sb.append('"').append(TIME.format(t)).append('"');
    }
  }

  /**
   * Appends a JSON string. Escapes only what JSON requires ({@code "}, {@code \}, control
   * characters) so bodies stay readable; a lone surrogate, which has no UTF-8 form, is written
   * as a {@code \}{@code uXXXX} escape so that the text round-trips and the bytes are well-defined.
   */
  static void str(StringBuilder sb, String s) {
    if (s == null) {
      sb.append("null");
      return;
    }
    sb.append('"');
    int n = s.length();
    int run = 0; // start of the characters not yet appended: they are appended in bulk
    for (int i = 0; i < n; i++) {
      char c = s.charAt(i);
      if (c >= 0x20 && c != '"' && c != '\\' && !Character.isSurrogate(c)) continue;
      if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++; // a valid pair is plain text
        continue;
      }
      sb.append(s, run, i);
      run = i + 1;
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        case '\b' -> sb.append("\\b");
        case '\f' -> sb.append("\\f");
        default -> unicodeEscape(sb, c); // other control characters and lone surrogates
      }
    }
    sb.append(s, run, n);
    sb.append('"');
  }

  private static void unicodeEscape(StringBuilder sb, char c) {
    sb.append("\\u");
    String hex = Integer.toHexString(c);
    for (int k = hex.length(); k < 4; k++) sb.append('0');
    sb.append(hex);
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
    return new SessionRecord(type, id, time, n.path("duration_ms").asLong(0), decodePrincipal(n.get("principal")),
        decodeRequest(req), decodeDecision(n.get("decision")), decodeApproval(n.get("approval")),
        decodeResponse(n.get("response")));
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
      removed.add(new Removed(text(r, "file"), r.path("records").asLong(0), text(r, "first_prev"),
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
    return new SessionRecord.Request(text(q, "method"), text(q, "path"), text(q, "operation"), text(q, "model"),
        headers, q.path("bytes").asLong(0), text(q, "body"), text(q, "body_sha256"));
  }

  private static SessionRecord.DecisionSummary decodeDecision(JsonNode d) {
    if (d == null || !d.isObject()) return null;
    return new SessionRecord.DecisionSummary(text(d, "outcome"), text(d, "rule"), text(d, "code"), text(d, "message"));
  }

  private static SessionRecord.Approval decodeApproval(JsonNode a) {
    if (a == null || !a.isObject()) return null;
    return new SessionRecord.Approval(text(a, "id"), text(a, "rule"), text(a, "reviewer"), instant(a, "decided"),
        text(a, "outcome"), text(a, "reason"));
  }

  private static SessionRecord.Response decodeResponse(JsonNode r) {
    if (r == null || !r.isObject()) return null;
    Map<String, Integer> masked = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : r.path("masked").properties()) {
      if (e.getValue().isNumber()) masked.put(e.getKey(), e.getValue().asInt());
    }
    Map<String, Long> usage = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : r.path("usage").properties()) {
      if (e.getValue().isNumber()) usage.put(e.getKey(), e.getValue().asLong());
    }
    return new SessionRecord.Response(r.path("status").asInt(0), r.path("streamed").asBoolean(false),
        r.path("bytes").asLong(0), r.path("complete").asBoolean(false), text(r, "body"), masked, usage,
        text(r, "body_sha256"));
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
