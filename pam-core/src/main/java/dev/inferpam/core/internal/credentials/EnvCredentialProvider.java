package dev.inferpam.core.internal.credentials;

import dev.inferpam.api.Credential;
import dev.inferpam.api.CredentialProvider;
import java.util.Objects;
import java.util.function.Function;

/**
 * Reads the upstream credential from an environment variable ({@code upstream.credential.from-env}).
 *
 * <p>With a given {@code env} function the variable is read on every call, so a test or an
 * embedding application can supply a changing one. The process environment cannot change while
 * the JVM runs, so from it the credential (or why there is none) is worked out once, at the first
 * call, and not on every request. Surrounding whitespace
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

  /** From the process environment: what every call answers, worked out at the first. */
  private final boolean fixed;

  private volatile Credential credential;
  private volatile String problem;

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
    this.fixed = false;
  }

  /** Reads from the process environment, once. */
  public EnvCredentialProvider(String header, String scheme, String varName) {
    this.header = CredentialProviders.checkHeader(header);
    this.scheme = CredentialProviders.checkScheme(scheme);
    Objects.requireNonNull(varName, "varName");
    if (varName.isBlank())
      throw new IllegalArgumentException("upstream.credential.from-env must not be blank");
    this.varName = varName;
    this.env = System::getenv;
    this.fixed = true;
  }

  @Override
  public Credential current() throws CredentialUnavailableException {
    if (!fixed) return read();
    Credential c = credential;
    if (c != null) return c;
    String p = problem;
    if (p != null) throw new CredentialUnavailableException(p);
    try {
      return credential = read();
    } catch (CredentialUnavailableException e) {
      problem = e.getMessage();
      throw e;
    }
  }

  private Credential read() throws CredentialUnavailableException {
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
