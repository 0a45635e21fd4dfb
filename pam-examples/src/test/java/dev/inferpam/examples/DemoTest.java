package dev.inferpam.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.examples.demo.Demo;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The demo, in process, as {@code java -jar pam-gateway.jar demo} runs it. */
class DemoTest {

  @Test
  void narratesEachControlWithItsStatusAndCodeThenExitsZero() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();

    int status = GatewayMain.run(new String[] {"demo"}, print(out), print(err));

    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(status).as("demo output:%n%s%nstderr:%n%s", text, err).isZero();
    List<String> outcomes = text.lines().map(String::strip).filter(l -> l.startsWith("-> ")).toList();
    assertThat(outcomes).hasSize(6);
    assertThat(outcomes.get(0)).isEqualTo("-> 200 allowed");
    assertThat(outcomes.get(1)).isEqualTo("-> 200 allowed");
    assertThat(outcomes.get(2)).startsWith("-> 403 not_entitled");
    assertThat(outcomes.get(3)).startsWith("-> 403 blocked");
    assertThat(outcomes.get(4)).startsWith("-> 403 parameter_denied");
    assertThat(outcomes.get(5)).startsWith("-> 401 unauthenticated");
    assertThat(text)
        .contains("content-type: text/event-stream")
        .contains("<- \"Privileged \"")
        .contains("<- [DONE]")
        .contains("the model server got the gateway's credential (Authorization: Bearer ██): yes; alice's key: no")
        .contains("2 reached the model server, 4 were refused by the gateway")
        .doesNotContain("UNEXPECTED");
    // Published demo keys may show; the upstream credential the gateway holds never does.
    assertThat(text).doesNotContain("demo-upstream-secret");
  }

  @Test
  void badDemoPortIsAUsageError() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status = GatewayMain.run(new String[] {"demo", "--port", "http"}, print(out), print(err));
    assertThat(status).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).startsWith("inferpam: --port");
    assertThat(out.size()).isZero();
  }

  @Test
  void demoPolicyIsShippedWithTheDemo() {
    assertThat(Demo.class.getResource("demo-policy.yaml")).isNotNull();
  }

  private static PrintStream print(ByteArrayOutputStream bytes) {
    return new PrintStream(bytes, true, StandardCharsets.UTF_8);
  }
}
