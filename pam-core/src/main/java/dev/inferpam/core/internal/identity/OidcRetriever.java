package dev.inferpam.core.internal.identity;

import com.nimbusds.jose.util.DefaultResourceRetriever;
import com.nimbusds.jose.util.Resource;
import dev.inferpam.core.internal.Background;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.FutureTask;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Fetches JWK sets and discovery documents for one issuer of {@link OidcResolver}: Nimbus's
 * {@link DefaultResourceRetriever} with connect and read timeouts and a size limit, plus what it
 * lacks:
 *
 * <ul>
 *   <li>a deadline for the whole fetch. The read timeout bounds each read, so a server that
 *       trickles one byte at a time would otherwise hold the request thread for as long as it
 *       likes. The fetch runs on a worker thread and the caller waits for it at most the
 *       deadline; a fetch that overruns goes on in the background until a read times out, the
 *       size limit is reached or the server finishes, and is then forgotten. (Closing the
 *       connection from another thread is no help: {@code HttpURLConnection} may then drain the
 *       rest of the body under a lock the reader needs.) At most {@value #MAX_CONCURRENT_FETCHES}
 *       fetches run at once; beyond that a fetch fails at once;
 *   <li>no redirects: keys come from the configured URL and nowhere else;
 *   <li>{@code http} and {@code https} only (the superclass would also read {@code file:} URLs;
 *       {@link OidcRules#urlProblem} refused those before).
 * </ul>
 *
 * <p><b>Threads.</b> Fetches run on the executor given ({@link Background#executor()}), which is
 * never shut down here; without one, on a pool of its own whose threads
 * ({@code inferpam-oidc-fetch <issuer>}, daemons unless a thread factory says otherwise) end when
 * idle, and which {@link #close()} shuts down. After {@code close()} every fetch fails.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use.
 */
final class OidcRetriever extends DefaultResourceRetriever implements AutoCloseable {

  /** Fetches of one issuer at once: a refresh, a re-fetch for a new key, a discovery, and one spare. */
  static final int MAX_CONCURRENT_FETCHES = 4;

  private final Duration deadline;
  private final Executor workers;

  /** The pool made here, shut down on close; {@code null} with a given executor. */
  private final ThreadPoolExecutor own;

  private final Semaphore fetches = new Semaphore(MAX_CONCURRENT_FETCHES);
  private volatile boolean closed;
  private final Runnable onFailure;

  /**
   * @param connectTimeout per connection attempt
   * @param readTimeout    per read
   * @param sizeLimit      largest response body, in bytes; larger is an error
   * @param deadline       longest a caller waits for a whole fetch
   * @param name           names the worker threads, e.g. the issuer's policy path
   * @param background     the executor to fetch on, or the thread factory for an own pool
   * @param onFailure      told of each fetch that failed (not of one refused after close)
   */
  OidcRetriever(
      Duration connectTimeout,
      Duration readTimeout,
      int sizeLimit,
      Duration deadline,
      String name,
      Background background,
      Runnable onFailure) {
    super(
        Math.toIntExact(connectTimeout.toMillis()),
        Math.toIntExact(readTimeout.toMillis()),
        sizeLimit,
        true);
    this.deadline = deadline;
    this.onFailure = onFailure;
    if (background.executor() != null) {
      this.workers = background.executor();
      this.own = null;
    } else {
      this.own =
          new ThreadPoolExecutor(
              0,
              MAX_CONCURRENT_FETCHES,
              30,
              TimeUnit.SECONDS,
              new SynchronousQueue<>(),
              background.threads("inferpam-oidc-fetch " + name));
      this.workers = own;
    }
  }

  @Override
  public Resource retrieveResource(URL url) throws IOException {
    try {
      return fetch(url);
    } catch (IOException | RuntimeException e) {
      if (!closed) onFailure.run();
      throw e;
    }
  }

  private Resource fetch(URL url) throws IOException {
    String protocol = url.getProtocol();
    if (!protocol.equals("https") && !protocol.equals("http")) {
      throw new IOException("refusing to fetch a " + protocol + " URL");
    }
    if (closed) throw new IOException("OIDC resolver closed");
    if (!fetches.tryAcquire())
      throw new IOException("too many fetches in progress (" + MAX_CONCURRENT_FETCHES + ")");
    Fetch fetch = new Fetch(url);
    try {
      workers.execute(fetch);
    } catch (RejectedExecutionException e) {
      fetch.release();
      throw new IOException(closed ? "OIDC resolver closed" : "fetch refused by the executor");
    }
    try {
      return fetch.get(deadline.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      fetch.cancel(true);
      throw new InterruptedIOException("fetch took longer than " + deadline.toMillis() + "ms");
    } catch (InterruptedException e) {
      fetch.cancel(true);
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while fetching");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) throw io;
      if (cause instanceof RuntimeException re) throw re;
      if (cause instanceof Error err) throw err;
      throw new IOException(cause);
    }
  }

  /** The fetch itself, on a worker. */
  private Resource fetchNow(URL url) throws IOException {
    return super.retrieveResource(url);
  }

  @Override
  protected HttpURLConnection openHTTPConnection(URL url) throws IOException {
    HttpURLConnection connection = super.openHTTPConnection(url);
    connection.setInstanceFollowRedirects(false);
    return connection;
  }

  /** Refuses further fetches and shuts the own pool down (a given executor is left running). Idempotent. */
  @Override
  public void close() {
    closed = true;
    if (own != null) own.shutdownNow();
  }

  /**
   * One fetch, holding one of the {@link #fetches} permits while it runs on a worker (or until
   * it is cancelled before it started), so that overrunning fetches still count.
   */
  private final class Fetch extends FutureTask<Resource> {
    private final AtomicBoolean released = new AtomicBoolean();
    private volatile boolean started;

    Fetch(URL url) {
      super(() -> fetchNow(url));
    }

    @Override
    public void run() {
      started = true;
      try {
        super.run();
      } finally {
        release();
      }
    }

    @Override
    protected void done() {
      if (!started) release(); // cancelled before a worker took it
    }

    void release() {
      if (released.compareAndSet(false, true)) fetches.release();
    }
  }
}
