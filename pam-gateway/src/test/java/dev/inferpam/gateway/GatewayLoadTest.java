package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.ConnectionPool;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Many concurrent callers through the gateway: every exchange recorded once, the chain intact.
 *
 * <p>The upstream is a Jetty servlet rather than MockWebServer: MockWebServer writes headers and
 * body in two segments without {@code TCP_NODELAY}, so every request would wait ~40 ms for a
 * delayed ACK and 16,000 requests would take minutes for reasons that are not ours.
 */
class GatewayLoadTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final int THREADS = 8;
  private static final int REQUESTS_PER_THREAD = 2_000;

  @TempDir Path dir;

  @Test
  void eightThreadsTimesTwoThousandRequestsGiveExactlySixteenThousandVerifiableLines()
      throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.policyRecordingTo(dir, "batched")))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .build();
    OkHttpClient client =
        new OkHttpClient.Builder()
            .connectionPool(new ConnectionPool(THREADS, 1, TimeUnit.MINUTES))
            .build();
    ExecutorService callers = Executors.newFixedThreadPool(THREADS);
    AtomicInteger upstreamRequests = new AtomicInteger();
    Server upstream = new Server();
    ServerConnector connector = new ServerConnector(upstream);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    upstream.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.addServlet(
        new ServletHolder(
            new HttpServlet() {
              private static final long serialVersionUID = 1L;

              @Override
              protected void doPost(HttpServletRequest req, HttpServletResponse resp)
                  throws java.io.IOException {
                req.getInputStream().readAllBytes();
                upstreamRequests.incrementAndGet();
                byte[] body =
                    ("{\"choices\":[{\"message\":{\"content\":\"ok\"}}],"
                            + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}")
                        .getBytes(StandardCharsets.UTF_8);
                resp.setContentType("application/json");
                resp.setContentLength(body.length);
                resp.getOutputStream().write(body);
              }
            }),
        "/*");
    upstream.setHandler(context);
    upstream.start();
    try {
      Gateway gateway =
          Gateway.start(
              engine,
              HttpUrl.get("http://127.0.0.1:" + connector.getLocalPort() + "/"),
              "127.0.0.1",
              0);
      try {
        HttpUrl url =
            HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Integer>> results = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          int thread = t;
          results.add(
              callers.submit(
                  () -> {
                    start.await();
                    int ok = 0;
                    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
                      // a distinct body per request, so each line can be matched to its request
                      String body = chat("llama-3.1-8b", "\"user\":\"t" + thread + "-" + i + "\"");
                      Request request =
                          new Request.Builder()
                              .url(url)
                              .header("Authorization", "Bearer " + ALICE_KEY)
                              .post(RequestBody.create(body, JSON_TYPE))
                              .build();
                      try (Response response = client.newCall(request).execute()) {
                        response.body().string();
                        if (response.code() == 200) ok++;
                      }
                    }
                    return ok;
                  }));
        }
        start.countDown();
        int allowed = 0;
        for (Future<Integer> f : results) allowed += f.get(5, TimeUnit.MINUTES);
        assertThat(allowed).isEqualTo(THREADS * REQUESTS_PER_THREAD);
      } finally {
        callers.shutdown();
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        gateway.close();
      }
      assertThat(upstreamRequests).hasValue(THREADS * REQUESTS_PER_THREAD);
    } finally {
      upstream.stop();
    }

    Recordings recordings = Recordings.open(dir);
    Recordings.Verification verification = recordings.verify();
    assertThat(verification.ok()).as("chain verifies: %s", verification).isTrue();
    assertThat(verification.records()).isEqualTo(THREADS * REQUESTS_PER_THREAD);
    List<Recordings.Entry> exchanges = recordings.list(null, null);
    assertThat(exchanges).hasSize(THREADS * REQUESTS_PER_THREAD);
    Set<String> ids = new HashSet<>();
    Set<String> users = new HashSet<>();
    for (Recordings.Entry e : exchanges) {
      SessionRecord r = e.record();
      ids.add(r.id());
      users.add(r.request().body().replaceAll(".*\"user\":\"([^\"]+)\".*", "$1"));
      assertThat(r.decision().outcome()).isEqualTo("allow");
      assertThat(r.response().complete()).isTrue();
      assertThat(r.response().usage())
          .containsEntry("prompt_tokens", 3L)
          .containsEntry("completion_tokens", 1L);
    }
    assertThat(ids).as("one line per exchange, none twice").hasSize(THREADS * REQUESTS_PER_THREAD);
    assertThat(users).as("every request has its own line").hasSize(THREADS * REQUESTS_PER_THREAD);
  }
}
