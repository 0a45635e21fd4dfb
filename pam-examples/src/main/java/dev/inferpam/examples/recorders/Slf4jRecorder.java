package dev.inferpam.examples.recorders;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A sample custom {@link Recorder}: every {@link SessionRecord} becomes one structured log
 * line, for deployments that ship logs to a SIEM rather than keep JSONL files.
 *
 * <pre>{@code
 * PamEngine engine = PamEngine.builder()
 *     .policy(Policy.load(Path.of("policy.yaml")))
 *     .recorder(new Slf4jRecorder())
 *     .build();
 * }</pre>
 *
 * <p><b>What a line holds:</b> the message is the record as one compact JSON object with the
 * field names of {@code docs/recording.md} — {@code v}, {@code type}, {@code id}, {@code time},
 * {@code duration_ms}, {@code principal}, {@code request}, {@code decision}, {@code approval},
 * {@code response}. By default ({@link Bodies#OMIT}) request and response bodies are left out,
 * because logs are copied widely and kept long; their sizes ({@code bytes}) and, when the record
 * has them, their SHA-256 are kept. {@link Bodies#KEEP} logs them too. Header values are logged
 * as the record holds them, so sensitive ones are {@code [REDACTED]}. There is no {@code prev}/
 * {@code hash} chain: log pipelines reorder and drop lines, and tamper evidence is the log
 * store's job. The line is logged at INFO on logger {@value #LOGGER_NAME}, with the key-value
 * pairs {@code inferpam.id}, {@code inferpam.subject}, {@code inferpam.outcome} and
 * {@code inferpam.status} for back ends that index them (Logback and Log4j2 JSON layouts do;
 * slf4j-simple shows the message only).
 *
 * <p><b>Sink:</b> each line is also handed to an optional {@code Consumer<String>}, e.g. to
 * forward it elsewhere or, in tests, to read records back.
 *
 * <p><b>Failures:</b> logging does not report failure, so {@link #admit()} always admits. A
 * sink that throws makes {@link #record} throw {@link IOException} (the record counts as not
 * stored and the engine fails closed). After {@link #close()}, {@link #record} throws.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; each call builds its line alone and hands it
 * on synchronously, so a thread's records keep their order. The sink must be thread-safe.
 */
public final class Slf4jRecorder implements Recorder {

  /** The logger the no-argument constructor uses. */
  public static final String LOGGER_NAME = "dev.inferpam.recording";

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Whether request and response bodies go into the log line. */
  public enum Bodies {
    /** Sizes (and hashes, when the record has them) only; the default. */
    OMIT,
    /** The bodies as the record holds them (already masked when {@code recording.bodies: masked}). */
    KEEP
  }

  private final Logger logger;
  private final Consumer<String> sink;
  private final Bodies bodies;
  private volatile boolean closed;

  /** Logs to {@value #LOGGER_NAME} without bodies, no sink. */
  public Slf4jRecorder() {
    this(LoggerFactory.getLogger(LOGGER_NAME), line -> {});
  }

  /**
   * Logs to {@code logger} without bodies and hands each line to {@code sink} as well.
   *
   * @throws NullPointerException when either is null
   */
  public Slf4jRecorder(Logger logger, Consumer<String> sink) {
    this(logger, sink, Bodies.OMIT);
  }

  /**
   * Logs to {@code logger} and hands each line to {@code sink} as well, with or without bodies.
   *
   * @throws NullPointerException when any argument is null
   */
  public Slf4jRecorder(Logger logger, Consumer<String> sink, Bodies bodies) {
    this.logger = Objects.requireNonNull(logger, "logger");
    this.sink = Objects.requireNonNull(sink, "sink");
    this.bodies = Objects.requireNonNull(bodies, "bodies");
  }

  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    if (closed) throw new IOException("Slf4jRecorder is closed");
    String line = toJson(record, bodies == Bodies.KEEP);
    try {
      sink.accept(line);
    } catch (RuntimeException e) {
      throw new IOException("record sink failed: " + e, e);
    }
    logger
        .atInfo()
        .addKeyValue("inferpam.id", record.id())
        .addKeyValue(
            "inferpam.subject", record.principal() == null ? null : record.principal().subject())
        .addKeyValue(
            "inferpam.outcome", record.decision() == null ? null : record.decision().outcome())
        .addKeyValue(
            "inferpam.status", record.response() == null ? null : record.response().status())
        .log(line);
  }

  /** Nothing is buffered here; the logging back end flushes on its own schedule. */
  @Override
  public void flush() {}

  /** Refuses further records. Idempotent. */
  @Override
  public void close() {
    closed = true;
  }

  @Override
  public String toString() {
    return "Slf4jRecorder[" + logger.getName() + ", bodies " + bodies + "]";
  }

  // --- the line format -------------------------------------------------------------------------

  /** The record as this recorder logs it: compact JSON, with or without bodies. */
  static String toJson(SessionRecord r, boolean withBodies) {
    ObjectNode root = JSON.createObjectNode();
    root.put("v", 1);
    root.put("type", r.type());
    root.put("id", r.id());
    root.put("time", r.time().toString());
    root.put("duration_ms", r.durationMs());
    if (r.principal() != null) {
      Principal p = r.principal();
      ObjectNode principal = root.putObject("principal");
      principal.put("subject", p.subject());
      ArrayNode groups = principal.putArray("groups");
      p.groups().stream().sorted().forEach(groups::add);
      principal.put("via", p.via());
      principal.put("issuer", p.issuer());
      if (!p.attributes().isEmpty()) principal.set("attributes", JSON.valueToTree(p.attributes()));
    } else {
      root.putNull("principal");
    }
    SessionRecord.Request q = r.request();
    ObjectNode request = root.putObject("request");
    request.put("method", q.method());
    request.put("path", q.path());
    request.put("operation", q.operation());
    request.put("model", q.model());
    ObjectNode headers = request.putObject("headers");
    q.headers()
        .forEach(
            (name, values) -> {
              // one value as a string, as recording.md shows it; several as an array
              if (values.size() == 1) {
                headers.put(name, values.get(0));
              } else {
                ArrayNode all = headers.putArray(name);
                values.forEach(all::add);
              }
            });
    request.put("bytes", q.bytes());
    if (withBodies) request.put("body", q.body());
    request.put("body_sha256", q.bodySha256());
    if (r.decision() != null) {
      SessionRecord.DecisionSummary d = r.decision();
      ObjectNode decision = root.putObject("decision");
      decision.put("outcome", d.outcome());
      decision.put("rule", d.rule());
      decision.put("code", d.code());
      decision.put("message", d.message());
    } else {
      root.putNull("decision");
    }
    if (r.approval() != null) {
      SessionRecord.Approval a = r.approval();
      ObjectNode approval = root.putObject("approval");
      approval.put("id", a.id());
      approval.put("rule", a.rule());
      approval.put("reviewer", a.reviewer());
      approval.put("decided", a.decided() == null ? null : a.decided().toString());
      approval.put("outcome", a.outcome());
      approval.put("reason", a.reason());
    }
    if (r.response() != null) {
      SessionRecord.Response s = r.response();
      ObjectNode response = root.putObject("response");
      response.put("status", s.status());
      response.put("streamed", s.streamed());
      response.put("bytes", s.bytes());
      response.put("complete", s.complete());
      if (withBodies) response.put("body", s.body());
      response.put("body_sha256", s.bodySha256());
      ObjectNode masked = response.putObject("masked");
      s.masked().forEach(masked::put);
      ObjectNode usage = response.putObject("usage");
      s.usage().forEach(usage::put);
    } else {
      root.putNull("response");
    }
    try {
      return JSON.writeValueAsString(root);
    } catch (JsonProcessingException e) {
      // a tree of strings and numbers always serialises
      throw new IllegalStateException(e);
    }
  }

  /**
   * Reads a line written by {@link #toJson} back into a record (bodies {@code null} when they
   * were not logged). For tests and log readers.
   *
   * @throws IOException when the line is not such a record
   */
  static SessionRecord fromJson(String line) throws IOException {
    JsonNode root = JSON.readTree(line);
    if (root == null || !root.isObject() || root.path("v").asInt() != 1) {
      throw new IOException("not an inferpam record line");
    }
    try {
      Principal principal = null;
      JsonNode p = root.path("principal");
      if (p.isObject()) {
        Set<String> groups = new LinkedHashSet<>();
        p.path("groups").forEach(g -> groups.add(g.asText()));
        Map<String, Object> attributes =
            p.has("attributes")
                ? JSON.convertValue(
                    p.get("attributes"),
                    JSON.getTypeFactory()
                        .constructMapType(LinkedHashMap.class, String.class, Object.class))
                : Map.of();
        principal =
            new Principal(
                p.path("subject").asText(),
                groups,
                p.path("via").asText(),
                text(p, "issuer"),
                attributes);
      }
      JsonNode q = root.path("request");
      Map<String, List<String>> headers = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> h : q.path("headers").properties()) {
        List<String> values = new ArrayList<>();
        if (h.getValue().isArray()) h.getValue().forEach(v -> values.add(v.asText()));
        else values.add(h.getValue().asText());
        headers.put(h.getKey(), values);
      }
      SessionRecord.Request request =
          new SessionRecord.Request(
              text(q, "method"),
              text(q, "path"),
              text(q, "operation"),
              text(q, "model"),
              headers,
              q.path("bytes").asLong(),
              text(q, "body"),
              text(q, "body_sha256"));
      SessionRecord.DecisionSummary decision = null;
      JsonNode d = root.path("decision");
      if (d.isObject()) {
        decision =
            new SessionRecord.DecisionSummary(
                text(d, "outcome"), text(d, "rule"), text(d, "code"), text(d, "message"));
      }
      SessionRecord.Approval approval = null;
      JsonNode a = root.path("approval");
      if (a.isObject()) {
        String decided = text(a, "decided");
        approval =
            new SessionRecord.Approval(
                text(a, "id"),
                text(a, "rule"),
                text(a, "reviewer"),
                decided == null ? null : Instant.parse(decided),
                text(a, "outcome"),
                text(a, "reason"));
      }
      SessionRecord.Response response = null;
      JsonNode s = root.path("response");
      if (s.isObject()) {
        Map<String, Integer> masked = new LinkedHashMap<>();
        s.path("masked").properties().forEach(e -> masked.put(e.getKey(), e.getValue().asInt()));
        Map<String, Long> usage = new LinkedHashMap<>();
        s.path("usage").properties().forEach(e -> usage.put(e.getKey(), e.getValue().asLong()));
        response =
            new SessionRecord.Response(
                s.path("status").asInt(),
                s.path("streamed").asBoolean(),
                s.path("bytes").asLong(),
                s.path("complete").asBoolean(),
                text(s, "body"),
                masked,
                usage,
                text(s, "body_sha256"));
      }
      return new SessionRecord(
          text(root, "type"),
          text(root, "id"),
          Instant.parse(text(root, "time")),
          root.path("duration_ms").asLong(),
          principal,
          request,
          decision,
          approval,
          response);
    } catch (RuntimeException e) {
      throw new IOException("not an inferpam record line: " + e.getMessage(), e);
    }
  }

  private static String text(JsonNode node, String field) {
    JsonNode v = node.get(field);
    return v == null || v.isNull() ? null : v.asText();
  }
}
