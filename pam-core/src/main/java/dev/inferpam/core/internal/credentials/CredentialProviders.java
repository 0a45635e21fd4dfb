package dev.inferpam.core.internal.credentials;

import dev.inferpam.api.CredentialProvider;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Background;
import java.time.Clock;
import java.util.Objects;
import java.util.function.Function;

/**
 * Builds the {@link CredentialProvider} that {@code upstream.credential} describes.
 *
 * <p>Defaults: a {@code null} or blank header is {@code Authorization}; a {@code null} scheme is
 * {@code Bearer} for the {@code Authorization} header and empty (the bare secret) for any
 * other header, since headers such as {@code X-Api-Key} carry no scheme. An explicit {@code ""}
 * scheme always means the bare secret.
 *
 * <p><b>Thread-safety:</b> stateless; the providers it returns are thread-safe.
 */
public final class CredentialProviders {
  /**
   * The process environment, which cannot change while the JVM runs: given as {@code env}, a
   * {@code from-env} credential is read from it once rather than on every request.
   */
  public static final Function<String, String> PROCESS_ENV = System::getenv;

  /** Header used when {@code upstream.credential.header} is absent. */
  public static final String DEFAULT_HEADER = "Authorization";

  /** Scheme used for the {@code Authorization} header when {@code scheme} is absent. */
  public static final String DEFAULT_SCHEME = "Bearer";

  private CredentialProviders() {}

  /**
   * The provider for {@code source}, reading environment variables from the process; OAuth2
   * tokens expire by the system clock.
   *
   * @param source {@code upstream.credential}, or {@code null} when none is configured
   * @return {@link CredentialProvider#NONE} when {@code source} is {@code null}
   * @throws IllegalArgumentException when not exactly one of {@code from-env}, {@code from-file}
   *     and {@code oauth2} is set, or the header, scheme or OAuth2 settings are invalid
   */
  public static CredentialProvider from(Policy.CredentialSource source) {
    return from(source, PROCESS_ENV, Clock.systemUTC());
  }

  /**
   * As {@link #from(Policy.CredentialSource)}, with {@code clock} timing OAuth2 token expiry,
   * refresh and back-off (an engine passes its own clock).
   *
   * @param source {@code upstream.credential}, or {@code null} when none is configured
   * @param clock  time for OAuth2 token expiry, refresh and back-off
   * @return the provider; {@link CredentialProvider#NONE} when {@code source} is {@code null}
   * @throws IllegalArgumentException as {@link #from(Policy.CredentialSource)}
   */
  public static CredentialProvider from(Policy.CredentialSource source, Clock clock) {
    return from(source, PROCESS_ENV, clock);
  }

  /**
   * As {@link #from(Policy.CredentialSource)}, with {@code env} looking up variables.
   *
   * @param source {@code upstream.credential}, or {@code null} when none is configured
   * @param env    looks up an environment variable, e.g. {@code System::getenv} or a map in tests
   * @return the provider; {@link CredentialProvider#NONE} when {@code source} is {@code null}
   */
  public static CredentialProvider from(
      Policy.CredentialSource source, Function<String, String> env) {
    return from(source, env, Clock.systemUTC());
  }

  /**
   * As {@link #from(Policy.CredentialSource)}, with {@code env} looking up variables (for
   * {@code from-env} and {@code oauth2.client-secret-from-env}) and {@code clock} timing OAuth2
   * tokens.
   *
   * @param source {@code upstream.credential}, or {@code null} when none is configured
   * @param env    looks up an environment variable, e.g. {@code System::getenv} or a map in tests
   * @param clock  time for OAuth2 token expiry, refresh and back-off
   * @return the provider; {@link CredentialProvider#NONE} when {@code source} is {@code null}
   * @throws IllegalArgumentException as {@link #from(Policy.CredentialSource)}
   */
  public static CredentialProvider from(
      Policy.CredentialSource source, Function<String, String> env, Clock clock) {
    return from(source, env, clock, Background.DEFAULT);
  }

  /**
   * As {@link #from(Policy.CredentialSource, Function, Clock)}, with OAuth2 token requests on
   * {@code background}'s executor (else the HTTP client's own pool). The OAuth2 provider is
   * {@link AutoCloseable}; whoever builds it closes it.
   */
  public static CredentialProvider from(
      Policy.CredentialSource source,
      Function<String, String> env,
      Clock clock,
      Background background) {
    Objects.requireNonNull(env, "env");
    Objects.requireNonNull(clock, "clock");
    Objects.requireNonNull(background, "background");
    if (source == null) return CredentialProvider.NONE;
    String header =
        source.header() == null || source.header().isBlank() ? DEFAULT_HEADER : source.header();
    String scheme =
        source.scheme() != null
            ? source.scheme()
            : header.equalsIgnoreCase(DEFAULT_HEADER) ? DEFAULT_SCHEME : "";
    int sources =
        (source.fromEnv() != null ? 1 : 0)
            + (source.fromFile() != null ? 1 : 0)
            + (source.oauth2() != null ? 1 : 0);
    if (sources != 1) {
      throw new IllegalArgumentException(
          "upstream.credential: exactly one of from-env / from-file / oauth2 must be set");
    }
    if (source.oauth2() != null) {
      return new OAuth2CredentialProvider(
          header, scheme, source.oauth2(), env, clock, background.executor());
    }
    return source.fromEnv() != null
        ? env == PROCESS_ENV
            ? new EnvCredentialProvider(header, scheme, source.fromEnv())
            : new EnvCredentialProvider(header, scheme, source.fromEnv(), env)
        : new FileCredentialProvider(header, scheme, source.fromFile(), clock);
  }

  static String checkHeader(String header) {
    Objects.requireNonNull(header, "header");
    if (header.isEmpty() || !header.chars().allMatch(CredentialProviders::isTokenChar)) {
      throw new IllegalArgumentException(
          "upstream.credential.header: not a header name, was \"" + header + "\"");
    }
    return header;
  }

  static String checkScheme(String scheme) {
    Objects.requireNonNull(scheme, "scheme");
    if (!scheme.chars().allMatch(CredentialProviders::isTokenChar)) {
      throw new IllegalArgumentException(
          "upstream.credential.scheme: not a single token, was \"" + scheme + "\"");
    }
    return scheme;
  }

  static String headerValue(String scheme, String secret) {
    return scheme.isEmpty() ? secret : scheme + " " + secret;
  }

  /**
   * Visible ASCII and inner spaces only: what every HTTP client accepts in a header value. A
   * CR/LF would split the header, and OkHttp quotes a rejected value of a non-sensitive header
   * in its exception message, which would put the secret in a log.
   */
  static boolean isHeaderSafe(String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
  }

  /** RFC 9110 {@code tchar}. */
  private static boolean isTokenChar(int c) {
    return (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9')
        || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
  }
}
