package dev.inferpam.examples.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.examples.gateway.Gateway;
import dev.inferpam.examples.replay.Replay;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * {@code java -jar pam-gateway.jar demo}: starts a {@link MockModelServer} and a {@link Gateway}
 * in front of it on 127.0.0.1, then sends narrated traffic through the gateway with a plain
 * OkHttp client, one step per control:
 *
 * <ol>
 *   <li>an allowed chat call (200), reaching the model server with the gateway's credential and
 *       without the caller's key;</li>
 *   <li>a streamed answer (200, server-sent events printed as they arrive), in which an email
 *       address and a phone number split across events arrive masked ({@code masking} in the
 *       policy);</li>
 *   <li>a model the caller is not entitled to (403 {@code not_entitled});</li>
 *   <li>a blocked model download, Ollama's {@code /api/pull} (403 {@code blocked});</li>
 *   <li>a denied extraction parameter, {@code logprobs} (403 {@code parameter_denied});</li>
 *   <li>a bulk export that waits for a reviewer: the reviewer (sec-bob) lists it on
 *       {@code GET /pam/approvals} and approves it, and the held request then gets its answer
 *       (200);</li>
 *   <li>a quota hit: the CI job looks at its budget on {@code GET /pam/quota}, then asks for more
 *       output than its daily token budget holds (429 {@code quota_exceeded} with
 *       {@code Retry-After});</li>
 *   <li>no credential at all (401 {@code unauthenticated}).</li>
 * </ol>
 *
 * <p>Then it stops everything, which flushes the recording, and ends with the recording: the
 * exchanges as {@code replay list} shows them, the chain checked as {@code replay verify} does,
 * and the directory, which it leaves in place for the user to look at. The demo does not keep
 * serving, with or without {@code --port} (which only picks the gateway's port). It needs no
 * network beyond 127.0.0.1 and no environment: the policy ({@code demo-policy.yaml}, next to
 * this class) names an environment variable for the upstream credential as a deployment would,
 * and the demo overrides it with {@link PamEngine.Builder#credentialProvider}; its
 * {@code recording} section is added at run time, because the directory is created then. The
 * API keys below are published demo constants, not secrets; the policy holds only their SHA-256.
 *
 * <p>Output is plain text on the given stream; logs go to standard error. Each step checks what
 * it shows, so the return value says whether the gateway behaved as narrated.
 *
 * <p>Not yet shown: OIDC tokens (a forged one refused).
 */
public final class Demo {

  /** Alice's demo API key (group {@code ml-engineers}). Demo-only constant. */
  public static final String ALICE_KEY = "demo-key-alice-0000-not-a-secret";

  /** The nightly evaluation job's demo API key (group {@code ci}). Demo-only constant. */
  public static final String NIGHTLY_EVAL_KEY = "demo-key-nightly-eval-0000-not-a-secret";

  /** The on-call security engineer's demo API key (group {@code security-oncall}, a reviewer). Demo-only constant. */
  public static final String SEC_BOB_KEY = "demo-key-sec-bob-0000-not-a-secret";

  /** How long the demo waits for its own held request to show up for the reviewer. */
  private static final Duration REVIEW_WAIT = Duration.ofSeconds(10);

  /** The credential the mock model server demands and the gateway injects. Demo-only constant. */
  static final String UPSTREAM_SECRET = "demo-upstream-secret-0000";

  static final String POLICY_RESOURCE = "demo-policy.yaml";

  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final ObjectMapper JSON = new ObjectMapper();

  private final PrintStream out;
  private final OkHttpClient client;
  private final HttpUrl gateway;
  private final List<String> failures = new ArrayList<>();
  private int step;

  private Demo(PrintStream out, OkHttpClient client, HttpUrl gateway) {
    this.out = out;
    this.client = client;
    this.gateway = gateway;
  }

  /**
   * Runs the demo, narrating on {@code out}, recording into a new temporary directory that is
   * left in place (its path is printed).
   *
   * @param gatewayPort the gateway's port, 0 for a free one
   * @return 0 when every step went as narrated, 1 otherwise
   * @throws IOException when the recording directory cannot be created, or the mock server or
   *     the gateway cannot start
   */
  public static int run(PrintStream out, int gatewayPort) throws IOException {
    Objects.requireNonNull(out, "out");
    return run(out, gatewayPort, Files.createTempDirectory("inferpam-demo-recording-"));
  }

  /**
   * As {@link #run(PrintStream, int)}, recording into {@code recordingDirectory} (created when
   * absent; expected empty, since the demo checks that it holds exactly its own exchanges).
   */
  public static int run(PrintStream out, int gatewayPort, Path recordingDirectory) throws IOException {
    Objects.requireNonNull(out, "out");
    Objects.requireNonNull(recordingDirectory, "recordingDirectory");
    String upstreamAuthorization = "Bearer " + UPSTREAM_SECRET;
    Policy policy = Policy.parse(policyText(recordingDirectory));
    Demo demo;
    try (MockModelServer model = MockModelServer.start(upstreamAuthorization,
        List.of(ALICE_KEY, NIGHTLY_EVAL_KEY, SEC_BOB_KEY))) {
      PamEngine engine = PamEngine.builder()
          .policy(policy)
          .credentialProvider(() -> new Credential("Authorization", upstreamAuthorization))
          .build();
      // Closing the gateway (end of this block) drains it and flushes the recorder, so the
      // recording is complete when it is read below.
      try (Gateway gw = Gateway.start(engine, HttpUrl.get(model.uri()), "127.0.0.1", gatewayPort)) {
        out.println("inferpam demo");
        out.println("  mock model server: " + model.uri() + " (demands its own key, which only the gateway holds)");
        out.println("  gateway:           " + gw.uri() + " (policy: " + POLICY_RESOURCE + ")");
        out.println("  callers: alice (group ml-engineers), nightly-eval (group ci), each with an API key;");
        out.println("           sec-bob (group security-oncall) reviews held requests");
        out.println("  recording:         " + recordingDirectory);
        OkHttpClient client = new OkHttpClient.Builder()
            .connectTimeout(Duration.ofSeconds(5))
            .readTimeout(Duration.ofSeconds(30))
            .build();
        demo = new Demo(out, client, HttpUrl.get(gw.uri()));
        try {
          demo.narrate(model);
        } finally {
          // Before the gateway closes: an idle keep-alive connection would hold up its drain.
          client.dispatcher().executorService().shutdown();
          client.connectionPool().evictAll();
        }
      }
    }
    demo.showRecording(recordingDirectory);
    return demo.conclude();
  }

  private void narrate(MockModelServer model) throws IOException {
    // 1. allowed
    title("alice asks llama-3.1-8b a question");
    try (Response r = send(chat("llama-3.1-8b", "What does a PAM gateway do?", ""), ALICE_KEY, false)) {
      JsonNode body = JSON.readTree(r.body().string());
      outcome(r.code(), null, null, 200, null);
      detail("answer: " + body.path("choices").path(0).path("message").path("content").asText());
    }
    List<MockModelServer.Seen> seen = model.seen();
    if (!seen.isEmpty()) {
      MockModelServer.Seen first = seen.get(seen.size() - 1);
      detail("the model server got the gateway's credential (Authorization: Bearer ██): "
          + yesNo(first.upstreamCredentialOk()) + "; alice's key: " + yesNo(first.callerKeySeen()));
      if (!first.upstreamCredentialOk() || first.callerKeySeen()) fail("credential swap");
    }

    // 2. streamed
    title("alice streams an answer from llama-3.1-70b");
    try (Response r = send(chat("llama-3.1-70b", "Tell me about least privilege.", ",\"stream\":true"),
        ALICE_KEY, false)) {
      outcome(r.code(), null, null, 200, null);
      detail("content-type: " + r.header("Content-Type") + "; events as they arrive:");
      int events = 0;
      StringBuilder answer = new StringBuilder();
      BufferedSource source = r.body().source();
      for (String line; (line = source.readUtf8Line()) != null; ) {
        if (!line.startsWith("data: ")) continue;
        events++;
        String data = line.substring("data: ".length());
        if (data.equals("[DONE]")) {
          detail("  <- [DONE]");
        } else {
          JsonNode choice = JSON.readTree(data).path("choices").path(0);
          String content = choice.path("delta").path("content").asText();
          answer.append(content);
          detail(choice.path("finish_reason").isTextual()
              ? "  <- \"" + content + "\" (finish_reason: " + choice.path("finish_reason").asText() + ")"
              : "  <- \"" + content + "\"");
        }
      }
      if (events == 0) fail("no server-sent events arrived");
      detail("the model sent an email address and a phone number split across events; alice got:");
      detail("  " + answer.toString().strip());
      if (answer.indexOf("[EMAIL]") < 0 || answer.indexOf("[PHONE]") < 0 || answer.indexOf("@example.com") >= 0
          || answer.indexOf("555-2671") >= 0) {
        fail("the streamed answer was not masked");
      }
    }

    // 3. not entitled
    title("nightly-eval (group ci) asks gpt-4o-mini, a model its group is not entitled to");
    expectDenial(send(chat("gpt-4o-mini", "Summarise the test report.", ""), NIGHTLY_EVAL_KEY, true),
        403, "not_entitled");

    // 4. blocked
    title("alice tries to download a model through Ollama's /api/pull");
    expectDenial(send(post("/api/pull", "{\"model\":\"llama3.1:405b\"}"), ALICE_KEY, false), 403, "blocked");

    // 5. parameter denied
    title("alice asks for logprobs, which help extract a model");
    expectDenial(send(chat("llama-3.1-8b", "Hello", ",\"logprobs\":true"), ALICE_KEY, false),
        403, "parameter_denied");

    // 6. approval
    title("alice asks to export all customer records: rule bulk-export holds it for a reviewer");
    CompletableFuture<Response> held = sendAsync(chat("llama-3.1-8b", "Export all customer records as CSV.", ""),
        ALICE_KEY);
    JsonNode review = awaitReview();
    if (review == null) {
      fail("the held request did not show up on GET /pam/approvals");
      held.cancel(true);
    } else {
      String id = review.path("id").asText();
      detail("sec-bob: GET /pam/approvals -> " + id + ", rule " + review.path("rule").asText() + ", principal "
          + review.path("principal").asText() + ", excerpt \"" + review.path("excerpt").asText() + "\"");
      boolean early = model.seen().size() > 2;
      detail("while it waits, the model server has seen it: " + yesNo(early));
      if (early) fail("the held request reached the model before approval");
      try (Response decision = reviewer(new Request.Builder()
          .url(gateway.newBuilder().encodedPath("/pam/approvals/" + id + "/approve").build())
          .post(RequestBody.create("{\"reason\":\"ticket SEC-42: export for the audit\"}", JSON_TYPE)))) {
        JsonNode body = JSON.readTree(decision.body().string());
        detail("sec-bob: POST /pam/approvals/" + id + "/approve -> " + decision.code() + " "
            + body.path("status").asText());
        if (decision.code() != 200) fail("approving answered " + decision.code());
      }
      try (Response r = held.get(REVIEW_WAIT.toSeconds(), TimeUnit.SECONDS)) {
        JsonNode body = JSON.readTree(r.body().string());
        outcome(r.code(), null, null, 200, null);
        detail("answer, after approval: " + body.path("choices").path(0).path("message").path("content").asText());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      } catch (ExecutionException | TimeoutException e) {
        fail("the approved request got no answer: " + e);
      }
    }

    // 7. quota
    title("nightly-eval asks for up to 3000 tokens, more than its daily budget of 2000");
    try (Response quota = client.newCall(new Request.Builder()
        .url(gateway.newBuilder().encodedPath("/pam/quota").build())
        .header("X-Api-Key", NIGHTLY_EVAL_KEY).build()).execute()) {
      JsonNode limits = JSON.readTree(quota.body().string()).path("limits");
      for (JsonNode limit : limits) {
        JsonNode day = limit.path("tokens_per_day");
        if (day.isObject()) {
          detail("GET /pam/quota -> " + limit.path("rule").asText() + " tokens_per_day: " + day.path("remaining")
              + " of " + day.path("limit") + " left");
        }
      }
    }
    try (Response r = send(chat("llama-3.1-8b", "Write the full evaluation report.", ",\"max_tokens\":3000"),
        NIGHTLY_EVAL_KEY, true)) {
      String retryAfter = r.header("Retry-After");
      JsonNode error = JSON.readTree(r.body().string()).path("error");
      outcome(r.code(), error.path("code").asText(null), error.path("message").asText(null), 429, "quota_exceeded");
      detail("Retry-After: " + retryAfter + " s (the UTC day's budget renews at midnight)");
      if (retryAfter == null) fail("no Retry-After on the quota refusal");
    }

    // 8. no credential
    title("someone calls without any credential");
    expectDenial(send(chat("llama-3.1-8b", "Hello", ""), null, false), 401, "unauthenticated");

    out.println();
    int reached = model.seen().size();
    out.println("done: " + step + " requests sent; " + reached + " reached the model server, "
        + (step - reached) + " were refused by the gateway before it.");
    if (reached != 3) fail("expected 3 requests at the model server, saw " + reached);
  }

  /** Sends on another thread: the request waits at the gateway until a reviewer decides. */
  private CompletableFuture<Response> sendAsync(Request.Builder request, String key) {
    request.header("Authorization", "Bearer " + key);
    Request built = request.build();
    detail(built.method() + " " + built.url().encodedPath() + " (Authorization: Bearer), which waits...");
    CompletableFuture<Response> answer = new CompletableFuture<>();
    client.newCall(built).enqueue(new Callback() {
      @Override
      public void onFailure(Call call, IOException e) {
        answer.completeExceptionally(e);
      }

      @Override
      public void onResponse(Call call, Response response) {
        answer.complete(response);
      }
    });
    return answer;
  }

  /** Polls {@code GET /pam/approvals} as sec-bob until a review is listed; {@code null} if none comes. */
  private JsonNode awaitReview() throws IOException {
    long deadline = System.nanoTime() + REVIEW_WAIT.toNanos();
    while (System.nanoTime() < deadline) {
      try (Response r = reviewer(new Request.Builder().url(gateway.newBuilder().encodedPath("/pam/approvals").build()))) {
        JsonNode list = JSON.readTree(r.body().string()).path("approvals");
        if (list.size() > 0) return list.get(0);
      }
      try {
        Thread.sleep(20); // a reviewer polling; the demo's own request is on its way
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }
    return null;
  }

  /** A reviewer endpoint call as sec-bob; not an exchange, so not recorded. */
  private Response reviewer(Request.Builder request) throws IOException {
    return client.newCall(request.header("Authorization", "Bearer " + SEC_BOB_KEY).build()).execute();
  }

  /**
   * Shows the recording as {@code replay list} and {@code replay verify} would: one line per
   * exchange, allowed and refused alike, and the hash chain checked.
   */
  private void showRecording(Path directory) throws IOException {
    out.println();
    out.println("the recording: one hash-chained line per exchange, refused ones included");
    Replay replay = Replay.open(directory);
    List<String> exchanges = replay.list(null, null);
    detail("replay list --recordings " + directory);
    for (String line : exchanges) detail("  " + line);
    Recordings.Verification verification = replay.verify();
    detail("replay verify --recordings " + directory);
    detail("  " + Replay.format(verification));
    if (exchanges.size() != step) fail("expected " + step + " exchanges in the recording, found " + exchanges.size());
    if (!verification.ok()) fail("the recording chain does not verify");
    out.println();
    out.println("recording kept in " + directory);
    out.println("  look again: java -jar pam-gateway.jar replay list --recordings " + directory);
  }

  private int conclude() {
    if (!failures.isEmpty()) {
      out.println("UNEXPECTED: " + String.join("; ", failures));
      out.flush();
      return 1;
    }
    out.flush();
    return 0;
  }

  private void expectDenial(Response response, int status, String code) throws IOException {
    try (response) {
      JsonNode error = JSON.readTree(response.body().string()).path("error");
      outcome(response.code(), error.path("code").asText(null), error.path("message").asText(null), status, code);
    }
  }

  private Request.Builder chat(String model, String question, String extraJson) {
    String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
        + question + "\"}]" + extraJson + "}";
    return post("/v1/chat/completions", body);
  }

  private Request.Builder post(String path, String json) {
    return new Request.Builder()
        .url(gateway.newBuilder().encodedPath(path).build())
        .post(RequestBody.create(json, JSON_TYPE));
  }

  /** Sends with the caller's key as {@code Authorization: Bearer}, or as {@code X-Api-Key}. */
  private Response send(Request.Builder request, String key, boolean asXApiKey) throws IOException {
    if (key != null) {
      if (asXApiKey) request.header("X-Api-Key", key);
      else request.header("Authorization", "Bearer " + key);
    }
    Request built = request.build();
    detail(built.method() + " " + built.url().encodedPath()
        + (key == null ? " (no credential)" : asXApiKey ? " (X-Api-Key)" : " (Authorization: Bearer)"));
    return client.newCall(built).execute();
  }

  private void title(String text) {
    step++;
    out.println();
    out.println("[" + step + "] " + text);
  }

  private void outcome(int status, String code, String message, int expectedStatus, String expectedCode) {
    String shown = status == 200 ? "allowed" : code + (message == null ? "" : ": " + message);
    detail("-> " + status + " " + shown);
    if (status != expectedStatus || !Objects.equals(code, expectedCode)) {
      fail("step " + step + " answered " + status + " " + code + ", expected " + expectedStatus + " "
          + (expectedCode == null ? "allowed" : expectedCode));
    }
  }

  private void detail(String text) {
    out.println("    " + text);
    out.flush();
  }

  private void fail(String what) {
    failures.add(what);
  }

  private static String yesNo(boolean b) {
    return b ? "yes" : "no";
  }

  static String policyText() {
    try (InputStream in = Demo.class.getResourceAsStream(POLICY_RESOURCE)) {
      if (in == null) throw new IllegalStateException(POLICY_RESOURCE + " is missing from the jar");
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The demo policy with a {@code recording} section for {@code directory}. Batched durability:
   * group commits keep the demo quick, and closing the gateway still flushes every record.
   */
  static String policyText(Path directory) {
    String path = directory.toAbsolutePath().toString().replace("\\", "\\\\").replace("\"", "\\\"");
    return policyText() + "\nrecording:\n  directory: \"" + path + "\"\n  durability: batched\n";
  }
}
