package dev.inferpam.core.internal;

import com.nimbusds.jose.util.DefaultResourceRetriever;
import com.nimbusds.jose.util.Resource;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

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
 * <p><b>Thread-safety:</b> safe for concurrent use. Worker threads are daemons and end when idle.
 */
final class OidcRetriever extends DefaultResourceRetriever {

  /** Fetches of one issuer at once: a refresh, a re-fetch for a new key, a discovery, and one spare. */
  static final int MAX_CONCURRENT_FETCHES = 4;

  private final Duration deadline;
  private final ThreadPoolExecutor workers;

  /**
   * @param connectTimeout per connection attempt
   * @param readTimeout    per read
   * @param sizeLimit      largest response body, in bytes; larger is an error
   * @param deadline       longest a caller waits for a whole fetch
   * @param name           names the worker threads, e.g. the issuer's policy path
   */
  OidcRetriever(Duration connectTimeout, Duration readTimeout, int sizeLimit, Duration deadline, String name) {
    super(Math.toIntExact(connectTimeout.toMillis()), Math.toIntExact(readTimeout.toMillis()), sizeLimit, true);
    this.deadline = deadline;
    this.workers = new ThreadPoolExecutor(0, MAX_CONCURRENT_FETCHES, 30, TimeUnit.SECONDS, new SynchronousQueue<>(),
        r -> {
          Thread t = Executors.defaultThreadFactory().newThread(r);
          t.setName("inferpam-oidc-fetch " + name);
          t.setDaemon(true);
          return t;
        });
  }

  @Override
  public Resource retrieveResource(URL url) throws IOException {
    String protocol = url.getProtocol();
    if (!protocol.equals("https") && !protocol.equals("http")) {
      throw new IOException("refusing to fetch a " + protocol + " URL");
    }
    Future<Resource> fetch;
    try {
      fetch = workers.submit(() -> OidcRetriever.super.retrieveResource(url));
    } catch (RejectedExecutionException e) {
      throw new IOException("too many fetches in progress (" + MAX_CONCURRENT_FETCHES + ")");
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

  @Override
  protected HttpURLConnection openHTTPConnection(URL url) throws IOException {
    HttpURLConnection connection = super.openHTTPConnection(url);
    connection.setInstanceFollowRedirects(false);
    return connection;
  }
}
