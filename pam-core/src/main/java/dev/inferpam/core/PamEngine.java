package dev.inferpam.core;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.Decision;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.api.QuotaStore;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.ReviewNotifier;
import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.ReviewSummaries;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.Background;
import dev.inferpam.core.internal.credentials.CredentialProviders;
import dev.inferpam.core.internal.http.ErrorBodies;
import dev.inferpam.core.internal.identity.IdentityChain;
import dev.inferpam.core.internal.masking.BlockMasker;
import dev.inferpam.core.internal.policy.Decider;
import dev.inferpam.core.internal.quotas.Quotas;
import dev.inferpam.core.internal.recording.ExchangeIds;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The enforcement engine: decides every request against a {@link Policy} and carries it to its
 * record.
 *
 * <p>Built once with {@link #builder()} or {@link #fromPolicy(Path)}; immutable and thread-safe
 * afterwards, meant to be shared by every request of an application. Adapters call
 * {@link #begin} (or {@link #beginHead}) once per request and apply the {@link Verdict} it
 * answers; see {@link dev.inferpam.core.adapter}.
 *
 * <p>Decision order (see {@code docs/policy.md}): path check, declared body length, identity —
 * all three from the request's head, before any body byte is read — then the body (its size
 * limit, {@code request.body-timeout} and {@code request.min-body-rate}), block,
 * allow/operation, entitlements, parameters, limits, approval. Limits are counted in the
 * {@link QuotaStore} (default {@link InMemoryQuotaStore}); see {@code Quotas} in the policy
 * reference. A request matching an {@code approval}
 * rule waits for a reviewer in the {@link #approvalService()} ({@link Verdict.Held}); adapters
 * wait without blocking where they can. Anything unknown is denied; any exception in a
 * check denies the request (fail closed).
 *
 * <p>Recording: every exchange, allowed or denied, is handed to the {@link Recorder} as one
 * {@link dev.inferpam.api.SessionRecord}, not built yet ({@link Recorder#recordLater}), so that a
 * recorder with its own writer thread builds it there. The recorder is the one given to
 * {@link Builder#recorder}, else the default JSONL recorder built from the policy's
 * {@code recording} section, else none (one warning is logged at build). Each exchange is first
 * admitted by the recorder ({@link Recorder#admit()}); an allowed request the recorder refuses, or
 * whose intent record cannot be made durable ({@code recording.durability: strict}), is answered
 * 503 {@code recording_unavailable} instead of going on unrecorded.
 *
 * <p>Masking: responses are masked for the client by the {@link Masker} given to
 * {@link Builder#masker}, else by one built from the policy's {@code masking} section, else not
 * at all; principals in {@code masking.exempt-groups} get them unmasked
 * ({@link dev.inferpam.core.adapter.ResponsePlan.Relay#masking()}).
 *
 * <p>Events: every exchange's life (decided, forwarded, first byte, masked, recorded, ended) is
 * told to the {@link ExchangeListener} given to {@link Builder#eventListener}.
 *
 * <p><b>Ownership.</b> The engine closes what it builds and never what it is given.
 * {@link #close()} closes, in this order: the default approval service built from the policy's
 * {@code approval} section (waiting requests are answered {@code approval_expired}); the default
 * JSONL recorder built from its {@code recording} section (everything handed over is written and
 * synced, the directory lock released); the OIDC resolver built from {@code identity.oidc} (its
 * key fetch and refresh threads end); the OAuth2 credential provider built from
 * {@code upstream.credential.oauth2} (a token request in flight is abandoned); and the expiry
 * scheduler it made from a given {@link Builder#threadFactory}. What was given to the
 * {@link Builder} — recorder, approval service, quota store, credential provider, identity
 * resolvers, masker, review notifier, executor, scheduler, thread factory — is never closed or
 * shut down; a given recorder is flushed ({@link Recorder#flush()}) so that every record handed
 * over is stored, and the caller closes it after the engine. After {@code close()} the parts the
 * engine built refuse further work with a message that says they are closed (the recorder
 * {@code "recorder closed"}, so allowed requests get 503 {@code recording_unavailable}).
 *
 * <p><b>Threads.</b> Background work runs where the {@link Builder} says: its
 * {@link Builder#executor executor} (OIDC key fetches and refreshes, OAuth2 token requests), its
 * {@link Builder#scheduler scheduler} (review expiry) and its {@link Builder#threadFactory thread
 * factory} (the recorder's writer thread, and the threads of the pools the engine makes when no
 * executor or scheduler is given). By default every one of these is a daemon thread named
 * {@code inferpam-*}, made on demand.
 */
public final class PamEngine implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PamEngine.class);

  /**
   * How much longer than {@code approval.timeout} the engine waits for the approval service at
   * most (the timeout itself when that is shorter) before it stops waiting and answers
   * {@code approval_expired} itself: a backstop for a service that fails to expire its reviews.
   * The default service expires them on time.
   */
  public static final Duration APPROVAL_GRACE = Duration.ofSeconds(10);

  private final Policy policy;
  private final Decider decider;
  private final CredentialProvider credentialProvider;
  private final Recorder recorder;
  private final Policy.Bodies bodies;
  private final boolean writeIntents;
  private final Masker masker;
  private final ErrorBodies errorBodies;
  private final ApprovalService approvalService;

  /** The default service the engine built, and so closes; {@code null} when given one. */
  private final ApprovalService ownApprovalService;

  private final IdentityResolver identity;

  /** The policy's {@code limits}, or {@code null} without them. */
  private final Quotas quotas;

  private final Clock clock;
  private final ExchangeIds ids;
  private final ExchangeListener listener;

  /** Lower-case names of {@code request.forward-headers}. */
  private final java.util.Set<String> forwardHeaders;

  /** Whether the recorder was built here (closed with the engine) rather than given (flushed). */
  private final boolean ownRecorder;

  /**
   * What the engine built besides the recorder and approval service and closes last, in this
   * order: identity resolvers, the credential provider, the expiry scheduler.
   */
  private final List<AutoCloseable> owned;

  private final AtomicBoolean closed = new AtomicBoolean();

  /** {@code state.redis.when-unavailable: allow}. */
  private final boolean quotasAllowWhenDown;

  /** See {@link #decidesWithoutWaiting()}. */
  private final boolean decidesWithoutWaiting;

  /** The approval service was built here on {@code state.postgres}. */
  private final boolean sharedApprovals;

  /** See {@link #endsWithoutWaiting()}. */
  private final boolean endsWithoutWaiting;

  private PamEngine(Builder b) {
    this.policy = b.policy;
    this.clock = b.clock;
    Background background = new Background(b.executor, b.scheduler, b.threadFactory);
    // First: a masking section that cannot be built must fail before anything is opened.
    this.masker = masker(b, policy);
    this.errorBodies = new ErrorBodies(policy.request().errorShape(), policy.request().basePath());
    List<AutoCloseable> built = new ArrayList<>();
    Recorder madeRecorder = null;
    ApprovalService ownApprovals = null;
    StateBackend.SharedState shared = null;
    QuotaStore store = null;
    try {
      if (!policy.limits().isEmpty()) {
        store = b.quotaStore;
        if (store == null && policy.state().redis() != null) {
          // First of the parts that connect: a Redis that cannot be reached fails the start.
          store = StateBackends.redisQuotaStore(policy.state().redis(), clock);
          if (store instanceof AutoCloseable c) built.add(c);
        }
        if (store == null) store = new InMemoryQuotaStore(clock);
      }
      if (policy.state().postgres() != null) {
        shared = StateBackends.postgres(policy.state().postgres(), clock);
        built.add(shared);
      }
      ExchangeListener heard = b.listener == null ? ExchangeListener.NONE : b.listener;
      List<IdentityResolver> resolvers =
          IdentityChain.fromPolicy(policy, clock, b.resolvers, background, heard::keyFetchFailed);
      for (IdentityResolver r : resolvers) {
        if (r instanceof AutoCloseable c && b.resolvers.stream().noneMatch(given -> given == r))
          built.add(c);
      }
      if (b.credentialProvider != null) {
        this.credentialProvider = b.credentialProvider;
      } else {
        this.credentialProvider =
            CredentialProviders.from(
                policy.upstream().credential(),
                dev.inferpam.core.internal.credentials.CredentialProviders.PROCESS_ENV,
                clock,
                background);
        if (credentialProvider instanceof AutoCloseable c) built.add(c);
      }
      this.decider = new Decider(policy, resolvers);
      this.identity =
          request -> java.util.Optional.ofNullable(IdentityChain.identify(resolvers, request));
      this.ownRecorder = b.recorder == null && policy.recording() != null;
      this.recorder = recorder(b, policy, clock, background, shared);
      if (ownRecorder) madeRecorder = recorder;
      ownApprovals = b.approvalService == null ? defaultApprovalService(b, built, shared) : null;
      this.approvalService =
          b.approvalService != null
              ? b.approvalService
              : ownApprovals != null ? ownApprovals : ApprovalService.NONE;
    } catch (RuntimeException | Error e) {
      // No engine, so nobody else would close what was built for it.
      if (madeRecorder != null) closeQuietly(madeRecorder, e);
      if (ownApprovals != null) ownApprovals.close();
      for (AutoCloseable c : built) closeQuietly(c, e);
      throw e;
    }
    this.ownApprovalService = ownApprovals;
    this.sharedApprovals = shared != null && ownApprovals != null;
    this.owned = List.copyOf(built);
    Policy.Recording recording = policy.recording();
    this.bodies = recording == null ? Policy.Bodies.MASKED : recording.bodies();
    this.writeIntents = recording != null && recording.durability() == Policy.Durability.STRICT;
    this.quotas = store == null ? null : new Quotas(policy.limits(), store, clock);
    this.quotasAllowWhenDown =
        policy.state().redis() != null && policy.state().redis().allowWhenDown();
    this.ids = new ExchangeIds(clock);
    this.listener = b.listener == null ? ExchangeListener.NONE : b.listener;
    java.util.Set<String> names = new java.util.HashSet<>();
    for (String name : policy.request().forwardHeaders())
      names.add(name.toLowerCase(java.util.Locale.ROOT));
    this.forwardHeaders = java.util.Set.copyOf(names);
    boolean given = b.givenPartsNeverWait;
    boolean recorderInMemory =
        !writeIntents
            && (recorder == Recorder.NOOP
                || recorder instanceof InMemoryRecorder
                || ownRecorder
                || given);
    boolean quotaStore = store == null || store instanceof InMemoryQuotaStore || given;
    this.endsWithoutWaiting = recorderInMemory && quotaStore;
    this.decidesWithoutWaiting =
        endsWithoutWaiting
            && identityInMemory(b, policy)
            && credentialInMemory(b)
            && approvalsInMemory(b);
  }

  /** Whether the identity resolvers are the policy's API keys only (an OIDC issuer fetches keys). */
  private static boolean identityInMemory(Builder b, Policy policy) {
    return (b.resolvers.isEmpty() || b.givenPartsNeverWait) && policy.identity().oidc().isEmpty();
  }

  /** No upstream credential, or one from the environment or a file (looked at once a second). */
  private boolean credentialInMemory(Builder b) {
    return (b.credentialProvider != null && b.givenPartsNeverWait)
        || credentialProvider == CredentialProvider.NONE
        || credentialProvider
            instanceof dev.inferpam.core.internal.credentials.EnvCredentialProvider
        || credentialProvider
            instanceof dev.inferpam.core.internal.credentials.FileCredentialProvider;
  }

  /** No reviews, or in-process ones with no notifier or the webhook notifier (which queues). */
  private boolean approvalsInMemory(Builder b) {
    if (approvalService == ApprovalService.NONE) return true;
    if (sharedApprovals) return false;
    if (b.approvalService != null) return b.givenPartsNeverWait;
    return b.givenPartsNeverWait
        || b.reviewNotifier == ReviewNotifier.NONE
        || b.reviewNotifier instanceof WebhookReviewNotifier;
  }

  /**
   * Whether deciding an exchange never waits for anything: every part a decision uses is a
   * built-in one that works in memory — identity by API keys only (an OIDC issuer may fetch its
   * keys), no upstream credential or one from the environment or a file (a file is looked at at
   * most once a second), the in-memory quota store, a recorder without strict durability (the
   * engine's own JSONL or PostgreSQL recorder, which only queue the record for their writer
   * thread, {@link InMemoryRecorder}), and no reviews or in-process ones
   * without a notifier or with the webhook notifier (which queues). A part given to the builder
   * that the engine cannot see into (an SPI implementation) makes it false, as does an OAuth2
   * upstream credential. An adapter on an event loop may then decide on the loop instead of
   * handing each decision to another thread; otherwise it must not, since a decision that waits
   * there stalls every connection of the loop. Parts given to the builder count as in memory
   * when {@link Builder#givenPartsNeverWait()} says so.
   */
  public boolean decidesWithoutWaiting() {
    return decidesWithoutWaiting;
  }

  /**
   * Whether ending an exchange ({@link dev.inferpam.core.adapter.Verdict.Allowed#end}, a
   * denial's end) never waits: the quota store is the in-memory one and the recorder does not
   * write with strict durability (see {@link #decidesWithoutWaiting()}). An adapter on an event
   * loop may then end exchanges on the loop.
   */
  public boolean endsWithoutWaiting() {
    return endsWithoutWaiting;
  }

  /**
   * The service given to the builder; else the default one for the policy's {@code approval}
   * section, expiring reviews on the given scheduler, or on one made here from the given thread
   * factory (added to {@code built}), or on its own thread; else {@link ApprovalService#NONE}.
   */
  /** The approval service built from the policy's {@code approval} section; null without one. */
  private ApprovalService defaultApprovalService(
      Builder b, List<AutoCloseable> built, StateBackend.SharedState shared) {
    if (policy.approval() == null) return null;
    ReviewSummaries summaries = new ReviewSummaries(masker, policy.request().basePath());
    ReviewNotifier notifier = b.reviewNotifier;
    if (shared != null) {
      return shared.approvalService(
          policy.approval(), clock, p -> notifier.pending(reviewRequest(p, summaries)));
    }
    InProcessApprovalService.Builder service =
        InProcessApprovalService.builder()
            .settings(policy.approval())
            .clock(clock)
            .onReview(p -> notifier.pending(reviewRequest(p, summaries)));
    if (b.scheduler != null) {
      service.scheduler(b.scheduler);
    } else if (b.threadFactory != null) {
      ScheduledThreadPoolExecutor expiry = new ScheduledThreadPoolExecutor(1, b.threadFactory);
      expiry.setRemoveOnCancelPolicy(true);
      built.add(expiry::shutdownNow);
      service.scheduler(expiry);
    }
    return service.build();
  }

  private static void closeQuietly(AutoCloseable c, Throwable cause) {
    try {
      c.close();
    } catch (Exception | Error e) {
      cause.addSuppressed(e);
    }
  }

  /** What a notifier is told of a new review: never headers, credentials or the unmasked prompt. */
  private static ReviewNotifier.ReviewRequest reviewRequest(
      ApprovalService.Pending p, ReviewSummaries summaries) {
    ReviewSummaries.Summary s = summaries.summarize(p.request());
    return new ReviewNotifier.ReviewRequest(
        p.id(),
        p.rule(),
        p.principal().subject(),
        s.model(),
        s.operation(),
        p.created(),
        p.expires(),
        null,
        s.excerpt());
  }

  /**
   * The recorder given to the builder wins; else the policy's {@code recording} section gets the
   * default JSONL recorder, or with {@code store: postgres} the recorder of the database of
   * {@code state.postgres}; else nothing is recorded, which is worth one warning.
   */
  private static Recorder recorder(
      Builder b,
      Policy policy,
      Clock clock,
      Background background,
      StateBackend.SharedState shared) {
    if (b.recorder != null) return b.recorder;
    if (policy.recording() != null
        && policy.recording().store() == Policy.RecordingStore.POSTGRES) {
      // Policy guarantees state.postgres with store: postgres, so shared is open here
      try {
        return shared.recorder(policy.recording(), clock);
      } catch (RuntimeException e) {
        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        throw new PolicyException("recording.store: postgres: " + why);
      }
    }
    if (policy.recording() != null) {
      return new JsonlRecorder(policy.recording(), clock, background.threads("inferpam-recorder"));
    }
    log.warn(
        "inferpam: the policy has no recording section and no Recorder was given: exchanges are NOT recorded");
    return Recorder.NOOP;
  }

  /**
   * The masker given to the builder wins; else the policy's {@code masking} section is built into
   * one (its hash key, if any, read now); else nothing is masked.
   */
  private static Masker masker(Builder b, Policy policy) {
    if (b.masker != null) return b.masker;
    if (policy.masking() == null) return Masker.IDENTITY;
    try {
      return BlockMasker.from(policy.masking(), System::getenv);
    } catch (IllegalArgumentException e) {
      // The message names the detector, variable or file, never the key.
      throw new PolicyException(e.getMessage(), e);
    }
  }

  /** A builder; {@link Builder#policy(Policy)} is required. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Loads the policy file and builds an engine with its defaults.
   *
   * @throws PolicyException     when the file cannot be read or is invalid, or its {@code masking}
   *     section cannot be built (hash key unset, unreadable or short; {@code max-hold-back} below
   *     what a detector needs)
   * @throws UncheckedIOException when its {@code recording.directory} cannot be opened
   */
  public static PamEngine fromPolicy(Path policyFile) {
    return builder().policy(Policy.load(policyFile)).build();
  }

  /**
   * Starts one exchange and answers it: decides path and identity from the head, then, only for an
   * identified caller, reads the body on the calling thread (at most {@link #maxBodyBytes()} + 1
   * bytes, never more, under {@code request.body-timeout} and {@code request.min-body-rate} checked
   * after every read) and decides the rest. An unauthenticated or bad-path request is decided
   * without reading any of the body. Never throws for bad input; the verdict says what to answer.
   * Adapters that can read the body without a thread use {@link #beginHead} instead.
   *
   * @param head          the request as received
   * @param body          the request body, or {@code null} for none; not closed here
   * @param contentLength the declared length, or -1 when unknown
   */
  public Verdict begin(RequestHead head, InputStream body, long contentLength) {
    return beginHead(head, contentLength).read(body);
  }

  /**
   * Starts one exchange from its head alone: path, a declared length over the limit, and
   * identity are decided now, before any body byte is read; the adapter then supplies the body
   * as it arrives, if the head did not decide already. See {@link PendingRequest}. Never throws
   * for bad input.
   *
   * @param head          the request as received
   * @param contentLength the declared length, or -1 when unknown
   */
  public PendingRequest beginHead(RequestHead head, long contentLength) {
    Objects.requireNonNull(head, "head");
    return new PendingExchange(this, head, contentLength);
  }

  /** The largest request body accepted, in bytes. */
  public long maxBodyBytes() {
    return policy.request().maxBodyBytes();
  }

  /** The policy this engine enforces. */
  public Policy policy() {
    return policy;
  }

  /** The provider of the credential injected into upstream requests. */
  public CredentialProvider credentialProvider() {
    return credentialProvider;
  }

  /**
   * Ends every review waiting in the engine's own approval service (the default one built from
   * the policy's {@code approval} section): each waiting request is answered 403
   * {@code approval_expired}, and later requests that would need a review get the same at once.
   * For a shutdown, before draining in-flight requests, so that none waits for a reviewer who can
   * no longer reach the server. Does nothing for a service given to the builder, or none.
   * {@link #close()} does this too. Idempotent.
   */
  public void closeApprovals() {
    if (ownApprovalService != null) ownApprovalService.close();
  }

  /**
   * Closes what the engine built and nothing it was given (see "Ownership" above), in order: the
   * default approval service ({@link #closeApprovals()}); the recorder — the default one is closed
   * (everything handed over written and synced, the directory released), a given one only flushed;
   * the OIDC resolver and OAuth2 credential provider built from the policy; the expiry scheduler
   * made from a given thread factory. Call it after the adapters have stopped taking requests.
   * Idempotent: a second call does nothing.
   *
   * @throws UncheckedIOException when the recorder fails to close or flush (everything else is
   *     closed nevertheless)
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) return;
    closeApprovals();
    IOException recorderFailure = null;
    try {
      if (ownRecorder) {
        recorder.close();
      } else {
        recorder.flush();
      }
    } catch (IOException e) {
      log.error(
          "inferpam: recorder failed to {}: {}", ownRecorder ? "close" : "flush", e.toString());
      recorderFailure = e;
    }
    for (AutoCloseable c : owned) {
      try {
        c.close();
      } catch (Exception e) {
        log.warn("inferpam: closing {} failed: {}", c.getClass().getSimpleName(), e.toString());
      }
    }
    if (recorderFailure != null) throw new UncheckedIOException(recorderFailure);
  }

  /** Whether {@link #close()} was called; a closed engine's parts refuse further work. */
  boolean isClosed() {
    return closed.get();
  }

  Decider decider() {
    return decider;
  }

  Recorder recorder() {
    return recorder;
  }

  /** What of request and response bodies records keep ({@code recording.bodies}, default masked). */
  Policy.Bodies bodies() {
    return bodies;
  }

  /** The error bodies shaped as the policy's {@code request.error-shape} says. */
  ErrorBodies errorBodies() {
    return errorBodies;
  }

  /** Whether an intent record is made durable before an allowed request goes on (strict durability). */
  boolean writeIntents() {
    return writeIntents;
  }

  /**
   * The masker responses are masked with ({@link Masker#IDENTITY} when none): the policy's
   * {@code masking} section or the one given to {@link Builder#masker}. Reviewer endpoints mask
   * prompt excerpts with it, so that reviewers see no more than callers do.
   */
  public Masker masker() {
    return masker;
  }

  /**
   * The service requests matching an {@code approval} rule wait in: the one given to
   * {@link Builder#approvalService}, else an {@link InProcessApprovalService} built from the
   * policy's {@code approval} section (closed with the engine), else {@link ApprovalService#NONE}.
   * Reviewer endpoints decide through it.
   */
  public ApprovalService approvalService() {
    return approvalService;
  }

  /**
   * Identifies callers exactly as the engine does: the policy's API keys, then its OIDC issuers,
   * then the resolvers given to {@link Builder#identityResolver}; the first principal wins, and
   * when none identifies the caller the first resolver's complaint is thrown. Shares the engine's
   * caches (OIDC key sets, API key lookups); the request's body is not read. Endpoints next to
   * the engine use {@link #authenticate}, which also gives the refusal to send.
   */
  public IdentityResolver identityResolver() {
    return identity;
  }

  /**
   * Authenticates the caller of an endpoint next to the engine (the reviewer endpoints, the quota
   * endpoint) from the request's head alone, exactly as the engine identifies inference callers:
   * its resolvers and caches ({@link #identityResolver()}), one credential at most, any resolver
   * failure refused (fail closed). The head's path is not checked here; the body is not read.
   *
   * @return the caller, or the answer to send: 401 {@code unauthenticated} with its
   *     {@code WWW-Authenticate: Bearer} challenge, as the engine answers inference callers (500
   *     {@code internal_error} for a bug, logged as one line naming its type)
   * @throws NullPointerException when {@code head} is null
   */
  public Authentication authenticate(RequestHead head) {
    Objects.requireNonNull(head, "head");
    InferenceRequest request =
        new InferenceRequest(
            head.method(),
            head.rawPath(),
            head.query(),
            head.headers(),
            null,
            head.remoteAddress());
    Object identified;
    try {
      identified = decider.identifyOrDeny(request);
    } catch (RuntimeException e) {
      log.error(
          "inferpam: identity evaluation failed on an endpoint, refusing: {}",
          e.getClass().getName());
      log.debug("inferpam: identity evaluation failure", e);
      return new Authentication.Refused(
          ErrorResponse.of(500, "internal_error", "policy evaluation failed", null));
    }
    if (identified instanceof Principal p) return new Authentication.Authenticated(p);
    Decider.Verdict refused = (Decider.Verdict) identified;
    return new Authentication.Refused(ErrorBodies.of((Decision.Deny) refused.decision(), null));
  }

  /**
   * The {@code limits} entries that apply to {@code principal} (by group, for any model and
   * operation), with what is used and left of each bound in the current window; empty when the
   * policy has no {@code limits} or none applies. For a quota endpoint that shows callers their own
   * budgets.
   *
   * @throws RuntimeException what the quota store throws
   */
  public List<QuotaStatus> quotaStatus(dev.inferpam.api.Principal principal) {
    java.util.Objects.requireNonNull(principal, "principal");
    if (quotas == null) return List.of();
    List<QuotaStatus> out = new ArrayList<>();
    for (Quotas.EntryStatus e : quotas.status(principal)) {
      List<QuotaStatus.Budget> budgets = new ArrayList<>();
      for (Quotas.BoundStatus b : e.bounds()) {
        budgets.add(
            new QuotaStatus.Budget(b.bound().recordName(), b.limit(), b.used(), b.resets()));
      }
      List<String> models = new ArrayList<>();
      e.limit().models().forEach(g -> models.add(g.toString()));
      out.add(new QuotaStatus(e.rule(), models, e.limit().operations(), budgets));
    }
    return List.copyOf(out);
  }

  /** The policy's {@code limits} enforced, or {@code null} when it has none. */
  Quotas quotas() {
    return quotas;
  }

  /** Whether a request is admitted uncounted while the quota store fails ({@code when-unavailable: allow}). */
  boolean quotasAllowWhenDown() {
    return quotasAllowWhenDown;
  }

  /**
   * How long an exchange waits for the approval service at most: {@code approval.timeout} plus
   * the shorter of the timeout itself and {@link #APPROVAL_GRACE}.
   */
  Duration approvalWait() {
    Duration t = approvalTimeout();
    return t.plus(t.compareTo(APPROVAL_GRACE) < 0 ? t : APPROVAL_GRACE);
  }

  /** The policy's {@code approval.timeout} (its default without the section). */
  Duration approvalTimeout() {
    return policy.approval() == null
        ? Policy.Approval.DEFAULT_TIMEOUT
        : policy.approval().timeout();
  }

  /** Slack on top of the engine's own bound before an adapter gives up on a held request. */
  private static final Duration HELD_TIMEOUT_SLACK = Duration.ofSeconds(30);

  /** How long an adapter waits for a held request at most: twice {@code approval.timeout}, plus 30 s. */
  Duration heldTimeout() {
    return approvalTimeout().multipliedBy(2).plus(HELD_TIMEOUT_SLACK);
  }

  /** Whether a proxy forwards the caller's header {@code lowerCaseName} (see {@link ForwardHeaders}). */
  boolean forwardsHeader(String lowerCaseName) {
    return ForwardHeaders.forwarded(lowerCaseName) || forwardHeaders.contains(lowerCaseName);
  }

  ExchangeListener listener() {
    return listener;
  }

  /** Exchanges allowed and not yet ended (see {@link Policy.RequestSettings#maxInFlight()}). */
  private final java.util.concurrent.atomic.AtomicInteger inFlight =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * How many exchanges are in flight now: allowed to go upstream and not yet ended. At most
   * {@code request.max-in-flight}; one more is refused 503 {@code overloaded}.
   */
  public int exchangesInFlight() {
    return inFlight.get();
  }

  /**
   * How many records the engine's recorder holds not yet durable ({@link Recorder#backlog()}), for
   * a gauge; {@code -1} when the recorder does not tell, {@code 0} with no recording.
   */
  public long recorderBacklog() {
    return recorder == null ? 0 : recorder.backlog();
  }

  /**
   * How long the oldest record the engine's recorder holds not yet durable has waited, in
   * nanoseconds ({@link Recorder#lagNanos()}), for a gauge; {@code -1} when the recorder does not
   * tell, {@code 0} with no recording.
   */
  public long recorderLagNanos() {
    return recorder == null ? 0 : recorder.lagNanos();
  }

  /** Takes a place in flight, or answers false when {@code request.max-in-flight} are taken. */
  boolean enterFlight() {
    int limit = policy.request().maxInFlight();
    while (true) {
      int n = inFlight.get();
      if (n >= limit) return false;
      if (inFlight.compareAndSet(n, n + 1)) return true;
    }
  }

  /** Gives back a place taken by {@link #enterFlight()}. */
  void leaveFlight() {
    inFlight.decrementAndGet();
  }

  Clock clock() {
    return clock;
  }

  /** The last upstream-credential problem logged, so an unset variable is one error line, not one per request. */
  private final java.util.concurrent.atomic.AtomicReference<String> lastCredentialProblem =
      new java.util.concurrent.atomic.AtomicReference<>();

  /** Logs a credential problem once while it stays the same (the message never holds a secret). */
  void credentialUnavailable(String problem) {
    String p = String.valueOf(problem);
    if (!p.equals(lastCredentialProblem.getAndSet(p))) {
      log.error("inferpam: upstream credential unavailable, requests are refused 503: {}", p);
    } else {
      log.debug("inferpam: upstream credential still unavailable: {}", p);
    }
  }

  /** Forgets the last problem once a credential was had, so a later failure is logged again. */
  void credentialAvailable() {
    if (lastCredentialProblem.get() != null) lastCredentialProblem.set(null);
  }

  ExchangeIds ids() {
    return ids;
  }

  /**
   * Builds a {@link PamEngine}. Not thread-safe; each setter validates at once and a second call
   * of the same single-valued setter is refused. What is given here is never closed by the
   * engine; what the engine builds from the policy instead, it closes (see {@link PamEngine}).
   */
  public static final class Builder {
    private Policy policy;
    private final List<IdentityResolver> resolvers = new ArrayList<>();
    private CredentialProvider credentialProvider;
    private Recorder recorder;
    private Masker masker;
    private ApprovalService approvalService;
    private ReviewNotifier reviewNotifier = ReviewNotifier.NONE;
    private QuotaStore quotaStore;
    private Clock clock = Clock.systemUTC();
    private Executor executor;
    private ScheduledExecutorService scheduler;
    private ThreadFactory threadFactory;
    private ExchangeListener listener;
    private boolean givenPartsNeverWait;

    private Builder() {}

    /**
     * Declares that every part given to this builder (identity resolvers, credential provider,
     * recorder, quota store, approval service, review notifier) answers at once, without waiting
     * for a network, a disk, a lock held long or another thread: for instance parts that keep
     * their state in memory. Then they count as the engine's own in-memory parts do for
     * {@link PamEngine#decidesWithoutWaiting()} and {@link PamEngine#endsWithoutWaiting()}, and a
     * front on an event loop decides and ends exchanges on the loop. Declare it only when true:
     * a part that waits would stall every connection of that loop meanwhile.
     */
    public Builder givenPartsNeverWait() {
      this.givenPartsNeverWait = true;
      return this;
    }

    public Builder policy(Policy policy) {
      this.policy = Background.setOnce(this.policy, policy, "policy", "policy");
      return this;
    }

    /** Adds a resolver after the policy's own (API keys, then OIDC issuers); the first to identify wins. */
    public Builder identityResolver(IdentityResolver resolver) {
      resolvers.add(Objects.requireNonNull(resolver, "resolver"));
      return this;
    }

    /** Overrides the policy's {@code upstream.credential}. */
    public Builder credentialProvider(CredentialProvider provider) {
      this.credentialProvider =
          Background.setOnce(this.credentialProvider, provider, "credentialProvider", "provider");
      return this;
    }

    /**
     * Where records go. Takes precedence over the policy's {@code recording} section, whose
     * {@code bodies} and {@code durability} still apply (with {@code strict}, this recorder's
     * {@link Recorder#intent} is called before an allowed request goes on). Without either,
     * nothing is recorded and the engine logs one warning when built. The engine does not close
     * it: {@link PamEngine#close()} flushes it, and the caller closes it after the engine.
     */
    public Builder recorder(Recorder recorder) {
      this.recorder = Background.setOnce(this.recorder, recorder, "recorder", "recorder");
      return this;
    }

    /**
     * Masks responses (and, with {@code recording.bodies: masked}, recorded bodies) with
     * {@code masker} instead of the one the policy's {@code masking} section would give; the
     * section's {@code exempt-groups} still apply. {@link Masker#IDENTITY} turns masking off.
     */
    public Builder masker(Masker masker) {
      this.masker = Objects.requireNonNull(masker, "masker");
      return this;
    }

    /**
     * Where requests matching an {@code approval} rule wait, instead of the default
     * {@link InProcessApprovalService} built from the policy's {@code approval} section. The
     * engine does not close it; {@link #reviewNotifier} does not apply to it (give the service its
     * own notification).
     */
    public Builder approvalService(ApprovalService approvalService) {
      this.approvalService =
          Background.setOnce(
              this.approvalService, approvalService, "approvalService", "approvalService");
      return this;
    }

    /**
     * Told of every review the default approval service opens (once per review, on the request
     * thread; it must not block), e.g. a {@link WebhookReviewNotifier}. What it is given holds the
     * prompt excerpt masked with the engine's masker, never credentials or headers. The engine
     * does not close it. Default {@link ReviewNotifier#NONE}: reviewers poll the reviewer
     * endpoints.
     */
    public Builder reviewNotifier(ReviewNotifier notifier) {
      this.reviewNotifier = Objects.requireNonNull(notifier, "notifier");
      return this;
    }

    /**
     * Where the counters of the policy's {@code limits} live, instead of an
     * {@link InMemoryQuotaStore} on the engine's clock (per process). A store shared by replicas
     * makes the limits hold across them. The engine does not close it.
     */
    public Builder quotaStore(QuotaStore store) {
      this.quotaStore = Background.setOnce(this.quotaStore, store, "quotaStore", "store");
      return this;
    }

    /**
     * Hears every exchange's life (decided, forwarded, first byte, masked, recorded, ended,
     * failures): where metrics and traces hook in. Default {@link ExchangeListener#NONE}.
     */
    public Builder eventListener(ExchangeListener listener) {
      this.listener = Background.setOnce(this.listener, listener, "eventListener", "listener");
      return this;
    }

    /** The clock for key expiry and record times; default {@link Clock#systemUTC()}. */
    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /**
     * Runs the background tasks of what the engine builds from the policy: OIDC key-set fetches
     * and refreshes ahead of expiry, and OAuth2 token requests (the HTTP client's work). It must
     * run tasks on threads other than the caller's (a request waits at most one fetch deadline for
     * a fetch); an executor of virtual threads suits. Default: small pools of daemon threads the
     * engine owns ({@code inferpam-oidc-fetch …}, {@code inferpam-oidc-keys-…}, the JDK HTTP
     * client's own). The engine never shuts it down.
     *
     * @throws IllegalStateException when already set
     */
    public Builder executor(Executor executor) {
      this.executor = Background.setOnce(this.executor, executor, "executor", "executor");
      return this;
    }

    /**
     * Times the delayed work of what the engine builds: the expiry of reviews in the default
     * approval service. Default: one daemon thread ({@code inferpam-approval-expiry}) the
     * approval service owns. The engine never shuts it down.
     *
     * @throws IllegalStateException when already set
     */
    public Builder scheduler(ScheduledExecutorService scheduler) {
      this.scheduler = Background.setOnce(this.scheduler, scheduler, "scheduler", "scheduler");
      return this;
    }

    /**
     * Makes the threads the engine starts itself: the default recorder's writer thread (one, for
     * the recorder's life), and the threads of the pools the engine makes when no
     * {@link #executor} or {@link #scheduler} is given; those pools are shut down by
     * {@link PamEngine#close()}. Default: daemon threads named {@code inferpam-…}.
     *
     * @throws IllegalStateException when already set
     */
    public Builder threadFactory(ThreadFactory threadFactory) {
      this.threadFactory =
          Background.setOnce(this.threadFactory, threadFactory, "threadFactory", "threadFactory");
      return this;
    }

    /**
     * @throws IllegalStateException when no policy was set
     * @throws PolicyException       when no masker was given and the policy's {@code masking}
     *     section cannot be built (hash key unset, unreadable or too short; {@code max-hold-back}
     *     below what a detector needs); the message names the key's variable or file, never the key
     * @throws UncheckedIOException  when the policy's {@code recording.directory} cannot be opened
     *     for the default recorder (no engine is built that could not record); the message says
     *     why ({@code permission denied}, {@code read-only file system}, {@code not a directory},
     *     {@code in use by another recorder}) and names the file. Whatever was built before the
     *     failure is closed.
     */
    public PamEngine build() {
      if (policy == null) throw new IllegalStateException("policy is required");
      return new PamEngine(this);
    }
  }
}
