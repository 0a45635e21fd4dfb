package dev.inferpam.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.ReviewNotifier;
import dev.inferpam.core.internal.Background;
import dev.inferpam.core.internal.http.HttpClients;
import dev.inferpam.core.internal.policy.Durations;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.DoubleSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link ReviewNotifier} that POSTs each waiting review as JSON to a webhook: a Slack incoming
 * webhook, or any endpoint that accepts JSON.
 *
 * <h2>Payload</h2>
 * <pre>{@code
 * {"text": "inferpam: approval apr-1f… needed: alice wants chat.completions on gpt-4o (rule risky) …",
 *  "approval_id": "apr-1f…", "rule": "risky", "principal": "alice", "model": "gpt-4o",
 *  "operation": "chat.completions", "created": "2026-11-28T12:00:00Z",
 *  "expires": "2026-11-28T12:05:00Z", "review_url": "https://…" or null, "excerpt": "…" or null}
 * }</pre>
 * {@code text} is a one-line summary that Slack shows as the message ({@code &}, {@code <} and
 * {@code >} escaped as Slack asks, line breaks folded into spaces); the other fields are for
 * endpoints that read JSON. Times are ISO-8601 in UTC. The excerpt is sent as given: the caller
 * masks it (see {@link ReviewRequest#excerpt()}).
 *
 * <h2>Delivery</h2>
 * <ul>
 *   <li><b>Never blocks the caller.</b> {@link #pending} puts the notice on a bounded queue and
 *       returns; notices are sent in order, one attempt at a time, asynchronously (no thread waits
 *       for the webhook). When {@code queueCapacity} notices already wait (queued, or waiting for a
 *       retry) the notice is dropped and counted in {@link #dropped()}; the first drop of a run of
 *       drops logs one warning.</li>
 *   <li><b>Retries.</b> An I/O error (refused connection, timeout), an HTTP 5xx or an HTTP 429 is
 *       retried, until {@code maxAttempts} attempts were made; then the notice is counted in
 *       {@link #failed()} and one warning is logged. The wait before retry {@code n} is drawn at
 *       random between half and all of {@code backoffBase × 2^(n-1)}, at most {@code backoffMax}
 *       (jitter, so that notifiers restarted together do not retry together); a 429's
 *       {@code Retry-After} in seconds is honoured up to {@code backoffMax}. The retry is
 *       <i>scheduled</i>: meanwhile the next notices are sent, so a failing endpoint delays other
 *       notices by at most the attempt in progress. Any other status (a 3xx, since redirects are
 *       not followed, or a 4xx) is not retried: counted in {@link #failed()} with one warning.
 *       2xx counts in {@link #delivered()}.</li>
 *   <li><b>Timeouts.</b> Connecting is bounded by {@code connectTimeout}, waiting for the response
 *       headers by {@code readTimeout}, the whole attempt by their sum.</li>
 * </ul>
 *
 * <p><b>Secrets.</b> A webhook URL is itself a credential (Slack's carry it in the path), and the
 * optional {@code Authorization} value is one: logs, exception messages and {@link #toString()}
 * name the endpoint by scheme, host and port only, and never print the authorization value, the
 * payload or a response body.
 *
 * <p><b>Threads.</b> Thread-safe: {@link #pending} may be called from any number of threads at
 * once. Attempts and their outcomes run on the {@link Builder#executor executor} (default: a pool
 * of daemon threads named {@code inferpam-review-notifier} that end when idle), retries are timed
 * by the {@link Builder#scheduler scheduler} (default: one daemon thread
 * {@code inferpam-review-notifier-retry}, present only while a retry waits). {@link #close()}
 * shuts down the pools the notifier made; a given executor or scheduler is never shut down.
 */
public final class WebhookReviewNotifier implements ReviewNotifier, AutoCloseable {

  /** Default bound on connecting to the webhook. */
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);

  /** Default bound on waiting for the webhook's response headers. */
  public static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(10);

  /** Default number of attempts per notice, the first included. */
  public static final int DEFAULT_MAX_ATTEMPTS = 5;

  /** Default wait before the first retry; it doubles for each further one. */
  public static final Duration DEFAULT_BACKOFF_BASE = Duration.ofSeconds(1);

  /** Default longest wait between two attempts. */
  public static final Duration DEFAULT_BACKOFF_MAX = Duration.ofMinutes(1);

  /** Default number of notices that may wait to be sent. */
  public static final int DEFAULT_QUEUE_CAPACITY = 1000;

  private static final Logger LOG = LoggerFactory.getLogger(WebhookReviewNotifier.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Most of the excerpt that goes into the one-line {@code text}; the full excerpt has its own field. */
  private static final int TEXT_EXCERPT_CHARS = 200;

  private final URI url;
  private final String endpoint;
  private final String authorization;
  private final Duration connectTimeout;
  private final Duration readTimeout;
  private final int maxAttempts;
  private final Duration backoffBase;
  private final Duration backoffMax;
  private final int queueCapacity;
  private final DoubleSupplier jitter;
  private final Logger log;
  private final HttpClient http;
  private final Executor executor;

  /** The pool made here when no executor was given; shut down on close. */
  private final ExecutorService ownExecutor;

  private final ScheduledExecutorService scheduler;
  private final boolean ownScheduler;

  private final ReentrantLock lock = new ReentrantLock();

  /** Notices waiting for an attempt, oldest first (due retries go first); guarded by lock. */
  private final ArrayDeque<Notice> queue = new ArrayDeque<>();

  /** Notices waiting for their retry time; guarded by lock. */
  private final List<Notice> retrying = new ArrayList<>();

  /** Whether an attempt is in progress; guarded by lock. */
  private boolean sending;

  /** The attempt in progress, to abandon on close; guarded by lock. */
  private CompletableFuture<?> inFlight;

  private final AtomicLong delivered = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final AtomicLong dropped = new AtomicLong();

  /** True from a drop until the next notice is queued: one warning per run of drops. */
  private final AtomicBoolean dropping = new AtomicBoolean();

  private volatile boolean closed;

  /** One notice on its way: its request, built once, and how its attempts went. */
  private static final class Notice {
    final ReviewRequest review;
    final HttpRequest request;
    int attempts;
    ScheduledFuture<?> retry;

    Notice(ReviewRequest review, HttpRequest request) {
      this.review = review;
      this.request = request;
    }
  }

  private WebhookReviewNotifier(Builder b) {
    this.url = b.url;
    this.endpoint = endpoint(b.url);
    this.authorization = b.authorization;
    this.connectTimeout = b.connectTimeout;
    this.readTimeout = b.readTimeout;
    this.maxAttempts = b.maxAttempts;
    this.backoffBase = b.backoffBase;
    this.backoffMax = b.backoffMax;
    this.queueCapacity = b.queueCapacity;
    this.jitter = b.jitter;
    this.log = b.log;
    if (b.executor != null) {
      this.executor = b.executor;
      this.ownExecutor = null;
    } else {
      this.ownExecutor =
          Executors.newCachedThreadPool(Background.daemonThreads("inferpam-review-notifier"));
      this.executor = ownExecutor;
    }
    if (b.scheduler != null) {
      this.scheduler = b.scheduler;
      this.ownScheduler = false;
    } else {
      ScheduledThreadPoolExecutor retries =
          new ScheduledThreadPoolExecutor(
              1, Background.daemonThreads("inferpam-review-notifier-retry"));
      retries.setRemoveOnCancelPolicy(true);
      retries.setKeepAliveTime(30, TimeUnit.SECONDS);
      retries.allowCoreThreadTimeOut(true); // no thread while no retry waits
      this.scheduler = retries;
      this.ownScheduler = true;
    }
    this.http =
        HttpClient.newBuilder()
            .executor(executor)
            .connectTimeout(b.connectTimeout)
            // A redirect would carry the payload, and the Authorization value, wherever it points.
            .followRedirects(HttpClient.Redirect.NEVER)
            // Small occasional POSTs gain nothing from HTTP/2, and h2c upgrade probes confuse some
            // plain-http endpoints.
            .version(HttpClient.Version.HTTP_1_1)
            .build();
  }

  /** A builder; {@link Builder#url} is required. */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Queues {@code request} for sending and returns at once. A full queue, or a closed notifier,
   * drops it (counted in {@link #dropped()}).
   *
   * @throws NullPointerException when {@code request} is null
   */
  @Override
  public void pending(ReviewRequest request) {
    Objects.requireNonNull(request, "request");
    Notice notice = new Notice(request, post(request));
    boolean queued;
    lock.lock();
    try {
      queued = !closed && queue.size() + retrying.size() < queueCapacity;
      if (queued) queue.addLast(notice);
    } finally {
      lock.unlock();
    }
    if (queued) {
      dropping.set(false);
      kick();
      return;
    }
    long n = dropped.incrementAndGet();
    if (!closed && !dropping.getAndSet(true)) {
      log.warn(
          "inferpam: review notification queue for {} is full ({} waiting); dropping notifications "
              + "({} dropped so far)",
          endpoint,
          queueCapacity,
          n);
    }
  }

  /** Notices the webhook accepted (2xx). */
  public long delivered() {
    return delivered.get();
  }

  /** Notices given up on: attempts exhausted, or refused with a status that is not retried. */
  public long failed() {
    return failed.get();
  }

  /** Notices never sent: the queue was full, or the notifier was closed. */
  public long dropped() {
    return dropped.get();
  }

  /**
   * Stops accepting notices, abandons the attempt in progress, cancels the retries waiting and
   * counts the notices not yet sent (queued or waiting for a retry) in {@link #dropped()}; shuts
   * down the executor and scheduler the notifier made (a given one is left running) and stops the
   * HTTP client where the running Java can. Returns without waiting. Idempotent.
   */
  @Override
  public void close() {
    CompletableFuture<?> abandoned;
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      abandoned = inFlight;
      inFlight = null;
      dropped.addAndGet(queue.size() + retrying.size());
      for (Notice n : retrying) {
        if (n.retry != null) n.retry.cancel(false);
      }
      queue.clear();
      retrying.clear();
    } finally {
      lock.unlock();
    }
    if (abandoned != null) abandoned.cancel(true);
    if (ownScheduler) scheduler.shutdownNow();
    if (ownExecutor != null) ownExecutor.shutdownNow();
    HttpClients.shutdownNow(http);
  }

  /** Names the endpoint by scheme, host and port only, with the counters. */
  @Override
  public String toString() {
    return "WebhookReviewNotifier["
        + endpoint
        + ", delivered="
        + delivered
        + ", failed="
        + failed
        + ", dropped="
        + dropped
        + (closed ? ", closed" : "")
        + "]";
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private HttpRequest post(ReviewRequest r) {
    HttpRequest.Builder post =
        HttpRequest.newBuilder(url)
            .timeout(readTimeout)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofByteArray(payload(r)));
    if (authorization != null) post.header("Authorization", authorization);
    return post.build();
  }

  /** Starts the next attempt on the executor, off the caller's thread (a send may resolve a name). */
  private void kick() {
    try {
      executor.execute(this::sendNext);
    } catch (RejectedExecutionException e) {
      // closed meanwhile: close() counted what was queued
      if (!closed)
        log.warn("inferpam: review notifications for {} not sent: the executor refused", endpoint);
    }
  }

  /** Starts one attempt for the oldest waiting notice, unless one is in progress. */
  private void sendNext() {
    Notice next;
    lock.lock();
    try {
      if (sending || closed) return;
      next = queue.pollFirst();
      if (next == null) return;
      sending = true;
    } finally {
      lock.unlock();
    }
    next.attempts++;
    CompletableFuture<HttpResponse<Void>> sent;
    try {
      sent = http.sendAsync(next.request, HttpResponse.BodyHandlers.discarding());
    } catch (RuntimeException e) {
      sent = CompletableFuture.failedFuture(e);
    }
    // The request timeout covers the response headers only; this bounds the whole attempt.
    CompletableFuture<HttpResponse<Void>> sentFinal = sent;
    CompletableFuture<HttpResponse<Void>> bounded =
        sent.copy().orTimeout(connectTimeout.plus(readTimeout).toMillis(), TimeUnit.MILLISECONDS);
    bounded.whenComplete(
        (r, e) -> {
          if (e != null) sentFinal.cancel(true);
        });
    lock.lock();
    try {
      if (closed) {
        bounded.cancel(true);
        return;
      }
      inFlight = bounded;
    } finally {
      lock.unlock();
    }
    bounded.whenCompleteAsync((response, error) -> settle(next, response, error), executor);
  }

  /** The outcome of one attempt: done, given up, or a retry scheduled; then the next notice. */
  private void settle(Notice n, HttpResponse<Void> response, Throwable error) {
    if (closed) return;
    try {
      outcome(n, response, error);
    } catch (RuntimeException e) {
      // The exception's message could name the URL.
      failed.incrementAndGet();
      log.warn(
          "inferpam: review notification for approval {} to {} failed: {}",
          n.review.approvalId(),
          endpoint,
          e.getClass().getName());
    } finally {
      lock.lock();
      try {
        sending = false;
        inFlight = null;
      } finally {
        lock.unlock();
      }
      kick();
    }
  }

  private void outcome(Notice n, HttpResponse<Void> response, Throwable error) {
    String last;
    Duration retryAfter = null;
    if (error == null) {
      int status = response.statusCode();
      if (status >= 200 && status < 300) {
        delivered.incrementAndGet();
        return;
      }
      last = "HTTP " + status;
      if (status != 429 && status < 500) {
        failed.incrementAndGet();
        log.warn(
            "inferpam: review notification for approval {} refused by {} with HTTP {}; not retried",
            n.review.approvalId(),
            endpoint,
            status);
        return;
      }
      if (status == 429) retryAfter = retryAfter(response);
    } else {
      last = describe(error);
    }
    if (n.attempts < maxAttempts) {
      retry(n, delay(n.attempts, retryAfter));
      return;
    }
    failed.incrementAndGet();
    log.warn(
        "inferpam: review notification for approval {} not delivered to {} after {} attempts; last: {}",
        n.review.approvalId(),
        endpoint,
        maxAttempts,
        last);
  }

  /** Schedules the next attempt of {@code n}; it keeps its place in the bound meanwhile. */
  private void retry(Notice n, Duration delay) {
    lock.lock();
    try {
      if (closed) return;
      retrying.add(n);
      n.retry = scheduler.schedule(() -> retryDue(n), delay.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException e) {
      retrying.remove(n);
      failed.incrementAndGet();
      log.warn(
          "inferpam: review notification for approval {} to {} not retried: the scheduler refused",
          n.review.approvalId(),
          endpoint);
    } finally {
      lock.unlock();
    }
  }

  /** A retry's time came: the notice goes first in the queue. */
  private void retryDue(Notice n) {
    lock.lock();
    try {
      if (closed || !retrying.remove(n)) return;
      queue.addFirst(n);
    } finally {
      lock.unlock();
    }
    kick();
  }

  /**
   * The wait after failed attempt {@code attempt} (1-based): between half and all of
   * {@link #backoff}, drawn at random, and at least a {@code Retry-After} (capped at the maximum).
   */
  Duration delay(int attempt, Duration retryAfter) {
    long full = backoff(attempt, null).toMillis();
    long half = full / 2;
    long millis = half + (long) (jitter.getAsDouble() * (full - half));
    if (retryAfter != null)
      millis = Math.max(millis, Math.min(backoffMax.toMillis(), retryAfter.toMillis()));
    return Duration.ofMillis(millis);
  }

  /** The longest wait after failed attempt {@code attempt} (1-based), before jitter. */
  Duration backoff(int attempt, Duration retryAfter) {
    long base = backoffBase.toMillis();
    long max = backoffMax.toMillis();
    int shift = attempt - 1;
    long millis = shift >= 62 || base > (max >> shift) ? max : Math.min(max, base << shift);
    if (retryAfter != null) millis = Math.max(millis, Math.min(max, retryAfter.toMillis()));
    return Duration.ofMillis(millis);
  }

  private static Duration retryAfter(HttpResponse<?> response) {
    String value = response.headers().firstValue("Retry-After").orElse(null);
    if (value == null) return null;
    try {
      long seconds = Long.parseLong(value.trim());
      return seconds < 0 || seconds > Integer.MAX_VALUE ? null : Duration.ofSeconds(seconds);
    } catch (NumberFormatException e) {
      return null; // an HTTP date: the backoff applies
    }
  }

  /** A secret-free description: exception messages can quote the URL. */
  private String describe(Throwable error) {
    Throwable e = error;
    while ((e instanceof CompletionException || e instanceof ExecutionException)
        && e.getCause() != null) {
      e = e.getCause();
    }
    if (e instanceof HttpConnectTimeoutException)
      return "connect timed out after " + Durations.format(connectTimeout);
    if (e instanceof HttpTimeoutException)
      return "no response within " + Durations.format(readTimeout);
    if (e instanceof TimeoutException) {
      return "no complete response within " + Durations.format(connectTimeout.plus(readTimeout));
    }
    if (e instanceof ConnectException) return "connection failed";
    return e.getClass().getName();
  }

  // ---------------------------------------------------------------------------------------------
  // Payload

  static byte[] payload(ReviewRequest r) {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("text", text(r));
    body.put("approval_id", r.approvalId());
    body.put("rule", r.rule());
    body.put("principal", r.principal());
    body.put("model", r.model());
    body.put("operation", r.operation());
    body.put("created", r.created().toString());
    body.put("expires", r.expires().toString());
    body.put("review_url", r.reviewUrl() == null ? null : r.reviewUrl().toString());
    body.put("excerpt", r.excerpt());
    try {
      return JSON.writeValueAsBytes(body);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(
          "cannot write a review notification", e); // strings only: cannot happen
    }
  }

  /** The Slack-compatible one-line summary. */
  static String text(ReviewRequest r) {
    StringBuilder s =
        new StringBuilder("inferpam: approval ")
            .append(r.approvalId())
            .append(" needed: ")
            .append(r.principal())
            .append(" wants ")
            .append(r.operation() == null ? "a request" : r.operation());
    if (r.model() != null) s.append(" on ").append(r.model());
    s.append(" (rule ").append(r.rule()).append("), expires ").append(r.expires());
    if (r.excerpt() != null && !r.excerpt().isBlank()) {
      String excerpt = r.excerpt().strip();
      if (excerpt.length() > TEXT_EXCERPT_CHARS) {
        int end = TEXT_EXCERPT_CHARS;
        if (Character.isHighSurrogate(excerpt.charAt(end - 1))) end--;
        excerpt = excerpt.substring(0, end) + "…";
      }
      s.append(": \"").append(excerpt).append('"');
    }
    if (r.reviewUrl() != null) s.append(" review: ").append(r.reviewUrl());
    return slack(oneLine(s.toString()));
  }

  private static String oneLine(String text) {
    StringBuilder out = new StringBuilder(text.length());
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      out.append(Character.isISOControl(c) || c == '\u2028' || c == '\u2029' ? ' ' : c);
    }
    return out.toString();
  }

  /** Slack reads {@code &}, {@code <} and {@code >} as markup unless escaped. */
  private static String slack(String text) {
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }

  /** Scheme, host and port: the rest of a webhook URL may be its secret. */
  private static String endpoint(URI url) {
    return url.getScheme().toLowerCase(Locale.ROOT)
        + "://"
        + url.getHost()
        + (url.getPort() == -1 ? "" : ":" + url.getPort());
  }

  /**
   * Builds a {@link WebhookReviewNotifier}. Not thread-safe; setters validate at once and refuse a
   * second {@link #url} or {@link #authorization}. Defaults: the {@code DEFAULT_*} constants.
   */
  public static final class Builder {
    private URI url;
    private String authorization;
    private Duration connectTimeout = DEFAULT_CONNECT_TIMEOUT;
    private Duration readTimeout = DEFAULT_READ_TIMEOUT;
    private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
    private Duration backoffBase = DEFAULT_BACKOFF_BASE;
    private Duration backoffMax = DEFAULT_BACKOFF_MAX;
    private int queueCapacity = DEFAULT_QUEUE_CAPACITY;
    private Executor executor;
    private ScheduledExecutorService scheduler;
    private DoubleSupplier jitter = () -> ThreadLocalRandom.current().nextDouble();
    private Logger log = LOG;

    private Builder() {}

    /**
     * The webhook to POST to: an absolute {@code http} or {@code https} URL with a host, without
     * user info. Treated as a secret: error messages name only its scheme and host.
     *
     * @throws IllegalArgumentException when the URL is not such a URL
     * @throws IllegalStateException    when the URL was already set
     */
    public Builder url(URI url) {
      Objects.requireNonNull(url, "url");
      if (this.url != null) throw new IllegalStateException("url already set");
      String scheme = url.getScheme() == null ? null : url.getScheme().toLowerCase(Locale.ROOT);
      if (!"http".equals(scheme) && !"https".equals(scheme)) {
        throw new IllegalArgumentException("url must be http or https, was scheme " + scheme);
      }
      if (url.getHost() == null)
        throw new IllegalArgumentException("url must name a host (" + scheme + "://?)");
      if (url.getRawUserInfo() != null) {
        throw new IllegalArgumentException(
            "url must not carry user info ("
                + endpoint(url)
                + "); use authorization(..) for credentials");
      }
      this.url = url;
      return this;
    }

    /**
     * An {@code Authorization} header value sent with every POST (e.g. {@code Bearer …} shared
     * with the receiving endpoint). Never logged.
     *
     * @throws IllegalArgumentException when blank or holding a line break
     * @throws IllegalStateException    when already set
     */
    public Builder authorization(String value) {
      Objects.requireNonNull(value, "value");
      if (this.authorization != null) throw new IllegalStateException("authorization already set");
      if (value.isBlank()) throw new IllegalArgumentException("authorization must not be blank");
      if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) {
        throw new IllegalArgumentException("authorization must not contain line breaks");
      }
      this.authorization = value;
      return this;
    }

    /** @throws IllegalArgumentException unless positive */
    public Builder connectTimeout(Duration timeout) {
      this.connectTimeout = positive(timeout, "connectTimeout");
      return this;
    }

    /** Bound on waiting for the response headers. @throws IllegalArgumentException unless positive */
    public Builder readTimeout(Duration timeout) {
      this.readTimeout = positive(timeout, "readTimeout");
      return this;
    }

    /** Attempts per notice, the first included. @throws IllegalArgumentException unless positive */
    public Builder maxAttempts(int attempts) {
      if (attempts <= 0)
        throw new IllegalArgumentException("maxAttempts must be > 0, was " + attempts);
      this.maxAttempts = attempts;
      return this;
    }

    /** Wait before the first retry, doubled for each further one. @throws IllegalArgumentException when negative */
    public Builder backoffBase(Duration base) {
      Objects.requireNonNull(base, "base");
      if (base.isNegative())
        throw new IllegalArgumentException("backoffBase must be >= 0, was " + base);
      this.backoffBase = base;
      return this;
    }

    /** Longest wait between attempts. @throws IllegalArgumentException when negative */
    public Builder backoffMax(Duration max) {
      Objects.requireNonNull(max, "max");
      if (max.isNegative())
        throw new IllegalArgumentException("backoffMax must be >= 0, was " + max);
      this.backoffMax = max;
      return this;
    }

    /**
     * Runs the attempts and their outcomes (the HTTP client's work included), instead of a pool of
     * the notifier's own. It must run tasks on threads other than the caller's; an executor of
     * virtual threads suits. The notifier never shuts it down.
     *
     * @throws IllegalStateException when already set
     */
    public Builder executor(Executor executor) {
      this.executor = Background.setOnce(this.executor, executor, "executor", "executor");
      return this;
    }

    /**
     * Times the retries, instead of a thread of the notifier's own. The notifier never shuts it
     * down; {@link WebhookReviewNotifier#close()} cancels the retries it scheduled.
     *
     * @throws IllegalStateException when already set
     */
    public Builder scheduler(ScheduledExecutorService scheduler) {
      this.scheduler = Background.setOnce(this.scheduler, scheduler, "scheduler", "scheduler");
      return this;
    }

    /** Notices that may wait to be sent. @throws IllegalArgumentException unless positive */
    public Builder queueCapacity(int capacity) {
      if (capacity <= 0)
        throw new IllegalArgumentException("queueCapacity must be > 0, was " + capacity);
      this.queueCapacity = capacity;
      return this;
    }

    /** Replaces the random draw of the jitter, in {@code [0, 1)} (tests). */
    Builder jitter(DoubleSupplier jitter) {
      this.jitter = Objects.requireNonNull(jitter, "jitter");
      return this;
    }

    /** Replaces the logger (tests). */
    Builder logger(Logger log) {
      this.log = Objects.requireNonNull(log, "log");
      return this;
    }

    /**
     * Builds the notifier. Its own threads, if any, are started on demand.
     *
     * @throws IllegalStateException when no URL was set, or {@code backoffBase > backoffMax}
     */
    public WebhookReviewNotifier build() {
      if (url == null) throw new IllegalStateException("url is required");
      if (backoffBase.compareTo(backoffMax) > 0) {
        throw new IllegalStateException(
            "backoffBase (" + backoffBase + ") must not exceed backoffMax (" + backoffMax + ")");
      }
      return new WebhookReviewNotifier(this);
    }

    private static Duration positive(Duration d, String name) {
      Objects.requireNonNull(d, name);
      if (d.isNegative() || d.isZero())
        throw new IllegalArgumentException(name + " must be > 0, was " + d);
      return d;
    }
  }
}
