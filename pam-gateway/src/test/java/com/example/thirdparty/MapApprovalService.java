package com.example.thirdparty;

import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An {@link ApprovalService} as an application might write its own, against {@code pam-api}
 * alone: reviews in a map under one lock, expired when any call finds them due (no scheduler:
 * the engine's own wait bounds a caller nobody calls in for). Stages are completed after the
 * lock is released.
 */
public final class MapApprovalService implements ApprovalService {
  private static final int REMEMBERED = 10_000;

  private final Clock clock;
  private final Set<String> reviewerGroups;
  private final Duration timeout;
  private final int maxPerPrincipal;
  private final int maxTotal;
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<String, Review> waiting = new LinkedHashMap<>();
  private final Map<String, Outcome> ended =
      new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Outcome> eldest) {
          return size() > REMEMBERED;
        }
      };
  private boolean closed;

  public MapApprovalService(
      Clock clock,
      Set<String> reviewerGroups,
      Duration timeout,
      int maxPerPrincipal,
      int maxTotal) {
    this.clock = Objects.requireNonNull(clock);
    this.reviewerGroups = Set.copyOf(reviewerGroups);
    this.timeout = Objects.requireNonNull(timeout);
    this.maxPerPrincipal = maxPerPrincipal;
    this.maxTotal = maxTotal;
  }

  private final class Review {
    final String id = "rev-" + UUID.randomUUID();
    final Principal principal;
    final String rule;
    final String digest;
    final InferenceRequest request;
    final Instant created;
    final Instant expires;
    final List<Caller> callers = new ArrayList<>();

    Review(
        Principal principal,
        String rule,
        String digest,
        InferenceRequest request,
        Instant created) {
      this.principal = principal;
      this.rule = rule;
      this.digest = digest;
      this.request =
          new InferenceRequest(
              request.method(),
              request.path(),
              request.query(),
              Map.of(),
              request.body(),
              request.remoteAddress());
      this.created = created;
      this.expires = created.plus(timeout);
    }

    boolean sameRequest(Principal p, String r, String d) {
      return person(principal).equals(person(p)) && rule.equals(r) && digest.equals(d);
    }
  }

  private final class Caller implements Ticket {
    final CompletableFuture<Outcome> stage = new CompletableFuture<>();
    final Review review;

    Caller(Review review) {
      this.review = review;
    }

    @Override
    public String approvalId() {
      return review.id;
    }

    @Override
    public CompletionStage<Outcome> outcome() {
      return stage;
    }

    @Override
    public void withdraw() {
      Outcome gone;
      lock.lock();
      try {
        if (!review.callers.remove(this)) return; // ended already: its outcome stands
        gone =
            new Outcome(review.id, Status.WITHDRAWN, null, "the caller went away", clock.instant());
        if (review.callers.isEmpty() && waiting.get(review.id) == review) end(review, gone);
      } finally {
        lock.unlock();
      }
      stage.complete(gone);
    }
  }

  /** Stages to complete once the lock is released. */
  private final List<Runnable> toComplete = new ArrayList<>();

  private void end(Review r, Outcome o) {
    waiting.remove(r.id);
    ended.put(r.id, o);
    List<Caller> callers = List.copyOf(r.callers);
    r.callers.clear();
    toComplete.add(() -> callers.forEach(c -> c.stage.complete(o)));
  }

  private void expireDue(Instant now) {
    for (Review r : List.copyOf(waiting.values())) {
      if (!now.isBefore(r.expires))
        end(r, new Outcome(r.id, Status.EXPIRED, null, "no decision in time", now));
    }
  }

  private void unlockAndComplete() {
    List<Runnable> run = List.copyOf(toComplete);
    toComplete.clear();
    lock.unlock();
    run.forEach(Runnable::run);
  }

  private static String person(Principal p) {
    return p.via() + "|" + p.issuer() + "|" + p.subject();
  }

  @Override
  public Ticket request(Principal principal, InferenceRequest request, String rule, String digest) {
    Objects.requireNonNull(principal);
    Objects.requireNonNull(request);
    Objects.requireNonNull(rule);
    Objects.requireNonNull(digest);
    lock.lock();
    try {
      Instant now = clock.instant();
      if (closed) return Ticket.decided(new Outcome(null, Status.CLOSED, null, "shut down", now));
      expireDue(now);
      for (Review r : waiting.values()) {
        if (r.sameRequest(principal, rule, digest)) {
          Caller c = new Caller(r);
          r.callers.add(c);
          return c;
        }
      }
      List<Review> mine =
          waiting.values().stream()
              .filter(r -> person(r.principal).equals(person(principal)))
              .toList();
      if (mine.size() >= maxPerPrincipal) {
        return Ticket.refused(
            new ApprovalLimitException(
                ApprovalLimitException.Scope.PRINCIPAL,
                maxPerPrincipal,
                Duration.between(now, mine.get(0).expires),
                rule));
      }
      if (waiting.size() >= maxTotal) {
        return Ticket.refused(
            new ApprovalLimitException(
                ApprovalLimitException.Scope.TOTAL,
                maxTotal,
                Duration.between(now, waiting.values().iterator().next().expires),
                rule));
      }
      Review r = new Review(principal, rule, digest, request, now);
      Caller c = new Caller(r);
      r.callers.add(c);
      waiting.put(r.id, r);
      return c;
    } finally {
      unlockAndComplete();
    }
  }

  @Override
  public boolean isReviewer(Principal principal) {
    return principal.groups().stream().anyMatch(reviewerGroups::contains);
  }

  @Override
  public List<Pending> pending(Principal reviewer) {
    Objects.requireNonNull(reviewer);
    if (!isReviewer(reviewer)) return List.of();
    lock.lock();
    try {
      expireDue(clock.instant());
      List<Pending> out = new ArrayList<>();
      for (Review r : waiting.values()) {
        if (r.principal.subject().equals(reviewer.subject())) continue;
        out.add(new Pending(r.id, r.principal, r.rule, r.digest, r.request, r.created, r.expires));
      }
      return out;
    } finally {
      unlockAndComplete();
    }
  }

  @Override
  public ReviewResult approve(String approvalId, Principal reviewer, String reason) {
    return decide(approvalId, reviewer, reason, Status.APPROVED);
  }

  @Override
  public ReviewResult reject(String approvalId, Principal reviewer, String reason) {
    return decide(approvalId, reviewer, reason, Status.REJECTED);
  }

  private ReviewResult decide(String id, Principal reviewer, String reason, Status status) {
    Objects.requireNonNull(id);
    Objects.requireNonNull(reviewer);
    if (reason != null && reason.length() > MAX_REASON_CHARS)
      throw new IllegalArgumentException("reason too long");
    lock.lock();
    try {
      Instant now = clock.instant();
      expireDue(now);
      if (!isReviewer(reviewer)) return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
      Review r = waiting.get(id);
      if (r == null) {
        Outcome before = ended.get(id);
        return before == null
            ? ReviewResult.refused(ReviewResult.Kind.NOT_FOUND)
            : new ReviewResult(ReviewResult.Kind.ALREADY_DECIDED, before);
      }
      if (r.principal.subject().equals(reviewer.subject()))
        return ReviewResult.refused(ReviewResult.Kind.SELF_APPROVAL);
      Outcome o = new Outcome(id, status, reviewer.subject(), reason, now);
      end(r, o);
      return ReviewResult.decided(o);
    } finally {
      unlockAndComplete();
    }
  }

  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      Instant now = clock.instant();
      for (Review r : List.copyOf(waiting.values()))
        end(r, new Outcome(r.id, Status.CLOSED, null, "shut down", now));
    } finally {
      unlockAndComplete();
    }
  }
}
