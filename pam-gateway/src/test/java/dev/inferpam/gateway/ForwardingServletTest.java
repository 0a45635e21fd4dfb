package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.gateway.internal.ForwardingServlet;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.Headers;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What the forwarding servlet carries across, and what it refuses to. */
class ForwardingServletTest {
  private MockWebServer upstream;

  @BeforeEach
  void setUp() throws IOException {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getLoopbackAddress(), 0);
  }

  @AfterEach
  void tearDown() {
    upstream.close();
  }

  @Test
  void hopByHopHeadersAreDroppedBothWays() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Connection", "X-Upstream-Hop")
            .addHeader("X-Upstream-Hop", "private to the upstream connection")
            .addHeader("Keep-Alive", "timeout=99")
            .addHeader("Proxy-Agent", "mock")
            .addHeader("X-Kept", "yes")
            .body("{}")
            .build());
    try (Gateway gateway =
        Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/"), "127.0.0.1", 0)) {
      String body = TestPolicies.chat("llama-3.1-8b", "");
      String answer =
          raw(
              gateway.port(),
              "POST /v1/chat/completions HTTP/1.1\r\n"
                  + "Host: 127.0.0.1\r\n"
                  + "Authorization: Bearer "
                  + ALICE_KEY
                  + "\r\n"
                  + "Content-Type: application/json\r\n"
                  + "Content-Length: "
                  + body.length()
                  + "\r\n"
                  + "Connection: close, X-Caller-Hop\r\n"
                  + "X-Caller-Hop: private to the caller connection\r\n"
                  + "Keep-Alive: timeout=5\r\n"
                  + "TE: trailers\r\n"
                  + "Trailer: X-Checksum\r\n"
                  + "Proxy-Connection: keep-alive\r\n"
                  + "Accept-Encoding: br\r\n"
                  + "X-Request-Id: yes\r\n"
                  + "\r\n"
                  + body);

      assertThat(answer).startsWith("HTTP/1.1 200 ");
      String head = answer.substring(0, answer.indexOf("\r\n\r\n")).toLowerCase();
      assertThat(head)
          .contains("x-kept: yes")
          .doesNotContain("x-upstream-hop")
          .doesNotContain("timeout=99")
          .doesNotContain("proxy-agent");

      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      Headers h = seen.getHeaders();
      assertThat(h.get("X-Request-Id")).isEqualTo("yes");
      assertThat(h.get("X-Caller-Hop")).isNull();
      assertThat(h.get("TE")).isNull();
      assertThat(h.get("Trailer")).isNull();
      assertThat(h.get("Proxy-Connection")).isNull();
      assertThat(h.get("Keep-Alive")).isNull();
      // The caller's encoding preference is not passed on: the gateway must see plain bytes.
      assertThat(h.get("Accept-Encoding")).isNotEqualTo("br");
      assertThat(h.get("Host")).isEqualTo(upstream.url("/").host() + ":" + upstream.getPort());
      assertThat(h.values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
      assertThat(seen.getBody().utf8()).isEqualTo(body);
    }
  }

  @Test
  void upstreamBasePathIsPutInFrontOfTheRequestPath() throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Gateway gateway =
        Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/openai/"), "127.0.0.1", 0)) {
      String answer =
          raw(
              gateway.port(),
              "GET /v1/models?limit=5 HTTP/1.1\r\nHost: x\r\n"
                  + "Authorization: Bearer "
                  + ALICE_KEY
                  + "\r\nConnection: close\r\n\r\n");
      assertThat(answer).startsWith("HTTP/1.1 200 ");
      assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getTarget())
          .isEqualTo("/openai/v1/models?limit=5");
    }
  }

  @Test
  void refusesRequestsThatDidNotPassThePamFilter() throws Exception {
    // Misconfigured: the servlet without the filter in front. It must not forward unchecked.
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    context.addServlet(
        new ServletHolder(new ForwardingServlet(ForwardingServlet.newClient(), upstream.url("/"))),
        "/");
    server.setHandler(context);
    server.start();
    try {
      String answer =
          raw(
              connector.getLocalPort(),
              "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      assertThat(answer).startsWith("HTTP/1.1 500 ").contains("\"code\":\"internal_error\"");
      assertThat(upstream.getRequestCount()).isZero();
    } finally {
      server.stop();
    }
  }

  @Test
  void onlyAllowListedCallerHeadersReachTheUpstreamAndForwardingHeadersSayWhatTheGatewaySaw()
      throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Server", "uvicorn/0.30 (internal build 7)")
            .addHeader("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
            .addHeader("X-Kept", "yes")
            .body("{}")
            .build());
    try (Gateway gateway =
        Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/"), "127.0.0.1", 0)) {
      String body = TestPolicies.chat("llama-3.1-8b", "");
      String answer =
          raw(
              gateway.port(),
              "POST /v1/chat/completions HTTP/1.1\r\n"
                  + "Host: gw.example:8443\r\n"
                  + "X-Api-Key: "
                  + ALICE_KEY
                  + "\r\n"
                  + "Content-Type: application/json\r\n"
                  + "Content-Length: "
                  + body.length()
                  + "\r\n"
                  + "Connection: close\r\n"
                  + "Accept: application/json\r\n"
                  + "User-Agent: test-client/1.0\r\n"
                  + "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                  + "X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\n"
                  + "Anthropic-Version: 2023-06-01\r\n"
                  + "Forwarded: for=10.0.0.1;host=internal.example\r\n"
                  + "X-Forwarded-For: 10.0.0.1\r\n"
                  + "X-Forwarded-Host: internal.example\r\n"
                  + "X-Forwarded-Proto: https\r\n"
                  + "X-Real-IP: 10.0.0.1\r\n"
                  + "Cookie: session=caller-cookie\r\n"
                  + "X-HTTP-Method-Override: DELETE\r\n"
                  + "X-Method-Override: DELETE\r\n"
                  + "X-HTTP-Method: DELETE\r\n"
                  + "OpenAI-Organization: org-someone-else\r\n"
                  + "OpenAI-Project: proj-someone-else\r\n"
                  + "api-key: caller-azure-key\r\n"
                  + "X-Custom: anything\r\n"
                  + "\r\n"
                  + body);

      assertThat(answer).startsWith("HTTP/1.1 200 ");
      String head = answer.substring(0, answer.indexOf("\r\n\r\n")).toLowerCase();
      assertThat(head).contains("x-kept: yes").doesNotContain("uvicorn").doesNotContain("2024");
      assertThat(head.split("\r\n")).filteredOn(l -> l.startsWith("date:")).hasSize(1);
      assertThat(head).doesNotContain("server:");

      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      Headers h = seen.getHeaders();
      assertThat(h.get("Content-Type")).isEqualTo("application/json");
      assertThat(h.get("Accept")).isEqualTo("application/json");
      assertThat(h.get("User-Agent")).isEqualTo("test-client/1.0");
      assertThat(h.get("traceparent"))
          .isEqualTo("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      assertThat(h.get("X-B3-TraceId")).isEqualTo("80f198ee56343ba864fe8b2a57d3eff7");
      assertThat(h.get("Anthropic-Version")).isEqualTo("2023-06-01");
      assertThat(h.values("X-Forwarded-For")).containsExactly("127.0.0.1");
      assertThat(h.values("X-Forwarded-Proto")).containsExactly("http");
      assertThat(h.values("X-Forwarded-Host")).containsExactly("gw.example:8443");
      for (String name :
          new String[] {
            "Forwarded",
            "X-Real-IP",
            "Cookie",
            "X-HTTP-Method-Override",
            "X-Method-Override",
            "X-HTTP-Method",
            "OpenAI-Organization",
            "OpenAI-Project",
            "api-key",
            "X-Custom",
            "X-Api-Key"
          }) {
        assertThat(h.get(name)).as(name).isNull();
      }
      assertThat(h.values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
      assertThat(seen.getBody().utf8()).isEqualTo(body);
    }
  }

  @Test
  void headersThePolicyListsAreForwardedAndOthersStillNot() throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    TestPolicies.POLICY
                        + "request:\n  forward-headers: [OpenAI-Organization, x-team]\n"))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .recorder(r -> {})
            .build();
    try (Gateway gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0)) {
      String body = TestPolicies.chat("llama-3.1-8b", "");
      String head =
          "POST /v1/chat/completions HTTP/1.1\r\n"
              + "Host: x\r\n"
              + "X-Api-Key: "
              + ALICE_KEY
              + "\r\n"
              + "Content-Type: application/json\r\n"
              + "Content-Length: "
              + body.length()
              + "\r\n"
              + "openai-organization: org-listed\r\n"
              + "X-Team: red\r\n"
              + "X-TEAM: blue\r\n"
              + "OpenAI-Project: proj-unlisted\r\n"
              + "X-Unlisted: no\r\n"
              + "Cookie: session=caller-cookie\r\n";
      assertThat(raw(gateway.port(), head + "Connection: close\r\n\r\n" + body))
          .startsWith("HTTP/1.1 200 ");

      Headers h = upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders();
      assertThat(h.values("OpenAI-Organization")).containsExactly("org-listed");
      assertThat(h.values("X-Team")).containsExactly("red", "blue");
      for (String name : new String[] {"OpenAI-Project", "X-Unlisted", "Cookie", "X-Api-Key"}) {
        assertThat(h.get(name)).as(name).isNull();
      }
      assertThat(h.values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);

      // A listed header that Connection names is hop-by-hop for this request: it stays behind.
      assertThat(raw(gateway.port(), head + "Connection: close, X-Team\r\n\r\n" + body))
          .startsWith("HTTP/1.1 200 ");
      h = upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders();
      assertThat(h.get("X-Team")).isNull();
      assertThat(h.values("OpenAI-Organization")).containsExactly("org-listed");
    }
  }

  @Test
  void headersNeverForwardedFromACallerAreRefusedHoweverThePolicyIsBuilt() {
    // The gateway forwards the engine's allow-list, which only a policy extends; a policy built in
    // code is checked like a parsed one.
    for (String name :
        new String[] {
          "Cookie", "authorization", "X-Forwarded-For", "Content-Length", "Proxy-Foo"
        }) {
      assertThatThrownBy(
              () -> new Policy.RequestSettings("", 1024, null, 1024, null, 0, List.of(name)))
          .as(name)
          .isInstanceOf(PolicyException.class)
          .hasMessageContaining(name + "\" is never forwarded");
    }
  }

  @Test
  void aCompressedBodyReachesTheUpstreamDecodedAndAnUnreadableOneNotAtAll() throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
    try (Gateway gateway =
        Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/"), "127.0.0.1", 0)) {
      String body = TestPolicies.chat("llama-3.1-8b", "");
      java.io.ByteArrayOutputStream gz = new java.io.ByteArrayOutputStream();
      try (java.util.zip.GZIPOutputStream out = new java.util.zip.GZIPOutputStream(gz)) {
        out.write(body.getBytes(StandardCharsets.UTF_8));
      }
      byte[] compressed = gz.toByteArray();
      String answer =
          rawBytes(
              gateway.port(),
              ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  + "X-Api-Key: "
                  + ALICE_KEY
                  + "\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                  + "Content-Length: "
                  + compressed.length
                  + "\r\nConnection: close\r\n\r\n"),
              compressed);
      assertThat(answer).startsWith("HTTP/1.1 200 ");
      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(seen.getBody().utf8()).isEqualTo(body);
      assertThat(seen.getHeaders().get("Content-Encoding")).isNull();
      assertThat(seen.getHeaders().get("Content-Length"))
          .isEqualTo(Integer.toString(body.length()));

      String refused =
          rawBytes(
              gateway.port(),
              ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  + "X-Api-Key: "
                  + ALICE_KEY
                  + "\r\nContent-Type: application/json\r\nContent-Encoding: br\r\n"
                  + "Content-Length: "
                  + compressed.length
                  + "\r\nConnection: close\r\n\r\n"),
              compressed);
      assertThat(refused).startsWith("HTTP/1.1 415 ").contains("\"code\":\"unsupported_encoding\"");
      assertThat(upstream.getRequestCount()).isEqualTo(1);
    }
  }

  private static String rawBytes(int port, String head, byte[] body) throws IOException {
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(head.getBytes(StandardCharsets.ISO_8859_1));
      out.write(body);
      out.flush();
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private static String raw(int port, String request) throws IOException {
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(request.getBytes(StandardCharsets.UTF_8));
      out.flush();
      return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
  }
}
