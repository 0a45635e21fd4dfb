package dev.inferpam.benchmarks;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.gateway.Gateway;
import dev.inferpam.okhttp.PamInterceptor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What inferpam adds to a real HTTP call, end to end on the loopback interface: the same calls
 * to the same local model server ({@link LocalModelServer}, embedded Jetty answering at once)
 * made three ways, in one run:
 *
 * <ul>
 *   <li><b>plain</b>: a plain OkHttp client straight to the model server, sending the upstream
 *       key itself, the baseline;
 *   <li><b>interceptor</b>: an OkHttp client with {@link PamInterceptor} on an engine with the
 *       full policy, to the model server;
 *   <li><b>gateway</b>: a plain OkHttp client to the inferpam {@link Gateway} (embedded Jetty,
 *       {@code PamFilter}, forwarding with its own OkHttp client) with the same policy, which
 *       calls the model server.
 * </ul>
 *
 * <p>The calls:
 * <ul>
 *   <li>{@code completion*}: a chat completion, a {@value #REQUEST_BYTES}-byte JSON request with a
 *       realistic prompt, answered with a {@value #RESPONSE_BYTES}-byte JSON completion with
 *       {@code usage}; the whole call, body read to the end and closed. Target: interceptor
 *       within 1.10&times; of plain.
 *   <li>{@code stream*}: the same request with {@code "stream":true} (and
 *       {@code stream_options.include_usage}), answered with {@value #EVENTS} server-sent events
 *       (a role chunk, {@value #TEXT_EVENTS} text deltas, a {@code finish_reason} chunk and a
 *       usage chunk; 262 to 451 bytes each, 28 KB in all), each written and flushed on its own, then
 *       {@code data: [DONE]}; the whole call, every line read.
 *   <li>{@code firstEvent*}: the same streamed call, measured from {@code execute()} until the
 *       first {@code data:} line has been read. The rest of the stream is read and the response
 *       closed in an invocation-level tear-down, outside the measurement. Target: at most 1 ms
 *       added to plain's. The model server writes its events back to back, so by the time the
 *       client reads, several may have arrived together, and a masking reader works through what
 *       arrived before releasing the first. A real model leaves milliseconds between events:
 *       {@code -p pauseMicros=2000} makes the model server wait that long after the first event,
 *       so that it travels alone (the {@code stream*} times then include the pause).
 * </ul>
 *
 * <p>The policy ({@link #policyYaml}, parameter {@code policy=full}): an OIDC issuer
 * ({@link LocalIssuer}; the caller's RS256 access token is the same on every call, so after the
 * first it comes from the validated-token cache), the upstream credential from a file,
 * entitlements, the admin presets blocked, parameters (deny list and caps), masking with every
 * built-in detector (responses carry no personal data, so nothing is replaced but everything is
 * scanned) and recording with {@code durability: batched} into a fresh directory under
 * {@code java.io.tmpdir} (removed afterwards), {@code bodies: masked}. Interceptor and gateway
 * each have their own engine and recording directory. To see where the time goes,
 * {@code -p policy=no-masking}, {@code no-recording} or {@code bare} (neither) drop those sections;
 * plain is not affected.
 *
 * <p>Setup makes every kind of call once and fails the run unless each is answered 200 with the
 * expected body; every measured call fails on anything but 200 and the expected number of
 * events. Clients keep their connections (OkHttp's pool, the gateway's own client), so no
 * measured call opens a connection. One thread; the client, the gateway and the model server
 * share the machine's cores, as they would on one host.
 *
 * <p>Run: {@code java -jar pam-benchmarks/target/benchmarks.jar EndToEndBenchmark} (about 12
 * minutes: nine benchmarks, each with a minute of warm-up).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Threads(1)
@Fork(1)
// The interceptor, and the gateway even more, run much more code than a plain call: on two cores
// their times were still falling after 30 s of warm-up (first events, which run the fewest calls
// per second, the longest); a minute is enough.
@Warmup(iterations = 30, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 3, timeUnit = TimeUnit.SECONDS)
public class EndToEndBenchmark {

  static final int REQUEST_BYTES = 1024;
  static final int RESPONSE_BYTES = 2048;

  /** Events before {@code data: [DONE]}. */
  static final int EVENTS = 100;

  /** Events carrying text: all but the role chunk, the finish chunk and the usage chunk. */
  static final int TEXT_EVENTS = EVENTS - 3;

  static final String SUBJECT = "alice";
  static final String MODEL = "gpt-4o-mini";
  static final String UPSTREAM_KEY = "sk-bench-upstream-0123456789abcdef";

  private static final MediaType JSON = MediaType.get("application/json");
  private static final Duration TOKEN_LIFETIME = Duration.ofHours(8);

  /** Plain English, no digits and nothing a detector takes for personal data. */
  private static final String PROSE =
      "The deployment pipeline stalled after the cache layer began "
          + "returning stale entries for the feature flag service, and the rollback was delayed "
          + "because the runbook still pointed at the old dashboard. Requests from the mobile "
          + "clients were retried aggressively, which doubled the load on the regional gateways "
          + "and pushed the queue latency well above the alerting threshold for most of the "
          + "afternoon. Once the stale entries were purged and the retry budget was lowered, "
          + "error rates returned to normal and the backlog drained within the hour. ";

  // ---------------------------------------------------------------------------------------
  // bodies

  /** The chat request, {@value #REQUEST_BYTES} bytes exactly, streamed or not. */
  static byte[] requestBody(boolean stream) {
    String head =
        "{\"model\":\""
            + MODEL
            + "\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
            + "careful assistant for a site reliability team. Answer in plain prose, name the runbook "
            + "section you rely on, and say so when the report does not support a conclusion.\"},"
            + "{\"role\":\"user\",\"content\":\"Summarise the incident report below for the on-call "
            + "handover: what happened, the impact, what was done, what is still open and what the next "
            + "shift should watch. Report: ";
    String tail =
        "\"}],\"max_tokens\":512,\"temperature\":0.2,\"user\":\"svc-handover\""
            + (stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}" : "}");
    return padded(head, tail, REQUEST_BYTES);
  }

  /** The answer's text, as the completion carries it and the stream's deltas add up to. */
  static String answerText() {
    String head = completionHead();
    String tail = completionTail();
    return prose(RESPONSE_BYTES - head.length() - tail.length());
  }

  /** The chat completion, {@value #RESPONSE_BYTES} bytes exactly, with {@code usage}. */
  static byte[] completionBody() {
    byte[] body =
        (completionHead() + answerText() + completionTail()).getBytes(StandardCharsets.UTF_8);
    if (body.length != RESPONSE_BYTES)
      throw new IllegalStateException("completion is " + body.length + " bytes");
    return body;
  }

  private static String completionHead() {
    return "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1767225600,"
        + "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        + "\"content\":\"";
  }

  private static String completionTail() {
    return "\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":231,\"completion_tokens\":402,\"total_tokens\":633,"
        + "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
        + "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
        + "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
        + "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\"}";
  }

  /** The text deltas of the stream: the answer's first {@value #TEXT_EVENTS} words. */
  static List<String> deltas() {
    String[] words = answerText().split(" ");
    List<String> deltas = new ArrayList<>(TEXT_EVENTS);
    for (int i = 0; i < TEXT_EVENTS; i++) deltas.add(i == 0 ? words[i] : " " + words[i]);
    return deltas;
  }

  /** The {@value #EVENTS} events of the stream, each {@code data: {...}\n\n}, as OpenAI sends them. */
  static List<byte[]> streamEvents() {
    String chunk =
        "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
            + "\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\","
            + "\"choices\":[";
    List<String> data = new ArrayList<>(EVENTS);
    data.add(
        chunk
            + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
            + "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}");
    for (String delta : deltas()) {
      data.add(
          chunk
              + "{\"index\":0,\"delta\":{\"content\":\""
              + delta
              + "\"},\"logprobs\":null,"
              + "\"finish_reason\":null}],\"usage\":null}");
    }
    data.add(
        chunk
            + "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}");
    data.add(
        chunk
            + "],\"usage\":{\"prompt_tokens\":231,\"completion_tokens\":98,\"total_tokens\":329,"
            + "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
            + "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
            + "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}");
    List<byte[]> events = new ArrayList<>(EVENTS);
    for (String d : data) events.add(("data: " + d + "\n\n").getBytes(StandardCharsets.UTF_8));
    return events;
  }

  private static byte[] padded(String head, String tail, int size) {
    byte[] body =
        (head + prose(size - head.length() - tail.length()) + tail)
            .getBytes(StandardCharsets.UTF_8);
    if (body.length != size)
      throw new IllegalStateException("body is " + body.length + " bytes, not " + size);
    return body;
  }

  /** {@code chars} characters of {@link #PROSE}, repeated as needed, ending on a letter. */
  private static String prose(int chars) {
    if (chars <= 0) throw new IllegalArgumentException("no room for prose: " + chars);
    StringBuilder sb = new StringBuilder(chars + PROSE.length());
    while (sb.length() < chars) sb.append(PROSE);
    sb.setLength(chars);
    if (sb.charAt(chars - 1) == ' ') sb.setCharAt(chars - 1, 'x');
    return sb.toString();
  }

  // ---------------------------------------------------------------------------------------
  // policy

  /**
   * The policy both engines enforce: {@code full}, or {@code full} without masking
   * ({@code no-masking}), without recording ({@code no-recording}) or without either
   * ({@code bare}).
   */
  static String policyYaml(
      String variant, LocalIssuer issuer, Path credentialFile, Path recordings) {
    boolean masking = variant.equals("full") || variant.equals("no-recording");
    boolean recording = variant.equals("full") || variant.equals("no-masking");
    if (!List.of("full", "no-masking", "no-recording", "bare").contains(variant)) {
      throw new IllegalArgumentException(
          "policy must be full, no-masking, no-recording or bare, was " + variant);
    }
    return "version: 1\n"
        + "identity:\n"
        + "  oidc:\n"
        + "    - issuer: "
        + LocalIssuer.ISSUER
        + "\n"
        + "      audience: "
        + LocalIssuer.AUDIENCE
        + "\n"
        + "      jwks-uri: "
        + issuer.jwksUri()
        + "\n"
        + "      algorithms: [RS256]\n"
        + "      require-type: at+jwt\n"
        + "upstream:\n"
        + "  credential:\n"
        + "    from-file: "
        + credentialFile
        + "\n"
        + "entitlements:\n"
        + "  - groups: [researchers]\n"
        + "    models: [\"gpt-4o-mini\", \"gpt-4o\", \"llama-3.1-*\"]\n"
        + "    operations: [chat, completion, embedding]\n"
        + "block:\n"
        + "  presets: [ollama-admin, vllm-admin, triton-admin, torchserve-admin, openai-admin]\n"
        + "parameters:\n"
        + "  deny: [logit_bias, logprobs, top_logprobs, echo, prompt_logprobs]\n"
        + "  max:\n"
        + "    max_tokens: 4096\n"
        + "    n: 1\n"
        + (masking ? "masking:\n  strategy: redact\n" : "")
        + (recording
            ? "recording:\n  directory: "
                + recordings
                + "\n  bodies: masked\n  durability: batched\n"
            : "");
  }

  // ---------------------------------------------------------------------------------------
  // state

  /** The model server, the issuer, both engines, the gateway and the three clients, for one trial. */
  @State(Scope.Benchmark)
  public static class Rig {
    /** Which policy sections the engines have; see {@link #policyYaml}. */
    @Param({"full"})
    public String policy = "full";

    /**
     * Microseconds the model server waits after the first event of a stream before writing the
     * rest; 0 writes all back to back. With a pause longer than the first event's way to the
     * client, {@code firstEvent*} measures that one event alone, as a real model's first token
     * arrives, rather than the masking of whatever arrived together with it.
     */
    @Param({"0"})
    public long pauseMicros;

    LocalModelServer upstream;
    LocalIssuer issuer;
    Path dir;
    Path clientRecordings;
    Path gatewayRecordings;
    PamEngine clientEngine;
    Gateway gateway;
    OkHttpClient plain;
    OkHttpClient intercepted;
    OkHttpClient toGateway;
    Request completionPlain;
    Request completionIntercepted;
    Request completionGateway;
    Request streamPlain;
    Request streamIntercepted;
    Request streamGateway;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      upstream =
          LocalModelServer.start(
              "Bearer " + UPSTREAM_KEY,
              completionBody(),
              streamEvents(),
              Duration.ofNanos(TimeUnit.MICROSECONDS.toNanos(pauseMicros)));
      issuer = LocalIssuer.start();
      String token = issuer.mint(SUBJECT, "e2e", Instant.now(), TOKEN_LIFETIME);

      dir = Files.createTempDirectory("inferpam-e2e-");
      Path credential = Files.writeString(dir.resolve("upstream-key"), UPSTREAM_KEY + "\n");
      clientRecordings = Files.createDirectory(dir.resolve("interceptor"));
      gatewayRecordings = Files.createDirectory(dir.resolve("gateway"));
      clientEngine =
          PamEngine.builder()
              .policy(Policy.parse(policyYaml(policy, issuer, credential, clientRecordings)))
              .build();
      HttpUrl upstreamUrl = HttpUrl.get(upstream.uri().toString());
      gateway =
          Gateway.start(
              PamEngine.builder()
                  .policy(Policy.parse(policyYaml(policy, issuer, credential, gatewayRecordings)))
                  .build(),
              upstreamUrl,
              "127.0.0.1",
              0);

      plain = new OkHttpClient.Builder().build();
      intercepted = PamInterceptor.of(clientEngine).install(new OkHttpClient.Builder()).build();
      toGateway = new OkHttpClient.Builder().build();

      HttpUrl direct = upstreamUrl.resolve(LocalModelServer.PATH);
      HttpUrl viaGateway = HttpUrl.get(gateway.uri() + LocalModelServer.PATH);
      String upstreamAuth = "Bearer " + UPSTREAM_KEY;
      String callerAuth = "Bearer " + token;
      completionPlain = request(direct, upstreamAuth, requestBody(false));
      completionIntercepted = request(direct, callerAuth, requestBody(false));
      completionGateway = request(viaGateway, callerAuth, requestBody(false));
      streamPlain = request(direct, upstreamAuth, requestBody(true));
      streamIntercepted = request(direct, callerAuth, requestBody(true));
      streamGateway = request(viaGateway, callerAuth, requestBody(true));

      // Opens the connections, fetches the JWKS, fills the token cache, and proves every kind of
      // measured call succeeds.
      for (OkHttpClient client : List.of(plain, intercepted, toGateway)) {
        Request completion =
            client == plain
                ? completionPlain
                : client == intercepted ? completionIntercepted : completionGateway;
        Request stream =
            client == plain
                ? streamPlain
                : client == intercepted ? streamIntercepted : streamGateway;
        int length = complete(client, completion).length;
        if (length != RESPONSE_BYTES)
          throw new IllegalStateException("completion of " + length + " bytes");
        wholeStream(client, stream);
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      for (OkHttpClient client : new OkHttpClient[] {plain, intercepted, toGateway}) {
        if (client == null) continue;
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }
      try {
        if (gateway != null) gateway.close(Duration.ofSeconds(5));
        if (clientEngine != null) clientEngine.close();
      } finally {
        if (upstream != null) upstream.close();
        if (issuer != null) issuer.close();
        if (dir != null) deleteTree(dir);
      }
    }
  }

  /**
   * A streamed response that a {@code firstEvent*} benchmark has read to its first event; the
   * invocation-level tear-down reads the rest and closes it, outside the measured time.
   */
  @State(Scope.Thread)
  public static class OpenStream {
    Response response;

    @TearDown(Level.Invocation)
    public void finish() throws IOException {
      Response r = response;
      response = null;
      if (r == null) return;
      try (r) {
        int events = 1 + countEvents(r.body().source());
        if (events != EVENTS)
          throw new IllegalStateException(events + " events instead of " + EVENTS);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // calls

  /** A chat call as the benchmarks make it: JSON body, JSON or event-stream answers accepted. */
  static Request request(HttpUrl url, String authorization, byte[] body) {
    return new Request.Builder()
        .url(url)
        .header("Authorization", authorization)
        .header("Accept", "application/json, text/event-stream")
        .post(RequestBody.create(body, JSON))
        .build();
  }

  /** One call read to the end; fails unless 200. */
  static byte[] complete(OkHttpClient client, Request request) throws IOException {
    try (Response response = client.newCall(request).execute()) {
      if (response.code() != 200) {
        throw new IllegalStateException(
            "status " + response.code() + ": " + response.body().string());
      }
      return response.body().bytes();
    }
  }

  /** One streamed call, every line read; fails unless 200 with {@value #EVENTS} events and {@code [DONE]}. */
  static int wholeStream(OkHttpClient client, Request request) throws IOException {
    try (Response response = client.newCall(request).execute()) {
      if (response.code() != 200) {
        throw new IllegalStateException(
            "status " + response.code() + ": " + response.body().string());
      }
      int events = countEvents(response.body().source());
      if (events != EVENTS)
        throw new IllegalStateException(events + " events instead of " + EVENTS);
      return events;
    }
  }

  /** Starts a streamed call and reads up to its first {@code data:} line, which it returns. */
  static String firstEvent(OkHttpClient client, Request request, OpenStream open)
      throws IOException {
    Response response = client.newCall(request).execute();
    open.response = response;
    if (response.code() != 200) {
      throw new IllegalStateException(
          "status " + response.code() + ": " + response.body().string());
    }
    BufferedSource source = response.body().source();
    String line;
    while ((line = source.readUtf8Line()) != null) {
      if (line.startsWith("data:")) return line;
    }
    throw new IllegalStateException("stream ended before its first event");
  }

  /**
   * Reads lines to the end of the body; the {@code data:} lines before {@code data: [DONE]}.
   * Fails if {@code [DONE]} is missing or not last.
   */
  static int countEvents(BufferedSource source) throws IOException {
    int events = 0;
    boolean done = false;
    String line;
    while ((line = source.readUtf8Line()) != null) {
      if (!line.startsWith("data:")) continue;
      if (done) throw new IllegalStateException("event after [DONE]");
      if (line.equals("data: [DONE]")) {
        done = true;
      } else {
        events++;
      }
    }
    if (!done) throw new IllegalStateException("stream ended without [DONE]");
    return events;
  }

  // ---------------------------------------------------------------------------------------
  // benchmarks

  @Benchmark
  public byte[] completionPlain(Rig rig) throws IOException {
    return complete(rig.plain, rig.completionPlain);
  }

  @Benchmark
  public byte[] completionInterceptor(Rig rig) throws IOException {
    return complete(rig.intercepted, rig.completionIntercepted);
  }

  @Benchmark
  public byte[] completionGateway(Rig rig) throws IOException {
    return complete(rig.toGateway, rig.completionGateway);
  }

  @Benchmark
  public int streamPlain(Rig rig) throws IOException {
    return wholeStream(rig.plain, rig.streamPlain);
  }

  @Benchmark
  public int streamInterceptor(Rig rig) throws IOException {
    return wholeStream(rig.intercepted, rig.streamIntercepted);
  }

  @Benchmark
  public int streamGateway(Rig rig) throws IOException {
    return wholeStream(rig.toGateway, rig.streamGateway);
  }

  @Benchmark
  public String firstEventPlain(Rig rig, OpenStream open) throws IOException {
    return firstEvent(rig.plain, rig.streamPlain, open);
  }

  @Benchmark
  public String firstEventInterceptor(Rig rig, OpenStream open) throws IOException {
    return firstEvent(rig.intercepted, rig.streamIntercepted, open);
  }

  @Benchmark
  public String firstEventGateway(Rig rig, OpenStream open) throws IOException {
    return firstEvent(rig.toGateway, rig.streamGateway, open);
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) return;
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator)
        Files.deleteIfExists(p);
    }
  }
}
