package dev.inferpam.core;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.Background;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The default {@link ApprovalService}: reviews held in memory, decided by reviewers through
 * {@link #approve} / {@link #reject} (the reviewer endpoints call these), expired after the
 * timeout. One instance per engine; it does not survive a restart (waiting callers are refused
 * {@link Status#CLOSED} by {@link #close()}, which the engine answers as expired).
 *
 * <h2>Behaviour</h2>
 * <ul>
 *   <li><b>Binding.</b> A review is for one request: its id, principal, rule and digest (see
 *       {@link dev.inferpam.core.internal.approval.RequestDigest}). Deciding review A completes only A's
 *       callers; a request with another digest waits for its own review. A second request with
 *       the <i>same</i> principal, rule and digest while the first still waits joins that review
 *       (the same bytes, so the same decision) and does not count against the bounds again.</li>
 *   <li><b>Reviewers.</b> Only members of one of the reviewer groups decide
 *       ({@link ReviewResult.Kind#NOT_A_REVIEWER}), and nobody decides a request whose principal
 *       has their subject, whatever the issuer ({@link ReviewResult.Kind#SELF_APPROVAL}: a person
 *       with an OIDC login and an API key of the same name is one person), nor sees it in
 *       {@link #pending(Principal)}. A person holding two identities under different subjects
 *       cannot be told apart here.</li>
 *   <li><b>Grant.</b> With {@code grant > 0}, an approval also approves at once the same
 *       principal's later requests under the same rule until {@code decided + grant}; their
 *       outcome carries the original approval's id, reviewer and decision time, and a reason
 *       saying it is a grant. Requests already waiting when the approval is given stay waiting
 *       for their own decision. Rejections grant nothing.</li>
 *   <li><b>Bounds.</b> At most {@code maxPendingPerPrincipal} reviews wait per principal and
 *       {@code maxPending} in total; beyond them {@link #request} returns a ticket whose stage is
 *       completed exceptionally with {@link ApprovalLimitException} (the engine answers 429 with
 *       {@code Retry-After}), never an {@link Outcome}, so that it cannot be mistaken for a
 *       rejection or an expiry. The {@link #maxPending} most recent decisions are remembered so
 *       that deciding again answers {@link ReviewResult.Kind#ALREADY_DECIDED}; older ids answer
 *       {@link ReviewResult.Kind#NOT_FOUND}.</li>
 *   <li><b>Expiry.</b> A review not decided by {@code created + timeout} completes
 *       {@link Status#EXPIRED}. Deadlines are read from the injected {@link Clock}. They are
 *       enforced in two ways: every call ({@link #request}, {@link #pending()}, {@link #approve},
 *       {@link #reject}) first expires what is due, so a late decision never wins; and a
 *       scheduler runs {@link #expireDue()} once each review's timeout has passed in real time, so
 *       that waiting callers are answered without other traffic. By default the service owns a
 *       single daemon thread for this; {@link Builder#scheduler} shares one, and
 *       {@link Builder#manualExpiry()} has none (tests with a fake clock call
 *       {@link #expireDue()} themselves).</li>
 *   <li><b>Withdrawal.</b> {@link Ticket#withdraw()} (or cancelling the ticket's stage through
 *       {@code toCompletableFuture().cancel(..)}) detaches that caller, whose stage completes
 *       {@link Status#WITHDRAWN}; a review left with no caller is removed, frees its place in the
 *       bounds, and answers {@link ReviewResult.Kind#ALREADY_DECIDED} afterwards.</li>
 * </ul>
 *
 * <p><b>Threads.</b> Thread-safe: request threads, reviewer threads and the expiry thread may
 * call in at once; state is guarded by one lock, held only for map updates. Stages are
 * completed after the lock is released, on the thread that decided (a reviewer's request
 * thread, the expiry thread, or the caller of {@link #expireDue()}); adapters that do real work
 * on completion should continue with {@code thenApplyAsync(.., theirExecutor)}.
 *
 * <p><b>Secrets.</b> {@link ApprovalService.Pending#request()} keeps method, path, query, body
 * and peer address, never the headers (they carry the caller's credential). The body is the prompt: reviewer
 * endpoints show a masked excerpt of it, never the raw bytes.
 */
public final class InProcessApprovalService implements ApprovalService {

  /** The reason of a withdrawn caller's outcome. */
  static final String WITHDRAWN_REASON = "withdrawn: the caller stopped waiting";

  /** The reason of the outcomes {@link #close()} gives. */
  static final String CLOSED_REASON = "approval service closed";

  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Logger log = LoggerFactory.getLogger(InProcessApprovalService.class);

  private final Clock clock;
  private final Duration timeout;
  private final Duration grant;
  private final Set<String> reviewers;
  private final int maxPendingPerPrincipal;
  private final int maxPending;
  private final ScheduledExecutorService scheduler;
  private final boolean ownScheduler;
  private final Consumer<Pending> onReview;

  /** Guards the state below; a lock, not a monitor, so that no virtual thread is ever pinned here. */
  private final ReentrantLock lock = new ReentrantLock();

  /** Waiting reviews by id, in creation order. */
  private final LinkedHashMap<String, Entry> pending = new LinkedHashMap<>();

  /** Waiting reviews by {@code rule + '\n' + digest}, for joining identical requests. */
  private final Map<String, Entry> byDigest = new HashMap<>();

  private final Map<String, Integer> perPrincipal = new HashMap<>();

  /** Recent decisions by id, oldest first, at most {@link #maxPending}. */
  private final LinkedHashMap<String, Outcome> decided = new LinkedHashMap<>();

  /** Active grants by {@code principalKey + '\n' + rule}. */
  private final Map<String, Grant> grants = new HashMap<>();

  private boolean closed;

  private static final class Entry {
    final String id;
    final Principal principal;
    final String principalKey;
    final String rule;
    final String digest;
    final InferenceRequest request;
    final Instant created;
    final Instant expires;
    final List<Waiter> waiters = new ArrayList<>();
    ScheduledFuture<?> timer;

    Entry(
        String id,
        Principal principal,
        String rule,
        String digest,
        InferenceRequest request,
        Instant created,
        Instant expires) {
      this.id = id;
      this.principal = principal;
      this.principalKey = principalKey(principal);
      this.rule = rule;
      this.digest = digest;
      this.request = request;
      this.created = created;
      this.expires = expires;
    }

    Pending view() {
      return new Pending(id, principal, rule, digest, request, created, expires);
    }
  }

  private record Grant(Outcome approval, Instant until) {}

  /**
   * A waiting caller: its stage, and the review it waits for, so that withdrawing it (or
   * cancelling the stage) detaches it from that review.
   */
  private final class Waiter implements Ticket {
    final CompletableFuture<Outcome> stage = new CompletableFuture<>();
    volatile Entry entry;

    @Override
    public String approvalId() {
      Entry e = entry;
      return e == null ? null : e.id;
    }

    @Override
    public CompletionStage<Outcome> outcome() {
      return stage;
    }

    @Override
    public void withdraw() {
      Entry e = entry;
      if (e != null && !stage.isDone()) InProcessApprovalService.this.withdraw(e, this);
    }

    @Override
    public String toString() {
      return "Ticket[" + approvalId() + "]";
    }
  }

  /** Stages to complete once the lock is released. */
  private record Completion(List<Waiter> waiters, Outcome outcome) {
    void run() {
      for (Waiter w : waiters) w.stage.complete(outcome);
    }
  }

  private InProcessApprovalService(Builder b) {
    this.clock = b.clock;
    this.timeout = b.timeout;
    this.grant = b.grant;
    this.reviewers = Set.copyOf(b.reviewers);
    this.maxPendingPerPrincipal = b.maxPendingPerPrincipal;
    this.maxPending = b.maxPending;
    this.onReview = b.onReview;
    if (b.manual) {
      this.scheduler = null;
      this.ownScheduler = false;
    } else if (b.scheduler != null) {
      this.scheduler = b.scheduler;
      this.ownScheduler = false;
    } else {
      ScheduledThreadPoolExecutor s =
          new ScheduledThreadPoolExecutor(1, Background.daemonThreads("inferpam-approval-expiry"));
      s.setRemoveOnCancelPolicy(true);
      this.scheduler = s;
      this.ownScheduler = true;
    }
  }

  /** A builder; {@link Builder#reviewers} is required. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * A service with the settings of a policy's {@code approval} section and its own expiry thread.
   *
   * @throws NullPointerException when an argument is null
   */
  public static InProcessApprovalService from(Policy.Approval approval, Clock clock) {
    return builder().settings(approval).clock(clock).build();
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  /**
   * Opens a review for {@code request}, or joins the waiting one with the same principal, rule
   * and digest, or approves at once under an active grant.
   *
   * @return the caller's ticket: its stage completes with the outcome, or exceptionally with
   *     {@link ApprovalLimitException} when a bound is reached. After {@link #close()}, a stage
   *     completed {@link Status#CLOSED}.
   * @throws NullPointerException     when an argument is null
   * @throws IllegalArgumentException when {@code rule} or {@code digest} is blank
   */
  @Override
  public Ticket request(Principal principal, InferenceRequest request, String rule, String digest) {
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(rule, "rule");
    Objects.requireNonNull(digest, "digest");
    if (rule.isBlank()) throw new IllegalArgumentException("rule must not be blank");
    if (digest.isBlank()) throw new IllegalArgumentException("digest must not be blank");
    List<Completion> due = new ArrayList<>();
    Waiter waiter = new Waiter();
    Entry entry;
    boolean opened = false;
    try {
      lock.lock();
      try {
        Instant now = clock.instant();
        if (closed)
          return Ticket.decided(new Outcome(null, Status.CLOSED, null, CLOSED_REASON, now));
        expireDueLocked(now, due);
        String key = principalKey(principal);
        Grant g = grants.get(key + '\n' + rule);
        if (g != null && now.isBefore(g.until())) {
          Outcome a = g.approval();
          String reason =
              "within the "
                  + formatGrant()
                  + " grant of approval "
                  + a.approvalId()
                  + (a.reason() == null ? "" : ": " + a.reason());
          return Ticket.decided(
              new Outcome(a.approvalId(), Status.APPROVED, a.reviewer(), reason, a.decided()));
        }
        entry = byDigest.get(rule + '\n' + digest);
        if (entry != null && entry.principalKey.equals(key)) {
          entry.waiters.add(waiter);
          waiter.entry = entry;
        } else {
          int mine = perPrincipal.getOrDefault(key, 0);
          if (mine >= maxPendingPerPrincipal) {
            Instant first = null;
            for (Entry e : pending.values()) {
              if (e.principalKey.equals(key) && (first == null || e.expires.isBefore(first)))
                first = e.expires;
            }
            return Ticket.refused(
                new ApprovalLimitException(
                    ApprovalLimitException.Scope.PRINCIPAL,
                    maxPendingPerPrincipal,
                    until(now, first),
                    rule));
          }
          if (pending.size() >= maxPending) {
            Instant first = null;
            for (Entry e : pending.values()) {
              if (first == null || e.expires.isBefore(first)) first = e.expires;
            }
            return Ticket.refused(
                new ApprovalLimitException(
                    ApprovalLimitException.Scope.TOTAL, maxPending, until(now, first), rule));
          }
          InferenceRequest withoutHeaders =
              new InferenceRequest(
                  request.method(),
                  request.path(),
                  request.query(),
                  Map.of(),
                  request.body(),
                  request.remoteAddress());
          entry =
              new Entry(newId(), principal, rule, digest, withoutHeaders, now, now.plus(timeout));
          entry.waiters.add(waiter);
          waiter.entry = entry;
          pending.put(entry.id, entry);
          byDigest.put(rule + '\n' + digest, entry);
          perPrincipal.merge(key, 1, Integer::sum);
          opened = true;
          if (scheduler != null) {
            // A millisecond late, so that the clock has reached the deadline when it runs.
            entry.timer =
                scheduler.schedule(this::expireDue, timeout.toMillis() + 1, TimeUnit.MILLISECONDS);
          }
        }
      } finally {
        lock.unlock();
      }
    } finally {
      due.forEach(Completion::run);
    }
    Entry joined = entry;
    waiter.stage.whenComplete(
        (o, e) -> {
          if (waiter.stage.isCancelled()) withdraw(joined, waiter);
        });
    if (opened) {
      try {
        onReview.accept(entry.view());
      } catch (RuntimeException e) {
        log.warn(
            "inferpam: review listener failed for review {}: {}", entry.id, e.getClass().getName());
      }
    }
    return waiter;
  }

  private static Duration until(Instant now, Instant then) {
    if (then == null || !then.isAfter(now)) return Duration.ZERO;
    return Duration.between(now, then);
  }

  private String formatGrant() {
    return dev.inferpam.core.internal.policy.Durations.format(grant);
  }

  /**
   * A caller stopped waiting: its stage completes withdrawn, and a review nobody waits for any
   * more is dropped. A caller whose review was decided meanwhile keeps that decision.
   */
  private void withdraw(Entry entry, Waiter waiter) {
    Outcome gone;
    lock.lock();
    try {
      // Not among the waiters: the review ended, and its completion (run after that lock) wins.
      if (!entry.waiters.remove(waiter)) return;
      gone = new Outcome(entry.id, Status.WITHDRAWN, null, WITHDRAWN_REASON, clock.instant());
      if (entry.waiters.isEmpty() && pending.get(entry.id) == entry) remove(entry, gone);
    } finally {
      lock.unlock();
    }
    waiter.stage.complete(gone);
  }

  // ---------------------------------------------------------------------------------------------
  // Reviewers

  /**
   * Every review waiting now, oldest first, whoever requested it (an operator's view; reviewers
   * get {@link #pending(Principal)}); expires what is due first.
   */
  public List<Pending> pending() {
    List<Completion> due = new ArrayList<>();
    try {
      lock.lock();
      try {
        expireDueLocked(clock.instant(), due);
        List<Pending> out = new ArrayList<>(pending.size());
        for (Entry e : pending.values()) out.add(e.view());
        return List.copyOf(out);
      } finally {
        lock.unlock();
      }
    } finally {
      due.forEach(Completion::run);
    }
  }

  /**
   * The reviews {@code reviewer} may decide, oldest first: all waiting ones but those requested
   * under the reviewer's own subject; empty for a non-reviewer. Expires what is due first.
   */
  @Override
  public List<Pending> pending(Principal reviewer) {
    Objects.requireNonNull(reviewer, "reviewer");
    if (!isReviewer(reviewer)) return List.of();
    List<Pending> out = new ArrayList<>();
    for (Pending p : pending()) {
      if (!p.principal().subject().equals(reviewer.subject())) out.add(p);
    }
    return List.copyOf(out);
  }

  /**
   * Approves review {@code id}: its callers' stages complete {@link Status#APPROVED} with the
   * reviewer's subject, the reason and the time.
   *
   * @param reason optional, at most {@value #MAX_REASON_CHARS} chars
   * @throws NullPointerException     when {@code id} or {@code reviewer} is null
   * @throws IllegalArgumentException when the reason is too long
   */
  @Override
  public ReviewResult approve(String id, Principal reviewer, String reason) {
    return decide(id, reviewer, reason, Status.APPROVED);
  }

  /**
   * Rejects review {@code id}: its callers' stages complete {@link Status#REJECTED} with the
   * reviewer's subject, the reason and the time. Same checks as {@link #approve}.
   */
  @Override
  public ReviewResult reject(String id, Principal reviewer, String reason) {
    return decide(id, reviewer, reason, Status.REJECTED);
  }

  private ReviewResult decide(String id, Principal reviewer, String reason, Status status) {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(reviewer, "reviewer");
    if (reason != null && reason.length() > MAX_REASON_CHARS) {
      throw new IllegalArgumentException("reason is longer than " + MAX_REASON_CHARS + " chars");
    }
    List<Completion> due = new ArrayList<>();
    try {
      lock.lock();
      try {
        Instant now = clock.instant();
        expireDueLocked(now, due);
        if (!isReviewer(reviewer)) return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
        Entry e = pending.get(id);
        if (e == null) {
          Outcome before = decided.get(id);
          return before != null
              ? new ReviewResult(ReviewResult.Kind.ALREADY_DECIDED, before)
              : ReviewResult.refused(ReviewResult.Kind.NOT_FOUND);
        }
        if (e.principal.subject().equals(reviewer.subject())) {
          return ReviewResult.refused(ReviewResult.Kind.SELF_APPROVAL);
        }
        Outcome outcome = new Outcome(e.id, status, reviewer.subject(), reason, now);
        due.add(remove(e, outcome));
        if (status == Status.APPROVED && !grant.isZero()) {
          grants.put(e.principalKey + '\n' + e.rule, new Grant(outcome, now.plus(grant)));
        }
        return ReviewResult.decided(outcome);
      } finally {
        lock.unlock();
      }
    } finally {
      due.forEach(Completion::run);
    }
  }

  /** Whether {@code p} is in one of the reviewer groups (may list and decide reviews). */
  @Override
  public boolean isReviewer(Principal p) {
    Objects.requireNonNull(p, "principal");
    for (String g : reviewers) {
      if (p.inGroup(g)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------------
  // Expiry and lifecycle

  /**
   * Completes {@link Status#EXPIRED} every review whose deadline has been reached on the clock,
   * and forgets ended grants. Called by the expiry scheduler; tests with a fake clock call it
   * after advancing the clock.
   *
   * @return how many reviews expired
   */
  public int expireDue() {
    List<Completion> due = new ArrayList<>();
    try {
      lock.lock();
      try {
        expireDueLocked(clock.instant(), due);
      } finally {
        lock.unlock();
      }
    } finally {
      due.forEach(Completion::run);
    }
    return due.size();
  }

  private void expireDueLocked(Instant now, List<Completion> due) {
    for (Iterator<Entry> it = pending.values().iterator(); it.hasNext(); ) {
      Entry e = it.next();
      // Not "break" at the first one not due: a system clock stepped back breaks creation order.
      if (now.isBefore(e.expires)) continue;
      it.remove();
      due.add(
          removeIndexes(
              e,
              new Outcome(
                  e.id,
                  Status.EXPIRED,
                  null,
                  "no decision within "
                      + dev.inferpam.core.internal.policy.Durations.format(timeout),
                  now)));
    }
    grants.values().removeIf(g -> !now.isBefore(g.until()));
  }

  /** Ends review {@code e} with {@code outcome}: no longer pending, remembered as decided. */
  private Completion remove(Entry e, Outcome outcome) {
    pending.remove(e.id);
    return removeIndexes(e, outcome);
  }

  private Completion removeIndexes(Entry e, Outcome outcome) {
    byDigest.remove(e.rule + '\n' + e.digest, e);
    perPrincipal.computeIfPresent(e.principalKey, (k, n) -> n <= 1 ? null : n - 1);
    if (e.timer != null) e.timer.cancel(false);
    decided.put(e.id, outcome);
    while (decided.size() > maxPending) {
      Iterator<String> oldest = decided.keySet().iterator();
      oldest.next();
      oldest.remove();
    }
    List<Waiter> waiters = List.copyOf(e.waiters);
    e.waiters.clear();
    return new Completion(waiters, outcome);
  }

  /**
   * Ends every waiting review {@link Status#CLOSED} ("approval service closed"), refuses later
   * requests the same way, and stops the expiry thread the service owns (a shared scheduler is left
   * running). Idempotent.
   */
  @Override
  public void close() {
    List<Completion> due = new ArrayList<>();
    try {
      lock.lock();
      try {
        if (closed) return;
        closed = true;
        Instant now = clock.instant();
        for (Entry e : List.copyOf(pending.values())) {
          due.add(remove(e, new Outcome(e.id, Status.CLOSED, null, CLOSED_REASON, now)));
        }
        grants.clear();
      } finally {
        lock.unlock();
      }
    } finally {
      due.forEach(Completion::run);
      if (ownScheduler) scheduler.shutdownNow();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** One principal across issuers and identification kinds. */
  private static String principalKey(Principal p) {
    return p.via() + '\n' + (p.issuer() == null ? "" : p.issuer()) + '\n' + p.subject();
  }

  private static String newId() {
    byte[] b = new byte[10];
    RANDOM.nextBytes(b);
    return "apr-" + HexFormat.of().formatHex(b);
  }

  /**
   * Builds an {@link InProcessApprovalService}. Not thread-safe; setters validate at once.
   * Defaults: system UTC clock, timeout 5m, grant 0s, bounds 5 per principal and 1000 in total,
   * an own expiry thread.
   */
  public static final class Builder {
    private Clock clock = Clock.systemUTC();
    private Duration timeout = Policy.Approval.DEFAULT_TIMEOUT;
    private Duration grant = Duration.ZERO;
    private Set<String> reviewers;
    private int maxPendingPerPrincipal = Policy.Approval.DEFAULT_MAX_PENDING_PER_PRINCIPAL;
    private int maxPending = Policy.Approval.DEFAULT_MAX_PENDING;
    private ScheduledExecutorService scheduler;
    private boolean manual;
    private Consumer<Pending> onReview = p -> {};

    private Builder() {}

    /**
     * Called once for every review that starts waiting (not for requests that join a waiting
     * review or pass under a grant), on the requesting thread, after the review is open and
     * outside the service's lock; the engine uses it to tell a {@link dev.inferpam.api.ReviewNotifier}.
     * It must return promptly; an exception it throws is logged (its type only) and ignored.
     */
    public Builder onReview(Consumer<Pending> listener) {
      this.onReview = Objects.requireNonNull(listener, "listener");
      return this;
    }

    /** Reviewers, timeout, grant and bounds from a policy's {@code approval} section. */
    public Builder settings(Policy.Approval approval) {
      Objects.requireNonNull(approval, "approval");
      reviewers(approval.reviewers());
      timeout(approval.timeout());
      grant(approval.grant());
      maxPendingPerPrincipal(approval.maxPendingPerPrincipal());
      return maxPending(approval.maxPending());
    }

    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /** @throws IllegalArgumentException unless {@code 0 < timeout <= 1h}, in whole milliseconds */
    public Builder timeout(Duration timeout) {
      Objects.requireNonNull(timeout, "timeout");
      if (timeout.isNegative()
          || timeout.isZero()
          || timeout.compareTo(Policy.Approval.MAX_TIMEOUT) > 0
          || timeout.getNano() % 1_000_000 != 0) {
        throw new IllegalArgumentException(
            "timeout must be > 0 and at most 1h in whole milliseconds, was " + timeout);
      }
      this.timeout = timeout;
      return this;
    }

    /** @throws IllegalArgumentException unless {@code 0 <= grant <= 1d}, in whole milliseconds */
    public Builder grant(Duration grant) {
      Objects.requireNonNull(grant, "grant");
      if (grant.isNegative()
          || grant.compareTo(Policy.Approval.MAX_GRANT) > 0
          || grant.getNano() % 1_000_000 != 0) {
        throw new IllegalArgumentException(
            "grant must be between 0 and 1d in whole milliseconds, was " + grant);
      }
      this.grant = grant;
      return this;
    }

    /** Groups whose members decide. @throws IllegalArgumentException when empty or holding {@code *} */
    public Builder reviewers(Set<String> groups) {
      Objects.requireNonNull(groups, "groups");
      if (groups.isEmpty()) throw new IllegalArgumentException("reviewers must not be empty");
      if (groups.contains("*"))
        throw new IllegalArgumentException("reviewers must name groups, not \"*\"");
      this.reviewers = Set.copyOf(groups);
      return this;
    }

    /** @throws IllegalArgumentException when not positive */
    public Builder maxPendingPerPrincipal(int max) {
      if (max <= 0)
        throw new IllegalArgumentException("maxPendingPerPrincipal must be > 0, was " + max);
      this.maxPendingPerPrincipal = max;
      return this;
    }

    /** @throws IllegalArgumentException when not positive */
    public Builder maxPending(int max) {
      if (max <= 0) throw new IllegalArgumentException("maxPending must be > 0, was " + max);
      this.maxPending = max;
      return this;
    }

    /** Runs expiry on a shared scheduler instead of an own thread; the service does not shut it down. */
    public Builder scheduler(ScheduledExecutorService scheduler) {
      this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
      this.manual = false;
      return this;
    }

    /**
     * No expiry thread: reviews expire only when {@link #expireDue()} or another method of the
     * service is called after their deadline. For tests with a fake clock, or callers that drive
     * expiry themselves.
     */
    public Builder manualExpiry() {
      this.manual = true;
      this.scheduler = null;
      return this;
    }

    /**
     * @throws IllegalStateException when no reviewers were set, or the per-principal bound is
     *     above the total one
     */
    public InProcessApprovalService build() {
      if (reviewers == null) throw new IllegalStateException("reviewers are required");
      if (maxPendingPerPrincipal > maxPending) {
        throw new IllegalStateException(
            "maxPendingPerPrincipal ("
                + maxPendingPerPrincipal
                + ") must not exceed maxPending ("
                + maxPending
                + ")");
      }
      return new InProcessApprovalService(this);
    }
  }
}
