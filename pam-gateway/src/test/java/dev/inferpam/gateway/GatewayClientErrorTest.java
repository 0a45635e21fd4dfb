package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import okhttp3.HttpUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Client-caused errors on every endpoint of the gateway are the JSON error and at most one log
 * line, never a stack trace: a caller must not be able to flood the log. The log is what the
 * gateway's SLF4J binding (slf4j-simple) writes to standard error, captured per request.
 */
class GatewayClientErrorTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static Gateway gateway;

  @BeforeAll
  static void start() throws IOException {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.approvalPolicy("5m", "0s", "", "")))
            .credentialProvider(
                () -> new Credential("Authorization", TestPolicies.UPSTREAM_AUTHORIZATION))
            .recorder(r -> {})
            .build();
    // The upstream is never reached: every request here is refused.
    gateway = Gateway.start(engine, HttpUrl.get("http://127.0.0.1:9/"), "127.0.0.1", 0);
  }

  @AfterAll
  static void stop() {
    gateway.close();
  }

  /** Ambiguous paths on the reviewer, quota, health and not-found endpoints and in the filter. */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "POST /pam/approvals/x%2Fapprove",
        "POST /pam/approvals/x%2fapprove",
        "POST /pam/approvals/x%5Capprove",
        "GET /pam/approvals/%u002f",
        "GET /pam/approvals/..%2F..%2Fv1%2Fmodels",
        "GET /pam/approvals;x",
        "GET /pam/approvals//x",
        "GET /pam/quota%2F",
        "GET /pam/quota;jsessionid=1",
        "GET /pam/health;x",
        "GET /pam/health/%2e%2e/quota",
        "GET /pam/x%2Fy",
        "GET /pam/approvals/%2e%2e/",
        "POST /pam/approvals/x%2Fapprove/",
        "POST /v1/chat/completions%2Fx",
        "POST /v1/chat/completions;x",
      })
  void anAmbiguousPathIs400BadPathAndLogsNoStackTrace(String requestLine) throws Exception {
    for (String key : new String[] {BOB_KEY, ALICE_KEY, null}) {
      Result r =
          send(
              requestLine
                  + " HTTP/1.1\r\nHost: x\r\n"
                  + (key == null ? "" : "X-Api-Key: " + key + "\r\n")
                  + "Content-Length: 0\r\nConnection: close\r\n\r\n");
      assertThat(r.status).as("%s as %s: %s", requestLine, key, r.response).isEqualTo(400);
      assertThat(r.error().path("code").asText()).isEqualTo("bad_path");
      assertThat(r.error().path("type").asText()).isEqualTo("pam_error");
      r.assertQuietLog();
    }
  }

  /** Malformed requests and bodies on the reviewer and quota endpoints. */
  @ParameterizedTest
  @ValueSource(
      strings = {
        "POST /pam/approvals/abc/approve HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n",
        "POST /pam/approvals/abc/approve HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nContent-Length: abc\r\nConnection: close\r\n\r\n",
        "POST /pam/approvals/abc/approve HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\u00ff\u00fe\u0000",
        "POST /pam/approvals/abc/approve HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nContent-Length: 5\r\nConnection: close\r\n\r\n[1,2]",
        "GET /pam/quota HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "GET /pam/approvals HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nAuthorization: Bearer a.b.c\r\nConnection: close\r\n\r\n",
        "GET /pam/approvals/%00 HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "GET /pam/approvals/%C0%AF HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "GET /pam/quota HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "GET http://127.0.0.1:9/pam/approvals/x%2Fy HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
        "GET /pam/quota HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB\r\nX-Api-Key: BOB\r\nConnection: close\r\n\r\n",
        "GET /pam/quota?%ZZ=1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: BOB, BOB\r\nConnection: close\r\n\r\n",
      })
  void aMalformedRequestIsAJsonErrorAndLogsNoStackTrace(String request) throws Exception {
    Result r = send(request.replace("X-Api-Key: BOB", "X-Api-Key: " + BOB_KEY));
    assertThat(r.status).as(r.response).isBetween(400, 499);
    assertThat(r.error().path("type").asText()).as(r.response).isEqualTo("pam_error");
    r.assertQuietLog();
  }

  private record Result(int status, String response, String log) {
    JsonNode error() throws IOException {
      return JSON.readTree(response.substring(response.indexOf("\r\n\r\n") + 4)).path("error");
    }

    void assertQuietLog() {
      assertThat(log).as("log").doesNotContain("\tat ").doesNotContain("Exception");
      assertThat(log.lines().count()).as("log lines: %s", log).isLessThanOrEqualTo(1);
    }
  }

  /** Sends a raw request and returns the answer and what was logged meanwhile. */
  private static synchronized Result send(String request) throws IOException {
    PrintStream err = System.err;
    ByteArrayOutputStream log = new ByteArrayOutputStream();
    String response;
    System.setErr(new PrintStream(log, true, StandardCharsets.UTF_8));
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
      socket.shutdownOutput();
      response = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    } finally {
      System.setErr(err);
    }
    assertThat(response).startsWith("HTTP/1.1 ");
    int status = Integer.parseInt(response.substring(9, 12));
    return new Result(status, response, log.toString(StandardCharsets.UTF_8));
  }
}
