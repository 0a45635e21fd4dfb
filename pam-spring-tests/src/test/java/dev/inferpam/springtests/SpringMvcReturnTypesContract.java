package dev.inferpam.springtests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.servlet.PamFilter;
import dev.inferpam.testsupport.Json;
import dev.inferpam.testsupport.Policies;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.http.ResponseEntity;
import org.springframework.http.codec.ServerSentEvent;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.WebAsyncTask;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;
import reactor.core.scheduler.Scheduler;
import reactor.core.scheduler.Schedulers;

/**
 * What every Spring MVC application behind {@link PamFilter} (registered for the REQUEST and ASYNC
 * dispatcher types, masking on) must show, whatever its container: every Spring MVC return type
 * delivers the whole masked body, the text after the last masked value included, and a complete
 * record. The asynchronous ones end with {@code AsyncContext.dispatch()}, which lost the masker's
 * held-back tail before. A subclass starts the application with {@link ModelController} and says
 * where it listens and what it records, and the key its engine knows the caller by when that
 * engine's policy is not {@link #POLICY} ({@link #apiKey()}). The client is the JDK's, which every
 * module's class path has.
 *
 * <p>A Reactor {@link Flux} returned through MVC (Reactor on the class path of a servlet
 * application) is written by Spring MVC's {@code ReactiveTypeHandler}: as an {@code SseEmitter} for
 * {@code text/event-stream} or {@code ServerSentEvent} items, as a {@code ResponseBodyEmitter} for
 * text or {@code application/x-ndjson}, and collected into a {@code DeferredResult} (a JSON array)
 * otherwise; its items are published on a model worker thread and sent on Spring's task executor.
 *
 * <p>In pam-spring-tests' test jar: pam-spring-tests runs it on Boot 3.5's Tomcat 10.1 ({@code
 * SpringMvcAsyncTest}) and Spring MVC 6.2 on Jetty 12.1 ({@code SpringMvcJettyTest}),
 * pam-spring-boot4-tests on Boot 4 with Spring MVC 7 ({@code SpringMvcAsyncBoot4Test}, on Tomcat 11
 * and Jetty 12.1): compiled against Spring 6.2, it uses only what Spring 7 has too.
 */
public abstract class SpringMvcReturnTypesContract {
  static final String KEY = "ci-key-7f3a9b";
  static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";

  static final String TEXT = "Mail " + EMAIL + " and charge " + CARD + ", thanks and goodbye.";
  static final String PATH = "/v1/chat/completions";

  /** The last event of the event stream: no finish event ({@code [DONE]}) comes after it. */
  static final String LAST_EVENT = "charge " + CARD + ", thanks and goodbye.";

  static final String POLICY =
      """
      version: 1
      identity:
        api-keys:
      """
          + Policies.apiKey("nightly-ci", KEY, "ci")
          + """
      entitlements:
        - groups: [ci]
          models: ["llama-3.1-*"]
          operations: [chat]
      masking:
        detectors: [email, phone, credit-card]
      """;

  static final HttpClient http =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  static String mask(String text) {
    return text.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  }

  static final String JSON = "{\"text\":\"" + TEXT + "\"}";

  /** The port the application listens on, on 127.0.0.1. */
  protected abstract int port();

  /** What the application's engine records. */
  protected abstract InMemoryRecorder recorder();

  /** The API key the requests carry: {@link #KEY}, which {@link #POLICY} knows. */
  protected String apiKey() {
    return KEY;
  }

  /** The engine of the application: the policy above, records in {@code recorder}. */
  static PamEngine engine(InMemoryRecorder recorder) {
    return PamEngine.builder()
        .policy(Policy.parse(POLICY))
        .recorder(recorder)
        .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
        .build();
  }

  /** Opened once the client read the first event of {@code flux-sse-live}. */
  static volatile CountDownLatch firstEventRead = new CountDownLatch(1);

  @BeforeEach
  void clearRecords() {
    recorder().clear();
    firstEventRead = new CountDownLatch(1);
  }

  @AfterEach
  void releaseTheModel() {
    firstEventRead.countDown();
  }

  /** A request for the controller method that answers with {@code returnType}. */
  HttpRequest request(String returnType) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port() + PATH))
        .timeout(Duration.ofSeconds(20))
        .header("Authorization", "Bearer " + apiKey())
        .header("Content-Type", "application/json")
        .header("X-Return", returnType)
        .POST(HttpRequest.BodyPublishers.ofString(Policies.chat("llama-3.1-8b", "")))
        .build();
  }

  /** Calls the controller method that answers with {@code returnType}; returns the body (200). */
  String call(String returnType) throws Exception {
    HttpResponse<String> response =
        http.send(request(returnType), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(returnType).isEqualTo(200);
    return response.body();
  }

  /** The exchange's one record, once ended: complete, with the body the client got. */
  void assertCompleteRecord(String body) {
    InMemoryRecorder recorder = recorder();
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo(body);
    assertThat(RecordCodec.encode(record, RecordCodec.GENESIS)).contains("\"complete\":true");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "response-entity",
        "callable",
        "completable-future",
        "deferred-result",
        "deferred-result-timeout",
        "web-async-task"
      })
  void jsonAnswersArriveWholeAndMasked(String returnType) throws Exception {
    String body = call(returnType);
    assertThat(body).isEqualTo(mask(JSON));
    assertCompleteRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"string", "streaming-response-body", "response-body-emitter"})
  void textAnswersArriveWholeAndMaskedWithTheirTail(String returnType) throws Exception {
    String body = call(returnType);
    assertThat(body).isEqualTo(mask(TEXT));
    assertCompleteRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"sse-emitter"})
  void serverSentEventsArriveWholeAndMasked(String returnType) throws Exception {
    String body = call(returnType);
    assertThat(body)
        .isEqualTo("data:" + mask("mail " + EMAIL) + "\n\n" + "data:" + mask(LAST_EVENT) + "\n\n");
    assertCompleteRecord(body);
  }

  // --- a Flux through Spring MVC -----------------------------------------------------------------

  static final ObjectMapper MAPPER = new ObjectMapper();

  /** The text the OpenAI chunks of an event stream carry, joined: what a client shows. */
  static String streamedChatText(String body) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : body.split("\n")) {
      if (!line.startsWith("data:")) continue;
      JsonNode chunk = MAPPER.readTree(line.substring("data:".length()));
      for (JsonNode choice : chunk.path("choices")) {
        text.append(choice.path("delta").path("content").asText(""));
      }
    }
    return text.toString();
  }

  /** The text the Ollama lines of an NDJSON stream carry, joined; every line is JSON. */
  static String streamedOllamaText(String body) throws IOException {
    StringBuilder text = new StringBuilder();
    for (String line : body.split("\n")) {
      text.append(MAPPER.readTree(line).path("message").path("content").asText(""));
    }
    return text.toString();
  }

  @ParameterizedTest
  @ValueSource(strings = {"flux-text", "flux-just"})
  void aFluxOfTextArrivesWholeAndMaskedWithItsTail(String returnType) throws Exception {
    String body = call(returnType);
    assertThat(body).isEqualTo(mask(TEXT));
    assertCompleteRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"flux-sse", "flux-server-sent-event"})
  void aFluxAsAnEventStreamArrivesWholeAndMasked(String returnType) throws Exception {
    String body = call(returnType);
    // Each item is an OpenAI chunk; the email and the card are split across items.
    assertThat(streamedChatText(body)).isEqualTo(mask(TEXT));
    assertThat(body)
        .doesNotContain("jane.doe", "example.com", "4111", "1111 1111")
        .endsWith("\n\n");
    assertCompleteRecord(body);
  }

  @Test
  void aFluxEventStreamReachesTheClientEventByEvent() throws Exception {
    HttpResponse<InputStream> response =
        http.send(request("flux-sse-live"), HttpResponse.BodyHandlers.ofInputStream());
    assertThat(response.statusCode()).isEqualTo(200);
    String first;
    String rest;
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      // The model sends the rest only once this event was read: it came through on its own.
      first = in.readLine() + "\n" + in.readLine() + "\n";
      firstEventRead.countDown();
      StringBuilder tail = new StringBuilder();
      char[] buffer = new char[1024];
      for (int n; (n = in.read(buffer)) >= 0; ) tail.append(buffer, 0, n);
      rest = tail.toString();
    }
    assertThat(streamedChatText(first)).isEqualTo("Mail ");
    assertThat(streamedChatText(first + rest)).isEqualTo(mask(TEXT));
    assertCompleteRecord(first + rest);
  }

  @Test
  void aFluxThatFailsMidStreamIsRecordedIncompleteAndNothingLeaksUnmasked() throws Exception {
    StringBuilder received = new StringBuilder();
    try {
      HttpResponse<InputStream> response =
          http.send(request("flux-error"), HttpResponse.BodyHandlers.ofInputStream());
      try (BufferedReader in =
          new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) received.append(line).append('\n');
      }
    } catch (IOException e) {
      // the container may cut the committed response off: what came before is all there is
    }
    assertThat(received.toString()).doesNotContain("jane.doe", "example.com", "4111");
    InMemoryRecorder recorder = recorder();
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("jane.doe", "example.com", "4111");
  }

  @ParameterizedTest
  @ValueSource(strings = {"flux-ndjson"})
  void aFluxAsNdjsonArrivesWholeAndMasked(String returnType) throws Exception {
    String body = call(returnType);
    // Each item is an Ollama line; the email and the card are split across items.
    assertThat(streamedOllamaText(body)).isEqualTo(mask(TEXT));
    assertThat(body).doesNotContain("jane.doe", "example.com", "4111", "1111 1111").endsWith("\n");
    assertThat(
            MAPPER
                .readTree(body.substring(body.lastIndexOf('\n', body.length() - 2) + 1))
                .path("done")
                .asBoolean())
        .isTrue();
    assertCompleteRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"flux-json"})
  void aFluxAsAJsonArrayArrivesWholeAndMasked(String returnType) throws Exception {
    String body = call(returnType);
    assertThat(body).isEqualTo(mask(ModelController.JSON_ARRAY));
    assertCompleteRecord(body);
  }

  /**
   * Answers {@link #TEXT}, as JSON or text, through the return type {@code X-Return} names; what
   * is streamed is cut inside the email and inside the card.
   */
  @RestController
  public static class ModelController {
    /** What the {@code Flux} of JSON items becomes: its items, collected into an array. */
    static final String JSON_ARRAY =
        "[{\"text\":\"Mail " + EMAIL + " and\"},{\"text\":\"charge " + CARD + ", thanks.\"}]";

    private final ExecutorService workers;

    /** The model's worker threads, as a Reactor scheduler: a Flux's items are published there. */
    private final Scheduler model;

    ModelController(ExecutorService modelWorkers) {
      this.workers = modelWorkers;
      this.model = Schedulers.fromExecutorService(modelWorkers);
    }

    static Map<String, String> json() {
      return Map.of("text", TEXT);
    }

    /** The text in pieces cut inside the email and inside the card. */
    static List<String> pieces() {
      int inEmail = TEXT.indexOf('@');
      int inCard = TEXT.indexOf(CARD) + 7;
      return List.of(
          TEXT.substring(0, inEmail), TEXT.substring(inEmail, inCard), TEXT.substring(inCard));
    }

    @PostMapping(path = PATH, headers = "X-Return=string", produces = "text/plain")
    String string() {
      return TEXT;
    }

    @PostMapping(path = PATH, headers = "X-Return=response-entity")
    ResponseEntity<Map<String, String>> responseEntity() {
      return ResponseEntity.ok(json());
    }

    @PostMapping(path = PATH, headers = "X-Return=callable")
    Callable<Map<String, String>> callable() {
      return ModelController::json;
    }

    @PostMapping(path = PATH, headers = "X-Return=completable-future")
    CompletableFuture<Map<String, String>> completableFuture() {
      return CompletableFuture.supplyAsync(ModelController::json, workers);
    }

    @PostMapping(path = PATH, headers = "X-Return=deferred-result")
    DeferredResult<Map<String, String>> deferredResult() {
      DeferredResult<Map<String, String>> result = new DeferredResult<>();
      workers.execute(() -> result.setResult(json()));
      return result;
    }

    @PostMapping(path = PATH, headers = "X-Return=deferred-result-timeout")
    DeferredResult<Map<String, String>> deferredResultTimeout() {
      // Never set: the async timeout answers with the timeout result.
      return new DeferredResult<>(100L, json());
    }

    @PostMapping(path = PATH, headers = "X-Return=web-async-task")
    WebAsyncTask<Map<String, String>> webAsyncTask() {
      return new WebAsyncTask<>(10_000L, ModelController::json);
    }

    @PostMapping(path = PATH, headers = "X-Return=streaming-response-body")
    ResponseEntity<StreamingResponseBody> streamingResponseBody() {
      StreamingResponseBody body =
          out -> {
            for (String piece : pieces()) {
              out.write(piece.getBytes(StandardCharsets.UTF_8));
              out.flush();
            }
          };
      return ResponseEntity.ok()
          .contentType(org.springframework.http.MediaType.TEXT_PLAIN)
          .body(body);
    }

    @PostMapping(path = PATH, headers = "X-Return=response-body-emitter")
    ResponseEntity<ResponseBodyEmitter> responseBodyEmitter() {
      ResponseBodyEmitter emitter = new ResponseBodyEmitter();
      workers.execute(
          () -> {
            try {
              for (String piece : pieces()) {
                emitter.send(piece, org.springframework.http.MediaType.TEXT_PLAIN);
              }
              emitter.complete();
            } catch (IOException | RuntimeException e) {
              emitter.completeWithError(e);
            }
          });
      return ResponseEntity.ok()
          .contentType(org.springframework.http.MediaType.TEXT_PLAIN)
          .body(emitter);
    }

    @PostMapping(path = PATH, headers = "X-Return=sse-emitter")
    SseEmitter sseEmitter() {
      SseEmitter emitter = new SseEmitter();
      workers.execute(
          () -> {
            try {
              emitter.send(SseEmitter.event().data("mail " + EMAIL));
              emitter.send(SseEmitter.event().data(LAST_EVENT));
              emitter.complete();
            } catch (IOException | RuntimeException e) {
              emitter.completeWithError(e);
            }
          });
      return emitter;
    }

    /** An OpenAI {@code chat.completion.chunk} whose delta is {@code content}. */
    static String chunk(String content) {
      return "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"llama-3.1-8b\","
          + "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
          + Json.string(content)
          + "},\"finish_reason\":null}]}";
    }

    /** The chunks of {@link #pieces()}, then the finishing chunk, as an OpenAI stream has them. */
    static List<String> chunks() {
      List<String> chunks = new ArrayList<>();
      for (String piece : pieces()) chunks.add(chunk(piece));
      chunks.add(
          "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"llama-3.1-8b\","
              + "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}");
      return chunks;
    }

    /** The items of a Flux, published on a model worker thread. */
    <T> Flux<T> fromModel(List<T> items) {
      return Flux.fromIterable(items).subscribeOn(model);
    }

    @PostMapping(path = PATH, headers = "X-Return=flux-text", produces = "text/plain")
    Flux<String> fluxText() {
      return fromModel(pieces());
    }

    @PostMapping(path = PATH, headers = "X-Return=flux-sse", produces = "text/event-stream")
    Flux<String> fluxSse() {
      return fromModel(chunks());
    }

    @PostMapping(path = PATH, headers = "X-Return=flux-just", produces = "text/plain")
    Flux<String> fluxJust() {
      return Flux.fromIterable(pieces()); // on the request thread
    }

    /** The first chunk, then the rest once the client read it. */
    @PostMapping(path = PATH, headers = "X-Return=flux-sse-live", produces = "text/event-stream")
    Flux<String> fluxSseLive() {
      Sinks.Many<String> sink = Sinks.many().unicast().onBackpressureBuffer();
      List<String> chunks = chunks();
      workers.execute(
          () -> {
            sink.tryEmitNext(chunks.get(0));
            try {
              if (!firstEventRead.await(10, TimeUnit.SECONDS)) {
                sink.tryEmitError(new IllegalStateException("the first event never arrived"));
                return;
              }
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              sink.tryEmitError(e);
              return;
            }
            chunks.subList(1, chunks.size()).forEach(sink::tryEmitNext);
            sink.tryEmitComplete();
          });
      return sink.asFlux();
    }

    /** Two chunks, the email and the start of the card in them, then the model fails. */
    @PostMapping(path = PATH, headers = "X-Return=flux-error", produces = "text/event-stream")
    Flux<String> fluxError() {
      return fromModel(chunks().subList(0, 2))
          .concatWith(Flux.error(new IllegalStateException("the model failed")));
    }

    /** No finishing chunk and no {@code [DONE]}: the stream ends with the card's text. */
    @PostMapping(path = PATH, headers = "X-Return=flux-server-sent-event")
    Flux<ServerSentEvent<String>> fluxServerSentEvent() {
      List<ServerSentEvent<String>> events = new ArrayList<>();
      for (String piece : pieces()) {
        events.add(
            ServerSentEvent.builder(chunk(piece)).id(Integer.toString(events.size())).build());
      }
      return fromModel(events);
    }

    /** An Ollama {@code /api/chat} line. */
    record OllamaLine(String model, OllamaMessage message, boolean done) {}

    record OllamaMessage(String role, String content) {}

    @PostMapping(path = PATH, headers = "X-Return=flux-ndjson", produces = "application/x-ndjson")
    Flux<OllamaLine> fluxNdjson() {
      List<OllamaLine> lines = new ArrayList<>();
      for (String piece : pieces()) {
        lines.add(new OllamaLine("llama-3.1-8b", new OllamaMessage("assistant", piece), false));
      }
      lines.add(new OllamaLine("llama-3.1-8b", new OllamaMessage("assistant", ""), true));
      return fromModel(lines);
    }

    record Text(String text) {}

    @PostMapping(path = PATH, headers = "X-Return=flux-json", produces = "application/json")
    Flux<Text> fluxJson() {
      return fromModel(
          List.of(new Text("Mail " + EMAIL + " and"), new Text("charge " + CARD + ", thanks.")));
    }
  }
}
