package dev.inferpam.core.internal.http;

/**
 * A request body that {@link RequestClassifier} cannot read (answered 400 {@code bad_request}).
 *
 * <p>The message says what was wrong, quoting at most a short excerpt of the parser's complaint
 * and never the body itself. No stack trace is captured: the exception reports bad input, not
 * a bug, and any client can trigger it at will.
 */
public final class BadRequestException extends Exception {
  private static final long serialVersionUID = 1L;

  /** @param message what is wrong with the request, without the body */
  public BadRequestException(String message) {
    super(message, null, false, false);
  }
}
