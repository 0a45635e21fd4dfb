package dev.inferpam.core.internal.credentials;

import dev.inferpam.api.CredentialProvider;
import dev.inferpam.api.CredentialProvider.CredentialUnavailableException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Objects;
import java.util.function.Function;

/**
 * A secret that is not itself a header value, such as an OAuth2 client secret, read with exactly
 * the rules of {@code upstream.credential.from-env} / {@code from-file}: environment variables on
 * every call, files re-read when they change, surrounding whitespace stripped, the same limits and
 * the same secret-free error messages.
 *
 * <p>It delegates to {@link EnvCredentialProvider} and {@link FileCredentialProvider} with an
 * empty scheme rather than repeating their logic; the header name they carry is never used.
 *
 * <p><b>Thread-safety:</b> as the provider it wraps: safe for concurrent use.
 */
@FunctionalInterface
interface SecretSource {

  /** Placeholder header name for the wrapped provider; it never reaches a request. */
  String UNUSED_HEADER = "X-Inferpam-Secret";

  /**
   * The secret now.
   *
   * @throws CredentialUnavailableException naming the variable or file, never the value
   */
  String read() throws CredentialUnavailableException;

  /** The secret in environment variable {@code name}, looked up through {@code env}. */
  static SecretSource fromEnv(String name, Function<String, String> env) {
    return of(new EnvCredentialProvider(UNUSED_HEADER, "", name, env));
  }

  /**
   * The secret in {@code file}, re-read when the file changes (looked at as
   * {@link FileCredentialProvider} does, timed by {@code clock}).
   */
  static SecretSource fromFile(Path file, Clock clock) {
    return of(new FileCredentialProvider(UNUSED_HEADER, "", file, clock));
  }

  private static SecretSource of(CredentialProvider provider) {
    Objects.requireNonNull(provider, "provider");
    // With an empty scheme the header value is the bare secret.
    return () -> provider.current().value();
  }
}
