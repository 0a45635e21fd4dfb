package dev.inferpam.boot4tests;

import static dev.inferpam.boot4tests.Boot4App.ALICE;
import static dev.inferpam.boot4tests.Boot4App.EMAIL;
import static dev.inferpam.boot4tests.Boot4App.SAM;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Import;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code inferpam.server.enabled=true} in a Spring MVC application on Boot 4 (Tomcat 11): the
 * filter in front of its endpoints, and the reviewer and quota endpoints, from the one property.
 */
class InferpamServerBoot4Test {
  @TempDir Path dir;
  ConfigurableApplicationContext app;
  final HttpClient http = HttpClient.newHttpClient();

  /** A model server written as a Spring MVC controller. */
  @RestController
  static class ModelController {
    @PostMapping(value = "/v1/chat/completions", produces = "application/json")
    String chat() {
      return Completions.chat("Write to " + EMAIL + " today");
    }
  }

  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  @Import(ModelController.class)
  static class Server {}

  @BeforeEach
  void start() throws Exception {
    app =
        new SpringApplicationBuilder(Server.class)
            .web(WebApplicationType.SERVLET)
            .properties(
                "server.address=127.0.0.1",
                "server.port=0",
                "spring.ai.openai.api-key=unused",
                "inferpam.policy=file:" + Boot4App.policy(dir),
                "inferpam.server.enabled=true")
            .run();
  }

  @AfterEach
  void stop() {
    if (app != null) app.close();
  }

  HttpResponse<String> send(String method, String path, String key, String body) throws Exception {
    int port = ((WebServerApplicationContext) app).getWebServer().getPort();
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .header("Content-Type", "application/json")
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body));
    if (key != null) b.header("Authorization", "Bearer " + key);
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void theApplicationsAnswersAreMaskedAndItsEndpointsBehindTheFilter() throws Exception {
    HttpResponse<String> ok =
        send("POST", "/v1/chat/completions", ALICE, Policies.chat("llama-3.1-8b", ""));
    assertThat(ok.statusCode()).isEqualTo(200);
    assertThat(ok.body()).contains("Write to [EMAIL] today").doesNotContain(EMAIL);
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(Boot4App.recordings(dir))
                    .contains("\"subject\":\"alice\"", "\"complete\":true")
                    .doesNotContain(EMAIL));

    HttpResponse<String> anonymous =
        send("POST", "/v1/chat/completions", null, Policies.chat("llama-3.1-8b", ""));
    assertThat(anonymous.statusCode()).isEqualTo(401);
    assertThat(anonymous.body()).contains("\"code\":\"unauthenticated\"");

    HttpResponse<String> otherModel =
        send("POST", "/v1/chat/completions", ALICE, Policies.chat("gpt-4o", ""));
    assertThat(otherModel.statusCode()).isEqualTo(403);

    // the endpoints' paths let nothing else through unfiltered, however spelled
    for (String path :
        new String[] {
          "/pam/approvals/../../v1/chat/completions",
          "/pam/quota/../v1/chat/completions",
          "/pam/quota;x=1/../v1/chat/completions",
          "/pam/approvals/%2e%2e/%2e%2e/v1/chat/completions"
        }) {
      HttpResponse<String> r = send("POST", path, null, Policies.chat("llama-3.1-8b", ""));
      assertThat(r.statusCode()).as(path).isNotEqualTo(200);
      assertThat(r.body()).as(path).doesNotContain("Write to");
    }
  }

  @Test
  void theReviewerAndQuotaEndpointsAnswer() throws Exception {
    HttpResponse<String> list = send("GET", "/pam/approvals", SAM, null);
    assertThat(list.statusCode()).isEqualTo(200);
    assertThat(list.body()).isEqualTo("{\"approvals\":[]}");
    assertThat(send("GET", "/pam/approvals", ALICE, null).statusCode()).isEqualTo(403);
    assertThat(send("GET", "/pam/quota", ALICE, null).statusCode()).isEqualTo(200);
  }
}
