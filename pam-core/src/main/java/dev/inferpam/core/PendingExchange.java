package dev.inferpam.core;

import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.http.BodyIntake;
import dev.inferpam.core.internal.http.BoundedBody;
import dev.inferpam.core.internal.policy.Decider;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The head-first step of an exchange ({@link PamEngine#beginHead}): what {@link PendingRequest}
 * promises adapters. Decides from the head, takes the body in under the policy's {@code request}
 * bounds, then makes the {@link Exchange}.
 */
final class PendingExchange implements PendingRequest {
  private static final Logger log = LoggerFactory.getLogger(PendingExchange.class);

  private final PamEngine engine;
  private final RequestHead head;
  private final long contentLength;
  private final Instant started;
  private final long startNanos;

  /** The caller, identified from the head; {@code null} when the head decided. */
  private final Principal principal;

  /** The denial the head alone decided, or {@code null}. */
  private final Verdict.Denied decided;

  private final BodyIntake intake;
  private final AtomicBoolean settled = new AtomicBoolean();

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
      this.intake =
          new BodyIntake(engine.policy().request(), contentLength, started.toEpochMilli());
    } else {
      // Refused before the body was read: the record keeps the declared size, no body.
      Decider.Verdict v = (Decider.Verdict) headDecision;
      this.principal = null;
      this.decided =
          (Verdict.Denied)
              exchange(new Decider.Verdict(v.decision(), null, null, null, null), true);
      this.intake = null;
      settled.set(true);
    }
  }

  @Override
  public Verdict.Denied decided() {
    return decided;
  }

  @Override
  public boolean accept(byte[] b, int off, int len) {
    if (intake == null)
      throw new IllegalStateException("the head decided this request; its body is not read");
    Objects.checkFromIndexSize(off, len, b.length);
    return intake.add(b, off, len, engine.clock().millis()) == null;
  }

  @Override
  public Verdict finish() {
    if (!settled.compareAndSet(false, true)) return null;
    Decision.Deny refusal = intake.end(engine.clock().millis());
    if (refusal != null)
      return exchange(new Decider.Verdict(refusal, principal, null, null, null), true);
    return exchange(decideBody(engine, head, principal, intake.bytes()), false);
  }

  @Override
  public Verdict timedOut() {
    if (!settled.compareAndSet(false, true)) return null;
    return exchange(new Decider.Verdict(intake.timedOut(), principal, null, null, null), true);
  }

  @Override
  public Verdict failed() {
    if (!settled.compareAndSet(false, true)) return null;
    return exchange(
        new Decider.Verdict(
            new Decision.Deny(400, "bad_request", "request body could not be read", "request"),
            principal,
            null,
            null,
            null),
        true);
  }

  @Override
  public Duration timeLeft() {
    long left = intake == null ? 0 : intake.deadlineMillis() - engine.clock().millis();
    return Duration.ofMillis(Math.max(1, left));
  }

  @Override
  public Verdict read(InputStream body) {
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

  private Verdict exchange(Decider.Verdict verdict, boolean bodyLeftUnread) {
    return new Exchange(engine, head, contentLength, verdict, started, startNanos, bodyLeftUnread)
        .verdict();
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
    if (path instanceof Decision.Deny deny)
      return new Decider.Verdict(deny, null, null, null, null);
    if (length > engine.maxBodyBytes()) {
      return new Decider.Verdict(
          new Decision.Deny(
              413,
              "body_too_large",
              new BoundedBody.TooLargeException(engine.maxBodyBytes()).getMessage(),
              "request.max-body"),
          null,
          null,
          null,
          null);
    }
    InferenceRequest req =
        new InferenceRequest(
            head.method(), (String) path, head.query(), head.headers(), null, head.remoteAddress());
    try {
      return engine.decider().identifyOrDeny(req);
    } catch (RuntimeException e) {
      // One line naming the type: the exception could quote a credential, and a caller must not
      // be able to flood the log with stack traces.
      log.error("inferpam: identity evaluation failed, denying: {}", e.getClass().getName());
      log.debug("inferpam: identity evaluation failure", e);
      return new Decider.Verdict(
          new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"),
          null,
          req,
          null,
          null);
    }
  }

  /** Decides, after identity, a request whose body was read within the bounds. */
  private static Decider.Verdict decideBody(
      PamEngine engine, RequestHead head, Principal principal, byte[] bytes) {
    // The head was checked already, so the path is canonical.
    String path = (String) Decider.canonicalPathOrDeny(head.rawPath());
    InferenceRequest req =
        new InferenceRequest(
            head.method(), path, head.query(), head.headers(), bytes, head.remoteAddress());
    try {
      return engine.decider().decide(req, principal);
    } catch (RuntimeException e) {
      // One line: a caller whose request trips a bug must not flood the log with stack traces.
      log.error("inferpam: policy evaluation failed, denying: {}", e.getClass().getName());
      log.debug("inferpam: policy evaluation failure", e);
      return new Decider.Verdict(
          new Decision.Deny(500, "internal_error", "policy evaluation failed", "engine"),
          principal,
          req,
          null,
          null);
    }
  }
}
