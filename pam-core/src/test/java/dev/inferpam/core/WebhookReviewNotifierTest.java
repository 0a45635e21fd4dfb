package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ReviewNotifier.ReviewRequest;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.Marker;
import org.slf4j.event.Level;
import org.slf4j.helpers.LegacyAbstractLogger;
import org.slf4j.helpers.MessageFormatter;

class WebhookReviewNotifierTest {
  static final Instant T0 = Instant.parse("2026-11-28T12:00:00Z");
  static final ObjectMapper JSON = new ObjectMapper();

  /** A Slack webhook keeps its secret in the path; some endpoints take one in the query. */
  static final String HOOK_PATH = "/services/T000/B000/pathsecret42?token=querysecret42";

  static final String AUTHORIZATION = "Bearer authsecret42";

  @StartStop final MockWebServer server = new MockWebServer();
  final CapturingLogger log = new CapturingLogger();

  /** Times every retry and runs it at once: {@code delays} are the waits the notifier asked for. */
  final ManualScheduler scheduler = new ManualScheduler(true);

  final List<Duration> sleeps = scheduler.delays;
  final List<WebhookReviewNotifier> notifiers = new ArrayList<>();

  @AfterEach
  void closeNotifiers() {
    notifiers.forEach(WebhookReviewNotifier::close);
  }

  // --- payload -------------------------------------------------------------------------------

  @Test
  void postsEveryFieldAsJsonWithAOneLineSlackText() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).body("ok").build());
    WebhookReviewNotifier notifier = notifier(builder());

    notifier.pending(review("apr-0123", "delete the <prod> db & [EMAIL]\nnow"));

    RecordedRequest seen = server.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getMethod()).isEqualTo("POST");
    assertThat(seen.getUrl().encodedPath()).isEqualTo("/services/T000/B000/pathsecret42");
    assertThat(seen.getHeaders().get("Content-Type")).isEqualTo("application/json");
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(AUTHORIZATION);
    JsonNode body = JSON.readTree(seen.getBody().utf8());
    assertThat(body.get("text").asText())
        .isEqualTo(
            "inferpam: approval apr-0123 needed: alice wants "
                + "chat.completions on gpt-4o (rule risky-prompts), expires 2026-11-28T12:05:00Z: "
                + "\"delete the &lt;prod&gt; db &amp; [EMAIL] now\" review: https://pam.example.com/pam/approvals/apr-0123");
    assertThat(body.get("approval_id").asText()).isEqualTo("apr-0123");
    assertThat(body.get("rule").asText()).isEqualTo("risky-prompts");
    assertThat(body.get("principal").asText()).isEqualTo("alice");
    assertThat(body.get("model").asText()).isEqualTo("gpt-4o");
    assertThat(body.get("operation").asText()).isEqualTo("chat.completions");
    assertThat(body.get("created").asText()).isEqualTo("2026-11-28T12:00:00Z");
    assertThat(body.get("expires").asText()).isEqualTo("2026-11-28T12:05:00Z");
    assertThat(body.get("review_url").asText())
        .isEqualTo("https://pam.example.com/pam/approvals/apr-0123");
    assertThat(body.get("excerpt").asText()).isEqualTo("delete the <prod> db & [EMAIL]\nnow");
    assertThat(body.size()).isEqualTo(10);
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
  }

  @Test
  void sendsNullsForMissingOptionalFields() throws Exception {
    server.enqueue(new MockResponse.Builder().code(204).build());
    WebhookReviewNotifier notifier = notifier(builder());

    notifier.pending(
        new ReviewRequest(
            "apr-1", "big-requests", "bob", null, null, T0, T0.plusSeconds(60), null, null));

    JsonNode body = JSON.readTree(server.takeRequest(5, TimeUnit.SECONDS).getBody().utf8());
    assertThat(body.get("text").asText())
        .isEqualTo(
            "inferpam: approval apr-1 needed: bob wants a request (rule big-requests), expires 2026-11-28T12:01:00Z");
    assertThat(body.get("model").isNull()).isTrue();
    assertThat(body.get("operation").isNull()).isTrue();
    assertThat(body.get("review_url").isNull()).isTrue();
    assertThat(body.get("excerpt").isNull()).isTrue();
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
  }

  // --- retries -------------------------------------------------------------------------------

  @Test
  void retriesA500ThenDeliversWithExponentialBackoff() {
    server.enqueue(new MockResponse.Builder().code(500).build());
    server.enqueue(new MockResponse.Builder().code(503).build());
    server.enqueue(new MockResponse.Builder().code(200).build());
    WebhookReviewNotifier notifier = notifier(builder());

    notifier.pending(review("apr-1", "x"));

    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
    assertThat(server.getRequestCount()).isEqualTo(3);
    assertThat(sleeps).containsExactly(Duration.ofMillis(100), Duration.ofMillis(200));
    assertThat(notifier.failed()).isZero();
    assertThat(log.lines).isEmpty();
  }

  @Test
  void retriesA429HonouringRetryAfterUpToTheMaximum() {
    server.enqueue(new MockResponse.Builder().code(429).setHeader("Retry-After", "1").build());
    server.enqueue(new MockResponse.Builder().code(429).setHeader("Retry-After", "3600").build());
    server.enqueue(new MockResponse.Builder().code(200).build());
    WebhookReviewNotifier notifier = notifier(builder());

    notifier.pending(review("apr-1", "x"));

    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
    assertThat(server.getRequestCount()).isEqualTo(3);
    assertThat(sleeps).containsExactly(Duration.ofSeconds(1), Duration.ofSeconds(2));
  }

  @Test
  void givesUpAfterMaxAttemptsWithOneWarning() {
    server.setDispatcher(byApproval(Map.of("apr-1", 502, "apr-2", 200)));
    WebhookReviewNotifier notifier = notifier(builder().maxAttempts(3));

    notifier.pending(review("apr-1", "x"));
    notifier.pending(review("apr-2", "y"));

    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> notifier.delivered() == 1 && notifier.failed() == 1);
    assertThat(server.getRequestCount()).isEqualTo(4);
    assertThat(sleeps).containsExactly(Duration.ofMillis(100), Duration.ofMillis(200));
    assertThat(log.lines)
        .containsExactly(
            "WARN inferpam: review notification for approval apr-1 not delivered to "
                + endpoint()
                + " after 3 attempts; last: HTTP 502");
  }

  @Test
  void doesNotRetryA4xxOtherThan429() {
    server.enqueue(new MockResponse.Builder().code(404).build());
    server.enqueue(new MockResponse.Builder().code(200).build());
    WebhookReviewNotifier notifier = notifier(builder());

    notifier.pending(review("apr-1", "x"));
    notifier.pending(review("apr-2", "y"));

    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
    assertThat(server.getRequestCount()).isEqualTo(2);
    assertThat(notifier.failed()).isEqualTo(1);
    assertThat(sleeps).isEmpty();
    assertThat(log.lines)
        .containsExactly(
            "WARN inferpam: review notification for approval apr-1 refused by "
                + endpoint()
                + " with HTTP 404; not retried");
  }

  @Test
  void retriesWhenTheResponseTimesOut() {
    Gate gate = new Gate();
    server.setDispatcher(gate);
    WebhookReviewNotifier notifier =
        notifier(builder().maxAttempts(2).readTimeout(Duration.ofMillis(200)));

    notifier.pending(review("apr-1", "x"));

    await().atMost(Duration.ofSeconds(10)).until(() -> notifier.failed() == 1);
    assertThat(server.getRequestCount()).isEqualTo(2);
    assertThat(log.lines)
        .containsExactly(
            "WARN inferpam: review notification for approval apr-1 not delivered to "
                + endpoint()
                + " after 2 attempts; last: no response within 200ms");
  }

  @Test
  void aFailingNoticeWaitsForItsRetryWithoutHoldingBackTheNextOnes() throws Exception {
    server.setDispatcher(byApproval(Map.of("apr-1", 503, "apr-2", 200, "apr-3", 200)));
    ManualScheduler manual = new ManualScheduler(false);
    WebhookReviewNotifier notifier = notifier(builder(manual));

    notifier.pending(review("apr-1", "x"));
    notifier.pending(review("apr-2", "y"));
    notifier.pending(review("apr-3", "z"));

    // apr-1 failed once and waits for its retry on the scheduler; the others went on meanwhile
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 2);
    assertThat(manual.delays).containsExactly(Duration.ofMillis(100));
    assertThat(server.getRequestCount()).isEqualTo(3);
    server.setDispatcher(byApproval(Map.of("apr-1", 200)));

    manual.runDue();

    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 3);
    assertThat(notifier.failed()).isZero();
    assertThat(server.getRequestCount()).isEqualTo(4);
  }

  @Test
  void retryWaitsAreJitteredBetweenHalfAndAllOfTheBackoff() {
    WebhookReviewNotifier low =
        notifier(builder().jitter(() -> 0.0).backoffMax(Duration.ofMillis(700)));
    assertThat(low.delay(1, null)).isEqualTo(Duration.ofMillis(50));
    assertThat(low.delay(3, null)).isEqualTo(Duration.ofMillis(200));
    assertThat(low.delay(1, Duration.ofSeconds(1)))
        .as("Retry-After, up to the maximum")
        .isEqualTo(Duration.ofMillis(700));
    WebhookReviewNotifier random =
        notifier(
            WebhookReviewNotifier.builder()
                .url(server.url(HOOK_PATH).uri())
                .backoffBase(Duration.ofMillis(100))
                .backoffMax(Duration.ofSeconds(2)));
    java.util.Set<Duration> seen = new java.util.HashSet<>();
    for (int i = 0; i < 200; i++) {
      Duration d = random.delay(2, null);
      assertThat(d).isBetween(Duration.ofMillis(100), Duration.ofMillis(200));
      seen.add(d);
    }
    assertThat(seen).as("drawn at random").hasSizeGreaterThan(10);
  }

  @Test
  void runsAttemptsOnTheGivenExecutorAndLeavesGivenPoolsRunningWhenClosed() throws Exception {
    server.enqueue(new MockResponse.Builder().code(200).build());
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newCachedThreadPool();
    java.util.concurrent.ScheduledExecutorService timers =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
    try {
      java.util.concurrent.atomic.AtomicInteger tasks =
          new java.util.concurrent.atomic.AtomicInteger();
      WebhookReviewNotifier notifier =
          notifier(
              builder(timers)
                  .executor(
                      task -> {
                        tasks.incrementAndGet();
                        pool.execute(task);
                      }));

      notifier.pending(review("apr-1", "x"));

      await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 1);
      assertThat(tasks.get()).isPositive();
      notifier.close();
      assertThat(pool.isShutdown()).isFalse();
      assertThat(timers.isShutdown()).isFalse();
    } finally {
      pool.shutdownNow();
      timers.shutdownNow();
    }
  }

  @Test
  void closeCancelsAWaitingRetryAndCountsItAsDropped() {
    server.enqueue(new MockResponse.Builder().code(500).build());
    ManualScheduler manual = new ManualScheduler(false);
    WebhookReviewNotifier notifier = notifier(builder(manual));
    notifier.pending(review("apr-1", "x"));
    await().atMost(Duration.ofSeconds(5)).until(() -> manual.delays.size() == 1);

    notifier.close();
    manual.runDue(); // too late: nothing is sent

    assertThat(manual.cancelled).isEqualTo(1);
    assertThat(notifier.dropped()).isEqualTo(1);
    assertThat(server.getRequestCount()).isEqualTo(1);
  }

  @Test
  void backoffDoublesUpToTheMaximum() {
    WebhookReviewNotifier notifier = notifier(builder().backoffMax(Duration.ofMillis(700)));
    assertThat(notifier.backoff(1, null)).isEqualTo(Duration.ofMillis(100));
    assertThat(notifier.backoff(3, null)).isEqualTo(Duration.ofMillis(400));
    assertThat(notifier.backoff(4, null)).isEqualTo(Duration.ofMillis(700));
    assertThat(notifier.backoff(200, null)).isEqualTo(Duration.ofMillis(700));
  }

  // --- never blocking ------------------------------------------------------------------------

  @Test
  void pendingReturnsAtOnceWhileTheWebhookHangs() throws Exception {
    Gate gate = new Gate();
    server.setDispatcher(gate);
    WebhookReviewNotifier notifier = notifier(builder());

    assertTimeoutPreemptively(Duration.ofSeconds(2), () -> notifier.pending(review("apr-1", "x")));
    assertThat(gate.arrived.await(5, TimeUnit.SECONDS))
        .isTrue(); // the webhook holds the first POST
    assertTimeoutPreemptively(Duration.ofSeconds(2), () -> notifier.pending(review("apr-2", "y")));

    assertThat(gate.open.getCount()).isEqualTo(1); // returned before the webhook answered
    assertThat(notifier.delivered()).isZero();
    gate.open.countDown();
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 2);
  }

  @Test
  void dropsWhenTheQueueIsFullCountsItAndWarnsOnce() throws Exception {
    Gate gate = new Gate();
    server.setDispatcher(gate);
    WebhookReviewNotifier notifier = notifier(builder().queueCapacity(1));

    notifier.pending(review("apr-1", "x"));
    assertThat(gate.arrived.await(5, TimeUnit.SECONDS)).isTrue(); // taken off the queue, being sent
    notifier.pending(review("apr-2", "x")); // fills the queue
    notifier.pending(review("apr-3", "x"));
    notifier.pending(review("apr-4", "x"));

    assertThat(notifier.dropped()).isEqualTo(2);
    assertThat(notifier.toString()).contains("dropped=2");
    assertThat(log.lines)
        .containsExactly(
            "WARN inferpam: review notification queue for "
                + endpoint()
                + " is full (1 waiting); dropping notifications (1 dropped so far)");
    gate.open.countDown();
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.delivered() == 2);
  }

  @Test
  void closeStopsTheSenderAndCountsWhatWasStillQueued() throws Exception {
    Gate gate = new Gate();
    server.setDispatcher(gate);
    WebhookReviewNotifier notifier = notifier(builder());
    notifier.pending(review("apr-1", "x"));
    assertThat(gate.arrived.await(5, TimeUnit.SECONDS)).isTrue();
    notifier.pending(review("apr-2", "x"));

    assertTimeoutPreemptively(Duration.ofSeconds(5), notifier::close);
    notifier.pending(review("apr-3", "x"));

    await().atMost(Duration.ofSeconds(5)).until(() -> senderThreads().isEmpty());
    assertThat(notifier.dropped()).isEqualTo(2);
    assertThat(notifier.delivered()).isZero();
    assertThat(notifier.toString()).endsWith(", closed]");
  }

  // --- secrets -------------------------------------------------------------------------------

  @Test
  void neverLogsOrPrintsTheUrlPathQueryOrAuthorization() throws Exception {
    for (int i = 0; i < 2; i++) server.enqueue(new MockResponse.Builder().code(500).build());
    server.enqueue(new MockResponse.Builder().code(401).build());
    Gate gate = new Gate();
    WebhookReviewNotifier notifier = notifier(builder().maxAttempts(2).queueCapacity(1));
    notifier.pending(review("apr-1", "secret-prompt-42"));
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.failed() == 1);
    notifier.pending(review("apr-2", "secret-prompt-42"));
    await().atMost(Duration.ofSeconds(5)).until(() -> notifier.failed() == 2);
    server.setDispatcher(gate);
    notifier.pending(review("apr-3", "secret-prompt-42"));
    assertThat(gate.arrived.await(5, TimeUnit.SECONDS)).isTrue();
    for (int i = 0; i < 3; i++) notifier.pending(review("apr-x", "secret-prompt-42"));

    assertThat(log.lines).hasSize(3); // gave up, refused, dropping
    String everything = String.join("\n", log.lines) + "\n" + notifier;
    assertThat(everything)
        .contains(endpoint())
        .doesNotContain(
            "pathsecret42", "querysecret42", "authsecret42", "secret-prompt-42", "/services");
    gate.open.countDown();
  }

  @Test
  void refusesBadSettingsNamingTheValueButNotTheUrl() {
    assertThatThrownBy(
            () ->
                WebhookReviewNotifier.builder()
                    .url(URI.create("ftp://hooks.example.com/pathsecret42")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("url must be http or https, was scheme ftp");
    assertThatThrownBy(
            () ->
                WebhookReviewNotifier.builder()
                    .url(URI.create("https://u:pathsecret42@h.example/x")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "url must not carry user info (https://h.example); use authorization(..) for credentials");
    assertThatThrownBy(() -> WebhookReviewNotifier.builder().maxAttempts(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxAttempts must be > 0, was 0");
    assertThatThrownBy(() -> WebhookReviewNotifier.builder().readTimeout(Duration.ofSeconds(-5)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("readTimeout must be > 0, was PT-5S");
    assertThatThrownBy(() -> WebhookReviewNotifier.builder().authorization("Bearer x\r\nX-Evil: 1"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("authorization must not contain line breaks");
    assertThatThrownBy(
            () ->
                WebhookReviewNotifier.builder()
                    .url(URI.create("https://a.example/"))
                    .url(URI.create("https://b.example/")))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("url already set");
    assertThatThrownBy(() -> WebhookReviewNotifier.builder().build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("url is required");
  }

  @Test
  void reviewRequestRefusesAnOverlongExcerpt() {
    assertThatThrownBy(() -> review("apr-1", "x".repeat(ReviewRequest.MAX_EXCERPT_CHARS + 1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("excerpt must be at most 500 chars, was 501");
  }

  // --- helpers -------------------------------------------------------------------------------

  WebhookReviewNotifier.Builder builder() {
    return builder(scheduler);
  }

  WebhookReviewNotifier.Builder builder(java.util.concurrent.ScheduledExecutorService retries) {
    return WebhookReviewNotifier.builder()
        .url(server.url(HOOK_PATH).uri())
        .authorization(AUTHORIZATION)
        .backoffBase(Duration.ofMillis(100))
        .backoffMax(Duration.ofSeconds(2))
        .scheduler(retries)
        .jitter(() -> 1.0) // the whole backoff: waits as without jitter
        .logger(log);
  }

  WebhookReviewNotifier notifier(WebhookReviewNotifier.Builder builder) {
    WebhookReviewNotifier n = builder.build();
    notifiers.add(n);
    return n;
  }

  String endpoint() {
    return "http://" + server.getHostName() + ":" + server.getPort();
  }

  static ReviewRequest review(String id, String excerpt) {
    return new ReviewRequest(
        id,
        "risky-prompts",
        "alice",
        "gpt-4o",
        "chat.completions",
        T0,
        T0.plusSeconds(300),
        URI.create("https://pam.example.com/pam/approvals/" + id),
        excerpt);
  }

  static List<Thread> senderThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("inferpam-review-notifier") && t.isAlive())
        .toList();
  }

  /** Answers each POST with the status given for its approval id (200 for others). */
  static Dispatcher byApproval(Map<String, Integer> statuses) {
    return new Dispatcher() {
      @Override
      public MockResponse dispatch(RecordedRequest request) {
        try {
          String id = JSON.readTree(request.getBody().utf8()).get("approval_id").asText();
          return new MockResponse.Builder().code(statuses.getOrDefault(id, 200)).build();
        } catch (java.io.IOException e) {
          return new MockResponse.Builder().code(400).build();
        }
      }
    };
  }

  /**
   * A scheduler that records the delay of every task and runs it at once on another thread
   * ({@code immediate}) or when the test calls {@link #runDue()}.
   */
  static final class ManualScheduler extends java.util.concurrent.AbstractExecutorService
      implements java.util.concurrent.ScheduledExecutorService {
    final List<Duration> delays = Collections.synchronizedList(new ArrayList<>());
    final java.util.Queue<Task> due = new java.util.concurrent.ConcurrentLinkedQueue<>();
    final boolean immediate;
    volatile int cancelled;

    ManualScheduler(boolean immediate) {
      this.immediate = immediate;
    }

    @Override
    public java.util.concurrent.ScheduledFuture<?> schedule(
        Runnable command, long delay, TimeUnit unit) {
      delays.add(Duration.ofNanos(unit.toNanos(delay)));
      Task task = new Task(command, unit.toNanos(delay));
      if (immediate) {
        new Thread(task).start();
      } else {
        due.add(task);
      }
      return task;
    }

    /** Runs every task scheduled so far and not cancelled. */
    void runDue() {
      for (Task t; (t = due.poll()) != null; ) t.run();
    }

    @Override
    public <V> java.util.concurrent.ScheduledFuture<V> schedule(
        java.util.concurrent.Callable<V> callable, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException();
    }

    @Override
    public java.util.concurrent.ScheduledFuture<?> scheduleAtFixedRate(
        Runnable command, long initialDelay, long period, TimeUnit unit) {
      throw new UnsupportedOperationException();
    }

    @Override
    public java.util.concurrent.ScheduledFuture<?> scheduleWithFixedDelay(
        Runnable command, long initialDelay, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void execute(Runnable command) {
      command.run();
    }

    @Override
    public void shutdown() {}

    @Override
    public List<Runnable> shutdownNow() {
      return List.of();
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return false;
    }

    final class Task extends java.util.concurrent.FutureTask<Void>
        implements java.util.concurrent.ScheduledFuture<Void> {
      private final long delayNanos;

      Task(Runnable command, long delayNanos) {
        super(command, null);
        this.delayNanos = delayNanos;
      }

      @Override
      public boolean cancel(boolean mayInterrupt) {
        boolean done = super.cancel(mayInterrupt);
        if (done) cancelled++;
        return done;
      }

      @Override
      public long getDelay(TimeUnit unit) {
        return unit.convert(delayNanos, TimeUnit.NANOSECONDS);
      }

      @Override
      public int compareTo(java.util.concurrent.Delayed o) {
        return Long.compare(getDelay(TimeUnit.NANOSECONDS), o.getDelay(TimeUnit.NANOSECONDS));
      }
    }
  }

  /** Holds every request until the test opens the gate (or the server shuts down), then answers 200. */
  static final class Gate extends Dispatcher {
    final CountDownLatch arrived = new CountDownLatch(1);
    final CountDownLatch open = new CountDownLatch(1);

    @Override
    public MockResponse dispatch(RecordedRequest request) throws InterruptedException {
      arrived.countDown();
      open.await(10, TimeUnit.SECONDS);
      return new MockResponse.Builder().code(200).build();
    }

    @Override
    public void close() {
      open.countDown();
    }
  }

  /** Keeps every formatted log line as {@code LEVEL message}. */
  static final class CapturingLogger extends LegacyAbstractLogger {
    private static final long serialVersionUID = 1L;
    final List<String> lines = Collections.synchronizedList(new ArrayList<>());

    CapturingLogger() {
      this.name = "capture";
    }

    @Override
    protected String getFullyQualifiedCallerName() {
      return null;
    }

    @Override
    protected void handleNormalizedLoggingCall(
        Level level, Marker marker, String pattern, Object[] args, Throwable t) {
      lines.add(
          level
              + " "
              + MessageFormatter.basicArrayFormat(pattern, args)
              + (t == null ? "" : " " + t));
    }

    @Override
    public boolean isTraceEnabled() {
      return true;
    }

    @Override
    public boolean isDebugEnabled() {
      return true;
    }

    @Override
    public boolean isInfoEnabled() {
      return true;
    }

    @Override
    public boolean isWarnEnabled() {
      return true;
    }

    @Override
    public boolean isErrorEnabled() {
      return true;
    }
  }
}
