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
import java.util.function.Supplier;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.http.MediaType;
import org.springframework.http.client.JdkClientHttpRequestFactory;
import org.springframework.http.client.reactive.JdkClientHttpConnector;
import org.springframework.web.client.HttpClientErrorException;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.ExchangeStrategies;
import org.springframework.web.reactive.function.client.WebClient;
import org.springframework.web.reactive.function.client.WebClientResponseException;

/**
 * The adapters' {@code withTokenSupplier}: calls to a server that takes no key (Ollama's {@code
 * /api/chat}, as Spring AI sends them: no credential) are made as the application, identified by
 * its own key, which never reaches the server; a call that brings its own credential keeps it.
 */
class ApplicationTokenTest {
  static final String APP = "app-service-key-0003";
  static final String ALICE = "alice-key-0001";
  static final String EMAIL = "jane.doe@example.com";
  static final String CARD = "4111 1111 1111 1111"; // Luhn-valid

  final FakeModelServer server = FakeModelServer.start();
  final InMemoryRecorder recorder = new InMemoryRecorder();
  // no upstream credential: Ollama takes none
  final PamEngine engine =
      PamEngine.builder()
          .policy(
              Policy.parse(
                  """
                  version: 1
                  identity:
                    api-keys:
                  """
                      + Policies.apiKey("app", APP, "ml")
                      + Policies.apiKey("alice", ALICE, "ml")
                      + """
                  entitlements:
                    - groups: [ml]
                      models: ["llama*"]
                      operations: [chat]
                  masking:
                    detectors: [email, credit-card]
                  recording:
                    directory: ./never-opened-a-recorder-is-given
                    durability: batched
                  """))
          .recorder(recorder)
          .build();

  @AfterEach
  void close() {
    engine.close();
    server.close();
  }

  RestClient restClient(PamClientHttpRequestInterceptor interceptor) {
    return RestClient.builder()
        .requestFactory(
            new JdkClientHttpRequestFactory(
                HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()))
        .requestInterceptor(interceptor)
        .baseUrl(server.url("/").toString())
        .build();
  }

  WebClient webClient(Supplier<String> token) {
    return WebClient.builder()
        .clientConnector(new JdkClientHttpConnector())
        .filter(
            PamExchangeFilterFunction.withTokenSupplier(
                engine, ExchangeStrategies.withDefaults(), token))
        .baseUrl(server.url("/").toString())
        .build();
  }

  static String ollamaChat(boolean stream) {
    return Policies.chat("llama3.1", "\"stream\":" + stream);
  }

  SessionRecord onlyRecord() {
    Awaitility.await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(recorder.records()).hasSize(1));
    return recorder.records().get(0);
  }

  void assertTheServerSawNoCredential() throws InterruptedException {
    ModelRequest got = server.takeRequest();
    assertThat(got.header("Authorization")).isNull();
    assertThat(got.header("X-Api-Key")).isNull();
    assertThat(got.headerText() + got.bodyText()).doesNotContain(APP);
  }

  @Test
  void aRestClientCallWithoutACredentialIsMadeAsTheApplicationWhoseKeyNeverReachesTheServer()
      throws Exception {
    server.enqueue(
        ModelAnswer.json(
            Completions.ollamaChat("llama3.1", "Mail " + EMAIL + " or " + CARD + ".", true)));
    String body =
        restClient(PamClientHttpRequestInterceptor.withTokenSupplier(engine, () -> APP))
            .post()
            .uri("/api/chat")
            .contentType(MediaType.APPLICATION_JSON)
            .body(ollamaChat(false))
            .retrieve()
            .body(String.class);
    assertThat(body).contains("Mail [EMAIL] or [CREDIT_CARD].").doesNotContain(EMAIL, "4111");
    assertTheServerSawNoCredential();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("app");
    assertThat(r.response().complete()).isTrue();
  }

  @Test
  void aRestClientCallWithItsOwnCredentialKeepsIt() throws Exception {
    server.enqueue(ModelAnswer.json(Completions.ollamaChat("llama3.1", "hello", true)));
    restClient(PamClientHttpRequestInterceptor.withTokenSupplier(engine, () -> APP))
        .post()
        .uri("/api/chat")
        .header("X-Api-Key", ALICE)
        .contentType(MediaType.APPLICATION_JSON)
        .body(ollamaChat(false))
        .retrieve()
        .body(String.class);
    assertThat(onlyRecord().principal().subject()).isEqualTo("alice");
    ModelRequest got = server.takeRequest();
    assertThat(got.headerText()).doesNotContain(ALICE, APP);
  }

  @Test
  void aWebClientNdjsonStreamIsMadeAsTheApplicationAndMaskedAcrossLines() throws Exception {
    server.enqueue(
        ModelAnswer.ndjson(
            Completions.ollamaChat("llama3.1", "Mail jane.doe@exa", false),
            Completions.ollamaChat("llama3.1", "mple.com and charge 4111 1111 ", false),
            Completions.ollamaChat("llama3.1", "1111 1111 today", false),
            Completions.ollamaChat("llama3.1", "", true)));
    List<String> lines =
        webClient(() -> APP)
            .post()
            .uri("/api/chat")
            .contentType(MediaType.APPLICATION_JSON)
            .bodyValue(ollamaChat(true))
            .retrieve()
            .bodyToFlux(String.class)
            .collectList()
            .block(Duration.ofSeconds(10));
    String all = String.join("", lines);
    assertThat(all).doesNotContain("jane.doe", "4111").contains("[EMAIL]", "[CREDIT_CARD]");
    assertTheServerSawNoCredential();
    SessionRecord r = onlyRecord();
    assertThat(r.principal().subject()).isEqualTo("app");
    assertThat(r.response().streamed()).isTrue();
    assertThat(r.response().complete()).isTrue();
  }

  @Test
  void aWebClientCallWithItsOwnCredentialKeepsIt() throws Exception {
    server.enqueue(ModelAnswer.json(Completions.ollamaChat("llama3.1", "hello", true)));
    webClient(() -> APP)
        .post()
        .uri("/api/chat")
        .header("Authorization", "Bearer " + ALICE)
        .contentType(MediaType.APPLICATION_JSON)
        .bodyValue(ollamaChat(false))
        .retrieve()
        .bodyToMono(String.class)
        .block(Duration.ofSeconds(10));
    assertThat(onlyRecord().principal().subject()).isEqualTo("alice");
    assertThat(server.takeRequest().headerText()).doesNotContain(ALICE, APP);
  }

  @Test
  void aSupplierWithNothingToGiveLeavesTheCallUnauthenticatedAndNothingIsSent() {
    Supplier<String> failing =
        () -> {
          throw new IllegalStateException("token cache empty for " + APP);
        };
    for (Supplier<String> token : List.<Supplier<String>>of(() -> null, () -> " ", failing)) {
      assertThatThrownBy(
              () ->
                  restClient(PamClientHttpRequestInterceptor.withTokenSupplier(engine, token))
                      .post()
                      .uri("/api/chat")
                      .contentType(MediaType.APPLICATION_JSON)
                      .body(ollamaChat(false))
                      .retrieve()
                      .body(String.class))
          .isInstanceOfSatisfying(
              HttpClientErrorException.Unauthorized.class,
              e ->
                  assertThat(e.getResponseBodyAsString())
                      .contains("\"code\":\"unauthenticated\"", "no credential")
                      .doesNotContain(APP));
      assertThatThrownBy(
              () ->
                  webClient(token)
                      .post()
                      .uri("/api/chat")
                      .contentType(MediaType.APPLICATION_JSON)
                      .bodyValue(ollamaChat(false))
                      .retrieve()
                      .bodyToMono(String.class)
                      .block(Duration.ofSeconds(10)))
          .isInstanceOfSatisfying(
              WebClientResponseException.class,
              e -> {
                assertThat(e.getMessage())
                    .isEqualTo("401 Unauthorized from POST " + server.url("/api/chat"));
                assertThat(e.getResponseBodyAsString()).doesNotContain(APP);
              });
    }
    assertThat(server.requestCount()).isZero();
  }

  @Test
  void aServerThatSaysTheKeyHasItReplacedInWhatTheCallerReads() throws Exception {
    server.enqueue(
        ModelAnswer.json(Completions.ollamaChat("llama3.1", "your key is " + APP, true)));
    String body =
        restClient(PamClientHttpRequestInterceptor.withTokenSupplier(engine, () -> APP))
            .post()
            .uri("/api/chat")
            .contentType(MediaType.APPLICATION_JSON)
            .body(ollamaChat(false))
            .retrieve()
            .body(String.class);
    assertThat(body).contains("your key is ").doesNotContain(APP);
    assertThat(onlyRecord().response().body()).doesNotContain(APP);
  }

  @Test
  void theKeyIsNotInTheAdaptersToString() {
    assertThat(PamClientHttpRequestInterceptor.withTokenSupplier(engine, () -> APP).toString())
        .doesNotContain(APP);
    assertThat(webClient(() -> APP).toString()).doesNotContain(APP);
    assertThat(
            PamExchangeFilterFunction.withTokenSupplier(
                    engine, ExchangeStrategies.withDefaults(), () -> APP)
                .toString())
        .doesNotContain(APP);
  }
}
