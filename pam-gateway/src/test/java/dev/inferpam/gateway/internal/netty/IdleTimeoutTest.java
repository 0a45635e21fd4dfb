package dev.inferpam.gateway.internal.netty;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.timeout.IdleStateEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The Netty front's idle timer, on an embedded channel whose clock the test moves. */
class IdleTimeoutTest {
  private static final long TIMEOUT_MS = 1_000;

  private final List<Object> events = new ArrayList<>();
  private final EmbeddedChannel channel = new EmbeddedChannel();

  IdleTimeoutTest() {
    channel.freezeTime();
    channel
        .pipeline()
        .addLast(new IdleTimeout(TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS)))
        .addLast(
            new ChannelInboundHandlerAdapter() {
              @Override
              public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                events.add(evt);
              }
            });
  }

  private void advance(long ms) {
    channel.advanceTimeBy(ms, TimeUnit.MILLISECONDS);
    channel.runScheduledPendingTasks();
  }

  @Test
  void aConnectionThatNeitherReadsNorWritesIsIdleAfterTheTimeoutAndAgainAfterEachFurtherOne() {
    advance(TIMEOUT_MS - 1);
    assertThat(events).isEmpty();
    advance(1);
    assertThat(events).containsExactly(IdleStateEvent.ALL_IDLE_STATE_EVENT);
    advance(TIMEOUT_MS);
    assertThat(events).hasSize(2);
  }

  @Test
  void aReadOrAWriteStartsTheTimeoutAgain() {
    advance(TIMEOUT_MS - 100);
    channel.writeInbound("request bytes");
    advance(TIMEOUT_MS - 100);
    assertThat(events).isEmpty();
    channel.writeOutbound("an event of a stream");
    advance(TIMEOUT_MS - 100);
    assertThat(events).as("a write made counts as activity").isEmpty();
    advance(100);
    assertThat(events).containsExactly(IdleStateEvent.ALL_IDLE_STATE_EVENT);
    assertThat(channel.<String>readOutbound()).isEqualTo("an event of a stream");
  }

  @Test
  void aClosedConnectionHasNoTimerLeft() {
    channel.close();
    advance(10 * TIMEOUT_MS);
    assertThat(events).isEmpty();
  }
}
