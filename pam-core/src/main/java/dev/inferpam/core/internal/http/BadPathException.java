package dev.inferpam.core.internal.http;

/**
 * A request path that {@link PathCanonicalizer} refuses because different servers could read it
 * differently (answered 400 {@code bad_path}).
 *
 * <p>The message says what was wrong (for example {@code encoded "/" in path}) and never repeats
 * the path, so it is safe for error bodies and logs. No stack trace is captured: the exception
 * reports bad input, not a bug, and can be triggered at will by any client.
 */
public final class BadPathException extends Exception {
  private static final long serialVersionUID = 1L;

  /** @param message what is wrong with the path, without the path */
  public BadPathException(String message) {
    super(message, null, false, false);
  }
}
