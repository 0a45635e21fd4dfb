package dev.inferpam.gateway.internal.netty;

import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.concurrent.Ticker;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Fires {@link IdleStateEvent#ALL_IDLE_STATE_EVENT} once a connection has neither read nor been
 * given anything to write for the timeout, then again after each further timeout; the next
 * handler decides what to do. As Netty's {@code IdleStateHandler} with only an all-idle time, but
 * a write counts when it is made rather than when it completes: {@code IdleStateHandler} swaps
 * every write's void promise for a new one and a listener, once per streamed event. A client
 * that stops reading is covered all the same: the relay then stops reading the upstream, so no
 * write is made, and the connection goes idle. One timer per connection; runs on its event loop, on the loop's ticker.
 */
final class IdleTimeout extends ChannelDuplexHandler {
  private final long timeoutNanos;
  private Ticker ticker = Ticker.systemTicker();
  private long lastActivity;
  private ScheduledFuture<?> check;

  IdleTimeout(long timeoutNanos) {
    this.timeoutNanos = timeoutNanos;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    ticker = ctx.executor().ticker();
    if (ctx.channel().isActive() && ctx.channel().isRegistered()) start(ctx);
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) throws Exception {
    start(ctx);
    super.channelActive(ctx);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    stop();
    super.channelInactive(ctx);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    stop();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    lastActivity = ticker.nanoTime();
    ctx.fireChannelRead(msg);
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    lastActivity = ticker.nanoTime();
    ctx.write(msg, promise);
  }

  private void start(ChannelHandlerContext ctx) {
    if (check != null) return;
    lastActivity = ticker.nanoTime();
    schedule(ctx, timeoutNanos);
  }

  private void schedule(ChannelHandlerContext ctx, long delayNanos) {
    check = ctx.executor().schedule(() -> check(ctx), delayNanos, TimeUnit.NANOSECONDS);
  }

  private void check(ChannelHandlerContext ctx) {
    if (check == null || !ctx.channel().isOpen()) return;
    long idle = ticker.nanoTime() - lastActivity;
    if (idle >= timeoutNanos) {
      lastActivity = ticker.nanoTime();
      schedule(ctx, timeoutNanos);
      ctx.fireUserEventTriggered(IdleStateEvent.ALL_IDLE_STATE_EVENT);
    } else {
      schedule(ctx, timeoutNanos - idle);
    }
  }

  private void stop() {
    ScheduledFuture<?> c = check;
    check = null;
    if (c != null) c.cancel(false);
  }
}
