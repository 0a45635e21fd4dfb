package dev.inferpam.benchmarks.floor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What every floor does, tested against a real upstream on loopback through a plain-socket client:
 * a completion passes byte for byte, a stream is relayed event by event (the upstream sends the
 * next event only once the client has the previous one), keep-alive works, and a dead upstream is
 * a 502.
 */
abstract class FloorContract {

  /** About 2 KB of request JSON. */
  static final byte[] REQUEST = request();

  Upstream upstream;
  RunningFloor floor;

  /** Starts the floor under test in front of {@code upstream} on a free port. */
  abstract RunningFloor start(URI upstream) throws Exception;

  @BeforeEach
  void startUpstreamAndFloor() throws Exception {
    upstream = Upstream.start();
    floor = start(upstream.uri());
  }

  @AfterEach
  void stop() throws Exception {
    if (floor != null) floor.close();
    if (upstream != null) upstream.close();
  }

  @Test
  void relaysACompletionByteForByteWithStatusAndHeaders() throws Exception {
    try (RawClient client = new RawClient(floor.uri())) {
      client.send(
          "POST",
          "/v1/chat/completions?api-version=2024-10-21",
          REQUEST,
          "Content-Type: application/json",
          "Authorization: Bearer sk-test");
      RawClient.Head head = client.readHead();

      assertThat(head.status()).isEqualTo(200);
      assertThat(head.header("Content-Type")).isEqualTo("application/json; charset=utf-8");
      assertThat(head.header("X-Request-Id")).isEqualTo("req-1");
      assertThat(client.readBody(head)).isEqualTo(Upstream.COMPLETION);
    }
    Upstream.Received got = upstream.received().get(0);
    assertThat(got.method()).isEqualTo("POST");
    assertThat(got.pathQuery()).isEqualTo("/v1/chat/completions?api-version=2024-10-21");
    assertThat(got.body()).isEqualTo(REQUEST);
    assertThat(got.header("Authorization")).isEqualTo("Bearer sk-test");
    assertThat(got.header("Content-Type")).isEqualTo("application/json");
    assertThat(got.header("Host")).isEqualTo(upstream.uri().getAuthority());
  }

  @Test
  void relaysAStreamEventByEventAsTheUpstreamSendsThem() throws Exception {
    try (RawClient client = new RawClient(floor.uri())) {
      client.send("POST", "/v1/stream", REQUEST, "Content-Type: application/json");
      RawClient.Head head = client.readHead();
      assertThat(head.status()).isEqualTo(200);
      assertThat(head.header("Content-Type")).isEqualTo("text/event-stream");
      assertThat(head.chunked()).isTrue();
      Upstream.EventStream stream = upstream.stream().get(10, TimeUnit.SECONDS);

      for (int i = 0; i <= Upstream.EVENTS; i++) {
        assertThat(client.readEvent()).isEqualTo(Upstream.event(i));
        // the client has event i while the upstream has not sent event i + 1: nothing held back
        assertThat(stream.sent()).isEqualTo(i + 1);
        if (i < Upstream.EVENTS) stream.next();
      }
      assertThat(client.readEvent()).isNull();
    }
  }

  @Test
  void servesTwoSequentialRequestsOnOneClientConnection() throws Exception {
    try (RawClient client = new RawClient(floor.uri())) {
      for (int i = 1; i <= 2; i++) {
        client.send("POST", "/v1/chat/completions", REQUEST, "Content-Type: application/json");
        RawClient.Head head = client.readHead();

        assertThat(head.status()).isEqualTo(200);
        assertThat(head.header("X-Request-Id")).isEqualTo("req-" + i);
        assertThat(client.readBody(head)).isEqualTo(Upstream.COMPLETION);
      }
    }
    assertThat(upstream.received()).hasSize(2);
  }

  @Test
  void aClientThatGoesAwayEndsTheUpstreamStream() throws Exception {
    Upstream.EventStream stream;
    try (RawClient client = new RawClient(floor.uri())) {
      client.send("POST", "/v1/stream", REQUEST, "Content-Type: application/json");
      assertThat(client.readHead().status()).isEqualTo(200);
      stream = upstream.stream().get(10, TimeUnit.SECONDS);
      for (int i = 0; i < 3; i++) {
        assertThat(client.readEvent()).isEqualTo(Upstream.event(i));
        stream.next();
      }
    }
    // the upstream's writes fail once the floor has closed its connection (a write may still go
    // into the socket's buffer before the reset comes back, so it may take a few)
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              try {
                stream.next().get(5, TimeUnit.SECONDS);
                return false;
              } catch (ExecutionException e) {
                return true;
              }
            });
    assertThat(stream.sent()).isLessThan(Upstream.EVENTS);
  }

  @Test
  void anUpstreamThatBreaksOffAStreamBreaksOffTheClientsToo() throws Exception {
    try (RawClient client = new RawClient(floor.uri())) {
      client.send("POST", "/v1/stream", REQUEST, "Content-Type: application/json");
      assertThat(client.readHead().status()).isEqualTo(200);
      Upstream.EventStream stream = upstream.stream().get(10, TimeUnit.SECONDS);
      assertThat(client.readEvent()).isEqualTo(Upstream.event(0));
      stream.next();
      assertThat(client.readEvent()).isEqualTo(Upstream.event(1));

      stream.abort();

      // not a clean end of the chunked body, which would look like a complete answer
      assertThatThrownBy(client::readEvent).isInstanceOf(EOFException.class);
    }
  }

  @Test
  void answers502WhenTheUpstreamIsDown() throws Exception {
    floor.close();
    floor = start(URI.create("http://127.0.0.1:" + closedPort()));
    try (RawClient client = new RawClient(floor.uri())) {
      client.send("POST", "/v1/chat/completions", REQUEST, "Content-Type: application/json");
      RawClient.Head head = client.readHead();

      assertThat(head.status()).isEqualTo(502);
      afterUpstreamDown(client, head);
    }
  }

  /** What else the floor does after its 502 (its body, whether it closes the connection). */
  abstract void afterUpstreamDown(RawClient client, RawClient.Head head) throws IOException;

  /** A loopback port nothing listens on (it was free a moment ago). */
  static int closedPort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }

  private static byte[] request() {
    StringBuilder messages = new StringBuilder();
    for (int i = 0; messages.length() < 1900; i++) {
      if (i > 0) messages.append(',');
      messages
          .append("{\"role\":\"user\",\"content\":\"question ")
          .append(i)
          .append(" — ça va?\"}");
    }
    return ("{\"model\":\"gpt-4o-mini\",\"messages\":[" + messages + "]}")
        .getBytes(StandardCharsets.UTF_8);
  }
}
