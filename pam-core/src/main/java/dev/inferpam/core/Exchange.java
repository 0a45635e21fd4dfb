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
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.LogLimit;
import dev.inferpam.core.internal.approval.RequestDigest;
import dev.inferpam.core.internal.http.GovernedBody;
import dev.inferpam.core.internal.masking.BodyMasker;
import dev.inferpam.core.internal.masking.CredentialScrubber;
import dev.inferpam.core.internal.policy.Decider;
import dev.inferpam.core.internal.policy.Durations;
import dev.inferpam.core.internal.quotas.Quotas;
import dev.inferpam.core.internal.recording.RecordBuilder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's way through the engine, from decision to record: the state behind the
 * {@link Verdict} an adapter gets ({@link PamEngine#begin}, {@link PendingExchange}). The decision
 * is made when it is created.
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
 * and body (whatever the content type, streamed ones included, also with no {@code masking}
 * section and for exempt principals), and in the request as recorded (header values, path, body).
 * A response that must be scanned for them but arrives encoded is refused like one that must be
 * masked. An exchange without a credential of at least {@value CredentialScrubber#MIN_LENGTH}
 * chars pays nothing for this.
 *
 * <p><b>Recording.</b> When the exchange is created the recorder admits it
 * ({@link dev.inferpam.api.Recorder#admit()}) and, with {@code recording.durability: strict}, an
 * allowed request's {@code intent} record is stored durably before the request is allowed; if
 * either fails, a request that would have been allowed is denied 503 {@code recording_unavailable}
 * (rule {@code recording}) and nothing may be forwarded, while a request denied anyway keeps its
 * own denial. The response is captured as the adapter reports it, that is as delivered (bodies
 * per {@code recording.bodies}, at most {@link RecordBuilder#MAX_CAPTURE} bytes of each kept,
 * sizes exact, token usage read on the way) and the end hands over exactly one {@code exchange}
 * record, denials included (their response is the error that was sent). A response masked for
 * the client is stored as delivered, with the counts of that masking in {@code response.masked};
 * with {@code bodies: masked}, a response delivered unmasked (an exempt principal) is masked for
 * the record when it is built.
 *
 * <p><b>Thread-safety:</b> an exchange belongs to one request; it is used from different threads
 * one after another (as async servlets and OkHttp do), not concurrently. A review ends on another
 * thread; what it settles is published through {@link Review#result}. The end is idempotent.
 */
final class Exchange {
  private static final Logger log = LoggerFactory.getLogger(Exchange.class);

  /**
   * Lines every request would write while the quota store or the recorder is away: one every 10
   * s, per JVM, saying how many were left out (the failures meter counts each).
   */
  private static final LogLimit QUOTAS_DOWN_LOG = new LogLimit(java.time.Duration.ofSeconds(10));

  private static final LogLimit RECORD_DROPPED_LOG = new LogLimit(java.time.Duration.ofSeconds(10));

  /** An HTTP token (RFC 9110), short enough to be named in an error message. */
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}");

  private static final Set<String> CREDENTIALS = Forward.CALLER_CREDENTIAL_HEADERS;
  private static final Set<String> CREDENTIALS_AND_CODING =
      Set.of(
          "authorization",
          "x-api-key",
          "proxy-authorization",
          "content-encoding",
          "content-length");
  private static final Set<String> CREDENTIALS_REWRITTEN =
      Set.of("authorization", "x-api-key", "proxy-authorization", "accept-encoding");
  private static final Set<String> CREDENTIALS_AND_CODING_REWRITTEN =
      Set.of(
          "authorization",
          "x-api-key",
          "proxy-authorization",
          "content-encoding",
          "content-length",
          "accept-encoding");

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

  /** Whether body bytes were left unread: a denial then closes the connection. */
  private final boolean bodyLeftUnread;

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

  private Forwarded forward;
  private boolean responseReported;
  private ResponsePlan plan;

  /** The masking of this response's body, once started; {@code null} when it passes as it is. */
  private ExchangeMasking masking;

  /** Whether the adapter took {@link #masking}, so that the delivered bytes are masked ones. */
  private boolean maskingInUse;

  /** The error delivered instead of the response, or {@code null}. */
  private ErrorResponse responseRefusal;

  private volatile boolean ended;

  /** Whether the adapter reported that no answer came from the upstream. */
  private boolean upstreamFailed;

  private final ExchangeListener listener;
  private ExchangeInfo info;

  /**
   * @param verdict        what {@link PendingExchange} decided, from the head alone or with the body
   * @param started        when the head was received
   * @param startNanos     {@link System#nanoTime()} then
   * @param bodyLeftUnread whether body bytes are left unread
   */
  Exchange(
      PamEngine engine,
      RequestHead head,
      long contentLength,
      Decider.Verdict verdict,
      Instant started,
      long startNanos,
      boolean bodyLeftUnread) {
    this.engine = engine;
    this.head = head;
    this.id = engine.ids().next();
    this.started = started;
    this.startNanos = startNanos;
    this.bodyLeftUnread = bodyLeftUnread;
    this.listener = engine.listener();

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
        Quotas.Check check =
            quotas.admit(verdict.principal(), verdict.operation(), verdict.model(), verdict.body());
        if (check.refusal() != null) d = check.refusal();
        quota = check.admission();
      } catch (RuntimeException e) {
        if (engine.quotasAllowWhenDown()) {
          // state.redis.when-unavailable: allow: the request goes on, not counted
          long skipped = QUOTAS_DOWN_LOG.admit();
          if (skipped >= 0) {
            log.warn(
                "inferpam: quota store failed, exchange {} admitted uncounted"
                    + " (state.redis.when-unavailable: allow): {}{}",
                id,
                e.getClass().getName(),
                LogLimit.since(skipped));
          }
          onFailed(ExchangeListener.Failure.QUOTAS);
        } else {
          long skipped = QUOTAS_DOWN_LOG.admit();
          if (skipped >= 0) {
            log.error(
                "inferpam: quota store failed, refusing exchange {}: {}{}",
                id,
                e.getClass().getName(),
                LogLimit.since(skipped));
          }
          d =
              new Decision.Deny(
                  503,
                  "quota_unavailable",
                  "quota state is unavailable, the request was not forwarded",
                  "limits");
        }
      }
    }
    this.request = verdict.request();
    this.principal = verdict.principal();
    this.operation = verdict.operation();
    this.model = verdict.model();
    this.allowRule = verdict.allowRule();
    // An engine that records nothing keeps no copy of the response for a record nobody reads; the
    // usage is still read when limits count tokens.
    this.record =
        recorder == Recorder.NOOP
            ? RecordBuilder.unrecorded(head, request, contentLength, quota != null)
            : new RecordBuilder(
                head,
                request,
                contentLength,
                secretHeaders(engine, null),
                engine.bodies(),
                engine.masker());
    if (d instanceof Decision.RequireApproval required) {
      this.decision = required;
      this.review = new Review(required.rule());
      onDecided(required);
      startReview();
    } else {
      this.review = null;
      settle(d);
    }
  }

  /** What the adapter gets now: the verdict on the current decision. */
  Verdict verdict() {
    Decision d = decision;
    if (d instanceof Decision.Allow allow) return new AllowedView(allow);
    if (d instanceof Decision.Deny deny) return new DeniedView(deny);
    return review.held;
  }

  /** The state of one review. */
  private final class Review {
    final String rule;

    /** The service's ticket, withdrawn when the caller stops waiting; {@code null} when it gave none. */
    ApprovalService.Ticket ticket;

    /**
     * Completed, never exceptionally, when the review is over: with the service's outcome, or the
     * failure that ended the wait. The first completion wins, so a withdrawal and a decision
     * arriving together cannot mix.
     */
    final CompletableFuture<Object> done = new CompletableFuture<>();

    /** Claimed by the one thread that makes the decision final. */
    final AtomicBoolean settling = new AtomicBoolean();

    /** The final verdict, completed by the thread that claimed {@link #settling}. */
    final CompletableFuture<Verdict> result = new CompletableFuture<>();

    /** {@link #result} as adapters get it: they cannot complete it. */
    final CompletionStage<Verdict> resultView = result.minimalCompletionStage();

    /** The outcome a reviewer (or the expiry) gave, once settled; recorded. */
    ApprovalService.Outcome outcome;

    final HeldView held;

    Review(String rule) {
      this.rule = rule;
      this.held = new HeldView(new Decision.RequireApproval(rule));
    }
  }

  /** Hands the request to the approval service, bounded by the engine's wait. */
  private void startReview() {
    CompletableFuture<ApprovalService.Outcome> f;
    try {
      String digest = RequestDigest.of(principal, request);
      ApprovalService.Ticket t =
          engine.approvalService().request(principal, request, review.rule, digest);
      if (t == null) throw new IllegalStateException("the approval service gave no ticket");
      review.ticket = t;
      CompletionStage<ApprovalService.Outcome> stage = t.outcome();
      if (stage == null)
        throw new IllegalStateException("the approval service gave no outcome stage");
      f = stage.toCompletableFuture();
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    Review r = review;
    f.copy()
        .orTimeout(engine.approvalWait().toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete(
            (o, e) ->
                r.done.complete(
                    o != null
                        ? o
                        : (e != null
                            ? e
                            : new IllegalStateException("approval service gave no outcome"))));
  }

  /**
   * The caller stopped waiting (the client disconnected, the call was cancelled, the thread was
   * interrupted): withdraws the request from review, so that the review ends and settles as 403
   * {@code approval_expired}. Does nothing once the review is over; a request the reviewer
   * approved at the same moment stays approved (see {@link Held#cancel()} for what is made of it).
   */
  private void cancelReview() {
    if (review == null || review.done.isDone()) return;
    withdrawTicket();
    // A service that does not complete the stage on withdrawal still must not keep the caller
    // waiting.
    review.done.complete(
        new ApprovalService.Outcome(
            reviewId(),
            ApprovalService.Status.WITHDRAWN,
            null,
            WITHDRAWN_REASON,
            engine.clock().instant()));
  }

  /** Withdraws the request from the approval service, which must not fail the exchange for it. */
  private void withdrawTicket() {
    if (review.ticket == null) return;
    try {
      review.ticket.withdraw();
    } catch (RuntimeException e) {
      log.warn(
          "inferpam: approval service failed to withdraw exchange {}: {}",
          id,
          e.getClass().getName());
    }
  }

  /**
   * Once the review is over, makes the decision final on the calling thread (the first to ask;
   * others wait for it) and returns the verdict: {@link Verdict.Allowed} when a reviewer approved
   * (the upstream credential is fetched and, with strict durability, the intent record made
   * durable now, either of which can still turn it into a 503), else a {@link Verdict.Denied}: 403
   * {@code approval_rejected} (with the reviewer and their reason), 403 {@code approval_expired}
   * (no decision in time, or withdrawn), 429 {@code approval_limit} with {@code Retry-After} (too
   * many requests waiting), or 503 {@code approval_unavailable} (the approval service failed; fail
   * closed).
   */
  private Verdict settleReview() {
    if (!review.done.isDone()) throw new IllegalStateException("the review is not over yet");
    if (!review.settling.compareAndSet(false, true)) return review.result.join();
    try {
      settle(reviewDecision(review.done.join()));
    } catch (RuntimeException e) {
      // A bug; fail closed rather than leave the caller without an answer.
      log.error(
          "inferpam: review of exchange {} could not be settled, refusing: {}",
          id,
          e.getClass().getName());
      log.debug("inferpam: review settlement failure", e);
      settle(new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"));
    } finally {
      if (decision instanceof Decision.RequireApproval) {
        decision = new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine");
      }
      review.result.complete(verdict());
    }
    return review.result.join();
  }

  private Decision reviewDecision(Object result) {
    String rule = "approval.rules." + review.rule;
    String named = "approval rule \"" + review.rule + "\"";
    if (result instanceof ApprovalService.Outcome o && o.status() != null) {
      review.outcome = o;
      return switch (o.status()) {
        case APPROVED -> new Decision.Allow(allowRule, Decider.ALLOW_OBLIGATIONS);
        case REJECTED ->
            new Decision.Deny(
                403,
                "approval_rejected",
                "rejected by reviewer "
                    + (o.reviewer() == null ? "(unknown)" : o.reviewer())
                    + " under "
                    + named
                    + (o.reason() == null ? "" : ": " + o.reason()),
                rule);
        case EXPIRED ->
            new Decision.Deny(
                403,
                "approval_expired",
                "no reviewer decided within "
                    + Durations.format(engine.approvalTimeout())
                    + " under "
                    + named,
                rule);
        case WITHDRAWN ->
            new Decision.Deny(
                403,
                "approval_expired",
                "the request was withdrawn from review under " + named,
                rule);
        case CLOSED ->
            new Decision.Deny(
                403,
                "approval_expired",
                "the approval service stopped (shutting down) before a reviewer decided under "
                    + named,
                rule);
      };
    }
    Throwable t = result instanceof Throwable th ? th : new IllegalStateException("no outcome");
    while ((t instanceof CompletionException || t instanceof ExecutionException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    Instant now = engine.clock().instant();
    if (t instanceof ApprovalLimitException limit) {
      long seconds = Math.max(1, (limit.retryAfter().toMillis() + 999) / 1000);
      String bound =
          limit.scope() == ApprovalLimitException.Scope.PRINCIPAL
              ? "approval.max-pending-per-principal"
              : "approval.max-pending";
      return new Decision.Deny(
          429,
          ApprovalLimitException.CODE,
          limit.getMessage(),
          bound,
          Map.of("Retry-After", Long.toString(seconds)));
    }
    if (t instanceof CancellationException) {
      // The service's stage was cancelled: the request is out of review, as if withdrawn.
      review.outcome =
          new ApprovalService.Outcome(
              reviewId(), ApprovalService.Status.WITHDRAWN, null, WITHDRAWN_REASON, now);
      return withdrawnDenial();
    }
    if (t instanceof TimeoutException) {
      // The engine stops waiting: the review must not stay open (and, approved later, grant).
      withdrawTicket();
      review.outcome =
          new ApprovalService.Outcome(
              reviewId(),
              ApprovalService.Status.EXPIRED,
              null,
              "the approval service gave no outcome in time",
              now);
      return new Decision.Deny(
          403,
          "approval_expired",
          "no reviewer decided within "
              + Durations.format(engine.approvalTimeout())
              + " under "
              + named,
          rule);
    }
    log.error(
        "inferpam: approval service failed for exchange {}, refusing: {}",
        id,
        t.getClass().getName());
    return new Decision.Deny(
        503,
        "approval_unavailable",
        "the approval service is unavailable, the request was not forwarded",
        "approval");
  }

  private Decision.Deny withdrawnDenial() {
    return new Decision.Deny(
        403,
        "approval_expired",
        "the request was withdrawn from review under approval rule \"" + review.rule + "\"",
        "approval.rules." + review.rule);
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
    if (d instanceof Decision.Allow && !enterFlight()) d = overloaded();
    if (d instanceof Decision.Allow) {
      try {
        cred = engine.credentialProvider().current();
        engine.credentialAvailable();
      } catch (CredentialUnavailableException | RuntimeException e) {
        engine.credentialUnavailable(e.getMessage());
        d =
            new Decision.Deny(
                503,
                "upstream_credential_unavailable",
                "the upstream credential is not available",
                "upstream.credential");
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
    this.masksResponse =
        d instanceof Decision.Allow
            && engine.masker() != Masker.IDENTITY
            && !exempt(engine, principal);
    this.decision = d;
    if (!(d instanceof Decision.Allow)) leaveFlight();
    if (d instanceof Decision.Deny deny) {
      ErrorResponse err = engine.errorBodies().error(deny, id, head.rawPath());
      record.ownResponse(err.status(), err.body());
    }
    if (!(withdrawing && d instanceof Decision.Allow)) onDecided(d);
  }

  private static Decision.Deny recordingUnavailable(Exception e) {
    // The reason (a file path, an I/O error) is for operators, not callers: the recorder logs it
    // once when it fails; here it is only a debug line per refused request.
    log.debug("inferpam: recorder refused an exchange: {}", e.toString());
    return new Decision.Deny(
        503,
        "recording_unavailable",
        "recording is unavailable, the request was not forwarded",
        "recording");
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
    for (String name : CREDENTIALS) {
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
    if (configured != null && configured.header() != null)
      out.add(configured.header().toLowerCase(Locale.ROOT));
    if (injected != null) out.add(injected.header().toLowerCase(Locale.ROOT));
    return out;
  }

  /** The request body as read, with its content codings undone (empty when refused before reading). */
  private byte[] body() {
    return request == null ? new byte[0] : request.body();
  }

  /**
   * Whether the response may be rewritten on its way to the caller: it is masked, or this allowed
   * exchange has credentials to keep out of it. Known from the start, so that the request goes out
   * without {@code Accept-Encoding} (an encoded response cannot be read, and is refused).
   */
  private boolean rewritesResponse() {
    return masksResponse || (decision instanceof Decision.Allow && scrubber != null);
  }

  /** The request headers not to forward; see {@link Forward#removeHeaders()}. */
  private Set<String> headersToRemove() {
    boolean decoded = GovernedBody.decoded(head.headers(), request);
    if (rewritesResponse())
      return decoded ? CREDENTIALS_AND_CODING_REWRITTEN : CREDENTIALS_REWRITTEN;
    return decoded ? CREDENTIALS_AND_CODING : CREDENTIALS;
  }

  private String responseHeader(String name, String value) {
    CredentialScrubber s = scrubber;
    if (s == null) return value;
    if (s.holds(name)) return null;
    return s.scrub(value);
  }

  /** Reports the response once and decides how it is delivered; see {@link Verdict.Allowed#respond}. */
  private ResponsePlan respond(int status, Map<String, List<String>> headers) {
    if (plan != null) return plan;
    if (ended) return plan = new RelayPlan(); // nothing reported after the end reaches the record
    responseReported = true;
    Map<String, List<String>> normalized =
        headers == null ? Map.of() : InferenceRequest.normalize(headers);
    String type = first(normalized.get("content-type"));
    record.responseStarted(status, type);
    onFirstByte(status);
    prepareDelivery(status, type, encoding(normalized.get("content-encoding")));
    return plan = responseRefusal != null ? new RefusedPlan(responseRefusal) : new RelayPlan();
  }

  /** Decides, once, how the response body goes out: as it is, masked, or refused. */
  private void prepareDelivery(int status, String type, String encoding) {
    if (!rewritesResponse() || !promisesBody(status)) return;
    BodyMasker body = null;
    if (masksResponse) {
      try {
        body = BodyMasker.open(engine.masker(), type);
      } catch (RuntimeException e) {
        log.error(
            "inferpam: masker failed to start for exchange {}, refusing the response: {}",
            id,
            e.getClass().getName());
        refuseResponse("the response could not be masked");
        return;
      }
    }
    // A binary type is not masked, but still scanned for credentials.
    if (body == null && scrubber == null) return;
    if (encoding != null) {
      log.warn(
          "inferpam: exchange {}: upstream answered {} with Content-Encoding {}, which cannot be masked;"
              + " refused 502 masking_unavailable",
          id,
          status,
          encoding);
      refuseResponse(
          "the response is encoded (Content-Encoding: " + encoding + ") and cannot be masked");
      return;
    }
    masking =
        new ExchangeMasking(
            body, scrubber == null ? null : scrubber.open(), id, this::onMaskingFailed);
  }

  /** The engine answers the response itself; the record keeps that answer as the response. */
  private void refuseResponse(String message) {
    responseRefusal =
        engine
            .errorBodies()
            .error(
                new Decision.Deny(502, "masking_unavailable", message, "masking_unavailable"),
                id,
                head.rawPath());
    record.ownResponse(responseRefusal.status(), responseRefusal.body());
  }

  /** A response to HEAD, 1xx, 204 and 304 has no body, whatever its headers say. */
  private boolean promisesBody(int status) {
    return !"HEAD".equalsIgnoreCase(head.method())
        && status >= 200
        && status != 204
        && status != 304;
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

  private void delivered(byte[] b, int off, int len) {
    // After the end the record is the recorder's; with a refusal it holds what was sent instead.
    if (ended || responseRefusal != null) return;
    record.responseBytes(b, off, len);
    keepTail(b, off, len);
  }

  /** The terminal event of an OpenAI-style stream; nothing follows it but the end of the body. */
  private static final byte[] DONE_EVENT = "data: [DONE]".getBytes(StandardCharsets.US_ASCII);

  /** The last bytes delivered (at most {@link #TAIL} of them), oldest first. */
  private static final int TAIL = 24;

  private byte[] tail;
  private int tailLen;

  private void keepTail(byte[] b, int off, int len) {
    if (len <= 0) return;
    if (tail == null) tail = new byte[TAIL];
    if (len >= TAIL) {
      System.arraycopy(b, off + len - TAIL, tail, 0, TAIL);
      tailLen = TAIL;
      return;
    }
    int keep = Math.min(tailLen, TAIL - len);
    System.arraycopy(tail, tailLen - keep, tail, 0, keep);
    System.arraycopy(b, off, tail, keep, len);
    tailLen = keep + len;
  }

  /**
   * Whether what reached the client ends with a stream's terminal event, {@code data: [DONE]} and
   * the blank line that ends it: the client has all the model sends even when it stops reading
   * there, before the upstream's end of body (SDKs cancel a stream once they read {@code [DONE]}).
   */
  private boolean deliveredTerminalEvent() {
    if (tail == null) return false;
    int end = tailLen;
    int breaks = 0;
    while (end > 0 && (tail[end - 1] == '\n' || tail[end - 1] == '\r')) {
      if (tail[end - 1] == '\n') breaks++;
      end--;
    }
    if (breaks < 2 || end < DONE_EVENT.length) return false;
    return java.util.Arrays.equals(
        tail, end - DONE_EVENT.length, end, DONE_EVENT, 0, DONE_EVENT.length);
  }

  /**
   * Ends the exchange and hands its record to the recorder. Idempotent. An exchange the recorder
   * refused to admit at the start is offered once more; if it is still refused, its record is
   * dropped with a warning (never waited for).
   *
   * @param complete false when the upstream or the client broke off
   */
  private void end(boolean complete) {
    if (ended) return;
    if (review != null && !review.result.isDone()) {
      // Not reached through the verdicts (a held exchange ends by cancel()), but should it be:
      // withdraw the review, so the record says so.
      withdraw();
    }
    ended = true;
    leaveFlight();
    if (!complete && deliveredTerminalEvent()) complete = true;
    try {
      handOver(complete);
    } finally {
      onEnded(complete);
    }
  }

  /** Whether this exchange holds a place in flight ({@link PamEngine#enterFlight()}). */
  private final java.util.concurrent.atomic.AtomicBoolean inFlight =
      new java.util.concurrent.atomic.AtomicBoolean();

  private boolean enterFlight() {
    if (inFlight.get()) return true;
    if (!engine.enterFlight()) return false;
    inFlight.set(true);
    return true;
  }

  /** Gives the place back, once. */
  private void leaveFlight() {
    if (inFlight.compareAndSet(true, false)) engine.leaveFlight();
  }

  /** {@code request.max-in-flight} exchanges are in flight: 503 {@code overloaded}, retry in 1 s. */
  private Decision.Deny overloaded() {
    log.debug("inferpam: exchange {} refused: request.max-in-flight reached", id);
    return new Decision.Deny(
        503,
        "overloaded",
        "too many requests in flight; retry later",
        "request.max-in-flight",
        Map.of("Retry-After", "1"));
  }

  /**
   * Withdraws the review and settles it; nothing was forwarded, so even an approval that arrived
   * meanwhile ends as withdrawn.
   */
  private void withdraw() {
    cancelReview();
    // An approval that lands as the caller gives up is never used: the listener hears only the
    // withdrawal, the one final decision (ExchangeListener's contract).
    withdrawing = true;
    try {
      settleReview();
    } finally {
      withdrawing = false;
    }
    if (decision instanceof Decision.Allow) settle(withdrawnDenial());
  }

  /** Set while {@link #withdraw} settles the review: an allowance then is not announced. */
  private volatile boolean withdrawing;

  private void handOver(boolean complete) {
    long durationMs = (System.nanoTime() - startNanos) / 1_000_000;
    Recorder recorder = engine.recorder();
    if (!admitted) {
      // Refused at the start (and so answered 503, or denied anyway): ask once more rather than
      // call record() without room, which a recorder may answer by waiting for room — and the
      // adapter may not have delivered the answer yet.
      try {
        recorder.admit();
      } catch (IOException | RuntimeException e) {
        long skipped = RECORD_DROPPED_LOG.admit();
        if (skipped >= 0) {
          log.warn(
              "inferpam: record of exchange {} ({}) dropped, recording unavailable: {}{}",
              id,
              decision instanceof Decision.Deny d ? d.code() : "allow",
              e,
              LogLimit.since(skipped));
        }
        onFailed(ExchangeListener.Failure.RECORDING);
        return;
      }
    }
    if (maskingInUse) {
      if (masking.masks()) {
        record.maskedOnDelivery(masking.counts());
        if (!masking.failed()) onMasked(masking.counts());
      }
      record.credentialsScrubbed(masking.credentialsFound());
      if (masking.scrubs()) record.responseScrubbedOnDelivery();
    }
    Map<String, Long> left = Map.of();
    if (quota != null) {
      // Tokens count only for what reached the upstream: an allowed request whose response began.
      boolean forwarded = decision instanceof Decision.Allow && responseReported && !upstreamFailed;
      Quotas.Charged charged =
          engine
              .quotas()
              .charge(quota, forwarded, record.finalUsage(), body().length, record.responseBytes());
      left = charged.left();
      if (!charged.fractionLeft().isEmpty()) onQuotaCharged(charged.fractionLeft());
    }
    if (upstreamFailed && !responseReported)
      record.responseStarted(502, null); // what the adapter answered
    if (recorder == Recorder.NOOP) return; // nothing to build a record for
    try {
      // A recorder with a writer thread builds the record (and masks the request body for it)
      // there, off the request's path; nothing reported after the end reaches it.
      long size =
          Math.min(body().length, RecordBuilder.MAX_CAPTURE)
              + Math.min(record.responseBytes(), RecordBuilder.MAX_CAPTURE);
      recorder.recordLater(
          PendingRecord.of(
              id,
              size,
              record.buildLater(
                  id,
                  started,
                  durationMs,
                  principal,
                  operation,
                  model,
                  decision,
                  complete,
                  reviewRecord(),
                  left)));
      onRecorded();
    } catch (IOException | RuntimeException e) {
      log.error("inferpam: recorder failed for exchange {}: {}", id, e.toString());
      onFailed(ExchangeListener.Failure.RECORDING);
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
    return new SessionRecord.Approval(
        o.approvalId(), review.rule, o.reviewer(), o.decided(), outcome, reason);
  }

  // --- events ---------------------------------------------------------------------------------

  private ExchangeInfo info() {
    if (info == null)
      info = new ExchangeInfo(id, started, head.method(), principal, operation, model, startNanos);
    return info;
  }

  private boolean listening() {
    return listener != ExchangeListener.NONE;
  }

  /** Tells the listener of an event; what it throws is logged and goes no further. */
  private void tell(Consumer<ExchangeInfo> event) {
    try {
      event.accept(info());
    } catch (RuntimeException e) {
      log.warn(
          "inferpam: exchange listener failed for exchange {}: {}", id, e.getClass().getName());
    }
  }

  private void onDecided(Decision d) {
    if (listening()) tell(about -> listener.decided(about, d));
  }

  private void onForwarded() {
    if (listening()) tell(listener::forwarded);
  }

  private void onFirstByte(int status) {
    if (listening()) tell(about -> listener.firstByte(about, status));
  }

  private void onMasked(Map<String, Integer> counts) {
    if (listening()) tell(about -> listener.masked(about, counts));
  }

  private void onMaskingFailed() {
    onFailed(ExchangeListener.Failure.MASKING);
  }

  private void onQuotaCharged(Map<String, Double> fractionLeft) {
    if (listening()) tell(about -> listener.quotaCharged(about, fractionLeft));
  }

  private void onRecorded() {
    if (listening()) tell(listener::recorded);
  }

  private void onFailed(ExchangeListener.Failure failure) {
    if (listening()) tell(about -> listener.failed(about, failure));
  }

  private void onEnded(boolean complete) {
    if (listening()) tell(about -> listener.ended(about, complete));
  }

  @Override
  public String toString() {
    return "Exchange["
        + id
        + " "
        + head.method()
        + " -> "
        + decision.getClass().getSimpleName()
        + "]";
  }

  // --- what adapters see ----------------------------------------------------------------------

  /** The parts every verdict shares. */
  private abstract class View {
    public String id() {
      return id;
    }

    public Principal principal() {
      return principal;
    }

    public String operation() {
      return operation;
    }

    public String model() {
      return model;
    }

    /** Id and method only: a raw path can hold what a caller should not have sent (a key). */
    @Override
    public String toString() {
      return getClass().getSimpleName().replace("View", "") + "[" + id + " " + head.method() + "]";
    }
  }

  private final class DeniedView extends View implements Verdict.Denied {
    private final Decision.Deny deny;

    DeniedView(Decision.Deny deny) {
      this.deny = deny;
    }

    @Override
    public Decision.Deny decision() {
      return deny;
    }

    @Override
    public ErrorResponse error() {
      return engine.errorBodies().error(deny, id, head.rawPath());
    }

    @Override
    public boolean bodyLeftUnread() {
      return bodyLeftUnread && review == null;
    }

    @Override
    public void end(boolean complete) {
      Exchange.this.end(complete);
    }
  }

  private final class HeldView extends View implements Verdict.Held {
    private final Decision.RequireApproval required;

    HeldView(Decision.RequireApproval required) {
      this.required = required;
    }

    @Override
    public Decision.RequireApproval decision() {
      return required;
    }

    @Override
    public CompletionStage<Verdict> result(Executor executor) {
      Objects.requireNonNull(executor, "executor");
      Executor safe =
          task -> {
            try {
              executor.execute(task);
            } catch (RuntimeException e) {
              task.run(); // refused (shut down, a cycle over): settle here rather than never
            }
          };
      review.done.thenRunAsync(Exchange.this::settleReview, safe);
      return review.resultView;
    }

    @Override
    public Verdict await(Duration timeout) throws InterruptedException {
      if (!review.done.isDone()) {
        try {
          review.done.get(Math.max(0, timeout.toNanos()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
          return null;
        } catch (ExecutionException e) {
          // done never fails; settling answers whatever happened
        }
      }
      return settleReview();
    }

    @Override
    public Duration timeout() {
      return engine.heldTimeout();
    }

    @Override
    public Verdict.Denied cancel() {
      if (!ended) {
        withdraw();
        end(false);
      }
      if (decision instanceof Decision.Deny deny) return new DeniedView(deny);
      throw new IllegalStateException(
          "exchange " + id + " was allowed and ended; nothing to cancel");
    }
  }

  private final class AllowedView extends View implements Verdict.Allowed {
    private final Decision.Allow allow;

    AllowedView(Decision.Allow allow) {
      this.allow = allow;
    }

    @Override
    public Decision.Allow decision() {
      return allow;
    }

    @Override
    public Forward forward() {
      if (forward == null) {
        forward = new Forwarded();
        onForwarded();
      }
      return forward;
    }

    @Override
    public boolean mayChangeLength() {
      return masksResponse;
    }

    @Override
    public String responseHeader(String name, String value) {
      return Exchange.this.responseHeader(name, value);
    }

    @Override
    public ResponsePlan respond(int status, Map<String, List<String>> headers) {
      return Exchange.this.respond(status, headers);
    }

    @Override
    public void upstreamFailed() {
      if (upstreamFailed || ended) return;
      upstreamFailed = true;
      onFailed(ExchangeListener.Failure.UPSTREAM);
    }

    @Override
    public ErrorResponse error(int status, String code, String message) {
      return engine
          .errorBodies()
          .error(new Decision.Deny(status, code, message, code), id, head.rawPath());
    }

    @Override
    public void end(boolean complete) {
      Exchange.this.end(complete);
    }
  }

  /** What the allowed request sends upstream. */
  private final class Forwarded implements Forward {
    private final Set<String> remove = headersToRemove();
    private final Map<String, String> set =
        credential == null ? Map.of() : new SecretHeader(credential);
    private Map<String, List<String>> proxyHeaders;

    @Override
    public Set<String> removeHeaders() {
      return remove;
    }

    @Override
    public Map<String, String> setHeaders() {
      return set;
    }

    @Override
    public byte[] body() {
      return Exchange.this.body();
    }

    @Override
    public Map<String, List<String>> proxyHeaders() {
      if (proxyHeaders == null) {
        Set<String> hopByHop = ForwardHeaders.connectionTokens(head.headers().get("connection"));
        Map<String, List<String>> out = new LinkedHashMap<>();
        head.headers()
            .forEach(
                (name, values) -> {
                  if (!remove.contains(name)
                      && !hopByHop.contains(name)
                      && engine.forwardsHeader(name)) {
                    out.put(name, values);
                  }
                });
        set.forEach(
            (name, value) -> {
              out.keySet().removeIf(name::equalsIgnoreCase);
              out.put(name, List.of(value));
            });
        proxyHeaders = java.util.Collections.unmodifiableMap(out);
      }
      return proxyHeaders;
    }

    @Override
    public String toString() {
      return "Forward[remove=" + remove + ", set=" + set + ", body=" + body().length + " bytes]";
    }
  }

  /** The one header of the upstream credential; its value never shown. */
  private static final class SecretHeader extends AbstractMap<String, String> {
    private final Set<Map.Entry<String, String>> entries;
    private final String name;

    SecretHeader(Credential credential) {
      this.name = credential.header();
      this.entries = Set.of(Map.entry(credential.header(), credential.value()));
    }

    @Override
    public Set<Map.Entry<String, String>> entrySet() {
      return entries;
    }

    @Override
    public String toString() {
      return "{" + name + "=██}";
    }
  }

  private record RefusedPlan(ErrorResponse error) implements ResponsePlan.Refused {}

  private final class RelayPlan implements ResponsePlan.Relay {
    @Override
    public String header(String name, String value) {
      return responseHeader(name, value);
    }

    @Override
    public boolean dropContentLength() {
      return masking != null && masking.changesLength();
    }

    @Override
    public ResponseMasking masking() {
      if (masking != null) maskingInUse = true;
      return masking;
    }

    @Override
    public void delivered(byte[] b, int off, int len) {
      Exchange.this.delivered(b, off, len);
    }
  }
}
