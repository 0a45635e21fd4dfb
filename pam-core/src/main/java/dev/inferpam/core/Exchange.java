package dev.inferpam.core;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.internal.policy.Decider;
import dev.inferpam.core.internal.policy.Durations;
import dev.inferpam.core.internal.http.GovernedBody;
import dev.inferpam.core.internal.quotas.Quotas;
import dev.inferpam.core.internal.approval.RequestDigest;
import dev.inferpam.core.internal.http.ErrorBodies;
import dev.inferpam.core.internal.recording.RecordBuilder;
import dev.inferpam.core.internal.masking.BodyMasker;
import dev.inferpam.core.internal.masking.CredentialScrubber;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's way through the engine, from decision to record. Created by
 * {@link PamEngine#begin} or a {@link PendingExchange}; the decision is made when it is created.
 *
 * <p>Adapter contract, in this order:
 * <ol>
 *   <li>read {@link #decision()}; on {@link Decision.Deny} write {@link #error()} without
 *       calling the application or upstream;</li>
 *   <li>on {@link Decision.Allow}: forward {@link #body()}, with the headers in
 *       {@link #requestHeadersToRemove()} removed and {@link #upstreamCredential()} set; when
 *       {@link #rewritesResponse()}, also without {@code Accept-Encoding}, so that the response
 *       comes back as text the engine can read;</li>
 *   <li>report the response with {@link #responseStarted}; then, if {@link #responseRefusal()}
 *       is not {@code null}, deliver that error instead of the response; else pass every
 *       response header through {@link #responseHeader} and, if {@link #responseMasking()} is not
 *       {@code null}, every chunk of the body through it (dropping {@code Content-Length} when
 *       {@link ResponseMasking#changesLength()}) and call its
 *       {@link ResponseMasking#finish() finish()} when the body ends;</li>
 *   <li>report every chunk delivered to the client with {@link #responseBytes} (masked bytes
 *       when masking applies);</li>
 *   <li>always call {@link #end(boolean)} once, also after a denial, in a {@code finally}.</li>
 * </ol>
 *
 * <p><b>Masking.</b> The response of an allowed exchange is masked for the client when the engine
 * has a masker (the policy's {@code masking} section, or {@link PamEngine.Builder#masker}) and
 * the principal is in none of {@code masking.exempt-groups}. Server-sent events, NDJSON, JSON
 * ({@code +json} too), other {@code text/*} and bodies without a content type are masked, keeping
 * their framing; other types (images, audio, {@code application/octet-stream}, ...) pass
 * untouched, and so does the engine's own error answer to a denial. A response that must be
 * masked but arrives with a {@code Content-Encoding} other than {@code identity} cannot be
 * read by the masker: it is refused 502 {@code masking_unavailable} (fail closed), and that error
 * is what is recorded as the response.
 *
 * <p><b>Credentials.</b> The exact values of this exchange's credentials (the upstream credential
 * it injects, and the caller's own {@code Authorization}, {@code X-Api-Key} or
 * {@code Proxy-Authorization} value and token) never reach the caller or the record: they are
 * replaced by {@code [REDACTED:credential]} (fitted to their length) in every response header
 * ({@link #responseHeader}) and body ({@link #responseMasking()}: whatever the content type,
 * streamed ones included, also with no {@code masking} section and for exempt principals), and
 * in the request as recorded (header values, path, body). A response that must be scanned for
 * them but arrives encoded is refused like one that must be masked. An exchange without a
 * credential of at least {@value CredentialScrubber#MIN_LENGTH} chars pays nothing for this.
 *
 * <p><b>Recording.</b> When the exchange is created the recorder admits it
 * ({@link dev.inferpam.api.Recorder#admit()}) and, with {@code recording.durability: strict}, an
 * allowed request's {@code intent} record is stored durably before this constructor returns; if
 * either fails, a request that would have been allowed is denied 503 {@code recording_unavailable}
 * (rule {@code recording}) and nothing may be forwarded, while a request denied anyway keeps its
 * own denial. The response is captured as the adapter reports it, that is as delivered (bodies
 * per {@code recording.bodies}, at most {@link RecordBuilder#MAX_CAPTURE} bytes of each kept,
 * sizes exact, token usage read on the way) and {@link #end(boolean)} hands over exactly one
 * {@code exchange} record, denials included (their response is the error that was sent). A
 * response masked for the client is stored as delivered, with the counts of that masking in
 * {@code response.masked}; with {@code bodies: masked}, a response delivered unmasked (an exempt
 * principal) is masked for the record when it is built.
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

  /** An HTTP token (RFC 9110), short enough to be named in an error message. */
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}");

  private final PamEngine engine;
  private final String id;
  private final Instant started;
  private final long startNanos;
  private final RequestHead head;
  private final InferenceRequest request;
  private final Principal principal;
  /** The decision; {@link Decision.RequireApproval} until a review is settled. */
  private volatile Decision decision;
  private final String operation;
  private final String model;
  /** The rule that allows the request once a review approves it, or {@code null}. */
  private final String allowRule;
  /** The review of a request that needs one, or {@code null}. */
  private final Review review;
  /** The limits this request was admitted under, to charge its tokens to; {@code null} for none. */
  private Quotas.Admission quota;
  private Credential credential;
  private final RecordBuilder record;
  /** Whether the response goes to the client masked (allowed, a masker, principal not exempt). */
  private boolean masksResponse;
  /** Replaces this exchange's credentials in what goes back, or {@code null} when it has none. */
  private CredentialScrubber scrubber;
  /** Whether the recorder reserved room for this exchange's record. */
  private boolean admitted;
  private boolean responseReported;
  private int responseStatus;
  private String responseType;
  /** The response's first content coding other than identity, or {@code null}. */
  private String responseEncoding;
  private boolean deliveryPrepared;
  /** The masking of this response's body, once started; {@code null} when it passes as it is. */
  private ResponseMasking masking;
  /** Whether the adapter took {@link #masking}, so that the delivered bytes are masked ones. */
  private boolean maskingInUse;
  /** The error delivered instead of the response, or {@code null}. */
  private ErrorResponse responseRefusal;
  private volatile boolean ended;
  /** Whether the adapter reported that no answer came from the upstream. */
  private boolean upstreamFailed;

  /**
   * @param verdict   what {@link PendingExchange} decided, from the head alone or with the body
   * @param started   when the head was received
   * @param startNanos {@link System#nanoTime()} then
   */
  Exchange(PamEngine engine, RequestHead head, long contentLength, Decider.Verdict verdict, Instant started,
           long startNanos) {
    this.engine = engine;
    this.head = head;
    this.id = engine.ids().next();
    this.started = started;
    this.startNanos = startNanos;

    Decision d = verdict.decision();
    Recorder recorder = engine.recorder();
    // Every exchange is admitted, denied ones too: a recorder that admits one keeps a place for
    // its record. A refusal stops only requests that would go on; a denial stays as it was.
    try {
      recorder.admit();
      admitted = true;
    } catch (IOException | RuntimeException e) {
      log.debug("inferpam: recorder refused exchange {}: {}", id, e.toString());
      if (!(d instanceof Decision.Deny)) d = recordingUnavailable(e);
    }
    Quotas quotas = engine.quotas();
    if (quotas != null && !(d instanceof Decision.Deny)) {
      // Limits before approval: a request over its budget does not bother a reviewer.
      try {
        Quotas.Check check = quotas.admit(verdict.principal(), verdict.operation(), verdict.model(), verdict.body());
        if (check.refusal() != null) d = check.refusal();
        quota = check.admission();
      } catch (RuntimeException e) {
        log.error("inferpam: quota store failed, refusing exchange {}: {}", id, e.getClass().getName());
        d = new Decision.Deny(503, "quota_unavailable", "quota state is unavailable, the request was not forwarded",
            "limits");
      }
    }
    this.request = verdict.request();
    this.principal = verdict.principal();
    this.operation = verdict.operation();
    this.model = verdict.model();
    this.allowRule = verdict.allowRule();
    // An engine that records nothing keeps no copy of the response for a record nobody reads; the
    // usage is still read when limits count tokens.
    this.record = recorder == Recorder.NOOP
        ? RecordBuilder.unrecorded(head, request, contentLength, quota != null)
        : new RecordBuilder(head, request, contentLength, secretHeaders(engine, null), engine.bodies(),
            engine.masker());
    if (d instanceof Decision.RequireApproval required) {
      this.decision = required;
      this.review = new Review(required.rule());
      startReview();
    } else {
      this.review = null;
      settle(d);
    }
  }

  /** The state of one review; guarded by the exchange's one-thread-at-a-time contract. */
  private static final class Review {
    final String rule;
    /** The service's ticket, withdrawn when the caller stops waiting; {@code null} when it gave none. */
    ApprovalService.Ticket ticket;
    /**
     * Completed, never exceptionally, when the review is over: with the service's outcome, or the
     * failure that ended the wait. The first completion wins, so a withdrawal and a decision
     * arriving together cannot mix.
     */
    final CompletableFuture<Object> done = new CompletableFuture<>();
    /** The outcome a reviewer (or the expiry) gave, once settled; recorded. */
    ApprovalService.Outcome outcome;
    boolean settled;

    Review(String rule) {
      this.rule = rule;
    }
  }

  /** Hands the request to the approval service, bounded by the engine's wait. */
  private void startReview() {
    CompletableFuture<ApprovalService.Outcome> f;
    try {
      String digest = RequestDigest.of(principal, request);
      ApprovalService.Ticket t = engine.approvalService().request(principal, request, review.rule, digest);
      if (t == null) throw new IllegalStateException("the approval service gave no ticket");
      review.ticket = t;
      CompletionStage<ApprovalService.Outcome> stage = t.outcome();
      if (stage == null) throw new IllegalStateException("the approval service gave no outcome stage");
      f = stage.toCompletableFuture();
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    Review r = review;
    f.copy().orTimeout(engine.approvalWait().toMillis(), TimeUnit.MILLISECONDS).whenComplete((o, e) ->
        r.done.complete(o != null ? o : (e != null ? e : new IllegalStateException("approval service gave no outcome"))));
  }

  /**
   * Whether the request waits for a reviewer: the decision is {@link Decision.RequireApproval}
   * and {@link #settleReview()} has not made it final yet.
   */
  public boolean awaitingReview() {
    return decision instanceof Decision.RequireApproval;
  }

  /**
   * A stage that completes, never exceptionally, once the review is over (decided, expired,
   * refused by the approval service, withdrawn with {@link #cancelReview()}, or not decided within
   * {@code approval.timeout} plus a grace of at most {@link PamEngine#APPROVAL_GRACE}). Already
   * complete when there
   * is no review. It completes on whatever thread ended the review (a reviewer's request thread,
   * an expiry thread): adapters hand the work that follows to their own threads and then call
   * {@link #settleReview()}.
   */
  public CompletionStage<Void> reviewed() {
    return review == null ? CompletableFuture.completedFuture(null) : review.done.thenApply(result -> null);
  }

  /**
   * The caller stopped waiting (the client disconnected, the call was cancelled, the thread was
   * interrupted): withdraws the request from review, so that {@link #reviewed()} completes and
   * {@link #settleReview()} answers 403 {@code approval_expired}. Does nothing once the review is
   * over or when there is none; a request the reviewer approved at the same moment stays approved.
   */
  public void cancelReview() {
    if (review == null || review.done.isDone()) return;
    withdraw();
    // A service that does not complete the stage on withdrawal still must not keep the caller waiting.
    review.done.complete(new ApprovalService.Outcome(reviewId(), ApprovalService.Status.WITHDRAWN, null,
        WITHDRAWN_REASON, engine.clock().instant()));
  }

  /** Withdraws the request from the approval service, which must not fail the exchange for it. */
  private void withdraw() {
    if (review.ticket == null) return;
    try {
      review.ticket.withdraw();
    } catch (RuntimeException e) {
      log.warn("inferpam: approval service failed to withdraw exchange {}: {}", id, e.getClass().getName());
    }
  }

  /**
   * Once {@link #reviewed()} has completed, makes the decision final on the calling thread and
   * returns it: {@link Decision.Allow} when a reviewer approved (the upstream credential is fetched
   * and, with strict durability, the intent record made durable now, either of which can still
   * turn it into a 503), else a {@link Decision.Deny}: 403 {@code approval_rejected} (with the
   * reviewer and their reason), 403 {@code approval_expired} (no decision in time, or withdrawn),
   * 429 {@code approval_limit} with {@code Retry-After} (too many requests waiting), or 503
   * {@code approval_unavailable} (the approval service failed; fail closed). Idempotent; returns
   * {@link #decision()} when there was no review. Then go on with the adapter contract from
   * step 1.
   *
   * @throws IllegalStateException when the review is not over yet
   */
  public Decision settleReview() {
    if (review == null || review.settled) return decision;
    if (!review.done.isDone()) throw new IllegalStateException("the review is not over yet");
    review.settled = true;
    settle(reviewDecision(review.done.join()));
    return decision;
  }

  private Decision reviewDecision(Object result) {
    String rule = "approval.rules." + review.rule;
    String named = "approval rule \"" + review.rule + "\"";
    if (result instanceof ApprovalService.Outcome o && o.status() != null) {
      review.outcome = o;
      return switch (o.status()) {
        case APPROVED -> new Decision.Allow(allowRule, Decider.ALLOW_OBLIGATIONS);
        case REJECTED -> new Decision.Deny(403, "approval_rejected", "rejected by reviewer "
            + (o.reviewer() == null ? "(unknown)" : o.reviewer()) + " under " + named
            + (o.reason() == null ? "" : ": " + o.reason()), rule);
        case EXPIRED -> new Decision.Deny(403, "approval_expired",
            "no reviewer decided within " + Durations.format(engine.approvalTimeout()) + " under " + named, rule);
        case WITHDRAWN -> new Decision.Deny(403, "approval_expired",
            "the request was withdrawn from review under " + named, rule);
        case CLOSED -> new Decision.Deny(403, "approval_expired",
            "the approval service stopped (shutting down) before a reviewer decided under " + named, rule);
      };
    }
    Throwable t = result instanceof Throwable th ? th : new IllegalStateException("no outcome");
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    Instant now = engine.clock().instant();
    if (t instanceof ApprovalLimitException limit) {
      long seconds = Math.max(1, (limit.retryAfter().toMillis() + 999) / 1000);
      String bound = limit.scope() == ApprovalLimitException.Scope.PRINCIPAL
          ? "approval.max-pending-per-principal" : "approval.max-pending";
      return new Decision.Deny(429, ApprovalLimitException.CODE, limit.getMessage(), bound,
          Map.of("Retry-After", Long.toString(seconds)));
    }
    if (t instanceof CancellationException) {
      // The service's stage was cancelled: the request is out of review, as if withdrawn.
      review.outcome = new ApprovalService.Outcome(reviewId(), ApprovalService.Status.WITHDRAWN, null,
          WITHDRAWN_REASON, now);
      return new Decision.Deny(403, "approval_expired", "the request was withdrawn from review under " + named, rule);
    }
    if (t instanceof TimeoutException) {
      // The engine stops waiting: the review must not stay open (and, approved later, grant).
      withdraw();
      review.outcome = new ApprovalService.Outcome(reviewId(), ApprovalService.Status.EXPIRED, null,
          "the approval service gave no outcome in time", now);
      return new Decision.Deny(403, "approval_expired", "no reviewer decided within "
          + Durations.format(engine.approvalTimeout()) + " under " + named, rule);
    }
    log.error("inferpam: approval service failed for exchange {}, refusing: {}", id, t.getClass().getName());
    return new Decision.Deny(503, "approval_unavailable",
        "the approval service is unavailable, the request was not forwarded", "approval");
  }

  /** The reason recorded for a request withdrawn from review. */
  private static final String WITHDRAWN_REASON = "withdrawn: the caller stopped waiting";
  /** The reason recorded for a review the approval service ended by closing. */
  private static final String CLOSED_REASON = "approval service closed";

  /** The id of the review the approval service opened for this request, when it gave one. */
  private String reviewId() {
    ApprovalService.Ticket t = review.ticket;
    if (t == null) return null;
    try {
      return t.approvalId();
    } catch (RuntimeException e) {
      return null;
    }
  }

  /**
   * Makes {@code d} the final decision: an allowed request gets its upstream credential and, with
   * strict durability, its durable intent record (either failing turns it into a 503).
   */
  private void settle(Decision d) {
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
    if (cred != null) record.redactHeaders(secretHeaders(engine, cred));
    scrubber = credentials(head, cred);
    record.scrubCredentials(scrubber);
    if (d instanceof Decision.Allow && engine.writeIntents()) {
      // Strict durability: nothing goes upstream before its intent is durable.
      try {
        engine.recorder().intent(record.intent(id, started, principal, operation, model));
      } catch (IOException | RuntimeException e) {
        log.debug("inferpam: intent of exchange {} not stored: {}", id, e.toString());
        d = recordingUnavailable(e);
        cred = null;
      }
    }
    this.credential = cred;
    this.masksResponse = d instanceof Decision.Allow && engine.masker() != Masker.IDENTITY
        && !exempt(engine, principal);
    this.decision = d;
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

  /** Whether {@code principal} is in one of {@code masking.exempt-groups}. */
  private static boolean exempt(PamEngine engine, Principal principal) {
    Policy.Masking masking = engine.policy().masking();
    if (masking == null || principal == null) return false;
    for (String group : masking.exemptGroups()) {
      if (principal.inGroup(group)) return true;
    }
    return false;
  }

  /**
   * The scrubber of the caller's credential header values and of the injected upstream
   * credential, or {@code null} when there is none to look for.
   */
  private static CredentialScrubber credentials(RequestHead head, Credential injected) {
    List<String> values = new ArrayList<>();
    for (String name : CALLER_CREDENTIAL_HEADERS) {
      List<String> given = head.headers().get(name);
      if (given != null) values.addAll(given);
    }
    if (injected != null) values.add(injected.value());
    return values.isEmpty() ? null : CredentialScrubber.of(values);
  }

  /** Headers that carry the upstream credential: the configured one and the one being injected. */
  private static Set<String> secretHeaders(PamEngine engine, Credential injected) {
    Set<String> out = new HashSet<>();
    Policy.CredentialSource configured = engine.policy().upstream().credential();
    if (configured != null && configured.header() != null) out.add(configured.header().toLowerCase(Locale.ROOT));
    if (injected != null) out.add(injected.header().toLowerCase(Locale.ROOT));
    return out;
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

  /**
   * The canonical request, or {@code null} when it was refused before its body was read (path,
   * declared length, identity) or while it was read (size, time).
   */
  public InferenceRequest request() {
    return request;
  }

  /**
   * The request body as read, with its content codings undone (empty when refused before
   * reading); forward exactly these bytes.
   */
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

  /**
   * Lower-case names of the caller's credential headers.
   *
   * @deprecated not all an adapter must remove: a decoded body also drops its coding and length;
   *     use {@link #requestHeadersToRemove()}
   */
  @Deprecated
  public Set<String> callerCredentialHeaders() {
    return CALLER_CREDENTIAL_HEADERS;
  }

  /**
   * Lower-case names of the request headers not to forward: the caller's credential headers and,
   * when the engine decoded a compressed request body ({@link #body()} is then the decoded body,
   * which is what was checked), {@code Content-Encoding} and {@code Content-Length}: forward
   * {@link #body()} without a coding and with its own length.
   */
  public Set<String> requestHeadersToRemove() {
    return GovernedBody.decoded(head.headers(), request) ? DECODED_BODY_HEADERS : CALLER_CREDENTIAL_HEADERS;
  }

  private static final Set<String> DECODED_BODY_HEADERS =
      Set.of("authorization", "x-api-key", "proxy-authorization", "content-encoding", "content-length");

  /** The credential to inject on an allowed request, or {@code null} when none is configured. */
  public Credential upstreamCredential() {
    return credential;
  }

  /** The answer to write for a denial, or {@code null} when allowed. */
  public ErrorResponse error() {
    if (!(decision instanceof Decision.Deny deny)) return null;
    return ErrorBodies.of(deny, id);
  }

  /**
   * Whether the response of this exchange is masked for the client: it was allowed, the engine
   * has a masker, and the principal is in none of {@code masking.exempt-groups}. Known from the
   * start, so an adapter can forward the request without {@code Accept-Encoding} (a compressed
   * response cannot be masked) and hold back a {@code Content-Length} before the response's
   * content type is known. Whether a particular body is masked is {@link #responseMasking()}.
   */
  public boolean masksResponse() {
    return masksResponse;
  }

  /**
   * Whether the response may be rewritten on its way to the caller: it is masked
   * ({@link #masksResponse()}), or this allowed exchange has credentials to keep out of it. Known
   * from the start, so an adapter can forward the request without {@code Accept-Encoding} (an
   * encoded response cannot be read, and is refused).
   */
  public boolean rewritesResponse() {
    return masksResponse || (decision instanceof Decision.Allow && scrubber != null);
  }

  /**
   * A response header as it may reach the caller: {@code value} with this exchange's credentials
   * replaced ({@code value} itself when it holds none, always when there are none), or
   * {@code null} when the header must be dropped because its name holds one. Call for every
   * header passed to the caller, the upstream's and the application's.
   */
  public String responseHeader(String name, String value) {
    CredentialScrubber s = scrubber;
    if (s == null) return value;
    if (s.holds(name)) return null;
    return s.scrub(value);
  }

  /**
   * Reports the response status line and headers (call once, before any body bytes; later calls,
   * and calls after {@link #end}, are ignored). How the body is then delivered is
   * {@link #responseRefusal()} and {@link #responseMasking()}.
   *
   * @param headers the response headers (names in any case), or {@code null} for none
   */
  public void responseStarted(int status, Map<String, List<String>> headers) {
    if (responseReported || ended) return;
    responseReported = true;
    Map<String, List<String>> normalized = headers == null ? Map.of() : InferenceRequest.normalize(headers);
    String type = first(normalized.get("content-type"));
    record.responseStarted(status, type);
    responseStatus = status;
    responseType = type;
    responseEncoding = encoding(normalized.get("content-encoding"));
  }

  /**
   * Decides, once, how the response body goes out: as it is, masked, or refused. Done when an
   * adapter first asks ({@link #responseRefusal()}, {@link #responseMasking()}), not when the
   * response starts, so an adapter that does not mask opens no masker session.
   */
  private void prepareDelivery() {
    if (!responseReported) throw new IllegalStateException("responseStarted was not called");
    if (deliveryPrepared) return;
    deliveryPrepared = true;
    if (!rewritesResponse() || !promisesBody(responseStatus)) return;
    BodyMasker body = null;
    if (masksResponse) {
      try {
        body = BodyMasker.open(engine.masker(), responseType);
      } catch (RuntimeException e) {
        log.error("inferpam: masker failed to start for exchange {}, refusing the response: {}", id,
            e.getClass().getName());
        refuseResponse("the response could not be masked");
        return;
      }
    }
    // A binary type is not masked, but still scanned for credentials.
    if (body == null && scrubber == null) return;
    if (responseEncoding != null) {
      log.warn("inferpam: exchange {}: upstream answered {} with Content-Encoding {}, which cannot be masked;"
          + " refused 502 masking_unavailable", id, responseStatus, responseEncoding);
      refuseResponse("the response is encoded (Content-Encoding: " + responseEncoding + ") and cannot be masked");
      return;
    }
    masking = new ResponseMasking(body, scrubber == null ? null : scrubber.open(), id);
  }

  /** The engine answers the response itself; the record keeps that answer as the response. */
  private void refuseResponse(String message) {
    responseRefusal = ErrorResponse.of(502, "masking_unavailable", message, id);
    record.ownResponse(responseRefusal.status(), responseRefusal.body());
  }

  /** A response to HEAD, 1xx, 204 and 304 has no body, whatever its headers say. */
  private boolean promisesBody(int status) {
    return !"HEAD".equalsIgnoreCase(head.method()) && status >= 200 && status != 204 && status != 304;
  }

  /**
   * The first content coding other than {@code identity} in {@code values}, as it can be shown in
   * an error message (an odd value is shown as {@code unknown}); {@code null} when there is none.
   */
  private static String encoding(List<String> values) {
    if (values == null) return null;
    for (String value : values) {
      if (value == null) continue;
      for (String token : value.split(",")) {
        String t = token.strip();
        if (t.isEmpty() || t.equalsIgnoreCase("identity")) continue;
        return TOKEN.matcher(t).matches() ? t.toLowerCase(Locale.ROOT) : "unknown";
      }
    }
    return null;
  }

  private static String first(List<String> values) {
    return values == null || values.isEmpty() ? null : values.get(0);
  }

  /**
   * The error to deliver instead of the response, or {@code null} when the response goes on.
   * Set when the response must be masked but cannot be: it arrived with a
   * {@code Content-Encoding} other than {@code identity} (502 {@code masking_unavailable}, whose
   * message names the encoding), or the masker failed to start. The adapter delivers it in
   * place of the upstream's status, headers and body, which it discards; the record already holds
   * it as the response, and {@link #responseBytes} ignores anything reported after it.
   *
   * @throws IllegalStateException before {@link #responseStarted}
   */
  public ErrorResponse responseRefusal() {
    prepareDelivery();
    return responseRefusal;
  }

  /**
   * How to mask the response body for the client (and replace this exchange's credentials in
   * it), or {@code null} when it is delivered as it is: nothing is rewritten
   * ({@link #rewritesResponse()} is false), the content type is not one that is masked (images,
   * audio, binary) and there are no credentials to replace, the response has no body, or it was
   * refused ({@link #responseRefusal()}). Taking it commits the adapter to deliver, and report with
   * {@link #responseBytes}, only what it returns: the record then stores those bytes as they are
   * and takes {@code response.masked} from its counts. The same instance is returned on every
   * call.
   *
   * @throws IllegalStateException before {@link #responseStarted}
   */
  public ResponseMasking responseMasking() {
    prepareDelivery();
    if (masking != null) maskingInUse = true;
    return masking;
  }

  /**
   * Reports bytes as they are delivered to the client (masked ones when masking applies); ignored
   * after {@link #end}, when the record is already handed over.
   */
  public void responseBytes(byte[] b, int off, int len) {
    // After the end the record is the recorder's; with a refusal it holds what was sent instead.
    if (ended || responseRefusal != null) return;
    record.responseBytes(b, off, len);
  }

  /**
   * Reports that the forwarded request got no answer from the upstream (unreachable, refused, no
   * response within the timeouts): whatever status the adapter then answers with (e.g. 502), the
   * request is not charged tokens against the policy's {@code limits}. Call before {@link #end}.
   */
  public void upstreamFailed() {
    upstreamFailed = true;
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
    if (review != null && !review.settled) {
      // The adapter gave up on the review (or never waited): withdraw it, so the record says so.
      // Nothing was forwarded, so even an approval that arrived meanwhile ends as withdrawn.
      cancelReview();
      review.settled = true;
      Decision d = reviewDecision(review.done.join());
      if (d instanceof Decision.Allow) {
        d = new Decision.Deny(403, "approval_expired", "the request was withdrawn from review under approval rule \""
            + review.rule + "\"", "approval.rules." + review.rule);
      }
      settle(d);
    }
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
    if (maskingInUse) {
      if (masking.masks()) record.maskedOnDelivery(masking.counts());
      record.credentialsScrubbed(masking.credentialsFound());
    }
    Map<String, Long> left = Map.of();
    if (quota != null) {
      // Tokens count only for what reached the upstream: an allowed request whose response began.
      boolean forwarded = decision instanceof Decision.Allow && responseReported && !upstreamFailed;
      left = engine.quotas().charge(quota, forwarded, record.usage(), body().length, record.responseBytes());
    }
    if (recorder == Recorder.NOOP) return; // nothing to build a record for
    try {
      // A recorder with a writer thread builds the record (and masks the request body for it)
      // there, off the request's path; nothing reported after the end reaches it.
      long size = Math.min(body().length, RecordBuilder.MAX_CAPTURE)
          + Math.min(record.responseBytes(), RecordBuilder.MAX_CAPTURE);
      recorder.recordLater(PendingRecord.of(id, size, record.buildLater(id, started, durationMs, principal,
          operation, model, decision, complete, reviewRecord(), left)));
    } catch (IOException | RuntimeException e) {
      log.error("inferpam: recorder failed for exchange {}: {}", id, e.toString());
    }
  }

  /**
   * The record's {@code approval} section: present when a review happened. Its {@code outcome}
   * is {@code approved}, {@code rejected} or {@code expired}: a withdrawn request and one the
   * service ended by closing are recorded as expired, with their reason.
   */
  private SessionRecord.Approval reviewRecord() {
    if (review == null || review.outcome == null) return null;
    ApprovalService.Outcome o = review.outcome;
    String outcome;
    String reason = o.reason();
    switch (o.status()) {
      case APPROVED -> outcome = "approved";
      case REJECTED -> outcome = "rejected";
      case WITHDRAWN -> {
        outcome = "expired";
        if (reason == null) reason = WITHDRAWN_REASON;
      }
      case CLOSED -> {
        outcome = "expired";
        if (reason == null) reason = CLOSED_REASON;
      }
      default -> outcome = "expired";
    }
    return new SessionRecord.Approval(o.approvalId(), review.rule, o.reviewer(), o.decided(), outcome, reason);
  }

  @Override
  public String toString() {
    return "Exchange[" + id + " " + head.method() + " " + head.rawPath() + " -> "
        + decision.getClass().getSimpleName() + "]";
  }
}
