package dev.inferpam.gateway.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.Scheduler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the gateway bounds before the engine sees a request, per client connection
 * ({@code request.head-timeout}, {@code request.max-connections-per-client} of the policy):
 * <ul>
 *   <li><b>Head deadline.</b> A connection must deliver a complete request head (request line
 *       and headers) within the head timeout of opening, and again within the head timeout of
 *       the end of each exchange (an idle keep-alive connection counts as one whose next head did
 *       not come). Otherwise it is closed. Jetty's idle timeout alone would not do: it restarts
 *       with every byte, so a client sending one header byte at a time would hold the connection
 *       forever. The check is one task on Jetty's scheduler per connection, never a thread per
 *       connection; Jetty reads heads without a thread.</li>
 *   <li><b>Connections per client address.</b> With a cap, a connection opened while its address
 *       already holds that many is closed at once, before a byte of it is read (no answer: the
 *       client sees its connection reset or closed).</li>
 * </ul>
 * Jetty's connector idle timeout is left long ({@link dev.inferpam.gateway.Gateway#IDLE_TIMEOUT}), so that a model
 * thinking for minutes before it answers does not cut the exchange; the head deadline does not
 * apply while a request is being handled.
 *
 * <p>Registered on the connector as a {@link Connection.Listener}, and in front of the handlers
 * through {@link #handler}, which tells it when each exchange starts and ends. Thread-safe.
 */
public final class ConnectionGuard implements Connection.Listener {
  private static final Logger log = LoggerFactory.getLogger(ConnectionGuard.class);

  private final Scheduler scheduler;
  private final long headTimeoutMs;
  private final int maxPerClient;
  private final Map<InetAddress, Integer> open = new ConcurrentHashMap<>();

  /** The client address of each open connection, taken when it opened (a closed socket has none). */
  private final Map<Connection, InetAddress> clients = new ConcurrentHashMap<>();

  /** The pending head deadline of each connection between exchanges. */
  private final Map<Connection, Scheduler.Task> deadlines = new ConcurrentHashMap<>();

  /**
   * @param maxPerClient the cap on connections per client address; 0 for none
   */
  public ConnectionGuard(Scheduler scheduler, Duration headTimeout, int maxPerClient) {
    this.scheduler = scheduler;
    this.headTimeoutMs = headTimeout.toMillis();
    this.maxPerClient = maxPerClient;
  }

  @Override
  public void onOpened(Connection connection) {
    InetAddress address = address(connection.getEndPoint());
    if (maxPerClient > 0 && address != null) {
      clients.put(connection, address);
      int count = open.merge(address, 1, Integer::sum);
      if (count > maxPerClient) {
        log.debug(
            "inferpam gateway: closing a connection from {}: {} open, over the cap of {}",
            address.getHostAddress(),
            count - 1,
            maxPerClient);
        connection.getEndPoint().close();
        return;
      }
    }
    awaitHead(connection);
  }

  @Override
  public void onClosed(Connection connection) {
    Scheduler.Task task = deadlines.remove(connection);
    if (task != null) task.cancel();
    InetAddress address = clients.remove(connection);
    if (address != null) open.computeIfPresent(address, (a, n) -> n <= 1 ? null : n - 1);
  }

  /**
   * Closes {@code connection} unless a new request head completes on it within the head
   * timeout. Jetty counts a request when its head is complete ({@link Connection#getMessagesIn()}).
   */
  private void awaitHead(Connection connection) {
    long seen = connection.getMessagesIn();
    Scheduler.Task task =
        scheduler.schedule(
            () -> {
              deadlines.remove(connection);
              EndPoint endPoint = connection.getEndPoint();
              if (endPoint.isOpen() && connection.getMessagesIn() == seen) {
                log.debug(
                    "inferpam gateway: no request head within {} ms, closing the connection",
                    headTimeoutMs);
                endPoint.close();
              }
            },
            headTimeoutMs,
            TimeUnit.MILLISECONDS);
    Scheduler.Task previous = deadlines.put(connection, task);
    if (previous != null) previous.cancel();
  }

  /** Wraps the gateway's handlers: no head deadline while an exchange runs, a new one when it ends. */
  public Handler handler(Handler next) {
    return new Handler.Wrapper(next) {
      @Override
      public boolean handle(Request request, Response response, Callback callback)
          throws Exception {
        Connection connection = request.getConnectionMetaData().getConnection();
        Scheduler.Task task = deadlines.remove(connection);
        if (task != null) task.cancel();
        boolean handled =
            super.handle(
                request,
                response,
                Callback.from(
                    callback,
                    () -> {
                      if (connection.getEndPoint().isOpen()) awaitHead(connection);
                    }));
        if (!handled) awaitHead(connection); // Jetty answers it (404) without our callback
        return handled;
      }
    };
  }

  private static InetAddress address(EndPoint endPoint) {
    SocketAddress remote = endPoint.getRemoteSocketAddress();
    return remote instanceof InetSocketAddress inet ? inet.getAddress() : null;
  }
}
