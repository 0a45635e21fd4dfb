package dev.inferpam.servlet;

import static dev.inferpam.servlet.TestPolicy.CI_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PamFilter} holding requests for a reviewer in a real Jetty: with servlet async (the
 * documented mapping), on the request thread when async is not supported, and safely when the
 * filter is not mapped to {@code ASYNC}.
 */
class PamFilterApprovalTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final Principal REVIEWER =
      new Principal("sec-bob", Set.of("security-oncall"), "test", null, java.util.Map.of());
  private static final String HELD =
      "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\","
          + "\"content\":\"please dump all customer rows\"}]}";
  private static final String PLAIN = TestPolicy.chat("");

  private final Queue<SessionRecord> records = new ConcurrentLinkedQueue<>();
  private final AtomicInteger invocations = new AtomicInteger();
  private final AtomicReference<String> appSaw = new AtomicReference<>();
  private final OkHttpClient client =
      new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(20)).build();
  private Server server;
  private PamEngine engine;
  private InProcessApprovalService approvals;

  /** Starts Jetty; {@code asyncFilter}: filter and servlet support async; {@code types}: the filter's mapping. */
  private void start(boolean asyncFilter, EnumSet<DispatcherType> types) throws Exception {
    start(asyncFilter, types, "1KiB");
  }

  /** {@link #start(boolean, EnumSet)} with {@code request.max-body: maxBody}. */
  private void start(boolean asyncFilter, EnumSet<DispatcherType> types, String maxBody)
      throws Exception {
    Policy policy =
        Policy.parse(
            TestPolicy.POLICY.replace("max-body: 1KiB", "max-body: " + maxBody)
                + """
        approval:
          reviewers: [security-oncall]
          timeout: 5m
          rules:
            - name: bulk-export
              prompt-matches: "(?i)dump all"
        """);
    engine =
        PamEngine.builder()
            .policy(policy)
            .credentialProvider(() -> new Credential("Authorization", TestPolicy.UPSTREAM_SECRET))
            .recorder(records::add)
            .clock(TestPolicy.CLOCK)
            .build();
    approvals = (InProcessApprovalService) engine.approvalService();
    server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(asyncFilter);
    context.addFilter(filter, "/*", types);
    ServletHolder app =
        new ServletHolder(
            new HttpServlet() {
              @Override
              protected void service(HttpServletRequest req, HttpServletResponse resp)
                  throws IOException {
                invocations.incrementAndGet();
                String auth = req.getHeader("Authorization");
                String body =
                    new String(req.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                appSaw.set(body);
                resp.setContentType("application/json");
                resp.getOutputStream()
                    .write(
                        ("{\"echo\":"
                                + TestServer.JSON.writeValueAsString(body)
                                + ",\"authorization\":"
                                + (auth != null)
                                + "}")
                            .getBytes(StandardCharsets.UTF_8));
              }
            });
    app.setAsyncSupported(asyncFilter);
    context.addServlet(app, "/*");
    server.setHandler(context);
    server.start();
  }

  @AfterEach
  void stop() throws Exception {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    if (server != null) server.stop();
    if (engine != null) engine.close();
  }

  private String url(String path) {
    return server.getURI().resolve(path).toString();
  }

  private CompletableFuture<Response> send(String body) {
    Request.Builder builder =
        new Request.Builder()
            .url(
                "http://127.0.0.1:"
                    + ((ServerConnector) server.getConnectors()[0]).getLocalPort()
                    + "/v1/chat/completions")
            .header("Authorization", "Bearer " + CI_KEY)
            .post(RequestBody.create(body.getBytes(StandardCharsets.UTF_8), JSON_TYPE));
    Request request = builder.build();
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return client.newCall(request).execute();
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        });
  }

  private InProcessApprovalService.Pending awaitPending() {
    return await()
        .atMost(Duration.ofSeconds(10))
        .until(approvals::pending, p -> p.size() == 1)
        .get(0);
  }

  private SessionRecord awaitRecord() {
    return await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> records.stream().filter(r -> r.approval() != null).findFirst(),
            Optional::isPresent)
        .orElseThrow();
  }

  @Test
  void aHeldRequestReachesTheApplicationOnlyAfterApprovalWithItsBodyAndWithoutTheCallersKey()
      throws Exception {
    start(true, EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    CompletableFuture<Response> call = send(HELD);
    InProcessApprovalService.Pending pending = awaitPending();
    assertThat(pending.rule()).isEqualTo("bulk-export");
    assertThat(invocations).hasValue(0);
    assertThat(call).isNotDone();

    // Other traffic is served while the request waits.
    try (Response plain = send(PLAIN).get(10, TimeUnit.SECONDS)) {
      assertThat(plain.code()).isEqualTo(200);
    }
    assertThat(invocations).hasValue(1);

    assertThat(approvals.approve(pending.id(), REVIEWER, "fine").kind())
        .isEqualTo(InProcessApprovalService.ReviewResult.Kind.DECIDED);
    try (Response r = call.get(10, TimeUnit.SECONDS)) {
      assertThat(r.code()).isEqualTo(200);
      JsonNode echo = TestServer.JSON.readTree(r.body().string());
      assertThat(echo.get("echo").asText()).isEqualTo(HELD);
      assertThat(echo.get("authorization").asBoolean()).isFalse();
    }
    SessionRecord record = awaitRecord();
    assertThat(record.decision().outcome()).isEqualTo("approved");
    assertThat(record.decision().rule()).isEqualTo("entitlements[0]");
    assertThat(record.approval().id()).isEqualTo(pending.id());
    assertThat(record.approval().reviewer()).isEqualTo("sec-bob");
    assertThat(record.approval().outcome()).isEqualTo("approved");
    assertThat(record.approval().reason()).isEqualTo("fine");
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.response().complete()).isTrue();
  }

  @Test
  void aRejectedRequestGetsTheReviewersReasonAndNeverReachesTheApplication() throws Exception {
    start(true, EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    CompletableFuture<Response> call = send(HELD);
    InProcessApprovalService.Pending pending = awaitPending();
    approvals.reject(pending.id(), REVIEWER, "not on a Friday");
    try (Response r = call.get(10, TimeUnit.SECONDS)) {
      assertThat(r.code()).isEqualTo(403);
      JsonNode error = TestServer.JSON.readTree(r.body().string()).get("error");
      assertThat(error.get("code").asText()).isEqualTo("approval_rejected");
      assertThat(error.get("message").asText()).contains("sec-bob", "not on a Friday");
    }
    assertThat(invocations).hasValue(0);
    SessionRecord record = awaitRecord();
    assertThat(record.decision().outcome()).isEqualTo("rejected");
    assertThat(record.decision().code()).isEqualTo("approval_rejected");
    assertThat(record.response().status()).isEqualTo(403);
  }

  @Test
  void withoutAsyncSupportTheRequestThreadWaitsAndTheOutcomeIsTheSame() throws Exception {
    start(false, EnumSet.of(DispatcherType.REQUEST));
    CompletableFuture<Response> call = send(HELD);
    InProcessApprovalService.Pending pending = awaitPending();
    assertThat(invocations).hasValue(0);
    approvals.approve(pending.id(), REVIEWER, null);
    try (Response r = call.get(10, TimeUnit.SECONDS)) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(TestServer.JSON.readTree(r.body().string()).get("echo").asText()).isEqualTo(HELD);
    }
    assertThat(awaitRecord().decision().outcome()).isEqualTo("approved");
  }

  @Test
  void aFilterNotMappedToAsyncNeverLetsTheApplicationReadAHeldRequest() throws Exception {
    start(true, EnumSet.of(DispatcherType.REQUEST));
    CompletableFuture<Response> call = send(HELD);
    // The body came with the head and was read at once; the request waits for its review
    // without a thread, and is dispatched again once approved.
    approvals.approve(awaitPending().id(), REVIEWER, null);
    try (Response r = call.get(10, TimeUnit.SECONDS)) {
      // The application got that dispatch without the filter, could not read the body, and
      // failed.
      assertThat(r.code()).isEqualTo(500);
      assertThat(r.body().string()).doesNotContain("dump all", CI_KEY);
    }
    assertThat(appSaw.get()).isNull();
    SessionRecord record = awaitRecord();
    assertThat(record.response().complete()).isFalse();
    assertThat(records).hasSize(1);
    assertThat(List.copyOf(records).get(0).id()).isEqualTo(record.id());
  }

  @Test
  void aFilterNotMappedToAsyncNeverLetsTheApplicationReadABodyReadWithoutAThread()
      throws Exception {
    start(true, EnumSet.of(DispatcherType.REQUEST), "1MiB");
    // Larger than what the filter reads at once when it came with the head (64 KiB): read
    // without a thread, then the request is dispatched again to the application, without the
    // filter.
    String large =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\","
            + "\"content\":\"please dump all customer rows "
            + "x".repeat(100 * 1024)
            + "\"}]}";
    CompletableFuture<Response> call = send(large);
    try (Response r = call.get(10, TimeUnit.SECONDS)) {
      assertThat(r.code()).isEqualTo(500);
      assertThat(r.body().string()).doesNotContain("dump all", CI_KEY);
    }
    assertThat(appSaw.get()).isNull();
    SessionRecord record = awaitRecord();
    assertThat(approvals.pending()).as("withdrawn from review").isEmpty();
    assertThat(record.response().complete()).isFalse();
  }
}
