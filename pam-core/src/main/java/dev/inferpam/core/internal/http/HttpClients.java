package dev.inferpam.core.internal.http;

import java.net.http.HttpClient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** What the library does with the JDK's {@link HttpClient} across Java versions. Stateless. */
public final class HttpClients {
  private static final Logger log = LoggerFactory.getLogger(HttpClients.class);

  private HttpClients() {}

  /**
   * Stops {@code client} at once where the running Java can (21 and later have
   * {@code HttpClient.shutdownNow()}: its selector thread ends and exchanges in flight fail). On
   * Java 17 to 20 a client has no such method; its threads end once it is garbage-collected. The
   * library compiles for Java 17, hence the reflective call.
   */
  public static void shutdownNow(HttpClient client) {
    try {
      HttpClient.class.getMethod("shutdownNow").invoke(client);
    } catch (NoSuchMethodException e) {
      // Java 17 to 20: nothing to call
    } catch (ReflectiveOperationException | RuntimeException e) {
      log.debug("inferpam: stopping an HTTP client failed: {}", e.toString());
    }
  }
}
