package dev.inferpam.benchmarks.floor;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The Netty floor, on two event loops, with the transport this machine has (epoll on Linux). */
class NettyFloorTest extends FloorContract {

  @Override
  RunningFloor start(URI upstream) throws Exception {
    return NettyFloor.start(0, upstream, 2);
  }

  @Override
  void afterUpstreamDown(RawClient client, RawClient.Head head) throws IOException {
    assertThat(head.header("Connection")).isEqualTo("close");
    assertThat(new String(client.readBody(head), StandardCharsets.UTF_8))
        .isEqualTo(NettyFloor.UNREACHABLE);
    assertThat(client.closedByServer()).isTrue();
  }

  @Test
  void keepsOneUpstreamConnectionPerClientConnection() throws Exception {
    try (RawClient client = new RawClient(floor.uri())) {
      for (int i = 0; i < 2; i++) {
        client.send("POST", "/v1/chat/completions", REQUEST);
        RawClient.Head head = client.readHead();
        assertThat(client.readBody(head)).isEqualTo(Upstream.COMPLETION);
      }
    }
    try (RawClient other = new RawClient(floor.uri())) {
      other.send("POST", "/v1/chat/completions", REQUEST);
      assertThat(other.readHead().status()).isEqualTo(200);
    }
    assertThat(upstream.received())
        .extracting(Upstream.Received::remotePort)
        .satisfies(
            ports -> {
              assertThat(ports.get(1)).isEqualTo(ports.get(0));
              assertThat(ports.get(2)).isNotEqualTo(ports.get(0));
            });
  }

  @Test
  void usesEpollOnLinux() {
    NettyFloor.Running running = (NettyFloor.Running) floor;
    assertThat(running.transport())
        .isEqualTo(System.getProperty("os.name").startsWith("Linux") ? "epoll" : "nio");
  }
}
