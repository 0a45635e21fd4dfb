package dev.inferpam.benchmarks.floor;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Jetty's {@code ProxyHandler.Reverse} as a floor, on the threads this JDK has by default. */
class JettyFloorTest extends FloorContract {

  @Override
  RunningFloor start(URI upstream) throws Exception {
    return JettyFloor.start(0, upstream, JettyFloor.threads(null), System.err);
  }

  @Override
  void afterUpstreamDown(RawClient client, RawClient.Head head) {
    // Jetty's own error response; the connection may stay open
  }

  @Test
  void runsOnVirtualThreadsByDefaultWhereTheJdkHasThem() {
    assertThat(JettyFloor.threads(null))
        .isEqualTo(
            Runtime.version().feature() >= 21
                ? JettyFloor.Threads.VIRTUAL
                : JettyFloor.Threads.PLATFORM);
    assertThat(JettyFloor.threads("platform")).isEqualTo(JettyFloor.Threads.PLATFORM);
  }

  @Test
  void saysSoWhenVirtualThreadsAreAskedForButAbsent() throws Exception {
    ByteArrayOutputStream notes = new ByteArrayOutputStream();
    try (RunningFloor f =
        JettyFloor.start(
            0,
            upstream.uri(),
            JettyFloor.Threads.VIRTUAL,
            new PrintStream(notes, true, StandardCharsets.UTF_8))) {
      try (RawClient client = new RawClient(f.uri())) {
        client.send("POST", "/v1/chat/completions", REQUEST);
        assertThat(client.readHead().status()).isEqualTo(200);
      }
    }
    String said = notes.toString(StandardCharsets.UTF_8);
    if (Runtime.version().feature() >= 21) {
      assertThat(said).isEmpty();
    } else {
      assertThat(said)
          .isEqualTo(
              "JettyFloor: Java "
                  + Runtime.version().feature()
                  + " has no virtual threads; handlers run on platform threads"
                  + System.lineSeparator());
    }
  }
}
