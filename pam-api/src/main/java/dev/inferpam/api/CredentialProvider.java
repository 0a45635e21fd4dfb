package dev.inferpam.api;

/**
 * Supplies the credential the library injects into upstream requests; callers never see it.
 *
 * <p><b>Thread-safety:</b> called concurrently on every forwarded request; implementations must
 * be thread-safe and fast (cache, refresh in the background or once under concurrency).
 */
@FunctionalInterface
public interface CredentialProvider {

  /**
   * The credential to inject now.
   *
   * @throws CredentialUnavailableException when no credential can be had (env var unset, file
   *     unreadable, token endpoint down); the request is then refused, never forwarded bare
   */
  Credential current() throws CredentialUnavailableException;

  /** A provider that injects nothing: the upstream needs no credential. */
  CredentialProvider NONE = () -> null;

  /** Thrown when no upstream credential is available; the message never holds a secret. */
  final class CredentialUnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    public CredentialUnavailableException(String message) {
      super(message);
    }
  }
}
