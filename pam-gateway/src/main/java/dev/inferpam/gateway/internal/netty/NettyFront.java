package dev.inferpam.gateway.internal.netty;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.gateway.Gateway;
import dev.inferpam.gateway.internal.ForwardingServlet;
import dev.inferpam.gateway.internal.Front;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.HttpUrl;
import org.eclipse.jetty.util.VirtualThreads;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's Netty front: the same exchanges as the Jetty front ({@link Gateway}), relayed
 * without a thread per exchange.
 *
 * <p><b>Threads.</b> One event loop per processor (epoll when available, NIO otherwise). Each
 * client connection lives on one event loop, and so does the upstream connection of each of its
 * exchanges: it is taken from a keep-alive pool of that event loop, or opened on it, so that
 * relaying a response (reading the upstream, masking, reporting to the engine, writing to the
 * client) never hands work to another thread. Only the engine's calls that may block run
 * elsewhere, on virtual threads (a pool of {@code maxThreads} platform threads on Java 17):
 * deciding the head with the body that came with it ({@code beginHead}, then {@code finish}) and
 * deciding a body that came later, unless {@link PamEngine#decidesWithoutWaiting()} and the
 * upstream is an IP address; ending an exchange, unless {@link PamEngine#endsWithoutWaiting()};
 * the end of a review, and the {@code /pam} endpoints. An ordinary request then makes no hop at
 * all with an engine of built-in parts that work in memory (API keys, a credential from the
 * environment, in-memory quotas, batched recording), else one out and one back.
 *
 * <p>What it bounds, as the Jetty front: request heads (line and headers) of at most
 * {@link Gateway#REQUEST_HEADER_SIZE} each (431, 414), the head deadline
 * ({@code request.head-timeout}) and connections per client address
 * ({@code request.max-connections-per-client}), idle connections ({@link Gateway#IDLE_TIMEOUT}),
 * the upstream connect ({@link ForwardingServlet#DEFAULT_CONNECT_TIMEOUT}) and read silence
 * ({@link ForwardingServlet#DEFAULT_READ_TIMEOUT}). Pipelined requests are taken one at a time.
 *
 * <p><b>Thread-safety:</b> {@link #stop} may be called from any thread, once.
 */
public final class NettyFront implements Front {
  private static final Logger log = LoggerFactory.getLogger(NettyFront.class);

  /** Idle upstream connections kept per event loop, at most. */
  static final int MAX_IDLE_PER_LOOP =
      Math.max(
          16, ForwardingServlet.MAX_IDLE_CONNECTIONS / Runtime.getRuntime().availableProcessors());

  final PamEngine engine;
  final Executor blocking;
  private final ExecutorService ownedPool;
  private final EventLoopGroup group;

  /**
   * The one event loop that accepts connections, apart from those that relay: a burst of new
   * streams is accepted at once however busy the relaying loops are (an accept queue left to
   * overflow makes the kernel drop handshakes, and a client that already sent its request gets a
   * reset about 15 s later), as Jetty's acceptor thread does.
   */
  private final EventLoopGroup acceptGroup;

  /** Connections the kernel may hold before they are accepted (capped by net.core.somaxconn). */
  static final int ACCEPT_BACKLOG = 4096;

  final Class<? extends SocketChannel> socketChannel;
  final Upstream upstream;
  final Endpoints endpoints;

  /**
   * Where the engine decides a request: on the event loop itself when nothing a decision does
   * can wait ({@link PamEngine#decidesWithoutWaiting()}) and the upstream is an IP address (no
   * name to look up), which spares two thread hand-offs per request; else {@link #blocking}.
   */
  final Executor decisions;

  /** Whether ending an exchange may wait (strict recording, a quota store of the application's): then off the event loop. */
  final boolean endMayBlock;

  final long headTimeoutMs;
  private final int maxPerClient;
  private final Map<InetAddress, Integer> perClient = new ConcurrentHashMap<>();

  /** Every client and upstream connection, to cut them off at the end of a drain. */
  final ChannelGroup channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);

  private final Map<EventLoop, UpstreamPool> pools = new ConcurrentHashMap<>();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final CompletableFuture<Void> drained = new CompletableFuture<>();
  private final CountDownLatch stopped = new CountDownLatch(1);
  volatile boolean draining;
  private Channel server;
  private int port;

  private NettyFront(
      PamEngine engine,
      Executor blocking,
      ExecutorService ownedPool,
      EventLoopGroup acceptGroup,
      EventLoopGroup group,
      Class<? extends SocketChannel> socketChannel,
      Upstream upstream,
      Endpoints endpoints) {
    this.engine = engine;
    this.blocking = blocking;
    this.ownedPool = ownedPool;
    this.acceptGroup = acceptGroup;
    this.group = group;
    this.socketChannel = socketChannel;
    this.upstream = upstream;
    this.endpoints = endpoints;
    this.endMayBlock = !engine.endsWithoutWaiting();
    this.decisions =
        engine.decidesWithoutWaiting() && upstream.isLiteral() ? Runnable::run : blocking;
    Policy.RequestSettings settings = engine.policy().request();
    this.headTimeoutMs = settings.headTimeout().toMillis();
    this.maxPerClient = settings.maxConnectionsPerClient();
  }

  /**
   * Starts listening; on failure nothing is left running (the engine is the caller's to close).
   *
   * @throws IOException when the address cannot be bound
   */
  public static NettyFront start(
      PamEngine engine, HttpUrl upstream, String bindAddress, int port, int maxThreads)
      throws IOException {
    return start(engine, upstream, bindAddress, port, maxThreads, Endpoints.forEngine(engine));
  }

  /**
   * {@link #start(PamEngine, HttpUrl, String, int, int)} answering {@code /pam} with
   * {@code endpoints} (e.g. with {@code /pam/metrics}).
   *
   * @throws IOException when the address cannot be bound
   */
  public static NettyFront start(
      PamEngine engine,
      HttpUrl upstream,
      String bindAddress,
      int port,
      int maxThreads,
      Endpoints endpoints)
      throws IOException {
    Upstream target = Upstream.of(upstream);
    boolean epoll = Epoll.isAvailable();
    IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    // Not daemon threads: like Jetty's, they keep a serving JVM alive until it is stopped.
    EventLoopGroup group =
        new MultiThreadIoEventLoopGroup(
            Runtime.getRuntime().availableProcessors(),
            new DefaultThreadFactory("inferpam-netty", false),
            io);
    EventLoopGroup acceptGroup =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("inferpam-netty-accept", false), io);
    Executor blocking;
    ExecutorService ownedPool = null;
    if (VirtualThreads.areSupported()) {
      blocking = VirtualThreads.getNamedVirtualThreadsExecutor("inferpam-request-");
    } else {
      ThreadPoolExecutor pool =
          new ThreadPoolExecutor(
              maxThreads,
              maxThreads,
              60,
              TimeUnit.SECONDS,
              new LinkedBlockingQueue<>(),
              new DefaultThreadFactory("inferpam-request", true));
      pool.allowCoreThreadTimeOut(true);
      blocking = pool;
      ownedPool = pool;
    }
    NettyFront front =
        new NettyFront(
            engine,
            blocking,
            ownedPool,
            acceptGroup,
            group,
            epoll ? EpollSocketChannel.class : NioSocketChannel.class,
            target,
            endpoints);
    Class<? extends ServerChannel> serverChannel =
        epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    ChannelFuture bound =
        new ServerBootstrap()
            .group(acceptGroup, group)
            .channel(serverChannel)
            .option(ChannelOption.SO_BACKLOG, ACCEPT_BACKLOG)
            .childOption(ChannelOption.TCP_NODELAY, true)
            // a client that half-closes after its request still gets its answer, as from Jetty
            .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    front.initClient(ch);
                  }
                })
            .bind(bindAddress, port)
            .awaitUninterruptibly();
    if (!bound.isSuccess()) {
      front.shutdownThreads();
      Throwable cause = bound.cause();
      if (cause instanceof IOException e) throw e;
      throw new IOException(
          cause.getMessage() == null ? cause.toString() : cause.getMessage(), cause);
    }
    front.server = bound.channel();
    front.port = ((InetSocketAddress) front.server.localAddress()).getPort();
    log.debug(
        "inferpam gateway: Netty front, {} transport, {} event loops",
        epoll ? "epoll" : "nio",
        Runtime.getRuntime().availableProcessors());
    return front;
  }

  private void initClient(SocketChannel ch) {
    ch.pipeline()
        .addLast(
            "codec",
            new HttpServerCodec(
                new HttpDecoderConfig()
                    .setMaxInitialLineLength(Gateway.REQUEST_HEADER_SIZE)
                    .setMaxHeaderSize(Gateway.REQUEST_HEADER_SIZE)
                    .setMaxChunkSize(ForwardingServlet.CHUNK_SIZE)))
        .addLast("idle", new IdleTimeout(Gateway.IDLE_TIMEOUT.toNanos()))
        .addLast("exchange", new ClientConnection(this, ch));
  }

  /**
   * Counts a new client connection against its address's cap.
   *
   * @return false when it is over the cap: close it at once
   */
  boolean admit(Channel ch) {
    channels.add(ch);
    if (maxPerClient <= 0) return true;
    InetAddress address = address(ch.remoteAddress());
    if (address == null) return true;
    int count = perClient.merge(address, 1, Integer::sum);
    if (count > maxPerClient) {
      log.debug(
          "inferpam gateway: closing a connection from {}: {} open, over the cap of {}",
          address.getHostAddress(),
          count - 1,
          maxPerClient);
      return false;
    }
    return true;
  }

  /** A client connection counted by {@link #admit} closed. */
  void closed(Channel ch) {
    if (maxPerClient <= 0) return;
    InetAddress address = address(ch.remoteAddress());
    if (address != null) perClient.computeIfPresent(address, (a, n) -> n <= 1 ? null : n - 1);
  }

  private static InetAddress address(SocketAddress remote) {
    return remote instanceof InetSocketAddress inet ? inet.getAddress() : null;
  }

  /** The keep-alive pool of upstream connections of {@code loop}; used on that loop only. */
  UpstreamPool pool(EventLoop loop) {
    UpstreamPool pool = pools.get(loop);
    if (pool == null) pool = pools.computeIfAbsent(loop, l -> new UpstreamPool(this, l));
    return pool;
  }

  /** An exchange begins: the drain waits for it. */
  void exchangeStarted() {
    inFlight.incrementAndGet();
  }

  /** An exchange counted by {@link #exchangeStarted} ended. */
  void exchangeEnded() {
    if (inFlight.decrementAndGet() == 0 && draining) drained.complete(null);
  }

  /** Runs the end of an exchange: here, or off the event loop when it may wait. */
  void end(Runnable end) {
    if (endMayBlock && !draining) {
      blocking.execute(end);
    } else {
      end.run();
    }
  }

  /**
   * Runs the end of an exchange, then {@code then} on {@code loop}: the connection's next request
   * is taken only once the previous exchange has ended (its tokens charged, its record handed
   * over), as a client that reads its quota after an answer expects, wherever the end runs.
   */
  void end(Runnable end, EventLoop loop, Runnable then) {
    if (endMayBlock && !draining) {
      blocking.execute(
          () -> {
            try {
              end.run();
            } finally {
              loop.execute(then);
            }
          });
    } else {
      end.run();
      then.run();
    }
  }

  @Override
  public int port() {
    return port;
  }

  @Override
  public void join() throws InterruptedException {
    stopped.await();
  }

  @Override
  public void stop(Duration drainTimeout) {
    draining = true;
    try {
      server.close().awaitUninterruptibly();
      if (inFlight.get() == 0) drained.complete(null);
      try {
        drained.get(drainTimeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        log.warn(
            "inferpam gateway: exchanges still running after {}; cutting them off", drainTimeout);
      } catch (ExecutionException e) {
        log.warn("inferpam gateway: draining failed: {}", e.getCause().toString());
      } catch (InterruptedException e) {
        // Asked to hurry: skip the rest of the drain and cut off what is running.
        Thread.currentThread().interrupt();
      }
      // Cut off: their handlers end the exchanges (incomplete) on their event loops.
      channels.close().awaitUninterruptibly(Gateway.DEFAULT_DRAIN_TIMEOUT.toMillis());
    } finally {
      shutdownThreads();
      stopped.countDown();
    }
  }

  private void shutdownThreads() {
    acceptGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS);
    group
        .shutdownGracefully(0, 5, TimeUnit.SECONDS)
        .awaitUninterruptibly(Gateway.DEFAULT_DRAIN_TIMEOUT.toMillis());
    acceptGroup.terminationFuture().awaitUninterruptibly(Gateway.DEFAULT_DRAIN_TIMEOUT.toMillis());
    if (ownedPool != null) ownedPool.shutdown();
  }
}
