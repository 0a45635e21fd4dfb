package dev.inferpam.gateway;

import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.WebhookReviewNotifier;
import dev.inferpam.gateway.demo.Demo;
import dev.inferpam.gateway.internal.Warmup;
import dev.inferpam.gateway.replay.Replay;
import dev.inferpam.gateway.replay.Replay.ReplayException;
import dev.inferpam.micrometer.PamMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import okhttp3.HttpUrl;

/**
 * The command line of {@code pam-gateway.jar} ({@code docs/gateway.md}).
 *
 * <pre>
 * java -jar pam-gateway.jar serve  --policy FILE --upstream URL [--port N] [--bind ADDR] [--warmup N|TIME]
 *                                 [--server netty|jetty]
 * java -jar pam-gateway.jar train  [--policy FILE] [--calls N]
 * java -jar pam-gateway.jar demo   [--port N]
 * java -jar pam-gateway.jar replay list   (--recordings DIR | --policy FILE) [--subject S] [--since T]
 * java -jar pam-gateway.jar replay show   (--recordings DIR | --policy FILE) ID
 * java -jar pam-gateway.jar replay verify (--recordings DIR | --policy FILE)
 * java -jar pam-gateway.jar replay rerun  (--recordings DIR | --policy FILE) ID --upstream URL
 * </pre>
 *
 * <p>Exit status: 0 on success (for {@code serve}: stopped by SIGTERM or SIGINT after draining),
 * 1 when something failed at run time (the recorder could not be flushed, the demo broke) or
 * a replay found something wrong (a broken chain, an unknown exchange id, an exchange that
 * cannot be re-sent, an unreachable upstream), 2 for a usage error: bad arguments, an
 * unreadable or invalid policy, a bad URL, an address that cannot be bound, a recording
 * directory that is missing or unreadable. Every error is one line on standard error starting
 * {@code inferpam: }; user errors never print a stack trace. Standard output carries only what
 * a script reads: the {@code listening on} line, the demo's narration, replay results, the
 * usage text for {@code --help}.
 *
 * <p>The {@code replay} commands are {@link Replay} on the command line; their output formats
 * are described there.
 *
 * <p>The {@code demo} command is {@link Demo} on the command line.
 */
public final class GatewayMain {

  static final int EXIT_OK = 0;
  static final int EXIT_FAILURE = 1;
  static final int EXIT_USAGE = 2;

  /** {@link #run} result for {@code serve}: the gateway runs on, the shutdown hook ends the JVM. */
  static final int SERVING = -1;

  static final int DEFAULT_PORT = 8080;
  static final String DEFAULT_BIND = "127.0.0.1";

  /**
   * The warm-up pass before the listening line, by default ({@link Warmup}): this many exchanges,
   * for at most {@link #DEFAULT_WARMUP_TIME}. Measured on 2 cores (docs/performance.md, "Warm-up"):
   * with 10,000 the first 2,000 calls after the listening line have a p50 of 1.25 to 1.45 times
   * the steady state's, at 9 to 12 s to the listening line; with the former default, 2 s of
   * exchanges, 1.8 times.
   */
  static final int DEFAULT_WARMUP_CALLS = 10_000;

  /** The longest the default warm-up pass runs, should the machine be slow. */
  static final Duration DEFAULT_WARMUP_TIME = Duration.ofSeconds(30);

  /** Most exchanges {@code --warmup N} accepts. */
  static final int MAX_WARMUP_CALLS = 1_000_000;

  /** Longest {@code --warmup} duration, and the longest a {@code --warmup N} pass may take. */
  static final Duration MAX_WARMUP_TIME = Duration.ofMinutes(5);

  /** Exchanges of a {@code train} run, by default. */
  static final int DEFAULT_TRAIN_CALLS = 20_000;

  /** Most exchanges {@code train --calls} accepts. */
  static final int MAX_TRAIN_CALLS = 10_000_000;

  /** A {@code train} run starts no new exchange after this long. */
  static final Duration TRAIN_BUDGET = Duration.ofMinutes(30);

  /**
   * What {@code train} runs without {@code --policy}: every control that costs time per request on
   * (every masking detector, batched recording of masked bodies, a request limit), so that a JVM
   * trained with it has seen the code of any policy's requests.
   */
  static final String TRAIN_POLICY =
      String.join(
          "\n",
          "version: 1",
          "block:",
          "  presets: [ollama-admin, vllm-admin, triton-admin, torchserve-admin, openai-admin]",
          "masking:",
          "  strategy: redact",
          "recording:",
          "  directory: ./recordings",
          "  bodies: masked",
          "  durability: batched",
          "limits:",
          "  - groups: [\"*\"]",
          "    requests-per-minute: 60",
          "");

  /** Environment variable: where to post new reviews (a secret, like a Slack webhook URL). */
  static final String REVIEW_WEBHOOK_ENV = "INFERPAM_REVIEW_WEBHOOK";

  /** Environment variable: the Authorization header value for those posts. */
  static final String REVIEW_WEBHOOK_AUTH_ENV = "INFERPAM_REVIEW_WEBHOOK_AUTHORIZATION";

  static final String USAGE =
      String.join(
          "\n",
          "usage: java -jar pam-gateway.jar <command> [options]",
          "",
          "commands:",
          "  serve --policy FILE --upstream URL [--port N] [--bind ADDR] [--warmup N|TIME]",
          "        [--server netty|jetty]",
          "        run the gateway in front of the model server at URL, enforcing the policy FILE.",
          "        --port N     port to listen on, 0 for a free one (default " + DEFAULT_PORT + ")",
          "        --bind ADDR  address to listen on (default " + DEFAULT_BIND + ")",
          "        --warmup N|TIME  before listening, run N exchanges (or as many as fit in TIME,",
          "                     e.g. 5s, 1500ms) through a private copy of the gateway and an",
          "                     in-process model server, so that the first callers find the code",
          "                     compiled; nothing is forwarded, recorded or counted (default "
              + DEFAULT_WARMUP_CALLS
              + " exchanges, for at most "
              + DEFAULT_WARMUP_TIME.toSeconds()
              + "s; 0 turns it off)",
          "        --server netty|jetty  the HTTP server and relay: netty (default), which relays",
          "                     each exchange on one event loop (no thread per stream), or jetty",
          "                     (Jetty, the servlet filter and an OkHttp client);",
          "                     the default comes from -D" + Gateway.SERVER_PROPERTY + "=...",
          "        Prints 'listening on http://ADDR:PORT' when ready. SIGTERM drains in-flight",
          "        requests, flushes the recorder and exits 0. Reviewer endpoints: /pam/approvals;",
          "        health: /pam/health. Environment: " + REVIEW_WEBHOOK_ENV + "=URL posts each new",
          "        review (Slack-compatible JSON) to URL; " + REVIEW_WEBHOOK_AUTH_ENV + " sets its",
          "        Authorization header.",
          "  train [--policy FILE] [--calls N]",
          "        run N exchanges (default "
              + DEFAULT_TRAIN_CALLS
              + ") as the warm-up pass does, with the",
          "        policy FILE (default: every control on), then exit; nothing listens and nothing is",
          "        forwarded. For JVM training runs: java -XX:AOTCacheOutput=pam-gateway.aot -jar",
          "        pam-gateway.jar train, then java -XX:AOTCache=pam-gateway.aot -jar pam-gateway.jar",
          "        serve ... (JDK 25). Prints 'trained: N exchanges in T ms'; exit 1 if one failed.",
          "  demo [--port N]",
          "        start a mock model server, a demo OIDC identity provider and the gateway on",
          "        127.0.0.1, drive narrated traffic that shows each control, then exit: 0 when",
          "        every step went as narrated, 1 when one did not.",
          "        --port N     the gateway's port, 0 for a free one (default: free)",
          "  replay list (--recordings DIR | --policy FILE) [--subject S] [--since T]",
          "        one line per recorded exchange, oldest first:",
          "        time id subject method path model outcome status ('-' when missing).",
          "        --since: an ISO instant (2026-11-28T22:00:00Z) or a date (2026-11-28, UTC).",
          "  replay show (--recordings DIR | --policy FILE) ID",
          "        the exchange's recorded line as indented JSON. Unknown ID: exit 1.",
          "  replay verify (--recordings DIR | --policy FILE)",
          "        recompute the hash chain: 'OK <n> records' (exit 0), or",
          "        'BROKEN <file>:<line>: <reason>' for the first broken line (exit 1); in",
          "        PostgreSQL every writer's chain, one 'BROKEN writer W seq N: <reason>' per break.",
          "        --policy FILE: the records are where the policy's recording section writes",
          "        them: its directory, or with store: postgres the database of state.postgres.",
          "  replay rerun (--recordings DIR | --policy FILE) ID --upstream URL [--policy FILE]",
          "        re-send the recorded request (method, path, recorded body, content-type) to URL",
          "        and print the status of both answers and a diff of the new body against the",
          "        recorded one. --policy: the gateway's policy, for a fresh upstream credential;",
          "        without it the request goes without one. Only exchanges that were forwarded",
          "        (allowed or approved) and whose request body was recorded can be re-sent.",
          "",
          "options may also be written --name=value. Exit status: 0 ok, 1 failure, 2 usage error.");

  private final PrintStream out;
  private final PrintStream err;

  private GatewayMain(PrintStream out, PrintStream err) {
    this.out = out;
    this.err = err;
  }

  /** Runs the command line and exits with its status (or keeps serving). */
  public static void main(String[] args) {
    // Netty's leak detector samples buffers and tags every message passed along a pipeline: a cost
    // on each streamed event, for a check that belongs in tests (where it stays on). The
    // standalone gateway turns it off unless asked for with -Dio.netty.leakDetection.level.
    if (System.getProperty("io.netty.leakDetection.level") == null
        && System.getProperty("io.netty.leakDetectionLevel") == null) {
      System.setProperty("io.netty.leakDetection.level", "disabled");
    }
    int status = run(args, System.out, System.err);
    // serve: Jetty's threads keep the JVM alive until the shutdown hook halts it.
    if (status != SERVING) System.exit(status);
  }

  /**
   * Runs one command, writing to {@code out} and {@code err}.
   *
   * @return the exit status, or {@link #SERVING} when {@code serve} started a gateway that now
   *     runs until the JVM is told to stop
   */
  static int run(String[] args, PrintStream out, PrintStream err) {
    return new GatewayMain(out, err).execute(List.of(args));
  }

  private int execute(List<String> args) {
    if (args.contains("--help") || args.contains("-h")) {
      out.println(USAGE);
      out.flush();
      return EXIT_OK;
    }
    if (args.isEmpty())
      return usageError("no command given; expected serve, train, demo or replay");
    List<String> rest = args.subList(1, args.size());
    try {
      switch (args.get(0)) {
        case "serve":
          return serve(
              Options.parse(
                  rest, Set.of("policy", "upstream", "port", "bind", "warmup", "server")));
        case "train":
          return train(Options.parse(rest, Set.of("policy", "calls")));
        case "demo":
          return demo(Options.parse(rest, Set.of("port")));
        case "replay":
          return replay(rest);
        default:
          return usageError(
              "unknown command \"" + args.get(0) + "\"; expected serve, train, demo or replay");
      }
    } catch (UsageException e) {
      return usageError(e.getMessage());
    }
  }

  private int serve(Options options) throws UsageException {
    String policyArg = options.required("policy");
    HttpUrl upstream = upstreamUrl(options.required("upstream"));
    int port = options.port(DEFAULT_PORT);
    String bind = options.get("bind", DEFAULT_BIND);
    if (bind.isBlank()) throw new UsageException("--bind: must not be empty");
    WarmupOption warmup =
        options.has("warmup")
            ? WarmupOption.parse(options.get("warmup", ""))
            : new WarmupOption(DEFAULT_WARMUP_CALLS, DEFAULT_WARMUP_TIME);
    Gateway.Server server;
    try {
      server =
          options.has("server")
              ? Gateway.Server.parse(options.required("server"))
              : Gateway.Server.fromSystemProperty();
    } catch (IllegalArgumentException e) {
      throw new UsageException("--server: " + e.getMessage());
    }

    Path policyFile;
    try {
      policyFile = Path.of(policyArg);
    } catch (InvalidPathException e) {
      throw new UsageException("--policy: not a valid path: \"" + policyArg + "\"");
    }
    WebhookReviewNotifier webhook = reviewWebhook(System::getenv);
    // GET /pam/metrics: the engine's meters (docs/metrics.md); the warm-up's engine has none
    PrometheusMeterRegistry metrics = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    PamEngine engine;
    try {
      PamEngine.Builder builder =
          PamEngine.builder()
              .policy(Policy.load(policyFile))
              .eventListener(PamMetrics.bindTo(metrics));
      if (webhook != null) builder.reviewNotifier(webhook);
      engine = builder.build();
    } catch (PolicyException | IllegalArgumentException e) {
      // IllegalArgumentException: engine-level checks of policy values (key hashes, credential
      // source); both name a key path inside the file.
      return error(EXIT_USAGE, policyMessage(policyArg, e.getMessage()));
    } catch (UncheckedIOException e) {
      // The policy's recording directory cannot be opened (not creatable, held by another
      // gateway): the engine refuses to run unrecorded, and the fix is in the policy or the disk.
      return error(EXIT_USAGE, policyMessage(policyArg, "recording: " + e.getMessage()));
    }
    PamMetrics.bindEngine(engine, metrics); // in flight, recorder backlog
    warnIfNoCredential(engine);

    // Before anything listens, so that no caller (nor a load balancer's health check) reaches a
    // replica that is still warming up; the real gateway then starts with its code compiled.
    // Its meters go to a registry of the same kind, thrown away: the real engine's listener code
    // is compiled by the pass too, none of its counts reach /pam/metrics.
    Warmup.run(
        engine.policy(),
        (warmEngine, warmUpstream) ->
            startGateway(warmEngine, warmUpstream, "127.0.0.1", 0, server),
        warmup.calls(),
        warmup.time(),
        PamMetrics.bindTo(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT)));

    Gateway gateway;
    try {
      gateway =
          Gateway.start(
              engine, upstream, bind, port, Gateway.DEFAULT_MAX_THREADS, server, metrics::scrape);
    } catch (IOException | IllegalArgumentException e) {
      return error(EXIT_USAGE, e.getMessage());
    } catch (IllegalStateException e) {
      return error(EXIT_FAILURE, e.getMessage());
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(gateway), "inferpam-shutdown"));
    out.println("listening on " + gateway.uri());
    out.flush();
    return SERVING;
  }

  private int train(Options options) throws UsageException {
    int calls = options.count("calls", DEFAULT_TRAIN_CALLS, MAX_TRAIN_CALLS);
    Policy policy;
    String policyArg = options.has("policy") ? options.required("policy") : null;
    try {
      policy =
          policyArg == null ? Policy.parse(TRAIN_POLICY) : Policy.load(path("policy", policyArg));
    } catch (PolicyException | IllegalArgumentException e) {
      // Only a policy file can be invalid: the built-in one is tested.
      return error(EXIT_USAGE, policyMessage(String.valueOf(policyArg), e.getMessage()));
    }
    Warmup.Result result;
    try {
      result =
          Warmup.runOrThrow(
              policy,
              (engine, upstream) ->
                  startGateway(
                      engine, upstream, "127.0.0.1", 0, Gateway.Server.fromSystemProperty()),
              calls,
              TRAIN_BUDGET,
              // as serve's engine has: its meters' code is in the trained profiles too
              PamMetrics.bindTo(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT)));
    } catch (IOException | RuntimeException e) {
      return error(EXIT_FAILURE, "train: " + e.getMessage());
    }
    out.println(
        "trained: "
            + result.calls()
            + " exchanges in "
            + result.elapsed().toMillis()
            + " ms"
            + (result.failures() == 0 ? "" : ", " + result.failures() + " failed"));
    out.flush();
    return result.failures() == 0 && result.calls() == calls ? EXIT_OK : EXIT_FAILURE;
  }

  /**
   * {@code --warmup}: a number of exchanges (at most {@link #MAX_WARMUP_CALLS}, for at most
   * {@link #MAX_WARMUP_TIME}) or a time ({@code 1500ms}, {@code 5s}, at most
   * {@link #MAX_WARMUP_TIME}) to run exchanges for; {@code 0} (or {@code 0s}) for none.
   */
  record WarmupOption(int calls, Duration time) {
    static WarmupOption parse(String value) throws UsageException {
      int digits = 0;
      while (digits < value.length() && isAsciiDigit(value.charAt(digits))) digits++;
      String unit = value.substring(digits);
      if (digits > 0 && digits <= 9) {
        long n = Long.parseLong(value.substring(0, digits));
        Duration time =
            switch (unit) {
              case "ms" -> Duration.ofMillis(n);
              case "s" -> Duration.ofSeconds(n);
              default -> null;
            };
        if (unit.isEmpty() && n <= MAX_WARMUP_CALLS) {
          return new WarmupOption((int) n, MAX_WARMUP_TIME);
        }
        if (time != null && time.compareTo(MAX_WARMUP_TIME) <= 0) {
          return new WarmupOption(time.isZero() ? 0 : MAX_WARMUP_CALLS, time);
        }
      }
      throw new UsageException(
          "--warmup: expected a number of exchanges up to "
              + MAX_WARMUP_CALLS
              + " or a time up to "
              + MAX_WARMUP_TIME.toSeconds()
              + "s (e.g. 5s, 1500ms), was \""
              + value
              + "\"");
    }
  }

  private static boolean isAsciiDigit(char c) {
    return c >= '0' && c <= '9';
  }

  /** Starts the real gateway and the warm-up pass's one alike, so that the pass runs the same code. */
  private static Gateway startGateway(
      PamEngine engine, HttpUrl upstream, String bind, int port, Gateway.Server server)
      throws IOException {
    return Gateway.start(engine, upstream, bind, port, Gateway.DEFAULT_MAX_THREADS, server);
  }

  /**
   * The review webhook from {@value #REVIEW_WEBHOOK_ENV} (and {@value #REVIEW_WEBHOOK_AUTH_ENV}),
   * or {@code null} when it is unset or blank. The URL is a secret: a bad value is reported
   * without it.
   *
   * @throws UsageException when the URL or the authorization value is not acceptable
   */
  static WebhookReviewNotifier reviewWebhook(java.util.function.Function<String, String> env)
      throws UsageException {
    String url = env.apply(REVIEW_WEBHOOK_ENV);
    if (url == null || url.isBlank()) return null;
    WebhookReviewNotifier.Builder builder = WebhookReviewNotifier.builder();
    try {
      builder.url(java.net.URI.create(url.strip()));
    } catch (IllegalArgumentException e) {
      throw new UsageException(
          REVIEW_WEBHOOK_ENV + ": not an absolute http(s) URL with a host and no user info");
    }
    String authorization = env.apply(REVIEW_WEBHOOK_AUTH_ENV);
    if (authorization != null && !authorization.isBlank()) {
      try {
        builder.authorization(authorization.strip());
      } catch (IllegalArgumentException e) {
        throw new UsageException(REVIEW_WEBHOOK_AUTH_ENV + ": must be a single-line header value");
      }
    }
    return builder.build();
  }

  /**
   * Drains and stops the gateway, then halts with 0, or 1 when the recorder could not be
   * flushed. Halting is deliberate: a JVM ended by SIGTERM otherwise exits 143 whatever its
   * hooks do, and the contract is exit 0 after a clean drain.
   */
  private void stop(Gateway gateway) {
    int status = EXIT_OK;
    try {
      gateway.close();
    } catch (RuntimeException e) {
      err.println("inferpam: shutdown: " + oneLine(String.valueOf(e.getMessage())));
      status = EXIT_FAILURE;
    }
    out.flush();
    err.flush();
    Runtime.getRuntime().halt(status);
  }

  private void warnIfNoCredential(PamEngine engine) {
    try {
      engine.credentialProvider().current();
    } catch (CredentialUnavailableException | RuntimeException e) {
      // Not fatal: a from-file secret may appear later. Until then allowed requests get 503.
      err.println(
          "inferpam: warning: upstream credential unavailable ("
              + oneLine(String.valueOf(e.getMessage()))
              + "); allowed requests are refused until it is");
      err.flush();
    }
  }

  private int demo(Options options) throws UsageException {
    int port = options.port(0);
    try {
      return Demo.run(out, port);
    } catch (IOException e) {
      return error(EXIT_FAILURE, "demo failed: " + e.getMessage());
    }
  }

  private int replay(List<String> args) throws UsageException {
    if (args.isEmpty())
      throw new UsageException("replay needs a command: list, show, verify or rerun");
    List<String> rest = args.subList(1, args.size());
    Options options;
    String id = null;
    switch (args.get(0)) {
      case "list" ->
          options = Options.parse(rest, Set.of("recordings", "policy", "subject", "since"), 0);
      case "verify" -> options = Options.parse(rest, Set.of("recordings", "policy"), 0);
      case "show" -> options = Options.parse(rest, Set.of("recordings", "policy"), 1);
      case "rerun" -> options = Options.parse(rest, Set.of("recordings", "upstream", "policy"), 1);
      default ->
          throw new UsageException(
              "unknown replay command \""
                  + args.get(0)
                  + "\"; expected list, show, verify or rerun");
    }
    String command = args.get(0);
    if (command.equals("show") || command.equals("rerun")) {
      if (options.positionals().isEmpty())
        throw new UsageException("replay " + command + " needs an exchange ID");
      id = options.positionals().get(0);
    }
    if (!options.has("recordings") && !options.has("policy"))
      throw new UsageException(
          "replay " + command + " needs --recordings DIR or --policy FILE (where it records)");
    Path dir =
        options.has("recordings") ? path("recordings", options.required("recordings")) : null;
    Policy policy = null;
    String policyArg = options.has("policy") ? options.required("policy") : null;
    // Arguments are all checked before the recording is opened, so that a typo is reported as such.
    String subject = options.has("subject") ? options.required("subject") : null;
    Instant since = null;
    HttpUrl upstream = null;
    CredentialProvider credentials = null;
    Policy.Bodies bodies = null;
    if (command.equals("list") && options.has("since")) {
      try {
        since = Replay.parseSince(options.required("since"));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--since: " + e.getMessage());
      }
    }
    if (command.equals("rerun")) upstream = upstreamUrl(options.required("upstream"));
    if (policyArg != null) {
      try {
        policy = Policy.load(path("policy", policyArg));
        if (command.equals("rerun")) {
          credentials = Replay.credentials(policy);
          bodies = policy.recording() == null ? null : policy.recording().bodies();
        }
      } catch (PolicyException | IllegalArgumentException e) {
        return error(EXIT_USAGE, policyMessage(policyArg, e.getMessage()));
      }
    }

    Replay replay;
    try {
      replay = dir != null ? Replay.open(dir) : Replay.open(policy);
    } catch (IOException | UncheckedIOException e) {
      return error(EXIT_USAGE, (dir != null ? "--recordings: " : "--policy: ") + e.getMessage());
    } catch (PolicyException e) {
      return error(EXIT_USAGE, policyMessage(policyArg, e.getMessage()));
    }
    String where = dir != null ? dir.toString() : replay.location();
    try (replay) {
      switch (command) {
        case "list" -> {
          for (String line : replay.list(subject, since)) out.println(line);
        }
        case "show" -> {
          Optional<String> json = replay.show(id);
          if (json.isEmpty()) return error(EXIT_FAILURE, "no exchange " + id + " in " + where);
          out.println(json.get());
        }
        case "verify" -> {
          var verification = replay.verify();
          out.println(Replay.format(verification));
          out.flush();
          return verification.ok() ? EXIT_OK : EXIT_FAILURE;
        }
        default -> {
          for (String line : replay.rerun(id, upstream, credentials, bodies).lines())
            out.println(line);
        }
      }
    } catch (ReplayException e) {
      return error(EXIT_FAILURE, e.getMessage());
    } catch (IOException | UncheckedIOException e) {
      return error(EXIT_USAGE, "cannot read " + where + ": " + e.getMessage());
    }
    out.flush();
    return EXIT_OK;
  }

  private static Path path(String option, String value) throws UsageException {
    try {
      return Path.of(value);
    } catch (InvalidPathException e) {
      throw new UsageException("--" + option + ": not a valid path: \"" + value + "\"");
    }
  }

  private static HttpUrl upstreamUrl(String value) throws UsageException {
    HttpUrl url = HttpUrl.parse(value);
    if (url == null)
      throw new UsageException("--upstream: not an http or https URL: \"" + value + "\"");
    if (url.encodedQuery() != null)
      throw new UsageException("--upstream: must not have a query: \"" + value + "\"");
    if (!url.encodedUsername().isEmpty() || !url.encodedPassword().isEmpty()) {
      // A credential in the URL would be logged and sent bare; the policy's upstream.credential is
      // the place.
      throw new UsageException(
          "--upstream: must not hold user info; configure upstream.credential in the policy");
    }
    return url;
  }

  /**
   * The loader names the source as {@code policy <path>} in file-level errors and starts content
   * errors with the key path; the user sees {@code <path>: <problem>} either way.
   */
  static String policyMessage(String policyArg, String message) {
    String msg = oneLine(String.valueOf(message));
    String sourcePrefix = "policy " + policyArg + ": ";
    if (msg.startsWith(sourcePrefix)) msg = msg.substring(sourcePrefix.length());
    else if (msg.startsWith("policy: ")) msg = msg.substring("policy: ".length());
    return policyArg + ": " + msg;
  }

  private int usageError(String message) {
    return error(EXIT_USAGE, message + " (see --help)");
  }

  private int error(int status, String message) {
    err.println("inferpam: " + oneLine(message));
    err.flush();
    return status;
  }

  /** Messages from parsers may span lines; the contract is one line on standard error. */
  static String oneLine(String message) {
    return message.strip().replaceAll("\\s*\\R\\s*", " ");
  }

  /** A bad command line; the message is shown to the user as is. */
  static final class UsageException extends Exception {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }

  /**
   * {@code --name value} and {@code --name=value} options, each given at most once, and up to a
   * given number of plain arguments (an exchange ID) anywhere among them.
   */
  static final class Options {
    private final Map<String, String> values;
    private final List<String> positionals;

    private Options(Map<String, String> values, List<String> positionals) {
      this.values = values;
      this.positionals = positionals;
    }

    static Options parse(List<String> args, Set<String> known) throws UsageException {
      return parse(args, known, 0);
    }

    static Options parse(List<String> args, Set<String> known, int maxPositionals)
        throws UsageException {
      Map<String, String> values = new HashMap<>();
      List<String> positionals = new ArrayList<>();
      for (int i = 0; i < args.size(); i++) {
        String arg = args.get(i);
        if (!arg.startsWith("--") && !arg.isEmpty() && positionals.size() < maxPositionals) {
          positionals.add(arg);
          continue;
        }
        if (!arg.startsWith("--") || arg.length() == 2) {
          throw new UsageException("unexpected argument \"" + arg + "\"");
        }
        String name = arg.substring(2);
        String value;
        int eq = name.indexOf('=');
        if (eq >= 0) {
          value = name.substring(eq + 1);
          name = name.substring(0, eq);
        } else {
          if (!known.contains(name)) throw new UsageException("unknown option --" + name);
          if (i + 1 >= args.size() || args.get(i + 1).startsWith("--")) {
            throw new UsageException("--" + name + " needs a value");
          }
          value = args.get(++i);
        }
        if (!known.contains(name)) throw new UsageException("unknown option --" + name);
        if (values.putIfAbsent(name, value) != null)
          throw new UsageException("--" + name + " given twice");
      }
      return new Options(values, List.copyOf(positionals));
    }

    List<String> positionals() {
      return positionals;
    }

    boolean has(String name) {
      return values.containsKey(name);
    }

    String required(String name) throws UsageException {
      String v = values.get(name);
      if (v == null || v.isEmpty()) throw new UsageException("--" + name + " is required");
      return v;
    }

    String get(String name, String defaultValue) {
      return values.getOrDefault(name, defaultValue);
    }

    /** A whole number from 0 to {@code max}, or {@code defaultValue} when the option is absent. */
    int count(String name, int defaultValue, int max) throws UsageException {
      String v = values.get(name);
      if (v == null) return defaultValue;
      try {
        int n = Integer.parseInt(v);
        if (n >= 0 && n <= max) return n;
      } catch (NumberFormatException e) {
        // reported below with the value
      }
      throw new UsageException(
          "--" + name + ": must be a number from 0 to " + max + ", was \"" + v + "\"");
    }

    int port(int defaultValue) throws UsageException {
      String v = values.get("port");
      if (v == null) return defaultValue;
      try {
        int port = Integer.parseInt(v);
        if (port >= 0 && port <= 65535) return port;
      } catch (NumberFormatException e) {
        // reported below with the value
      }
      throw new UsageException("--port: must be a number from 0 to 65535, was \"" + v + "\"");
    }
  }
}
