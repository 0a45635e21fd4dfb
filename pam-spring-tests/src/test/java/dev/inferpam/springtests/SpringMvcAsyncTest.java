package dev.inferpam.springtests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.servlet.PamFilter;
import dev.inferpam.testsupport.Policies;
import jakarta.servlet.DispatcherType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.web.servlet.context.ServletWebServerApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.Ordered;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.WebAsyncTask;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import org.springframework.web.servlet.mvc.method.annotation.SseEmitter;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * A real Spring Boot 3.5 application (Tomcat 10.1, random port on 127.0.0.1) with {@link PamFilter}
 * registered as the README's quickstart does (a {@code FilterRegistrationBean} for the REQUEST and
 * ASYNC dispatcher types) and masking on: every Spring MVC return type delivers the whole masked
 * body, the text after the last masked value included, and a complete record. The asynchronous
 * ones end with {@code AsyncContext.dispatch()}, which lost the masker's held-back tail before.
 */
class SpringMvcAsyncTest {
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

  static ServletWebServerApplicationContext application;
  static InMemoryRecorder recorder;
  static final OkHttpClient client =
      new OkHttpClient.Builder()
          .readTimeout(Duration.ofSeconds(20))
          .retryOnConnectionFailure(false)
          .build();

  static String mask(String text) {
    return text.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  }

  static final String JSON = "{\"text\":\"" + TEXT + "\"}";

  @BeforeAll
  static void startApplication() {
    SpringApplication app = new SpringApplication(ModelApplication.class);
    app.setDefaultProperties(
        Map.of(
            "server.port", "0",
            "server.address", "127.0.0.1",
            "spring.main.banner-mode", "off"));
    application = (ServletWebServerApplicationContext) app.run();
    recorder = application.getBean(InMemoryRecorder.class);
  }

  @AfterAll
  static void stopApplication() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (application != null) application.close();
  }

  @BeforeEach
  void clearRecords() {
    recorder.clear();
  }

  /** Calls the controller method that answers with {@code returnType}; returns the body (200). */
  String call(String returnType) throws IOException {
    Request request =
        new Request.Builder()
            .url("http://127.0.0.1:" + application.getWebServer().getPort() + PATH)
            .header("Authorization", "Bearer " + KEY)
            .header("X-Return", returnType)
            .post(
                RequestBody.create(
                    Policies.chat("llama-3.1-8b", ""), MediaType.get("application/json")))
            .build();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).as(returnType).isEqualTo(200);
      return response.body().string();
    }
  }

  /** The exchange's one record, once ended: complete, with the body the client got. */
  static void assertCompleteRecord(String body) {
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

  /** The application: the README's Spring Boot configuration, with an in-memory recorder. */
  @Configuration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  @Import(ModelController.class)
  static class ModelApplication {
    @Bean
    InMemoryRecorder recorder() {
      return new InMemoryRecorder();
    }

    @Bean // Spring closes it at shutdown, which flushes the recorder
    PamEngine pamEngine(InMemoryRecorder recorder) {
      return PamEngine.builder()
          .policy(Policy.parse(POLICY))
          .recorder(recorder)
          .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
          .build();
    }

    @Bean
    FilterRegistrationBean<PamFilter> pamFilter(PamEngine engine) {
      var registration = new FilterRegistrationBean<>(new PamFilter(engine));
      registration.addUrlPatterns("/*");
      registration.setDispatcherTypes(DispatcherType.REQUEST, DispatcherType.ASYNC);
      registration.setAsyncSupported(true);
      registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
      return registration;
    }

    @Bean(destroyMethod = "shutdownNow")
    ExecutorService modelWorkers() {
      return Executors.newCachedThreadPool();
    }
  }

  /**
   * Answers {@link #TEXT}, as JSON or text, through the return type {@code X-Return} names; what
   * is streamed is cut inside the email and inside the card.
   */
  @RestController
  static class ModelController {
    private final ExecutorService workers;

    ModelController(ExecutorService modelWorkers) {
      this.workers = modelWorkers;
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
  }
}
