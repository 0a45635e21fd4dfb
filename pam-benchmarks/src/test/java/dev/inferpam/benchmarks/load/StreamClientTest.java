package dev.inferpam.benchmarks.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The client against the in-process model server, with short streams: a second or two in all. */
class StreamClientTest {

  private static final byte[] STREAM =
      "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}"
          .getBytes(StandardCharsets.UTF_8);
  private static final long MS = 1_000_000;

  private SseUpstream upstream;

  @BeforeEach
  void start() throws Exception {
    upstream = SseUpstream.start(0, 10, 2, 2);
  }

  @AfterEach
  void stop() {
    upstream.close();
  }

  private StreamClient.Target target(String path) {
    return new StreamClient.Target(
        "direct", new InetSocketAddress("127.0.0.1", upstream.uri().getPort()), path, Map.of());
  }

  @Test
  void followsEveryStreamToItsDone() throws Exception {
    long t0 = System.nanoTime();
    LoadResult r =
        StreamClient.start(target(SseUpstream.PATH), STREAM, 20, 200 * MS, 10_000 * MS, 10, 2)
            .await();

    assertThat(r.errors()).isEmpty();
    assertThat(r.completed()).isEqualTo(20);
    assertThat(r.clean()).isTrue();
    assertThat(r.firstEventNanos()).hasSize(20);
    assertThat(r.lagNanos()).hasSize(20);
    // 10 events and [DONE], 2 ms apart: no stream can be shorter than 20 ms
    assertThat(r.durationNanos()).hasSize(20);
    assertThat(r.durationNanos()[0]).isGreaterThanOrEqualTo(20 * MS);
    assertThat(r.firstEventNanos()[19]).isLessThan(r.durationNanos()[19]);
    assertThat(r.peakOpen()).isBetween(1, 20);
    // opened over 200 ms: the run lasts at least that
    assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(200 * MS);
    // the model server counts a stream once its last write has returned, maybe after the client
    // read it
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(upstream.streamsCompleted()).isEqualTo(20));
  }

  @Test
  void aStreamWithOtherThanTheExpectedEventsIsAnError() throws Exception {
    LoadResult r =
        StreamClient.start(target(SseUpstream.PATH), STREAM, 5, 0, 10_000 * MS, 11, 1).await();

    assertThat(r.completed()).isZero();
    assertThat(r.errors()).containsExactly(Map.entry("wrong event count", 5));
    assertThat(r.samples()).containsEntry("wrong event count", "10 events, expected 11");
    assertThat(r.clean()).isFalse();
  }

  @Test
  void anErrorStatusIsCountedWithWhatTheServerSaid() throws Exception {
    LoadResult r = StreamClient.start(target("/nowhere"), STREAM, 3, 0, 10_000 * MS, 10, 1).await();

    assertThat(r.errors()).containsExactly(Map.entry("status 404", 3));
    assertThat(r.firstEventNanos()).isEmpty();
  }

  @Test
  void nothingListeningIsAConnectError() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
      port = s.getLocalPort();
    }
    StreamClient.Target nowhere =
        new StreamClient.Target(
            "closed", new InetSocketAddress("127.0.0.1", port), SseUpstream.PATH, Map.of());
    LoadResult r = StreamClient.start(nowhere, STREAM, 4, 0, 10_000 * MS, 10, 1).await();

    assertThat(r.completed()).isZero();
    assertThat(r.errors()).hasSize(1);
    assertThat(r.errors().keySet().iterator().next()).startsWith("connect: ConnectException");
    assertThat(r.failed()).isEqualTo(4);
  }

  @Test
  void theDeadlineEndsStreamsThatAreStillOpen() throws Exception {
    try (SseUpstream slow = SseUpstream.start(0, 3, 60_000, 1)) {
      StreamClient.Target t =
          new StreamClient.Target(
              "slow",
              new InetSocketAddress("127.0.0.1", slow.uri().getPort()),
              SseUpstream.PATH,
              Map.of());
      long t0 = System.nanoTime();
      StreamClient.Run run = StreamClient.start(t, STREAM, 6, 0, 500 * MS, 3, 1);
      assertThat(run.awaitRampEnd(5, TimeUnit.SECONDS)).isTrue();
      LoadResult r = run.await();

      // each had its first event at once, then nothing for a minute
      assertThat(r.errors()).containsExactly(Map.entry("unfinished at deadline: streaming", 6));
      long[] after = r.errorAfterNanos().get("unfinished at deadline: streaming");
      assertThat(after).hasSize(6);
      assertThat(after[0]).isPositive();
      assertThat(after[5]).isLessThan(5_000 * MS);
      assertThat(r.firstEventNanos()).hasSize(6);
      assertThat(r.durationNanos()).isEmpty();
      assertThat(r.peakOpen()).isEqualTo(6);
      assertThat(run.open()).isZero();
      assertThat(System.nanoTime() - t0).isBetween(500 * MS, 5_000 * MS);
    }
  }
}
