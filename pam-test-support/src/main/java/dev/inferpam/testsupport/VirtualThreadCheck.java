package dev.inferpam.testsupport;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingStream;

/**
 * What tests of "holds no thread, never pins a virtual thread" need, in code compiled for Java
 * 17 and run on a JDK 21+ (the {@code virtual-threads} surefire execution, on
 * {@code ${pam.vt.java}}): virtual threads, the live platform threads, and a JFR recording of
 * every {@code jdk.VirtualThreadPinned} event (threshold 0, with stack traces).
 *
 * <pre>{@code
 * VirtualThreadCheck.requireVirtualThreads();            // fails, saying how to get a JDK 21+
 * try (VirtualThreadCheck pinning = VirtualThreadCheck.recordPinning();
 *     ExecutorService callers = VirtualThreadCheck.newVirtualThreadPerTaskExecutor()) {
 *   int before = VirtualThreadCheck.platformThreadCount();
 *   ... 200 calls on callers, waiting ...
 *   assertThat(VirtualThreadCheck.platformThreadCount() - before).isLessThan(20);
 *   assertThat(pinning.pinnedIn("dev.inferpam.")).isEmpty();
 * }
 * }</pre>
 *
 * <p>Virtual threads are reached through {@link MethodHandles} (their API is Java 21's); JFR's
 * {@link RecordingStream} is Java 14's, used directly. On a JDK without virtual threads every
 * method that needs them fails with an {@link AssertionError} naming {@link #NEEDS_JDK_21} —
 * such tests never skip.
 *
 * <p><b>Thread-safety:</b> the static methods are safe for concurrent use; a recording collects
 * events on JFR's thread and is read by the test's.
 */
public final class VirtualThreadCheck implements AutoCloseable {
  /** What a test run on a JDK without virtual threads fails with (then the JVM it ran on). */
  public static final String NEEDS_JDK_21 =
      "these tests need a JDK 21+: install Temurin 25 at /usr/lib/jvm/temurin-25-jdk-amd64 or"
          + " pass -Dpam.vt.java=/path/to/java";

  /** How long {@link #pinnings()} waits for the recording to catch up. */
  public static final Duration SYNC_TIMEOUT = Duration.ofSeconds(30);

  private static final String PINNED = "jdk.VirtualThreadPinned";
  private static final MethodHandle NEW_VIRTUAL_EXECUTOR;
  private static final MethodHandle IS_VIRTUAL;

  static {
    MethodHandles.Lookup lookup = MethodHandles.publicLookup();
    MethodHandle executor;
    MethodHandle isVirtual;
    try {
      executor =
          lookup.findStatic(
              Executors.class,
              "newVirtualThreadPerTaskExecutor",
              MethodType.methodType(ExecutorService.class));
      isVirtual =
          lookup.findVirtual(Thread.class, "isVirtual", MethodType.methodType(boolean.class));
    } catch (NoSuchMethodException | IllegalAccessException e) {
      executor = null;
      isVirtual = null;
    }
    NEW_VIRTUAL_EXECUTOR = executor;
    IS_VIRTUAL = isVirtual;
  }

  /** One {@code jdk.VirtualThreadPinned} event: the thread, how long, and its stack, top first. */
  public record Pinning(String thread, Duration duration, List<String> frames) {
    public Pinning {
      frames = List.copyOf(frames);
    }

    /** True when a frame of the stack is a method of a class whose name starts with {@code prefix}. */
    public boolean touches(String prefix) {
      return frames.stream().anyMatch(f -> f.startsWith(prefix));
    }

    @Override
    public String toString() {
      return "pinned "
          + thread
          + " for "
          + duration
          + frames.stream().limit(25).collect(Collectors.joining("\n    at ", "\n    at ", ""));
    }
  }

  /** A mark this class commits, and waits to see, so that every event before it was read. */
  @Name("dev.inferpam.testsupport.Sync")
  @Label("inferpam test sync")
  static final class SyncEvent extends Event {
    @Label("id")
    long id;
  }

  private static final AtomicLong SYNC_IDS = new AtomicLong();

  private final RecordingStream stream;
  private final ConcurrentLinkedQueue<Pinning> pinnings = new ConcurrentLinkedQueue<>();
  private final java.util.Map<Long, CountDownLatch> syncs =
      new java.util.concurrent.ConcurrentHashMap<>();

  private VirtualThreadCheck(RecordingStream stream) {
    this.stream = stream;
  }

  /**
   * Fails unless this JVM runs virtual threads.
   *
   * @throws AssertionError naming {@link #NEEDS_JDK_21} and this JVM
   */
  public static void requireVirtualThreads() {
    if (NEW_VIRTUAL_EXECUTOR == null) {
      throw new AssertionError(
          NEEDS_JDK_21
              + " (this is Java "
              + System.getProperty("java.version")
              + " at "
              + System.getProperty("java.home")
              + ")");
    }
  }

  /** {@code Executors.newVirtualThreadPerTaskExecutor()}: a new virtual thread per task. */
  public static ExecutorService newVirtualThreadPerTaskExecutor() {
    requireVirtualThreads();
    try {
      return (ExecutorService) NEW_VIRTUAL_EXECUTOR.invokeExact();
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code thread.isVirtual()}; false on a JDK without virtual threads. */
  public static boolean isVirtual(Thread thread) {
    Objects.requireNonNull(thread, "thread");
    if (IS_VIRTUAL == null) return false;
    try {
      return (boolean) IS_VIRTUAL.invokeExact(thread);
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable e) {
      throw new IllegalStateException(e);
    }
  }

  /** The live platform threads of this JVM, as {@code ThreadMXBean} counts them (virtual ones never). */
  public static int platformThreadCount() {
    return ManagementFactory.getThreadMXBean().getThreadCount();
  }

  /**
   * The live platform threads by name with how many share it, for a failure message: a thread
   * that should not be there shows what started it.
   */
  public static String platformThreadNames() {
    TreeMap<String, Integer> byName = new TreeMap<>();
    for (Thread t : Thread.getAllStackTraces().keySet()) {
      byName.merge(t.getName().replaceAll("\\d+", "#"), 1, Integer::sum);
    }
    return byName.toString();
  }

  /**
   * Starts recording every {@code jdk.VirtualThreadPinned} event of this JVM (threshold 0, with
   * its stack trace) until {@link #close()}.
   *
   * @throws AssertionError on a JDK without virtual threads
   */
  public static VirtualThreadCheck recordPinning() {
    requireVirtualThreads();
    RecordingStream stream = new RecordingStream();
    VirtualThreadCheck check = new VirtualThreadCheck(stream);
    stream.enable(PINNED).withThreshold(Duration.ZERO).withStackTrace();
    stream.enable(SyncEvent.class);
    stream.onEvent(PINNED, check::pinned);
    stream.onEvent(
        "dev.inferpam.testsupport.Sync",
        e -> {
          CountDownLatch seen = check.syncs.get(e.getLong("id"));
          if (seen != null) seen.countDown();
        });
    stream.startAsync();
    // The stream reads what is flushed; wait until it does, so no early event is missed.
    check.sync();
    return check;
  }

  private void pinned(RecordedEvent event) {
    RecordedThread thread = event.getThread();
    String name = thread == null ? "?" : thread.getJavaName() + "#" + thread.getJavaThreadId();
    List<String> frames = new ArrayList<>();
    RecordedStackTrace trace = event.getStackTrace();
    if (trace != null) {
      for (RecordedFrame f : trace.getFrames()) {
        frames.add(
            f.getMethod().getType().getName()
                + "."
                + f.getMethod().getName()
                + (f.getLineNumber() > 0 ? ":" + f.getLineNumber() : ""));
      }
    }
    pinnings.add(new Pinning(name, event.getDuration(), frames));
  }

  /** Commits a sync event and waits until the stream read it: everything before it is read. */
  private void sync() {
    long id = SYNC_IDS.incrementAndGet();
    CountDownLatch seen = new CountDownLatch(1);
    syncs.put(id, seen);
    SyncEvent event = new SyncEvent();
    event.id = id;
    event.commit();
    try {
      if (!seen.await(SYNC_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError("the JFR recording did not catch up within " + SYNC_TIMEOUT);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while waiting for the JFR recording", e);
    } finally {
      syncs.remove(id);
    }
  }

  /** Every pinning recorded so far (waiting until the recording read all that happened before). */
  public List<Pinning> pinnings() {
    sync();
    return List.copyOf(pinnings);
  }

  /** The pinnings whose stack has a frame of a class named {@code prefix}... (e.g. {@code "dev.inferpam."}). */
  public List<Pinning> pinnedIn(String prefix) {
    return pinnings().stream().filter(p -> p.touches(prefix)).toList();
  }

  /** Stops the recording. */
  @Override
  public void close() {
    stream.close();
  }
}
