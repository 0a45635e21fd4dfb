package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestRecordings.ANSWER;
import static dev.inferpam.gateway.TestRecordings.T0;
import static dev.inferpam.gateway.TestRecordings.allowedChat;
import static dev.inferpam.gateway.TestRecordings.denied;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code replay list|show|verify|rerun} on the command line, in process: output and exit status. */
class ReplayCommandTest {
  @TempDir Path dir;

  private record Result(int status, String stdout, String stderr) {
    List<String> out() {
      return stdout.lines().toList();
    }

    List<String> err() {
      return stderr.lines().toList();
    }
  }

  private static Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int status =
        GatewayMain.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void listPrintsOneLinePerExchangeAndExitsZero() throws Exception {
    TestRecordings.write(dir, allowedChat("ex-1", T0), denied("ex-2", T0.plusSeconds(86_400)));

    Result all = run("replay", "list", "--recordings", dir.toString());
    assertThat(all.status).isZero();
    assertThat(all.out())
        .containsExactly(
            "2026-11-28T22:00:00.123Z ex-1 alice POST /v1/chat/completions llama-3.1-8b allow 200",
            "2026-11-29T22:00:00.123Z ex-2 ci-bot POST /v1/chat/completions gpt-4o-mini deny 403");
    assertThat(all.stderr).isEmpty();

    assertThat(run("replay", "list", "--recordings", dir.toString(), "--since", "2026-11-29").out())
        .singleElement()
        .asString()
        .contains(" ex-2 ");
    assertThat(run("replay", "list", "--recordings=" + dir, "--subject=alice").out())
        .singleElement()
        .asString()
        .contains(" ex-1 ");
  }

  @Test
  void badSinceIsAUsageError() {
    Result r = run("replay", "list", "--recordings", dir.toString(), "--since", "last week");
    assertThat(r.status).isEqualTo(2);
    assertThat(r.stdout).isEmpty();
    assertThat(r.err())
        .singleElement()
        .asString()
        .startsWith("inferpam: --since: expected an ISO instant");
  }

  @Test
  void showPrintsTheIndentedRecordAndUnknownIdsExitOne() throws Exception {
    TestRecordings.write(dir, allowedChat("ex-1", T0));

    Result shown = run("replay", "show", "--recordings", dir.toString(), "ex-1");
    assertThat(shown.status).isZero();
    assertThat(shown.out())
        .startsWith("{", "  \"v\": 1,", "  \"type\": \"exchange\",", "  \"id\": \"ex-1\",");
    assertThat(shown.out()).last().isEqualTo("}");

    // the ID may come before the options too
    assertThat(run("replay", "show", "ex-1", "--recordings", dir.toString()).status).isZero();

    Result unknown = run("replay", "show", "--recordings", dir.toString(), "ex-404");
    assertThat(unknown.status).isEqualTo(1);
    assertThat(unknown.stdout).isEmpty();
    assertThat(unknown.err()).containsExactly("inferpam: no exchange ex-404 in " + dir);
  }

  @Test
  void verifyPrintsOkOrTheFirstBrokenLine() throws Exception {
    TestRecordings.write(
        dir,
        allowedChat("ex-1", T0),
        denied("ex-2", T0.plusSeconds(1)),
        allowedChat("ex-3", T0.plusSeconds(2)));

    Result ok = run("replay", "verify", "--recordings", dir.toString());
    assertThat(ok.status).isZero();
    assertThat(ok.stdout).isEqualTo("OK 3 records" + System.lineSeparator());

    Path segment = TestRecordings.onlySegment(dir);
    List<String> lines = Files.readAllLines(segment);
    Files.write(segment, List.of(lines.get(0), lines.get(2))); // line 2 deleted

    Result broken = run("replay", "verify", "--recordings", dir.toString());
    assertThat(broken.status).isEqualTo(1);
    assertThat(broken.out())
        .singleElement()
        .asString()
        .startsWith("BROKEN " + segment.getFileName() + ":2: ");
    assertThat(broken.stderr).isEmpty();
  }

  @Test
  void aMissingRecordingDirectoryIsAUsageError() {
    Path missing = dir.resolve("absent");
    Result r = run("replay", "verify", "--recordings", missing.toString());
    assertThat(r.status).isEqualTo(2);
    assertThat(r.err())
        .singleElement()
        .asString()
        .startsWith("inferpam: --recordings: ")
        .contains(missing.toString());
    assertThat(r.stderr).doesNotContain("\tat ").doesNotContain("Exception");
  }

  @Test
  void argumentErrorsExitTwoWithOneLine() {
    String d = dir.toString();
    for (String[] args :
        List.of(
            new String[] {"replay"},
            new String[] {"replay", "replay"},
            new String[] {"replay", "verify"},
            new String[] {"replay", "show", "--recordings", d},
            new String[] {"replay", "show", "--recordings", d, "a", "b"},
            new String[] {"replay", "verify", "--recordings", d, "extra"},
            new String[] {"replay", "list", "--recordings", d, "--subject"},
            new String[] {"replay", "rerun", "--recordings", d, "ex-1"},
            new String[] {"replay", "rerun", "--recordings", d, "ex-1", "--upstream", "not a url"},
            new String[] {
              "replay", "verify", "--recordings", d, "--upstream", "http://127.0.0.1:1"
            })) {
      Result r = run(args);
      assertThat(r.status).as("%s", List.of(args)).isEqualTo(2);
      assertThat(r.stdout).as("%s", List.of(args)).isEmpty();
      assertThat(r.err())
          .as("%s", List.of(args))
          .singleElement()
          .asString()
          .startsWith("inferpam: ");
    }
  }

  @Test
  void rerunWithPolicySendsAFreshCredentialAndPrintsTheComparison() throws Exception {
    Path recordings = Files.createDirectory(dir.resolve("rec"));
    TestRecordings.write(recordings, allowedChat("ex-1", T0));
    Path secret = Files.writeString(dir.resolve("upstream.key"), "fresh-from-file\n");
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            """
        version: 1
        upstream:
          credential:
            from-file: "%s"
        """
                .formatted(secret.toString().replace("\\", "\\\\")));
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body(ANSWER).build());

      Result r =
          run(
              "replay",
              "rerun",
              "--recordings",
              recordings.toString(),
              "ex-1",
              "--upstream",
              upstream.url("/").toString(),
              "--policy",
              policy.toString());

      assertThat(r.status).as(r.stderr).isZero();
      assertThat(r.out())
          .containsExactly(
              "rerun ex-1: POST " + upstream.url("/v1/chat/completions"),
              "note: the request body is re-sent as recorded; with recording.bodies: masked (the default)"
                  + " that is the masked text, which may differ from what the caller sent",
              "status: recorded 200, rerun 200",
              "bodies: identical (11 lines compared)");
      RecordedRequest sent = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(sent.getHeaders().get("Authorization")).isEqualTo("Bearer fresh-from-file");
      assertThat(r.stdout + r.stderr).doesNotContain("fresh-from-file");
    }
  }

  @Test
  void rerunOfADeniedExchangeExitsOne() throws Exception {
    TestRecordings.write(dir, denied("ex-2", T0));
    Result r =
        run(
            "replay",
            "rerun",
            "--recordings",
            dir.toString(),
            "ex-2",
            "--upstream",
            "http://127.0.0.1:9");
    assertThat(r.status).isEqualTo(1);
    assertThat(r.err())
        .singleElement()
        .asString()
        .contains("was not forwarded (outcome deny, code not_entitled)");
  }

  @Test
  void rerunWithAnInvalidPolicyExitsTwoNamingTheFile() throws Exception {
    TestRecordings.write(dir, allowedChat("ex-1", T0));
    Path policy = Files.writeString(dir.resolve("bad.yaml"), "version: 7\n");
    Result r =
        run(
            "replay",
            "rerun",
            "--recordings",
            dir.toString(),
            "ex-1",
            "--upstream",
            "http://127.0.0.1:9",
            "--policy",
            policy.toString());
    assertThat(r.status).isEqualTo(2);
    assertThat(r.err()).singleElement().asString().startsWith("inferpam: " + policy + ": version");
  }
}
