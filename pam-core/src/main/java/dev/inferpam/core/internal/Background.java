package dev.inferpam.core.internal;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;

/**
 * Where the things an engine builds do their background work, as given to
 * {@code PamEngine.Builder}: an {@link Executor} for tasks (key-set fetches and refreshes, token
 * requests), a {@link ScheduledExecutorService} for timers (review expiry), and a
 * {@link ThreadFactory} for the threads they start themselves (the recorder's writer, and the
 * pools they own when no executor or scheduler is given). Each may be {@code null}: the component
 * then uses its own default, as documented on it. Nothing here is ever shut down by whoever is
 * given it. Immutable.
 *
 * @param executor      runs background tasks, or {@code null}
 * @param scheduler     runs delayed tasks, or {@code null}
 * @param threadFactory makes threads, or {@code null} for daemon threads with inferpam names
 */
public record Background(
    Executor executor, ScheduledExecutorService scheduler, ThreadFactory threadFactory) {

  /** Every component's own default. */
  public static final Background DEFAULT = new Background(null, null, null);

  /**
   * The given thread factory; without one, daemon threads named {@code name} (a component nobody
   * closed must not keep the JVM alive).
   */
  public ThreadFactory threads(String name) {
    return threadFactory != null ? threadFactory : daemonThreads(name);
  }

  /** Daemon threads named {@code name}: a component nobody closed must not keep the JVM alive. */
  public static ThreadFactory daemonThreads(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /**
   * A builder's set-once rule: {@code given}, not null, when {@code current} is unset.
   *
   * @throws IllegalStateException when {@code current} is already set ("{@code name} already set")
   * @throws NullPointerException  when {@code given} is null (message {@code param})
   */
  public static <T> T setOnce(T current, T given, String name, String param) {
    if (current != null) throw new IllegalStateException(name + " already set");
    return Objects.requireNonNull(given, param);
  }

  /**
   * {@code executor} as an {@link ExecutorService} for APIs that want one (and may shut it down):
   * shutting the view down refuses further tasks through it and leaves {@code executor} running.
   */
  public static ExecutorService borrowed(Executor executor) {
    return new Borrowed(executor);
  }

  private static final class Borrowed extends AbstractExecutorService {
    private final Executor delegate;
    private volatile boolean shutdown;

    Borrowed(Executor delegate) {
      this.delegate = delegate;
    }

    @Override
    public void execute(Runnable command) {
      if (shutdown) throw new java.util.concurrent.RejectedExecutionException("shut down");
      delegate.execute(command);
    }

    @Override
    public void shutdown() {
      shutdown = true;
    }

    @Override
    public List<Runnable> shutdownNow() {
      shutdown = true;
      return List.of();
    }

    @Override
    public boolean isShutdown() {
      return shutdown;
    }

    @Override
    public boolean isTerminated() {
      return shutdown;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return shutdown;
    }
  }
}
