package dev.inferpam.gateway.replay;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.StoredRecords;
import dev.inferpam.core.stream.SseEvent;
import dev.inferpam.core.stream.SseFramer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.Buffer;
import okio.BufferedSource;

/**
 * The {@code replay} commands of {@code pam-gateway.jar} as Java: list, show, verify and re-run
 * the exchanges of a recording directory, or of the PostgreSQL store of a policy's {@code
 * recording.store: postgres} ({@code docs/recording.md}). The command line ({@code GatewayMain})
 * only parses arguments and prints what these methods return.
 *
 * <pre>{@code
 * Replay replay = Replay.open(Path.of("recordings"));
 * replay.list(null, null).forEach(System.out::println);
 * System.out.println(Replay.format(replay.verify()));   // OK 42 records
 * }</pre>
 *
 * <p>Reading is done by {@link StoredRecords} ({@link Recordings} for a directory); this class
 * adds the text formats. Nothing here writes to the recording. Close an instance opened on a
 * database: it holds connections.
 *
 * <p><b>Thread-safety:</b> an instance only reads the recording and may be shared; each
 * {@link #rerun} uses its own HTTP client.
 */
public final class Replay implements AutoCloseable {

  /** Outcomes whose request reached the upstream; only those are re-sent. */
  private static final Set<String> FORWARDED = Set.of("allow", "approved");

  /** Methods OkHttp sends only with a body (an empty one when none was recorded). */
  private static final Set<String> BODY_REQUIRED =
      Set.of("POST", "PUT", "PATCH", "PROPPATCH", "REPORT");

  /** Most bytes of a re-run response read for the comparison (the recorder keeps as many). */
  static final int MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

  /** Lines per side compared by the diff; the rest is cut with a note. */
  static final int MAX_DIFF_LINES = 10_000;

  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path directory;
  private final StoredRecords recordings;

  private Replay(Path directory, StoredRecords recordings) {
    this.directory = directory;
    this.recordings = recordings;
  }

  /**
   * Opens a recording directory for reading.
   *
   * @throws IOException when the directory does not exist or cannot be read; the message names it
   */
  public static Replay open(Path directory) throws IOException {
    Objects.requireNonNull(directory, "directory");
    return new Replay(directory, Recordings.open(directory));
  }

  /**
   * Opens the recording {@code policy}'s {@code recording} section writes to: its directory, or
   * with {@code store: postgres} the database of {@code state.postgres} (connected with the
   * policy's URL, role and password, its schema checked and never migrated).
   *
   * @throws IOException                         when the directory does not exist
   * @throws dev.inferpam.core.PolicyException when the policy has no recording section or the
   *     database cannot be used (the message never holds the URL or password)
   */
  public static Replay open(Policy policy) throws IOException {
    StoredRecords records = StoredRecords.of(policy);
    return new Replay(
        policy.recording().store() == Policy.RecordingStore.DIRECTORY
            ? policy.recording().directory()
            : null,
        records);
  }

  /** The directory this instance reads, or {@code null} when it reads a database. */
  public Path directory() {
    return directory;
  }

  /** Where the records are, for messages: the directory, or {@code PostgreSQL host:port/db}. */
  public String location() {
    return recordings.location();
  }

  /** Releases the database connections, if any. */
  @Override
  public void close() {
    recordings.close();
  }

  /**
   * One line per exchange, oldest first, as {@link #format(SessionRecord)} writes it.
   *
   * @param subject only exchanges of this principal subject, or {@code null} for all
   * @param since   only exchanges that arrived at or after this instant, or {@code null} for all
   */
  public List<String> list(String subject, Instant since) throws IOException {
    List<String> lines = new ArrayList<>();
    for (Recordings.Entry entry : recordings.list(subject, since))
      lines.add(format(entry.record()));
    return lines;
  }

  /**
   * A {@code replay list} line: eight fields separated by one space — time (UTC, milliseconds),
   * id, subject, method, path, model, outcome, status — with {@code -} for a missing value.
   * Whitespace and control characters inside a value are percent-encoded so that the line always
   * splits into exactly eight fields.
   */
  public static String format(SessionRecord record) {
    SessionRecord.Request req = record.request();
    return String.join(
        " ",
        TIME.format(record.time()),
        field(record.id()),
        field(record.principal() == null ? null : record.principal().subject()),
        field(req.method()),
        field(req.path()),
        field(req.model()),
        field(record.decision() == null ? null : record.decision().outcome()),
        record.response() == null ? "-" : String.valueOf(record.response().status()));
  }

  /**
   * The stored line of exchange {@code id}, re-indented (two spaces, members in stored order,
   * values byte for byte as stored), or empty when the directory holds no such exchange. When
   * only the exchange's {@code intent} line exists (strict durability, and the process died
   * before the exchange ended), that line is shown: it is all there is to see.
   */
  public Optional<String> show(String id) throws IOException {
    Objects.requireNonNull(id, "id");
    Optional<Recordings.Entry> entry = recordings.find(id);
    if (entry.isEmpty()) entry = recordings.lines(id).stream().findFirst();
    return entry.map(e -> JsonIndent.indent(e.json()));
  }

  /**
   * Recomputes the whole hash chain (a database: every writer's chain); see {@link
   * #format(Recordings.Verification)}.
   */
  public Recordings.Verification verify() throws IOException {
    return recordings.verify();
  }

  /**
   * What {@code replay verify} prints: {@code OK <n> records}, or one line per break, {@code
   * BROKEN <where>: <reason>}: for a directory the first line that breaks the chain ({@code
   * BROKEN session-20261128-0001.jsonl:2: prev does not match previous line}), for a database
   * every break of every writer's chain ({@code BROKEN writer r-1a2b… seq 17: hash mismatch},
   * {@code BROKEN writer r-1a2b… seq 4: missing}).
   */
  public static String format(Recordings.Verification v) {
    if (v.ok()) return "OK " + v.records() + " records";
    if (v.breaks().isEmpty()) return "BROKEN: " + v.reason();
    List<String> lines = new ArrayList<>();
    for (Recordings.Break b : v.breaks()) {
      String where = b.where() == null ? "" : " " + fileName(b.where());
      lines.add("BROKEN" + where + ": " + b.reason());
    }
    return String.join("\n", lines);
  }

  /**
   * Re-sends exchange {@code id} to {@code upstream} with a fresh credential from
   * {@code policy} (its {@code upstream.credential}; nothing else of the policy is used) and
   * compares the answer with the recorded one.
   *
   * @param policy the policy the gateway enforced, or {@code null} to send without credential
   * @throws ReplayException when there is nothing to re-send (unknown id, a request that was
   *     never forwarded, a body that was not recorded or was recorded still content-encoded),
   *     no credential can be had, or the
   *     upstream cannot be reached; the message is one line for the user
   * @throws IOException     when the recording cannot be read
   */
  public Rerun rerun(String id, HttpUrl upstream, Policy policy)
      throws IOException, ReplayException {
    if (policy == null) return rerun(id, upstream, null, null);
    Policy.Bodies bodies = policy.recording() == null ? null : policy.recording().bodies();
    return rerun(id, upstream, credentials(policy), bodies);
  }

  /**
   * The upstream credential provider that {@code policy}'s {@code upstream.credential}
   * describes, as the gateway builds it ({@link CredentialProvider#NONE} when none is set).
   *
   * @throws IllegalArgumentException when the credential settings are invalid; the message
   *     names the key, never a secret
   */
  public static CredentialProvider credentials(Policy policy) {
    Objects.requireNonNull(policy, "policy");
    // Only upstream.credential: an engine built from the whole policy would also open the
    // policy's recorder, and rerun must not write to the recording it reads.
    Policy credentialOnly =
        new Policy(policy.version(), null, null, policy.upstream(), null, null, null, null);
    // An explicit no-op recorder: without one the engine warns that nothing is recorded.
    try (PamEngine engine =
        PamEngine.builder().policy(credentialOnly).recorder(Recorder.NOOP).build()) {
      return engine.credentialProvider();
    }
  }

  /**
   * As {@link #rerun(String, HttpUrl, Policy)} with an explicit credential provider.
   *
   * @param credentials the upstream credential, or {@code null} to send without one
   * @param bodies      the policy's {@code recording.bodies}, when known, to say what the
   *                    recorded body is; {@code null} when unknown
   */
  public Rerun rerun(
      String id, HttpUrl upstream, CredentialProvider credentials, Policy.Bodies bodies)
      throws IOException, ReplayException {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(upstream, "upstream");
    SessionRecord record =
        recordings
            .find(id)
            .orElseThrow(() -> new ReplayException("no exchange " + id + " in " + location()))
            .record();
    SessionRecord.Request req = record.request();
    String outcome = record.decision() == null ? null : record.decision().outcome();
    if (!FORWARDED.contains(outcome)) {
      // Re-sending a refused request with the upstream credential would do what the policy
      // refused; a replay tool must not be a way around the gateway.
      String code =
          record.decision() == null || record.decision().code() == null
              ? ""
              : ", code " + record.decision().code();
      throw new ReplayException(
          "exchange "
              + id
              + " was not forwarded (outcome "
              + outcome
              + code
              + "); rerun re-sends only exchanges that reached the upstream");
    }
    if (req.body() == null && req.bytes() > 0) {
      throw new ReplayException(
          "exchange "
              + id
              + " was recorded without its request body"
              + " (recording.bodies: none); there is nothing to re-send");
    }
    if (req.body() != null && !req.body().isEmpty() && encoded(req.headers())) {
      // The engine records a body it decoded without Content-Encoding; one still named is a body
      // kept as it came (a coding the engine does not decode), whose text is not the bytes sent.
      throw new ReplayException(
          "exchange "
              + id
              + " was recorded with its request body still content-encoded;"
              + " the recorded text is not the bytes the caller sent, so there is nothing to re-send");
    }

    List<String> notes = new ArrayList<>();
    boolean bodiless = req.method().equals("GET") || req.method().equals("HEAD");
    if (bodiless && req.body() != null && !req.body().isEmpty()) {
      notes.add(
          "the recorded "
              + req.method()
              + " body is not re-sent: HTTP clients send none with "
              + req.method());
    } else if (req.body() != null && !req.body().isEmpty()) {
      notes.add(
          bodies == Policy.Bodies.FULL
              ? "the request body is re-sent as recorded (recording.bodies: full)"
              : bodies == Policy.Bodies.MASKED
                  ? "the request body is re-sent as recorded, i.e. masked (recording.bodies: masked);"
                      + " it may differ from what the caller sent"
                  : "the request body is re-sent as recorded; with recording.bodies: masked (the default)"
                      + " that is the masked text, which may differ from what the caller sent");
    }
    Credential credential = null;
    if (credentials == null) {
      notes.add("no --policy given: the request is sent without an upstream credential");
    } else {
      try {
        credential = credentials.current();
      } catch (CredentialUnavailableException | RuntimeException e) {
        throw new ReplayException("upstream credential unavailable: " + e.getMessage());
      }
      if (credential == null) notes.add("the policy names no upstream credential: none is sent");
    }

    HttpUrl url = target(upstream, req.path());
    Request request;
    try {
      request = request(url, req, credential);
    } catch (IllegalArgumentException e) {
      // OkHttp refused the method or a header value; its message may quote the value.
      throw new ReplayException("exchange " + id + " cannot be re-sent: invalid method or header");
    }
    OkHttpClient client =
        new OkHttpClient.Builder()
            .connectTimeout(Duration.ofSeconds(10))
            .readTimeout(Duration.ofSeconds(120))
            // a redirect would carry the credential to wherever it points
            .followRedirects(false)
            .followSslRedirects(false)
            .build();
    int status;
    byte[] received;
    boolean truncated;
    boolean streamed;
    try (Response response = client.newCall(request).execute()) {
      status = response.code();
      ResponseBody body = response.body();
      MediaType type = body.contentType();
      streamed =
          type != null && "text".equals(type.type()) && "event-stream".equals(type.subtype());
      Buffer buffer = new Buffer();
      BufferedSource source = body.source();
      while (buffer.size() < MAX_RESPONSE_BYTES
          && source.read(buffer, MAX_RESPONSE_BYTES - buffer.size()) != -1) {
        // reading up to the cap
      }
      truncated = buffer.size() >= MAX_RESPONSE_BYTES && !source.exhausted();
      received = buffer.readByteArray();
    } catch (IOException e) {
      // OkHttp's messages name host and port but never header values.
      throw new ReplayException("upstream " + upstream.redact() + " failed: " + e.getMessage());
    } finally {
      client.dispatcher().executorService().shutdown();
      client.connectionPool().evictAll();
    }
    if (truncated)
      notes.add(
          "the new response is longer than "
              + MAX_RESPONSE_BYTES
              + " bytes; only its start is compared");

    SessionRecord.Response recorded = record.response();
    int recordedStatus = recorded == null ? 0 : recorded.status();
    List<String> diff = new ArrayList<>();
    String comparison;
    if (recorded == null || recorded.body() == null) {
      String recordedSha = recorded == null ? null : recorded.bodySha256();
      String newSha = sha256(received);
      if (recordedSha == null) {
        comparison = "bodies: not compared (the recorded response body was not kept)";
      } else {
        comparison =
            recordedSha.equalsIgnoreCase(newSha)
                ? "bodies: identical (by SHA-256; the recorded body was not kept)"
                : "bodies: differ (by SHA-256 "
                    + recordedSha
                    + " recorded, "
                    + newSha
                    + " now; the recorded body was not kept)";
      }
    } else {
      boolean recordedSse = recorded.streamed() || looksLikeSse(recorded.body());
      List<String> before = comparable(recorded.body(), recordedSse);
      List<String> after =
          comparable(
              new String(received, StandardCharsets.UTF_8), streamed || looksLikeSse(received));
      if (recordedSse || streamed)
        notes.add("server-sent events are compared by the text they carry");
      if (before.size() > MAX_DIFF_LINES || after.size() > MAX_DIFF_LINES) {
        notes.add("only the first " + MAX_DIFF_LINES + " lines of each body are compared");
        before = before.subList(0, Math.min(before.size(), MAX_DIFF_LINES));
        after = after.subList(0, Math.min(after.size(), MAX_DIFF_LINES));
      }
      LineDiff.Result result =
          LineDiff.unified(
              "recorded (status " + recordedStatus + ")",
              "rerun (status " + status + ")",
              before,
              after);
      if (result.identical()) {
        comparison =
            "bodies: identical ("
                + before.size()
                + (before.size() == 1 ? " line" : " lines")
                + " compared)";
      } else {
        comparison = "bodies: differ";
        if (!result.minimal())
          notes.add(
              "the bodies differ too much to align line by line; the changed part is shown whole");
        diff.addAll(result.lines());
      }
    }
    return new Rerun(
        id,
        req.method(),
        url,
        recordedStatus,
        status,
        List.copyOf(notes),
        comparison,
        List.copyOf(diff));
  }

  /**
   * What {@link #rerun} found.
   *
   * @param id             the exchange
   * @param method         the method re-sent
   * @param url            where it was sent (no user info, query or fragment)
   * @param recordedStatus the recorded response status (0 when none was recorded)
   * @param status         the new response status
   * @param notes          what the user should know about the comparison
   * @param comparison     one line: identical or differ
   * @param diff           the unified diff, recorded against new; empty when identical
   */
  public record Rerun(
      String id,
      String method,
      HttpUrl url,
      int recordedStatus,
      int status,
      List<String> notes,
      String comparison,
      List<String> diff) {
    public Rerun {
      notes = List.copyOf(notes);
      diff = List.copyOf(diff);
    }

    /** What {@code replay rerun} prints. */
    public List<String> lines() {
      List<String> out = new ArrayList<>();
      out.add("rerun " + id + ": " + method + " " + url);
      for (String note : notes) out.add("note: " + note);
      out.add(
          "status: recorded "
              + (recordedStatus == 0 ? "none" : String.valueOf(recordedStatus))
              + ", rerun "
              + status);
      out.add(comparison);
      out.addAll(diff);
      return out;
    }
  }

  /**
   * {@code --since}: an ISO-8601 instant ({@code 2026-11-28T22:00:00Z}), a date-time with an
   * offset ({@code 2026-11-28T23:00:00+01:00}), or a date ({@code 2026-11-28}, meaning its start
   * in UTC).
   *
   * @throws IllegalArgumentException naming the value when it is none of these
   */
  public static Instant parseSince(String text) {
    Objects.requireNonNull(text, "text");
    String t = text.strip();
    try {
      return Instant.parse(t);
    } catch (DateTimeParseException e) {
      // not an instant; try the other forms
    }
    try {
      return OffsetDateTime.parse(t).toInstant();
    } catch (DateTimeParseException e) {
      // not a date-time with offset
    }
    try {
      return LocalDate.parse(t).atStartOfDay(ZoneOffset.UTC).toInstant();
    } catch (DateTimeParseException e) {
      throw new IllegalArgumentException(
          "expected an ISO instant (2026-11-28T22:00:00Z) or a date"
              + " (2026-11-28), was \""
              + text
              + "\"");
    }
  }

  /** A replay that cannot be done; the message is one line for the user. */
  public static final class ReplayException extends Exception {
    private static final long serialVersionUID = 1L;

    public ReplayException(String message) {
      super(message);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private static String field(String value) {
    if (value == null || value.isEmpty()) return "-";
    StringBuilder out = null;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      boolean escape = Character.isWhitespace(c) || Character.isISOControl(c);
      if (escape && out == null) out = new StringBuilder(value.substring(0, i));
      if (out == null) continue;
      if (escape) out.append('%').append(String.format(Locale.ROOT, "%02X", (int) c & 0xFF));
      else out.append(c);
    }
    return out == null ? value : out.toString();
  }

  private static String fileName(String file) {
    Path name = Path.of(file).getFileName();
    return name == null ? file : name.toString();
  }

  private static HttpUrl target(HttpUrl upstream, String path) {
    String base = upstream.encodedPath();
    if (base.endsWith("/")) base = base.substring(0, base.length() - 1);
    // The recorded path is canonical (decoded once); encodedPath() encodes what needs encoding.
    // No user info, query or fragment: the URL is printed, and the recording holds no query.
    return upstream
        .newBuilder()
        .username("")
        .password("")
        .query(null)
        .fragment(null)
        .encodedPath(base + (path.startsWith("/") ? path : "/" + path))
        .build();
  }

  private static Request request(HttpUrl url, SessionRecord.Request req, Credential credential) {
    String contentType = header(req.headers(), "content-type");
    RequestBody body = null;
    byte[] bytes = req.body() == null ? new byte[0] : req.body().getBytes(StandardCharsets.UTF_8);
    boolean bodiless = req.method().equals("GET") || req.method().equals("HEAD");
    if (!bodiless && (bytes.length > 0 || BODY_REQUIRED.contains(req.method()))) {
      // No media type on the body: OkHttp would otherwise append "; charset=utf-8" to it.
      body = RequestBody.create(bytes, null);
    }
    Request.Builder b = new Request.Builder().url(url).method(req.method(), body);
    if (contentType != null && body != null) b.header("Content-Type", contentType);
    if (credential != null) b.header(credential.header(), credential.value());
    return b.build();
  }

  /** Whether the recorded headers name a content coding other than {@code identity}. */
  private static boolean encoded(Map<String, List<String>> headers) {
    for (Map.Entry<String, List<String>> e : headers.entrySet()) {
      if (!e.getKey().equalsIgnoreCase("content-encoding")) continue;
      for (String value : e.getValue()) {
        for (String coding : value.split(",", -1)) {
          String c = coding.strip();
          if (!c.isEmpty() && !c.equalsIgnoreCase("identity")) return true;
        }
      }
    }
    return false;
  }

  /** The first value of a recorded header, unless it was redacted. */
  private static String header(Map<String, List<String>> headers, String name) {
    for (Map.Entry<String, List<String>> e : headers.entrySet()) {
      if (!e.getKey().equalsIgnoreCase(name) || e.getValue().isEmpty()) continue;
      String v = e.getValue().get(0);
      return v == null || v.equals("[REDACTED]") ? null : v;
    }
    return null;
  }

  private static boolean looksLikeSse(String body) {
    return body.startsWith("data:") || body.contains("\ndata:");
  }

  private static boolean looksLikeSse(byte[] body) {
    return looksLikeSse(new String(body, 0, Math.min(body.length, 4096), StandardCharsets.UTF_8));
  }

  /**
   * The lines compared: for server-sent events the text the events carry, concatenated (chunk
   * ids and timestamps differ on every run and would hide the answer); for JSON the document
   * re-indented so that a one-line body diffs member by member; anything else as it is.
   */
  static List<String> comparable(String body, boolean sse) {
    if (sse) return sseText(body).lines().toList();
    String trimmed = body.strip();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        JSON.readTree(trimmed);
        return JsonIndent.indent(trimmed).lines().toList();
      } catch (IOException e) {
        // not JSON after all: compare as text
      }
    }
    return body.lines().toList();
  }

  /**
   * The text of an event stream: {@code choices[].delta.content} (chat) or {@code choices[].text}
   * (completions) of each event's data, concatenated; events without such text, and non-JSON
   * events other than {@code [DONE]}, are kept as their own line so that nothing is silently left
   * out of the comparison (a last event cut off before its blank line included).
   */
  static String sseText(String body) {
    StringBuilder text = new StringBuilder();
    StringBuilder other = new StringBuilder();
    for (SseEvent sse : SseFramer.events(body.getBytes(StandardCharsets.UTF_8))) {
      String data = sse.data();
      if (data == null || data.equals("[DONE]")) continue;
      JsonNode event;
      try {
        event = JSON.readTree(data);
      } catch (IOException e) {
        other.append(data).append('\n');
        continue;
      }
      boolean found = false;
      for (JsonNode choice : event.path("choices")) {
        JsonNode piece = choice.path("delta").path("content");
        if (!piece.isTextual()) piece = choice.path("text");
        if (piece.isTextual()) {
          text.append(piece.asText());
          found = true;
        }
      }
      if (!found && event.path("choices").isEmpty() && !event.has("usage"))
        other.append(data).append('\n');
    }
    return other.length() == 0 ? text.toString() : text + (text.length() == 0 ? "" : "\n") + other;
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
