package dev.inferpam.gateway.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.core.stream.SseEvent;
import dev.inferpam.core.stream.SseFramer;
import dev.inferpam.gateway.Gateway;
import dev.inferpam.gateway.GatewayMain;
import dev.inferpam.gateway.replay.Replay;
import java.io.Console;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
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

/**
 * {@code java -jar pam-gateway.jar demo} ({@link GatewayMain}): starts a {@link MockModelServer}, a
 * {@link DemoIdentityProvider} and a {@link Gateway} in front of the model server, all on
 * 127.0.0.1, then sends narrated traffic through the gateway with a plain OkHttp client, one step
 * per control:
 *
 * <ol>
 *   <li>an allowed chat call (200), reaching the model server with the gateway's credential and
 *       without the caller's key;</li>
 *   <li>a user who signed in with the identity provider: carol's OIDC access token (RS256,
 *       {@code typ: at+jwt}) is checked against the issuer's published keys, which the gateway
 *       discovers on this first token, and her {@code groups} claim entitles her (200);</li>
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
 *   <li>a forged token: carol's claims and the issuer's {@code kid}, signed with a key pair the
 *       issuer never published (401 {@code unauthenticated}, {@code signature invalid});</li>
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
 * {@code recording} section is added at run time, because the directory is created then, and
 * so is its OIDC issuer (the {@value #ISSUER_PLACEHOLDER} placeholder), because the identity
 * provider's port is free-chosen. The API keys below are published demo constants, not secrets;
 * the policy holds only their SHA-256. Tokens are never printed whole.
 *
 * <p>Output is plain text on the given stream, with ANSI colours for step titles and outcomes
 * only when asked ({@link #run(PrintStream, int, Path, boolean)}), or when the stream is
 * {@code System.out} and {@link #colourSupported()}; logs go to standard error. Each step checks
 * what it shows, so the return value says whether the gateway behaved as narrated.
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

  /** In {@link #POLICY_RESOURCE}, stands for the demo identity provider's issuer URL. */
  static final String ISSUER_PLACEHOLDER = "${DEMO_ISSUER}";

  /** The demo user who signs in with the identity provider (group {@code ml-engineers}). */
  static final String OIDC_USER = "carol";

  /** How to run pam-gateway.jar from the repository's root, where the build leaves it. */
  static final String GATEWAY_JAR_COMMAND = "java -jar pam-gateway/target/pam-gateway.jar";

  /** Requests the demo expects to reach the model server: steps 1, 2, 3 and 7. */
  static final int EXPECTED_AT_MODEL = 4;

  private static final String BOLD = "\u001b[1m";
  private static final String CYAN = "\u001b[36m";
  private static final String GREEN = "\u001b[32m";
  private static final String YELLOW = "\u001b[33m";
  private static final String RED = "\u001b[31m";
  private static final String RESET = "\u001b[0m";

  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final ObjectMapper JSON = new ObjectMapper();

  private final PrintStream out;
  private final boolean colour;
  private final OkHttpClient client;
  private final HttpUrl gateway;
  private final DemoIdentityProvider idp;
  private final Policy.OidcIssuer oidc;
  private final String oidcToken;
  private final List<String> failures = new ArrayList<>();
  private int step;

  private Demo(
      PrintStream out,
      boolean colour,
      OkHttpClient client,
      HttpUrl gateway,
      DemoIdentityProvider idp,
      Policy.OidcIssuer oidc,
      String oidcToken) {
    this.out = out;
    this.colour = colour;
    this.client = client;
    this.gateway = gateway;
    this.idp = idp;
    this.oidc = oidc;
    this.oidcToken = oidcToken;
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
   * Colours only when {@code out} is {@code System.out} and {@link #colourSupported()}.
   */
  public static int run(PrintStream out, int gatewayPort, Path recordingDirectory)
      throws IOException {
    Objects.requireNonNull(out, "out");
    return run(out, gatewayPort, recordingDirectory, out == System.out && colourSupported());
  }

  /**
   * As {@link #run(PrintStream, int, Path)}, with ANSI colours for step titles and outcomes when
   * {@code colour} is true (a command line decides with {@link #colourSupported()}), plain text
   * otherwise.
   */
  public static int run(PrintStream out, int gatewayPort, Path recordingDirectory, boolean colour)
      throws IOException {
    Objects.requireNonNull(out, "out");
    Objects.requireNonNull(recordingDirectory, "recordingDirectory");
    String upstreamAuthorization = "Bearer " + UPSTREAM_SECRET;
    Demo demo;
    try (DemoIdentityProvider idp = DemoIdentityProvider.start()) {
      Policy policy = Policy.parse(policyText(recordingDirectory, idp.issuer()));
      Policy.OidcIssuer oidc =
          policy.identity().oidc().stream()
              .filter(issuer -> issuer.issuer().equals(idp.issuer()))
              .findFirst()
              .orElseThrow(
                  () ->
                      new IllegalStateException(
                          POLICY_RESOURCE
                              + " has no identity.oidc entry for "
                              + ISSUER_PLACEHOLDER));
      // Minted now so that the model server can watch for it; carol "signs in" at step 2.
      String carolToken = idp.accessToken(OIDC_USER, oidc.audience());
      try (MockModelServer model =
          MockModelServer.start(
              upstreamAuthorization,
              List.of(ALICE_KEY, NIGHTLY_EVAL_KEY, SEC_BOB_KEY, carolToken))) {
        PamEngine engine =
            PamEngine.builder()
                .policy(policy)
                .credentialProvider(() -> new Credential("Authorization", upstreamAuthorization))
                .build();
        // Closing the gateway (end of this block) drains it and flushes the recorder, so the
        // recording is complete when it is read below.
        try (Gateway gw =
            Gateway.start(engine, HttpUrl.get(model.uri()), "127.0.0.1", gatewayPort)) {
          out.println("inferpam demo");
          out.println(
              "  mock model server: "
                  + model.uri()
                  + " (demands its own key, which only the gateway holds)");
          out.println(
              "  identity provider: "
                  + idp.issuer()
                  + " (OIDC issuer; keys at "
                  + idp.jwksUri().getPath()
                  + ")");
          out.println("  gateway:           " + gw.uri() + " (policy: " + POLICY_RESOURCE + ")");
          out.println(
              "  callers: alice (group ml-engineers), nightly-eval (group ci), each with an API key;");
          out.println("           carol (group ml-engineers) signs in with the identity provider;");
          out.println("           sec-bob (group security-oncall) reviews held requests");
          out.println("  recording:         " + recordingDirectory);
          OkHttpClient client =
              new OkHttpClient.Builder()
                  .connectTimeout(Duration.ofSeconds(5))
                  .readTimeout(Duration.ofSeconds(30))
                  .build();
          demo = new Demo(out, colour, client, HttpUrl.get(gw.uri()), idp, oidc, carolToken);
          try {
            demo.narrate(model);
          } finally {
            // Before the gateway closes: an idle keep-alive connection would hold up its drain.
            client.dispatcher().executorService().shutdown();
            client.connectionPool().evictAll();
          }
        }
      }
    }
    demo.showRecording(recordingDirectory);
    return demo.conclude();
  }

  /**
   * Whether standard output is a terminal that shows ANSI colours: there is a console (and, on
   * Java 22 and later, {@code Console.isTerminal()}), {@code NO_COLOR} is not set
   * (no-color.org), {@code TERM} is not {@code dumb}, and on Windows a terminal that says it
   * handles escape sequences ({@code TERM} or Windows Terminal's {@code WT_SESSION} set).
   */
  public static boolean colourSupported() {
    Console console = System.console();
    return colourSupported(
        console != null && isTerminal(console),
        System.getenv("NO_COLOR"),
        System.getenv("TERM"),
        System.getProperty("os.name", ""),
        System.getenv("WT_SESSION"));
  }

  static boolean colourSupported(
      boolean terminal, String noColor, String term, String osName, String wtSession) {
    if (!terminal) return false;
    if (noColor != null) return false;
    if ("dumb".equals(term)) return false;
    if (osName.startsWith("Windows") && term == null && wtSession == null) return false;
    return true;
  }

  /** {@code Console.isTerminal()} where it exists (Java 22+, whose console may be a redirected stream). */
  private static boolean isTerminal(Console console) {
    try {
      return Boolean.TRUE.equals(Console.class.getMethod("isTerminal").invoke(console));
    } catch (NoSuchMethodException e) {
      return true; // before Java 22, System.console() is null unless both ends are a terminal
    } catch (ReflectiveOperationException | RuntimeException e) {
      return false;
    }
  }

  private void narrate(MockModelServer model) throws IOException {
    // 1. allowed
    title("alice asks llama-3.1-8b a question");
    try (Response r =
        send(chat("llama-3.1-8b", "What does a PAM gateway do?", ""), ALICE_KEY, false)) {
      JsonNode body = JSON.readTree(r.body().string());
      outcome(r.code(), null, null, 200, null);
      detail("answer: " + body.path("choices").path(0).path("message").path("content").asText());
    }
    List<MockModelServer.Seen> seen = model.seen();
    if (!seen.isEmpty()) {
      MockModelServer.Seen first = seen.get(seen.size() - 1);
      detail(
          "the model server got the gateway's credential (Authorization: Bearer ██): "
              + yesNo(first.upstreamCredentialOk())
              + "; alice's key: "
              + yesNo(first.callerKeySeen()));
      if (!first.upstreamCredentialOk() || first.callerKeySeen()) fail("credential swap");
    }

    // 2. OIDC
    title(
        "carol signs in with the demo identity provider; the gateway checks her OIDC access token");
    detail("the identity provider gives carol an access token " + describeHeader(oidcToken) + ":");
    detail("  " + describeClaims(oidcToken));
    try (Response r =
        sendToken(chat("gpt-4o-mini", "Which model am I talking to?", ""), oidcToken)) {
      JsonNode body = JSON.readTree(r.body().string());
      outcome(r.code(), null, null, 200, null);
      detail("answer: " + body.path("choices").path(0).path("message").path("content").asText());
    }
    detail(
        "on this first token the gateway fetched the issuer's keys: GET "
            + String.join(", GET ", idp.served()));
    if (!idp.served().contains(DemoIdentityProvider.JWKS_PATH))
      fail("the gateway did not fetch the issuer's keys");
    seen = model.seen();
    if (!seen.isEmpty()) {
      MockModelServer.Seen last = seen.get(seen.size() - 1);
      detail(
          "the model server got the gateway's credential: "
              + yesNo(last.upstreamCredentialOk())
              + "; carol's token: "
              + yesNo(last.callerKeySeen()));
      if (!last.upstreamCredentialOk() || last.callerKeySeen())
        fail("credential swap for the OIDC caller");
    }

    // 3. streamed
    title("alice streams an answer from llama-3.1-70b");
    try (Response r =
        send(
            chat("llama-3.1-70b", "Tell me about least privilege.", ",\"stream\":true"),
            ALICE_KEY,
            false)) {
      outcome(r.code(), null, null, 200, null);
      detail("content-type: " + r.header("Content-Type") + "; events as they arrive:");
      int events = 0;
      StringBuilder answer = new StringBuilder();
      List<SseEvent> arrived = new ArrayList<>();
      SseFramer framer = new SseFramer(1 << 20, arrived::add);
      InputStream in = r.body().byteStream();
      byte[] buffer = new byte[8192];
      // Each event is shown as soon as its bytes are in; one cut off at the end is dropped, as a
      // client would.
      for (int n; (n = in.read(buffer)) != -1; ) {
        framer.push(buffer, 0, n);
        for (SseEvent event : arrived) {
          String data = event.data();
          if (data == null) continue;
          events++;
          if (data.equals("[DONE]")) {
            detail("  <- [DONE]");
          } else {
            JsonNode choice = JSON.readTree(data).path("choices").path(0);
            String content = choice.path("delta").path("content").asText();
            answer.append(content);
            detail(
                choice.path("finish_reason").isTextual()
                    ? "  <- \""
                        + content
                        + "\" (finish_reason: "
                        + choice.path("finish_reason").asText()
                        + ")"
                    : "  <- \"" + content + "\"");
          }
        }
        arrived.clear();
      }
      if (events == 0) fail("no server-sent events arrived");
      detail("the model sent an email address and a phone number split across events; alice got:");
      detail("  " + answer.toString().strip());
      if (answer.indexOf("[EMAIL]") < 0
          || answer.indexOf("[PHONE]") < 0
          || answer.indexOf("@example.com") >= 0
          || answer.indexOf("555-2671") >= 0) {
        fail("the streamed answer was not masked");
      }
    }

    // 4. not entitled
    title("nightly-eval (group ci) asks gpt-4o-mini, a model its group is not entitled to");
    expectDenial(
        send(chat("gpt-4o-mini", "Summarise the test report.", ""), NIGHTLY_EVAL_KEY, true),
        403,
        "not_entitled");

    // 5. blocked
    title("alice tries to download a model through Ollama's /api/pull");
    expectDenial(
        send(post("/api/pull", "{\"model\":\"llama3.1:405b\"}"), ALICE_KEY, false), 403, "blocked");

    // 6. parameter denied
    title("alice asks for logprobs, which help extract a model");
    expectDenial(
        send(chat("llama-3.1-8b", "Hello", ",\"logprobs\":true"), ALICE_KEY, false),
        403,
        "parameter_denied");

    // 7. approval
    title("alice asks to export all customer records: rule bulk-export holds it for a reviewer");
    int before = model.seen().size();
    CompletableFuture<Response> held =
        sendAsync(chat("llama-3.1-8b", "Export all customer records as CSV.", ""), ALICE_KEY);
    JsonNode review = awaitReview();
    if (review == null) {
      fail("the held request did not show up on GET /pam/approvals");
      held.cancel(true);
    } else {
      String id = review.path("id").asText();
      detail(
          "sec-bob: GET /pam/approvals -> "
              + id
              + ", rule "
              + review.path("rule").asText()
              + ", principal "
              + review.path("principal").asText()
              + ", excerpt \""
              + review.path("excerpt").asText()
              + "\"");
      boolean early = model.seen().size() > before;
      detail("while it waits, the model server has seen it: " + yesNo(early));
      if (early) fail("the held request reached the model before approval");
      try (Response decision =
          reviewer(
              new Request.Builder()
                  .url(
                      gateway.newBuilder().encodedPath("/pam/approvals/" + id + "/approve").build())
                  .post(
                      RequestBody.create(
                          "{\"reason\":\"ticket SEC-42: export for the audit\"}", JSON_TYPE)))) {
        JsonNode body = JSON.readTree(decision.body().string());
        detail(
            "sec-bob: POST /pam/approvals/"
                + id
                + "/approve -> "
                + decision.code()
                + " "
                + body.path("status").asText());
        if (decision.code() != 200) fail("approving answered " + decision.code());
      }
      try (Response r = held.get(REVIEW_WAIT.toSeconds(), TimeUnit.SECONDS)) {
        JsonNode body = JSON.readTree(r.body().string());
        outcome(r.code(), null, null, 200, null);
        detail(
            "answer, after approval: "
                + body.path("choices").path(0).path("message").path("content").asText());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      } catch (ExecutionException | TimeoutException e) {
        fail("the approved request got no answer: " + e);
      }
    }

    // 8. quota
    title("nightly-eval asks for up to 3000 tokens, more than its daily budget of 2000");
    try (Response quota =
        client
            .newCall(
                new Request.Builder()
                    .url(gateway.newBuilder().encodedPath("/pam/quota").build())
                    .header("X-Api-Key", NIGHTLY_EVAL_KEY)
                    .build())
            .execute()) {
      JsonNode limits = JSON.readTree(quota.body().string()).path("limits");
      for (JsonNode limit : limits) {
        JsonNode day = limit.path("tokens_per_day");
        if (day.isObject()) {
          detail(
              "GET /pam/quota -> "
                  + limit.path("rule").asText()
                  + " tokens_per_day: "
                  + day.path("remaining")
                  + " of "
                  + day.path("limit")
                  + " left");
        }
      }
    }
    try (Response r =
        send(
            chat("llama-3.1-8b", "Write the full evaluation report.", ",\"max_tokens\":3000"),
            NIGHTLY_EVAL_KEY,
            true)) {
      String retryAfter = r.header("Retry-After");
      JsonNode error = JSON.readTree(r.body().string()).path("error");
      outcome(
          r.code(),
          error.path("code").asText(null),
          error.path("message").asText(null),
          429,
          "quota_exceeded");
      detail("Retry-After: " + retryAfter + " s (the UTC day's budget renews at midnight)");
      if (retryAfter == null) fail("no Retry-After on the quota refusal");
    }

    // 9. forged token
    title("someone presents a forged token (right claims, wrong key)");
    String forged = idp.forgedToken(OIDC_USER, oidc.audience());
    detail("a token with carol's claims and the issuer's kid " + describeHeader(forged) + ":");
    detail("  " + describeClaims(forged));
    detail("but signed with a key pair of the forger's own, which the issuer never published");
    try (Response r = sendToken(chat("llama-3.1-8b", "Hello, it's carol.", ""), forged)) {
      JsonNode error = JSON.readTree(r.body().string()).path("error");
      outcome(
          r.code(),
          error.path("code").asText(null),
          error.path("message").asText(null),
          401,
          "unauthenticated");
      String challenge = r.header("WWW-Authenticate");
      detail("WWW-Authenticate: " + challenge);
      if (challenge == null || !challenge.contains("signature invalid")) {
        fail("the forged token was not refused for its signature");
      }
    }

    // 10. no credential
    title("someone calls without any credential");
    expectDenial(send(chat("llama-3.1-8b", "Hello", ""), null, false), 401, "unauthenticated");

    out.println();
    int reached = model.seen().size();
    out.println(
        "done: "
            + step
            + " requests sent; "
            + reached
            + " reached the model server, "
            + (step - reached)
            + " were refused by the gateway before it.");
    if (reached != EXPECTED_AT_MODEL) {
      fail("expected " + EXPECTED_AT_MODEL + " requests at the model server, saw " + reached);
    }
  }

  /** A token's header, without the token: {@code (typ at+jwt, RS256, kid abcdefgh…)}. */
  private static String describeHeader(String token) {
    try {
      SignedJWT jwt = SignedJWT.parse(token);
      return "(typ "
          + jwt.getHeader().getType()
          + ", "
          + jwt.getHeader().getAlgorithm()
          + ", kid "
          + abbreviate(jwt.getHeader().getKeyID(), 8)
          + ")";
    } catch (ParseException e) {
      return "(unreadable)";
    }
  }

  /** A token's claims, without the token: issuer, subject, groups, audience, lifetime. */
  private static String describeClaims(String token) {
    try {
      JWTClaimsSet claims = SignedJWT.parse(token).getJWTClaimsSet();
      long minutes =
          Duration.between(Instant.now(), claims.getExpirationTime().toInstant())
              .plusSeconds(30)
              .toMinutes();
      return "iss "
          + claims.getIssuer()
          + ", sub "
          + claims.getSubject()
          + ", groups "
          + claims.getClaim("groups")
          + ", aud "
          + String.join(",", claims.getAudience())
          + ", expires in "
          + minutes
          + " min";
    } catch (ParseException e) {
      return "(unreadable claims)";
    }
  }

  /** The first {@code n} characters and an ellipsis: enough to recognise, never the whole value. */
  static String abbreviate(String value, int n) {
    return value.length() <= n ? value : value.substring(0, n) + "\u2026";
  }

  /** Sends with an access token as {@code Authorization: Bearer}, printing only its first characters. */
  private Response sendToken(Request.Builder request, String token) throws IOException {
    Request built = request.header("Authorization", "Bearer " + token).build();
    detail(
        built.method()
            + " "
            + built.url().encodedPath()
            + " (Authorization: Bearer "
            + abbreviate(token, 12)
            + ")");
    return client.newCall(built).execute();
  }

  /** Sends on another thread: the request waits at the gateway until a reviewer decides. */
  private CompletableFuture<Response> sendAsync(Request.Builder request, String key) {
    request.header("Authorization", "Bearer " + key);
    Request built = request.build();
    detail(
        built.method()
            + " "
            + built.url().encodedPath()
            + " (Authorization: Bearer), which waits...");
    CompletableFuture<Response> answer = new CompletableFuture<>();
    client
        .newCall(built)
        .enqueue(
            new Callback() {
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
      try (Response r =
          reviewer(
              new Request.Builder()
                  .url(gateway.newBuilder().encodedPath("/pam/approvals").build()))) {
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
    return client
        .newCall(request.header("Authorization", "Bearer " + SEC_BOB_KEY).build())
        .execute();
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
    SessionRecord oidcRecord =
        Recordings.open(directory).entries().stream()
            .map(Recordings.Entry::record)
            .filter(r -> r.principal() != null && Principal.VIA_OIDC.equals(r.principal().via()))
            .findFirst()
            .orElse(null);
    if (oidcRecord == null) {
      fail("no exchange in the recording was identified by an OIDC token");
    } else {
      Principal p = oidcRecord.principal();
      detail(
          "replay show --recordings "
              + directory
              + " "
              + oidcRecord.id()
              + " (carol's call), its principal:");
      detail(
          "  subject "
              + p.subject()
              + ", groups "
              + p.groups().stream().sorted().toList()
              + ", via "
              + p.via()
              + ", issuer "
              + p.issuer());
      if (!OIDC_USER.equals(p.subject()) || !idp.issuer().equals(p.issuer())) {
        fail("the OIDC exchange was recorded for " + p.subject() + " of " + p.issuer());
      }
    }
    Recordings.Verification verification = replay.verify();
    detail("replay verify --recordings " + directory);
    detail("  " + paint(verification.ok() ? GREEN : RED, Replay.format(verification)));
    if (exchanges.size() != step)
      fail("expected " + step + " exchanges in the recording, found " + exchanges.size());
    if (!verification.ok()) fail("the recording chain does not verify");
    out.println();
    out.println("recording kept in " + directory);
    out.println(
        "  look again: "
            + GATEWAY_JAR_COMMAND
            + " replay list --recordings "
            + shellArgument(
                directory.toString(), System.getProperty("os.name", "").startsWith("Windows")));
  }

  /**
   * {@code arg} as one argument of a command line to copy into a shell: as it is when it holds
   * nothing the shell would split or expand, else quoted: in single quotes for a POSIX shell, in
   * double quotes on Windows (whose paths cannot hold one).
   */
  static String shellArgument(String arg, boolean windows) {
    if (windows) return arg.matches("[A-Za-z0-9_.:\\\\/-]+") ? arg : "\"" + arg + "\"";
    return arg.matches("[A-Za-z0-9_./:@%+=,-]+") ? arg : "'" + arg.replace("'", "'\\''") + "'";
  }

  private int conclude() {
    if (!failures.isEmpty()) {
      out.println(paint(BOLD + RED, "UNEXPECTED: " + String.join("; ", failures)));
      out.flush();
      return 1;
    }
    out.flush();
    return 0;
  }

  private void expectDenial(Response response, int status, String code) throws IOException {
    try (response) {
      JsonNode error = JSON.readTree(response.body().string()).path("error");
      outcome(
          response.code(),
          error.path("code").asText(null),
          error.path("message").asText(null),
          status,
          code);
    }
  }

  private Request.Builder chat(String model, String question, String extraJson) {
    String body =
        "{\"model\":\""
            + model
            + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + question
            + "\"}]"
            + extraJson
            + "}";
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
    detail(
        built.method()
            + " "
            + built.url().encodedPath()
            + (key == null
                ? " (no credential)"
                : asXApiKey ? " (X-Api-Key)" : " (Authorization: Bearer)"));
    return client.newCall(built).execute();
  }

  private void title(String text) {
    step++;
    out.println();
    out.println(paint(BOLD + CYAN, "[" + step + "] " + text));
  }

  private void outcome(
      int status, String code, String message, int expectedStatus, String expectedCode) {
    String shown = status == 200 ? "allowed" : code + (message == null ? "" : ": " + message);
    String colourOf = status / 100 == 2 ? GREEN : status == 429 ? YELLOW : RED;
    detail(paint(colourOf, "-> " + status + " " + shown));
    if (status != expectedStatus || !Objects.equals(code, expectedCode)) {
      fail(
          "step "
              + step
              + " answered "
              + status
              + " "
              + code
              + ", expected "
              + expectedStatus
              + " "
              + (expectedCode == null ? "allowed" : expectedCode));
    }
  }

  /** {@code text} in {@code style} when colours are on, else as it is. */
  private String paint(String style, String text) {
    return colour ? style + text + RESET : text;
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
   * The demo policy with {@code issuer} for {@link #ISSUER_PLACEHOLDER} and a {@code recording}
   * section for {@code directory}. Batched durability: group commits keep the demo quick, and
   * closing the gateway still flushes every record.
   */
  static String policyText(Path directory, String issuer) {
    String text = policyText();
    if (!text.contains(ISSUER_PLACEHOLDER)) {
      throw new IllegalStateException(
          POLICY_RESOURCE + " has no " + ISSUER_PLACEHOLDER + " to fill in");
    }
    String path = directory.toAbsolutePath().toString().replace("\\", "\\\\").replace("\"", "\\\"");
    return text.replace(ISSUER_PLACEHOLDER, issuer)
        + "\nrecording:\n  directory: \""
        + path
        + "\"\n  durability: batched\n";
  }
}
