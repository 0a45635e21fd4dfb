package dev.inferpam.examples.gateway;

import static dev.inferpam.examples.TestPolicies.ALICE_KEY;
import static dev.inferpam.examples.TestPolicies.UPSTREAM_AUTHORIZATION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.examples.TestPolicies;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
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
    upstream.enqueue(new MockResponse.Builder()
        .code(200)
        .addHeader("Connection", "X-Upstream-Hop")
        .addHeader("X-Upstream-Hop", "private to the upstream connection")
        .addHeader("Keep-Alive", "timeout=99")
        .addHeader("Proxy-Agent", "mock")
        .addHeader("X-Kept", "yes")
        .body("{}")
        .build());
    try (Gateway gateway = Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/"), "127.0.0.1", 0)) {
      String body = TestPolicies.chat("llama-3.1-8b", "");
      String answer = raw(gateway.port(), "POST /v1/chat/completions HTTP/1.1\r\n"
          + "Host: 127.0.0.1\r\n"
          + "Authorization: Bearer " + ALICE_KEY + "\r\n"
          + "Content-Type: application/json\r\n"
          + "Content-Length: " + body.length() + "\r\n"
          + "Connection: close, X-Caller-Hop\r\n"
          + "X-Caller-Hop: private to the caller connection\r\n"
          + "Keep-Alive: timeout=5\r\n"
          + "TE: trailers\r\n"
          + "Trailer: X-Checksum\r\n"
          + "Proxy-Connection: keep-alive\r\n"
          + "Accept-Encoding: br\r\n"
          + "X-Kept: yes\r\n"
          + "\r\n" + body);

      assertThat(answer).startsWith("HTTP/1.1 200 ");
      String head = answer.substring(0, answer.indexOf("\r\n\r\n")).toLowerCase();
      assertThat(head).contains("x-kept: yes").doesNotContain("x-upstream-hop")
          .doesNotContain("timeout=99").doesNotContain("proxy-agent");

      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      Headers h = seen.getHeaders();
      assertThat(h.get("X-Kept")).isEqualTo("yes");
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
    try (Gateway gateway = Gateway.start(TestPolicies.engine(r -> {}), upstream.url("/openai/"), "127.0.0.1", 0)) {
      String answer = raw(gateway.port(), "GET /v1/models?limit=5 HTTP/1.1\r\nHost: x\r\n"
          + "Authorization: Bearer " + ALICE_KEY + "\r\nConnection: close\r\n\r\n");
      assertThat(answer).startsWith("HTTP/1.1 200 ");
      assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getTarget()).isEqualTo("/openai/v1/models?limit=5");
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
    context.addServlet(new ServletHolder(new ForwardingServlet(ForwardingServlet.newClient(), upstream.url("/"))), "/");
    server.setHandler(context);
    server.start();
    try {
      String answer = raw(connector.getLocalPort(), "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      assertThat(answer).startsWith("HTTP/1.1 500 ").contains("\"code\":\"internal_error\"");
      assertThat(upstream.getRequestCount()).isZero();
    } finally {
      server.stop();
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
