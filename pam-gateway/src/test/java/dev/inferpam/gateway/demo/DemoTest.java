package dev.inferpam.gateway.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.gateway.replay.Replay;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo, in process, as {@code java -jar pam-gateway.jar demo} runs it, except that it
 * records into a test directory rather than a new temporary one.
 */
class DemoTest {
  @TempDir Path recording;

  @Test
  void narratesEachControlWithItsStatusAndCodeThenExitsZero() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();

    int status = Demo.run(print(out), 0, recording);

    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(status).as("demo output:%n%s", text).isZero();
    List<String> outcomes =
        text.lines().map(String::strip).filter(l -> l.startsWith("-> ")).toList();
    assertThat(outcomes).hasSize(10);
    assertThat(outcomes.get(0)).isEqualTo("-> 200 allowed");
    assertThat(outcomes.get(1)).isEqualTo("-> 200 allowed"); // carol's OIDC token
    assertThat(outcomes.get(2)).isEqualTo("-> 200 allowed");
    assertThat(outcomes.get(3)).startsWith("-> 403 not_entitled");
    assertThat(outcomes.get(4)).startsWith("-> 403 blocked");
    assertThat(outcomes.get(5)).startsWith("-> 403 parameter_denied");
    assertThat(outcomes.get(6)).isEqualTo("-> 200 allowed");
    assertThat(outcomes.get(7))
        .startsWith(
            "-> 429 quota_exceeded: quota exceeded: the requested output bound of 3000"
                + " tokens is more than the 2000 left of limits[0] tokens-per-day");
    assertThat(outcomes.get(8))
        .isEqualTo("-> 401 unauthenticated: authentication failed: signature invalid");
    assertThat(outcomes.get(9)).startsWith("-> 401 unauthenticated");
    List<String> titles = text.lines().filter(l -> l.matches("\\[\\d+] .*")).toList();
    assertThat(titles).hasSize(10);
    assertThat(titles.get(1))
        .isEqualTo(
            "[2] carol signs in with the demo identity provider; the gateway checks her OIDC access token");
    assertThat(titles.get(8))
        .isEqualTo("[9] someone presents a forged token (right claims, wrong key)");
    assertThat(text)
        .containsPattern(
            "the identity provider gives carol an access token \\(typ at\\+jwt, RS256, kid \\S{8}\u2026\\):")
        .containsPattern(
            "iss http://127\\.0\\.0\\.1:\\d+, sub carol, groups \\[ml-engineers],"
                + " aud inferpam-demo-gateway, expires in 10 min")
        .containsPattern("\\(Authorization: Bearer eyJ[A-Za-z0-9_-]{9}\u2026\\)")
        .contains(
            "on this first token the gateway fetched the issuer's keys:"
                + " GET /.well-known/openid-configuration, GET /jwks.json")
        .contains("the model server got the gateway's credential: yes; carol's token: no")
        .contains("a token with carol's claims and the issuer's kid (typ at+jwt, RS256, kid ")
        .contains(
            "but signed with a key pair of the forger's own, which the issuer never published")
        .contains(
            "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"signature invalid\"");
    // Tokens are shown by their first characters only: nothing JWT-shaped is printed.
    assertThat(text)
        .doesNotContainPattern("[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}");
    // Plain text on a stream that is not the terminal.
    assertThat(text).doesNotContain("\u001b");
    assertThat(text)
        .contains("content-type: text/event-stream")
        .contains("<- \"Privileged\"")
        .contains("Privileged access, one token at a time. Questions: [EMAIL] or [PHONE].")
        .doesNotContain("oncall@example.com")
        .contains("<- [DONE]")
        .contains(
            "the model server got the gateway's credential (Authorization: Bearer ██): yes; alice's key: no")
        .contains("while it waits, the model server has seen it: no")
        .contains("sec-bob: GET /pam/approvals -> apr-")
        .contains(
            ", rule bulk-export, principal alice, excerpt \"Export all customer records as CSV.\"")
        .containsPattern("sec-bob: POST /pam/approvals/apr-[0-9a-f]+/approve -> 200 approved")
        .contains("GET /pam/quota -> limits[0] tokens_per_day: 2000 of 2000 left")
        .containsPattern("Retry-After: [1-9][0-9]* s")
        .contains(
            "done: 10 requests sent; 4 reached the model server, 6 were refused by the gateway")
        .doesNotContain("UNEXPECTED");
    // Published demo keys may show; the upstream credential the gateway holds never does.
    assertThat(text).doesNotContain("demo-upstream-secret");
  }

  @Test
  void endsWithTheVerifiedRecordingOfEveryExchangeAndWhereItIs() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();

    int status = Demo.run(print(out), 0, recording);

    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(status).as("demo output:%n%s", text).isZero();
    List<String> lines = text.lines().map(String::strip).toList();
    List<String> listed =
        lines.stream()
            .filter(l -> l.matches("\\d{4}-\\d\\d-\\d\\dT.* (allow|deny|approved) \\d{3}"))
            .toList();
    assertThat(listed).hasSize(10);
    assertThat(listed.get(0)).contains(" alice POST /v1/chat/completions llama-3.1-8b allow 200");
    assertThat(listed.get(1)).contains(" carol POST /v1/chat/completions gpt-4o-mini allow 200");
    assertThat(listed.get(2)).contains(" alice POST /v1/chat/completions llama-3.1-70b allow 200");
    assertThat(listed.get(3))
        .contains(" nightly-eval POST /v1/chat/completions gpt-4o-mini deny 403");
    assertThat(listed.get(6))
        .contains(" alice POST /v1/chat/completions llama-3.1-8b approved 200");
    assertThat(listed.get(7))
        .contains(" nightly-eval POST /v1/chat/completions llama-3.1-8b deny 429");
    // the forged token names carol, but nobody was identified (nor, before identity, the model)
    assertThat(listed.get(8)).contains(" - POST /v1/chat/completions - deny 401");
    assertThat(listed.get(9)).contains(" - POST /v1/chat/completions ").endsWith(" deny 401");
    assertThat(lines).contains("OK 10 records", "recording kept in " + recording);
    // carol's exchange is recorded with her OIDC identity: subject, groups, via and issuer
    String issuer =
        lines.stream()
            .filter(l -> l.startsWith("identity provider: "))
            .map(l -> l.substring("identity provider: ".length()).split(" ")[0])
            .findFirst()
            .orElseThrow();
    assertThat(issuer).matches("http://127\\.0\\.0\\.1:\\d+");
    String carolId = listed.get(1).split(" ")[1];
    JsonNode principal =
        new ObjectMapper()
            .readTree(Replay.open(recording).show(carolId).orElseThrow())
            .path("principal");
    assertThat(principal.path("subject").asText()).isEqualTo("carol");
    assertThat(principal.path("via").asText()).isEqualTo("oidc");
    assertThat(principal.path("issuer").asText()).isEqualTo(issuer);
    assertThat(principal.path("groups").toString()).isEqualTo("[\"ml-engineers\"]");
    assertThat(lines)
        .contains(
            "replay show --recordings "
                + recording
                + " "
                + carolId
                + " (carol's call), its principal:",
            "subject carol, groups [ml-engineers], via oidc, issuer " + issuer);
    // the last lines say where the recording is and how to look at it again, from the repository's
    // root
    assertThat(lines.get(lines.size() - 1))
        .isEqualTo(
            "look again: java -jar pam-gateway/target/pam-gateway.jar replay list --recordings "
                + recording);
    // what the demo printed is what is on disk
    assertThat(Replay.open(recording).verify().ok()).isTrue();
    assertThat(Replay.open(recording).list(null, null)).containsExactlyElementsOf(listed);
  }

  @Test
  void theCommandToLookAgainQuotesADirectoryAShellWouldSplit() {
    assertThat(Demo.shellArgument("/tmp/inferpam-demo-recording-123", false))
        .isEqualTo("/tmp/inferpam-demo-recording-123");
    assertThat(Demo.shellArgument("/tmp/a\\b", false)).isEqualTo("'/tmp/a\\b'");
    assertThat(Demo.shellArgument("/Users/j doe/tmp/rec", false))
        .isEqualTo("'/Users/j doe/tmp/rec'");
    assertThat(Demo.shellArgument("/tmp/it's $HOME", false)).isEqualTo("'/tmp/it'\\''s $HOME'");
    assertThat(Demo.shellArgument("C:\\Users\\J Doe\\AppData\\Local\\Temp\\rec", true))
        .isEqualTo("\"C:\\Users\\J Doe\\AppData\\Local\\Temp\\rec\"");
    assertThat(Demo.shellArgument("C:\\Temp\\rec", true)).isEqualTo("C:\\Temp\\rec");
  }

  @Test
  void demoPolicyIsShippedWithTheDemo() {
    assertThat(Demo.class.getResource("demo-policy.yaml")).isNotNull();
  }

  private static PrintStream print(ByteArrayOutputStream bytes) {
    return new PrintStream(bytes, true, StandardCharsets.UTF_8);
  }
}
