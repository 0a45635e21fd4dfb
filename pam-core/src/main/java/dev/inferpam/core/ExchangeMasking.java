package dev.inferpam.core;

import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.internal.masking.BodyMasker;
import dev.inferpam.core.internal.masking.CredentialScrubber;
import java.io.IOException;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link ResponseMasking} of one exchange's response ({@link ResponsePlan.Relay#masking()}):
 * every chunk read from the upstream (or written by the application) goes through {@link #push},
 * and what it returns is what the client gets; {@link #finish()} at the end of the body releases
 * the held-back tail.
 *
 * <p>Two steps, each present when the exchange needs it: the exchange's credentials (the
 * upstream credential it injected, the caller's own token or key) are replaced wherever they
 * occur in the bytes, whatever the content type, holding back at most a run that could still
 * become one; then, when the response is masked, the masker runs. Replacing a credential keeps
 * the body's length ({@link #changesLength()} is false without masking), so an adapter keeps the
 * response's {@code Content-Length} unless masking applies.
 *
 * <p>Framing is kept: server-sent events, NDJSON and JSON are masked inside their text, so the
 * client still gets well-formed events and documents. The masker may hold back a bounded tail
 * (at most {@code masking.max-hold-back} chars) while a value could still be completing, so a
 * push may return fewer bytes than it was given, or none; it never waits for more input, and
 * never holds the whole body.
 *
 * <p>The bytes returned are the response <em>as delivered</em>: adapters report exactly those
 * ({@link ResponsePlan.Relay#delivered}); the record stores them as they are, and takes
 * {@code response.masked} from this masking's counts.
 *
 * <p><b>Failure:</b> should the masker fail, {@link #push} and {@link #finish()} throw an
 * {@link IOException} and keep throwing; nothing more of the response may be delivered (fail
 * closed: a client never gets unmasked text because masking broke). The log line names the
 * exchange and the exception class, never the text.
 *
 * <p><b>Thread-safety:</b> belongs to one response; used by one thread at a time.
 */
final class ExchangeMasking implements ResponseMasking {
  private static final Logger log = LoggerFactory.getLogger(ExchangeMasking.class);
  private static final byte[] NONE = new byte[0];

  /** The masker of this body, or {@code null} when only credentials are replaced. */
  private final BodyMasker body;

  /** The credential replacement, or {@code null} when there is none to look for. */
  private final CredentialScrubber.Stream scrub;

  private final String exchangeId;

  /** Told once when the masker fails. */
  private final Runnable onFailure;

  private boolean finished;
  private boolean failed;

  ExchangeMasking(
      BodyMasker body, CredentialScrubber.Stream scrub, String exchangeId, Runnable onFailure) {
    if (body == null && scrub == null) throw new IllegalArgumentException("nothing to do");
    this.body = body;
    this.scrub = scrub;
    this.exchangeId = exchangeId;
    this.onFailure = onFailure;
  }

  /**
   * Whether the body's length may change: it is masked. When only credentials are replaced the
   * length stays, and so may the response's {@code Content-Length}.
   */
  @Override
  public boolean changesLength() {
    return body != null;
  }

  /** Whether the masker runs over this body (not only the credential replacement). */
  boolean masks() {
    return body != null;
  }

  /** Whether the masker failed; nothing more of the response went out. */
  boolean failed() {
    return failed;
  }

  /** Credentials replaced so far. */
  /** Whether the exchange's credentials are replaced in what this masking delivers. */
  boolean scrubs() {
    return scrub != null;
  }

  int credentialsFound() {
    return scrub == null ? 0 : scrub.found();
  }

  /**
   * Feeds the next {@code len} bytes of the body as received.
   *
   * @return the bytes to deliver now, masked; possibly empty; {@code b} itself when it was given
   *     whole and nothing in it changed (deliver it before reusing {@code b})
   * @throws IOException              when the masker failed (now or before)
   * @throws IllegalStateException    after {@link #finish()}
   * @throws IndexOutOfBoundsException when {@code off}/{@code len} are outside {@code b}
   */
  @Override
  public byte[] push(byte[] b, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, b.length);
    if (finished) throw new IllegalStateException("response masking already finished");
    checkNotFailed();
    if (len == 0) return NONE;
    try {
      if (scrub == null) return body.push(b, off, len);
      byte[] scrubbed = scrub.push(b, off, len);
      if (body == null || scrubbed.length == 0) return scrubbed;
      return body.push(scrubbed, 0, scrubbed.length);
    } catch (RuntimeException e) {
      throw failure(e);
    }
  }

  /**
   * Ends the body: returns what was held back, masked. Call it once the upstream body ended
   * (not when it broke off: a broken response is not completed). Later calls return nothing.
   *
   * @throws IOException when the masker failed (now or before)
   */
  @Override
  public byte[] finish() throws IOException {
    checkNotFailed();
    if (finished) return NONE;
    finished = true;
    try {
      byte[] tail = scrub == null ? NONE : scrub.finish();
      if (body == null) return tail;
      byte[] released = tail.length == 0 ? NONE : body.push(tail, 0, tail.length);
      byte[] rest = body.finish();
      if (released.length == 0) return rest;
      byte[] all = java.util.Arrays.copyOf(released, released.length + rest.length);
      System.arraycopy(rest, 0, all, released.length, rest.length);
      return all;
    } catch (RuntimeException e) {
      throw failure(e);
    }
  }

  /** True once {@link #finish()} released the tail. */
  @Override
  public boolean finished() {
    return finished;
  }

  /** Values masked so far, per detector; what the record's {@code response.masked} holds. */
  Map<String, Integer> counts() {
    if (body == null) return Map.of();
    try {
      Map<String, Integer> counts = body.counts();
      return counts == null ? Map.of() : counts;
    } catch (RuntimeException e) {
      return Map.of();
    }
  }

  private void checkNotFailed() throws IOException {
    if (failed) throw new IOException("response masking failed");
  }

  private IOException failure(RuntimeException e) {
    if (!failed) onFailure.run();
    failed = true;
    // The exception's message could quote the text being masked: only its class is logged.
    log.error(
        "inferpam: masking failed for exchange {}, response cut off: {}",
        exchangeId,
        e.getClass().getName());
    return new IOException("response masking failed");
  }
}
