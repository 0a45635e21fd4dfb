package dev.inferpam.benchmarks.floor;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * A floor: the leanest honest reverse proxy on Netty 4.2 and no policy at all, to measure what a
 * JVM reverse proxy costs at the least on a machine, beside nginx and the gateway in the same run.
 * Run as
 *
 * <pre>
 * java -cp pam-benchmarks/target/benchmarks.jar dev.inferpam.benchmarks.floor.NettyFloor \
 *     --port 9204 --upstream http://127.0.0.1:18190 [--event-loops N]
 * </pre>
 *
 * <p>It listens on {@code 127.0.0.1} only and prints {@code listening on http://127.0.0.1:PORT}
 * when ready (the line the gateway prints). Epoll when {@code Epoll.isAvailable()}, NIO otherwise;
 * {@code --event-loops} threads (default: the available processors) serve both sides. Standard
 * error says which transport and how many event loops.
 *
 * <p>How it relays: each client connection gets one keep-alive connection of its own to the
 * upstream, opened on the client connection's event loop when the client connects; the client's
 * bytes are read only once it is open. HTTP messages go through as Netty decodes them ({@code
 * HttpServerCodec} towards the client, {@code HttpClientCodec} towards the upstream), never
 * aggregated: the request line and headers (with {@code Host} set to the upstream's, nothing else
 * touched) and each piece of body, each way, are written as they are decoded and flushed at the end
 * of every socket read, so a server-sent event goes out as soon as the read that brought it ends.
 * Back-pressure: while one side cannot take more writes, the other side is not read. The two
 * connections live and die together: when either closes (or fails), the other is closed after what
 * was written to it has been flushed; so a {@code Connection: close} of either end, which goes
 * through like any other header, closes both.
 *
 * <p>When the upstream cannot be connected to, the client's first request gets {@code 502 Bad
 * Gateway} (once it has been read to its end) with {@code Connection: close} and a one-line text
 * body, and the connection is closed. SIGTERM stops it.
 *
 * <p><b>Thread-safety:</b> {@link #start} may be called from any thread; each connection pair is
 * only touched on its one event loop; a {@link Running} is closed once, by its owner.
 */
public final class NettyFloor {

  static final String USAGE =
      String.join(
          "\n",
          "usage: java -cp benchmarks.jar dev.inferpam.benchmarks.floor.NettyFloor"
              + " --port N --upstream http://HOST:PORT [--event-loops N]",
          "  --port N            0 = a free port; binds 127.0.0.1 only",
          "  --upstream URL      where every request goes, path and query kept",
          "  --event-loops N     event loop threads (default: available processors)");

  /** The body of the 502 a client gets when the upstream cannot be connected to. */
  static final String UNREACHABLE = "NettyFloor: upstream unreachable\n";

  private NettyFloor() {}

  public static void main(String[] args) throws Exception {
    FloorArgs parsed;
    int eventLoops;
    try {
      parsed = FloorArgs.parse(args, "--event-loops");
      eventLoops = eventLoops(parsed.extra());
    } catch (IllegalArgumentException e) {
      System.exit(FloorArgs.refuse("NettyFloor", e, USAGE, System.err));
      return;
    }
    Running floor = start(parsed.port(), parsed.upstream(), eventLoops);
    Runtime.getRuntime().addShutdownHook(new Thread(floor::close, "netty-floor-stop"));
    System.err.println(
        "NettyFloor: " + floor.transport() + " transport, " + eventLoops + " event loops");
    System.out.println("listening on " + floor.uri());
    System.out.flush();
    floor.server.closeFuture().sync();
  }

  /**
   * Starts a floor on {@code 127.0.0.1:port} in front of {@code upstream} ({@code
   * http://HOST:PORT}, resolved once, here).
   *
   * @throws InterruptedException when interrupted while binding
   * @throws io.netty.channel.ChannelException (or another exception of the bind) when the port
   *     cannot be bound
   */
  static Running start(int port, URI upstream, int eventLoops) throws InterruptedException {
    boolean epoll = Epoll.isAvailable();
    IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    EventLoopGroup group =
        new MultiThreadIoEventLoopGroup(eventLoops, new DefaultThreadFactory("netty-floor"), io);
    Class<? extends ServerChannel> serverChannel =
        epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    Relay relay =
        new Relay(
            epoll ? EpollSocketChannel.class : NioSocketChannel.class,
            new InetSocketAddress(upstream.getHost(), upstream.getPort()),
            upstream.getHost() + ":" + upstream.getPort());
    try {
      Channel server =
          new ServerBootstrap()
              .group(group)
              .channel(serverChannel)
              // nothing is read from a client before its upstream connection is open
              .childOption(ChannelOption.AUTO_READ, false)
              .childOption(ChannelOption.TCP_NODELAY, true)
              .childHandler(
                  new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                      ch.pipeline().addLast(new HttpServerCodec(), new Inbound(relay));
                    }
                  })
              .bind("127.0.0.1", port)
              .sync()
              .channel();
      InetSocketAddress bound = (InetSocketAddress) server.localAddress();
      return new Running(
          server,
          group,
          URI.create("http://127.0.0.1:" + bound.getPort()),
          epoll ? "epoll" : "nio");
    } catch (InterruptedException | RuntimeException e) {
      group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
  }

  static int eventLoops(String value) {
    if (value == null) return Runtime.getRuntime().availableProcessors();
    try {
      int n = Integer.parseInt(value);
      if (n > 0) return n;
    } catch (NumberFormatException e) {
      // the message below says what is wanted
    }
    throw new IllegalArgumentException("--event-loops must be a positive number, was " + value);
  }

  /** What every connection pair shares: how to reach the upstream. */
  private record Relay(
      Class<? extends Channel> channel, InetSocketAddress address, String hostHeader) {}

  /** The client's side: opens the upstream connection, then forwards what the client sends. */
  private static final class Inbound extends ChannelInboundHandlerAdapter {
    private final Relay relay;
    private Channel upstream;
    private boolean unreachable;

    Inbound(Relay relay) {
      this.relay = relay;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Channel inbound = ctx.channel();
      ChannelFuture connect =
          new Bootstrap()
              .group(inbound.eventLoop())
              .channel(relay.channel())
              .option(ChannelOption.TCP_NODELAY, true)
              .handler(
                  new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                      ch.pipeline().addLast(new HttpClientCodec(), new Outbound(inbound));
                    }
                  })
              .connect(relay.address());
      upstream = connect.channel();
      connect.addListener(
          (ChannelFutureListener)
              f -> {
                // on the inbound's event loop: no other thread touches this pair
                unreachable = !f.isSuccess();
                if (inbound.isActive()) inbound.config().setAutoRead(true);
              });
      ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (unreachable) {
        refuse(ctx, msg);
        return;
      }
      if (msg instanceof HttpRequest request) {
        request.headers().set(HttpHeaderNames.HOST, relay.hostHeader());
      }
      upstream.write(msg, upstream.voidPromise());
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      if (!unreachable) upstream.flush();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      // the client reads slower than the upstream writes: stop reading the upstream meanwhile
      upstream.config().setAutoRead(ctx.channel().isWritable());
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (upstream != null) closeOnFlush(upstream);
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }

    private static void refuse(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
      // answered once the request has been read to its end: closing with unread bytes would
      // reset the connection, and the client could lose the answer
      if (!(msg instanceof LastHttpContent) || !ctx.channel().isActive()) return;
      FullHttpResponse response =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              HttpResponseStatus.BAD_GATEWAY,
              Unpooled.copiedBuffer(UNREACHABLE, StandardCharsets.UTF_8));
      response
          .headers()
          .set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN)
          .setInt(HttpHeaderNames.CONTENT_LENGTH, response.content().readableBytes())
          .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
    }
  }

  /** The upstream's side: forwards what the upstream answers to the client. */
  private static final class Outbound extends ChannelInboundHandlerAdapter {
    private final Channel inbound;

    Outbound(Channel inbound) {
      this.inbound = inbound;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      inbound.write(msg, inbound.voidPromise());
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      inbound.flush();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      // the upstream takes the request body slower than the client sends it
      inbound.config().setAutoRead(ctx.channel().isWritable());
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      closeOnFlush(inbound);
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  /** Closes {@code ch} once what was written to it has gone out. */
  private static void closeOnFlush(Channel ch) {
    if (ch.isActive()) {
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    } else {
      ch.close();
    }
  }

  /** A started floor. */
  static final class Running implements RunningFloor {
    private final Channel server;
    private final EventLoopGroup group;
    private final URI uri;
    private final String transport;

    private Running(Channel server, EventLoopGroup group, URI uri, String transport) {
      this.server = server;
      this.group = group;
      this.uri = uri;
      this.transport = transport;
    }

    @Override
    public URI uri() {
      return uri;
    }

    /** {@code epoll} or {@code nio}. */
    String transport() {
      return transport;
    }

    /** Stops listening and closes every connection; returns when the event loops have ended. */
    @Override
    public void close() {
      server.close().syncUninterruptibly();
      group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS).syncUninterruptibly();
    }
  }
}
