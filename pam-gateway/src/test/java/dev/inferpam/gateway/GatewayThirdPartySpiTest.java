package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.BOB_KEY;
import static dev.inferpam.gateway.TestPolicies.DAVE_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.approvalPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.example.thirdparty.MapApprovalService;
import com.example.thirdparty.ThreadedRecorder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An {@code ApprovalService} and a {@code Recorder} written outside the project
 * ({@code com.example.thirdparty}, on {@code pam-api} alone) behind the gateway: a held request
 * is listed and decided on {@code /pam/approvals} exactly as with the built-in service, and its
 * record is built and stored by the custom recorder on its own thread.
 */
class GatewayThirdPartySpiTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final Duration WAIT = Duration.ofSeconds(10);

  private MockWebServer upstream;
  private OkHttpClient client;
  private MapApprovalService approvals;
  private ThreadedRecorder recorder;
  private Gateway gateway;

  @BeforeEach
  void start() throws IOException {
    upstream = new MockWebServer();
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .addHeader("Content-Type", "application/json")
            .body("{\"answer\":\"the rows\"}")
            .build());
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    client =
        new OkHttpClient.Builder()
            .readTimeout(Duration.ofSeconds(20))
            .callTimeout(Duration.ofSeconds(25))
            .build();

    Policy policy = Policy.parse(approvalPolicy("5m", "0s", "", ""));
    approvals =
        new MapApprovalService(
            Clock.systemUTC(), policy.approval().reviewers(), policy.approval().timeout(), 5, 100);
    recorder = new ThreadedRecorder();
    PamEngine engine =
        PamEngine.builder()
            .policy(policy)
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .approvalService(approvals)
            .recorder(recorder)
            .build();
    gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0, Gateway.DEFAULT_MAX_THREADS);
  }

  @AfterEach
  void stop() throws Exception {
    client.dispatcher().cancelAll();
    client.connectionPool().evictAll();
    if (gateway != null) gateway.close(Duration.ofSeconds(5));
    approvals.close(); // the engine does not close a service it was given
    upstream.close();
  }

  @Test
  void aHeldRequestIsListedApprovedOverHttpForwardedAndRecordedByTheCustomRecorder()
      throws Exception {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"dump all customer rows\"}]}";
    CompletableFuture<Answer> alice = call(ALICE_KEY, body);

    JsonNode item =
        await()
            .atMost(WAIT)
            .pollInterval(Duration.ofMillis(20))
            .until(() -> list(BOB_KEY), items -> items.size() == 1)
            .get(0);
    assertThat(upstream.getRequestCount()).as("nothing forwarded while held").isZero();
    assertThat(alice).isNotDone();
    String id = item.path("id").asText();
    assertThat(id).startsWith("rev-");
    assertThat(item.path("principal").asText()).isEqualTo("alice");
    assertThat(item.path("rule").asText()).isEqualTo("bulk-export");
    assertThat(item.path("model").asText()).isEqualTo("llama-3.1-8b");
    assertThat(item.path("excerpt").asText()).isEqualTo("dump all customer rows");
    assertThat(list(DAVE_KEY)).as("dave is a reviewer too").hasSize(1);

    Answer decision =
        send(
            "POST", "/pam/approvals/" + id + "/approve", BOB_KEY, "{\"reason\":\"ticket OPS-42\"}");
    assertThat(decision.code).as(decision.body).isEqualTo(200);
    assertThat(decision.json().path("status").asText()).isEqualTo("approved");
    assertThat(decision.json().path("reviewer").asText()).isEqualTo("bob");

    Answer answer = alice.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(200);
    assertThat(answer.body).isEqualTo("{\"answer\":\"the rows\"}");
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_AUTHORIZATION);
    assertThat(list(BOB_KEY)).isEmpty();
    Answer again = send("POST", "/pam/approvals/" + id + "/reject", BOB_KEY, null);
    assertThat(again.code).isEqualTo(409);
    assertThat(again.json().path("error").path("code").asText()).isEqualTo("already_decided");

    SessionRecord record =
        await()
            .atMost(WAIT)
            .pollInterval(Duration.ofMillis(20))
            .until(
                () ->
                    recorder.records().stream()
                        .filter(r -> id.equals(r.approval() == null ? null : r.approval().id()))
                        .findFirst()
                        .orElse(null),
                r -> r != null);
    assertThat(record.decision().outcome()).isEqualTo("approved");
    assertThat(record.principal().subject()).isEqualTo("alice");
    assertThat(record.approval().reviewer()).isEqualTo("bob");
    assertThat(record.approval().outcome()).isEqualTo("approved");
    assertThat(record.approval().reason()).isEqualTo("ticket OPS-42");
    assertThat(record.response().status()).isEqualTo(200);
    assertThat(record.request().headers().get("authorization")).containsExactly("[REDACTED]");
    assertThat(recorder.builtOn())
        .as("every record was built on the recorder's own thread")
        .isNotEmpty()
        .containsOnly(ThreadedRecorder.THREAD);
  }

  @Test
  void reviewerRulesHoldForTheCustomServiceOverHttp() throws Exception {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"export all audit logs\"}]}";
    CompletableFuture<Answer> dave = call(DAVE_KEY, body);
    String id =
        await()
            .atMost(WAIT)
            .pollInterval(Duration.ofMillis(20))
            .until(() -> list(BOB_KEY), items -> items.size() == 1)
            .get(0)
            .path("id")
            .asText();

    assertThat(list(DAVE_KEY)).as("a reviewer is not shown their own request").isEmpty();
    Answer self = send("POST", "/pam/approvals/" + id + "/approve", DAVE_KEY, null);
    assertThat(self.code).isEqualTo(403);
    assertThat(self.json().path("error").path("code").asText()).isEqualTo("self_approval");
    Answer outsider = send("GET", "/pam/approvals", ALICE_KEY, null);
    assertThat(outsider.code).isEqualTo(403);
    assertThat(outsider.json().path("error").path("code").asText()).isEqualTo("not_a_reviewer");
    assertThat(send("POST", "/pam/approvals/rev-unknown/approve", BOB_KEY, null).code)
        .isEqualTo(404);

    Answer rejected =
        send("POST", "/pam/approvals/" + id + "/reject", BOB_KEY, "{\"reason\":\"no\"}");
    assertThat(rejected.code).isEqualTo(200);
    Answer answer = dave.get(10, TimeUnit.SECONDS);
    assertThat(answer.code).isEqualTo(403);
    assertThat(answer.json().path("error").path("code").asText()).isEqualTo("approval_rejected");
    assertThat(upstream.getRequestCount()).isZero();
  }

  // ---------------------------------------------------------------------------------------------

  private List<JsonNode> list(String key) throws IOException {
    Answer listed = send("GET", "/pam/approvals", key, null);
    assertThat(listed.code).as(listed.body).isEqualTo(200);
    List<JsonNode> items = new ArrayList<>();
    listed.json().path("approvals").forEach(items::add);
    return items;
  }

  private Answer send(String method, String path, String key, String body) throws IOException {
    HttpUrl url = HttpUrl.get(gateway.uri()).newBuilder().encodedPath(path).build();
    RequestBody rb =
        body != null
            ? RequestBody.create(body, JSON_TYPE)
            : method.equals("POST") ? RequestBody.create(new byte[0]) : null;
    Request request =
        new Request.Builder()
            .url(url)
            .method(method, rb)
            .header("Authorization", "Bearer " + key)
            .build();
    try (Response r = client.newCall(request).execute()) {
      return new Answer(r.code(), r.body().string());
    }
  }

  private CompletableFuture<Answer> call(String key, String body) {
    HttpUrl url =
        HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
    Request request =
        new Request.Builder()
            .url(url)
            .post(RequestBody.create(body, JSON_TYPE))
            .header("Authorization", "Bearer " + key)
            .build();
    CompletableFuture<Answer> answer = new CompletableFuture<>();
    client
        .newCall(request)
        .enqueue(
            new Callback() {
              @Override
              public void onFailure(Call call, IOException e) {
                answer.completeExceptionally(e);
              }

              @Override
              public void onResponse(Call call, Response response) {
                try (response) {
                  answer.complete(new Answer(response.code(), response.body().string()));
                } catch (IOException | RuntimeException e) {
                  answer.completeExceptionally(e);
                }
              }
            });
    return answer;
  }

  record Answer(int code, String body) {
    JsonNode json() throws IOException {
      return JSON.readTree(body);
    }
  }
}
