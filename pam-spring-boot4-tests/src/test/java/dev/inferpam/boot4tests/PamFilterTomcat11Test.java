package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.servlet.PamFilter;
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
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.catalina.Context;
import org.apache.catalina.Wrapper;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;
import org.apache.catalina.util.ServerInfo;
import org.apache.tomcat.util.descriptor.web.FilterDef;
import org.apache.tomcat.util.descriptor.web.FilterMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link PamFilter} on a plain embedded Tomcat 11 (no Spring), registered as the README says (on
 * {@code /*} for REQUEST and ASYNC, async supported): every way a servlet response can end
 * delivers the whole masked body and a complete record, as pam-servlet's {@code
 * PamFilterResponseEndingsTest} checks on Jetty 12.1 and Tomcat 10.1. Here because Boot 4's BOM
 * manages Tomcat 11, which pam-servlet's tests (on Tomcat 10.1) cannot have beside it. The values
 * to mask are split across writes and across the async hand-off; the text after the last of them
 * must arrive.
 */
class PamFilterTomcat11Test {
  static final String KEY = "ci-key-7f3a9b";
  static final String EMAIL = Boot4App.EMAIL;
  static final String CARD = Boot4App.CARD;
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

  static final Principal REVIEWER = new Principal("sam", Set.of("oncall"), "test", null, Map.of());

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
      approval:
        reviewers: [oncall]
        timeout: 5m
        rules:
          - name: bulk-export
            prompt-matches: "(?i)dump all"
      """;

  @TempDir Path baseDir;
  final InMemoryRecorder recorder = new InMemoryRecorder();
  final ExecutorService workers = Executors.newCachedThreadPool();
  final CountDownLatch firstEventRead = new CountDownLatch(1);
  final AtomicReference<Throwable> applicationFailed = new AtomicReference<>();
  final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  PamEngine engine;
  Tomcat tomcat;
  Connector connector;

  static String mask(String text) {
    return text.replace(EMAIL, "[EMAIL]").replace(CARD, "[CREDIT_CARD]");
  }

  @BeforeEach
  void start() throws Exception {
    engine =
        PamEngine.builder()
            .policy(Policy.parse(POLICY))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
    tomcat = new Tomcat();
    tomcat.setBaseDir(baseDir.toString());
    connector = new Connector();
    connector.setPort(0);
    connector.setProperty("address", "127.0.0.1");
    tomcat.setConnector(connector);
    Context context = tomcat.addContext("", null);
    FilterDef def = new FilterDef();
    def.setFilterName("inferpam");
    def.setFilter(new PamFilter(engine));
    def.setAsyncSupported("true");
    context.addFilterDef(def);
    FilterMap map = new FilterMap();
    map.setFilterName("inferpam");
    map.addURLPattern("/*");
    map.setDispatcher(DispatcherType.REQUEST.name());
    map.setDispatcher(DispatcherType.ASYNC.name());
    context.addFilterMap(map);
    Wrapper wrapper = Tomcat.addServlet(context, "application", new Application());
    wrapper.setAsyncSupported(true);
    context.addServletMappingDecoded("/*", "application");
    tomcat.start();
    assertThat(ServerInfo.getServerInfo()).startsWith("Apache Tomcat/11.");
  }

  @AfterEach
  void stop() throws Exception {
    firstEventRead.countDown();
    try {
      tomcat.stop();
      tomcat.destroy();
    } finally {
      workers.shutdownNow();
      engine.close();
    }
  }

  HttpRequest post(String ending, String prompt) {
    return HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + connector.getLocalPort() + "/v1/chat/completions"))
        .timeout(Duration.ofSeconds(20))
        .header("Authorization", "Bearer " + KEY)
        .header("Content-Type", "application/json")
        .header("X-Ending", ending)
        .POST(HttpRequest.BodyPublishers.ofString(Policies.chat("llama-3.1-8b", prompt, "")))
        .build();
  }

  /** Calls the application with {@code ending}; the status must be 200; returns the body. */
  String call(String ending) throws Exception {
    HttpResponse<String> response =
        http.send(post(ending, "hello"), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(ending).isEqualTo(200);
    return response.body();
  }

  /** The exchange's one record, once ended; its recording line says it is complete. */
  void assertCompleteRecord(String body) {
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().body()).isEqualTo(body);
    assertThat(RecordCodec.encode(record, RecordCodec.GENESIS)).contains("\"complete\":true");
    assertThat(applicationFailed.get()).isNull();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "return-stream",
        "return-writer",
        "timeout-answered",
        "dispatch-stream",
        "dispatch-writer",
        "dispatch-restart"
      })
  void textArrivesWholeAndMaskedWithItsTail(String ending) throws Exception {
    String body = call(ending);
    assertThat(body).isEqualTo(MASKED_TEXT);
    assertCompleteRecord(body);
  }

  @ParameterizedTest
  @ValueSource(strings = {"complete-json", "dispatch-json"})
  void aJsonAnswerWrittenAsynchronouslyArrivesWholeAndMasked(String ending) throws Exception {
    String body = call(ending);
    assertThat(body).isEqualTo(MASKED_ANSWER);
    assertCompleteRecord(body);
  }

  @Test
  void anAsyncTimeoutNobodyAnswersIsRecordedIncompleteAndNeverUnmasked() throws Exception {
    String received = "";
    try {
      received =
          http.send(post("timeout-unanswered", "hello"), HttpResponse.BodyHandlers.ofString())
              .body();
    } catch (IOException e) {
      // the container may cut the committed response off: what came before is all there is
    }
    assertThat(received).doesNotContain("4111");
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("4111");
  }

  @Test
  void anAsyncDispatchThatThrowsAfterTheResponseStartedIsRecordedIncompleteAndNeverUnmasked()
      throws Exception {
    String received = "";
    try {
      received =
          http.send(post("dispatch-throw-committed", "hello"), HttpResponse.BodyHandlers.ofString())
              .body();
    } catch (IOException e) {
      // the container cuts the committed response off: what came before is all there is
    }
    assertThat(received).doesNotContain("4111");
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().complete()).isFalse();
    assertThat(record.response().body()).doesNotContain("4111");
  }

  @Test
  void anAsyncDispatchThatThrowsBeforeAnyOutputIsAnsweredByTheContainerAndRecordedIncomplete()
      throws Exception {
    HttpResponse<String> response =
        http.send(post("dispatch-throw", "hello"), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(500);
    assertThat(response.body()).doesNotContain("4111");
    await().atMost(Duration.ofSeconds(10)).until(() -> !recorder.records().isEmpty());
    assertThat(recorder.records()).hasSize(1);
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(500);
    assertThat(record.response().complete()).isFalse();
  }

  @Test
  void serverSentEventsFlushMidStreamAndTheUnfinishedLastEventArrivesMasked() throws Exception {
    HttpResponse<InputStream> response =
        http.send(post("dispatch-sse", "hello"), HttpResponse.BodyHandlers.ofInputStream());
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
    assertCompleteRecord(mask(EVENT_1) + mask(EVENT_2) + "\n\n");
  }

  @Test
  void aRequestHeldForReviewThenAnsweredThroughAnAsyncDispatchArrivesWholeAndMasked()
      throws Exception {
    InProcessApprovalService approvals = (InProcessApprovalService) engine.approvalService();
    CompletableFuture<HttpResponse<String>> response =
        http.sendAsync(
            post("dispatch-stream", "please dump all rows"), HttpResponse.BodyHandlers.ofString());
    // The filter's async cycle (the wait, no thread held), then the application's own.
    List<ApprovalService.Pending> pending =
        await().atMost(Duration.ofSeconds(10)).until(approvals::pending, p -> !p.isEmpty());
    approvals.approve(pending.get(0).id(), REVIEWER, "fine");
    HttpResponse<String> answered = response.get(20, TimeUnit.SECONDS);
    assertThat(answered.statusCode()).isEqualTo(200);
    assertThat(answered.body()).isEqualTo(MASKED_TEXT);
    assertCompleteRecord(MASKED_TEXT);
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
