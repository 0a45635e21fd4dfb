package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.testsupport.Completions;
import dev.inferpam.testsupport.Policies;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every way a servlet response can end delivers the whole masked body and a complete record, on
 * Jetty 12.1 and Tomcat 10.1 with the filter registered as the README says (REQUEST and ASYNC):
 * the application returns; it starts async and completes from another thread; it starts async and
 * dispatches, the async dispatch writing the rest and returning (how Spring MVC ends every async
 * answer); its listener answers an async timeout; it streams server-sent events with flushes. The
 * values to mask are split across writes and across the async hand-off, and the text after the
 * last of them must arrive.
 */
class PamFilterResponseEndingsTest {
  static final String KEY = "ci-key-7f3a9b";
  static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  static final String CARD = "4111 1111 1111 1111";

  static final String TEXT = "Mail " + EMAIL + " and charge " + CARD + ", thanks and goodbye.";
  static final String MASKED_TEXT = mask(TEXT);

  /** Inside the email, and inside the card: where the application's writes are cut. */
  static final int IN_EMAIL = TEXT.indexOf('@');

  static final int IN_CARD = TEXT.indexOf(CARD) + 7;

  static final String ANSWER = Completions.chat(TEXT, 12, 9);
  static final String MASKED_ANSWER = mask(ANSWER);
  static final int ANSWER_IN_CARD = ANSWER.indexOf(CARD) + 7;

  static final String EVENT_1 = "data: {\"text\":\"mail " + EMAIL + "\"}\n\n";
  static final String EVENT_2 = "data: {\"text\":\"charge " + CARD + " and goodbye\"}";

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

  final InMemoryRecorder recorder = new InMemoryRecorder();
  final ExecutorService workers = Executors.newCachedThreadPool();
  final CountDownLatch firstEventRead = new CountDownLatch(1);
  final AtomicReference<Throwable> applicationFailed = new AtomicReference<>();
  final OkHttpClient client =
      new OkHttpClient.Builder()
          .readTimeout(Duration.ofSeconds(10))
          .retryOnConnectionFailure(false)
          .build();
  PamEngine engine;
  ServletContainer container;

  static String mask(String text) {
    return text.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  }

  void start(ServletContainer.Kind kind) throws Exception {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(POLICY))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
    container = kind.start(new PamFilter(engine), new Application());
  }

  @AfterEach
  void stop() throws Exception {
    firstEventRead.countDown();
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    try {
      if (container != null) container.close();
    } finally {
      workers.shutdownNow();
      if (engine != null) engine.close();
    }
  }

  Request post(String ending) {
    return new Request.Builder()
        .url(container.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + KEY)
        .header("X-Ending", ending)
        .post(
            RequestBody.create(
                Policies.chat("llama-3.1-8b", ""), MediaType.get("application/json")))
        .build();
  }

  /** Calls the application with {@code ending}; the status must be 200; returns the body. */
  String call(String ending) throws IOException {
    try (Response response = client.newCall(post(ending)).execute()) {
      assertThat(response.code()).isEqualTo(200);
      return response.body().string();
    }
  }

  /** The exchange's one record, once ended; its recording line says it is complete. */
  SessionRecord completeRecord(String body) {
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo(body);
    assertThat(RecordCodec.encode(record, RecordCodec.GENESIS)).contains("\"complete\":true");
    assertThat(applicationFailed.get()).isNull();
    return record;
  }

  // --- synchronous -------------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anApplicationThatReturnsAfterWritingToItsStreamDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("return-stream")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anApplicationThatReturnsAfterWritingToItsWriterDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("return-writer")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  // --- async, completed --------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncAnswerCompletedFromAnotherThreadDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("complete-json")).isEqualTo(MASKED_ANSWER);
    completeRecord(MASKED_ANSWER);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncTimeoutTheApplicationAnswersDeliversAll(ServletContainer.Kind kind) throws Exception {
    start(kind);
    assertThat(call("timeout-answered")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncTimeoutNobodyAnswersIsRecordedIncompleteAndNeverUnmasked(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    String received = "";
    try (Response response = client.newCall(post("timeout-unanswered")).execute()) {
      received = response.body().string();
    } catch (IOException e) {
      // the container may cut the committed response off: what came before is all there is
    }
    assertThat(received).doesNotContain("4111");
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("4111");
  }

  // --- async, dispatched (Spring MVC's way) ------------------------------------------------------

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncAnswerWrittenWhollyInTheAsyncDispatchDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    // Spring MVC's Callable, CompletableFuture, DeferredResult: a JSON document the masker holds
    // until the end, written in the dispatch; before the fix, 200 with an empty body.
    assertThat(call("dispatch-json")).isEqualTo(MASKED_ANSWER);
    completeRecord(MASKED_ANSWER);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void textSplitAcrossTheAsyncHandOffArrivesMaskedWithItsTail(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("dispatch-stream")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void aWriterAcrossTheAsyncHandOffDeliversAll(ServletContainer.Kind kind) throws Exception {
    start(kind);
    assertThat(call("dispatch-writer")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void asyncStartedAgainInTheAsyncDispatchThenCompletedDeliversAll(ServletContainer.Kind kind)
      throws Exception {
    start(kind);
    assertThat(call("dispatch-restart")).isEqualTo(MASKED_TEXT);
    completeRecord(MASKED_TEXT);
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void serverSentEventsFlushMidStreamAndTheUnfinishedLastEventArrivesMasked(
      ServletContainer.Kind kind) throws Exception {
    start(kind);
    String first;
    String rest;
    try (Response response = client.newCall(post("dispatch-sse")).execute()) {
      assertThat(response.code()).isEqualTo(200);
      BufferedSource source = response.body().source();
      // The application waits until this event was read: it came through a flush.
      first = source.readUtf8Line() + "\n" + source.readUtf8Line() + "\n";
      firstEventRead.countDown();
      rest = source.readUtf8();
    }
    assertThat(first).isEqualTo(mask(EVENT_1));
    // The engine ends the unfinished event, as a client would have read it.
    assertThat(rest).isEqualTo(mask(EVENT_2) + "\n\n");
    completeRecord(mask(EVENT_1) + mask(EVENT_2) + "\n\n");
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncDispatchThatThrowsAfterTheResponseStartedIsRecordedIncompleteAndNeverUnmasked(
      ServletContainer.Kind kind) throws Exception {
    start(kind);
    String received = "";
    try (Response response = client.newCall(post("dispatch-throw-committed")).execute()) {
      received = response.body().string();
    } catch (IOException e) {
      // the container cuts the committed response off: what came before is all there is
    }
    assertThat(received).doesNotContain("4111");
    // The container aborts the response without telling the async listeners (Jetty 12.1): the
    // filter ends the exchange when the dispatch throws.
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("4111");
  }

  @ParameterizedTest
  @EnumSource(ServletContainer.Kind.class)
  void anAsyncDispatchThatThrowsBeforeAnyOutputIsAnsweredByTheContainerAndRecordedIncomplete(
      ServletContainer.Kind kind) throws Exception {
    start(kind);
    try (Response response = client.newCall(post("dispatch-throw")).execute()) {
      assertThat(response.code()).isEqualTo(500);
      assertThat(response.body().string()).doesNotContain("4111");
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(500);
    assertThat(record.response().complete()).isFalse();
  }

  /** Stands in for the application; {@code X-Ending} says how its response ends. */
  private final class Application extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      String ending = req.getHeader("X-Ending");
      if (req.getDispatcherType() == DispatcherType.ASYNC) {
        dispatched(ending, req, resp);
        return;
      }
      req.getInputStream().readAllBytes();
      switch (ending) {
        case "return-stream" -> {
          resp.setContentType("text/plain");
          ServletOutputStream out = resp.getOutputStream();
          write(out, TEXT, 0, IN_EMAIL);
          write(out, TEXT, IN_EMAIL, IN_CARD);
          write(out, TEXT, IN_CARD, TEXT.length());
        }
        case "return-writer" -> {
          resp.setContentType("text/plain");
          resp.setCharacterEncoding("UTF-8");
          PrintWriter out = resp.getWriter();
          out.write(TEXT, 0, IN_EMAIL);
          out.write(TEXT, IN_EMAIL, IN_CARD - IN_EMAIL);
          out.write(TEXT, IN_CARD, TEXT.length() - IN_CARD);
        }
        case "complete-json" -> {
          AsyncContext async = req.startAsync();
          onWorker(
              () -> {
                try {
                  HttpServletResponse w = (HttpServletResponse) async.getResponse();
                  w.setContentType("application/json");
                  write(w.getOutputStream(), ANSWER, 0, ANSWER_IN_CARD);
                  write(w.getOutputStream(), ANSWER, ANSWER_IN_CARD, ANSWER.length());
                } finally {
                  async.complete();
                }
              });
        }
        case "timeout-answered" -> {
          AsyncContext async = req.startAsync();
          async.setTimeout(100);
          async.addListener(
              new Listener() {
                @Override
                public void onTimeout(AsyncEvent event) throws IOException {
                  // The usual pattern: answer through the event's context.
                  AsyncContext context = event.getAsyncContext();
                  write(context.getResponse().getOutputStream(), TEXT, IN_CARD, TEXT.length());
                  context.complete();
                }
              });
          resp.setContentType("text/plain");
          write(resp.getOutputStream(), TEXT, 0, IN_CARD);
          resp.getOutputStream().flush();
        }
        case "timeout-unanswered" -> {
          AsyncContext async = req.startAsync();
          async.setTimeout(100);
          resp.setContentType("text/plain");
          write(resp.getOutputStream(), TEXT, 0, IN_CARD);
          resp.getOutputStream().flush();
        }
        case "dispatch-json", "dispatch-restart", "dispatch-throw" -> {
          AsyncContext async = req.startAsync();
          onWorker(async::dispatch);
        }
        case "dispatch-stream" -> {
          AsyncContext async = req.startAsync();
          onWorker(
              () -> {
                HttpServletResponse w = (HttpServletResponse) async.getResponse();
                w.setContentType("text/plain");
                write(w.getOutputStream(), TEXT, 0, IN_EMAIL);
                write(w.getOutputStream(), TEXT, IN_EMAIL, IN_CARD);
                w.getOutputStream().flush();
                async.dispatch();
              });
        }
        case "dispatch-throw-committed" -> {
          AsyncContext async = req.startAsync();
          onWorker(
              () -> {
                HttpServletResponse w = (HttpServletResponse) async.getResponse();
                w.setContentType("text/plain");
                write(w.getOutputStream(), TEXT, 0, IN_CARD);
                w.getOutputStream().flush();
                async.dispatch();
              });
        }
        case "dispatch-writer" -> {
          AsyncContext async = req.startAsync();
          onWorker(
              () -> {
                HttpServletResponse w = (HttpServletResponse) async.getResponse();
                w.setContentType("text/plain");
                w.setCharacterEncoding("UTF-8");
                w.getWriter().write(TEXT, 0, IN_CARD);
                w.getWriter().flush();
                async.dispatch();
              });
        }
        case "dispatch-sse" -> {
          AsyncContext async = req.startAsync();
          onWorker(
              () -> {
                HttpServletResponse w = (HttpServletResponse) async.getResponse();
                w.setContentType("text/event-stream");
                ServletOutputStream out = w.getOutputStream();
                int inEmail = EVENT_1.indexOf('@');
                write(out, EVENT_1, 0, inEmail);
                write(out, EVENT_1, inEmail, EVENT_1.length());
                out.flush();
                awaitLatch(firstEventRead);
                write(out, EVENT_2, 0, EVENT_2.indexOf(CARD) + 7);
                async.dispatch();
              });
        }
        default -> throw new IllegalArgumentException("unknown X-Ending " + ending);
      }
    }

    /** The async dispatch the application asked for: it writes the rest and returns. */
    private void dispatched(String ending, HttpServletRequest req, HttpServletResponse resp)
        throws IOException {
      switch (ending) {
        case "dispatch-json" -> {
          resp.setContentType("application/json");
          write(resp.getOutputStream(), ANSWER, 0, ANSWER_IN_CARD);
          write(resp.getOutputStream(), ANSWER, ANSWER_IN_CARD, ANSWER.length());
        }
        case "dispatch-stream" -> write(resp.getOutputStream(), TEXT, IN_CARD, TEXT.length());
        case "dispatch-writer" -> resp.getWriter().write(TEXT, IN_CARD, TEXT.length() - IN_CARD);
        case "dispatch-sse" ->
            write(resp.getOutputStream(), EVENT_2, EVENT_2.indexOf(CARD) + 7, EVENT_2.length());
        case "dispatch-throw", "dispatch-throw-committed" ->
            throw new IllegalStateException("the model failed");
        case "dispatch-restart" -> {
          resp.setContentType("text/plain");
          write(resp.getOutputStream(), TEXT, 0, IN_CARD);
          AsyncContext again = req.startAsync();
          onWorker(
              () -> {
                try {
                  write(again.getResponse().getOutputStream(), TEXT, IN_CARD, TEXT.length());
                } finally {
                  again.complete();
                }
              });
        }
        default -> throw new IllegalArgumentException("no dispatch for " + ending);
      }
    }
  }

  interface Work {
    void run() throws IOException;
  }

  private void onWorker(Work work) {
    workers.execute(
        () -> {
          try {
            work.run();
          } catch (IOException | RuntimeException e) {
            applicationFailed.set(e);
          }
        });
  }

  private static void write(ServletOutputStream out, String text, int from, int to)
      throws IOException {
    out.write(text.substring(from, to).getBytes(StandardCharsets.UTF_8));
  }

  private static void awaitLatch(CountDownLatch latch) throws IOException {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) throw new IOException("latch never opened");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new UncheckedIOException(new IOException(e));
    }
  }

  /** A listener that does nothing but what it overrides. */
  private abstract static class Listener implements AsyncListener {
    @Override
    public void onComplete(AsyncEvent event) {}

    @Override
    public void onTimeout(AsyncEvent event) throws IOException {}

    @Override
    public void onError(AsyncEvent event) {}

    @Override
    public void onStartAsync(AsyncEvent event) {}
  }
}
