package dev.inferpam.benchmarks.floor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import org.junit.jupiter.api.Test;

class FloorArgsTest {

  @Test
  void takesPortUpstreamAndTheFloorsOwnOption() {
    FloorArgs a =
        FloorArgs.parse(
            new String[] {"--port", "0", "--upstream", "http://127.0.0.1:8080/", "--threads", "x"},
            "--threads");

    assertThat(a.port()).isZero();
    assertThat(a.upstream()).isEqualTo(URI.create("http://127.0.0.1:8080"));
    assertThat(a.extra()).isEqualTo("x");
  }

  @Test
  void refusesWhatItCannotForward() {
    assertThatThrownBy(() -> parse("--port", "1", "--upstream", "http://127.0.0.1:8080/v1"))
        .hasMessage(
            "--upstream must be http://HOST:PORT (no path, no query), was"
                + " http://127.0.0.1:8080/v1");
    assertThatThrownBy(() -> parse("--port", "1", "--upstream", "https://127.0.0.1:8443"))
        .hasMessageStartingWith("--upstream must be http://HOST:PORT");
    assertThatThrownBy(() -> parse("--port", "1", "--upstream", "http://127.0.0.1"))
        .hasMessageStartingWith("--upstream must be http://HOST:PORT");
    assertThatThrownBy(() -> parse("--port", "70000", "--upstream", "http://127.0.0.1:1"))
        .hasMessage("--port must be 0..65535, was 70000");
    assertThatThrownBy(() -> parse("--upstream", "http://127.0.0.1:1"))
        .hasMessage("--port is required (0: a free port)");
    assertThatThrownBy(() -> parse("--port", "0"))
        .hasMessage("--upstream is required, e.g. http://127.0.0.1:8080");
    assertThatThrownBy(() -> parse("--port", "0", "--event-loops", "2"))
        .hasMessage("unknown option --event-loops");
    assertThatThrownBy(() -> NettyFloor.eventLoops("0"))
        .hasMessage("--event-loops must be a positive number, was 0");
    assertThatThrownBy(() -> JettyFloor.threads("carrier"))
        .hasMessage("--threads must be platform or virtual, was carrier");
  }

  private static FloorArgs parse(String... args) {
    return FloorArgs.parse(args, "--threads");
  }
}
