package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.EndpointResponse;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import mockwebserver3.MockWebServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway's Jetty front and {@link Endpoints} answer {@code /pam} requests alike, and
 * {@link Endpoints#isEndpointPath} routes as Jetty does: for several hundred raw paths (encoded
 * letters, path parameters, dot segments plain and encoded, {@code %2F}, bad escapes, ...) and the
 * endpoints' refusals, what the gateway answers on the wire is compared with what
 * {@link Endpoints#handle} answers for the same request, status, headers and body bytes. A
 * request the filter answered instead (its answers carry a request id) or Jetty refused before
 * routing must be one {@code isEndpointPath} rejects. Not a timing test.
 */
class EndpointsParityTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Headers that belong to the HTTP layer, not to the endpoints' answer. */
  private static final List<String> TRANSPORT = List.of("date", "connection", "content-length");

  private final MutableClock clock = new MutableClock(Instant.parse("2026-11-28T12:00:30Z"));
  private MockWebServer upstream;
  private Gateway gateway;
  private Endpoints endpoints;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    String policy =
        TestPolicies.approvalPolicy(
            "5m", "0s", "", "limits:\n  - groups: [ml]\n    requests-per-minute: 7\n");
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .clock(clock)
            .credentialProvider(() -> new Credential("Authorization", "Bearer up"))
            .recorder(r -> {})
            .build();
    endpoints = Endpoints.forEngine(engine);
    gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
  }

  @AfterEach
  void tearDown() throws IOException {
    gateway.close(Duration.ofSeconds(5));
    upstream.close();
  }

  /** First segments of the generated paths. */
  private static final List<String> FIRST =
      List.of(
          "pam",
          "p%61m",
          "%70am",
          "pa%6D",
          "%u0070am",
          "PAM",
          "pamx",
          "pam;x",
          "pam;",
          "pam%3bx",
          "pam%3B",
          "pam%2f",
          "pam%2Fhealth",
          "pam%2e",
          "pam%20",
          "",
          ".",
          "..",
          "%2e",
          "%2e%2e",
          ".%2e",
          "x",
          "x;a");

  /** What follows them. */
  private static final List<String> REST =
      List.of(
          "",
          "/",
          "/health",
          "/health/",
          "/h%65alth",
          "/health;x",
          "/approvals",
          "/approvals/",
          "/approvals/x/approve",
          "/quota",
          "/quota/",
          "/nothing",
          "/.",
          "/..",
          "/%2e",
          "/%2e%2e",
          "/./health",
          "/../pam/health",
          "/..;/pam/health",
          "/x/../health",
          "/x;y/../health",
          "/%2e%2e/pam/health",
          "/pam",
          "/../pam",
          "//health",
          "/%C3%A9",
          "/%ff",
          "/%00",
          "/%zz",
          "/%4",
          "/a%2fb",
          "/%u0068ealth",
          "/%25");

  @Test
  void generatedPathsAreRoutedAndAnsweredAlike() throws IOException {
    List<String> mismatches = new ArrayList<>();
    int endpointAnswers = 0;
    for (String first : FIRST) {
      for (String rest : REST) {
        if (compare("GET", "/" + first + rest, null, null, "", mismatches)) endpointAnswers++;
      }
    }
    assertThat(mismatches).isEmpty();
    // Both kinds were seen in number: the comparison is not vacuous.
    assertThat(endpointAnswers).isGreaterThan(100).isLessThan(FIRST.size() * REST.size() - 100);
  }

  @Test
  void queriesAndTheBarePath() throws IOException {
    List<String> mismatches = new ArrayList<>();
    for (String target :
        List.of(
            "/pam?x=1", "/pam?", "/pam;a;b?q=1", "/pam/health?x=%2F", "/p%61m?x", "/pam/?x=1")) {
      for (String method : List.of("GET", "POST", "HEAD")) {
        int q = target.indexOf('?');
        assertThat(
                compare(
                    method, target.substring(0, q), target.substring(q + 1), null, "", mismatches))
            .as(target)
            .isTrue();
      }
    }
    assertThat(mismatches).isEmpty();
  }

  @Test
  void endpointAnswersWithCredentialsMethodsAndBodies() throws IOException {
    List<String> mismatches = new ArrayList<>();
    String tooLarge = "{\"reason\":\"" + "x".repeat(Endpoints.MAX_BODY_BYTES) + "\"}";
    String[][] cases = {
      {"GET", "/pam/approvals", BOB_KEY, ""},
      {"get", "/pam/approvals", BOB_KEY, ""},
      {"HEAD", "/pam/approvals", BOB_KEY, ""},
      {"GET", "/pam/approvals", ALICE_KEY, ""},
      {"GET", "/pam/approvals", "not-a-key", ""},
      {"DELETE", "/pam/approvals", BOB_KEY, ""},
      {"GET", "/pam/approvals/", BOB_KEY, ""},
      {"GET", "/pam/approvals/x/approve", BOB_KEY, ""},
      {"POST", "/pam/approvals/x/approve", BOB_KEY, ""},
      {"POST", "/pam/approvals/x/approve", BOB_KEY, "{}"},
      {"POST", "/pam/approvals/x/reject", BOB_KEY, "{\"reason\":\"no\"}"},
      {"POST", "/pam/approvals/x/reject", BOB_KEY, "not json"},
      {"POST", "/pam/approvals/x/reject", BOB_KEY, "{\"reason\":7}"},
      {"POST", "/pam/approvals/x/reject", BOB_KEY, tooLarge},
      {"POST", "/pam/approvals/x/reject", ALICE_KEY, "{}"},
      {"POST", "/pam/approvals/x/reject", null, tooLarge},
      {"POST", "/pam/approvals/x%21/approve", BOB_KEY, ""},
      {"POST", "/pam/approvals/x/accept", BOB_KEY, ""},
      {"GET", "/pam/quota", ALICE_KEY, ""},
      {"GET", "/pam/quota", BOB_KEY, ""},
      {"POST", "/pam/quota", ALICE_KEY, "{}"},
      {"GET", "/pam/quota/", ALICE_KEY, ""},
      {"GET", "/pam/quota", null, ""},
      {"HEAD", "/pam/health", null, ""},
      {"POST", "/pam/health", null, "{}"},
      {"get", "/pam/health", null, ""},
      {"OPTIONS", "/pam/health", null, ""},
      {"PUT", "/pam/nothing", ALICE_KEY, "{}"},
    };
    for (String[] c : cases) {
      assertThat(compare(c[0], c[1], null, c[2], c[3], mismatches)).as(c[0] + " " + c[1]).isTrue();
    }
    assertThat(mismatches).isEmpty();
    assertThat(upstream.getRequestCount()).isZero();
  }

  /**
   * Sends one request to the gateway and compares its answer with {@link Endpoints#handle}'s
   * when {@link Endpoints#isEndpointPath} says it is an endpoint request, or checks that the
   * gateway did not answer it from the endpoints otherwise.
   *
   * @return whether the endpoints answered it
   */
  private boolean compare(
      String method, String path, String query, String key, String body, List<String> mismatches)
      throws IOException {
    String target = query == null ? path : path + "?" + query;
    Map<String, List<String>> headers = new LinkedHashMap<>();
    headers.put("Host", List.of("127.0.0.1"));
    if (key != null) headers.put("Authorization", List.of("Bearer " + key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    if (!body.isEmpty()) headers.put("Content-Type", List.of("application/json"));
    headers.put("Content-Length", List.of(String.valueOf(bytes.length)));
    Wire wire = exchange(method, target, headers, bytes);

    boolean routed = Endpoints.isEndpointPath(path);
    boolean jettyRefused = wire.status == 400 && wire.errorMessage().equals("bad request");
    boolean filtered = !wire.requestId().isEmpty();
    String what = method + " " + target + " -> " + wire.status + " " + wire.bodyText();
    if (jettyRefused || filtered) {
      if (routed) mismatches.add("isEndpointPath but not answered by the endpoints: " + what);
      return false;
    }
    if (!routed) {
      mismatches.add("answered by the endpoints but not isEndpointPath: " + what);
      return true;
    }
    EndpointResponse expected =
        endpoints.handle(new RequestHead(method, path, query, headers, "127.0.0.1"), bytes);
    Map<String, String> expectedHeaders = new TreeMap<>();
    expected.headers().forEach((k, v) -> expectedHeaders.put(k.toLowerCase(Locale.ROOT), v));
    byte[] expectedBody = method.equals("HEAD") ? new byte[0] : expected.body();
    if (wire.status != expected.status()
        || !wire.headers.equals(expectedHeaders)
        || !java.util.Arrays.equals(wire.body, expectedBody)
        || wire.contentLength != expected.body().length) {
      mismatches.add(
          what
              + " "
              + wire.headers
              + " (content-length "
              + wire.contentLength
              + ") but Endpoints: "
              + expected.status()
              + " "
              + expected.bodyText()
              + " "
              + expectedHeaders);
    }
    return true;
  }

  /** An answer as read off the wire. */
  private record Wire(int status, Map<String, String> headers, long contentLength, byte[] body) {
    String bodyText() {
      return new String(body, StandardCharsets.UTF_8);
    }

    JsonNode error() {
      try {
        return body.length == 0 ? JSON.missingNode() : JSON.readTree(body).path("error");
      } catch (IOException e) {
        return JSON.missingNode();
      }
    }

    String errorMessage() {
      return error().path("message").asText();
    }

    /** The request id of an error answer, empty when it has none (JSON null). */
    String requestId() {
      JsonNode id = error().path("request_id");
      return id.isTextual() ? id.asText() : "";
    }
  }

  private Wire exchange(
      String method, String target, Map<String, List<String>> headers, byte[] body)
      throws IOException {
    StringBuilder head =
        new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\n");
    headers.forEach(
        (k, vs) -> vs.forEach(v -> head.append(k).append(": ").append(v).append("\r\n")));
    head.append("Connection: close\r\n\r\n");
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), gateway.port())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
      out.write(body);
      out.flush();
      return parse(socket.getInputStream(), method.equals("HEAD"));
    }
  }

  private static Wire parse(InputStream in, boolean head) throws IOException {
    String statusLine = line(in);
    int status = Integer.parseInt(statusLine.split(" ")[1]);
    Map<String, String> headers = new TreeMap<>();
    long contentLength = -1;
    for (String l; !(l = line(in)).isEmpty(); ) {
      int colon = l.indexOf(':');
      String name = l.substring(0, colon).trim().toLowerCase(Locale.ROOT);
      String value = l.substring(colon + 1).trim();
      if (name.equals("content-length")) contentLength = Long.parseLong(value);
      if (!TRANSPORT.contains(name)) headers.put(name, value);
    }
    byte[] body = head || contentLength <= 0 ? new byte[0] : in.readNBytes((int) contentLength);
    return new Wire(status, headers, contentLength, body);
  }

  private static String line(InputStream in) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int b; (b = in.read()) != '\n'; ) {
      if (b < 0) throw new IOException("connection closed mid-line: " + out);
      if (b != '\r') out.write(b);
    }
    return out.toString(StandardCharsets.ISO_8859_1);
  }
}
