package dev.inferpam.core.internal.http;

import dev.inferpam.api.Decision;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.policy.Durations;
import java.util.Arrays;

/**
 * A request body taken in as it arrives, in pieces, under the policy's {@code request} bounds:
 * <ul>
 *   <li>{@code max-body}: one byte past it refuses the body (413 {@code body_too_large}); nothing
 *       past it is kept;</li>
 *   <li>{@code body-timeout}: a piece arriving later than that after the head, or the adapter's
 *       timer firing ({@link #timedOut()}), refuses it (408 {@code body_timeout});</li>
 *   <li>{@code min-body-rate}: once {@link Policy.RequestSettings#MIN_BODY_RATE_GRACE} has passed,
 *       {@code t} ms after the head at least {@code rate × (t − grace) / 1000} bytes must have
 *       arrived (never more than the declared length), counting the piece just in; otherwise 408
 *       {@code body_timeout}. Checked as pieces arrive: a body that stops arriving altogether is
 *       ended by the deadline.</li>
 * </ul>
 * Times are the caller's milliseconds (the engine's clock), so tests need no sleeping. Not
 * thread-safe: one request's body, fed by one thread at a time.
 */
public final class BodyIntake {
  /** The largest buffer allocated before bytes arrive to fill it. */
  private static final int INITIAL_MAX = 64 * 1024;

  /** The largest array the JVM reliably allocates. */
  private static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

  private final Policy.RequestSettings settings;
  private final long declaredLength;
  private final long startMillis;
  private byte[] buffer;
  private int count;
  private Decision.Deny refusal;

  /**
   * @param declaredLength the declared length, or -1 when unknown; at most {@code max-body}
   *     (a longer one is refused from the head, before any intake)
   * @param startMillis    when the head was received
   */
  public BodyIntake(Policy.RequestSettings settings, long declaredLength, long startMillis) {
    this.settings = settings;
    this.declaredLength = declaredLength;
    this.startMillis = startMillis;
    // A declared length is a claim, not bytes: the buffer grows with what arrives.
    this.buffer =
        new byte
            [(int)
                Math.min(
                    declaredLength >= 0 ? declaredLength : 8192,
                    Math.min(INITIAL_MAX, settings.maxBodyBytes()))];
  }

  /**
   * Takes {@code len} more bytes, arrived at {@code nowMillis}.
   *
   * @return {@code null} while the body is within its bounds, else the refusal (from then on
   *     every call returns it and nothing more is kept)
   */
  public Decision.Deny add(byte[] b, int off, int len, long nowMillis) {
    if (refusal != null) return refusal;
    long elapsed = nowMillis - startMillis;
    if (elapsed > settings.bodyTimeout().toMillis()) return refusal = timedOut();
    if ((long) count + len > Math.min(settings.maxBodyBytes(), MAX_ARRAY)) {
      return refusal =
          new Decision.Deny(
              413,
              "body_too_large",
              new BoundedBody.TooLargeException(settings.maxBodyBytes()).getMessage(),
              "request.max-body");
    }
    if (count + len > buffer.length) {
      long grown =
          Math.max(
              (long) count + len,
              Math.min(2L * buffer.length + 1, Math.min(settings.maxBodyBytes(), MAX_ARRAY)));
      buffer = Arrays.copyOf(buffer, (int) grown);
    }
    System.arraycopy(b, off, buffer, count, len);
    count += len;
    long afterGrace = elapsed - Policy.RequestSettings.MIN_BODY_RATE_GRACE.toMillis();
    if (afterGrace > 0) {
      long needed = settings.minBodyRate() * afterGrace / 1000;
      if (declaredLength >= 0) needed = Math.min(needed, declaredLength);
      if (count < needed) {
        return refusal =
            new Decision.Deny(
                408,
                "body_timeout",
                "request body arrived slower than " + settings.minBodyRate() + " bytes/s",
                "request.min-body-rate");
      }
    }
    return null;
  }

  /**
   * The body ended at {@code nowMillis}.
   *
   * @return {@code null} when it is within its bounds, else the refusal: the one {@link #add}
   *     gave, or {@link #timedOut()} when it ended after the deadline
   */
  public Decision.Deny end(long nowMillis) {
    if (refusal == null && nowMillis - startMillis > settings.bodyTimeout().toMillis())
      refusal = timedOut();
    return refusal;
  }

  /** The refusal of a body that did not end within {@code body-timeout}. */
  public Decision.Deny timedOut() {
    return new Decision.Deny(
        408,
        "body_timeout",
        "request body not received within " + Durations.format(settings.bodyTimeout()),
        "request.body-timeout");
  }

  /** When the body must have ended, in the caller's milliseconds. */
  public long deadlineMillis() {
    return startMillis + settings.bodyTimeout().toMillis();
  }

  /** The bytes taken in so far. */
  public byte[] bytes() {
    return count == buffer.length ? buffer : Arrays.copyOf(buffer, count);
  }
}
