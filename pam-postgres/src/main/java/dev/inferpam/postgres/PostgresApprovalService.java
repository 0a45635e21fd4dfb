package dev.inferpam.postgres;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inferpam.api.ApprovalLimitException;
import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An {@link ApprovalService} whose reviews live in PostgreSQL, so that every replica of a fleet
 * lists and decides the same reviews: a review requested on replica A is listed by B and
 * approved through C, and A, which holds the waiting request, learns the decision at once
 * (PostgreSQL {@code LISTEN/NOTIFY}) or, should a notification be lost, within the poll
 * interval.
 *
 * <h2>Behaviour</h2>
 * The rules of {@link dev.inferpam.core.InProcessApprovalService} hold fleet-wide:
 * <ul>
 *   <li><b>Binding and joining.</b> A review is for one principal, rule and digest; an identical
 *       request on any replica joins the waiting review (one row, a waiter row per replica).</li>
 *   <li><b>Reviewers.</b> Only members of the reviewer groups list and decide; nobody decides or
 *       sees a request made under their own subject. Refusals are checked in the contract's
 *       order.</li>
 *   <li><b>Bounds</b> per principal and in total count the waiting reviews of the whole fleet;
 *       reviews are opened one at a time fleet-wide (a transaction-scoped advisory lock), so two
 *       replicas cannot both take the last place.</li>
 *   <li><b>Expiry.</b> A review not decided by its deadline (on the injected clock) expires; any
 *       replica may mark it, the one that holds it answers its callers. A decision after the
 *       deadline answers {@link ReviewResult.Kind#ALREADY_DECIDED} with the expiry.</li>
 *   <li><b>Grant.</b> An approval approves the same principal's later requests under the same
 *       rule, on any replica, until {@code decided + grant}.</li>
 *   <li><b>Withdrawal.</b> A review whose callers all stopped waiting, on every replica, ends
 *       {@link Status#WITHDRAWN}. A replica that stops answering (killed, cut off) for {@code
 *       dead-after} (default five poll intervals, at least 10 s) is taken for dead by the others:
 *       its waiter rows are removed and reviews nobody else waits for are withdrawn.</li>
 *   <li><b>Close</b> ends this replica's callers {@link Status#CLOSED}; a review joined by another
 *       replica's caller stays open for that caller.</li>
 * </ul>
 * Decided reviews are kept (the decision is part of the audit trail), so a second decision of any
 * earlier review answers {@link ReviewResult.Kind#ALREADY_DECIDED}.
 *
 * <h2>When PostgreSQL is away</h2>
 * A request that cannot be opened or joined gets a ticket whose stage fails with an
 * {@link IllegalStateException} (the engine answers 503 {@code approval_unavailable}); a
 * reviewer's call fails the same way (the reviewer endpoints answer 503). Callers already waiting
 * keep waiting; their deadlines are kept by this replica's timers, and the listener reconnects
 * by itself.
 *
 * <p><b>Threads.</b> Thread-safe. Each service runs one listener thread (LISTEN, the poll, the
 * heartbeat) and one timer thread (deadlines); a withdrawal is written to the database on the
 * timer thread, never on the caller's (which may be an event loop). Stages are completed on the
 * thread that learnt the outcome.
 */
public final class PostgresApprovalService implements ApprovalService {
  /** The channel decisions are announced on. */
  static final String CHANNEL = "inferpam_reviews";

  static final String WITHDRAWN_REASON = "withdrawn: the caller stopped waiting";
  static final String CLOSED_REASON = "approval service closed";
  static final String DEAD_REASON = "withdrawn: the replica holding the request stopped";

  /** Serialises the opening of reviews fleet-wide (pg_advisory_xact_lock key). */
  private static final long OPEN_LOCK = 0x1A7E_9A70_0001L;

  private static final Logger log = LoggerFactory.getLogger(PostgresApprovalService.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final SecureRandom RANDOM = new SecureRandom();

  private final PostgresState state;
  private final Clock clock;
  private final Duration timeout;
  private final Duration grant;
  private final Set<String> reviewers;
  private final int maxPendingPerPrincipal;
  private final int maxPending;
  private final Duration pollInterval;
  private final Duration deadAfter;
  private final Consumer<Pending> onReview;
  private final String replica;

  /** Guards {@link #local} and {@link #closed}; a lock, not a monitor, so no virtual thread pins. */
  private final ReentrantLock lock = new ReentrantLock();

  /** Reviews this replica's callers wait for, by id. */
  private final Map<String, List<Waiter>> local = new HashMap<>();

  /** Reviews this replica's last caller withdrew from, not yet written to the database. */
  private final java.util.Queue<String> leaving =
      new java.util.concurrent.ConcurrentLinkedQueue<>();

  private final ReentrantLock leavingLock = new ReentrantLock();

  private boolean closed;
  private final ScheduledThreadPoolExecutor timers;
  private final Thread listener;
  private volatile boolean stopping;

  private PostgresApprovalService(Builder b) {
    this.state = b.state;
    this.clock = b.clock;
    this.timeout = b.timeout;
    this.grant = b.grant;
    this.reviewers = Set.copyOf(b.reviewers);
    this.maxPendingPerPrincipal = b.maxPendingPerPrincipal;
    this.maxPending = b.maxPending;
    this.pollInterval = b.pollInterval;
    this.deadAfter =
        b.deadAfter != null
            ? b.deadAfter
            : maxOf(Duration.ofSeconds(10), pollInterval.multipliedBy(5));
    this.onReview = b.onReview;
    this.replica = state.replicaId();
    this.timers =
        new ScheduledThreadPoolExecutor(
            1,
            r -> {
              Thread t = new Thread(r, "inferpam-reviews-timer");
              t.setDaemon(true);
              return t;
            });
    timers.setRemoveOnCancelPolicy(true);
    heartbeat();
    this.listener = new Thread(this::listen, "inferpam-reviews-listener");
    listener.setDaemon(true);
    listener.start();
  }

  /** A builder on {@code state}; {@link Builder#reviewers} (or {@link Builder#settings}) is required. */
  public static Builder builder(PostgresState state) {
    return new Builder(state);
  }

  // ------------------------------------------------------------------------------- requester

  @Override
  public Ticket request(Principal principal, InferenceRequest request, String rule, String digest) {
    Objects.requireNonNull(principal, "principal");
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(rule, "rule");
    Objects.requireNonNull(digest, "digest");
    if (rule.isBlank()) throw new IllegalArgumentException("rule must not be blank");
    if (digest.isBlank()) throw new IllegalArgumentException("digest must not be blank");
    Instant now = now();
    if (isClosed())
      return Ticket.decided(new Outcome(null, Status.CLOSED, null, CLOSED_REASON, now));
    drainLeaving();
    String key = principalKey(principal);
    Waiter waiter = new Waiter();
    Pending opened = null;
    try (Connection c = state.dataSource().getConnection()) {
      expireDue(c);
      now = now();
      try {
        try (PreparedStatement s = c.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
          s.setLong(1, OPEN_LOCK);
          s.execute();
        }
        Outcome granted = grantFor(c, key, rule, now);
        if (granted != null) {
          c.commit();
          return Ticket.decided(granted);
        }
        // joining locks the review's row, as leaving does: a review another replica's last
        // caller is ending is not joined
        String id = null;
        try (PreparedStatement s =
            c.prepareStatement(
                "SELECT id FROM inferpam.reviews WHERE principal_key = ? AND rule = ?"
                    + " AND digest = ? AND status = 'waiting' AND expires > ? FOR UPDATE")) {
          s.setString(1, key);
          s.setString(2, rule);
          s.setString(3, digest);
          s.setObject(4, odt(now));
          try (ResultSet r = s.executeQuery()) {
            if (r.next()) id = r.getString(1);
          }
        }
        if (id == null) {
          ApprovalLimitException full = bounds(c, key, rule, now);
          if (full != null) {
            c.rollback();
            return Ticket.refused(full);
          }
          id = newId();
          Instant expires = now.plus(timeout);
          try (PreparedStatement s =
              c.prepareStatement(
                  "INSERT INTO inferpam.reviews (id, principal_key, subject, principal, rule,"
                      + " digest, request, created, expires, status)"
                      + " VALUES (?, ?, ?, ?::jsonb, ?, ?, ?::jsonb, ?, ?, 'waiting')")) {
            s.setString(1, id);
            s.setString(2, key);
            s.setString(3, principal.subject());
            s.setString(4, principalJson(principal));
            s.setString(5, rule);
            s.setString(6, digest);
            s.setString(7, requestJson(request));
            s.setObject(8, odt(now));
            s.setObject(9, odt(expires));
            s.executeUpdate();
          }
          opened = new Pending(id, principal, rule, digest, withoutHeaders(request), now, expires);
          scheduleExpiry(expires);
        }
        try (PreparedStatement s =
            c.prepareStatement(
                "INSERT INTO inferpam.review_waiters (review_id, replica) VALUES (?, ?)"
                    + " ON CONFLICT DO NOTHING")) {
          s.setString(1, id);
          s.setString(2, replica);
          s.executeUpdate();
        }
        // Waiting here before the commit: a decision announced right after it finds the caller.
        attach(id, waiter);
        try {
          c.commit();
        } catch (SQLException e) {
          detach(id, waiter);
          throw e;
        }
        if (opened == null) scheduleExpiry(expiresOf(c, id));
      } catch (SQLException | RuntimeException e) {
        rollbackQuietly(c);
        throw e;
      }
    } catch (SQLException e) {
      log.warn("inferpam: cannot open a review in PostgreSQL: {}", PostgresState.describe(e));
      return Ticket.refused(unavailable(e));
    }
    CompletableFuture<Outcome> stage = waiter.stage;
    stage.whenComplete(
        (o, e) -> {
          if (stage.isCancelled()) waiter.withdraw();
        });
    if (opened != null) {
      try {
        onReview.accept(opened);
      } catch (RuntimeException e) {
        log.warn(
            "inferpam: review listener failed for review {}: {}",
            opened.id(),
            e.getClass().getName());
      }
    }
    // a decision made between the commit and now was announced to nobody waiting yet
    timers.execute(() -> settle(List.of(waiter.id)));
    return waiter;
  }

  private Outcome grantFor(Connection c, String key, String rule, Instant now) throws SQLException {
    if (grant.isZero()) return null;
    try (PreparedStatement s =
        c.prepareStatement(
            "SELECT id, reviewer, reason, decided FROM inferpam.reviews WHERE principal_key = ?"
                + " AND rule = ? AND status = 'approved' AND decided > ?"
                + " ORDER BY decided DESC LIMIT 1")) {
      s.setString(1, key);
      s.setString(2, rule);
      s.setObject(3, odt(now.minus(grant)));
      try (ResultSet r = s.executeQuery()) {
        if (!r.next()) return null;
        String id = r.getString(1);
        String reason = r.getString(3);
        return new Outcome(
            id,
            Status.APPROVED,
            r.getString(2),
            "within the "
                + Policy.formatDuration(grant)
                + " grant of approval "
                + id
                + (reason == null ? "" : ": " + reason),
            instant(r, 4));
      }
    }
  }

  private ApprovalLimitException bounds(Connection c, String key, String rule, Instant now)
      throws SQLException {
    try (PreparedStatement s =
        c.prepareStatement(
            "SELECT count(*) FILTER (WHERE principal_key = ?), count(*),"
                + " min(expires) FILTER (WHERE principal_key = ?), min(expires)"
                + " FROM inferpam.reviews WHERE status = 'waiting' AND expires > ?")) {
      s.setString(1, key);
      s.setString(2, key);
      s.setObject(3, odt(now));
      try (ResultSet r = s.executeQuery()) {
        r.next();
        if (r.getInt(1) >= maxPendingPerPrincipal) {
          return new ApprovalLimitException(
              ApprovalLimitException.Scope.PRINCIPAL,
              maxPendingPerPrincipal,
              until(now, instant(r, 3)),
              rule);
        }
        if (r.getInt(2) >= maxPending) {
          return new ApprovalLimitException(
              ApprovalLimitException.Scope.TOTAL, maxPending, until(now, instant(r, 4)), rule);
        }
        return null;
      }
    }
  }

  private Instant expiresOf(Connection c, String id) throws SQLException {
    try (PreparedStatement s =
        c.prepareStatement("SELECT expires FROM inferpam.reviews WHERE id = ?")) {
      s.setString(1, id);
      try (ResultSet r = s.executeQuery()) {
        return r.next() ? instant(r, 1) : now();
      }
    }
  }

  /** A waiting caller of this replica. */
  private final class Waiter implements Ticket {
    final CompletableFuture<Outcome> stage = new CompletableFuture<>();
    volatile String id;

    @Override
    public String approvalId() {
      return id;
    }

    @Override
    public CompletionStage<Outcome> outcome() {
      return stage;
    }

    @Override
    public void withdraw() {
      String review = id;
      if (review == null || stage.isDone()) return;
      boolean last;
      lock.lock();
      try {
        List<Waiter> ws = local.get(review);
        if (ws == null || !ws.remove(this)) return; // ended meanwhile: its outcome wins
        last = ws.isEmpty();
        if (last) local.remove(review);
      } finally {
        lock.unlock();
      }
      // queued before the outcome completes, so that whoever sees the outcome and then lists
      // through this replica finds the withdrawal written
      if (last) leaving.add(review);
      stage.complete(new Outcome(review, Status.WITHDRAWN, null, WITHDRAWN_REASON, now()));
      if (last) {
        // written off the caller's thread (it may be an event loop), and before this replica's
        // next listing, decision or request
        try {
          timers.execute(PostgresApprovalService.this::drainLeaving);
        } catch (java.util.concurrent.RejectedExecutionException closing) {
          // closed: close() ends what is left
        }
      }
    }

    @Override
    public String toString() {
      return "Ticket[" + id + "]";
    }
  }

  private void attach(String id, Waiter w) {
    lock.lock();
    try {
      w.id = id;
      local.computeIfAbsent(id, k -> new ArrayList<>()).add(w);
    } finally {
      lock.unlock();
    }
  }

  private void detach(String id, Waiter w) {
    lock.lock();
    try {
      List<Waiter> ws = local.get(id);
      if (ws != null && ws.remove(w) && ws.isEmpty()) local.remove(id);
    } finally {
      lock.unlock();
    }
  }

  /** Writes the withdrawals not yet written. */
  private void drainLeaving() {
    // one drain at a time: a listing waits for a withdrawal another thread is writing
    leavingLock.lock();
    try {
      for (String id = leaving.poll(); id != null; id = leaving.poll()) {
        leave(id, "withdrawn", WITHDRAWN_REASON);
      }
    } finally {
      leavingLock.unlock();
    }
  }

  /**
   * This replica no longer waits for review {@code id}: its waiter row goes, and a review nobody
   * waits for any more ends with {@code status}.
   */
  private void leave(String id, String status, String reason) {
    try (Connection c = state.dataSource().getConnection()) {
      c.setAutoCommit(false);
      try {
        lock.lock();
        try {
          // a caller of this replica joined again meanwhile: it still waits
          if (local.containsKey(id)) return;
        } finally {
          lock.unlock();
        }
        // the review's row first: two replicas leaving at once would otherwise each still see
        // the other's waiter row, and the review would wait with nobody waiting for it
        try (PreparedStatement s =
            c.prepareStatement("SELECT 1 FROM inferpam.reviews WHERE id = ? FOR UPDATE")) {
          s.setString(1, id);
          s.executeQuery().close();
        }
        try (PreparedStatement s =
            c.prepareStatement(
                "DELETE FROM inferpam.review_waiters WHERE review_id = ? AND replica = ?")) {
          s.setString(1, id);
          s.setString(2, replica);
          s.executeUpdate();
        }
        endUnwaited(c, List.of(id), status, reason);
        c.commit();
      } catch (SQLException e) {
        rollbackQuietly(c);
        throw e;
      }
    } catch (SQLException e) {
      log.warn(
          "inferpam: cannot withdraw review {} in PostgreSQL ({}); it expires at its deadline",
          id,
          PostgresState.describe(e));
    }
  }

  /** Ends, with {@code status}, those of {@code ids} that still wait and have no waiter left. */
  private void endUnwaited(Connection c, List<String> ids, String status, String reason)
      throws SQLException {
    try (PreparedStatement s =
        c.prepareStatement(
            "UPDATE inferpam.reviews r SET status = ?, reason = ?, decided = ?"
                + " WHERE r.id = ANY (?) AND r.status = 'waiting' AND NOT EXISTS"
                + " (SELECT 1 FROM inferpam.review_waiters w WHERE w.review_id = r.id)")) {
      s.setString(1, status);
      s.setString(2, reason);
      s.setObject(3, odt(now()));
      s.setArray(4, c.createArrayOf("text", ids.toArray()));
      s.executeUpdate();
    }
  }

  // -------------------------------------------------------------------------------- reviewer

  @Override
  public boolean isReviewer(Principal p) {
    Objects.requireNonNull(p, "principal");
    for (String g : reviewers) {
      if (p.inGroup(g)) return true;
    }
    return false;
  }

  @Override
  public List<Pending> pending(Principal reviewer) {
    Objects.requireNonNull(reviewer, "reviewer");
    if (!isReviewer(reviewer)) return List.of();
    drainLeaving();
    List<Pending> out = new ArrayList<>();
    try (Connection c = state.dataSource().getConnection()) {
      expireDue(c);
      c.setAutoCommit(true);
      try (PreparedStatement s =
          c.prepareStatement(
              "SELECT id, principal, rule, digest, request, created, expires"
                  + " FROM inferpam.reviews WHERE status = 'waiting' AND expires > ?"
                  + " AND subject <> ? ORDER BY created, seq")) {
        s.setObject(1, odt(now()));
        s.setString(2, reviewer.subject());
        try (ResultSet r = s.executeQuery()) {
          while (r.next()) {
            out.add(
                new Pending(
                    r.getString(1),
                    principalOf(r.getString(2)),
                    r.getString(3),
                    r.getString(4),
                    requestOf(r.getString(5)),
                    instant(r, 6),
                    instant(r, 7)));
          }
        }
      }
    } catch (SQLException e) {
      throw unavailable(e);
    }
    return List.copyOf(out);
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
    Objects.requireNonNull(id, "approvalId");
    Objects.requireNonNull(reviewer, "reviewer");
    if (reason != null && reason.length() > MAX_REASON_CHARS)
      throw new IllegalArgumentException("reason is longer than " + MAX_REASON_CHARS + " chars");
    if (!isReviewer(reviewer)) return ReviewResult.refused(ReviewResult.Kind.NOT_A_REVIEWER);
    drainLeaving();
    Outcome outcome;
    try (Connection c = state.dataSource().getConnection()) {
      expireDue(c);
      Instant now = now();
      try {
        String subject;
        String was;
        Instant expires;
        try (PreparedStatement s =
            c.prepareStatement(
                "SELECT subject, status, expires FROM inferpam.reviews WHERE id = ? FOR UPDATE")) {
          s.setString(1, id);
          try (ResultSet r = s.executeQuery()) {
            if (!r.next()) {
              c.rollback();
              return ReviewResult.refused(ReviewResult.Kind.NOT_FOUND);
            }
            subject = r.getString(1);
            was = r.getString(2);
            expires = instant(r, 3);
          }
        }
        if ("waiting".equals(was) && !now.isBefore(expires)) {
          // the deadline has passed: it wins over this late decision
          end(c, id, Status.EXPIRED, null, expiredReason(), now);
          announce(c, id);
          c.commit();
          settleLater(id);
          return new ReviewResult(ReviewResult.Kind.ALREADY_DECIDED, outcomeOf(id));
        }
        if (!"waiting".equals(was)) {
          c.rollback();
          return new ReviewResult(ReviewResult.Kind.ALREADY_DECIDED, outcomeOf(id));
        }
        if (subject.equals(reviewer.subject())) {
          c.rollback();
          return ReviewResult.refused(ReviewResult.Kind.SELF_APPROVAL);
        }
        outcome = new Outcome(id, status, reviewer.subject(), reason, now);
        end(c, id, status, reviewer.subject(), reason, now);
        announce(c, id);
        c.commit();
      } catch (SQLException | RuntimeException e) {
        rollbackQuietly(c);
        throw e;
      }
    } catch (SQLException e) {
      throw unavailable(e);
    }
    complete(id, outcome);
    return ReviewResult.decided(outcome);
  }

  private static void end(
      Connection c, String id, Status status, String reviewer, String reason, Instant when)
      throws SQLException {
    try (PreparedStatement s =
        c.prepareStatement(
            "UPDATE inferpam.reviews SET status = ?, reviewer = ?, reason = ?, decided = ?"
                + " WHERE id = ? AND status = 'waiting'")) {
      s.setString(1, status.name().toLowerCase(java.util.Locale.ROOT));
      s.setString(2, reviewer);
      s.setString(3, reason);
      s.setObject(4, odt(when));
      s.setString(5, id);
      s.executeUpdate();
    }
  }

  private static void announce(Connection c, String id) throws SQLException {
    try (PreparedStatement s = c.prepareStatement("SELECT pg_notify(?, ?)")) {
      s.setString(1, CHANNEL);
      s.setString(2, id);
      s.execute();
    }
  }

  // ------------------------------------------------------------------ expiry and settlement

  /**
   * Marks expired every waiting review whose deadline the clock has reached (on any replica),
   * announces them, and answers this replica's callers. Called before every request, listing and
   * decision, by this replica's timers at each of its deadlines, and at each poll; tests with a
   * fake clock call it after moving the clock.
   *
   * @return how many reviews this call expired
   */
  public int expireDue() {
    try (Connection c = state.dataSource().getConnection()) {
      return expireDue(c);
    } catch (SQLException e) {
      log.debug("inferpam: cannot expire reviews now: {}", PostgresState.describe(e));
      return 0;
    }
  }

  /** {@link #expireDue()} on {@code c}, in a transaction of its own; leaves auto-commit off. */
  private int expireDue(Connection c) throws SQLException {
    List<String> expired = new ArrayList<>();
    Instant now = now();
    c.setAutoCommit(false);
    try {
      try (PreparedStatement s =
          c.prepareStatement(
              "UPDATE inferpam.reviews SET status = 'expired', reason = ?, decided = ?"
                  + " WHERE status = 'waiting' AND expires <= ? RETURNING id")) {
        s.setString(1, expiredReason());
        s.setObject(2, odt(now));
        s.setObject(3, odt(now));
        try (ResultSet r = s.executeQuery()) {
          while (r.next()) expired.add(r.getString(1));
        }
      }
      for (String id : expired) announce(c, id);
      c.commit();
    } catch (SQLException e) {
      rollbackQuietly(c);
      throw e;
    }
    if (!expired.isEmpty()) settle(expired);
    return expired.size();
  }

  private String expiredReason() {
    return "no decision within " + Policy.formatDuration(timeout);
  }

  private void scheduleExpiry(Instant expires) {
    long ms = Math.max(0, Duration.between(now(), expires).toMillis()) + 1;
    try {
      timers.schedule(this::expireQuietly, ms, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException closing) {
      // closed: nothing waits any more
    }
  }

  private void expireQuietly() {
    try {
      expireDue();
    } catch (RuntimeException e) {
      log.warn("inferpam: review expiry failed: {}", e.toString());
    }
  }

  private void settleLater(String id) {
    try {
      timers.execute(() -> settle(List.of(id)));
    } catch (java.util.concurrent.RejectedExecutionException closing) {
      // closed: its callers were answered CLOSED
    }
  }

  /** Answers this replica's callers of those of {@code ids} that have ended. */
  private void settle(List<String> ids) {
    List<String> mine = new ArrayList<>();
    lock.lock();
    try {
      for (String id : ids) if (id != null && local.containsKey(id)) mine.add(id);
    } finally {
      lock.unlock();
    }
    if (mine.isEmpty()) return;
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement(
                "SELECT id, status, reviewer, reason, decided FROM inferpam.reviews"
                    + " WHERE id = ANY (?) AND status <> 'waiting'")) {
      s.setArray(1, c.createArrayOf("text", mine.toArray()));
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) complete(r.getString(1), outcome(r));
      }
    } catch (SQLException e) {
      log.debug("inferpam: cannot read review outcomes now: {}", PostgresState.describe(e));
    }
  }

  /** Completes this replica's callers of review {@code id} with {@code outcome}. */
  private void complete(String id, Outcome outcome) {
    List<Waiter> ws;
    lock.lock();
    try {
      ws = local.remove(id);
    } finally {
      lock.unlock();
    }
    if (ws == null) return;
    for (Waiter w : ws) w.stage.complete(outcome);
  }

  private Outcome outcomeOf(String id) {
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement(
                "SELECT id, status, reviewer, reason, decided FROM inferpam.reviews WHERE id = ?")) {
      s.setString(1, id);
      try (ResultSet r = s.executeQuery()) {
        return r.next() ? outcome(r) : null;
      }
    } catch (SQLException e) {
      return null;
    }
  }

  private static Outcome outcome(ResultSet r) throws SQLException {
    return new Outcome(
        r.getString(1),
        Status.valueOf(r.getString(2).toUpperCase(java.util.Locale.ROOT)),
        r.getString(3),
        r.getString(4),
        instant(r, 5));
  }

  // ---------------------------------------------------------------- listener and heartbeat

  /** LISTENs for decisions; every poll interval: heartbeat, expiry, dead replicas, a poll. */
  private void listen() {
    Connection c = null;
    while (!stopping) {
      try {
        if (c == null) {
          c = state.dedicatedConnection();
          try (var s = c.createStatement()) {
            s.execute("LISTEN " + CHANNEL);
          }
          pollOnce(); // catch up with what was announced while not listening
        }
        PGNotification[] ns =
            c.unwrap(PGConnection.class).getNotifications((int) pollInterval.toMillis());
        if (ns != null && ns.length > 0) {
          List<String> ids = new ArrayList<>();
          for (PGNotification n : ns) ids.add(n.getParameter());
          settle(ids);
        }
        pollOnce();
      } catch (SQLException | RuntimeException e) {
        if (stopping) break;
        log.debug("inferpam: review listener lost PostgreSQL: {}", e.toString());
        closeQuietly(c);
        c = null;
        LockSupport.parkNanos(pollInterval.toNanos());
      }
    }
    closeQuietly(c);
  }

  private long lastPoll;

  private void pollOnce() {
    long t = System.nanoTime();
    if (lastPoll != 0 && t - lastPoll < pollInterval.toNanos()) return;
    lastPoll = t;
    heartbeat();
    expireDue();
    reapDead();
    List<String> mine;
    lock.lock();
    try {
      mine = new ArrayList<>(local.keySet());
    } finally {
      lock.unlock();
    }
    if (!mine.isEmpty()) settle(mine);
  }

  private void heartbeat() {
    Instant now = now();
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement(
                "INSERT INTO inferpam.replicas (id, started, seen) VALUES (?, ?, ?)"
                    + " ON CONFLICT (id) DO UPDATE SET seen = excluded.seen")) {
      s.setString(1, replica);
      s.setObject(2, odt(now));
      s.setObject(3, odt(now));
      s.executeUpdate();
    } catch (SQLException e) {
      log.debug("inferpam: heartbeat failed: {}", PostgresState.describe(e));
    }
  }

  /**
   * Removes the waiter rows of replicas not seen for {@code dead-after}, and withdraws the reviews
   * nobody waits for any more.
   *
   * @return how many reviews were withdrawn
   */
  public int reapDead() {
    Instant cutoff = now().minus(deadAfter);
    try (Connection c = state.dataSource().getConnection()) {
      c.setAutoCommit(false);
      try {
        List<String> orphans = new ArrayList<>();
        try (PreparedStatement s =
            c.prepareStatement(
                "DELETE FROM inferpam.review_waiters w USING inferpam.replicas d"
                    + " WHERE w.replica = d.id AND d.seen < ? AND d.id <> ? RETURNING w.review_id")) {
          s.setObject(1, odt(cutoff));
          s.setString(2, replica);
          try (ResultSet r = s.executeQuery()) {
            while (r.next()) orphans.add(r.getString(1));
          }
        }
        try (PreparedStatement s =
            c.prepareStatement("DELETE FROM inferpam.replicas WHERE seen < ? AND id <> ?")) {
          s.setObject(1, odt(cutoff));
          s.setString(2, replica);
          s.executeUpdate();
        }
        int withdrawn = 0;
        if (!orphans.isEmpty()) {
          try (PreparedStatement s =
              c.prepareStatement(
                  "UPDATE inferpam.reviews r SET status = 'withdrawn', reason = ?, decided = ?"
                      + " WHERE r.id = ANY (?) AND r.status = 'waiting' AND NOT EXISTS"
                      + " (SELECT 1 FROM inferpam.review_waiters w WHERE w.review_id = r.id)")) {
            s.setString(1, DEAD_REASON);
            s.setObject(2, odt(now()));
            s.setArray(3, c.createArrayOf("text", orphans.toArray()));
            withdrawn = s.executeUpdate();
          }
        }
        c.commit();
        return withdrawn;
      } catch (SQLException e) {
        rollbackQuietly(c);
        throw e;
      }
    } catch (SQLException e) {
      log.debug("inferpam: cannot look for dead replicas now: {}", PostgresState.describe(e));
      return 0;
    }
  }

  // ------------------------------------------------------------------------------ lifecycle

  private boolean isClosed() {
    lock.lock();
    try {
      return closed;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Ends this replica's callers {@link Status#CLOSED}, removes its waiter rows (a review nobody
   * else waits for ends {@code closed}), and stops its threads. Leaves the {@link PostgresState}
   * open. Idempotent.
   */
  @Override
  public void close() {
    Map<String, List<Waiter>> mine;
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      mine = new HashMap<>(local);
      local.clear();
    } finally {
      lock.unlock();
    }
    stopping = true;
    Instant now = now();
    for (Map.Entry<String, List<Waiter>> e : mine.entrySet()) {
      Outcome o = new Outcome(e.getKey(), Status.CLOSED, null, CLOSED_REASON, now);
      for (Waiter w : e.getValue()) w.stage.complete(o);
    }
    try (Connection c = state.dataSource().getConnection()) {
      c.setAutoCommit(false);
      try {
        try (PreparedStatement s =
            c.prepareStatement("DELETE FROM inferpam.review_waiters WHERE replica = ?")) {
          s.setString(1, replica);
          s.executeUpdate();
        }
        if (!mine.isEmpty())
          endUnwaited(c, new ArrayList<>(mine.keySet()), "closed", CLOSED_REASON);
        try (PreparedStatement s =
            c.prepareStatement("DELETE FROM inferpam.replicas WHERE id = ?")) {
          s.setString(1, replica);
          s.executeUpdate();
        }
        c.commit();
      } catch (SQLException e) {
        rollbackQuietly(c);
        throw e;
      }
    } catch (SQLException e) {
      log.warn(
          "inferpam: cannot close this replica's reviews in PostgreSQL ({}); the other replicas"
              + " withdraw them once it is taken for dead",
          PostgresState.describe(e));
    }
    timers.shutdownNow();
    listener.interrupt();
    try {
      listener.join(Math.max(1000, pollInterval.toMillis() * 2));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "PostgresApprovalService[" + state.location() + ", replica " + replica + "]";
  }

  // -------------------------------------------------------------------------------- helpers

  private Instant now() {
    // PostgreSQL keeps microseconds: what is written is what is read back
    return clock.instant().truncatedTo(ChronoUnit.MICROS);
  }

  private static OffsetDateTime odt(Instant t) {
    return t.atOffset(ZoneOffset.UTC);
  }

  private static Instant instant(ResultSet r, int column) throws SQLException {
    OffsetDateTime t = r.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }

  private static Duration until(Instant now, Instant then) {
    if (then == null || !then.isAfter(now)) return Duration.ZERO;
    return Duration.between(now, then);
  }

  private static Duration maxOf(Duration a, Duration b) {
    return a.compareTo(b) >= 0 ? a : b;
  }

  private static IllegalStateException unavailable(SQLException e) {
    return new IllegalStateException(
        "approvals unavailable: PostgreSQL did not answer (" + PostgresState.describe(e) + ")");
  }

  private static void rollbackQuietly(Connection c) {
    try {
      c.rollback();
    } catch (SQLException ignored) {
      // the connection is gone; the pool drops it
    }
  }

  private static void closeQuietly(Connection c) {
    if (c == null) return;
    try {
      c.close();
    } catch (SQLException ignored) {
      // gone already
    }
  }

  /** One principal across issuers and identification kinds (as the in-process service keys it). */
  static String principalKey(Principal p) {
    return p.via() + '\n' + (p.issuer() == null ? "" : p.issuer()) + '\n' + p.subject();
  }

  private static String newId() {
    byte[] b = new byte[10];
    RANDOM.nextBytes(b);
    return "apr-" + HexFormat.of().formatHex(b);
  }

  private static InferenceRequest withoutHeaders(InferenceRequest r) {
    return new InferenceRequest(
        r.method(), r.path(), r.query(), Map.of(), r.body(), r.remoteAddress());
  }

  private static String principalJson(Principal p) {
    ObjectNode n = JSON.createObjectNode();
    n.put("subject", p.subject());
    ArrayNode groups = n.putArray("groups");
    for (String g : new TreeSet<>(p.groups())) groups.add(g);
    n.put("via", p.via());
    n.put("issuer", p.issuer());
    return n.toString();
  }

  private static Principal principalOf(String json) {
    try {
      JsonNode n = JSON.readTree(json);
      Set<String> groups = new TreeSet<>();
      for (JsonNode g : n.path("groups")) groups.add(g.asText());
      return new Principal(
          n.path("subject").asText(),
          groups,
          n.path("via").asText(),
          n.path("issuer").isTextual() ? n.path("issuer").asText() : null,
          Map.of());
    } catch (java.io.IOException e) {
      throw new IllegalStateException("a review's principal is not JSON", e);
    }
  }

  private static String requestJson(InferenceRequest r) {
    ObjectNode n = JSON.createObjectNode();
    n.put("method", r.method());
    n.put("path", r.path());
    n.put("query", r.query());
    n.put("body", r.body() == null ? null : Base64.getEncoder().encodeToString(r.body()));
    n.put("remote", r.remoteAddress());
    return n.toString();
  }

  private static InferenceRequest requestOf(String json) {
    try {
      JsonNode n = JSON.readTree(json);
      return new InferenceRequest(
          n.path("method").asText(),
          n.path("path").asText(),
          n.path("query").isTextual() ? n.path("query").asText() : null,
          Map.of(),
          n.path("body").isTextual()
              ? Base64.getDecoder().decode(n.path("body").asText())
              : new byte[0],
          n.path("remote").isTextual() ? n.path("remote").asText() : null);
    } catch (java.io.IOException e) {
      throw new IllegalStateException("a review's request is not JSON", e);
    }
  }

  /**
   * Builds a {@link PostgresApprovalService}. Defaults: system UTC clock, timeout 5 minutes, no
   * grant, 5 waiting per principal and 1000 in total, poll every second, no review listener.
   */
  public static final class Builder {
    private final PostgresState state;
    private Clock clock = Clock.systemUTC();
    private Duration timeout = Policy.Approval.DEFAULT_TIMEOUT;
    private Duration grant = Duration.ZERO;
    private Set<String> reviewers = Set.of();
    private int maxPendingPerPrincipal = Policy.Approval.DEFAULT_MAX_PENDING_PER_PRINCIPAL;
    private int maxPending = Policy.Approval.DEFAULT_MAX_PENDING;
    private Duration pollInterval = Policy.Postgres.DEFAULT_POLL_INTERVAL;
    private Duration deadAfter;
    private Consumer<Pending> onReview = p -> {};

    private Builder(PostgresState state) {
      this.state = Objects.requireNonNull(state, "state");
    }

    /** Reviewers, timeout, grant and bounds from a policy's {@code approval} section. */
    public Builder settings(Policy.Approval approval) {
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

    /** How long a review waits for a decision; positive. */
    public Builder timeout(Duration timeout) {
      if (timeout.isZero() || timeout.isNegative())
        throw new IllegalArgumentException("timeout must be positive");
      this.timeout = timeout;
      return this;
    }

    /** How long an approval also approves the same principal's requests under its rule; 0: none. */
    public Builder grant(Duration grant) {
      if (grant.isNegative()) throw new IllegalArgumentException("grant must not be negative");
      this.grant = grant;
      return this;
    }

    /** Groups whose members are reviewers; not empty, not {@code *}. */
    public Builder reviewers(Set<String> groups) {
      if (groups.isEmpty()) throw new IllegalArgumentException("reviewers must not be empty");
      if (groups.contains("*")) throw new IllegalArgumentException("reviewers must not be *");
      this.reviewers = Set.copyOf(groups);
      return this;
    }

    public Builder maxPendingPerPrincipal(int max) {
      if (max < 1) throw new IllegalArgumentException("maxPendingPerPrincipal must be positive");
      this.maxPendingPerPrincipal = max;
      return this;
    }

    public Builder maxPending(int max) {
      if (max < 1) throw new IllegalArgumentException("maxPending must be positive");
      this.maxPending = max;
      return this;
    }

    /** How often the replica polls for decisions it was not notified of, and heartbeats. */
    public Builder pollInterval(Duration interval) {
      if (interval.isZero() || interval.isNegative())
        throw new IllegalArgumentException("pollInterval must be positive");
      this.pollInterval = interval;
      return this;
    }

    /** How long a replica may go unseen before the others take it for dead. */
    public Builder deadAfter(Duration deadAfter) {
      if (deadAfter.isZero() || deadAfter.isNegative())
        throw new IllegalArgumentException("deadAfter must be positive");
      this.deadAfter = deadAfter;
      return this;
    }

    /** Told of each review this replica opens (the review notifier). */
    public Builder onReview(Consumer<Pending> listener) {
      this.onReview = Objects.requireNonNull(listener, "listener");
      return this;
    }

    /**
     * The service, its listener started.
     *
     * @throws IllegalStateException when no reviewers were set
     */
    public PostgresApprovalService build() {
      if (reviewers.isEmpty()) throw new IllegalStateException("reviewers are required");
      return new PostgresApprovalService(this);
    }
  }
}
