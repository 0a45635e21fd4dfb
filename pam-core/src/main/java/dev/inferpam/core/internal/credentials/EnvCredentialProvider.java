package dev.inferpam.core.internal.credentials;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import java.util.Objects;
import java.util.function.Function;

/**
 * Reads the upstream credential from an environment variable ({@code upstream.credential.from-env}).
 *
 * <p>The variable is read on every call (an environment lookup is a map lookup), so a test or
 * an embedding application can supply a changing {@code env} function. Surrounding whitespace
 * is stripped. The header value is {@code scheme + " " + secret}, or the bare secret when the
 * scheme is empty.
 *
 * <p>An unset or blank variable, or one holding a character that may not appear in a header
 * value (a CR/LF would split the header), gives {@link CredentialUnavailableException} naming
 * the variable, never its value. {@link #toString()} never shows the value.
 *
 * <p><b>Thread-safety:</b> immutable; safe for concurrent use as long as {@code env} is.
 */
public final class EnvCredentialProvider implements CredentialProvider {

  private final String header;
  private final String scheme;
  private final String varName;
  private final Function<String, String> env;

  /**
   * @param header  header to set, e.g. {@code Authorization}
   * @param scheme  prefix such as {@code Bearer}; {@code ""} for the bare secret
   * @param varName environment variable holding the secret
   * @param env     looks up a variable, e.g. {@code System::getenv}
   * @throws IllegalArgumentException when the header or variable name is blank, or the scheme
   *     is not a single token
   */
  public EnvCredentialProvider(
      String header, String scheme, String varName, Function<String, String> env) {
    this.header = CredentialProviders.checkHeader(header);
    this.scheme = CredentialProviders.checkScheme(scheme);
    Objects.requireNonNull(varName, "varName");
    if (varName.isBlank())
      throw new IllegalArgumentException("upstream.credential.from-env must not be blank");
    this.varName = varName;
    this.env = Objects.requireNonNull(env, "env");
  }

  /** Reads from the process environment. */
  public EnvCredentialProvider(String header, String scheme, String varName) {
    this(header, scheme, varName, System::getenv);
  }

  @Override
  public Credential current() throws CredentialUnavailableException {
    String raw = env.apply(varName);
    String secret = raw == null ? "" : raw.strip();
    if (secret.isEmpty()) {
      throw new CredentialUnavailableException("environment variable " + varName + " is not set");
    }
    if (!CredentialProviders.isHeaderSafe(secret)) {
      throw new CredentialUnavailableException(
          "environment variable " + varName + " holds a character not allowed in a header value");
    }
    return new Credential(header, CredentialProviders.headerValue(scheme, secret));
  }

  @Override
  public String toString() {
    return "EnvCredentialProvider[" + header + " from env " + varName + "]";
  }
}
