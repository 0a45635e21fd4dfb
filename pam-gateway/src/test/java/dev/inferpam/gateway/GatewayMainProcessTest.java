package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_ENV;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.core.Recordings;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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

/** {@code GatewayMain} as a user runs it: a child JVM, its exit status and its output streams. */
class GatewayMainProcessTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final Pattern LISTENING =
      Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+)");

  @TempDir Path dir;
  private final List<Process> processes = new ArrayList<>();

  @AfterEach
  void killLeftovers() {
    for (Process p : processes) p.destroyForcibly();
  }

  @Test
  void serveAnnouncesItsPortServesAndExitsZeroOnSigterm() throws Exception {
    Path policy = Files.writeString(dir.resolve("policy.yaml"), TestPolicies.POLICY);
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());

      Path stdout = dir.resolve("stdout.txt");
      Path stderr = dir.resolve("stderr.txt");
      ProcessBuilder pb =
          command(
              "serve",
              "--policy",
              policy.toString(),
              "--upstream",
              upstream.url("/").toString(),
              "--port",
              "0",
              "--warmup",
              "0");
      pb.environment().put(UPSTREAM_ENV, "child-upstream-secret");
      // Files rather than pipes: destroy() closes the pipes, and the test reads stdout after exit.
      pb.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
      Process process = start(pb);

      String first = await().atMost(WAIT).until(() -> firstLine(stdout), line -> line != null);
      Matcher m = LISTENING.matcher(first);
      assertThat(m.matches()).as("first stdout line: %s", first).isTrue();
      int port = Integer.parseInt(m.group(1));
      assertThat(port).isPositive();

      OkHttpClient client = new OkHttpClient();
      try {
        Request request =
            new Request.Builder()
                .url(HttpUrl.get("http://127.0.0.1:" + port + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + ALICE_KEY)
                .post(
                    RequestBody.create(
                        TestPolicies.chat("llama-3.1-8b", ""), MediaType.get("application/json")))
                .build();
        try (Response response = client.newCall(request).execute()) {
          assertThat(response.code()).isEqualTo(200);
          assertThat(response.body().string()).isEqualTo("{\"ok\":true}");
        }
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }
      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(seen.getHeaders().get("Authorization")).isEqualTo("Bearer child-upstream-secret");

      process.destroy(); // SIGTERM
      assertThat(process.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(process.exitValue()).isZero();
      // Exactly one line on stdout, ever.
      assertThat(Files.readAllLines(stdout)).containsExactly(first);
      assertThat(Files.readString(stderr)).doesNotContain("\tat ").doesNotContain("Exception");
    }
  }

  @Test
  void serveHoldsARequestForReviewPostsItToTheWebhookAndForwardsItOnceApproved() throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"), TestPolicies.approvalPolicy("5m", "0s", "", ""));
    try (MockWebServer upstream = new MockWebServer();
        MockWebServer hook = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      hook.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
      hook.enqueue(new MockResponse.Builder().code(200).build());

      Path stdout = dir.resolve("stdout.txt");
      Path stderr = dir.resolve("stderr.txt");
      ProcessBuilder pb =
          command(
              "serve",
              "--policy",
              policy.toString(),
              "--upstream",
              upstream.url("/").toString(),
              "--port",
              "0",
              "--warmup",
              "0");
      pb.environment().put(UPSTREAM_ENV, "child-upstream-secret");
      pb.environment()
          .put(GatewayMain.REVIEW_WEBHOOK_ENV, hook.url("/hooks/T000/secret-path").toString());
      pb.environment().put(GatewayMain.REVIEW_WEBHOOK_AUTH_ENV, "Bearer hook-token");
      pb.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
      Process process = start(pb);
      String first = await().atMost(WAIT).until(() -> firstLine(stdout), line -> line != null);
      Matcher m = LISTENING.matcher(first);
      assertThat(m.matches())
          .as("first stdout line: %s; stderr: %s", first, Files.readString(stderr))
          .isTrue();
      String base = "http://127.0.0.1:" + m.group(1);

      OkHttpClient client = new OkHttpClient.Builder().readTimeout(WAIT).build();
      try {
        String body =
            "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"dump all rows\"}]}";
        java.util.concurrent.CompletableFuture<String> answer =
            java.util.concurrent.CompletableFuture.supplyAsync(
                () -> {
                  Request request =
                      new Request.Builder()
                          .url(base + "/v1/chat/completions")
                          .header("Authorization", "Bearer " + ALICE_KEY)
                          .post(RequestBody.create(body, MediaType.get("application/json")))
                          .build();
                  try (Response response = client.newCall(request).execute()) {
                    return response.code() + " " + response.body().string();
                  } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                });

        // The review is announced to the webhook: its id, rule and caller, never the caller's key.
        RecordedRequest notice = hook.takeRequest(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertThat(notice).as("webhook post; stderr: %s", Files.readString(stderr)).isNotNull();
        assertThat(notice.getHeaders().get("Authorization")).isEqualTo("Bearer hook-token");
        String posted = notice.getBody().utf8();
        com.fasterxml.jackson.databind.JsonNode json =
            new com.fasterxml.jackson.databind.ObjectMapper().readTree(posted);
        String id = json.path("approval_id").asText();
        assertThat(id).startsWith("apr-");
        assertThat(json.path("rule").asText()).isEqualTo("bulk-export");
        assertThat(json.path("principal").asText()).isEqualTo("alice");
        assertThat(posted).doesNotContain(ALICE_KEY, "child-upstream-secret");
        assertThat(upstream.getRequestCount()).isZero();

        Request approve =
            new Request.Builder()
                .url(base + "/pam/approvals/" + id + "/approve")
                .header("Authorization", "Bearer " + TestPolicies.BOB_KEY)
                .post(
                    RequestBody.create(
                        "{\"reason\":\"ticket 42\"}", MediaType.get("application/json")))
                .build();
        try (Response response = client.newCall(approve).execute()) {
          assertThat(response.code()).isEqualTo(200);
          assertThat(response.body().string())
              .contains("\"status\":\"approved\"", "\"reviewer\":\"bob\"");
        }
        assertThat(answer.get(WAIT.toSeconds(), TimeUnit.SECONDS)).isEqualTo("200 {\"ok\":true}");
        RecordedRequest forwarded = upstream.takeRequest(5, TimeUnit.SECONDS);
        assertThat(forwarded.getHeaders().get("Authorization"))
            .isEqualTo("Bearer child-upstream-secret");
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }
      process.destroy();
      assertThat(process.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(process.exitValue()).isZero();
      // The webhook URL is a secret: never in the gateway's output.
      assertThat(Files.readString(stderr) + Files.readString(stdout))
          .doesNotContain("secret-path", "hook-token");
    }
  }

  @Test
  void aBadReviewWebhookIsAUsageErrorThatDoesNotShowTheUrl() throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"), TestPolicies.approvalPolicy("5m", "0s", "", ""));
    Path out = dir.resolve("o.txt");
    Path err = dir.resolve("e.txt");
    ProcessBuilder pb =
        command(
                "serve",
                "--policy",
                policy.toString(),
                "--upstream",
                "http://127.0.0.1:9",
                "--port",
                "0",
                "--warmup",
                "0")
            .redirectOutput(out.toFile())
            .redirectError(err.toFile());
    pb.environment().put(GatewayMain.REVIEW_WEBHOOK_ENV, "ftp://user:pw@hooks.example/very-secret");
    Process p = start(pb);
    assertThat(p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isEqualTo(2);
    assertThat(Files.readString(err))
        .contains(GatewayMain.REVIEW_WEBHOOK_ENV + ": not an absolute http(s) URL")
        .doesNotContain("very-secret", "user:pw")
        .doesNotContain("\tat ");
    assertThat(Files.readString(out)).isEmpty();
  }

  @Test
  void sigtermFlushesEveryQueuedRecordBeforeExitingZero() throws Exception {
    Path recordings = dir.resolve("recordings");
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"), TestPolicies.policyRecordingTo(recordings, "async"));
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      int allowed = 4;
      for (int i = 0; i < allowed; i++) {
        upstream.enqueue(new MockResponse.Builder().code(200).body("{\"n\":" + i + "}").build());
      }
      Path stdout = dir.resolve("stdout.txt");
      Path stderr = dir.resolve("stderr.txt");
      ProcessBuilder pb =
          command(
              "serve",
              "--policy",
              policy.toString(),
              "--upstream",
              upstream.url("/").toString(),
              "--port",
              "0",
              "--warmup",
              "0");
      pb.environment().put(UPSTREAM_ENV, "child-upstream-secret");
      pb.redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
      Process process = start(pb);
      String first = await().atMost(WAIT).until(() -> firstLine(stdout), line -> line != null);
      Matcher m = LISTENING.matcher(first);
      assertThat(m.matches())
          .as("first stdout line: %s; stderr: %s", first, Files.readString(stderr))
          .isTrue();
      HttpUrl gateway = HttpUrl.get("http://127.0.0.1:" + m.group(1) + "/v1/chat/completions");

      // Each request carries a marker, so that its own exchange line can be found afterwards.
      List<String> markers = new ArrayList<>();
      OkHttpClient client = new OkHttpClient();
      try {
        for (int i = 0; i < allowed + 2; i++) {
          String marker = "marker-" + i;
          markers.add(marker);
          boolean deny = i >= allowed; // the last two ask for a denied parameter
          String body =
              "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\""
                  + marker
                  + "\"}]"
                  + (deny ? ",\"logprobs\":true" : "")
                  + "}";
          Request request =
              new Request.Builder()
                  .url(gateway)
                  .header("Authorization", "Bearer " + ALICE_KEY)
                  .post(RequestBody.create(body, MediaType.get("application/json")))
                  .build();
          try (Response response = client.newCall(request).execute()) {
            assertThat(response.code()).isEqualTo(deny ? 403 : 200);
            response.body().string();
          }
        }
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }

      process.destroy(); // SIGTERM, with records possibly still queued (durability: async)
      assertThat(process.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(process.exitValue()).as("stderr: %s", Files.readString(stderr)).isZero();

      Recordings recording = Recordings.open(recordings);
      Recordings.Verification verification = recording.verify();
      assertThat(verification.ok()).as("%s", verification).isTrue();
      List<Recordings.Entry> exchanges = recording.list(null, null);
      assertThat(exchanges).hasSize(markers.size());
      for (int i = 0; i < markers.size(); i++) {
        String marker = markers.get(i);
        int status = i >= allowed ? 403 : 200;
        assertThat(exchanges)
            .as(marker)
            .filteredOn(
                e ->
                    e.record().request().body() != null
                        && e.record().request().body().contains(marker))
            .singleElement()
            .satisfies(e -> assertThat(e.record().response().status()).isEqualTo(status));
      }
      assertThat(Files.readString(stderr))
          .doesNotContain("child-upstream-secret")
          .doesNotContain("\tat ");
    }
  }

  @Test
  void badArgumentsExitTwoWithOneLineAndNoStackTrace() throws Exception {
    Result r =
        run("serve", "--policy", "p.yaml", "--upstream", "http://127.0.0.1:1", "--port", "99999");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stdout).isEmpty();
    assertThat(r.stderrLines())
        .singleElement()
        .asString()
        .startsWith("inferpam: ")
        .contains("--port")
        .contains("99999");
    assertThat(r.stderr).doesNotContain("\tat ");
  }

  @Test
  void badUpstreamUrlExitsTwo() throws Exception {
    Result r = run("serve", "--policy", "p.yaml", "--upstream", "not a url");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stderrLines()).singleElement().asString().startsWith("inferpam: --upstream");
  }

  @Test
  void invalidPolicyExitsTwoNamingFileAndKeyPath() throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            """
        version: 1
        entitlements:
          - groups: [ml]
            models: ["x["]
            operations: [chat]
        """);
    Result r = run("serve", "--policy", policy.toString(), "--upstream", "http://127.0.0.1:1");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stdout).isEmpty();
    assertThat(r.stderrLines())
        .singleElement()
        .asString()
        .startsWith("inferpam: " + policy + ": entitlements[0].models[0]: invalid glob \"x[\"");
    assertThat(r.stderr).doesNotContain("\tat ").doesNotContain("Exception");
  }

  @Test
  void unusableRecordingDirectoryExitsTwoNamingThePolicy() throws Exception {
    Path notADirectory = Files.writeString(dir.resolve("recordings"), "a file, not a directory");
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"), TestPolicies.policyRecordingTo(notADirectory, "batched"));
    Result r =
        run(
            "serve",
            "--policy",
            policy.toString(),
            "--upstream",
            "http://127.0.0.1:1",
            "--port",
            "0");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stdout).isEmpty();
    assertThat(r.stderrLines())
        .filteredOn(l -> l.startsWith("inferpam: "))
        .singleElement()
        .asString()
        .startsWith("inferpam: " + policy + ": recording: ")
        .contains(notADirectory.toString());
    assertThat(r.stderr).doesNotContain("\tat ");
  }

  @Test
  void missingPolicyFileExitsTwo() throws Exception {
    Path missing = dir.resolve("nope.yaml");
    Result r = run("serve", "--policy", missing.toString(), "--upstream", "http://127.0.0.1:1");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stderrLines())
        .singleElement()
        .asString()
        .startsWith("inferpam: " + missing + ": ");
  }

  @Test
  void replayVerifyExitsZeroWhenTheChainHoldsAndOneWhenItBreaks() throws Exception {
    Path recordings = Files.createDirectory(dir.resolve("recordings"));
    TestRecordings.write(
        recordings,
        TestRecordings.allowedChat("ex-1", TestRecordings.T0),
        TestRecordings.denied("ex-2", TestRecordings.T0.plusSeconds(1)));

    Result ok = run("replay", "verify", "--recordings", recordings.toString());
    assertThat(ok.status).isZero();
    assertThat(ok.stdout.lines()).containsExactly("OK 2 records");
    assertThat(ok.stderr).isEmpty();

    Path segment = TestRecordings.onlySegment(recordings);
    List<String> lines = Files.readAllLines(segment);
    Files.write(
        segment, List.of(lines.get(0), lines.get(1).replace("\"status\":403", "\"status\":200")));
    Result broken = run("replay", "verify", "--recordings", recordings.toString());
    assertThat(broken.status).isEqualTo(1);
    assertThat(broken.stdout.lines())
        .singleElement()
        .asString()
        .startsWith("BROKEN " + segment.getFileName() + ":2: ");
  }

  @Test
  void replayOfAMissingDirectoryExitsTwoWithOneLine() throws Exception {
    Path missing = dir.resolve("no-such-recordings");
    Result r = run("replay", "list", "--recordings", missing.toString());
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stdout).isEmpty();
    assertThat(r.stderrLines())
        .singleElement()
        .asString()
        .startsWith("inferpam: ")
        .contains(missing.toString());
    assertThat(r.stderr).doesNotContain("\tat ");
  }

  @Test
  void helpPrintsUsageAndExitsZero() throws Exception {
    Result r = run("--help");
    assertThat(r.status).isZero();
    assertThat(r.stdout)
        .contains("serve --policy FILE --upstream URL")
        .contains("demo [--port N]")
        .contains("replay verify (--recordings DIR | --policy FILE)");
    assertThat(r.stderr).isEmpty();
  }

  @Test
  void demoNarratesEveryStepExitsZeroAndEndsWithACommandThatListsItsRecording() throws Exception {
    // The demo records into a new temporary directory: this test's, for the child JVM.
    Path tmp = Files.createDirectory(dir.resolve("tmp"));
    Result r = run(List.of("-Djava.io.tmpdir=" + tmp), "demo", "--port", "0");
    assertThat(r.status).as("stdout:%n%s%nstderr:%n%s", r.stdout, r.stderr).isZero();
    List<String> lines = r.stdout.lines().map(String::strip).toList();
    assertThat(lines.get(0)).isEqualTo("inferpam demo");
    assertThat(lines).contains("OK 10 records").noneMatch(l -> l.startsWith("UNEXPECTED"));
    // standard output is not a terminal: no colours
    assertThat(r.stdout).doesNotContain("\u001b");
    assertThat(r.stderr).doesNotContain("\tat ");
    List<Path> made;
    try (var entries = Files.list(tmp)) {
      made =
          entries
              .filter(p -> p.getFileName().toString().startsWith("inferpam-demo-recording-"))
              .toList();
    }
    assertThat(made).hasSize(1);
    Path recording = made.get(0);
    assertThat(lines.subList(lines.size() - 2, lines.size()))
        .containsExactly(
            "recording kept in " + recording,
            "look again: java -jar pam-gateway/target/pam-gateway.jar replay list --recordings "
                + recording);
    // the command it ends with works: ten exchanges, oldest first, as the demo listed them
    Result again = run("replay", "list", "--recordings", recording.toString());
    assertThat(again.status).as("stderr: %s", again.stderr).isZero();
    List<String> listed = again.stdout.lines().toList();
    assertThat(listed).hasSize(10);
    assertThat(lines).containsSubsequence(listed);
  }

  private record Result(int status, String stdout, String stderr) {
    List<String> stderrLines() {
      return stderr.lines().toList();
    }
  }

  private Result run(String... args) throws Exception {
    return run(List.of(), args);
  }

  private Result run(List<String> jvmOptions, String... args) throws Exception {
    Path out = Files.createTempFile(dir, "out", ".txt");
    Path err = Files.createTempFile(dir, "err", ".txt");
    ProcessBuilder pb =
        command(jvmOptions, args).redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = start(pb);
    assertThat(p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
  }

  private static ProcessBuilder command(String... args) {
    return command(List.of(), args);
  }

  /** {@code java [jvmOptions] -cp <the tests' class path> GatewayMain args...}. */
  static ProcessBuilder command(List<String> jvmOptions, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // The front the tests run on (the jetty-front execution sets it), for the gateway processes
    // too.
    String server = System.getProperty(Gateway.SERVER_PROPERTY);
    if (server != null) cmd.add("-D" + Gateway.SERVER_PROPERTY + "=" + server);
    // Netty's epoll transport (the default front) loads a native library: allowed as
    // pam-gateway.jar's manifest allows it (the option exists since Java 17)
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(GatewayMain.class.getName());
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd);
  }

  private Process start(ProcessBuilder pb) throws IOException {
    Process p = pb.start();
    processes.add(p);
    return p;
  }

  /** The first complete line of {@code file}, or null while there is none. */
  static String firstLine(Path file) throws IOException {
    String text = Files.readString(file);
    int end = text.indexOf('\n');
    return end < 0 ? null : text.substring(0, end);
  }
}
