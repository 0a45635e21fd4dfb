package dev.inferpam.core.internal.recording;

import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Background;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
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
 * <p><b>Threads.</b> The writer is one thread of its own for the recorder's life, made by the
 * {@link ThreadFactory} given to the constructor (default: a daemon thread named
 * {@code inferpam-recorder}); {@link #close()} ends it.
 *
 * <p><b>Start.</b> A directory that cannot be used is refused at once with an
 * {@link UncheckedIOException} that says why: {@code permission denied}, {@code read-only file
 * system}, {@code not a directory}, {@code in use by another recorder}, with the file concerned.
 *
 * <p><b>Parts.</b> {@link RecordAdmission} keeps the room, {@link SegmentWriter} (on the writer
 * thread) the segments, chain and durability, {@link SegmentRetention} the retention; this class
 * hands records from callers to the writer and owns the directory lock and the writer's life.
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

  /** Creates segment files: the seam through which tests inject disk faults. */
  interface SegmentIo {
    /** Creates {@code file}, which must not exist, for writing. */
    SegmentOutput create(Path file) throws IOException;

    SegmentIo FILES =
        file -> {
          FileChannel ch =
              FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
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
    ThreadFactory threadFactory = DEFAULT_THREADS;
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

    Options threadFactory(ThreadFactory threadFactory) {
      this.threadFactory = Objects.requireNonNull(threadFactory, "threadFactory");
      return this;
    }

    Options log(Logger log) {
      this.log = log;
      return this;
    }
  }

  /** The writer thread by default: a daemon, so that a recorder nobody closed does not keep the JVM alive. */
  private static final ThreadFactory DEFAULT_THREADS =
      Background.daemonThreads("inferpam-recorder");

  private final Path dir;
  private final Policy.Recording config;
  private final Options options;
  private final Logger log;
  private final RecordAdmission admission;

  /** Owned by the writer thread once it started. */
  private final SegmentWriter writer;

  // ---- shared between callers and the writer
  private final AtomicBoolean closed = new AtomicBoolean();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition work = lock.newCondition();
  private final Condition progress = lock.newCondition();
  private final ArrayDeque<QueuedRecord> queue =
      new ArrayDeque<>(); // guarded by lock; bounded by the admission

  /** {@code queue.size()} as last seen under the lock; read without it to decide who encodes. */
  private volatile int backlog;

  /** Records handed over and not yet durable: the writer's queue as it last saw it. */
  @Override
  public long backlog() {
    return backlog;
  }

  /** When records not yet durable were handed over; guarded by lock. */
  private final PendingTimes pending = new PendingTimes();

  /** {@code pending.oldest()} as last seen under the lock. */
  private volatile long oldestPending = PendingTimes.NONE;

  /** How long the oldest record not yet durable has waited. */
  @Override
  public long lagNanos() {
    return PendingTimes.lag(oldestPending, System.nanoTime());
  }

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

  /**
   * Starts a recorder writing into {@code config.directory()} (created if absent), on a daemon
   * thread of its own named {@code inferpam-recorder}.
   *
   * @throws UncheckedIOException when the directory cannot be created or read, another recorder
   *     holds it, the newest segment does not end with a chain line, or retention fails on start;
   *     the message says why ({@code permission denied}, {@code read-only file system},
   *     {@code not a directory}, ...) and names the file
   */
  public JsonlRecorder(Policy.Recording config, Clock clock) {
    this(config, clock, new Options());
  }

  /**
   * As {@link #JsonlRecorder(Policy.Recording, Clock)}, with the writer thread made by
   * {@code threads} (it runs for the recorder's life and ends on {@link #close()}).
   *
   * @throws UncheckedIOException as {@link #JsonlRecorder(Policy.Recording, Clock)}
   */
  public JsonlRecorder(Policy.Recording config, Clock clock, ThreadFactory threads) {
    this(config, clock, new Options().threadFactory(threads));
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
    Objects.requireNonNull(clock, "clock");
    this.options = options;
    this.log = options.log;
    this.dir = config.directory();
    this.admission =
        new RecordAdmission(config.queueCapacity(), config.queueFullWait(), options.maxHeldBytes);
    this.writer =
        new SegmentWriter(
            config, clock, options.io, options.retryInterval, log, admission, new Listener());
    FileChannel lc = null;
    FileLock fl = null;
    try {
      Files.createDirectories(dir);
      lc =
          FileChannel.open(
              dir.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      try {
        fl = lc.tryLock();
      } catch (OverlappingFileLockException e) {
        fl = null;
      }
      if (fl == null)
        throw new IOException("recording directory " + dir + " is in use by another recorder");
      writer.start();
    } catch (IOException e) {
      writer.abort();
      SegmentWriter.closeQuietly(lc);
      throw new UncheckedIOException(
          "cannot start recording in " + dir + ": " + startProblem(e), e);
    }
    this.lockChannel = lc;
    this.dirLock = fl;
    Thread t;
    try {
      t = options.threadFactory.newThread(this::runWriter);
      if (t == null)
        throw new IllegalStateException(
            "the thread factory made no thread for the recording writer");
      t.start();
    } catch (RuntimeException | Error e) {
      releaseLock();
      throw e;
    }
    this.thread = t;
  }

  /** Why the directory cannot be used, in words: the JDK names only the file for "permission denied". */
  private static String startProblem(IOException e) {
    return e instanceof java.nio.file.FileSystemException
        ? FileProblems.describe(e)
        : e.getMessage();
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
    admission.admit();
  }

  @Override
  public void record(SessionRecord record) throws IOException {
    Objects.requireNonNull(record, "record");
    handOver(new QueuedRecord(record, false));
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
    handOver(
        new QueuedRecord(
            record.id(), record::build, false, 1024 + Math.max(0, record.estimatedSize())));
  }

  private void handOver(QueuedRecord record) throws IOException {
    if (closed.get()) throw new IOException("recorder closed");
    // The writer encodes, so a request thread only hands the record over; when the writer falls
    // behind, callers encode their own lines and the work spreads over their cores.
    if (backlog >= ENCODE_ON_CALLER_BACKLOG) record.body(log);
    admission.take(options.wait);
    enqueue(record);
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
    QueuedRecord queued = new QueuedRecord(record, strict);
    long deadline = System.nanoTime() + options.wait.toNanos();
    admission.acquire(options.wait);
    long seq = enqueue(queued);
    if (strict)
      awaitSynced(
          seq, deadline, "recording intent not durable within " + options.wait.toMillis() + "ms");
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
    awaitSynced(
        seq,
        System.nanoTime() + options.closeTimeout.toNanos(),
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
      throw new IOException(
          "recorder closed with " + unwritten + " record(s) not written: " + failure);
    }
  }

  @Override
  public String toString() {
    return "JsonlRecorder["
        + dir
        + ", "
        + config.durability()
        + (failure != null ? ", failed" : "")
        + "]";
  }

  // ------------------------------------------------------------------------------ caller side

  private long enqueue(QueuedRecord record) throws IOException {
    lock.lock();
    try {
      if (closing) {
        admission.giveBack();
        throw new IOException("recorder closed");
      }
      if (queue.size() >= config.queueCapacity()) { // cannot happen while every record holds room
        admission.giveBack();
        throw new IOException("recording queue full");
      }
      record.seq = ++lastSeq;
      queue.addLast(record);
      backlog = queue.size();
      pending.add(record.seq, System.nanoTime());
      oldestPending = pending.oldest();
      admission.held(record);
      // waking the writer costs a system call: only when it is idle, or when a full batch is
      // waiting; a busy writer drains the queue anyway and a batching one at the commit time
      if (writerIdle || (writerBatching && queue.size() >= config.batchSize())) {
        writerIdle = false;
        writerBatching = false;
        work.signal();
      }
      return record.seq;
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
    SegmentWriter.closeQuietly(lockChannel);
  }

  // ------------------------------------------------------------------------------ writer side

  /** The writer thread: takes queued records to the segment writer, and waits for work or a deadline. */
  private void runWriter() {
    try {
      while (true) {
        long target;
        lock.lock();
        try {
          while (true) {
            if (abandon) return;
            if (writer.failed()) {
              long wait = writer.retryInNanos(System.nanoTime());
              if (wait <= 0) break;
              work.awaitNanos(wait);
              continue;
            }
            if (!queue.isEmpty() || writer.hasPending() || syncTarget > syncedSeq) break;
            if (writer.hasUnsynced()) {
              long due = writer.commitInNanos(System.nanoTime());
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
          for (int room = writer.room(); room > 0 && !queue.isEmpty(); room--)
            writer.take(queue.pollFirst());
          backlog = queue.size();
          target = syncTarget;
        } finally {
          lock.unlock();
        }
        writer.step(target);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Throwable t) {
      // a bug, not an I/O error: stop accepting records rather than pretend to record them
      failure = "recorder stopped: " + t;
      log.error("inferpam: the recording writer stopped; new exchanges are refused", t);
    } finally {
      writer.stop();
      lock.lock();
      try {
        progress.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** The writer's news, published to callers under the lock. */
  private final class Listener implements SegmentWriter.Listener {
    @Override
    public void durable(long seq) {
      lock.lock();
      try {
        if (seq > syncedSeq) syncedSeq = seq;
        pending.durableUpTo(syncedSeq);
        oldestPending = pending.oldest();
        progress.signalAll();
      } finally {
        lock.unlock();
      }
    }

    @Override
    public void failed(String reason) {
      lock.lock();
      try {
        failure = reason;
        progress.signalAll();
      } finally {
        lock.unlock();
      }
    }

    @Override
    public void recovered() {
      lock.lock();
      try {
        failure = null;
      } finally {
        lock.unlock();
      }
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
