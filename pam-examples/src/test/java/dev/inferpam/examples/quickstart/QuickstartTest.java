package dev.inferpam.examples.quickstart;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.gateway.TestPolicies;
import dev.inferpam.servlet.PamContextListener;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
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
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.core.Ordered;

/**
 * The README's quickstarts run for real, and the README shows exactly their code. A snippet is
 * the regions between {@code // README <name> begin} and {@code end} of one main source file, in
 * order (imports and code); every snippet is a {@code java} code block of the README and every
 * {@code java} code block of the README is a snippet, line for line (indentation and blank lines
 * aside). Snippets are looked for in every module's main sources, so a quickstart class may live
 * in the module that ships it.
 */
class QuickstartTest {
  private static final Path ROOT = Path.of("..");
  private static final Path README = ROOT.resolve("README.md");
  private static final Path GATEWAY_POLICY =
      Path.of("src/main/resources/dev/inferpam/examples/quickstart/gateway-policy.yaml");

  /** The caller key whose SHA-256 the gateway policy holds. */
  private static final String GATEWAY_KEY = "ci-key-change-me-0000";

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
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY))
            .credentialProvider(
                () -> new Credential("Authorization", TestPolicies.UPSTREAM_AUTHORIZATION))
            .build();
    toClose.add(engine);
    return engine;
  }

  @Test
  void theOkHttpQuickstartInjectsTheUpstreamCredentialAndRefusesWhatThePolicyDenies()
      throws Exception {
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
    OkHttpClient client = closing(OkHttpQuickstart.client(engine()));
    String url = upstream.url("/v1/chat/completions").toString();

    assertThat(OkHttpQuickstart.ask(client, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 {\"ok\":true}");
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().get("Authorization"))
        .isEqualTo(TestPolicies.UPSTREAM_AUTHORIZATION);

    assertThat(
            OkHttpQuickstart.ask(
                client, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "\"logprobs\":true")))
        .startsWith("403 ")
        .contains("\"code\":\"parameter_denied\"");
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
        .startsWith("401 ")
        .contains("\"code\":\"unauthenticated\"");
  }

  @Test
  void theContextListenerBuildsTheEngineFromThePolicyFileAndFiltersTheWebApplication()
      throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        entitlements:
          - {groups: [ml-engineers], models: ["llama-3.1-*"], operations: [chat]}
        """
                .formatted(TestPolicies.sha256(ALICE_KEY)));
    ServletContextHandler context = new ServletContextHandler("/");
    context.setInitParameter(PamContextListener.POLICY_PARAMETER, policy.toString());
    context.addEventListener(new PamContextListener());
    int port = serve(context);
    OkHttpClient plain = closing(new OkHttpClient());
    String url = "http://127.0.0.1:" + port + "/v1/chat/completions";

    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 app saw no caller key");
    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("gpt-4o-mini", "")))
        .startsWith("403 ")
        .contains("\"code\":\"not_entitled\"");
  }

  @Test
  void theSpringBootRegistrationFiltersTheApplication() throws Exception {
    FilterRegistrationBean<PamFilter> registration = new PamConfiguration().pamFilter(engine());
    ServletContextHandler context = new ServletContextHandler("/");
    context.addEventListener(
        new ServletContextListener() {
          @Override
          public void contextInitialized(ServletContextEvent event) {
            try {
              registration.onStartup(
                  event.getServletContext()); // what Spring Boot's embedded container does
            } catch (ServletException e) {
              throw new IllegalStateException(e);
            }
          }
        });
    int port = serve(context);
    OkHttpClient plain = closing(new OkHttpClient());
    String url = "http://127.0.0.1:" + port + "/v1/chat/completions";

    assertThat(OkHttpQuickstart.ask(plain, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "")))
        .isEqualTo("200 app saw no caller key");
    assertThat(
            OkHttpQuickstart.ask(
                plain, url, ALICE_KEY, TestPolicies.chat("llama-3.1-8b", "\"logprobs\":true")))
        .startsWith("403 ")
        .contains("\"code\":\"parameter_denied\"");
    assertThat(registration.getOrder()).isEqualTo(Ordered.HIGHEST_PRECEDENCE);
  }

  @Test
  void theGatewayPolicyLoadsAndGrantsWhatItSaysAndNothingElse() throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(gatewayPolicy()))
            .credentialProvider(
                () -> new Credential("Authorization", "Bearer sk-upstream-from-env"))
            .build();
    toClose.add(engine);
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
    OkHttpClient client = closing(OkHttpQuickstart.client(engine));
    String url = upstream.url("/v1/chat/completions").toString();

    assertThat(OkHttpQuickstart.ask(client, url, GATEWAY_KEY, TestPolicies.chat("gpt-4o-mini", "")))
        .isEqualTo("200 {\"ok\":true}");
    assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders().get("Authorization"))
        .isEqualTo("Bearer sk-upstream-from-env");
    assertThat(OkHttpQuickstart.ask(client, url, GATEWAY_KEY, TestPolicies.chat("gpt-4o", "")))
        .startsWith("403 ")
        .contains("\"code\":\"not_entitled\"");
    assertThat(
            OkHttpQuickstart.ask(
                client, url, GATEWAY_KEY, TestPolicies.chat("gpt-4o-mini", "\"logprobs\":true")))
        .startsWith("403 ")
        .contains("\"code\":\"parameter_denied\"");
    assertThat(
            OkHttpQuickstart.ask(client, url, "another-key", TestPolicies.chat("gpt-4o-mini", "")))
        .startsWith("401 ");
    assertThat(
            OkHttpQuickstart.ask(
                client,
                upstream.url("/api/pull").toString(),
                GATEWAY_KEY,
                "{\"model\":\"llama3\"}"))
        .startsWith("403 ")
        .contains("\"code\":\"blocked\"");
    assertThat(upstream.getRequestCount()).isEqualTo(1);
  }

  @Test
  void withoutOpenAiApiKeyTheGatewayPolicyRefusesAllowedRequestsRatherThanForwardThemBare()
      throws Exception {
    // what a user gets who did not export the variable the policy names
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    gatewayPolicy()
                        .replace(
                            "from-env: OPENAI_API_KEY",
                            "from-env: INFERPAM_QUICKSTART_UNSET_VARIABLE")))
            .build();
    toClose.add(engine);
    OkHttpClient client = closing(OkHttpQuickstart.client(engine));

    assertThat(
            OkHttpQuickstart.ask(
                client,
                upstream.url("/v1/chat/completions").toString(),
                GATEWAY_KEY,
                TestPolicies.chat("gpt-4o-mini", "")))
        .startsWith("503 ")
        .contains("\"code\":\"upstream_credential_unavailable\"");
    assertThat(upstream.getRequestCount()).isZero();
  }

  @Test
  void forOllamaTheGatewayPolicyWorksWithItsUpstreamSectionLeftOut() throws Exception {
    String yaml = gatewayPolicy();
    String withoutUpstream = yaml.replaceAll("(?m)^upstream:.*\\n(  .*\\n)+", "");
    assertThat(withoutUpstream)
        .doesNotContain("upstream:")
        .doesNotContain("OPENAI_API_KEY")
        .hasSizeLessThan(yaml.length());
    PamEngine engine = PamEngine.builder().policy(Policy.parse(withoutUpstream)).build();
    toClose.add(engine);
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"ok\":true}").build());
    OkHttpClient client = closing(OkHttpQuickstart.client(engine));

    assertThat(
            OkHttpQuickstart.ask(
                client,
                upstream.url("/api/chat").toString(),
                GATEWAY_KEY,
                TestPolicies.chat("llama3.1:8b", "")))
        .isEqualTo("200 {\"ok\":true}");
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().get("Authorization"))
        .as("no credential: neither the caller's nor an upstream one")
        .isNull();
  }

  /** The quickstart's gateway policy, recording into this test's directory. */
  private String gatewayPolicy() throws IOException {
    String yaml = Files.readString(GATEWAY_POLICY);
    assertThat(yaml).contains("directory: recordings");
    return yaml.replace("directory: recordings", "directory: " + dir.resolve("recordings"));
  }

  @Test
  void theReadmeShowsTheGatewayPolicy() throws IOException {
    assertThat(codeBlocks(Files.readString(README), "yaml"))
        .contains(normalize(Files.readString(GATEWAY_POLICY)));
  }

  @Test
  void theReadmeShowsEverySnippetAndEveryJavaBlockOfTheReadmeIsASnippet() throws IOException {
    Map<String, String> snippets = snippets();
    assertThat(snippets)
        .as("snippets found")
        .containsKeys(
            "OkHttpQuickstart.java okhttp",
            "JettyQuickstart.java jetty",
            "PamContextListener.java listener",
            "PamConfiguration.java spring");
    List<String> blocks = codeBlocks(Files.readString(README), "java");
    snippets.forEach(
        (name, code) ->
            assertThat(blocks)
                .as("README java block for snippet %s:%n%s", name, code)
                .contains(code));
    for (String block : blocks) {
      assertThat(snippets.values())
          .as("a compiled snippet for README java block:%n%s", block)
          .contains(block);
    }
  }

  /**
   * Every snippet in the main sources of the repository's modules, by file name and snippet name:
   * the file's regions of that name, in order, joined.
   */
  private static Map<String, String> snippets() throws IOException {
    Map<String, String> snippets = new TreeMap<>();
    List<Path> sourceRoots;
    try (var modules = Files.list(ROOT)) {
      sourceRoots =
          modules.map(m -> m.resolve("src/main/java")).filter(Files::isDirectory).sorted().toList();
    }
    for (Path root : sourceRoots) {
      List<Path> sources;
      try (var files = Files.walk(root)) {
        sources = files.filter(f -> f.toString().endsWith(".java")).sorted().toList();
      }
      for (Path source : sources) {
        regions(Files.readAllLines(source))
            .forEach(
                (name, code) -> {
                  String key = source.getFileName() + " " + name;
                  assertThat(snippets).as("snippet %s defined twice", key).doesNotContainKey(key);
                  snippets.put(key, code);
                });
      }
    }
    return snippets;
  }

  /** The marked regions of a source: each name's regions joined in order, then normalized. */
  private static Map<String, String> regions(List<String> lines) {
    Map<String, StringBuilder> out = new LinkedHashMap<>();
    String current = null;
    for (String line : lines) {
      String t = line.strip();
      if (t.startsWith("// README ") && t.endsWith(" begin")) {
        assertThat(current).as("README region opened inside region %s", current).isNull();
        current = t.substring("// README ".length(), t.length() - " begin".length());
      } else if (t.startsWith("// README ") && t.endsWith(" end")) {
        assertThat(t).isEqualTo("// README " + current + " end");
        current = null;
      } else if (current != null) {
        out.computeIfAbsent(current, k -> new StringBuilder()).append(line).append('\n');
      }
    }
    assertThat(current).as("README region left open").isNull();
    Map<String, String> normalized = new LinkedHashMap<>();
    out.forEach((name, code) -> normalized.put(name, normalize(code.toString())));
    return normalized;
  }

  /** The fenced code blocks of a Markdown text whose info string is {@code language}, normalized. */
  static List<String> codeBlocks(String markdown, String language) {
    return codeBlocksVerbatim(markdown, language).stream().map(QuickstartTest::normalize).toList();
  }

  /** The fenced code blocks of a Markdown text whose info string is {@code language}, as written. */
  static List<String> codeBlocksVerbatim(String markdown, String language) {
    List<String> blocks = new ArrayList<>();
    StringBuilder current = null;
    boolean wanted = false;
    for (String line : markdown.split("\n", -1)) {
      String t = line.strip();
      if (current == null && t.startsWith("```")) {
        current = new StringBuilder();
        wanted = t.substring(3).strip().equals(language);
      } else if (current != null && t.equals("```")) {
        if (wanted) blocks.add(current.toString());
        current = null;
      } else if (current != null) {
        current.append(line).append('\n');
      }
    }
    return blocks;
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
    context.addServlet(
        new ServletHolder(
            new HttpServlet() {
              @Override
              protected void service(HttpServletRequest req, HttpServletResponse resp)
                  throws IOException {
                req.getInputStream().readAllBytes();
                resp.getOutputStream()
                    .write(
                        ("app saw "
                                + (req.getHeader("Authorization") == null
                                    ? "no caller key"
                                    : "a key"))
                            .getBytes(StandardCharsets.UTF_8));
              }
            }),
        "/*");
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
