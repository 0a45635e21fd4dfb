package dev.inferpam.core.internal;

import com.nimbusds.jose.util.DefaultResourceRetriever;
import com.nimbusds.jose.util.Resource;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Fetches JWK sets and discovery documents for {@link OidcResolver}: Nimbus's
 * {@link DefaultResourceRetriever} with connect and read timeouts and a size limit, plus what it
 * lacks:
 *
 * <ul>
 *   <li>a deadline for the whole fetch. The read timeout bounds each read, so a server that
 *       trickles one byte at a time would otherwise hold a request thread for as long as it
 *       likes; at the deadline the connection is closed under the reader;
 *   <li>no redirects: keys come from the configured URL and nowhere else.
 * </ul>
 *
 * <p>Only {@code http} and {@code https} URLs are fetched ({@link OidcRules#urlProblem} checked
 * them before); the superclass would also read {@code file:} URLs.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; each fetch has its own connection and
 * watchdog.
 */
final class OidcRetriever extends DefaultResourceRetriever {

  /** Closes connections whose deadline passed; one daemon thread for the whole JVM, idle mostly. */
  private static final ScheduledExecutorService WATCHDOG = watchdog();

  private final Duration deadline;
  private final ThreadLocal<Watch> current = new ThreadLocal<>();

  private record Watch(ScheduledFuture<?> task, AtomicBoolean fired) {}

  /**
   * @param connectTimeout per connection attempt
   * @param readTimeout    per read
   * @param sizeLimit      largest response body, in bytes; larger is an error
   * @param deadline       longest a whole fetch may take
   */
  OidcRetriever(Duration connectTimeout, Duration readTimeout, int sizeLimit, Duration deadline) {
    super(Math.toIntExact(connectTimeout.toMillis()), Math.toIntExact(readTimeout.toMillis()), sizeLimit, true);
    this.deadline = deadline;
  }

  @Override
  public Resource retrieveResource(URL url) throws IOException {
    String protocol = url.getProtocol();
    if (!protocol.equals("https") && !protocol.equals("http")) {
      throw new IOException("refusing to fetch a " + protocol + " URL");
    }
    try {
      return super.retrieveResource(url);
    } catch (IOException e) {
      Watch w = current.get();
      if (w != null && w.fired().get()) {
        throw new InterruptedIOException("fetch took longer than " + deadline.toMillis() + "ms");
      }
      throw e;
    } finally {
      Watch w = current.get();
      current.remove();
      if (w != null) w.task().cancel(false);
    }
  }

  @Override
  protected HttpURLConnection openHTTPConnection(URL url) throws IOException {
    HttpURLConnection connection = super.openHTTPConnection(url);
    connection.setInstanceFollowRedirects(false);
    AtomicBoolean fired = new AtomicBoolean();
    ScheduledFuture<?> task = WATCHDOG.schedule(() -> {
      fired.set(true);
      connection.disconnect(); // closes the socket under a blocked read
    }, deadline.toMillis(), TimeUnit.MILLISECONDS);
    current.set(new Watch(task, fired));
    return connection;
  }

  private static ScheduledExecutorService watchdog() {
    ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = Executors.defaultThreadFactory().newThread(r);
      t.setName("inferpam-oidc-fetch-deadline");
      t.setDaemon(true);
      return t;
    });
    executor.setRemoveOnCancelPolicy(true); // most fetches finish in time; do not keep their tasks
    return executor;
  }
}
