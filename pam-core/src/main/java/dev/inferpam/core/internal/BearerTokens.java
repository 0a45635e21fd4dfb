package dev.inferpam.core.internal;

/**
 * Reading bearer credentials, shared by the identity resolvers so that they agree on what a
 * bearer token and a JWT look like. Stateless.
 */
final class BearerTokens {
  private static final String BEARER = "bearer";

  private BearerTokens() {}

  /** The token of {@code Bearer <token>} (scheme case-insensitive), or {@code null} for another scheme or none. */
  static String token(String authorization) {
    if (authorization == null) return null;
    String value = authorization.strip();
    if (value.length() <= BEARER.length()
        || !value.regionMatches(true, 0, BEARER, 0, BEARER.length())
        || value.charAt(BEARER.length()) != ' ') {
      return null;
    }
    String token = value.substring(BEARER.length()).strip();
    return token.isEmpty() ? null : token;
  }

  /**
   * A JWS (three base64url parts; the signature may be empty, as in {@code alg: none}) or a JWE
   * (five parts) in compact form. A linear scan without regex: the value is the caller's.
   */
  static boolean isJwtShaped(String value) {
    if (value == null || value.isEmpty()) return false;
    int dots = 0;
    int firstPart = -1;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '.') {
        if (++dots > 4) return false;
        if (firstPart < 0) firstPart = i;
      } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
        return false;
      }
    }
    return (dots == 2 || dots == 4) && firstPart > 0;
  }
}
