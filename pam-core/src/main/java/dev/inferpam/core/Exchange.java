package dev.inferpam.core;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.BoundedBody;
import dev.inferpam.core.internal.Decider;
import dev.inferpam.core.internal.ErrorBodies;
import dev.inferpam.core.internal.RecordBuilder;
import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's way through the engine, from decision to record. Created by
 * {@link PamEngine#begin}; the decision is made when it is created.
 *
 * <p>Adapter contract, in this order:
 * <ol>
 *   <li>read {@link #decision()}; on {@link Decision.Deny} write {@link #error()} without
 *       calling the application or upstream;</li>
 *   <li>on {@link Decision.Allow}: forward {@link #body()}, with the headers in
 *       {@link #callerCredentialHeaders()} removed and {@link #upstreamCredential()} set;</li>
 *   <li>report the response with {@link #responseStarted} and every delivered chunk with
 *       {@link #responseBytes};</li>
 *   <li>always call {@link #end(boolean)} once, also after a denial, in a {@code finally}.</li>
 * </ol>
 *
 * <p><b>Recording.</b> When the exchange is created the recorder admits it
 * ({@link dev.inferpam.api.Recorder#admit()}) and, with {@code recording.durability: strict}, an
 * allowed request's {@code intent} record is stored durably before this constructor returns; if
 * either fails, a request that would have been allowed is denied 503 {@code recording_unavailable}
 * (rule {@code recording}) and nothing may be forwarded, while a request denied anyway keeps its
 * own denial. The response is captured as the adapter reports it (bodies per
 * {@code recording.bodies}, at most {@link RecordBuilder#MAX_CAPTURE} bytes of each kept, sizes
 * exact, token usage read on the way) and {@link #end(boolean)} hands over exactly one
 * {@code exchange} record, denials included (their response is the error that was sent).
 *
 * <p><b>Thread-safety:</b> an exchange belongs to one request; its methods may be called from
 * different threads one after another (as async servlets and OkHttp do), not concurrently.
 * {@link #end(boolean)} is idempotent.
 */
public final class Exchange {
  private static final Logger log = LoggerFactory.getLogger(Exchange.class);

  /** Request headers that carry the caller's own credential; never forwarded upstream. */
  public static final Set<String> CALLER_CREDENTIAL_HEADERS =
      Set.of("authorization", "x-api-key", "proxy-authorization");

  private final PamEngine engine;
  private final String id;
  private final Instant started;
  private final long startNanos;
  private final RequestHead head;
  private final InferenceRequest request;
  private final Principal principal;
  private final Decision decision;
  private final String operation;
  private final String model;
  private final Credential credential;
  private final RecordBuilder record;
  /** Whether the recorder reserved room for this exchange's record. */
  private boolean admitted;
  private volatile boolean ended;

  Exchange(PamEngine engine, RequestHead head, InputStream body, long contentLength) {
    this.engine = engine;
    this.head = head;
    this.id = engine.ids().next();
    this.started = engine.clock().instant();
    this.startNanos = System.nanoTime();

    Decider.Verdict verdict = decide(engine, head, body, contentLength);
    Decision d = verdict.decision();
    Recorder recorder = engine.recorder();
    // Every exchange is admitted, denied ones too: a recorder that admits one keeps a place for
    // its record. A refusal stops only requests that would go on; a denial stays as it was.
    try {
      recorder.admit();
      admitted = true;
    } catch (IOException | RuntimeException e) {
      log.debug("inferpam: recorder refused exchange {}: {}", id, e.toString());
      if (d instanceof Decision.Allow) d = recordingUnavailable(e);
    }
    Credential cred = null;
    if (d instanceof Decision.Allow) {
      try {
        cred = engine.credentialProvider().current();
        engine.credentialAvailable();
      } catch (CredentialUnavailableException | RuntimeException e) {
        engine.credentialUnavailable(e.getMessage());
        d = new Decision.Deny(503, "upstream_credential_unavailable",
            "the upstream credential is not available", "upstream.credential");
      }
    }
    this.request = verdict.request();
    this.principal = verdict.principal();
    this.operation = verdict.operation();
    this.model = verdict.model();
    this.record = new RecordBuilder(head, request, contentLength, secretHeaders(engine, cred), engine.bodies(),
        engine.masker());
    if (d instanceof Decision.Allow && engine.writeIntents()) {
      // Strict durability: nothing goes upstream before its intent is durable.
      try {
        recorder.intent(record.intent(id, started, principal, operation, model));
      } catch (IOException | RuntimeException e) {
        log.debug("inferpam: intent of exchange {} not stored: {}", id, e.toString());
        d = recordingUnavailable(e);
        cred = null;
      }
    }
    this.decision = d;
    this.credential = cred;
    if (d instanceof Decision.Deny) {
      ErrorResponse err = error();
      record.ownResponse(err.status(), err.body());
    }
  }

  private static Decision.Deny recordingUnavailable(Exception e) {
    // The reason (a file path, an I/O error) is for operators, not callers: the recorder logs it
    // once when it fails; here it is only a debug line per refused request.
    log.debug("inferpam: recorder refused an exchange: {}", e.toString());
    return new Decision.Deny(503, "recording_unavailable",
        "recording is unavailable, the request was not forwarded", "recording");
  }

  /** Headers that carry the upstream credential: the configured one and the one being injected. */
  private static Set<String> secretHeaders(PamEngine engine, Credential injected) {
    Set<String> out = new HashSet<>();
    Policy.CredentialSource configured = engine.policy().upstream().credential();
    if (configured != null && configured.header() != null) out.add(configured.header().toLowerCase(Locale.ROOT));
    if (injected != null) out.add(injected.header().toLowerCase(Locale.ROOT));
    return out;
  }

  private static Decider.Verdict decide(PamEngine engine, RequestHead head, InputStream body, long length) {
    Object path = Decider.canonicalPathOrDeny(head.rawPath());
    if (path instanceof Decision.Deny deny) return new Decider.Verdict(deny, null, null, null, null);
    byte[] bytes;
    try {
      bytes = BoundedBody.read(body, length, engine.maxBodyBytes());
    } catch (BoundedBody.TooLargeException e) {
      return new Decider.Verdict(new Decision.Deny(413, "body_too_large", e.getMessage(), "request.max-body"),
          null, null, null, null);
    } catch (IOException e) {
      return new Decider.Verdict(new Decision.Deny(400, "bad_request", "request body could not be read", "request"),
          null, null, null, null);
    }
    InferenceRequest req = new InferenceRequest(head.method(), (String) path, head.query(), head.headers(),
        bytes, head.remoteAddress());
    try {
      return engine.decider().decide(req);
    } catch (RuntimeException e) {
      log.error("inferpam: policy evaluation failed, denying", e);
      return new Decider.Verdict(new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"),
          null, req, null, null);
    }
  }

  /** The exchange id, also the {@code request_id} of error bodies and the record id. */
  public String id() {
    return id;
  }

  public Decision decision() {
    return decision;
  }

  /** True when the decision is {@link Decision.Allow}. */
  public boolean allowed() {
    return decision instanceof Decision.Allow;
  }

  /** The identified caller, or {@code null} when the request was refused before identity. */
  public Principal principal() {
    return principal;
  }

  /** The canonical request, or {@code null} when the path or body was refused. */
  public InferenceRequest request() {
    return request;
  }

  /** The request body as read (empty when refused before reading); forward exactly these bytes. */
  public byte[] body() {
    return request == null ? new byte[0] : request.body();
  }

  /** The recognised operation ({@code chat}, ...), or {@code null}. */
  public String operation() {
    return operation;
  }

  /** The model asked for, or {@code null}. */
  public String model() {
    return model;
  }

  /** Lower-case names of the caller's credential headers, to strip before forwarding. */
  public Set<String> callerCredentialHeaders() {
    return CALLER_CREDENTIAL_HEADERS;
  }

  /** The credential to inject on an allowed request, or {@code null} when none is configured. */
  public Credential upstreamCredential() {
    return credential;
  }

  /** The answer to write for a denial, or {@code null} when allowed. */
  public ErrorResponse error() {
    if (!(decision instanceof Decision.Deny deny)) return null;
    return ErrorBodies.of(deny, id);
  }

  /** Reports the response status line (call once, before any body bytes). */
  public void responseStarted(int status, Map<String, List<String>> headers) {
    String type = headers == null ? null : InferenceRequest.normalize(headers).getOrDefault("content-type", List.of())
        .stream().findFirst().orElse(null);
    record.responseStarted(status, type);
  }

  /** Reports bytes as they are delivered to the client. */
  public void responseBytes(byte[] b, int off, int len) {
    record.responseBytes(b, off, len);
  }

  /**
   * Ends the exchange and hands its record to the recorder. Idempotent. An exchange the recorder
   * refused to admit at the start is offered once more; if it is still refused, its record is
   * dropped with a warning (never waited for).
   *
   * @param complete false when the upstream or the client broke off
   */
  public void end(boolean complete) {
    if (ended) return;
    ended = true;
    long durationMs = (System.nanoTime() - startNanos) / 1_000_000;
    Recorder recorder = engine.recorder();
    if (!admitted) {
      // Refused at the start (and so answered 503, or denied anyway): ask once more rather than
      // call record() without room, which a recorder may answer by waiting for room — and the
      // adapter may not have delivered the answer yet.
      try {
        recorder.admit();
      } catch (IOException | RuntimeException e) {
        log.warn("inferpam: record of exchange {} ({}) dropped, recording unavailable: {}", id,
            decision instanceof Decision.Deny d ? d.code() : "allow", e.toString());
        return;
      }
    }
    SessionRecord r = record.build(id, started, durationMs, principal, operation, model, decision, complete);
    try {
      recorder.record(r);
    } catch (IOException | RuntimeException e) {
      log.error("inferpam: recorder failed for exchange {}: {}", id, e.toString());
    }
  }

  @Override
  public String toString() {
    return "Exchange[" + id + " " + head.method() + " " + head.rawPath() + " -> "
        + decision.getClass().getSimpleName() + "]";
  }
}
