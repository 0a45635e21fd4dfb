package dev.inferpam.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * {@code java -jar pam-gateway.jar demo}'s command line, in process (the demo itself: {@code DemoTest};
 * the command in a child JVM: {@code GatewayMainProcessTest}).
 */
class DemoCommandTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  @Test
  void badDemoPortIsAUsageError() {
    int status = run("--port", "http");
    assertThat(status).isEqualTo(2);
    assertThat(stderr().lines())
        .containsExactly(
            "inferpam: --port: must be a number from 0 to 65535, was \"http\" (see --help)");
    assertThat(out.size()).isZero();
  }

  @Test
  void portOutOfRangeIsAUsageErrorInEitherSpelling() {
    assertThat(run("--port=65536")).isEqualTo(2);
    assertThat(stderr())
        .startsWith("inferpam: --port: must be a number from 0 to 65535, was \"65536\"");
    assertThat(out.size()).isZero();
  }

  @Test
  void unknownOptionsAndArgumentsAreUsageErrors() {
    assertThat(run("--policy", "p.yaml")).isEqualTo(2);
    assertThat(run("serve")).isEqualTo(2);
    assertThat(run("--port", "1", "--port", "2")).isEqualTo(2);
    assertThat(run("--port")).isEqualTo(2);
    assertThat(stderr().lines())
        .containsExactly(
            "inferpam: unknown option --policy (see --help)",
            "inferpam: unexpected argument \"serve\" (see --help)",
            "inferpam: --port given twice (see --help)",
            "inferpam: --port needs a value (see --help)");
    assertThat(out.size()).isZero();
  }

  @Test
  void helpPrintsUsageAndExitsZeroWithoutRunningTheDemo() {
    assertThat(run("--help")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8))
        .startsWith("usage: java -jar pam-gateway.jar <command> [options]\n")
        .contains("\n  demo [--port N]\n")
        .contains("--port N     the gateway's port, 0 for a free one (default: free)")
        .doesNotContain("inferpam demo"); // the narration's first line: the demo did not run
    assertThat(err.size()).isZero();
  }

  private int run(String... args) {
    String[] command = new String[args.length + 1];
    command[0] = "demo";
    System.arraycopy(args, 0, command, 1, args.length);
    return GatewayMain.run(command, print(out), print(err));
  }

  private String stderr() {
    return err.toString(StandardCharsets.UTF_8);
  }

  private static PrintStream print(ByteArrayOutputStream bytes) {
    return new PrintStream(bytes, true, StandardCharsets.UTF_8);
  }
}
