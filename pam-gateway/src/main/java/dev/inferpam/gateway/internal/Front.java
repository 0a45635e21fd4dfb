package dev.inferpam.gateway.internal;

import java.time.Duration;

/**
 * The HTTP server and relay of a {@link dev.inferpam.gateway.Gateway}: Jetty with the servlet
 * filter and forwarding servlet, or Netty. The gateway owns the engine; a front only listens,
 * relays, and stops.
 *
 * <p><b>Thread-safety:</b> all methods may be called from any thread; {@link #stop} once.
 */
public interface Front {
  /** The port it listens on. */
  int port();

  /** Blocks until the front has stopped. */
  void join() throws InterruptedException;

  /**
   * Stops accepting connections (new requests on open ones get 503), waits up to {@code drain}
   * for in-flight exchanges to end, then cuts off those still running (their records say
   * incomplete) and stops. Does not close the engine. Returns early, cutting off, when the
   * calling thread is interrupted (its interrupt flag is then set again).
   */
  void stop(Duration drain);
}
