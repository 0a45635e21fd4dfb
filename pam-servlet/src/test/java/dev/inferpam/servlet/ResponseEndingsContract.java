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
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What {@link PamFilter} registered as the README says (REQUEST and ASYNC) must show in front of
 * a plain servlet application, whatever its container: every way a servlet response can end
 * delivers the whole masked body and a complete record, and an ending that fails is recorded
 * incomplete and never unmasked. The application ({@code X-Ending} says how its response ends)
 * returns; starts async and completes from another thread; starts async and dispatches, the async
 * dispatch writing the rest and returning (how Spring MVC ends every async answer); answers an
 * async timeout from its listener; streams server-sent events with flushes. The values to mask are
 * split across writes and across the async hand-off, and the text after the last of them must
 * arrive.
 *
 * <p>A subclass says where the checks run: a static {@code containers()} method returns the {@link
 * ServletContainer.Starter}s each parameterized check starts the application on (its own checks
 * call {@link #start}). The client is the JDK's, which every module's class path has. In
 * pam-servlet's test jar: pam-servlet runs it on Jetty 12.1 and Tomcat 10.1 ({@code
 * PamFilterResponseEndingsTest}), pam-spring-boot4-tests on Tomcat 11 ({@code
 * PamFilterTomcat11Test}).
 */
public abstract class ResponseEndingsContract {
  protected static final String KEY = "ci-key-7f3a9b";
  protected static final String EMAIL = "jane.doe@example.com";

  /** Luhn-valid. */
  protected static final String CARD = "4111 1111 1111 1111";

  protected static final String TEXT =
      "Mail " + EMAIL + " and charge " + CARD + ", thanks and goodbye.";
  protected static final String MASKED_TEXT = mask(TEXT);

  /** Inside the email, and inside the card: where the application's writes are cut. */
  protected static final int IN_EMAIL = TEXT.indexOf('@');

  protected static final int IN_CARD = TEXT.indexOf(CARD) + 7;

  protected static final String ANSWER = Completions.chat(TEXT, 12, 9);
  protected static final String MASKED_ANSWER = mask(ANSWER);
  protected static final int ANSWER_IN_CARD = ANSWER.indexOf(CARD) + 7;

  protected static final String EVENT_1 = "data: {\"text\":\"mail " + EMAIL + "\"}\n\n";
  protected static final String EVENT_2 = "data: {\"text\":\"charge " + CARD + " and goodbye\"}";

  protected static final String POLICY =
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

  protected final InMemoryRecorder recorder = new InMemoryRecorder();
  protected final ExecutorService workers = Executors.newCachedThreadPool();
  protected final CountDownLatch firstEventRead = new CountDownLatch(1);
  protected final AtomicReference<Throwable> applicationFailed = new AtomicReference<>();

  // for subclasses in other modules, on the class path (dev.inferpam.servlet does not require
  // java.net.http transitively)
  @SuppressWarnings("exports")
  protected final HttpClient http =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  protected PamEngine engine;
  protected ServletContainer container;

  protected ResponseEndingsContract() {}

  protected static String mask(String text) {
    return text.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  }

  /** The engine's policy: {@link #POLICY} unless a subclass adds to it. */
  protected String policy() {
    return POLICY;
  }

  /** Starts the engine, and the application behind the filter in the container {@code kind}. */
  protected void start(ServletContainer.Starter kind) throws Exception {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(policy()))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
    container = kind.start(new PamFilter(engine), new Application());
  }

  @AfterEach
  void stop() throws Exception {
    firstEventRead.countDown();
    try {
      if (container != null) container.close();
    } finally {
      workers.shutdownNow();
      if (engine != null) engine.close();
    }
  }

  /** A chat request for the application that ends its response as {@code ending} says. */
  @SuppressWarnings("exports")
  protected HttpRequest post(String ending, String prompt) {
    return HttpRequest.newBuilder(URI.create(container.url("/v1/chat/completions")))
        .timeout(Duration.ofSeconds(20))
        .header("Authorization", "Bearer " + KEY)
        .header("Content-Type", "application/json")
        .header("X-Ending", ending)
        .POST(HttpRequest.BodyPublishers.ofString(Policies.chat("llama-3.1-8b", prompt, "")))
        .build();
  }

  @SuppressWarnings("exports")
  protected HttpRequest post(String ending) {
    return post(ending, "hi");
  }

  /** Calls the application with {@code ending}; the status must be 200; returns the body. */
  protected String call(String ending) throws Exception {
    HttpResponse<String> response = http.send(post(ending), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(ending).isEqualTo(200);
    return response.body();
  }

  /** The exchange's one record, once ended; its recording line says it is complete. */
  protected SessionRecord completeRecord(String body) {
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo(body);
    assertThat(RecordCodec.encode(record, RecordCodec.GENESIS)).contains("\"complete\":true");
    assertThat(applicationFailed.get()).isNull();
    return record;
  }

  @ParameterizedTest
  @MethodSource("containers")
  void anAsyncTimeoutNobodyAnswersIsRecordedIncompleteAndNeverUnmasked(
      ServletContainer.Starter kind) throws Exception {
    start(kind);
    String received = "";
    try {
      received = http.send(post("timeout-unanswered"), HttpResponse.BodyHandlers.ofString()).body();
    } catch (IOException e) {
      // the container may cut the committed response off: what came before is all there is
    }
    assertThat(received).doesNotContain("4111");
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("4111");
  }

  @ParameterizedTest
  @MethodSource("containers")
  void serverSentEventsFlushMidStreamAndTheUnfinishedLastEventArrivesMasked(
      ServletContainer.Starter kind) throws Exception {
    start(kind);
    HttpResponse<InputStream> response =
        http.send(post("dispatch-sse"), HttpResponse.BodyHandlers.ofInputStream());
    assertThat(response.statusCode()).isEqualTo(200);
    String first;
    String rest;
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      // The application waits until this event was read: it came through a flush.
      first = in.readLine() + "\n" + in.readLine() + "\n";
      firstEventRead.countDown();
      StringBuilder tail = new StringBuilder();
      char[] buffer = new char[1024];
      for (int n; (n = in.read(buffer)) >= 0; ) tail.append(buffer, 0, n);
      rest = tail.toString();
    }
    assertThat(first).isEqualTo(mask(EVENT_1));
    // The engine ends the unfinished event, as a client would have read it.
    assertThat(rest).isEqualTo(mask(EVENT_2) + "\n\n");
    completeRecord(mask(EVENT_1) + mask(EVENT_2) + "\n\n");
  }

  @ParameterizedTest
  @MethodSource("containers")
  void anAsyncDispatchThatThrowsAfterTheResponseStartedIsRecordedIncompleteAndNeverUnmasked(
      ServletContainer.Starter kind) throws Exception {
    start(kind);
    String received = "";
    try {
      received =
          http.send(post("dispatch-throw-committed"), HttpResponse.BodyHandlers.ofString()).body();
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
  @MethodSource("containers")
  void anAsyncDispatchThatThrowsBeforeAnyOutputIsAnsweredByTheContainerAndRecordedIncomplete(
      ServletContainer.Starter kind) throws Exception {
    start(kind);
    HttpResponse<String> response =
        http.send(post("dispatch-throw"), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(500);
    assertThat(response.body()).doesNotContain("4111");
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

  private interface Work {
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
