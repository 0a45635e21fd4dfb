package dev.inferpam.postgres;

import dev.inferpam.api.PendingRecord;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RecordFormat;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Recorder} that stores records as rows of {@code inferpam.records} in PostgreSQL, for
 * {@code recording.store: postgres}: every replica of a fleet writes into one table, which an
 * auditor reads and verifies in one place ({@link PostgresRecords}).
 *
 * <h2>Rows and chains</h2>
 * A row holds a record's line exactly as the JSONL recorder writes it ({@code docs/recording.md}:
 * same content, same hash rule), and its place in the chain of its <em>writer</em>: this
 * recorder, named by {@link #writer()} (the replica's id, new at every start). Each writer
 * numbers its rows {@code seq} 1, 2, 3… and chains them ({@code prev} = the hash of its row
 * {@code seq - 1}, 64 zeros for the first), so writers never wait for one another: there is no
 * fleet-wide lock or counter. Columns {@code id}, {@code type}, {@code subject} and {@code time}
 * are copied from the record for queries; {@code written} (this recorder's clock when it wrote
 * the row, never going back) chooses the day partition.
 *
 * <h2>Queue, admission and durability</h2>
 * As the JSONL recorder: one writer thread of its own builds ({@link #recordLater}), encodes and
 * inserts records (callers encode their own lines when more than {@value
 * #ENCODE_ON_CALLER_BACKLOG} wait); at most {@code queue-capacity} records are held until
 * committed, and no new exchange is admitted while they weigh more than 256 MiB. {@link #admit()}
 * reserves room or throws {@code "recording queue full"}, or {@code "recorder failed: <reason>"}
 * while the database fails. Records are inserted in group commits: one transaction holds up to
 * {@code batch-size} rows and is committed at the latest {@code batch-interval} after the first
 * of them was handed over. {@code strict}: an {@link #intent} commits at once (with whatever else
 * is queued: concurrent requests share the commit) and returns only once committed; {@code
 * batched}: records are committed in those group commits; {@code async}: the same, committed
 * with {@code synchronous_commit = off} (a database crash may lose the last moment's records).
 *
 * <h2>When the database fails</h2>
 * A failed insert or commit puts the recorder in a failed state: one line is logged, {@code
 * admit()}, {@code intent()} and {@code flush()} throw {@code "recorder failed: <reason>"} (the
 * engine answers 503 {@code recording_unavailable}), and records already handed over are kept
 * (bounded by the queue) and inserted again every second, with the same {@code seq}, {@code prev}
 * and {@code hash}. A transaction is all or nothing, so no record is half-written; one whose
 * commit outcome is unknown (the connection dropped during {@code COMMIT}) is simply inserted
 * again: rows that made it are skipped ({@code ON CONFLICT DO NOTHING} on the writer, seq and
 * partition key). Once an insert succeeds the recorder recovers by itself and logs that once.
 * With nothing to insert, it checks the database every second while failed.
 *
 * <h2>Partitions and retention</h2>
 * The partitions of the current day and the next are created (when missing) through {@code
 * inferpam.create_record_partitions}, which runs as the schema's owner. With {@code
 * recording.retention}, at start and at the first write of each new day (by the clock), before
 * that write, partitions whose rows are all older than the retention are dropped through {@code inferpam.drop_record_partitions}; only
 * the schema's owner may: a replica connected as the gateway role logs once that the owner must
 * run it (a periodic job), and records on.
 *
 * <p><b>Shutdown.</b> {@link #close()} commits everything queued, then stops the writer thread;
 * it waits at most 30 s and then throws, naming how many records were not written. It leaves the
 * {@link PostgresState} open.
 *
 * <p><b>Thread-safety:</b> all methods may be called from any thread.
 */
public final class PostgresRecorder implements Recorder {
  /** Records waiting for the writer beyond which callers encode their own lines. */
  static final int ENCODE_ON_CALLER_BACKLOG = 512;

  /** Bytes of records held beyond which {@link #admit()} refuses new exchanges. */
  static final long MAX_HELD_BYTES = 256L * 1024 * 1024;

  /** Longest wait for room in the queue, and for a strict intent to be committed. */
  public static final Duration DEFAULT_WAIT = Duration.ofSeconds(5);

  /** Pause between attempts after a failure. */
  public static final Duration DEFAULT_RETRY_INTERVAL = Duration.ofSeconds(1);

  /** Longest wait of {@link #close()} and {@link #flush()}. */
  public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(30);

  /** SQLState of {@code insufficient_privilege}. */
  private static final String NOT_ALLOWED = "42501";

  /** The columns a row is inserted with, and one row's placeholders. */
  private static final String INSERT_INTO =
      "INSERT INTO inferpam.records"
          + " (writer, seq, written, prev, hash, id, type, subject, time, line) VALUES ";

  /** Rows per statement at most (ten parameters each: PostgreSQL takes 65,535 at most). */
  static final int MAX_ROWS_PER_STATEMENT = 1000;

  private static final String ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  private static final String ON_CONFLICT = " ON CONFLICT DO NOTHING";

  private static final Logger log = LoggerFactory.getLogger(PostgresRecorder.class);

  private final PostgresState state;
  private final Policy.Recording config;
  private final Clock clock;
  private final String writer;
  private final Duration wait;
  private final long retryNanos;
  private final Duration closeTimeout;
  private final long batchIntervalNanos;
  private final boolean strict;
  private final boolean async;
  private final Runnable afterCommit;

  // ---- room
  private final Semaphore room;
  private final AtomicInteger reserved = new AtomicInteger();
  private final AtomicLong heldBytes = new AtomicLong();

  // ---- shared between callers and the writer, guarded by lock
  private final AtomicBoolean closed = new AtomicBoolean();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition work = lock.newCondition();
  private final Condition progress = lock.newCondition();
  private final ArrayDeque<Item> queue = new ArrayDeque<>();
  private int intentsQueued;
  private long handed; // order of the last record handed over
  private long committed; // every record up to this order is committed
  private long target; // a flush or intent waits for this order
  private boolean closing;
  private boolean abandon;
  private boolean writerIdle;
  private volatile String failure;
  private volatile int backlog;

  /** Records handed over and not yet durable: the writer's queue as it last saw it. */
  @Override
  public long backlog() {
    return backlog;
  }

  /**
   * When the oldest record not yet committed was handed over ({@link System#nanoTime()}), or
   * {@link Long#MIN_VALUE} for none; written under the lock.
   */
  private volatile long oldestPending = Long.MIN_VALUE;

  /** How long the oldest record not yet committed has waited. */
  @Override
  public long lagNanos() {
    long oldest = oldestPending;
    return oldest == Long.MIN_VALUE ? 0 : Math.max(0, System.nanoTime() - oldest);
  }

  // ---- the writer thread's own
  private final List<Item> batch = new ArrayList<>();
  private final MessageDigest sha = RecordFormat.digest();
  private final Set<LocalDate> partitions = new HashSet<>();
  private long seq;
  private String head = RecordFormat.GENESIS;
  private Instant lastWritten = Instant.EPOCH;
  private long nextRetryNanos;
  private LocalDate retentionDay;
  private long retentionRetryNanos;
  private boolean retentionFailed;
  private boolean retentionRefused;
  private String insertSql;
  private int insertRows;

  private final Thread thread;

  private PostgresRecorder(Builder b) {
    this.state = b.state;
    this.config = b.config;
    this.clock = b.clock;
    this.writer = b.writer != null ? b.writer : state.claimWriter();
    this.wait = b.wait;
    this.retryNanos = b.retryInterval.toNanos();
    this.closeTimeout = b.closeTimeout;
    this.batchIntervalNanos = config.batchInterval().toNanos();
    this.strict = config.durability() == Policy.Durability.STRICT;
    this.async = config.durability() == Policy.Durability.ASYNC;
    this.afterCommit = b.afterCommit;
    this.room = new Semaphore(config.queueCapacity());
    Thread t = b.threads.newThread(this::runWriter);
    if (t == null) throw new IllegalStateException("the thread factory made no thread");
    this.thread = t;
    t.start();
  }

  /** A builder on {@code state}; every setting defaults to {@link Policy.Recording}'s. */
  public static Builder builder(PostgresState state) {
    return new Builder(state);
  }

  /** The writer id of this recorder's chain: the replica's id (a suffix for a second recorder). */
  public String writer() {
    return writer;
  }

  // ------------------------------------------------------------------------------ caller side

  @Override
  public void admit() throws IOException {
    if (closed.get()) throw new IOException("recorder closed");
    String f = failure;
    if (f != null) throw new IOException("recorder failed: " + f);
    if (heldBytes.get() > MAX_HELD_BYTES) throw new IOException("recording queue full");
    boolean got = room.tryAcquire();
    if (!got && !config.queueFullWait().isZero()) {
      try {
        got = room.tryAcquire(config.queueFullWait().toNanos(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted waiting for room in the recording queue");
      }
    }
    if (!got) throw new IOException("recording queue full");
    reserved.incrementAndGet();
  }

  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    handOver(new Item(record.id(), () -> record, false, estimate(record)));
  }

  /**
   * {@link #record}, for a record built on the thread that encodes it: the writer, or the caller
   * when the writer is behind. A record whose build throws is not stored (its exception's type is
   * logged) and its room is freed.
   */
  @Override
  public void recordLater(PendingRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    handOver(
        new Item(record.id(), record::build, false, 1024 + Math.max(0, record.estimatedSize())));
  }

  private void handOver(Item item) throws IOException {
    if (closed.get()) throw new IOException("recorder closed");
    if (backlog >= ENCODE_ON_CALLER_BACKLOG) item.encode();
    if (reserved.getAndUpdate(n -> n > 0 ? n - 1 : 0) == 0) acquire();
    enqueue(item);
  }

  /**
   * Hands an intent over; with {@code strict} durability returns only once it is committed (at
   * most 5 s).
   *
   * @throws IOException when the recorder failed or is closed, has no room, or the intent is not
   *     committed in time (it may still be committed later)
   */
  @Override
  public void intent(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    if (closed.get()) throw new IOException("recorder closed");
    String f = failure;
    if (strict && f != null) throw new IOException("recorder failed: " + f);
    long deadline = System.nanoTime() + wait.toNanos();
    acquire();
    long order = enqueue(new Item(record.id(), () -> record, strict, estimate(record)));
    if (strict)
      awaitCommitted(
          order, deadline, "recording intent not committed within " + wait.toMillis() + "ms");
  }

  /**
   * Waits until every record handed over before this call is committed.
   *
   * @throws IOException when the recorder is failed, or after 30 s
   */
  @Override
  public void flush() throws IOException {
    long order;
    lock.lock();
    try {
      order = handed;
    } finally {
      lock.unlock();
    }
    awaitCommitted(
        order,
        System.nanoTime() + closeTimeout.toNanos(),
        "recording flush not done within " + closeTimeout.toSeconds() + "s");
  }

  /**
   * Commits everything queued and stops the writer thread; leaves the {@link PostgresState}
   * open. Idempotent.
   *
   * @throws IOException when records could not be committed within 30 s
   */
  @Override
  public void close() throws IOException {
    if (!closed.compareAndSet(false, true)) return;
    lock.lock();
    try {
      closing = true;
      target = handed;
      work.signalAll();
    } finally {
      lock.unlock();
    }
    try {
      thread.join(closeTimeout.toMillis());
      if (thread.isAlive()) {
        lock.lock();
        try {
          abandon = true;
          work.signalAll();
          progress.signalAll();
        } finally {
          lock.unlock();
        }
        thread.interrupt();
        thread.join(closeTimeout.toMillis());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while closing the recorder");
    }
    long unwritten;
    lock.lock();
    try {
      unwritten = handed - committed;
    } finally {
      lock.unlock();
    }
    if (unwritten > 0)
      throw new IOException(
          "recorder closed with " + unwritten + " record(s) not written: " + failure);
  }

  @Override
  public String toString() {
    return "PostgresRecorder["
        + state.location()
        + ", writer "
        + writer
        + ", "
        + config.durability()
        + (failure != null ? ", failed" : "")
        + "]";
  }

  private void acquire() throws IOException {
    try {
      if (!room.tryAcquire(wait.toNanos(), TimeUnit.NANOSECONDS))
        throw new IOException("recording queue full");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for room in the recording queue");
    }
  }

  private long enqueue(Item item) throws IOException {
    lock.lock();
    try {
      if (closing) {
        room.release();
        throw new IOException("recorder closed");
      }
      item.order = ++handed;
      item.enqueued = System.nanoTime();
      queue.addLast(item);
      backlog = queue.size();
      // the batch being written, if any, is older than anything queued
      if (oldestPending == Long.MIN_VALUE) oldestPending = item.enqueued;
      heldBytes.addAndGet(item.size);
      if (item.intent) {
        intentsQueued++;
        if (item.order > target) target = item.order;
      }
      if (writerIdle || item.intent || queue.size() >= config.batchSize()) {
        writerIdle = false;
        work.signal();
      }
      return item.order;
    } finally {
      lock.unlock();
    }
  }

  private void awaitCommitted(long order, long deadline, String timeout) throws IOException {
    lock.lock();
    try {
      if (order > target) {
        target = order;
        work.signal();
      }
      while (committed < order) {
        String f = failure;
        if (f != null) throw new IOException("recorder failed: " + f);
        if (abandon) throw new IOException("recorder closed");
        long nanos = deadline - System.nanoTime();
        if (nanos <= 0) throw new IOException(timeout);
        progress.awaitNanos(nanos);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for the recording");
    } finally {
      lock.unlock();
    }
  }

  private static long estimate(SessionRecord r) {
    long size = 1024;
    if (r.request() != null && r.request().body() != null) size += r.request().body().length();
    if (r.response() != null && r.response().body() != null) size += r.response().body().length();
    return size;
  }

  // ------------------------------------------------------------------------------ writer side

  private void runWriter() {
    try {
      retention(); // at start, before the first record
      while (true) {
        lock.lock();
        try {
          while (true) {
            if (abandon) return;
            long now = System.nanoTime();
            if (failure != null) {
              if (closing && queue.isEmpty() && batch.isEmpty()) return; // nothing left to write
              long due = nextRetryNanos - now;
              if (due <= 0) break;
              work.awaitNanos(due);
              continue;
            }
            if (!queue.isEmpty()) {
              long due = queue.peekFirst().enqueued + batchIntervalNanos - now;
              if (intentsQueued > 0
                  || queue.size() >= config.batchSize()
                  || target > committed
                  || closing
                  || due <= 0) break;
              work.awaitNanos(due);
              continue;
            }
            if (closing) return; // everything is committed
            writerIdle = true;
            work.await();
            writerIdle = false;
          }
          while (batch.size() < config.batchSize() && !queue.isEmpty()) {
            Item item = queue.pollFirst();
            if (item.intent) intentsQueued--;
            batch.add(item);
          }
          backlog = queue.size();
        } finally {
          lock.unlock();
        }
        step();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      // a bug, not a database error: stop accepting records rather than pretend to record them
      failure = "recorder stopped: " + t;
      log.error("inferpam: the PostgreSQL recording writer stopped; new exchanges are refused", t);
    } finally {
      lock.lock();
      try {
        progress.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** One attempt: chains what is new in the batch and inserts the batch in one transaction. */
  private void step() {
    boolean recovering = failure != null;
    if (!recovering) retention();
    try {
      chain();
      try (Connection c = state.dataSource().getConnection()) {
        if (batch.isEmpty()) {
          // failed with nothing to write: is the database back?
          try (Statement s = c.createStatement()) {
            s.execute("SELECT 1");
          }
          partitionsFor(c, today());
        } else {
          insert(c);
        }
      }
      committed(batch);
      batch.clear();
      if (recovering) recovered();
    } catch (SQLException e) {
      fail(PostgresState.describe(e));
    } catch (RuntimeException e) {
      fail(e.getClass().getName());
    }
  }

  /** Gives the batch's new records their place in this writer's chain, once. */
  private void chain() {
    Instant written = clock.instant().truncatedTo(ChronoUnit.MICROS);
    if (written.isBefore(lastWritten)) written = lastWritten;
    for (Item item : batch) {
      if (item.seq != 0 || item.skipped) continue;
      byte[] start = item.encode();
      if (start == null) {
        item.skipped = true;
        continue;
      }
      RecordFormat.Line line = RecordFormat.chain(start, head, sha);
      item.seq = ++seq;
      item.written = written;
      item.prev = line.prev();
      item.hash = line.hash();
      item.line = line.text();
      head = line.hash();
      lastWritten = written;
    }
  }

  private void insert(Connection c) throws SQLException {
    Set<LocalDate> days = new TreeSet<>();
    List<Item> rows = new ArrayList<>(batch.size());
    for (Item item : batch) {
      if (item.skipped) continue;
      rows.add(item);
      days.add(day(item.written));
    }
    for (LocalDate d : days) partitionsFor(c, d);
    if (rows.isEmpty()) return;
    c.setAutoCommit(false);
    try {
      if (async) {
        try (Statement s = c.createStatement()) {
          s.execute("SET LOCAL synchronous_commit = off");
        }
      }
      // statements of many rows: each value a parameter of its own, sent as it is
      for (int from = 0; from < rows.size(); from += MAX_ROWS_PER_STATEMENT) {
        List<Item> part = rows.subList(from, Math.min(rows.size(), from + MAX_ROWS_PER_STATEMENT));
        insertPart(c, part);
      }
      c.commit();
      afterCommit.run();
    } catch (SQLException | RuntimeException e) {
      try {
        c.rollback();
      } catch (SQLException ignored) {
        // the connection is gone; the pool drops it
      }
      throw e;
    } finally {
      try {
        c.setAutoCommit(true);
      } catch (SQLException ignored) {
        // the connection is gone; the pool drops it
      }
    }
  }

  /** Inserts {@code rows} with one statement. */
  private void insertPart(Connection c, List<Item> rows) throws SQLException {
    try (PreparedStatement s = c.prepareStatement(insertOf(rows.size()))) {
      int p = 1;
      for (Item r : rows) {
        s.setString(p++, writer);
        s.setLong(p++, r.seq);
        s.setObject(p++, OffsetDateTime.ofInstant(r.written, ZoneOffset.UTC));
        s.setString(p++, r.prev);
        s.setString(p++, r.hash);
        s.setString(p++, r.id);
        s.setString(p++, r.type);
        s.setString(p++, r.subject);
        s.setObject(p++, OffsetDateTime.ofInstant(r.time, ZoneOffset.UTC));
        s.setString(p++, r.line);
      }
      s.executeUpdate();
    }
  }

  /** The insert of {@code n} rows; the last one made is kept (full batches repeat it). */
  private String insertOf(int n) {
    if (n != insertRows) {
      StringBuilder sql = new StringBuilder(INSERT_INTO.length() + n * (ROW.length() + 2) + 32);
      sql.append(INSERT_INTO);
      for (int i = 0; i < n; i++) sql.append(i == 0 ? "" : ", ").append(ROW);
      insertSql = sql.append(ON_CONFLICT).toString();
      insertRows = n;
    }
    return insertSql;
  }

  /** Makes sure the partitions of {@code day} and the day after exist. */
  private void partitionsFor(Connection c, LocalDate day) throws SQLException {
    if (partitions.contains(day) && partitions.contains(day.plusDays(1))) return;
    try (PreparedStatement s =
        c.prepareStatement("SELECT inferpam.create_record_partitions(?, 2)")) {
      s.setObject(1, day);
      s.execute();
    }
    partitions.add(day);
    partitions.add(day.plusDays(1));
  }

  /**
   * With {@code recording.retention}: at the first call and then once a day, drops the partitions
   * whose rows are all older than the retention, when this role may.
   */
  private void retention() {
    Duration keep = config.retention();
    if (keep == null || retentionRefused) return;
    LocalDate today = today();
    if (today.equals(retentionDay)
        || (retentionFailed && System.nanoTime() - retentionRetryNanos < 0)) return;
    Instant before = clock.instant().minus(keep);
    try (Connection c = state.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement("SELECT count(*) FROM inferpam.drop_record_partitions(?)")) {
      s.setObject(1, OffsetDateTime.ofInstant(before, ZoneOffset.UTC));
      try (ResultSet r = s.executeQuery()) {
        r.next();
        long dropped = r.getLong(1);
        if (dropped > 0)
          log.info(
              "inferpam: recording retention dropped {} day partition(s) of records older than {}",
              dropped,
              Policy.formatDuration(keep));
      }
      retentionDay = today;
      retentionFailed = false;
    } catch (SQLException e) {
      if (NOT_ALLOWED.equals(e.getSQLState())) {
        retentionRefused = true;
        log.info(
            "inferpam: recording.retention: this role may not drop partitions of"
                + " inferpam.records; the schema's owner must, periodically: SELECT"
                + " inferpam.drop_record_partitions(now() - interval '{} seconds')",
            keep.toSeconds());
      } else {
        retentionFailed = true;
        retentionRetryNanos = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        log.warn(
            "inferpam: recording retention failed, tried again in a minute: {}",
            PostgresState.describe(e));
      }
    }
  }

  private void committed(List<Item> items) {
    if (items.isEmpty()) return;
    long bytes = 0;
    for (Item i : items) bytes += i.size;
    heldBytes.addAndGet(-bytes);
    room.release(items.size());
    lock.lock();
    try {
      long last = items.get(items.size() - 1).order;
      if (last > committed) committed = last;
      // the committed batch was the oldest; what waits now is queued
      oldestPending = queue.isEmpty() ? Long.MIN_VALUE : queue.peekFirst().enqueued;
      progress.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private void fail(String reason) {
    nextRetryNanos = System.nanoTime() + retryNanos;
    String why = "PostgreSQL at " + state.location() + ": " + reason;
    lock.lock();
    try {
      boolean first = failure == null;
      failure = why;
      progress.signalAll();
      if (first) {
        log.error(
            "inferpam: cannot write records ({}); new exchanges are refused until it works again,"
                + " {} record(s) held",
            why,
            batch.size() + queue.size());
      }
    } finally {
      lock.unlock();
    }
  }

  private void recovered() {
    lock.lock();
    try {
      failure = null;
    } finally {
      lock.unlock();
    }
    log.warn("inferpam: recording to PostgreSQL at {} works again", state.location());
  }

  private LocalDate today() {
    return day(clock.instant());
  }

  private static LocalDate day(Instant t) {
    return LocalDate.ofInstant(t, ZoneOffset.UTC);
  }

  /** A record on its way to the table. Encoded by one thread at a time (the queue orders them). */
  private static final class Item {
    final String id;
    final boolean intent;
    final long size;
    long order;
    long enqueued;

    private Supplier<SessionRecord> build;
    private byte[] start;
    boolean skipped;
    private boolean unencodable;

    // the record's query columns, once built
    String type;
    String subject;
    Instant time;

    // its place in the chain, once given: kept for an attempt again
    long seq;
    Instant written;
    String prev;
    String hash;
    String line;

    Item(String id, Supplier<SessionRecord> build, boolean intent, long size) {
      this.id = id;
      this.build = build;
      this.intent = intent;
      this.size = size;
    }

    /** The line's start, or {@code null} when the record cannot be built or encoded (logged). */
    byte[] encode() {
      if (start == null && !unencodable) {
        try {
          SessionRecord r = build.get();
          start = RecordFormat.lineStart(r);
          type = r.type();
          subject = r.principal() == null ? null : r.principal().subject();
          time = RecordFormat.recordedTime(r.time());
        } catch (RuntimeException e) {
          unencodable = true;
          // only the exception's type: its message could quote the record's content
          log.error(
              "inferpam: record of exchange {} cannot be built or encoded and is not written: {}",
              id,
              e.getClass().getName());
        }
        build = null;
      }
      return start;
    }
  }

  /** Builds a {@link PostgresRecorder}. */
  public static final class Builder {
    private final PostgresState state;
    private Policy.Recording config = Policy.Recording.inPostgres();
    private Clock clock = Clock.systemUTC();
    private String writer;
    private Duration wait = DEFAULT_WAIT;
    private Duration retryInterval = DEFAULT_RETRY_INTERVAL;
    private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
    private Runnable afterCommit = () -> {};
    private ThreadFactory threads =
        r -> {
          Thread t = new Thread(r, "inferpam-recorder");
          t.setDaemon(true);
          return t;
        };

    private Builder(PostgresState state) {
      this.state = Objects.requireNonNull(state, "state");
    }

    /**
     * Durability, queue, batch and retention settings from a policy's {@code recording}
     * section ({@code bodies} is the engine's: it builds the records).
     */
    public Builder settings(Policy.Recording recording) {
      this.config = Objects.requireNonNull(recording, "recording");
      return this;
    }

    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /** The writer id; default: the state's replica id (with a suffix for a second recorder). */
    public Builder writer(String writer) {
      if (writer == null || writer.isBlank())
        throw new IllegalArgumentException("writer must not be blank");
      this.writer = writer;
      return this;
    }

    /** Longest wait for room, and for a strict intent to be committed (default 5 s). */
    public Builder wait(Duration wait) {
      this.wait = positive(wait, "wait");
      return this;
    }

    /** Pause between attempts while the database fails (default 1 s). */
    public Builder retryInterval(Duration interval) {
      this.retryInterval = positive(interval, "retryInterval");
      return this;
    }

    /** Longest wait of {@link #close()} and {@link #flush()} (default 30 s). */
    public Builder closeTimeout(Duration timeout) {
      this.closeTimeout = positive(timeout, "closeTimeout");
      return this;
    }

    /** Makes the writer thread (default: a daemon named {@code inferpam-recorder}). */
    public Builder threadFactory(ThreadFactory threads) {
      this.threads = Objects.requireNonNull(threads, "threads");
      return this;
    }

    /**
     * Test seam: runs on the writer thread after each commit; an exception thrown there is taken
     * for a commit whose outcome is unknown.
     */
    Builder afterCommit(Runnable hook) {
      this.afterCommit = Objects.requireNonNull(hook, "hook");
      return this;
    }

    /** The recorder, its writer thread started. */
    public PostgresRecorder build() {
      return new PostgresRecorder(this);
    }

    private static Duration positive(Duration d, String name) {
      if (d == null || d.isZero() || d.isNegative())
        throw new IllegalArgumentException(name + " must be positive");
      return d;
    }
  }
}
