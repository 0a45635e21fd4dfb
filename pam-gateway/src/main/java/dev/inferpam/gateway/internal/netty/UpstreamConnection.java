package dev.inferpam.gateway.internal.netty;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;

/**
 * The last handler of an upstream connection: hands what the upstream sends to the exchange using
 * the connection, and drops the connection from its pool when it closes or speaks while idle.
 * Event loop only.
 */
final class UpstreamConnection extends ChannelInboundHandlerAdapter {
  static final String NAME = "relay";

  /** What an exchange using the connection is told. */
  interface Listener {
    void upstreamRead(Object msg);

    void upstreamReadComplete();

    void upstreamWritable(boolean writable);

    /** The connection closed or failed; {@code cause} is {@code null} for a plain close. */
    void upstreamGone(Throwable cause);
  }

  private final UpstreamPool pool;
  private Listener listener;
  private boolean broken;

  UpstreamConnection(UpstreamPool pool) {
    this.pool = pool;
  }

  static UpstreamConnection of(Channel ch) {
    return (UpstreamConnection) ch.pipeline().get(NAME);
  }

  UpstreamPool pool() {
    return pool;
  }

  /** Whether a pooled connection may carry another exchange. */
  boolean reusable() {
    return !broken && listener == null;
  }

  void attach(Listener l) {
    this.listener = l;
  }

  void detach() {
    this.listener = null;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    Listener l = listener;
    if (l != null) {
      l.upstreamRead(msg);
      return;
    }
    // Anything from an idle connection (a late byte, a 408) makes it unusable.
    ReferenceCountUtil.release(msg);
    broken = true;
    ctx.close();
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    Listener l = listener;
    if (l != null) l.upstreamReadComplete();
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    Listener l = listener;
    if (l != null) l.upstreamWritable(ctx.channel().isWritable());
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    broken = true;
    pool.remove(ctx.channel());
    Listener l = listener;
    listener = null;
    if (l != null) l.upstreamGone(null);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    broken = true;
    Listener l = listener;
    listener = null;
    ctx.close();
    if (l != null) l.upstreamGone(cause);
  }
}
