package dev.inferpam.examples.quickstart;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.gateway.TestPolicies;
import dev.inferpam.servlet.PamContextListener;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.OkHttpClient;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's quickstarts run for real, and the README shows exactly their code: every region
 * between {@code // README <name> begin} and {@code end} in the quickstart sources (and in
 * pam-servlet's {@link PamContextListener}, which the README shows) must appear, line for line
 * (indentation aside), in a code block of the README.
 */
class QuickstartTest {
  private static final Path SOURCES = Path.of("src/main/java/dev/inferpam/examples/quickstart");
  private static final Path LISTENER_SOURCE =
      Path.of("../pam-servlet/src/main/java/dev/inferpam/servlet/PamContextListener.java");
  private static final Path README = Path.of("../README.md");
  private static final Path GATEWAY_POLICY =
      Path.of("src/main/resources/dev/inferpam/examples/quickstart/gateway-policy.yaml");

  @StartStop final MockWebServer upstream = new MockWebServer();
  @TempDir Path dir;
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) toClose.get(i).close();
  }

  /** {@code client}, its threads shut down after the test. */
  private OkHttpClient closing(OkHttpClient client) {
    toClose.add(() -> client.dispatcher().executorService().shutdown());
    return client;
  }

  private PamEngine engine() {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(TestPolicies.POLICY))
        .credentialProvider(() -> new Credential("Authorization", TestPolicies.UPSTREAM_AUTHORIZATION)).build();
    toClose.add(engine);
    return engine;
  }

  @Test
  void theOkHttpQuickstartInjectsTheUpstreamCredentialAndRefusesWhatThePolicyDenies() throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
    OkHttpClient client = closing(OkHttpQuickstart.client(engine()));
    String url = upstream.url("/v1/chat/completions").toString();

    assertThat(OkHttpQuickstart.ask(client, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 {\"ok\":true}");
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(TestPolicies.UPSTREAM_AUTHORIZATION);

    assertThat(OkHttpQuickstart.ask(client, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "\"logprobs\":true")))
        .startsWith("403 ").contains("\"code\":\"parameter_denied\"");
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  @Test
  void theJettyQuickstartFiltersEveryRequest() throws Exception {
    ServletContextHandler context = JettyQuickstart.context(engine());
    int port = serve(context);
    OkHttpClient plain = closing(new OkHttpClient());
    String url = "http://127.0.0.1:" + port + "/v1/chat/completions";

    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 app saw no caller key");
    assertThat(OkHttpQuickstart.ask(plain, url, "not-a-key", TestPolicies.chat("llama-3.1-8b", "")))
        .startsWith("401 ").contains("\"code\":\"unauthenticated\"");
  }

  @Test
  void theContextListenerBuildsTheEngineFromThePolicyFileAndFiltersTheWebApplication() throws Exception {
    Path policy = Files.writeString(dir.resolve("policy.yaml"), """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        entitlements:
          - {groups: [ml-engineers], models: ["llama-3.1-*"], operations: [chat]}
        """.formatted(TestPolicies.sha256(ALICE_KEY)));
    ServletContextHandler context = new ServletContextHandler("/");
    context.setInitParameter(PamContextListener.POLICY_PARAMETER, policy.toString());
    context.addEventListener(new PamContextListener());
    int port = serve(context);
    OkHttpClient plain = closing(new OkHttpClient());
    String url = "http://127.0.0.1:" + port + "/v1/chat/completions";

    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 app saw no caller key");
    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("gpt-4o-mini", "")))
        .startsWith("403 ").contains("\"code\":\"not_entitled\"");
  }

  @Test
  void theGatewayPolicyLoadsAndGrantsWhatItSaysAndNothingElse() throws Exception {
    String yaml = Files.readString(GATEWAY_POLICY)
        .replace("/var/lib/inferpam/recordings", dir.resolve("recordings").toString());
    PamEngine engine = PamEngine.builder().policy(Policy.parse(yaml))
        .credentialProvider(() -> new Credential("Authorization", "Bearer sk-upstream-from-env")).build();
    toClose.add(engine);
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
    OkHttpClient client = closing(OkHttpQuickstart.client(engine));
    String url = upstream.url("/v1/chat/completions").toString();
    String key = "ci-key-change-me-0000"; // the key whose SHA-256 the policy holds

    assertThat(OkHttpQuickstart.ask(client, url, key, TestPolicies.chat("gpt-4o-mini", ""))).isEqualTo("200 {\"ok\":true}");
    assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders().get("Authorization"))
        .isEqualTo("Bearer sk-upstream-from-env");
    assertThat(OkHttpQuickstart.ask(client, url, key, TestPolicies.chat("gpt-4o", "")))
        .startsWith("403 ").contains("\"code\":\"not_entitled\"");
    assertThat(OkHttpQuickstart.ask(client, url, key, TestPolicies.chat("gpt-4o-mini", "\"logprobs\":true")))
        .startsWith("403 ").contains("\"code\":\"parameter_denied\"");
    assertThat(OkHttpQuickstart.ask(client, url, "another-key", TestPolicies.chat("gpt-4o-mini", "")))
        .startsWith("401 ");
    assertThat(OkHttpQuickstart.ask(client, upstream.url("/api/pull").toString(), key, "{\"model\":\"llama3\"}"))
        .startsWith("403 ").contains("\"code\":\"blocked\"");
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  @Test
  void theReadmeShowsTheGatewayPolicy() throws IOException {
    assertThat(normalize(Files.readString(README))).contains(normalize(Files.readString(GATEWAY_POLICY)));
  }

  @Test
  void theReadmeShowsExactlyTheQuickstartCode() throws IOException {
    String readme = normalize(Files.readString(README));
    List<String> regions = new ArrayList<>();
    try (var files = Files.list(SOURCES)) {
      for (Path source : files.sorted().toList()) regions.addAll(regions(Files.readAllLines(source)));
    }
    regions.addAll(regions(Files.readAllLines(LISTENER_SOURCE)));
    assertThat(regions).hasSizeGreaterThanOrEqualTo(4);
    for (String region : regions) {
      assertThat(readme).as("README code for:%n%s", region).contains(region);
    }
  }

  /** The marked regions of a source, each with its common indentation removed. */
  private static List<String> regions(List<String> lines) {
    List<String> out = new ArrayList<>();
    List<String> current = null;
    for (String line : lines) {
      String t = line.strip();
      if (t.startsWith("// README ") && t.endsWith(" begin")) {
        current = new ArrayList<>();
      } else if (t.startsWith("// README ") && t.endsWith(" end")) {
        out.add(normalize(String.join("\n", current)));
        current = null;
      } else if (current != null) {
        current.add(line);
      }
    }
    return out;
  }

  /** Lines stripped of their indentation, blank lines dropped: what must match is the code. */
  private static String normalize(String text) {
    StringBuilder b = new StringBuilder();
    for (String line : text.split("\n")) {
      if (!line.isBlank()) b.append(line.strip()).append('\n');
    }
    return b.toString();
  }

  private int serve(ServletContextHandler context) throws Exception {
    context.addServlet(new ServletHolder(new HttpServlet() {
      @Override
      protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        req.getInputStream().readAllBytes();
        resp.getOutputStream().write(("app saw " + (req.getHeader("Authorization") == null ? "no caller key" : "a key"))
            .getBytes(StandardCharsets.UTF_8));
      }
    }), "/*");
    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    toClose.add(server::stop);
    return connector.getLocalPort();
  }
}
