package dev.inferpam.benchmarks.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamLoadTest {

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) throws Exception {
    return StreamLoad.run(
        args,
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @Test
  void aShortRunWithoutTheGatewayReportsDirectAndWritesJson(@TempDir Path dir) throws Exception {
    Path json = dir.resolve("load.json");
    int status =
        run(
            "--no-gateway",
            "--streams",
            "20",
            "--ramp",
            "0.2",
            "--interval-ms",
            "2",
            "--events",
            "10",
            "--warmup",
            "5",
            "--json",
            json.toString());

    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(status).as(text).isZero();
    assertThat(text)
        .contains("20 streams a target over 0.2 s; 10 events + [DONE] 2 ms apart")
        .contains("warm-up: 5/5 completed")
        .contains("done 20/20, errors 0")
        .containsPattern("(?m)^direct\\s+20/20\\s+0\\s+\\d+ \\|")
        .contains("all streams completed");
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertThat(root.at("/config/streams").asInt()).isEqualTo(20);
    JsonNode direct = root.at("/targets/0");
    assertThat(direct.get("name").asText()).isEqualTo("direct");
    assertThat(direct.get("done").asInt()).isEqualTo(20);
    assertThat(direct.get("errors").size()).isZero();
    assertThat(direct.at("/first_ms/p99").asDouble()).isPositive();
    assertThat(direct.at("/stream_ms/p50").asDouble()).isGreaterThanOrEqualTo(20.0);
  }

  @Test
  void aTargetWithFailedStreamsMakesTheExitStatusOne() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      port = s.getLocalPort();
    }
    int status =
        run(
            "--no-gateway",
            "--streams",
            "3",
            "--ramp",
            "0",
            "--interval-ms",
            "1",
            "--events",
            "2",
            "--warmup",
            "0",
            "--target",
            "closed=http://127.0.0.1:" + port);

    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(status).as(text).isEqualTo(1);
    assertThat(text)
        .contains("closed: http://127.0.0.1:" + port + "/v1/chat/completions")
        .contains("error: 3 x connect: ConnectException")
        .containsPattern("(?m)^closed\\s+0/3\\s+3 ")
        .contains("NOT all streams completed: exit 1");
  }

  @Test
  void badArgumentsExitTwoWithTheReason() throws Exception {
    assertThat(run("--streams", "0")).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .startsWith("StreamLoad: --streams must be a whole number > 0, was 0\nusage:");
    assertThat(run("--policy-kind", "bare")).isEqualTo(2);
    assertThat(run("--bogus")).isEqualTo(2);
    assertThatThrownBy(() -> StreamLoad.Options.target("far=http://192.0.2.1:80"))
        .hasMessage("--target far: loopback addresses only, was 192.0.2.1");
    assertThatThrownBy(() -> StreamLoad.Options.target("gateway=http://127.0.0.1:80"))
        .hasMessage("--target name gateway is taken");
    StreamClient.Target nginx =
        StreamLoad.Options.target("nginx=http://127.0.0.1:8088/v1/chat/completions;X-A=b");
    assertThat(nginx.path()).isEqualTo("/v1/chat/completions");
    assertThat(nginx.headers()).containsEntry("X-A", "b");
    assertThat(new String(nginx.request(new byte[] {'{', '}'}), StandardCharsets.ISO_8859_1))
        .startsWith("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8088\r\n")
        .contains("Content-Length: 2\r\nConnection: close\r\n")
        .endsWith("X-A: b\r\n\r\n{}");
  }

  @Test
  void bothPolicyKindsEntitleTheBenchmarksKeyAndNoOther(@TempDir Path dir) throws Exception {
    String hash = StreamLoad.sha256("sk-x");
    // printf %s sk-x | sha256sum
    assertThat(hash).isEqualTo("9df37f5e7cbc3c391d872742b5f286c242e733a09add9eeaa4d26a599bd90b20");
    Files.writeString(dir.resolve("key"), "sk-upstream\n");
    byte[] body =
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[]}"
            .getBytes(StandardCharsets.UTF_8);
    for (String kind : new String[] {"full", "identity"}) {
      String yaml =
          StreamLoad.policyYaml(kind, hash, dir.resolve("key"), dir.resolve("rec-" + kind));
      assertThat(yaml.contains("masking:")).isEqualTo(kind.equals("full"));
      try (PamEngine engine = PamEngine.builder().policy(Policy.parse(yaml)).build()) {
        for (String key : new String[] {"sk-x", "sk-y"}) {
          RequestHead head =
              new RequestHead(
                  "POST",
                  "/v1/chat/completions",
                  null,
                  Map.of(
                      "Authorization", List.of("Bearer " + key),
                      "Content-Type", List.of("application/json")),
                  "127.0.0.1");
          Verdict v = engine.begin(head, new ByteArrayInputStream(body), body.length);
          try {
            assertThat(v instanceof Verdict.Allowed)
                .as(kind + " " + key)
                .isEqualTo(key.equals("sk-x"));
          } finally {
            if (v instanceof Verdict.Allowed a) a.end(true);
            if (v instanceof Verdict.Denied d) d.end(true);
          }
        }
      }
    }
    assertThat(Files.exists(dir.resolve("rec-full"))).isTrue();
    assertThat(Files.exists(dir.resolve("rec-identity"))).isFalse();
  }

  @Test
  void readsTheHeapInUseFromJcmdOutput() {
    String jdk17 =
        "4866:\n"
            + " garbage-first heap   total 40960K, used 5958K [0x0000000687400000, 0x0000000800000000)\n"
            + "  region size 4096K, 0 young (0K), 0 survivors (0K)\n"
            + " Metaspace       used 8905K, committed 9088K, reserved 1114112K\n"
            + "  class space    used 1062K, committed 1152K, reserved 1048576K\n";
    String jdk25 =
        "4927:\n"
            + "garbage-first heap   total reserved 6172672K, committed 28672K, used 2913K"
            + " [0x0000000687400000, 0x0000000800000000)\n"
            + " region size 4096K, 0 young (0K), 0 survivors (0K)\n";
    String parallel =
        " PSYoungGen      total 76288K, used 2621K [0x1, 0x2)\n"
            + "  eden space 65536K, 4% used [0x1,0x2,0x3)\n"
            + " ParOldGen       total 175104K, used 100K [0x1, 0x2)\n"
            + "  object space 175104K, 0% used [0x1,0x2,0x3)\n"
            + " Metaspace       used 8905K, committed 9088K, reserved 1114112K\n";
    String z = " ZHeap           used 20M, capacity 512M, max capacity 4096M\n";
    assertThat(ProcessProbe.heapUsedKib(jdk17)).isEqualTo(OptionalLong.of(5958));
    assertThat(ProcessProbe.heapUsedKib(jdk25)).isEqualTo(OptionalLong.of(2913));
    assertThat(ProcessProbe.heapUsedKib(parallel)).isEqualTo(OptionalLong.of(2721));
    assertThat(ProcessProbe.heapUsedKib(z)).isEqualTo(OptionalLong.of(20 * 1024));
    assertThat(ProcessProbe.heapUsedKib("12: command not found")).isEmpty();
  }
}
