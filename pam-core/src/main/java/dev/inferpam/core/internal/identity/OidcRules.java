package dev.inferpam.core.internal.identity;

import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * What a valid {@code identity.oidc} entry is, shared by the policy loader and
 * {@link OidcResolver} so that a policy built in Java is held to the same rules as one loaded
 * from a file. Stateless and thread-safe.
 *
 * <p>Every {@code ...Problem} method returns {@code null} for an acceptable value and otherwise
 * a message that does not quote the value; callers add the key path and, where safe, the value.
 */
public final class OidcRules {

  /**
   * Signature algorithms an issuer may be pinned to: asymmetric ones only. {@code none} and HMAC
   * are never accepted (RFC 8725, sections 2.1 and 3.1): an HMAC key is a secret shared with the
   * issuer, and a verifier that accepts HMAC can be fooled into using a public key as the secret.
   */
  public static final List<String> ALGORITHMS =
      List.of(
          "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA");

  /** Largest {@code clock-skew}: more would keep expired tokens alive for long. */
  static final Duration MAX_CLOCK_SKEW = Duration.ofMinutes(5);

  /** What a valid URL looks like; ends error messages. */
  static final String URL_RULE =
      "must be an absolute https URL (http only for loopback hosts 127.0.0.1, localhost and [::1])";

  /** A media type ({@code at+jwt} or {@code application/at+jwt}), RFC 6838 name characters. */
  private static final Pattern MEDIA_TYPE =
      Pattern.compile("[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*)?");

  private OidcRules() {}

  /**
   * The problem with an issuer or key URL. Keys decide who may call the models, so they are
   * fetched over TLS only; plain {@code http} is accepted for loopback hosts, where no network
   * sits between us and the identity provider (local development, tests, a sidecar).
   *
   * @param issuer issuers also may not carry a query (OpenID Connect Discovery 1.0, section 2)
   */
  public static String urlProblem(String url, boolean issuer) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      return URL_RULE;
    }
    if (!uri.isAbsolute() || uri.isOpaque() || uri.getHost() == null || uri.getHost().isEmpty())
      return URL_RULE;
    String scheme = uri.getScheme().toLowerCase(Locale.ROOT);
    if (scheme.equals("http")) {
      if (!isLoopback(uri.getHost())) return URL_RULE;
    } else if (!scheme.equals("https")) {
      return URL_RULE;
    }
    // A password in a policy file or a discovery document would end up in logs and errors.
    if (uri.getRawUserInfo() != null) return "must not contain user info";
    if (uri.getRawFragment() != null) return "must not have a fragment";
    if (issuer && uri.getRawQuery() != null) return "must not have a query";
    return null;
  }

  /** Whether {@code url} may carry a secret (user info), so must not be quoted in a message. */
  public static boolean hasUserInfo(String url) {
    try {
      return new URI(url).getRawUserInfo() != null;
    } catch (URISyntaxException e) {
      return url.indexOf('@') >= 0;
    }
  }

  /** Exact loopback names only: a name that merely resolves to 127.0.0.1 could resolve elsewhere. */
  static boolean isLoopback(String host) {
    String h = host.toLowerCase(Locale.ROOT);
    return h.equals("127.0.0.1") || h.equals("localhost") || h.equals("[::1]");
  }

  public static String algorithmProblem(String alg) {
    if (ALGORITHMS.contains(alg)) return null;
    if (alg.equalsIgnoreCase("none"))
      return "\"none\" (unsigned tokens) is never accepted for OIDC";
    if (alg.toUpperCase(Locale.ROOT).startsWith("HS")) {
      return "HMAC algorithms (HS256, HS384, HS512) are never accepted for OIDC: the key would be a secret"
          + " shared with the issuer, and a public key could be passed off as one";
    }
    return "unknown algorithm (known: " + String.join(", ", ALGORITHMS) + ")";
  }

  /** A claim name or a dotted path into nested claims: not blank, no empty segment. */
  public static String claimPathProblem(String path) {
    if (path.isBlank()) return "must not be blank";
    for (String segment : path.split("\\.", -1)) {
      if (segment.isEmpty())
        return "expected a claim name or dotted path such as realm_access.roles";
    }
    return null;
  }

  public static String typeProblem(String type) {
    return MEDIA_TYPE.matcher(type).matches() ? null : "expected a token type such as at+jwt";
  }

  public static String clockSkewProblem(Duration skew) {
    if (skew.isNegative() || skew.compareTo(MAX_CLOCK_SKEW) > 0) return "must be between 0s and 5m";
    return null;
  }
}
