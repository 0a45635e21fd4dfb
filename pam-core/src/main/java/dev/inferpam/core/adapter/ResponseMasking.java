package dev.inferpam.core.adapter;

import java.io.IOException;

/**
 * Masks one response body on its way to the client ({@link ResponsePlan.Relay#masking()}): every
 * chunk read from the upstream (or written by the application) goes through {@link #push}, and
 * what it returns is what the client gets; {@link #finish()} at the end of the body releases the
 * held-back tail.
 *
 * <p>Two steps, each present when the exchange needs it: the exchange's credentials (the
 * upstream credential it injected, the caller's own token or key) are replaced wherever they
 * occur in the bytes, whatever the content type, holding back at most a run that could still
 * become one; then, when the response is masked, the masker runs. Replacing a credential keeps
 * the body's length ({@link #changesLength()} is false without masking).
 *
 * <p>Framing is kept: server-sent events, NDJSON and JSON are masked inside their text, so the
 * client still gets well-formed events and documents. The masker may hold back a bounded tail
 * (at most {@code masking.max-hold-back} chars) while a value could still be completing, so a
 * push may return fewer bytes than it was given, or none; it never waits for more input, and
 * never holds the whole body.
 *
 * <p>The bytes returned are the response <em>as delivered</em>: report exactly those to
 * {@link ResponsePlan.Relay#delivered}.
 *
 * <p><b>Failure:</b> should the masker fail, {@link #push} and {@link #finish()} throw an
 * {@link IOException} and keep throwing; nothing more of the response may be delivered (fail
 * closed: a client never gets unmasked text because masking broke).
 *
 * <p><b>Thread-safety:</b> belongs to one response; used by one thread at a time.
 */
public interface ResponseMasking {

  /**
   * Whether the body's length may change: it is masked. When only credentials are replaced the
   * length stays, and so may the response's {@code Content-Length}.
   */
  boolean changesLength();

  /**
   * Feeds the next {@code len} bytes of the body as received.
   *
   * @return the bytes to deliver now; possibly empty; {@code b} itself when it was given whole and
   *     nothing in it changed (deliver it before reusing {@code b})
   * @throws IOException              when the masker failed (now or before)
   * @throws IllegalStateException    after {@link #finish()}
   * @throws IndexOutOfBoundsException when {@code off}/{@code len} are outside {@code b}
   */
  byte[] push(byte[] b, int off, int len) throws IOException;

  /**
   * Ends the body: returns what was held back. Call it once the upstream body ended (not when it
   * broke off: a broken response is not completed). Later calls return nothing.
   *
   * @throws IOException when the masker failed (now or before)
   */
  byte[] finish() throws IOException;

  /** True once {@link #finish()} released the tail. */
  boolean finished();
}
