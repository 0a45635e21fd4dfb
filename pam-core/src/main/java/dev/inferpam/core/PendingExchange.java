package dev.inferpam.core;

import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.internal.http.BodyIntake;
import dev.inferpam.core.internal.http.BoundedBody;
import dev.inferpam.core.internal.policy.Decider;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A request whose head the engine has checked and whose body has not been read yet: the first,
 * head-first step of an exchange ({@link PamEngine#beginHead}). Lets an adapter read the body
 * without holding a thread (as it arrives, e.g. from a servlet {@code ReadListener}) and only for
 * a caller the engine has identified.
 *
 * <p>When it is created the engine has decided from the head alone, in this order: the path
 * (400 {@code bad_path}), a declared {@code Content-Length} over {@code request.max-body} (413
 * {@code body_too_large}) and identity (401 {@code unauthenticated}). A refusal is
 * {@link #decided()} at once: the adapter answers it <em>without reading any body byte</em> (and
 * closes the connection, or lets its server do so, when body bytes are left unread).
 *
 * <p>Otherwise the adapter feeds the body with {@link #accept} as it arrives and then calls
 * exactly one of {@link #finish()} (the body ended), {@link #timedOut()} (its timer for
 * {@link #timeLeft()} fired) or {@link #failed()} (the body could not be read); each returns the
 * {@link Exchange}, decided on the body, to carry on with as its contract says. The body is read
 * under the policy's {@code request} bounds: {@code max-body} (413 {@code body_too_large}),
 * {@code body-timeout} and {@code min-body-rate} (408 {@code body_timeout}); see
 * {@link Policy.RequestSettings}. Once {@link #accept} returns false the body is refused:
 * stop reading and call {@link #finish()}, which returns the refusal.
 *
 * <p><b>Thread-safety:</b> {@link #accept} and {@link #finish()} are called by one thread at a
 * time (as container read callbacks are); {@link #timedOut()} and {@link #failed()} may come from
 * another thread. The first of {@link #finish()}, {@link #timedOut()} and {@link #failed()} makes
 * the exchange; later calls return {@code null}, so that exactly one caller carries it on.
 */
public final class PendingExchange {
  private static final Logger log = LoggerFactory.getLogger(PendingExchange.class);

  private final PamEngine engine;
  private final RequestHead head;
  private final long contentLength;
  private final Instant started;
  private final long startNanos;
  /** The caller, identified from the head; {@code null} when the head decided. */
  private final Principal principal;
  /** The exchange the head alone decided, or {@code null}. */
  private final Exchange decided;
  private final BodyIntake intake;
  private final AtomicBoolean settled = new AtomicBoolean();
  /** Whether {@link #finish()} made the exchange on a body that was read to its end. */
  private volatile boolean bodyRead;

  PendingExchange(PamEngine engine, RequestHead head, long contentLength) {
    this.engine = engine;
    this.head = head;
    this.contentLength = contentLength;
    this.started = engine.clock().instant();
    this.startNanos = System.nanoTime();
    Object headDecision = decideHead(engine, head, contentLength);
    if (headDecision instanceof Principal p) {
      this.principal = p;
      this.decided = null;
      this.intake = new BodyIntake(engine.policy().request(), contentLength, started.toEpochMilli());
    } else {
      // Refused before the body was read: the record keeps the declared size, no body.
      Decider.Verdict v = (Decider.Verdict) headDecision;
      this.principal = null;
      this.decided = exchange(new Decider.Verdict(v.decision(), null, null, null, null));
      this.intake = null;
      settled.set(true);
    }
  }

  /**
   * The exchange the head alone decided (always a denial), or {@code null} when the body is to be
   * read. Answer it without reading the body.
   */
  public Exchange decided() {
    return decided;
  }

  /**
   * Takes the next {@code len} bytes of the body as they arrive.
   *
   * @return true to go on reading; false once the body is refused (too large, too late, too
   *     slow): stop reading and call {@link #finish()}
   * @throws IllegalStateException when the head decided already
   */
  public boolean accept(byte[] b, int off, int len) {
    if (intake == null) throw new IllegalStateException("the head decided this request; its body is not read");
    java.util.Objects.checkFromIndexSize(off, len, b.length);
    return intake.add(b, off, len, engine.clock().millis()) == null;
  }

  /**
   * The body ended (or was refused by {@link #accept}): decides the request on it.
   *
   * @return the exchange, or {@code null} when it was already made by an earlier call
   */
  public Exchange finish() {
    if (!settled.compareAndSet(false, true)) return null;
    Decision.Deny refusal = intake.end(engine.clock().millis());
    if (refusal != null) return exchange(new Decider.Verdict(refusal, principal, null, null, null));
    bodyRead = true;
    return exchange(decideBody(engine, head, principal, intake.bytes()));
  }

  /**
   * Whether the request's body may be left unread: the head decided, or the body was refused,
   * timed out or failed. An adapter answering such an exchange closes the connection afterwards
   * ({@code Connection: close}) rather than wait for bytes it will never read.
   */
  public boolean bodyLeftUnread() {
    return !bodyRead;
  }

  /**
   * The body did not end within {@link #timeLeft()}: 408 {@code body_timeout}.
   *
   * @return the exchange, or {@code null} when it was already made by an earlier call
   */
  public Exchange timedOut() {
    if (!settled.compareAndSet(false, true)) return null;
    return exchange(new Decider.Verdict(intake.timedOut(), principal, null, null, null));
  }

  /**
   * The body could not be read (the client went away, a broken chunk): 400 {@code bad_request}.
   *
   * @return the exchange, or {@code null} when it was already made by an earlier call
   */
  public Exchange failed() {
    if (!settled.compareAndSet(false, true)) return null;
    return exchange(new Decider.Verdict(new Decision.Deny(400, "bad_request", "request body could not be read",
        "request"), principal, null, null, null));
  }

  /**
   * How long the body may still take ({@code request.body-timeout} from the head), never below
   * 1 ms: the adapter's timer, after which it calls {@link #timedOut()}.
   */
  public Duration timeLeft() {
    long left = intake == null ? 0 : intake.deadlineMillis() - engine.clock().millis();
    return Duration.ofMillis(Math.max(1, left));
  }

  /**
   * Reads the body from {@code body} on the calling thread, then decides: the blocking way, for
   * adapters that cannot read without a thread. The bounds are checked after every read, so a
   * read that blocks is bounded only by the stream's own timeout (a server's idle timeout). Does
   * not close the stream.
   *
   * @param body the body, or {@code null} for none
   * @return the exchange ({@link #decided()} when the head decided)
   */
  public Exchange read(InputStream body) {
    if (decided != null) return decided;
    if (body != null) {
      long limit = engine.maxBodyBytes();
      byte[] buffer = new byte[(int) Math.min(8192, limit + 1)];
      long total = 0;
      try {
        while (true) {
          // Never more than one byte past the limit: that byte is what tells.
          int n = body.read(buffer, 0, (int) Math.min(buffer.length, limit + 1 - total));
          if (n < 0) break;
          total += n;
          if (!accept(buffer, 0, n)) break;
        }
      } catch (IOException e) {
        return failed();
      }
    }
    return finish();
  }

  private Exchange exchange(Decider.Verdict verdict) {
    return new Exchange(engine, head, contentLength, verdict, started, startNanos);
  }

  /**
   * What the head alone decides, before any body byte is read: the canonical path (400
   * {@code bad_path}), a declared length over {@code request.max-body} (413), then identity (401).
   *
   * @return the caller's {@link Principal} when the request goes on to its body, else the verdict
   *     to answer with
   */
  private static Object decideHead(PamEngine engine, RequestHead head, long length) {
    Object path = Decider.canonicalPathOrDeny(head.rawPath());
    if (path instanceof Decision.Deny deny) return new Decider.Verdict(deny, null, null, null, null);
    if (length > engine.maxBodyBytes()) {
      return new Decider.Verdict(new Decision.Deny(413, "body_too_large",
          new BoundedBody.TooLargeException(engine.maxBodyBytes()).getMessage(), "request.max-body"),
          null, null, null, null);
    }
    InferenceRequest req = new InferenceRequest(head.method(), (String) path, head.query(), head.headers(),
        null, head.remoteAddress());
    try {
      return engine.decider().identifyOrDeny(req);
    } catch (RuntimeException e) {
      // One line naming the type: the exception could quote a credential, and a caller must not
      // be able to flood the log with stack traces.
      log.error("inferpam: identity evaluation failed, denying: {}", e.getClass().getName());
      log.debug("inferpam: identity evaluation failure", e);
      return new Decider.Verdict(new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"),
          null, req, null, null);
    }
  }

  /** Decides, after identity, a request whose body was read within the bounds. */
  private static Decider.Verdict decideBody(PamEngine engine, RequestHead head, Principal principal, byte[] bytes) {
    // The head was checked already, so the path is canonical.
    String path = (String) Decider.canonicalPathOrDeny(head.rawPath());
    InferenceRequest req = new InferenceRequest(head.method(), path, head.query(), head.headers(),
        bytes, head.remoteAddress());
    try {
      return engine.decider().decide(req, principal);
    } catch (RuntimeException e) {
      // One line: a caller whose request trips a bug must not flood the log with stack traces.
      log.error("inferpam: policy evaluation failed, denying: {}", e.getClass().getName());
      log.debug("inferpam: policy evaluation failure", e);
      return new Decider.Verdict(new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"),
          principal, req, null, null);
    }
  }
}
