package dev.inferpam.gateway.internal.netty;

import dev.inferpam.gateway.internal.ForwardingServlet;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContentDecompressor;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;

/**
 * The keep-alive connections to the upstream of one event loop, and how new ones are opened on
 * it. Only that event loop uses it, so it needs no lock. A pooled connection is checked when it is
 * taken (a connection the upstream closed, or one that sent anything while idle, is dropped), and
 * at most {@link NettyFront#MAX_IDLE_PER_LOOP} are kept; an idle one closes after
 * {@link ForwardingServlet#DEFAULT_READ_TIMEOUT}.
 */
final class UpstreamPool {
  /** Largest upstream response head (status line and headers) taken: OkHttp's limit. */
  static final int MAX_RESPONSE_HEAD = 256 * 1024;

  private final NettyFront front;
  private final EventLoop loop;
  private final ArrayDeque<Channel> idle = new ArrayDeque<>();

  UpstreamPool(NettyFront front, EventLoop loop) {
    this.front = front;
    this.loop = loop;
  }

  /** A pooled connection that still looks usable, or {@code null}. */
  Channel poll() {
    Channel ch;
    while ((ch = idle.pollLast()) != null) {
      UpstreamConnection handler = UpstreamConnection.of(ch);
      if (ch.isActive() && handler != null && handler.reusable()) return ch;
      ch.close();
    }
    return null;
  }

  /** Gives back a connection whose exchange ended cleanly; kept unless the pool is full. */
  void release(Channel ch) {
    if (!ch.isActive() || front.draining) {
      ch.close();
      return;
    }
    ch.config().setAutoRead(true);
    if (idle.size() >= NettyFront.MAX_IDLE_PER_LOOP) {
      Channel oldest = idle.pollFirst();
      if (oldest != null) oldest.close();
    }
    idle.addLast(ch);
  }

  /** A pooled connection closed (the upstream closed it, or it timed out). */
  void remove(Channel ch) {
    idle.remove(ch);
  }

  /** Opens a new connection on this pool's event loop. */
  ChannelFuture connect(InetSocketAddress address) {
    Upstream upstream = front.upstream;
    return new Bootstrap()
        .group(loop)
        .channel(front.socketChannel)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(
            ChannelOption.CONNECT_TIMEOUT_MILLIS,
            (int) ForwardingServlet.DEFAULT_CONNECT_TIMEOUT.toMillis())
        .handler(
            new ChannelInitializer<Channel>() {
              @Override
              protected void initChannel(Channel ch) {
                front.channels.add(ch);
                if (upstream.ssl() != null) {
                  ch.pipeline()
                      .addLast(
                          upstream.ssl().newHandler(ch.alloc(), upstream.host(), upstream.port()));
                }
                ch.pipeline()
                    .addLast(
                        new ReadTimeoutHandler(
                            ForwardingServlet.DEFAULT_READ_TIMEOUT.toMillis(),
                            TimeUnit.MILLISECONDS))
                    .addLast(
                        new HttpClientCodec(
                            new HttpDecoderConfig()
                                .setMaxHeaderSize(MAX_RESPONSE_HEAD)
                                .setMaxInitialLineLength(MAX_RESPONSE_HEAD)
                                .setMaxChunkSize(ForwardingServlet.CHUNK_SIZE),
                            false,
                            false))
                    .addLast(new GzipOnly())
                    .addLast(UpstreamConnection.NAME, new UpstreamConnection(UpstreamPool.this));
              }
            })
        .connect(address);
  }

  /**
   * Decodes gzip, which the gateway asks for itself, and nothing else: a response in another
   * coding nobody asked for keeps it and its {@code Content-Encoding} (as through OkHttp).
   */
  private static final class GzipOnly extends HttpContentDecompressor {
    GzipOnly() {
      super(0);
    }

    @Override
    protected EmbeddedChannel newContentDecoder(String contentEncoding) throws Exception {
      String coding = contentEncoding.trim();
      if (coding.equalsIgnoreCase("gzip") || coding.equalsIgnoreCase("x-gzip")) {
        return super.newContentDecoder(contentEncoding);
      }
      return null;
    }
  }
}
