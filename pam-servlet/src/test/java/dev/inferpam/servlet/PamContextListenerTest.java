package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.CI_KEY;
import static dev.inferpam.servlet.TestPolicy.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PolicyException;
import dev.inferpam.core.Recordings;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link PamContextListener} in a web application on a real Jetty: the policy named by the
 * context parameter guards every request, and stopping the application closes the engine.
 */
class PamContextListenerTest {
  @TempDir Path dir;
  private final OkHttpClient client = new OkHttpClient();
  private Server server;

  @AfterEach
  void stop() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (server != null) server.stop();
  }

  @Test
  void guardsTheApplicationWithThePolicyFileAndFlushesTheRecordingWhenTheApplicationStops()
      throws Exception {
    Path recordings = dir.resolve("recordings");
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            """
        version: 1
        identity:
          api-keys:
            - {name: nightly-ci, sha256: %s, groups: [ci]}
        entitlements:
          - {groups: [ci], models: ["llama-3.1-*"], operations: [chat]}
        recording:
          directory: "%s"
          durability: async
        """
                .formatted(
                    sha256(CI_KEY), recordings.toAbsolutePath().toString().replace("\\", "\\\\")));
    int port = start(policy.toString());
    String url = "http://127.0.0.1:" + port + "/v1/chat/completions";

    assertThat(post(url, CI_KEY, "llama-3.1-8b")).isEqualTo("200 app saw no caller key");
    assertThat(post(url, CI_KEY, "gpt-4o"))
        .startsWith("403 ")
        .contains("\"code\":\"not_entitled\"");
    assertThat(post(url, "not-a-key", "llama-3.1-8b"))
        .startsWith("401 ")
        .contains("\"code\":\"unauthenticated\"");

    server.stop(); // contextDestroyed: the engine is closed, every queued record written
    server = null;
    Recordings recording = Recordings.open(recordings);
    assertThat(recording.verify().ok()).isTrue();
    assertThat(recording.list(null, null))
        .extracting(e -> e.record().response().status())
        .containsExactly(200, 403, 401);
  }

  @Test
  void aPolicyThatCannotBeLoadedKeepsTheApplicationFromStarting() throws Exception {
    Path policy =
        Files.writeString(
            dir.resolve("policy.yaml"),
            "version: 1\nentitlements: [{groups: [ci], models: [\"x[\"]}]\n");
    Server unstarted = server(policy.toString());
    unstarted.setStopAtShutdown(false);
    try {
      assertThatThrownBy(unstarted::start)
          .isInstanceOf(PolicyException.class)
          .hasMessageStartingWith("entitlements[0].models[0]: invalid glob \"x[\"");
      assertThat(unstarted.isStarted()).isFalse();
    } finally {
      unstarted.stop();
    }
  }

  @Test
  void aMissingPolicyParameterIsNamedNotANullPointer() throws Exception {
    Server unstarted = server(null);
    unstarted.setStopAtShutdown(false);
    try {
      assertThatThrownBy(unstarted::start)
          .isInstanceOf(IllegalStateException.class)
          .hasMessage(
              "inferpam: context parameter inferpam.policy (the policy file's path) is not set;"
                  + " declare it in web.xml");
      assertThat(unstarted.isStarted()).isFalse();
    } finally {
      unstarted.stop();
    }
  }

  private int start(String policyFile) throws Exception {
    server = server(policyFile);
    server.start();
    return ((ServerConnector) server.getConnectors()[0]).getLocalPort();
  }

  private static Server server(String policyFile) {
    ServletContextHandler context = new ServletContextHandler("/");
    if (policyFile != null)
      context.setInitParameter(PamContextListener.POLICY_PARAMETER, policyFile);
    context.addEventListener(new PamContextListener());
    context.addServlet(
        new ServletHolder(
            new HttpServlet() {
              private static final long serialVersionUID = 1L;

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
    return server;
  }

  private String post(String url, String key, String model) throws IOException {
    Request request =
        new Request.Builder()
            .url(url)
            .header("Authorization", "Bearer " + key)
            .post(
                RequestBody.create(
                    "{\"model\":\""
                        + model
                        + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                    MediaType.get("application/json")))
            .build();
    try (Response response = client.newCall(request).execute()) {
      return response.code() + " " + response.body().string();
    }
  }
}
