package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.Decision;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.recording.JsonlRecorder;
import java.io.ByteArrayInputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine closes what it builds and never what it is given. */
class PamEngineOwnershipTest {
  static final String KEY = "svc-key-1";
  static final Principal ALICE =
      new Principal("alice", Set.of("ml"), Principal.VIA_API_KEY, null, Map.of());
  static final InferenceRequest PROMPT =
      new InferenceRequest(
          "POST",
          "/v1/chat/completions",
          null,
          Map.of(),
          "{}".getBytes(StandardCharsets.UTF_8),
          "127.0.0.1");

  @TempDir Path dir;
  @StartStop final MockWebServer tokenEndpoint = new MockWebServer();

  /** Every thread the test's factory made. */
  final List<Thread> made = new CopyOnWriteArrayList<>();

  final ThreadFactory threads =
      task -> {
        Thread t = new Thread(task, "test-engine-" + made.size());
        t.setDaemon(true);
        made.add(t);
        return t;
      };
  final ExecutorService pool = Executors.newCachedThreadPool();
  final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();

  @AfterEach
  void stopPools() {
    pool.shutdownNow();
    timers.shutdownNow();
  }

  static String policy(String extra) throws Exception {
    String hash =
        HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("SHA-256").digest(KEY.getBytes(StandardCharsets.UTF_8)));
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        """
            .formatted(hash)
        + extra;
  }

  static final String APPROVAL =
      """
      approval:
        reviewers: [security]
        rules:
          - {name: large-generation, max-tokens-over: 8000}
      """;

  static Verdict chat(PamEngine engine) {
    byte[] body = "{\"model\":\"llama-3\"}".getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of("Authorization", List.of("Bearer " + KEY)),
            "127.0.0.1"),
        new ByteArrayInputStream(body),
        body.length);
  }

  // --- built from the policy: closed ---------------------------------------------------------

  @Test
  void closesTheRecorderAndTheExpirySchedulerItBuiltOnTheGivenThreadFactory() throws Exception {
    Path recordings = dir.resolve("recordings");
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(policy("recording:\n  directory: " + recordings + "\n" + APPROVAL)))
            .threadFactory(threads)
            .build();
    CompletableFuture<ApprovalService.Outcome> waiting =
        engine
            .approvalService()
            .request(ALICE, PROMPT, "large-generation", "digest-1")
            .outcome()
            .toCompletableFuture();
    Verdict ex = chat(engine);
    assertThat(ex).isInstanceOf(Verdict.Allowed.class);
    Verdicts.end(ex, true);
    assertThat(made).as("the recorder's writer and the expiry thread").hasSize(2);

    engine.close();

    await().atMost(Duration.ofSeconds(10)).until(() -> made.stream().noneMatch(Thread::isAlive));
    assertThat(waiting.get(5, TimeUnit.SECONDS).reason()).isEqualTo("approval service closed");
    assertThat(Recordings.open(recordings).list(null, null)).hasSize(1);
    new JsonlRecorder(Policy.Recording.in(recordings), Clock.systemUTC())
        .close(); // the directory is free again
    Verdict late = chat(engine);
    assertThat(late.decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class, d -> assertThat(d.code()).isEqualTo("recording_unavailable"));
    engine.close(); // idempotent
  }

  @Test
  void closesTheOidcResolverAndOAuth2ProviderItBuiltAndRunsThemOnTheGivenExecutor()
      throws Exception {
    tokenEndpoint.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body("{\"access_token\":\"tok-1\",\"token_type\":\"Bearer\",\"expires_in\":3600}")
            .build());
    Path secret = Files.writeString(dir.resolve("client-secret"), "s3cret\n");
    String issuer = "http://127.0.0.1:" + tokenEndpoint.getPort() + "/realms/ml";
    AtomicInteger tasks = new AtomicInteger();
    Executor counting =
        task -> {
          tasks.incrementAndGet();
          pool.execute(task);
        };
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    """
        version: 1
        identity:
          oidc:
            - issuer: %s
              audience: inference-gateway
              jwks-uri: %s/certs
        upstream:
          credential:
            oauth2:
              token-endpoint: %s
              client-id: gateway
              client-secret-from-file: %s
        """
                        .formatted(issuer, issuer, tokenEndpoint.url("/token"), secret)))
            .executor(counting)
            .build();

    assertThat(engine.credentialProvider().current())
        .isEqualTo(new Credential("Authorization", "Bearer tok-1"));
    assertThat(tasks.get()).as("the token request ran on the given executor").isPositive();

    engine.close();

    assertThatThrownBy(() -> engine.credentialProvider().current())
        .isInstanceOf(CredentialProvider.CredentialUnavailableException.class)
        .hasMessage(
            "OAuth2 credential provider for "
                + tokenEndpoint.url("/token").host()
                + ":"
                + tokenEndpoint.getPort()
                + " is closed");
    InferenceRequest withToken =
        new InferenceRequest(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of("Authorization", List.of("Bearer aaaa.bbbb.cccc")),
            null,
            "127.0.0.1");
    assertThatThrownBy(() -> engine.identityResolver().resolve(withToken))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("OIDC resolver closed");
    assertThat(pool.isShutdown()).as("a given executor is never shut down").isFalse();
  }

  @Test
  void expiresReviewsOnTheGivenScheduler() throws Exception {
    AtomicInteger scheduled = new AtomicInteger();
    ScheduledExecutorService counting =
        new java.util.concurrent.ScheduledThreadPoolExecutor(1) {
          @Override
          public java.util.concurrent.ScheduledFuture<?> schedule(
              Runnable task, long delay, TimeUnit unit) {
            scheduled.incrementAndGet();
            return super.schedule(task, delay, unit);
          }

          @Override
          public <V> java.util.concurrent.ScheduledFuture<V> schedule(
              java.util.concurrent.Callable<V> task, long delay, TimeUnit unit) {
            scheduled.incrementAndGet();
            return super.schedule(task, delay, unit);
          }
        };
    try {
      PamEngine engine =
          PamEngine.builder()
              .policy(Policy.parse(policy(APPROVAL)))
              .scheduler(counting)
              .threadFactory(threads)
              .build();
      engine.approvalService().request(ALICE, PROMPT, "large-generation", "digest-1");

      assertThat(scheduled.get()).isEqualTo(1);
      assertThat(made).as("no expiry thread of the engine's own").isEmpty();
      engine.close();
      assertThat(counting.isShutdown()).as("a given scheduler is never shut down").isFalse();
    } finally {
      counting.shutdownNow();
    }
  }

  @Test
  void aRecordingDirectoryThatCannotBeMadeFailsTheBuildSayingWhy() throws Exception {
    Path plain = Files.writeString(dir.resolve("plain"), "x");
    Path under = plain.resolve("recordings");
    Policy policy = Policy.parse(policy("recording:\n  directory: " + under + "\n"));

    assertThatThrownBy(() -> PamEngine.builder().policy(policy).threadFactory(threads).build())
        .isInstanceOf(UncheckedIOException.class)
        .hasMessage("cannot start recording in " + under + ": not a directory: " + under);
    assertThat(made).as("no writer thread was started").isEmpty();
  }

  // --- given to the builder: never closed ----------------------------------------------------

  @Test
  void neverClosesWhatItWasGiven() throws Exception {
    CountingRecorder recorder = new CountingRecorder();
    InProcessApprovalService approvals =
        InProcessApprovalService.builder().reviewers(Set.of("security")).manualExpiry().build();
    CloseableCredentials credentials = new CloseableCredentials();
    CloseableResolver resolver = new CloseableResolver();
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy(APPROVAL)))
            .recorder(recorder)
            .approvalService(approvals)
            .credentialProvider(credentials)
            .identityResolver(resolver)
            .executor(pool)
            .scheduler(timers)
            .threadFactory(threads)
            .build();
    Verdicts.end(chat(engine), true);

    engine.close();
    engine.close();

    assertThat(recorder.flushed).as("flushed, so every record handed over is stored").hasValue(1);
    assertThat(recorder.closed).hasValue(0);
    assertThat(recorder.records).hasSize(1);
    assertThat(credentials.closed).hasValue(0);
    assertThat(resolver.closed).hasValue(0);
    assertThat(pool.isShutdown()).isFalse();
    assertThat(timers.isShutdown()).isFalse();
    CompletableFuture<ApprovalService.Outcome> stillOpen =
        approvals
            .request(ALICE, PROMPT, "large-generation", "digest-2")
            .outcome()
            .toCompletableFuture();
    assertThat(stillOpen).isNotDone();
    assertThat(approvals.pending()).hasSize(1);
    approvals.close();
  }

  @Test
  void refusesASecondExecutorSchedulerOrThreadFactory() {
    assertThatThrownBy(() -> PamEngine.builder().executor(pool).executor(pool))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("executor already set");
    assertThatThrownBy(() -> PamEngine.builder().scheduler(timers).scheduler(timers))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("scheduler already set");
    assertThatThrownBy(() -> PamEngine.builder().threadFactory(threads).threadFactory(threads))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("threadFactory already set");
  }

  static final class CountingRecorder implements Recorder {
    final List<SessionRecord> records = new CopyOnWriteArrayList<>();
    final AtomicInteger flushed = new AtomicInteger();
    final AtomicInteger closed = new AtomicInteger();

    @Override
    public void record(SessionRecord record) {
      records.add(record);
    }

    @Override
    public void flush() {
      flushed.incrementAndGet();
    }

    @Override
    public void close() {
      closed.incrementAndGet();
    }
  }

  static final class CloseableCredentials implements CredentialProvider, AutoCloseable {
    final AtomicInteger closed = new AtomicInteger();

    @Override
    public Credential current() {
      return new Credential("Authorization", "Bearer upstream");
    }

    @Override
    public void close() {
      closed.incrementAndGet();
    }
  }

  static final class CloseableResolver implements IdentityResolver, AutoCloseable {
    final AtomicInteger closed = new AtomicInteger();

    @Override
    public Optional<Principal> resolve(InferenceRequest request) {
      return Optional.empty();
    }

    @Override
    public void close() {
      closed.incrementAndGet();
    }
  }
}
