package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_ENV;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.core.Recordings;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code serve --warmup N} as a user sees it: a child JVM whose warm-up pass runs before the
 * listening line and leaves nothing behind that the user could see.
 */
class GatewayWarmupTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final Pattern LISTENING =
      Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+)");

  /** The pass's only log line, at debug level (shown here because the test asks for it). */
  private static final Pattern WARMED_UP =
      Pattern.compile(
          ".* DEBUG Warmup - inferpam: warm-up: (\\d+) exchanges \\((\\d+) failed\\) in \\d+ ms");

  @TempDir Path dir;
  private final List<Process> processes = new ArrayList<>();

  @AfterEach
  void killLeftovers() {
    for (Process p : processes) p.destroyForcibly();
  }

  @Test
  void theWarmUpPassRunsBeforeTheListeningLineAndLeavesNoTrace() throws Exception {
    Path recordings = dir.resolve("recordings");
    Path tmp = Files.createDirectory(dir.resolve("tmp"));
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            TestPolicies.policyRecordingTo(recordings, "batched")
                + "masking:\n  strategy: redact\n"
                + "limits:\n  - groups: [\"*\"]\n    requests-per-minute: 2\n");
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
      Path stdout = dir.resolve("stdout.txt");
      Path stderr = dir.resolve("stderr.txt");
      ProcessBuilder pb =
          command(
                  List.of(
                      "-Djava.io.tmpdir=" + tmp,
                      "-Dorg.slf4j.simpleLogger.log.dev.inferpam.gateway.internal.Warmup=debug"),
                  "serve",
                  "--policy",
                  policy.toString(),
                  "--upstream",
                  upstream.url("/").toString(),
                  "--port",
                  "0",
                  "--warmup",
                  "300")
              .redirectOutput(stdout.toFile())
              .redirectError(stderr.toFile());
      pb.environment().put(UPSTREAM_ENV, "child-upstream-secret");
      Process process = start(pb);

      String first = await().atMost(WAIT).until(() -> firstLine(stdout), line -> line != null);
      Matcher listening = LISTENING.matcher(first);
      assertThat(listening.matches()).as("first stdout line: %s", first).isTrue();
      int port = Integer.parseInt(listening.group(1));

      // The pass ended before the listening line: its one (debug) line is already written, and
      // nothing else was logged. Every call it made got a whole answer; it stops early only when
      // its time budget runs out on a very slow machine.
      List<String> logged = Files.readAllLines(stderr);
      assertThat(logged).hasSize(1);
      Matcher warmedUp = WARMED_UP.matcher(logged.get(0));
      assertThat(warmedUp.matches()).as("stderr: %s", logged).isTrue();
      assertThat(Integer.parseInt(warmedUp.group(1))).isBetween(1, 300);
      assertThat(warmedUp.group(2)).isEqualTo("0");

      // No trace: nothing reached the real upstream, nothing in the recording, no directory left
      // in the temporary directory.
      assertThat(upstream.getRequestCount()).isZero();
      assertThat(Recordings.open(recordings).entries()).isEmpty();
      try (Stream<Path> left = Files.list(tmp)) {
        assertThat(left).isEmpty();
      }

      OkHttpClient client = new OkHttpClient();
      try {
        // No quota charged: alice's budget is whole.
        Request quota =
            new Request.Builder()
                .url(HttpUrl.get("http://127.0.0.1:" + port + "/pam/quota"))
                .header("Authorization", "Bearer " + ALICE_KEY)
                .build();
        try (Response response = client.newCall(quota).execute()) {
          assertThat(response.code()).isEqualTo(200);
          assertThat(response.body().string())
              .contains("\"requests_per_minute\":{\"limit\":2,\"used\":0,\"remaining\":2");
        }
        // The first real request works as ever.
        Request chat =
            new Request.Builder()
                .url(HttpUrl.get("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + ALICE_KEY)
                .post(
                    RequestBody.create(
                        TestPolicies.chat("llama-3.1-8b", ""), MediaType.get("application/json")))
                .build();
        try (Response response = client.newCall(chat).execute()) {
          assertThat(response.code()).isEqualTo(200);
          assertThat(response.body().string()).isEqualTo("{\"ok\":true}");
        }
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }
      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(seen.getHeaders().get("Authorization")).isEqualTo("Bearer child-upstream-secret");
      assertThat(upstream.getRequestCount()).isEqualTo(1);

      process.destroy(); // SIGTERM
      assertThat(process.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(process.exitValue()).isZero();
      // The recording holds the one real exchange, nothing of the pass.
      List<Recordings.Entry> entries = Recordings.open(recordings).list(null, null);
      assertThat(entries).hasSize(1);
      assertThat(entries.get(0).record().principal().subject()).isEqualTo("alice");
      assertThat(Files.readAllLines(stdout)).containsExactly(first);
      assertThat(Files.readAllLines(stderr)).containsExactly(logged.get(0));
    }
  }

  @Test
  void warmupZeroRunsNoPass() throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            TestPolicies.policyRecordingTo(dir.resolve("recordings"), "batched"));
    Path stdout = dir.resolve("stdout.txt");
    Path stderr = dir.resolve("stderr.txt");
    ProcessBuilder pb =
        command(
                List.of("-Dorg.slf4j.simpleLogger.log.dev.inferpam.gateway.internal.Warmup=debug"),
                "serve",
                "--policy",
                policy.toString(),
                "--upstream",
                "http://127.0.0.1:9/",
                "--port",
                "0",
                "--warmup=0")
            .redirectOutput(stdout.toFile())
            .redirectError(stderr.toFile());
    pb.environment().put(UPSTREAM_ENV, "child-upstream-secret");
    Process process = start(pb);
    String first = await().atMost(WAIT).until(() -> firstLine(stdout), line -> line != null);
    assertThat(first).matches(LISTENING);
    assertThat(Files.readString(stderr)).isEmpty();
    process.destroy();
    assertThat(process.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isZero();
  }

  @ParameterizedTest
  @ValueSource(strings = {"x", "-1", "1000001", "1e3", "", "5m", "301s", "2 s", "0x10"})
  void anInvalidWarmupValueExitsTwoWithOneLine(String value) throws Exception {
    Path policy = Files.writeString(dir.resolve("policy.yaml"), TestPolicies.POLICY);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {
              "serve",
              "--policy",
              policy.toString(),
              "--upstream",
              "http://127.0.0.1:9/",
              "--warmup=" + value
            },
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(2);
    assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(err.toString(StandardCharsets.UTF_8).lines())
        .containsExactly(
            "inferpam: --warmup: expected a number of exchanges up to 1000000 or a time up to"
                + " 300s (e.g. 5s, 1500ms), was \""
                + value
                + "\" (see --help)");
  }

  @Test
  void aMissingWarmupCountExitsTwoWithOneLine() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {"serve", "--policy", "p.yaml", "--upstream", "http://x/", "--warmup"},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8).lines())
        .containsExactly("inferpam: --warmup needs a value (see --help)");
  }

  @Test
  void trainRunsTheExchangesAndExitsZero() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {"train", "--calls", "60"},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(status).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8).lines().toList())
        .singleElement(org.assertj.core.api.InstanceOfAssertFactories.STRING)
        .matches("trained: 60 exchanges in \\d+ ms");
  }

  @Test
  void trainWithAPolicyLeavesItsRecordingDirectoryUntouched() throws Exception {
    Path recordings = dir.resolve("recordings");
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            TestPolicies.policyRecordingTo(recordings, "strict")
                + "masking:\n  strategy: hash\n"
                + "  hash-key-from-file: "
                + Files.writeString(dir.resolve("hash.key"), "k".repeat(32))
                + "\n");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {"train", "--policy", policy.toString(), "--calls=40"},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(status).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).startsWith("trained: 40 exchanges in ");
    assertThat(recordings).doesNotExist();
  }

  @Test
  void trainWithAnInvalidPolicyOrCountExitsTwoWithOneLine() throws Exception {
    Path policy = Files.writeString(dir.resolve("bad.yaml"), "version: 2\n");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            new String[] {"train", "--policy", policy.toString()},
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8).lines())
        .singleElement(org.assertj.core.api.InstanceOfAssertFactories.STRING)
        .startsWith("inferpam: " + policy + ": version");

    ByteArrayOutputStream err2 = new ByteArrayOutputStream();
    status =
        GatewayMain.run(
            new String[] {"train", "--calls", "many"},
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err2, true, StandardCharsets.UTF_8));
    assertThat(status).isEqualTo(2);
    assertThat(err2.toString(StandardCharsets.UTF_8).lines())
        .containsExactly(
            "inferpam: --calls: must be a number from 0 to 10000000, was \"many\" (see --help)");
  }

  private static ProcessBuilder command(List<String> jvmOptions, String... args) {
    return GatewayMainProcessTest.command(jvmOptions, args);
  }

  private Process start(ProcessBuilder pb) throws IOException {
    Process p = pb.start();
    processes.add(p);
    return p;
  }

  private static String firstLine(Path file) throws IOException {
    return GatewayMainProcessTest.firstLine(file);
  }
}
