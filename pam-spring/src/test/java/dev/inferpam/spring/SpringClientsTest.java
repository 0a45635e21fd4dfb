package dev.inferpam.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.Policies;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.client.JdkClientHttpRequestFactory;
import org.springframework.http.client.reactive.JdkClientHttpConnector;
import org.springframework.web.client.HttpClientErrorException;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;
import org.springframework.web.reactive.function.client.WebClientResponseException;
import reactor.core.publisher.Flux;

/**
 * Spring's clients through the adapters, against a model server on 127.0.0.1: {@code RestClient}
 * with {@link PamClientHttpRequestInterceptor}, {@code WebClient} with {@link
 * PamExchangeFilterFunction}; what the caller reads, what the server received, what was recorded.
 */
class SpringClientsTest {
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
          .credentialProvider(
              () -> new dev.inferpam.api.Credential("Authorization", "Bearer " + UPSTREAM))
          .build();

  @AfterEach
  void close() {
    engine.close();
    server.close();
  }

  RestClient restClient() {
    return RestClient.builder()
        .requestFactory(
            new JdkClientHttpRequestFactory(
                HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()))
        .requestInterceptor(PamClientHttpRequestInterceptor.of(engine))
        .baseUrl(server.url("/").toString())
        .defaultHeader("Authorization", "Bearer " + ALICE)
        .build();
  }

  WebClient webClient() {
    return WebClient.builder()
        .clientConnector(new JdkClientHttpConnector())
        .filter(PamExchangeFilterFunction.of(engine))
        .baseUrl(server.url("/").toString())
        .defaultHeader("Authorization", "Bearer " + ALICE)
        .build();
  }

  /** A stream whose email and card number are split across events. */
  static ModelAnswer splitStream() {
    return ModelAnswer.sse(
        Completions.sseDelta("Mail jane.doe@exa"),
        Completions.sseDelta("mple.com and charge 4111 1111 "),
        Completions.sseDelta("1111 1111 today, then pay with card"),
        Completions.SSE_DONE);
  }

  /** The concatenated {@code delta.content} of the events in {@code text}. */
  static String deltas(String text) {
    StringBuilder out = new StringBuilder();
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("\"content\":\"([^\"]*)\"").matcher(text);
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
  void restClientCompletionIsMaskedTheUpstreamGetsItsOwnKeyAndTheExchangeIsRecorded()
      throws Exception {
    server.enqueue(ModelAnswer.json(Completions.chat("Mail " + EMAIL + " or " + CARD + ".")));
    String body =
        restClient()
            .post()
            .uri("/v1/chat/completions")
            .contentType(MediaType.APPLICATION_JSON)
            .body(Policies.chat("llama-3.1-8b", ""))
            .retrieve()
            .body(String.class);
    assertThat(body).contains("Mail [EMAIL] or [CREDIT_CARD].").doesNotContain(EMAIL, "4111");
    assertUpstreamSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("alice");
    assertThat(r.response().complete()).isTrue();
    assertThat(r.response().masked()).containsEntry("email", 1).containsEntry("credit-card", 1);
  }

  @Test
  void restClientStreamWithValuesSplitAcrossEventsArrivesMaskedToTheLastWord() throws Exception {
    server.enqueue(splitStream());
    String body =
        restClient()
            .post()
            .uri("/v1/chat/completions")
            .contentType(MediaType.APPLICATION_JSON)
            .body(Policies.chat("llama-3.1-8b", "\"stream\":true"))
            .retrieve()
            .body(String.class);
    assertThat(body).endsWith("data: [DONE]\n\n").doesNotContain("jane.doe", "4111");
    assertThat(deltas(body))
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertUpstreamSawOnlyTheUpstreamKey();
    assertThat(onlyRecord().response().complete()).isTrue();
  }

  @Test
  void restClientDenialIsThePolicysErrorAndNothingIsSent() {
    assertThatThrownBy(
            () ->
                restClient()
                    .post()
                    .uri("/v1/chat/completions")
                    .contentType(MediaType.APPLICATION_JSON)
                    .body(Policies.chat("llama-3.1-8b", "\"logprobs\":true"))
                    .retrieve()
                    .body(String.class))
        .isInstanceOfSatisfying(
            HttpClientErrorException.Forbidden.class,
            e ->
                assertThat(e.getResponseBodyAsString())
                    .contains("parameter \\\"logprobs\\\" is denied by policy")
                    .contains("\"code\":\"parameter_denied\""));
    assertThat(server.requestCount()).isZero();
    assertThat(onlyRecord().decision().outcome()).isEqualTo("deny");
  }

  @Test
  void webClientStreamIsMaskedAsItFlowsAndRecordedComplete() throws Exception {
    server.enqueue(splitStream());
    List<String> events =
        webClient()
            .post()
            .uri("/v1/chat/completions")
            .contentType(MediaType.APPLICATION_JSON)
            .bodyValue(Policies.chat("llama-3.1-8b", "\"stream\":true"))
            .retrieve()
            .bodyToFlux(String.class)
            .collectList()
            .block(Duration.ofSeconds(10));
    assertThat(events).last().isEqualTo("[DONE]");
    assertThat(deltas(String.join("\n", events)))
        .isEqualTo("Mail [EMAIL] and charge [CREDIT_CARD] today, then pay with card");
    assertUpstreamSawOnlyTheUpstreamKey();
    SessionRecord r = onlyRecord();
    assertThat(r.response().complete()).isTrue();
    assertThat(r.response().streamed()).isTrue();
  }

  @Test
  void webClientEncodesObjectsAndTheEngineDecidesOnTheBytesSent() throws Exception {
    server.enqueue(ModelAnswer.json(Completions.chat("Reach " + EMAIL)));
    record Message(String role, String content) {}
    record Chat(String model, List<Message> messages) {}
    String body =
        webClient()
            .post()
            .uri("/v1/chat/completions")
            .bodyValue(new Chat("llama-3.1-8b", List.of(new Message("user", "hi"))))
            .retrieve()
            .bodyToMono(String.class)
            .block(Duration.ofSeconds(10));
    assertThat(body).contains("Reach [EMAIL]");
    ModelRequest got = server.takeRequest();
    assertThat(got.header("Content-Type")).startsWith("application/json");
    assertThat(got.bodyText())
        .isEqualTo(
            "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(onlyRecord().request().body()).isEqualTo(got.bodyText());
  }

  @Test
  void webClientDenialIsThePolicysErrorAndNothingIsSent() {
    assertThatThrownBy(
            () ->
                webClient()
                    .post()
                    .uri("/v1/chat/completions")
                    .contentType(MediaType.APPLICATION_JSON)
                    .bodyValue(Policies.chat("llama-3.1-8b", "\"logprobs\":true"))
                    .retrieve()
                    .bodyToMono(String.class)
                    .block(Duration.ofSeconds(10)))
        .isInstanceOfSatisfying(
            WebClientResponseException.class,
            e -> {
              assertThat(e.getStatusCode()).isEqualTo(HttpStatus.FORBIDDEN);
              assertThat(e.getResponseBodyAsString()).contains("\"code\":\"parameter_denied\"");
            });
    assertThat(server.requestCount()).isZero();
  }

  @Test
  void aStreamTheCallerCancelsIsRecordedIncomplete() throws Exception {
    java.util.concurrent.CountDownLatch gate = new java.util.concurrent.CountDownLatch(1);
    server.enqueue(splitStream().holdBefore(2, gate));
    try {
      Flux<String> events =
          webClient()
              .post()
              .uri("/v1/chat/completions")
              .contentType(MediaType.APPLICATION_JSON)
              .bodyValue(Policies.chat("llama-3.1-8b", "\"stream\":true"))
              .retrieve()
              .bodyToFlux(String.class);
      String first = events.blockFirst(Duration.ofSeconds(10)); // then cancels
      assertThat(first).doesNotContain("jane.doe");
      SessionRecord r = onlyRecord();
      assertThat(r.response().complete()).isFalse();
    } finally {
      gate.countDown();
    }
    assertThat(server.requestCount()).isEqualTo(1);
  }

  @Test
  void aWebClientBodyOverTheLimitIsRefused413WithoutBeingSent() {
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
      WebClient limited =
          WebClient.builder()
              .clientConnector(new JdkClientHttpConnector())
              .filter(PamExchangeFilterFunction.of(small))
              .baseUrl(server.url("/").toString())
              .defaultHeader("Authorization", "Bearer " + ALICE)
              .build();
      assertThatThrownBy(
              () ->
                  limited
                      .post()
                      .uri("/v1/chat/completions")
                      .contentType(MediaType.APPLICATION_JSON)
                      .bodyValue(Policies.chat("llama-3.1-8b", "x".repeat(100_000), ""))
                      .retrieve()
                      .bodyToMono(String.class)
                      .block(Duration.ofSeconds(10)))
          .isInstanceOfSatisfying(
              WebClientResponseException.class,
              e -> {
                assertThat(e.getStatusCode().value()).isEqualTo(413);
                assertThat(e.getResponseBodyAsString()).contains("\"code\":\"body_too_large\"");
              });
      assertThat(server.requestCount()).isZero();
    }
  }
}
