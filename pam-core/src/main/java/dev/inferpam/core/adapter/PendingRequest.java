package dev.inferpam.core.adapter;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.InputStream;
import java.time.Duration;

/**
 * A request whose head the engine has checked and whose body has not been read yet
 * ({@link PamEngine#beginHead}). Lets an adapter read the body without holding a thread (as it
 * arrives, e.g. from a servlet {@code ReadListener}) and only for a caller the engine has
 * identified.
 *
 * <p>When it is created the engine has decided from the head alone, in this order: the path
 * (400 {@code bad_path}), a declared {@code Content-Length} over {@code request.max-body} (413
 * {@code body_too_large}) and identity (401 {@code unauthenticated}). A refusal is
 * {@link #decided()} at once: the adapter answers it <em>without reading any body byte</em>.
 *
 * <p>Otherwise the adapter feeds the body with {@link #accept} as it arrives and then calls
 * exactly one of {@link #finish()} (the body ended), {@link #timedOut()} (its timer for
 * {@link #timeLeft()} fired) or {@link #failed()} (the body could not be read); each returns the
 * {@link Verdict} decided on the body. The body is read under the policy's {@code request}
 * bounds: {@code max-body} (413 {@code body_too_large}), {@code body-timeout} and
 * {@code min-body-rate} (408 {@code body_timeout}); see {@link Policy.RequestSettings}. Once
 * {@link #accept} returns false the body is refused: stop reading and call {@link #finish()},
 * which returns the refusal.
 *
 * <p><b>Thread-safety:</b> {@link #accept} and {@link #finish()} are called by one thread at a
 * time (as container read callbacks are); {@link #timedOut()} and {@link #failed()} may come from
 * another thread. The first of {@link #finish()}, {@link #timedOut()} and {@link #failed()} makes
 * the verdict; later calls return {@code null}, so that exactly one caller carries it on.
 */
public interface PendingRequest {

  /**
   * The denial the head alone decided, or {@code null} when the body is to be read. Answer it
   * without reading the body.
   */
  Verdict.Denied decided();

  /**
   * Takes the next {@code len} bytes of the body as they arrive.
   *
   * @return true to go on reading; false once the body is refused (too large, too late, too
   *     slow): stop reading and call {@link #finish()}
   * @throws IllegalStateException when the head decided already
   */
  boolean accept(byte[] b, int off, int len);

  /**
   * The body ended (or was refused by {@link #accept}): decides the request on it.
   *
   * @return the verdict, or {@code null} when it was already made by an earlier call
   */
  Verdict finish();

  /**
   * The body did not end within {@link #timeLeft()}: 408 {@code body_timeout}.
   *
   * @return the verdict, or {@code null} when it was already made by an earlier call
   */
  Verdict timedOut();

  /**
   * The body could not be read (the client went away, a broken chunk): 400 {@code bad_request}.
   *
   * @return the verdict, or {@code null} when it was already made by an earlier call
   */
  Verdict failed();

  /**
   * How long the body may still take ({@code request.body-timeout} from the head), never below
   * 1 ms: the adapter's timer, after which it calls {@link #timedOut()}.
   */
  Duration timeLeft();

  /**
   * Reads the body from {@code body} on the calling thread, then decides: the blocking way, for
   * adapters that cannot read without a thread. The bounds are checked after every read, so a
   * read that blocks is bounded only by the stream's own timeout (a server's idle timeout). Does
   * not close the stream.
   *
   * @param body the body, or {@code null} for none
   * @return the verdict ({@link #decided()} when the head decided)
   */
  Verdict read(InputStream body);
}
