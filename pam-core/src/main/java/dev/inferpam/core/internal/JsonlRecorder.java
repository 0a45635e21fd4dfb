package dev.inferpam.core.internal;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The default recorder: hash-chained JSON Lines in a directory, as specified in
 * {@code docs/recording.md} (line layout: {@link RecordCodec}).
 *
 * <p><b>Segments.</b> Lines go to {@code session-<yyyyMMdd>-<seq>.jsonl}: the UTC day (from the
 * clock) the segment was started, and a per-day sequence number from {@code 0001}, zero-padded
 * to four digits (more digits past 9999; readers order segments by day and number). A new
 * segment is started when the next line would take the current one past
 * {@link Policy.Recording#segmentBytes()} (a line larger than that gets a segment of its own), on
 * the first write of a new UTC day, on every start, and after a failure. A new segment's first
 * {@code prev} is the last hash before it, so the chain runs across segments. On start the chain
 * continues from the last intact line of the newest segment; the recorder never appends to an
 * existing file, so a line torn by a crash stays as it is (it is logged, and
 * {@code Recordings.verify()} reports it: a crash mid-write remains visible). A file
 * {@code .recorder.lock} in the directory keeps a second recorder from writing the same chain.
 *
 * <p><b>Retention.</b> When {@link Policy.Recording#retention()} is set, on start and whenever a
 * segment is started, the oldest segments whose newest record is older than the retention (by
 * the clock) are removed — whole files, oldest first, never the newest segment. Before deleting
 * them a line is appended (and made durable) that carries the chain over them:
 * <pre>{@code
 * {"v":1,"type":"retention","id":"<ulid>","time":"2026-11-28T22:00:00.123Z",
 *  "removed":[{"file":"session-20260801-0001.jsonl","records":1200,
 *              "first_prev":"<64 hex>","last_hash":"<64 hex>"}, ...],
 *  "prev":"<64 hex>","hash":"<64 hex>"}
 * }</pre>
 * {@code records} counts the file's intact lines, {@code first_prev} is its first line's
 * {@code prev}, {@code last_hash} its last intact line's {@code hash} ({@code null} for an empty
 * file). Verification accepts a first remaining segment whose first {@code prev} is a
 * {@code last_hash} named by a retention line later in the chain.
 *
 * <p><b>Queue and admission.</b> One writer thread owns the files and encodes the lines;
 * {@link #record} and {@link #intent} only hand the (immutable) record over, unless more than
 * {@value #ENCODE_ON_CALLER_BACKLOG} records wait for the writer: then the caller encodes its
 * own line, so under load encoding is spread over the request threads. At most
 * {@link Policy.Recording#queueCapacity()} records are held (queued, or written but not yet
 * durable). {@link #admit()} reserves room for one record and throws {@code IOException}
 * {@code "recording queue full"} or {@code "recorder failed: <reason>"}; the next
 * {@link #record} call uses the reservation, so an admitted exchange is never refused.
 * {@code admit()} also refuses while the records held weigh more than 256 MiB (estimated from
 * their bodies), so large bodies cannot pile up in memory behind a slow disk. Call
 * {@code admit()} once per exchange and follow it with exactly one {@code record()} (a
 * reservation never used lowers the capacity for good). {@code record()} and {@code intent()}
 * without a reservation wait up to 5 s for room, then throw {@code "recording queue full"}.
 *
 * <p><b>Durability.</b> {@code ASYNC}: a record is written to the operating system soon after
 * it is enqueued and never waits for an fsync (only {@link #flush()}, rotation and
 * {@link #close()} sync). {@code BATCHED}: group commit — an fsync at the latest
 * {@link Policy.Recording#batchInterval()} after the first unsynced line, or once
 * {@link Policy.Recording#batchSize()} lines are unsynced; {@code record()} returns after the
 * enqueue, so what a crash can lose is bounded by that window. {@code STRICT}: like
 * {@code BATCHED} for exchange lines, and {@link #intent} returns only once its line is fsynced
 * (at most 5 s, then {@code IOException}). A record's room is freed once it is durable
 * ({@code ASYNC}: written).
 *
 * <p><b>Failures.</b> An I/O error (disk full, directory gone or unwritable) puts the recorder
 * in a failed state: one error line is logged, {@code admit()}, {@code intent()} and
 * {@code flush()} throw {@code "recorder failed: <reason>"}; records not yet durable are kept
 * (bounded by the queue) and written again every second. What was not durable is cut off the
 * segment it was written to (best effort, so a half-written line does not stay). When a write and
 * fsync succeed again the recorder recovers by itself, in a new segment whose chain continues from
 * the last durable line, and logs that once.
 *
 * <p><b>Shutdown.</b> {@link #close()} writes and syncs everything queued, then stops the writer
 * thread; it waits at most 30 s (for a recorder that cannot recover) and then throws, naming how
 * many records were not written. Records handed over after {@code close()} are refused.
 *
 * <p><b>Thread-safety:</b> all methods may be called from any thread.
 */
public final class JsonlRecorder implements Recorder {
  /**
   * Bytes of records held (queued, or written but not yet durable) beyond which {@link #admit()}
   * refuses new exchanges, so that large bodies cannot pile up in memory while the disk is slow.
   */
  static final long DEFAULT_MAX_HELD_BYTES = 256L * 1024 * 1024;

  /** Records waiting for the writer beyond which callers encode their own lines. */
  static final int ENCODE_ON_CALLER_BACKLOG = 512;

  /** Longest wait for room in the queue, and for a strict intent to become durable. */
  public static final Duration DEFAULT_WAIT = Duration.ofSeconds(5);
  /** Pause between attempts to write again after a failure. */
  public static final Duration DEFAULT_RETRY_INTERVAL = Duration.ofSeconds(1);
  /** Longest wait of {@link #close()} and {@link #flush()}. */
  public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(30);

  static final String LOCK_FILE = ".recorder.lock";
  private static final int STAGING_BYTES = 256 * 1024;
  private static final int TAIL_BYTES = RecordCodec.PREV_TAIL + RecordCodec.HASH_TAIL + 1;

  /** Creates segment files: the seam through which tests inject disk faults. */
  interface SegmentIo {
    /** Creates {@code file}, which must not exist, for writing. */
    SegmentOutput create(Path file) throws IOException;

    SegmentIo FILES = file -> {
      FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      syncDirectory(file.getParent());
      return new ChannelOutput(ch);
    };
  }

  /** An open segment file. Used by the writer thread only. */
  interface SegmentOutput extends Closeable {
    void write(byte[] b, int off, int len) throws IOException;

    /** Makes everything written durable (fsync). */
    void force() throws IOException;

    /** Cuts the file back to {@code size} bytes. */
    void truncate(long size) throws IOException;
  }

  /** Test seams; the defaults are what production uses. */
  static final class Options {
    SegmentIo io = SegmentIo.FILES;
    Duration wait = DEFAULT_WAIT;
    Duration retryInterval = DEFAULT_RETRY_INTERVAL;
    Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
    long maxHeldBytes = DEFAULT_MAX_HELD_BYTES;
    Logger log = LoggerFactory.getLogger(JsonlRecorder.class);

    Options maxHeldBytes(long bytes) {
      this.maxHeldBytes = bytes;
      return this;
    }

    Options io(SegmentIo io) {
      this.io = io;
      return this;
    }

    Options wait(Duration wait) {
      this.wait = wait;
      return this;
    }

    Options retryInterval(Duration retryInterval) {
      this.retryInterval = retryInterval;
      return this;
    }

    Options closeTimeout(Duration closeTimeout) {
      this.closeTimeout = closeTimeout;
      return this;
    }

    Options log(Logger log) {
      this.log = log;
      return this;
    }
  }

  /**
   * A record on its way to disk. It is encoded (its line up to {@code ,"prev":}, UTF-8) by the
   * writer thread the first time it is written, so a request thread only hands the record over;
   * the bytes are kept for a rewrite after a failure.
   */
  private static final class Item {
    private final String id;
    /** Gives the record, once; built on the thread that first encodes (see {@link #recordLater}). */
    private java.util.function.Supplier<SessionRecord> record;
    private byte[] body;
    private boolean unencodable;
    final boolean intent;
    /** Memory this record holds until it is durable, estimated from its bodies. */
    final long size;
    long seq;

    Item(SessionRecord record, boolean intent) {
      this(record.id(), () -> record, intent, estimate(record));
    }

    Item(String id, java.util.function.Supplier<SessionRecord> record, boolean intent, long size) {
      this.id = id;
      this.record = record;
      this.intent = intent;
      this.size = size;
    }

    private static long estimate(SessionRecord r) {
      long size = 1024;
      if (r.request() != null && r.request().body() != null) size += r.request().body().length();
      if (r.response() != null && r.response().body() != null) size += r.response().body().length();
      return size;
    }

    /** The encoded line start, or {@code null} if the record cannot be encoded (a bug, logged once). */
    byte[] body(Logger log) {
      if (body == null && !unencodable) {
        try {
          body = RecordCodec.bodyBytes(record.get());
        } catch (RuntimeException e) {
          unencodable = true;
          // only the exception's type: its message could quote the record's content
          log.error("inferpam: record of exchange {} cannot be encoded and is not written: {}", id,
              e.getClass().getName());
        }
        record = null;
      }
      return body;
    }
  }

  private final Path dir;
  private final Clock clock;
  private final Policy.Recording config;
  private final Options options;
  private final Logger log;
  private final ExchangeIds ids;
  private final long batchIntervalNanos;

  // ---- shared between callers and the writer
  private final Semaphore room;
  private final AtomicInteger reserved = new AtomicInteger();
  /** Estimated bytes of the records held (queued, pending, or written and not yet durable). */
  private final java.util.concurrent.atomic.AtomicLong heldBytes = new java.util.concurrent.atomic.AtomicLong();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition work = lock.newCondition();
  private final Condition progress = lock.newCondition();
  private final ArrayDeque<Item> queue = new ArrayDeque<>(); // guarded by lock; bounded by room
  /** {@code queue.size()} as last seen under the lock; read without it to decide who encodes. */
  private volatile int backlog;
  private long lastSeq; // guarded by lock: seq of the last enqueued record
  private long syncedSeq; // guarded by lock: every record up to this seq is durable
  private long syncTarget; // guarded by lock: a flush or intent waits for this seq
  private boolean closing; // guarded by lock
  private boolean abandon; // guarded by lock: close gave up waiting
  private boolean writerIdle; // guarded by lock: the writer waits for work with nothing unsynced
  private boolean writerBatching; // guarded by lock: the writer waits for the group commit time
  private volatile String failure; // reason while failed, else null

  private final FileChannel lockChannel;
  private final FileLock dirLock;
  private final Thread thread;

  // ---- owned by the writer thread (and by the constructor before the thread starts)
  private final MessageDigest sha = RecordCodec.sha256();
  private final byte[] staging = new byte[STAGING_BYTES];
  private int stagingLen;
  private final ArrayList<Item> pending = new ArrayList<>(); // taken from the queue, not written
  private final ArrayList<Item> unsynced = new ArrayList<>(); // written, not yet durable
  private long firstUnsyncedNanos;
  private SegmentFiles.Segment newest; // newest segment name in use, for naming the next
  private SegmentFiles.Segment current;
  private SegmentOutput out;
  private long outSize;
  private long committedSize; // size of the current segment up to its last durable line
  private String head; // hash of the last line written
  private String committedHead; // hash of the last durable line
  private long writtenSeq;
  private long committedSeq;
  private long forcedSeq; // what the last fsync covered; published as syncedSeq
  private boolean needsForce;
  private boolean failed;
  private long nextRetryNanos;

  /**
   * Starts a recorder writing into {@code config.directory()} (created if absent).
   *
   * @throws UncheckedIOException when the directory cannot be created or read, another recorder
   *     holds it, the newest segment does not end with a chain line, or retention fails on start
   */
  public JsonlRecorder(Policy.Recording config, Clock clock) {
    this(config, clock, new Options());
  }

  /** Like the constructor, with the I/O failure as a checked exception. */
  public static JsonlRecorder open(Policy.Recording config, Clock clock) throws IOException {
    try {
      return new JsonlRecorder(config, clock);
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  JsonlRecorder(Policy.Recording config, Clock clock, Options options) {
    this.config = Objects.requireNonNull(config, "config");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.options = options;
    this.log = options.log;
    this.dir = config.directory();
    this.ids = new ExchangeIds(clock);
    this.batchIntervalNanos = config.batchInterval().toNanos();
    this.room = new Semaphore(config.queueCapacity());
    FileChannel lc = null;
    FileLock fl = null;
    try {
      Files.createDirectories(dir);
      lc = FileChannel.open(dir.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      try {
        fl = lc.tryLock();
      } catch (OverlappingFileLockException e) {
        fl = null;
      }
      if (fl == null) throw new IOException("recording directory " + dir + " is in use by another recorder");
      start();
    } catch (IOException e) {
      closeQuietly(out);
      closeQuietly(lc);
      throw new UncheckedIOException("cannot start recording in " + dir + ": " + e.getMessage(), e);
    }
    this.lockChannel = lc;
    this.dirLock = fl;
    this.thread = new Thread(this::runWriter, "inferpam-recorder");
    thread.setDaemon(true); // close() is the way to stop; a forgotten recorder must not keep the JVM alive
    thread.start();
  }

  /** The directory this recorder writes into. */
  public Path directory() {
    return dir;
  }

  @Override
  public void admit() throws IOException {
    if (closed.get()) throw new IOException("recorder closed");
    String f = failure;
    if (f != null) throw new IOException("recorder failed: " + f);
    if (heldBytes.get() > options.maxHeldBytes) throw new IOException("recording queue full");
    if (!tryRoom()) throw new IOException("recording queue full");
    reserved.incrementAndGet();
  }

  /** A queue slot now, or after waiting at most {@code queue-full-wait} for one. */
  private boolean tryRoom() throws IOException {
    if (room.tryAcquire()) return true;
    long waitNanos = config.queueFullWait().toNanos();
    if (waitNanos <= 0) return false;
    try {
      return room.tryAcquire(waitNanos, java.util.concurrent.TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted waiting for room in the recording queue");
    }
  }

  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    handOver(new Item(record, false));
  }

  /**
   * {@link #record}, for a record that is built on the thread that encodes it — the writer, or
   * the caller when the writer is behind — rather than on the caller's: the engine leaves the
   * masking of the request body for the record to that thread. If the build throws, the record
   * is not written (logged with the exception's type, as an unencodable record) and its room is
   * freed once the writer has passed it.
   */
  @Override
  public void recordLater(dev.inferpam.api.PendingRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    handOver(new Item(record.id(), record::build, false, 1024 + record.estimatedSize()));
  }

  private void handOver(Item item) throws IOException {
    if (closed.get()) throw new IOException("recorder closed");
    // The writer encodes, so a request thread only hands the record over; when the writer falls
    // behind, callers encode their own lines and the work spreads over their cores.
    if (backlog >= ENCODE_ON_CALLER_BACKLOG) item.body(log);
    if (reserved.getAndUpdate(n -> n > 0 ? n - 1 : 0) == 0) acquire(options.wait.toNanos());
    enqueue(item);
  }

  /**
   * Enqueues an intent line; in {@code STRICT} mode waits (at most 5 s) until it is durable.
   *
   * @throws IOException when the recorder failed, is closed, has no room, or the line is not
   *     durable in time (it may still be written later)
   */
  @Override
  public void intent(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    if (closed.get()) throw new IOException("recorder closed");
    boolean strict = config.durability() == Policy.Durability.STRICT;
    String f = failure;
    if (strict && f != null) throw new IOException("recorder failed: " + f);
    Item item = new Item(record, strict);
    long deadline = System.nanoTime() + options.wait.toNanos();
    acquire(options.wait.toNanos());
    long seq = enqueue(item);
    if (strict) awaitSynced(seq, deadline, "recording intent not durable within " + options.wait.toMillis() + "ms");
  }

  /**
   * Waits until every record handed over before this call is written and fsynced.
   *
   * @throws IOException when the recorder is failed, or after 30 s
   */
  @Override
  public void flush() throws IOException {
    long seq;
    lock.lock();
    try {
      seq = lastSeq;
    } finally {
      lock.unlock();
    }
    awaitSynced(seq, System.nanoTime() + options.closeTimeout.toNanos(),
        "recording flush not done within " + options.closeTimeout.toSeconds() + "s");
  }

  /**
   * Writes and syncs everything queued, stops the writer and releases the directory. Idempotent.
   *
   * @throws IOException when records could not be written within 30 s (the recorder is failed)
   */
  @Override
  public void close() throws IOException {
    if (!closed.compareAndSet(false, true)) return;
    lock.lock();
    try {
      closing = true;
      syncTarget = lastSeq;
      work.signalAll();
    } finally {
      lock.unlock();
    }
    try {
      thread.join(options.closeTimeout.toMillis());
      if (thread.isAlive()) {
        lock.lock();
        try {
          abandon = true;
          work.signalAll();
          progress.signalAll();
        } finally {
          lock.unlock();
        }
        thread.join(options.closeTimeout.toMillis());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while closing the recorder");
    } finally {
      releaseLock();
    }
    long unwritten;
    lock.lock();
    try {
      unwritten = lastSeq - syncedSeq;
    } finally {
      lock.unlock();
    }
    if (unwritten > 0) {
      throw new IOException("recorder closed with " + unwritten + " record(s) not written: " + failure);
    }
  }

  @Override
  public String toString() {
    return "JsonlRecorder[" + dir + ", " + config.durability() + (failure != null ? ", failed" : "") + "]";
  }

  // ------------------------------------------------------------------------------ caller side

  private void acquire(long nanos) throws IOException {
    try {
      if (!room.tryAcquire(nanos, TimeUnit.NANOSECONDS)) throw new IOException("recording queue full");
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
      if (queue.size() >= config.queueCapacity()) { // cannot happen while every item holds room
        room.release();
        throw new IOException("recording queue full");
      }
      item.seq = ++lastSeq;
      queue.addLast(item);
      backlog = queue.size();
      heldBytes.addAndGet(item.size);
      // waking the writer costs a system call: only when it is idle, or when a full batch is
      // waiting; a busy writer drains the queue anyway and a batching one at the commit time
      if (writerIdle || (writerBatching && queue.size() >= config.batchSize())) {
        writerIdle = false;
        writerBatching = false;
        work.signal();
      }
      return item.seq;
    } finally {
      lock.unlock();
    }
  }

  private void awaitSynced(long seq, long deadline, String timeoutMessage) throws IOException {
    lock.lock();
    try {
      if (seq > syncTarget) syncTarget = seq;
      work.signal();
      while (syncedSeq < seq) {
        String f = failure;
        if (f != null) throw new IOException("recorder failed: " + f);
        if (abandon) throw new IOException("recorder closed");
        long nanos = deadline - System.nanoTime();
        if (nanos <= 0) throw new IOException(timeoutMessage);
        progress.awaitNanos(nanos);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for the recording to be durable");
    } finally {
      lock.unlock();
    }
  }

  private void releaseLock() {
    try {
      if (dirLock != null && dirLock.isValid()) dirLock.release();
    } catch (IOException e) {
      log.debug("inferpam: releasing the recording directory lock failed: {}", e.toString());
    }
    closeQuietly(lockChannel);
  }

  // ------------------------------------------------------------------------------ writer side

  /** Finds where the chain stands and applies retention; runs before the writer thread starts. */
  private void start() throws IOException {
    List<SegmentFiles.Segment> segments = SegmentFiles.list(dir);
    newest = segments.isEmpty() ? null : segments.get(segments.size() - 1);
    head = RecordCodec.GENESIS;
    for (int i = segments.size() - 1; i >= 0; i--) {
      SegmentFiles.Segment s = segments.get(i);
      SegmentFiles.Tail tail = SegmentFiles.tail(s.path());
      if (tail == null) continue;
      if (tail.torn()) {
        log.warn("inferpam: recording segment {} ends with a truncated line (a write cut short by a crash?); "
            + "leaving it as it is and continuing the chain from its last intact line in a new segment", s.name());
      }
      if (tail.hash() != null) {
        head = tail.hash();
        break;
      }
    }
    committedHead = head;
    retention();
  }

  private void runWriter() {
    try {
      while (true) {
        long target;
        lock.lock();
        try {
          while (true) {
            if (abandon) return;
            if (failed) {
              long wait = nextRetryNanos - System.nanoTime();
              if (wait <= 0) break;
              work.awaitNanos(wait);
              continue;
            }
            if (!queue.isEmpty() || !pending.isEmpty() || syncTarget > syncedSeq) break;
            if (!unsynced.isEmpty()) {
              long due = firstUnsyncedNanos + batchIntervalNanos - System.nanoTime();
              if (due <= 0) break;
              writerBatching = true;
              work.awaitNanos(due);
              writerBatching = false;
              continue;
            }
            if (closing) return; // everything is written and durable
            writerIdle = true;
            work.await();
            writerIdle = false;
          }
          int batch = config.batchSize();
          while (pending.size() < batch && !queue.isEmpty()) pending.add(queue.pollFirst());
          backlog = queue.size();
          target = syncTarget;
        } finally {
          lock.unlock();
        }
        step(target);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      // a bug, not an I/O error: stop accepting records rather than pretend to record them
      failure = "recorder stopped: " + t;
      log.error("inferpam: the recording writer stopped; new exchanges are refused", t);
    } finally {
      if (out != null) {
        try {
          if (!failed) force();
        } catch (IOException | RuntimeException e) {
          log.error("inferpam: final sync of the recording failed: {}", describe(e));
        }
        closeQuietly(out);
        out = null;
      }
      lock.lock();
      try {
        progress.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** Writes what is pending and syncs when due; a failure is recorded, never thrown. */
  private void step(long target) {
    boolean recovering = failed;
    try {
      boolean intent = false;
      for (Item i : pending) intent |= i.intent;
      if (recovering && pending.isEmpty() && out == null) openSegment(false); // prove the disk works
      writePending();
      boolean due = !unsynced.isEmpty()
          && (unsynced.size() >= config.batchSize() || System.nanoTime() - firstUnsyncedNanos >= batchIntervalNanos);
      if (recovering || intent || due || target > forcedSeq) force();
      if (recovering) recovered();
    } catch (IOException | RuntimeException e) {
      fail(e);
    }
  }

  private void writePending() throws IOException {
    int staged = 0; // pending[0, staged) are in the staging buffer
    while (staged < pending.size()) {
      Item item = pending.get(staged);
      byte[] body = item.body(log);
      if (body == null) { // not encodable: nothing to write, counts as done
        staged++;
        continue;
      }
      int lineLen = body.length + TAIL_BYTES;
      if (needsNewSegment(lineLen)) {
        flushStaging(staged);
        staged = 0;
        if (out == null) {
          openSegment(true);
        } else {
          rotate();
        }
        continue;
      }
      if (stagingLen + lineLen > staging.length) {
        flushStaging(staged);
        staged = 0;
      }
      byte[] tail = RecordCodec.tail(body, head, sha);
      if (lineLen > staging.length) { // too big to stage (staging was flushed above): write it directly
        out.write(body, 0, body.length);
        out.write(tail, 0, tail.length);
        outSize += lineLen;
        head = RecordCodec.hashOfTail(tail);
        written(1);
        continue;
      }
      System.arraycopy(body, 0, staging, stagingLen, body.length);
      System.arraycopy(tail, 0, staging, stagingLen + body.length, tail.length);
      stagingLen += lineLen;
      outSize += lineLen;
      head = RecordCodec.hashOfTail(tail);
      staged++;
    }
    flushStaging(staged);
  }

  private boolean needsNewSegment(int lineLen) {
    if (out == null) return true;
    LocalDate today = SegmentFiles.day(clock.instant());
    return today.isAfter(current.day()) || (outSize > 0 && outSize + lineLen > config.segmentBytes());
  }

  private void flushStaging(int items) throws IOException {
    if (stagingLen > 0) {
      out.write(staging, 0, stagingLen);
      stagingLen = 0;
    }
    if (items > 0) written(items);
  }

  /** The first {@code n} pending items are now in the file. */
  private void written(int n) {
    List<Item> done = pending.subList(0, n);
    writtenSeq = done.get(n - 1).seq;
    needsForce = true;
    if (config.durability() == Policy.Durability.ASYNC) {
      // async: a line handed to the OS is as committed as this mode promises
      committedSeq = writtenSeq;
      committedHead = head;
      committedSize = outSize;
      for (Item i : done) heldBytes.addAndGet(-i.size);
      room.release(n);
    } else {
      if (unsynced.isEmpty()) firstUnsyncedNanos = System.nanoTime();
      unsynced.addAll(done);
    }
    done.clear();
  }

  /** Makes everything written durable and frees the room of the records that became durable. */
  private void force() throws IOException {
    if (out != null && needsForce) out.force();
    needsForce = false;
    committedSeq = writtenSeq;
    committedHead = head;
    committedSize = outSize;
    forcedSeq = writtenSeq;
    int n = unsynced.size();
    for (Item i : unsynced) heldBytes.addAndGet(-i.size);
    unsynced.clear();
    if (n > 0) room.release(n);
    lock.lock();
    try {
      if (writtenSeq > syncedSeq) syncedSeq = writtenSeq;
      progress.signalAll();
    } finally {
      lock.unlock();
    }
  }

  private void rotate() throws IOException {
    force();
    SegmentOutput o = out;
    out = null;
    o.close();
    openSegment(true);
  }

  private void openSegment(boolean retention) throws IOException {
    SegmentFiles.Segment next = SegmentFiles.next(dir, newest, SegmentFiles.day(clock.instant()));
    SegmentOutput o;
    try {
      o = options.io.create(next.path());
    } catch (FileAlreadyExistsException e) {
      newest = next; // a leftover; the next attempt takes the following name
      throw e;
    }
    newest = next;
    current = next;
    out = o;
    outSize = 0;
    committedSize = 0;
    if (retention) retention();
  }

  /** Removes expired segments (see the class comment). */
  private void retention() throws IOException {
    Duration keep = config.retention();
    if (keep == null) return;
    Instant now = clock.instant();
    Instant cutoff = now.minus(keep);
    List<SegmentFiles.Segment> segments = SegmentFiles.list(dir);
    List<RecordCodec.Removed> removed = new ArrayList<>();
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < segments.size() - 1; i++) { // never the newest
      SegmentFiles.Segment s = segments.get(i);
      if (current != null && s.path().equals(current.path())) break;
      // a segment holds lines written on its day or earlier, so a day that ended before the
      // cutoff is expired without reading it
      Instant dayEnd = s.day().plusDays(1).atStartOfDay(ZoneOffset.UTC).toInstant();
      if (dayEnd.isAfter(cutoff)) {
        SegmentFiles.Tail tail;
        try {
          tail = SegmentFiles.tail(s.path());
        } catch (IOException e) {
          log.warn("inferpam: retention stops at {}: {}", s.name(), describe(e));
          break;
        }
        if (tail == null || tail.time() == null || !tail.time().isBefore(cutoff)) break;
      }
      SegmentFiles.Summary sum = SegmentFiles.summarize(s.path());
      removed.add(new RecordCodec.Removed(s.name(), sum.records(), sum.firstPrev(), sum.lastHash()));
      files.add(s.path());
    }
    if (removed.isEmpty()) return;
    if (out == null) openSegment(false);
    // the line that carries the chain is durable before anything is deleted
    writeChainLine(RecordCodec.retentionBody(ids.next(), now, removed));
    for (Path f : files) {
      try {
        Files.deleteIfExists(f);
      } catch (IOException e) {
        log.warn("inferpam: retention could not remove {}: {}", f.getFileName(), describe(e));
      }
    }
    log.info("inferpam: retention removed {} recording segment(s) older than {}: {}", files.size(), keep,
        removed.stream().map(RecordCodec.Removed::file).collect(Collectors.joining(", ")));
  }

  private void writeChainLine(String body) throws IOException {
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    byte[] tail = RecordCodec.tail(b, head, sha);
    out.write(b, 0, b.length);
    out.write(tail, 0, tail.length);
    outSize += b.length + tail.length;
    head = RecordCodec.hashOfTail(tail);
    needsForce = true;
    force();
  }

  private void fail(Exception e) {
    String reason = describe(e);
    boolean first = !failed;
    failed = true;
    nextRetryNanos = System.nanoTime() + options.retryInterval.toNanos();
    // what is not durable is written again, chained to the last durable line
    pending.addAll(0, unsynced);
    unsynced.clear();
    stagingLen = 0;
    head = committedHead;
    writtenSeq = committedSeq;
    needsForce = false;
    if (out != null) {
      try {
        out.truncate(committedSize); // drops a half-written line, if the disk lets us
      } catch (IOException | RuntimeException ignored) {
        // the segment stays as it is; verify will name the broken line
      }
      closeQuietly(out);
      out = null;
      if (committedSize == 0) {
        try {
          Files.deleteIfExists(current.path());
        } catch (IOException | RuntimeException ignored) {
          // an empty leftover segment is harmless
        }
      }
    }
    lock.lock();
    try {
      failure = reason;
      progress.signalAll();
    } finally {
      lock.unlock();
    }
    if (first) {
      log.error("inferpam: recording to {} failed; new exchanges are refused (503 recording_unavailable) "
          + "until writing works again, retrying every {} ms: {}", dir, options.retryInterval.toMillis(), reason);
    } else {
      log.debug("inferpam: recording still failing: {}", reason);
    }
  }

  private void recovered() {
    failed = false;
    lock.lock();
    try {
      failure = null;
    } finally {
      lock.unlock();
    }
    log.info("inferpam: recording to {} works again, continuing in {}", dir, current == null ? "-" : current.name());
  }

  private static String describe(Throwable e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }

  private static void closeQuietly(Closeable c) {
    if (c == null) return;
    try {
      c.close();
    } catch (IOException | RuntimeException ignored) {
      // nothing more to do with it
    }
  }

  /** Makes a new directory entry durable; not every platform can sync a directory. */
  private static void syncDirectory(Path dir) {
    if (dir == null) return;
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    } catch (IOException | RuntimeException ignored) {
      // best effort: the file's own fsync still covers its content
    }
  }

  /** The production segment output: a file channel. */
  private static final class ChannelOutput implements SegmentOutput {
    private final FileChannel ch;

    ChannelOutput(FileChannel ch) {
      this.ch = ch;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      ByteBuffer buf = ByteBuffer.wrap(b, off, len);
      while (buf.hasRemaining()) ch.write(buf);
    }

    @Override
    public void force() throws IOException {
      ch.force(false);
    }

    @Override
    public void truncate(long size) throws IOException {
      ch.truncate(size);
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }
}
