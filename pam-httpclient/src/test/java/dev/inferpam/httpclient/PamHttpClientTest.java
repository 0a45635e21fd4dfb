package dev.inferpam.httpclient;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.Policies;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The JDK's HttpClient wrapped by {@link PamHttpClient}, against a model server on 127.0.0.1:
 * what the caller's own body handlers get, what the server received, what was recorded.
 */
class PamHttpClientTest {
  static final String ALICE = "alice-key-0001";
  static final String UPSTREAM = "upstream-secret-0123456789";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  final FakeModelServer server = FakeModelServer.start();
  final InMemoryRecorder recorder = new InMemoryRecorder();
  final PamEngine engine =
      PamEngine.builder()
          .policy(Policy.parse(Policies.clientAdapterPolicy(ALICE)))
          .recorder(recorder)
          .credentialProvider(() -> new Credential("Authorization", "Bearer " + UPSTREAM))
          .build();
  final HttpClient client = PamHttpClient.wrap(HttpClient.newHttpClient(), engine);

  @AfterEach
  void close() {
    engine.close();
    server.close();
  }

  HttpRequest chat(String extra) {
    return HttpRequest.newBuilder(URI.create(server.url("/v1/chat/completions").toString()))
        .header("Authorization", "Bearer " + ALICE)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(Policies.chat("llama-3.1-8b", extra)))
        .build();
  }

  static ModelAnswer splitStream() {
    return ModelAnswer.sse(
        Completions.sseDelta("Mail jane.doe@exa"),
        Completions.sseDelta("mple.com and charge 4111 1111 "),
        Completions.sseDelta("1111 1111 today, then pay with card"),
        Completions.SSE_DONE);
  }

  static String deltas(String text) {
    StringBuilder out = new StringBuilder();
    Matcher m = Pattern.compile("\"content\":\"([^\"]*)\"").matcher(text);
    while (m.find()) out.append(m.group(1));
    return out.toString();
  }

  SessionRecord onlyRecord() {
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(recorder.records()).hasSize(1));
    return recorder.records().get(0);
  }

  void assertUpstreamSawOnlyTheUpstreamKey() throws InterruptedException {
    ModelRequest got = server.takeRequest();
    assertThat(got.header("Authorization")).isEqualTo("Bearer " + UPSTREAM);
    assertThat(got.headerText() + got.bodyText()).doesNotContain(ALICE);
  }

  @Test
  void aCompletionIsMaskedTheResponseShowsTheCallersRequestAndItIsRecorded() throws Exception {
    server.enqueue(ModelAnswer.json(Completions.chat("Mail " + EMAIL + " or " + CARD + ".")));
    HttpResponse<String> r = client.send(chat(""), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.body()).contains("Mail [EMAIL] or [CREDIT_CARD].").doesNotContain(EMAIL, "4111");
    assertThat(r.headers().firstValue("content-length")).isEmpty(); // masking changes the length
    assertThat(r.request().headers().firstValue("Authorization")).contains("Bearer " + ALICE);
    assertUpstreamSawOnlyTheUpstreamKey();
    SessionRecord rec = onlyRecord();
    assertThat(rec.principal().subject()).isEqualTo("alice");
    assertThat(rec.response().complete()).isTrue();
    assertThat(rec.response().masked()).containsEntry("email", 1).containsEntry("credit-card", 1);
  }

  @Test
  void aStreamReadLineByLineIsMaskedToTheLastWord() throws Exception {
    server.enqueue(splitStream());
    HttpResponse<java.util.stream.Stream<String>> r =
        client.send(chat("\"stream\":true"), HttpResponse.BodyHandlers.ofLines());
    String lines;
    try (java.util.stream.Stream<String> s = r.body()) {
      lines = s.collect(Collectors.joining("\n"));
    }
    assertThat(lines).doesNotContain("jane.doe", "4111").contains("data: [DONE]");
    assertThat(deltas(lines))
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertUpstreamSawOnlyTheUpstreamKey();
    assertThat(onlyRecord().response().complete()).isTrue();
  }

  @Test
  void aStreamReadAsAnInputStreamAndAsynchronouslyIsMaskedToo() throws Exception {
    server.enqueue(splitStream());
    HttpResponse<InputStream> r =
        client
            .sendAsync(chat("\"stream\":true"), HttpResponse.BodyHandlers.ofInputStream())
            .get(10, TimeUnit.SECONDS);
    String text;
    try (InputStream in = r.body()) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    assertThat(deltas(text))
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertThat(onlyRecord().response().streamed()).isTrue();
  }

  @Test
  void aDenialIsThePolicysErrorThroughTheCallersHandlerAndNothingIsSent() throws Exception {
    HttpResponse<String> r =
        client.send(chat("\"logprobs\":true"), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(403);
    assertThat(r.headers().firstValue("Content-Type")).contains("application/json");
    assertThat(r.body())
        .contains("\"code\":\"parameter_denied\"")
        .contains("parameter \\\"logprobs\\\" is denied by policy");
    HttpResponse<String> async =
        client
            .sendAsync(chat("\"logprobs\":true"), HttpResponse.BodyHandlers.ofString())
            .get(10, TimeUnit.SECONDS);
    assertThat(async.statusCode()).isEqualTo(403);
    assertThat(server.requestCount()).isZero();
    List<SessionRecord> records = recorder.records();
    assertThat(records).extracting(x -> x.decision().outcome()).containsExactly("deny", "deny");
  }

  @Test
  void aCallerWithoutAKeyIsRefused401() throws Exception {
    HttpRequest anonymous =
        HttpRequest.newBuilder(URI.create(server.url("/v1/chat/completions").toString()))
            .POST(HttpRequest.BodyPublishers.ofString(Policies.chat("llama-3.1-8b", "")))
            .build();
    HttpResponse<String> r = client.send(anonymous, HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(server.requestCount()).isZero();
  }

  @Test
  void aBodyOverTheLimitIsRefused413WithoutBeingHeldOrSent() throws Exception {
    try (PamEngine small =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    """
                    version: 1
                    identity:
                      api-keys:
                    """
                        + Policies.apiKey("alice", ALICE, "ml")
                        + """
                    entitlements:
                      - groups: [ml]
                        models: ["llama-*"]
                        operations: [chat]
                    request:
                      max-body: 1KiB
                    """))
            .recorder(new InMemoryRecorder())
            .build()) {
      HttpClient limited = PamHttpClient.wrap(HttpClient.newHttpClient(), small);
      HttpRequest big =
          HttpRequest.newBuilder(URI.create(server.url("/v1/chat/completions").toString()))
              .header("Authorization", "Bearer " + ALICE)
              .POST(
                  HttpRequest.BodyPublishers.ofString(
                      Policies.chat("llama-3.1-8b", "x".repeat(100_000), "")))
              .build();
      HttpResponse<String> r = limited.send(big, HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(413);
      assertThat(r.body()).contains("\"code\":\"body_too_large\"");
      assertThat(server.requestCount()).isZero();
    }
  }
}
