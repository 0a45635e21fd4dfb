package dev.inferpam.gateway.internal;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.ExchangeListener;
import dev.inferpam.core.Glob;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.gateway.Gateway;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.ConnectionPool;
import okhttp3.Dispatcher;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Promise;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's warm-up pass ({@code serve --warmup}, {@code train}): before the real gateway listens, runs
 * {@code N} exchanges through a throwaway gateway built the same way, so that the classes of the
 * request path are loaded and its hot methods compiled by the JIT before the first real caller
 * arrives.
 *
 * <p>The throwaway gateway is a separate {@link dev.inferpam.gateway.Gateway} (its own Jetty, its
 * own forwarding client) with a separate engine, in front of a model server inside this process
 * on 127.0.0.1. Its policy is derived from the real one so that the same code runs with the same
 * settings: the real policy's {@code request}, {@code block}, {@code parameters} and
 * {@code masking} sections and its recording's {@code bodies} and {@code durability}. What a user
 * could see is replaced: one service key made up for the pass (the only identity), one entitlement
 * for a model name of its own, a credential of its own for its upstream, no {@code approval}, its
 * own quota counters (in memory, with bounds no pass reaches), and a recording directory in a new
 * temporary directory that is deleted afterwards. So the pass sends nothing to the real upstream,
 * writes no record where the real recording lies, charges no real quota, opens no review and logs
 * nothing above debug level.
 *
 * <p>The calls: chat completions (a 1 KB request, a 2 KB answer with {@code usage}) and, one in
 * four, streamed answers of {@value #STREAM_EVENTS} server-sent events, made by
 * {@value #CLIENT_THREADS} client threads one call at a time each. They vary as real traffic does,
 * so that the JIT does not compile code that assumes one kind of caller and has to throw it away
 * when another arrives: the caller's headers (SDK, curl, tracing, the key in {@code X-Api-Key}),
 * the answer's framing ({@code Content-Length} or chunked) and headers, and its text (plain prose,
 * personal data for the masker to replace, figures and names, text that is not ASCII). The pass
 * stops after {@code calls} exchanges or after its time budget, whichever comes first; a call that
 * fails does not stop it. It is best effort: whatever goes wrong, the real gateway starts anyway.
 *
 * <p><b>Thread-safety:</b> {@link #run} may be called from any thread; it blocks its caller (the
 * process's main thread, before anything listens) until the pass is over.
 */
public final class Warmup {
  private static final Logger log = LoggerFactory.getLogger(Warmup.class);

  /** The model the pass asks for; entitled only in the pass's own policy. */
  static final String MODEL = "inferpam-warmup";

  /** The group of the pass's own service key. */
  static final String GROUP = "inferpam-warmup";

  /** Events in each streamed answer of the pass. */
  static final int STREAM_EVENTS = 20;

  /** Client threads making the pass's calls, one call at a time each. */
  static final int CLIENT_THREADS = 2;

  /** Longest a call of the pass may take; a slower one counts as failed. */
  static final Duration CALL_TIMEOUT = Duration.ofSeconds(10);

  private static final MediaType JSON = MediaType.get("application/json");
  private static final MediaType JSON_UTF8 = MediaType.get("application/json; charset=utf-8");

  /** What the pass did: calls made, calls that did not end with a whole 200 answer, time taken. */
  public record Result(int calls, int failures, Duration elapsed) {
    /** Nothing was run. */
    public static final Result NONE = new Result(0, 0, Duration.ZERO);
  }

  /**
   * Starts the throwaway gateway with the real one's settings (threads, bounds) around the pass's
   * engine and model server, on 127.0.0.1 and a free port.
   */
  @FunctionalInterface
  public interface GatewayStarter {
    /**
     * @param engine   the pass's engine, owned by the gateway from now on
     * @param upstream the pass's model server
     */
    Gateway start(PamEngine engine, HttpUrl upstream) throws IOException;
  }

  private Warmup() {}

  /**
   * Runs the pass: at most {@code calls} exchanges, for at most {@code budget}.
   *
   * @param policy  the real gateway's policy, from which the pass's own is derived
   * @param starter starts the throwaway gateway as the real one will be started
   * @param calls   exchanges to make; 0 runs nothing
   * @param budget  wall-clock time after which no new call starts
   * @return what was done; {@link Result#NONE} when {@code calls} is 0 or the pass could not be set
   *     up (logged at debug level)
   */
  public static Result run(Policy policy, GatewayStarter starter, int calls, Duration budget) {
    return run(policy, starter, calls, budget, ExchangeListener.NONE);
  }

  /**
   * {@link #run(Policy, GatewayStarter, int, Duration)} with {@code listener} hearing the pass's
   * exchanges: a listener like the real engine's (metrics into a registry of the same kind, thrown
   * away afterwards), so that the code the real gateway runs for its listener is compiled too.
   */
  public static Result run(
      Policy policy,
      GatewayStarter starter,
      int calls,
      Duration budget,
      ExchangeListener listener) {
    try {
      return runOrThrow(policy, starter, calls, budget, listener);
    } catch (IOException | RuntimeException e) {
      log.debug("inferpam: warm-up skipped: {}", e.toString());
      return Result.NONE;
    }
  }

  /**
   * {@link #run}, but a pass that cannot be set up throws.
   *
   * @throws IOException when the temporary directory, the model server or the gateway cannot be
   *     made
   * @throws dev.inferpam.core.PolicyException when the pass's engine cannot be built from the
   *     policy (a masking hash key that cannot be read)
   */
  public static Result runOrThrow(Policy policy, GatewayStarter starter, int calls, Duration budget)
      throws IOException {
    return runOrThrow(policy, starter, calls, budget, ExchangeListener.NONE);
  }

  /** {@link #runOrThrow(Policy, GatewayStarter, int, Duration)} with a listener, as {@link #run}. */
  public static Result runOrThrow(
      Policy policy, GatewayStarter starter, int calls, Duration budget, ExchangeListener listener)
      throws IOException {
    Objects.requireNonNull(policy, "policy");
    Objects.requireNonNull(listener, "listener");
    Objects.requireNonNull(starter, "starter");
    Objects.requireNonNull(budget, "budget");
    if (calls < 0) throw new IllegalArgumentException("calls must be >= 0, was " + calls);
    if (calls == 0) return Result.NONE;
    long started = System.nanoTime();
    Path dir = Files.createTempDirectory("inferpam-warmup-");
    try {
      return pass(policy, starter, calls, budget, dir, started, listener);
    } finally {
      deleteQuietly(dir);
    }
  }

  private static Result pass(
      Policy policy,
      GatewayStarter starter,
      int calls,
      Duration budget,
      Path dir,
      long started,
      ExchangeListener listener)
      throws IOException {
    String key = randomHex(24);
    String upstreamSecret = randomHex(24);
    PamEngine.Builder builder =
        PamEngine.builder()
            .policy(derive(policy, sha256Hex(key), dir.resolve("recordings")))
            .credentialProvider(() -> new Credential("Authorization", "Bearer " + upstreamSecret));
    if (listener != ExchangeListener.NONE) builder.eventListener(listener);
    // No recording section in the real policy: the real engine records nothing, and so does this
    // one (without the warning a missing recorder is worth).
    if (policy.recording() == null) builder.recorder(Recorder.NOOP);
    PamEngine engine = builder.build();

    QueuedThreadPool upstreamThreads = new QueuedThreadPool(8, 2);
    upstreamThreads.setName("inferpam-warmup-upstream");
    upstreamThreads.setDaemon(true);
    Server upstream = new Server(upstreamThreads);
    ServerConnector connector = new ServerConnector(upstream, 1, 1);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    upstream.addConnector(connector);
    upstream.setHandler(new ModelServer(upstreamSecret));
    Gateway gateway = null;
    OkHttpClient client = null;
    ExecutorService callers = null;
    try {
      try {
        upstream.start();
      } catch (Exception e) {
        throw new IOException("warm-up model server: " + e, e);
      }
      HttpUrl upstreamUrl = HttpUrl.get("http://127.0.0.1:" + connector.getLocalPort() + "/");
      gateway = starter.start(engine, upstreamUrl);
      HttpUrl url =
          HttpUrl.get(gateway.uri() + policy.request().basePath() + "/v1/chat/completions");
      client =
          new OkHttpClient.Builder()
              .dispatcher(new Dispatcher(Executors.newCachedThreadPool(daemon("client"))))
              .connectionPool(new ConnectionPool(CLIENT_THREADS, 1, TimeUnit.MINUTES))
              // a pass that hangs must not hold the real gateway's start-up for long
              .callTimeout(CALL_TIMEOUT)
              .build();
      long deadline = started + budget.toNanos();
      AtomicInteger next = new AtomicInteger();
      AtomicInteger made = new AtomicInteger();
      AtomicInteger failures = new AtomicInteger();
      callers = Executors.newFixedThreadPool(CLIENT_THREADS, daemon("caller"));
      List<Future<?>> running = new ArrayList<>();
      OkHttpClient c = client;
      for (int t = 0; t < CLIENT_THREADS; t++) {
        running.add(
            callers.submit(
                () -> {
                  int i;
                  while (System.nanoTime() - deadline < 0 && (i = next.getAndIncrement()) < calls) {
                    if (!call(c, url, key, i)) failures.incrementAndGet();
                    made.incrementAndGet();
                  }
                }));
      }
      for (Future<?> f : running) {
        try {
          f.get();
        } catch (java.util.concurrent.ExecutionException e) {
          log.debug("inferpam: warm-up caller failed: {}", e.getCause().toString());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      Result result =
          new Result(made.get(), failures.get(), Duration.ofNanos(System.nanoTime() - started));
      log.debug(
          "inferpam: warm-up: {} exchanges ({} failed) in {} ms",
          result.calls(),
          result.failures(),
          result.elapsed().toMillis());
      return result;
    } finally {
      if (callers != null) callers.shutdownNow();
      if (client != null) {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
      }
      // Closes the engine too: its recorder is flushed into the directory deleted afterwards.
      if (gateway != null) gateway.close();
      else engine.close();
      try {
        upstream.stop();
      } catch (Exception e) {
        log.debug("inferpam: warm-up model server did not stop: {}", e.toString());
      }
    }
  }

  /**
   * One call; true when it got a 200 and its whole answer. Calls differ in their headers as
   * callers' do (SDKs, curl, tracing, the key in {@code X-Api-Key}), so that the compiled code does
   * not assume one client's requests and is thrown away when another's arrive.
   */
  private static boolean call(OkHttpClient client, HttpUrl url, String key, int i) {
    boolean stream = i % 4 == 3;
    Request.Builder builder =
        new Request.Builder()
            .url(url)
            .header("Accept", stream ? "text/event-stream" : "application/json");
    switch (i % 5) {
      case 0 -> builder.header("Authorization", "Bearer " + key);
      case 1 ->
          builder
              .header("Authorization", "Bearer " + key)
              .header("User-Agent", "OpenAI/Python 1.54.0")
              .header("X-Stainless-Lang", "python")
              .header("X-Stainless-Retry-Count", "0")
              .header("Connection", "keep-alive")
              .header("X-Request-Id", "warmup-" + i);
      case 2 ->
          builder
              .header("X-Api-Key", key)
              .header("User-Agent", "curl/8.5.0")
              .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      case 3 ->
          builder
              .header("Authorization", "Bearer " + key)
              .header("User-Agent", "gateway-bench/1")
              .header("Accept-Language", "en-GB,en;q=0.8")
              .header("Cache-Control", "no-cache");
      default ->
          builder
              .header("authorization", "Bearer " + key)
              .header("user-agent", "axios/1.7.2")
              .header("x-correlation-id", "c" + i);
    }
    Request request =
        builder
            .post(RequestBody.create(requestBody(i, stream), i % 3 == 0 ? JSON_UTF8 : JSON))
            .build();
    try (Response response = client.newCall(request).execute()) {
      BufferedSource source = response.body().source();
      long bytes = 0;
      while (!source.exhausted()) {
        bytes += source.getBuffer().size();
        source.getBuffer().clear();
      }
      return response.code() == 200 && bytes > 0;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** A request like a chat client's: about 1 KB, the user's text varying with {@code i}. */
  static byte[] requestBody(int i, boolean stream) {
    StringBuilder text = new StringBuilder(1024);
    text.append("Question ").append(i).append(": ");
    while (text.length() < 900) {
      text.append("Summarise the trade-offs of caching model answers near the caller. ");
    }
    // Sampling settings as clients send them, in half of the calls: numbers (whole and not) are
    // parsed by other code than strings, and a pass without them left it to the first callers.
    String sampling =
        switch (i % 4) {
          case 0 -> ",\"max_tokens\":" + (64 + i % 512) + ",\"temperature\":0." + (i % 10);
          case 1 -> ",\"temperature\":1,\"top_p\":0.95,\"n\":1";
          default -> "";
        };
    return ("{\"model\":\""
            + MODEL
            + "\",\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
            + "{\"role\":\"user\",\"content\":\""
            + text
            + "\"}],\"stream\":"
            + stream
            + sampling
            + "}")
        .getBytes(StandardCharsets.UTF_8);
  }

  /**
   * The pass's policy: the real one's request, block, parameters and masking settings, and its
   * recording's bodies and durability into {@code recordings}; a service key whose hash is
   * {@code keySha256} as the only identity, entitled to {@link #MODEL} for chat; limits only when
   * the real policy has some, then with bounds the pass never reaches.
   */
  static Policy derive(Policy real, String keySha256, Path recordings) {
    Policy.Recording recording = null;
    if (real.recording() != null) {
      Policy.Recording r = real.recording();
      recording =
          new Policy.Recording(
              recordings,
              r.bodies(),
              r.durability(),
              null,
              r.segmentBytes(),
              r.queueCapacity(),
              r.batchInterval(),
              r.batchSize(),
              r.queueFullWait());
    }
    List<Policy.Limit> limits =
        real.limits().isEmpty()
            ? List.of()
            : List.of(
                new Policy.Limit(
                    Set.of(GROUP),
                    List.of(Glob.compile(MODEL)),
                    Set.of(),
                    Long.MAX_VALUE / 4,
                    Long.MAX_VALUE / 4,
                    Long.MAX_VALUE / 4));
    Policy.RequestSettings r = real.request();
    // No cap on connections per client: the pass's callers share one address.
    Policy.RequestSettings request =
        new Policy.RequestSettings(
            r.basePath(),
            r.maxBodyBytes(),
            r.bodyTimeout(),
            r.minBodyRate(),
            r.headTimeout(),
            0,
            r.forwardHeaders(),
            r.maxInFlight());
    return new Policy(
        1,
        request,
        new Policy.Identity(
            List.of(new Policy.ApiKey("inferpam-warmup", keySha256, Set.of(GROUP), null))),
        new Policy.Upstream(null),
        List.of(
            new Policy.Entitlement(Set.of(GROUP), List.of(Glob.compile(MODEL)), Set.of("chat"))),
        List.of(),
        real.block(),
        real.parameters(),
        recording,
        real.masking(),
        null,
        limits);
  }

  /**
   * The pass's model server: answers every POST as an OpenAI-compatible chat completion, streamed
   * when the request asks for it; a request without the pass's upstream credential gets 401.
   */
  static final class ModelServer extends Handler.Abstract.NonBlocking {
    /** Answers as models write them: plain prose, personal data, figures and names, not ASCII. */
    private static final List<byte[]> COMPLETIONS =
        List.of(
            completion(""),
            completion("Reach the owner at jane.roe@example.com or (415) 555-2671. "),
            completion("Order 48213 for ACME GmbH ships on 2024-05-01 via DE89 pier, ref QX-77. "),
            completion("Na\u00efve caf\u00e9 r\u00e9sum\u00e9s \u2014 \u00fcber \u4f60\u597d; "));

    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);
    private final String authorization;
    private final AtomicInteger served = new AtomicInteger();

    ModelServer(String secret) {
      this.authorization = "Bearer " + secret;
    }

    @Override
    public boolean handle(
        org.eclipse.jetty.server.Request request,
        org.eclipse.jetty.server.Response response,
        Callback callback) {
      if (!authorization.equals(request.getHeaders().get(HttpHeader.AUTHORIZATION))) {
        response.setStatus(401);
        Content.Source.consumeAll(request, Callback.NOOP);
        response.write(true, ByteBuffer.allocate(0), callback);
        return true;
      }
      Content.Source.asString(
          request,
          StandardCharsets.UTF_8,
          Promise.from(body -> answer(body, response, callback), callback::failed));
      return true;
    }

    private void answer(
        String body, org.eclipse.jetty.server.Response response, Callback callback) {
      int n = served.getAndIncrement();
      boolean pii = n % 8 == 0;
      // Headers and framing vary as model servers' do.
      if (n % 2 == 0) {
        response.getHeaders().put("x-request-id", "req-" + n);
        response.getHeaders().put("openai-processing-ms", Integer.toString(100 + n % 900));
      }
      if (body.contains("\"stream\":true")) {
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        streamEvents(response, 0, pii, callback);
        return;
      }
      byte[] completion = COMPLETIONS.get(n % COMPLETIONS.size());
      response
          .getHeaders()
          .put(
              HttpHeader.CONTENT_TYPE,
              n % 3 == 0 ? "application/json; charset=utf-8" : "application/json");
      if (n % 3 == 1) {
        // chunked: two writes, no Content-Length
        int half = completion.length / 2;
        response.write(
            false,
            ByteBuffer.wrap(completion, 0, half),
            Callback.from(
                () ->
                    response.write(
                        true,
                        ByteBuffer.wrap(completion, half, completion.length - half),
                        callback),
                callback::failed));
      } else {
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, completion.length);
        response.write(true, ByteBuffer.wrap(completion), callback);
      }
    }

    /** Writes event {@code i} and, once written, the next: one write per event, as a model does. */
    private static void streamEvents(
        org.eclipse.jetty.server.Response response, int i, boolean pii, Callback callback) {
      if (i == STREAM_EVENTS) {
        response.write(true, ByteBuffer.wrap(DONE), callback);
        return;
      }
      response.write(
          false,
          ByteBuffer.wrap(event(i, pii)),
          Callback.from(() -> streamEvents(response, i + 1, pii, callback), callback::failed));
    }

    private static byte[] event(int i, boolean pii) {
      String delta;
      if (pii && i == 5) delta = "write to jane.roe@exa";
      else if (pii && i == 6) delta = "mple.com or call (415) 555-2671 ";
      else delta = "token" + i + " of the answer ";
      String usage =
          i == STREAM_EVENTS - 1
              ? ",\"usage\":{\"prompt_tokens\":250,\"completion_tokens\":"
                  + STREAM_EVENTS
                  + ",\"total_tokens\":"
                  + (250 + STREAM_EVENTS)
                  + "}"
              : "";
      return ("data: {\"id\":\"chatcmpl-warmup\",\"object\":\"chat.completion.chunk\","
              + "\"created\":1735689600,\"model\":\""
              + MODEL
              + "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
              + delta
              + "\"},\"finish_reason\":"
              + (i == STREAM_EVENTS - 1 ? "\"stop\"" : "null")
              + "}]"
              + usage
              + "}\n\n")
          .getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] completion(String opening) {
      StringBuilder content = new StringBuilder(1800);
      content.append(opening);
      while (content.length() < 1700) {
        content.append("Caching answers near the caller trades freshness for latency. ");
      }
      return ("{\"id\":\"chatcmpl-warmup\",\"object\":\"chat.completion\",\"created\":1735689600,"
              + "\"model\":\""
              + MODEL
              + "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
              + content
              + "\"},\"finish_reason\":\"stop\"}],"
              + "\"usage\":{\"prompt_tokens\":250,\"completion_tokens\":400,\"total_tokens\":650}}")
          .getBytes(StandardCharsets.UTF_8);
    }
  }

  private static java.util.concurrent.ThreadFactory daemon(String role) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, "inferpam-warmup-" + role + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  private static String randomHex(int bytes) {
    byte[] b = new byte[bytes];
    new SecureRandom().nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  static String sha256Hex(String text) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 missing", e);
    }
  }

  private static void deleteQuietly(Path dir) {
    try {
      Files.walkFileTree(
          dir,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                throws IOException {
              Files.delete(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
              Files.delete(d);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException e) {
      log.debug("inferpam: warm-up directory {} not removed: {}", dir, e.toString());
    }
  }
}
