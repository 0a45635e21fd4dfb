package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.CI_KEY;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.SessionRecord;
import java.io.IOException;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Path canonicalization through a real server: the raw request target is written on a socket, so
 * the server receives it exactly as given.
 */
class PamFilterPathTest {
  private static final Map<String, String> AUTH = Map.of("Authorization", "Bearer " + CI_KEY);
  private static final String PULL = "{\"model\":\"llama3\"}";

  private static JsonNode pamError(RawHttp.Response response) throws IOException {
    assertThat(response.header("content-type")).as(response.body()).startsWith("application/json");
    return TestServer.JSON.readTree(response.body()).get("error");
  }

  /** Jetty lets ambiguous URIs through (UNSAFE, decoded), so the filter is what refuses them. */
  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  class WhenJettyLetsAmbiguousUrisThrough {
    private TestServer server;

    @BeforeAll
    void start() throws Exception {
      server = new TestServer(true);
    }

    @AfterAll
    void stop() throws Exception {
      server.close();
    }

    @BeforeEach
    void reset() {
      server.seen.clear();
      server.records.clear();
      server.invocations.set(0);
    }

    private RawHttp.Response post(String target) throws IOException {
      return RawHttp.send(server.port(), "POST", target, AUTH, PULL);
    }

    private RawHttp.Response post(String target, String tag) throws IOException {
      return RawHttp.send(
          server.port(),
          "POST",
          target,
          Map.of("Authorization", "Bearer " + CI_KEY, "X-Test-Id", tag),
          PULL);
    }

    @Test
    void rawSocketRequestToAnAllowedPathReachesTheServlet() throws Exception {
      RawHttp.Response response =
          RawHttp.send(server.port(), "POST", "/v1/chat/completions", AUTH, TestPolicy.chat(""));

      assertThat(response.status()).as(response.body()).isEqualTo(200);
      assertThat(server.nextSeen().requestUri()).isEqualTo("/v1/chat/completions");
    }

    @Test
    void percentEncodedLetterIsDecodedOnceAndStillBlocked() throws Exception {
      RawHttp.Response response = post("/api/%70ull");

      assertThat(response.status()).isEqualTo(403);
      assertThat(pamError(response).get("code").asText()).isEqualTo("blocked");
      assertThat(server.invocations.get()).isZero();
    }

    @ParameterizedTest
    @ValueSource(
        strings = {
          "//api/pull",
          "/api//pull",
          "/api/./pull",
          "/x/../api/pull",
          "/api/pull;x=1",
          "/api/..;/api/pull",
          "/api%2fpull",
          "/api%2Fpull",
          "/api/%2e/pull",
          "/api/%2E%2E/api/pull",
          "/api%5cpull",
          "/api/%3Bpull",
          "/api/%2570ull",
          "/api/pull/",
          "/api\\pull"
        })
    void ambiguousPathsAreRefusedByTheFilter(String target) throws Exception {
      RawHttp.Response response = post(target);

      assertThat(response.status()).as(target + " -> " + response.body()).isEqualTo(400);
      JsonNode error = pamError(response);
      assertThat(error.get("code").asText()).isEqualTo("bad_path");
      assertThat(error.get("message").asText()).startsWith("ambiguous request path");
      assertThat(server.invocations.get()).as("servlet invocations for " + target).isZero();
      SessionRecord record = server.awaitRecord(error.get("request_id").asText());
      assertThat(record.decision().code()).isEqualTo("bad_path");
    }

    @ParameterizedTest
    @ValueSource(strings = {"/api/pull%00", "/api/pull%", "/api/pull%zz"})
    void nulAndBrokenEscapesAreRefusedByJettyBeforeAnyFilter(String target) throws Exception {
      // Jetty's URI parser throws on these in every compliance mode: a plain 400, no filter run.
      String tag = UUID.randomUUID().toString();
      RawHttp.Response response = post(target, tag);

      assertThat(response.status()).isEqualTo(400);
      assertThat(server.invocations.get()).isZero();
      assertThat(server.recordsTagged(tag)).as("the filter never saw " + target).isEmpty();
    }

    @Test
    void matchingIsCaseSensitiveSoUpperCaseIsNotAllowedRatherThanBlocked() throws Exception {
      RawHttp.Response response = post("/API/PULL");

      assertThat(response.status()).isEqualTo(403);
      assertThat(pamError(response).get("code").asText()).isEqualTo("not_allowed");
      assertThat(server.invocations.get()).isZero();
    }
  }

  /**
   * Jetty's default URI compliance: it answers the ambiguous forms itself, before any filter;
   * plain dot segments and path parameters still reach the filter raw, which refuses them.
   */
  @Nested
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  class WithJettyDefaults {
    private TestServer server;

    @BeforeAll
    void start() throws Exception {
      server = new TestServer(false);
    }

    @AfterAll
    void stop() throws Exception {
      server.close();
    }

    @BeforeEach
    void reset() {
      server.seen.clear();
      server.records.clear();
      server.invocations.set(0);
    }

    @ParameterizedTest
    @ValueSource(
        strings = {
          "/api%2fpull",
          "//api/pull",
          "/api//pull",
          "/api/%2e/pull",
          "/api/..;/api/pull",
          "/api/%2570ull",
          "/api%5cpull",
          "/api\\pull",
          "/api/pull%00"
        })
    void jettyRefusesAmbiguousUrisBeforeTheFilter(String target) throws Exception {
      String tag = UUID.randomUUID().toString();
      RawHttp.Response response =
          RawHttp.send(
              server.port(),
              "POST",
              target,
              Map.of("Authorization", "Bearer " + CI_KEY, "X-Test-Id", tag),
              PULL);

      assertThat(response.status()).as(target).isEqualTo(400);
      assertThat(server.invocations.get()).isZero();
      assertThat(server.recordsTagged(tag)).as("the filter never saw " + target).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"/x/../api/pull", "/api/./pull", "/api/pull;x=1", "/api/pull/"})
    void rawDotSegmentsAndParametersReachTheFilterWhichRefusesThem(String target) throws Exception {
      RawHttp.Response response = RawHttp.send(server.port(), "POST", target, AUTH, PULL);

      assertThat(response.status()).as(target + " -> " + response.body()).isEqualTo(400);
      assertThat(pamError(response).get("code").asText()).isEqualTo("bad_path");
      assertThat(server.invocations.get()).isZero();
    }
  }
}
