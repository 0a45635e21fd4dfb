package dev.inferpam.core.internal;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.RequestHead;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Collects what one exchange delivered and builds its {@link SessionRecord}. Used by one request
 * at a time. The captured response body is bounded ({@link #MAX_CAPTURE} bytes); sizes are always
 * exact.
 */
public final class RecordBuilder {
  /** Most response bytes kept for the record; the full size is still counted. */
  public static final int MAX_CAPTURE = 4 * 1024 * 1024;

  static final Set<String> SENSITIVE_HEADERS =
      Set.of("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key");
  static final String REDACTED = "[REDACTED]";

  private final RequestHead head;
  private final InferenceRequest request;
  private final String injectedHeader;
  private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
  private int status;
  private boolean streamed;
  private long responseBytes;

  public RecordBuilder(RequestHead head, InferenceRequest request, Credential injected) {
    this.head = head;
    this.request = request;
    this.injectedHeader = injected == null ? null : injected.header().toLowerCase(Locale.ROOT);
  }

  public void responseStarted(int status, boolean streamed) {
    this.status = status;
    this.streamed = streamed;
  }

  public void responseBytes(byte[] b, int off, int len) {
    responseBytes += len;
    int room = MAX_CAPTURE - captured.size();
    if (room > 0) captured.write(b, off, Math.min(room, len));
  }

  public SessionRecord build(String id, Instant time, long durationMs, Principal principal,
                             String operation, String model, Decision decision, boolean complete) {
    String path = request != null ? request.path() : head.rawPath();
    byte[] body = request != null ? request.body() : new byte[0];
    SessionRecord.Request req = new SessionRecord.Request(head.method(), path, operation, model,
        redact(head.headers()), body.length, new String(body, StandardCharsets.UTF_8));
    SessionRecord.DecisionSummary ds;
    if (decision instanceof Decision.Deny d) {
      ds = new SessionRecord.DecisionSummary("deny", d.rule(), d.code(), d.message());
    } else {
      ds = new SessionRecord.DecisionSummary("allow", decision.rule(), null, null);
    }
    SessionRecord.Response resp = new SessionRecord.Response(status, streamed, responseBytes, complete,
        captured.toString(StandardCharsets.UTF_8), Map.of(), Map.of());
    return new SessionRecord(SessionRecord.TYPE_EXCHANGE, id, time, durationMs, principal, req, ds, null, resp);
  }

  private Map<String, List<String>> redact(Map<String, List<String>> headers) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    headers.forEach((name, values) -> {
      boolean secret = SENSITIVE_HEADERS.contains(name) || name.equals(injectedHeader);
      out.put(name, secret ? List.of(REDACTED) : values);
    });
    return out;
  }
}
