package dev.inferpam.api;

/**
 * Thrown by an {@link IdentityResolver} when a request carries a credential it is responsible
 * for but the credential is not valid (unknown, expired, forged). The message becomes the
 * {@code error_description} of the 401 answer, so it must say what failed without echoing the
 * credential.
 */
public class AuthenticationException extends Exception {
  private static final long serialVersionUID = 1L;

  public AuthenticationException(String description) {
    super(description);
  }
}
