package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import dev.inferpam.testsupport.PostgresServer;
import dev.inferpam.testsupport.RoundRobinProxy;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.ConnectionPool;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The fleet of issue #19 recording into PostgreSQL ({@code recording.store: postgres}, {@code
 * durability: strict}): three gateway replicas on 127.0.0.1 behind a round-robin proxy, one real
 * PostgreSQL the replicas connect to as the least-privileged role of {@code gateway-role.sql}.
 * Every exchange of the fleet is one row (with {@code batched} durability too), every 200 a
 * client saw has its record even when a replica is killed or the database restarts under the
 * load, and {@code replay verify --policy} checks every replica's chain. The policy has no {@code limits}: nothing depends on the clock.
 */
class GatewayFleetRecordingTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final String ROLE_PASSWORD = "fleet-rec-pw-38";
  private static final Pattern PROMPT = Pattern.compile("\"content\":\"([^\"]+)\"");
  private static final Pattern LISTENING =
      Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+)");

  private static PostgresServer postgres;

  @TempDir Path dir;
  private MockWebServer upstream;
  private RoundRobinProxy proxy;
  private Path policyFile;
  private final List<Gateway> fleet = new ArrayList<>();
  private final List<Process> processes = new ArrayList<>();

  /** The prompts the upstream received. */
  private final Set<String> forwarded = ConcurrentHashMap.newKeySet();

  /**
   * A connection per request, so that the proxy sends each to the next replica; no retry on
   * another connection, so that each prompt is sent once and its answer is the one counted.
   */
  private final OkHttpClient client =
      new OkHttpClient.Builder()
          .connectionPool(new ConnectionPool(0, 1, TimeUnit.SECONDS))
          .retryOnConnectionFailure(false)
          .readTimeout(Duration.ofSeconds(20))
          .build();

  @BeforeAll
  static void startPostgres() throws Exception {
    postgres = PostgresServer.start();
    // the schema's owner migrates once; the replicas connect as the role the docs give
    dev.inferpam.postgres.PostgresState.connect(
            postgres.jdbcUrl(),
            PostgresServer.SUPERUSER,
            PostgresServer.SUPERUSER_PASSWORD,
            Duration.ofSeconds(5),
            true)
        .close();
    try (InputStream in =
        GatewayFleetRecordingTest.class.getResourceAsStream(
            "/dev/inferpam/postgres/gateway-role.sql")) {
      String sql = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      postgres.sql("postgres", sql.replace("'change-me'", "'" + ROLE_PASSWORD + "'"));
    }
  }

  @AfterAll
  static void stopPostgres() throws IOException {
    if (postgres != null) postgres.close();
  }

  @BeforeEach
  void startUpstreamAndWritePolicy() throws Exception {
    // a test that left the database stopped must not stop the next one
    postgres.restart();
    // the records of earlier tests, their partitions and retention notes (as the owner)
    postgres.sql(
        "postgres",
        "DO $$ DECLARE p text; BEGIN FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c"
            + " ON c.oid = i.inhrelid WHERE i.inhparent = 'inferpam.records'::regclass LOOP"
            + " EXECUTE format('DROP TABLE inferpam.%I', p); END LOOP; END $$;"
            + " TRUNCATE inferpam.record_retention");
    upstream = new MockWebServer();
    upstream.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            Matcher prompt =
                PROMPT.matcher(request.getBody() == null ? "" : request.getBody().utf8());
            if (prompt.find()) forwarded.add(prompt.group(1));
            return new MockResponse.Builder()
                .code(200)
                .addHeader("Content-Type", "application/json")
                .body(
                    "{\"choices\":[{\"message\":{\"content\":\"ok\"}}],"
                        + "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,"
                        + "\"total_tokens\":2}}")
                .build();
          }
        });
    upstream.start(InetAddress.getLoopbackAddress(), 0);
    Path pgUrl = Files.writeString(dir.resolve("pg-url"), postgres.jdbcUrl());
    Path pgPassword = Files.writeString(dir.resolve("pg-password"), ROLE_PASSWORD);
    policyFile =
        Files.writeString(
            dir.resolve("policy.yaml"),
            "version: 1\n"
                + "identity:\n  api-keys:\n"
                + Policies.apiKey("alice", ALICE_KEY, "ml")
                + "entitlements:\n  - groups: [ml]\n    models: [\"*\"]\n    operations: [chat]\n"
                + "state:\n  postgres:\n    url-from-file: "
                + Policies.quoted(pgUrl.toString())
                + "\n    user: inferpam_gateway\n    password-from-file: "
                + Policies.quoted(pgPassword.toString())
                + "\n    migrate: false\n"
                + "recording:\n  store: postgres\n  durability: strict\n");
  }

  @AfterEach
  void tearDown() throws Exception {
    client.dispatcher().cancelAll();
    client.dispatcher().executorService().shutdown();
    if (proxy != null) proxy.close();
    for (Process p : processes) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    postgres.restart();
    for (Gateway g : fleet) g.close(Duration.ofSeconds(5));
    if (upstream != null) upstream.close();
  }

  // ------------------------------------------------------------------------------ the tests

  @ParameterizedTest
  @ValueSource(strings = {"strict", "batched"})
  void threeThousandRequestsOverTheFleetAreThreeThousandExchangeRowsAndEveryChainVerifies(
      String durability) throws Exception {
    Files.writeString(
        policyFile,
        Files.readString(policyFile).replace("durability: strict", "durability: " + durability));
    boolean strict = durability.equals("strict");
    startInProcessFleet();

    Map<String, Answer> answers = load(proxy.port(), "all", 3_000, 32);

    assertThat(answers).hasSize(3_000);
    assertThat(answers.values()).allSatisfy(a -> assertThat(a.status()).isEqualTo(200));
    assertThat(forwarded).isEqualTo(answers.keySet());
    assertThat(upstream.getRequestCount()).isEqualTo(3_000);
    closeFleet(); // every replica flushed: its exchange rows committed

    List<Row> rows = rows();
    Map<String, Long> exchangesByWriter = new HashMap<>();
    Set<String> exchangePrompts = new HashSet<>();
    Set<String> intentPrompts = new HashSet<>();
    for (Row r : rows) {
      if (r.type().equals("exchange")) {
        exchangesByWriter.merge(r.writer(), 1L, Long::sum);
        assertThat(r.status()).isEqualTo(200);
        assertThat(exchangePrompts.add(r.prompt())).as("one exchange row per prompt").isTrue();
      } else {
        assertThat(r.type()).isEqualTo("intent");
        intentPrompts.add(r.prompt());
      }
    }
    // exactly one exchange row per request, each replica's in a chain of its own; the proxy sent
    // every third connection to each replica
    // (strict: and one intent row before it)
    assertThat(exchangePrompts).isEqualTo(answers.keySet());
    assertThat(intentPrompts).isEqualTo(strict ? answers.keySet() : Set.of());
    assertThat(exchangesByWriter).hasSize(3).allSatisfy((w, n) -> assertThat(n).isEqualTo(1_000L));
    int records = strict ? 6_000 : 3_000;
    assertThat(rows).hasSize(records);

    Result verify = replay("verify", "--policy", policyFile.toString());
    assertThat(verify.status()).as("stderr: %s", verify.stderr()).isZero();
    assertThat(verify.stdout()).isEqualTo("OK " + records + " records" + System.lineSeparator());
  }

  @Test
  void aReplicaKilledMidLoadLosesNoRecordOfAnAnswerAClientGotAndEveryChainVerifies()
      throws Exception {
    // three JVMs starting side by side on two busy cores: a cold replica's first connection (the
    // driver loaded, SCRAM computed) can take more than a second, and a start that cannot connect
    // within state.postgres.timeout stops
    Files.writeString(
        policyFile,
        Files.readString(policyFile)
            .replace("    migrate: false\n", "    migrate: false\n    timeout: 10s\n"));
    for (int i = 0; i < 3; i++) startProcess(i);
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < 3; i++) ports.add(awaitListening(i));
    // which chain is whose: one request straight to each replica, its intent row names the writer
    List<String> writers = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      String prompt = "whose-" + i;
      assertThat(send(ports.get(i), prompt).status()).isEqualTo(200);
      writers.add(
          rows().stream()
              .filter(r -> r.type().equals("intent") && prompt.equals(r.prompt()))
              .findFirst()
              .orElseThrow()
              .writer());
    }
    assertThat(Set.copyOf(writers)).hasSize(3);
    proxy = RoundRobinProxy.start(ports);

    Process victim = processes.get(1);
    String killed = writers.get(1);
    AtomicInteger okBeforeKill = new AtomicInteger();
    AtomicBoolean killedYet = new AtomicBoolean();
    AtomicInteger okAfterKill = new AtomicInteger();
    Map<String, Answer> answers =
        load(
            proxy.port(),
            "k",
            1_500,
            12,
            a -> {
              if (a.status() != 200) return;
              if (killedYet.get()) okAfterKill.incrementAndGet();
              else if (okBeforeKill.incrementAndGet() == 500) {
                victim.destroyForcibly(); // SIGKILL, mid-load: requests in flight on it break
                killedYet.set(true);
              }
            });
    assertThat(victim.waitFor(10, TimeUnit.SECONDS)).isTrue();
    assertThat(victim.exitValue()).isEqualTo(137); // 128 + SIGKILL
    assertThat(okAfterKill.get()).as("the survivors answered after the kill").isPositive();

    // answers are 200, or no answer at all (a connection to the dead replica broke or was
    // refused): never an error status
    List<String> acknowledged =
        answers.entrySet().stream()
            .filter(e -> e.getValue().status() == 200)
            .map(Map.Entry::getKey)
            .toList();
    assertThat(answers.values()).allSatisfy(a -> assertThat(a.status()).isIn(200, -1));
    assertThat(acknowledged.size()).isGreaterThan(1_000);

    // the survivors stop as an operator stops them: SIGTERM flushes their records
    for (int i : List.of(0, 2)) {
      Process p = processes.get(i);
      p.destroy();
      assertThat(p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
      assertThat(p.exitValue()).isZero();
    }

    List<Row> rows = rows();
    Map<String, List<Row>> byPrompt = new HashMap<>();
    for (Row r : rows) byPrompt.computeIfAbsent(r.prompt(), p -> new ArrayList<>()).add(r);
    for (String prompt : acknowledged) {
      List<Row> mine = byPrompt.getOrDefault(prompt, List.of());
      // strict: the intent was committed before the request went upstream, on every replica
      assertThat(mine)
          .as("records of %s, answered 200", prompt)
          .anySatisfy(r -> assertThat(r.type()).isEqualTo("intent"));
      String writer = mine.get(0).writer();
      assertThat(mine).allSatisfy(r -> assertThat(r.writer()).isEqualTo(writer));
      // a survivor also wrote the exchange; the killed replica may have died before its commit
      if (!writer.equals(killed)) {
        assertThat(mine)
            .as("records of %s, answered 200 by a survivor", prompt)
            .anySatisfy(
                r -> {
                  assertThat(r.type()).isEqualTo("exchange");
                  assertThat(r.status()).isEqualTo(200);
                });
      }
    }
    assertThat(rows).extracting(Row::writer).containsAll(writers);

    // the command an auditor runs, as a process, on the policy the replicas ran with
    Result verify = replayProcess("verify", "--policy", policyFile.toString());
    assertThat(verify.status()).as("stderr: %s", verify.stderr()).isZero();
    assertThat(verify.stdout())
        .isEqualTo("OK " + rows.size() + " records" + System.lineSeparator());
  }

  @Test
  void postgresRestartedMidLoadIs503RecordingUnavailableWhileAwayAndLosesNoAcknowledgedRecord()
      throws Exception {
    startInProcessFleet();
    Map<String, Answer> answers = new ConcurrentHashMap<>();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicInteger ok = new AtomicInteger();
    AtomicInteger unavailable = new AtomicInteger();
    ExecutorService clients = Executors.newFixedThreadPool(8);
    List<Future<?>> loops = new ArrayList<>();
    AtomicInteger next = new AtomicInteger();
    for (int t = 0; t < 8; t++) {
      loops.add(
          clients.submit(
              () -> {
                while (!stop.get()) {
                  String prompt = "pg-" + next.getAndIncrement();
                  Answer a = sendQuietly(proxy.port(), prompt);
                  answers.put(prompt, a);
                  if (a.status() == 200) ok.incrementAndGet();
                  if (a.status() == 503) unavailable.incrementAndGet();
                }
                return null;
              }));
    }
    try {
      await().atMost(WAIT).until(() -> ok.get() >= 300);

      postgres.stop();
      // while it is away: 503 recording_unavailable, on every replica, nothing forwarded
      await().atMost(WAIT).until(() -> unavailable.get() >= 30);
      for (Gateway g : fleet) {
        String prompt = "while-away-" + g.port();
        Answer a = send(g.port(), prompt);
        assertThat(a.status()).isEqualTo(503);
        // docs/policy.md's shape: {"error":{"type":"pam_error","code":...,"message":...,
        // "request_id":...}}
        JsonNode body = JSON.readTree(a.body());
        assertThat(body.fieldNames()).toIterable().containsExactly("error");
        JsonNode error = body.path("error");
        assertThat(error.fieldNames())
            .toIterable()
            .containsExactly("type", "code", "message", "request_id");
        assertThat(error.path("type").asText()).isEqualTo("pam_error");
        assertThat(error.path("code").asText()).isEqualTo("recording_unavailable");
        assertThat(error.path("message").asText())
            .isEqualTo("recording is unavailable, the request was not forwarded");
        assertThat(error.path("request_id").asText()).isNotBlank();
        assertThat(a.body()).doesNotContain(ROLE_PASSWORD, "jdbc:");
        assertThat(forwarded).doesNotContain(prompt);
      }

      postgres.restart();
      // every replica records again by itself: none restarted
      await()
          .atMost(WAIT)
          .pollInterval(Duration.ofMillis(100))
          .until(
              () -> {
                for (Gateway g : fleet) {
                  if (send(g.port(), "back-" + g.port() + "-" + System.nanoTime()).status() != 200)
                    return false;
                }
                return true;
              });
      int okWhenBack = ok.get();
      await().atMost(WAIT).until(() -> ok.get() >= okWhenBack + 300);
    } finally {
      stop.set(true);
      for (Future<?> f : loops) f.get(WAIT.toSeconds(), TimeUnit.SECONDS);
      clients.shutdown();
    }

    // the answers were 200, or 503 recording_unavailable with nothing forwarded: nothing else
    for (Map.Entry<String, Answer> e : answers.entrySet()) {
      Answer a = e.getValue();
      if (a.status() == 200) {
        assertThat(forwarded).contains(e.getKey());
        continue;
      }
      assertThat(a.status()).as("answer to %s: %s", e.getKey(), a).isEqualTo(503);
      assertThat(JSON.readTree(a.body()).path("error").path("code").asText())
          .isEqualTo("recording_unavailable");
      assertThat(forwarded).doesNotContain(e.getKey());
    }
    closeFleet();

    // every request answered 200 has its intent and its exchange, answered 200
    List<Row> rows = rows();
    Map<String, List<Row>> byPrompt = new HashMap<>();
    for (Row r : rows) byPrompt.computeIfAbsent(r.prompt(), p -> new ArrayList<>()).add(r);
    List<String> acknowledged =
        answers.entrySet().stream()
            .filter(e -> e.getValue().status() == 200)
            .map(Map.Entry::getKey)
            .toList();
    assertThat(acknowledged).hasSizeGreaterThan(600);
    for (String prompt : acknowledged) {
      List<Row> mine = byPrompt.getOrDefault(prompt, List.of());
      assertThat(mine)
          .as("records of %s, answered 200", prompt)
          .anySatisfy(r -> assertThat(r.type()).isEqualTo("intent"))
          .anySatisfy(
              r -> {
                assertThat(r.type()).isEqualTo("exchange");
                assertThat(r.status()).isEqualTo(200);
              });
    }
    // the same three writers before, during and after: no replica was restarted
    assertThat(rows.stream().map(Row::writer).distinct()).hasSize(3);

    Result verify = replay("verify", "--policy", policyFile.toString());
    assertThat(verify.status()).as("stdout: %s", verify.stdout()).isZero();
    assertThat(verify.stdout())
        .isEqualTo("OK " + rows.size() + " records" + System.lineSeparator());
  }

  // ------------------------------------------------------------------------------ the fleet

  /** Three replicas in this JVM, each an engine of the policy file, behind the proxy. */
  private void startInProcessFleet() throws Exception {
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      PamEngine engine = PamEngine.builder().policy(Policy.load(policyFile)).build();
      Gateway g = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
      fleet.add(g);
      ports.add(g.port());
    }
    proxy = RoundRobinProxy.start(ports);
  }

  private void closeFleet() {
    for (Gateway g : fleet) g.close(Duration.ofSeconds(10));
    fleet.clear();
  }

  /** Starts replica {@code i} as a process of its own, as a user runs it ({@code serve}). */
  private void startProcess(int i) throws IOException {
    ProcessBuilder pb =
        GatewayMainProcessTest.command(
                List.of("-Xmx256m", "-XX:+UseSerialGC"),
                "serve",
                "--policy",
                policyFile.toString(),
                "--upstream",
                upstream.url("/").toString(),
                "--port",
                "0",
                "--warmup",
                "0")
            .redirectOutput(dir.resolve("replica-" + i + ".out").toFile())
            .redirectError(dir.resolve("replica-" + i + ".err").toFile());
    processes.add(pb.start());
  }

  /** The port replica {@code i} listens on, once it says so. */
  private int awaitListening(int i) throws IOException {
    Path stdout = dir.resolve("replica-" + i + ".out");
    Path stderr = dir.resolve("replica-" + i + ".err");
    Process process = processes.get(i);
    try {
      await()
          .atMost(WAIT)
          .until(() -> GatewayMainProcessTest.firstLine(stdout) != null || !process.isAlive());
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      throw new AssertionError(
          "replica "
              + i
              + " not listening within "
              + WAIT
              + "; stderr: "
              + Files.readString(stderr),
          e);
    }
    String first = GatewayMainProcessTest.firstLine(stdout);
    Matcher m = LISTENING.matcher(first == null ? "" : first);
    assertThat(m.matches())
        .as("replica %d's first stdout line: %s; stderr: %s", i, first, Files.readString(stderr))
        .isTrue();
    return Integer.parseInt(m.group(1));
  }

  // ------------------------------------------------------------------------------ clients

  /** A client's view of one request: its status and body, or status -1 when none came back. */
  private record Answer(int status, String body) {}

  private Request chat(int port, String prompt) {
    return new Request.Builder()
        .url(HttpUrl.get("http://127.0.0.1:" + port + "/v1/chat/completions"))
        .header("Authorization", "Bearer " + ALICE_KEY)
        .post(RequestBody.create(Policies.chat("llama-3.1-8b", prompt, ""), JSON_TYPE))
        .build();
  }

  private Answer send(int port, String prompt) throws IOException {
    try (Response res = client.newCall(chat(port, prompt)).execute()) {
      return new Answer(res.code(), res.body().string());
    }
  }

  private Answer sendQuietly(int port, String prompt) {
    try {
      return send(port, prompt);
    } catch (IOException noAnswer) {
      return new Answer(-1, noAnswer.toString());
    }
  }

  private Map<String, Answer> load(int port, String tag, int requests, int concurrency)
      throws Exception {
    return load(port, tag, requests, concurrency, a -> {});
  }

  /**
   * {@code requests} chat calls to {@code port} from {@code concurrency} clients at once, each
   * with a prompt of its own ({@code tag-n}); the answers by prompt.
   */
  private Map<String, Answer> load(
      int port,
      String tag,
      int requests,
      int concurrency,
      java.util.function.Consumer<Answer> onAnswer)
      throws Exception {
    Map<String, Answer> answers = new ConcurrentHashMap<>();
    AtomicInteger next = new AtomicInteger();
    ExecutorService clients = Executors.newFixedThreadPool(concurrency);
    try {
      List<Future<?>> loops = new ArrayList<>();
      for (int t = 0; t < concurrency; t++) {
        loops.add(
            clients.submit(
                () -> {
                  for (int n = next.getAndIncrement(); n < requests; n = next.getAndIncrement()) {
                    String prompt = tag + "-" + n;
                    Answer a = sendQuietly(port, prompt);
                    answers.put(prompt, a);
                    onAnswer.accept(a);
                  }
                  return null;
                }));
      }
      for (Future<?> f : loops) f.get(2, TimeUnit.MINUTES);
    } finally {
      clients.shutdown();
    }
    return answers;
  }

  // ------------------------------------------------------------------------------ the records

  /** A row of {@code inferpam.records}: its writer, type, the prompt of its request, status. */
  private record Row(String writer, long seq, String type, String prompt, int status) {}

  /** Every row, read as the schema's owner, with the prompt and status read from its line. */
  private static List<Row> rows() throws SQLException, IOException {
    List<Row> rows = new ArrayList<>();
    try (Connection c =
            DriverManager.getConnection(
                postgres.jdbcUrl(), PostgresServer.SUPERUSER, PostgresServer.SUPERUSER_PASSWORD);
        Statement s = c.createStatement();
        ResultSet r =
            s.executeQuery(
                "SELECT writer, seq, type, line FROM inferpam.records ORDER BY writer, seq")) {
      while (r.next()) {
        JsonNode line = JSON.readTree(r.getString(4));
        String body = line.path("request").path("body").asText(null);
        String prompt =
            body == null
                ? null
                : JSON.readTree(body).path("messages").path(0).path("content").asText(null);
        rows.add(
            new Row(
                r.getString(1),
                r.getLong(2),
                r.getString(3),
                prompt,
                line.path("response").path("status").asInt(-1)));
      }
    }
    return rows;
  }

  // ------------------------------------------------------------------------------ replay

  private record Result(int status, String stdout, String stderr) {}

  /** {@code GatewayMain replay ...} in this JVM, as {@code java -jar pam-gateway.jar} runs it. */
  private static Result replay(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    String[] all = new String[args.length + 1];
    all[0] = "replay";
    System.arraycopy(args, 0, all, 1, args.length);
    int status =
        GatewayMain.run(
            all,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Result(
        status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  /** {@code GatewayMain replay ...} as a child JVM. */
  private Result replayProcess(String... args) throws Exception {
    Path out = Files.createTempFile(dir, "replay", ".out");
    Path err = Files.createTempFile(dir, "replay", ".err");
    String[] all = new String[args.length + 1];
    all[0] = "replay";
    System.arraycopy(args, 0, all, 1, args.length);
    Process p =
        GatewayMainProcessTest.command(List.of(), all)
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
    processes.add(p);
    assertThat(p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)).isTrue();
    return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
  }
}
