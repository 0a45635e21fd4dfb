package dev.inferpam.core.internal.identity;

/**
 * Reading bearer credentials, shared by the identity resolvers so that they agree on what a
 * bearer token and a JWT look like. Stateless.
 */
final class BearerTokens {
  private static final String BEARER = "bearer";

  /** The base64url alphabet (RFC 4648, section 5), by ASCII code. */
  private static final boolean[] BASE64URL = new boolean[128];

  static {
    for (char c = 'A'; c <= 'Z'; c++) BASE64URL[c] = true;
    for (char c = 'a'; c <= 'z'; c++) BASE64URL[c] = true;
    for (char c = '0'; c <= '9'; c++) BASE64URL[c] = true;
    BASE64URL['-'] = true;
    BASE64URL['_'] = true;
  }

  private BearerTokens() {}

  /**
   * The token of {@code Bearer <token>} (scheme case-insensitive), or {@code null} for another
   * scheme or none. Surrounding whitespace, and whitespace between scheme and token beyond the
   * one required space, is not part of the token.
   */
  static String token(String authorization) {
    if (authorization == null) return null;
    // As strip() on the value and then on the token, without copying the value twice.
    int start = 0;
    int end = authorization.length();
    while (start < end && Character.isWhitespace(authorization.charAt(start))) start++;
    while (end > start && Character.isWhitespace(authorization.charAt(end - 1))) end--;
    if (end - start <= BEARER.length()
        || !authorization.regionMatches(true, start, BEARER, 0, BEARER.length())
        || authorization.charAt(start + BEARER.length()) != ' ') {
      return null;
    }
    int from = start + BEARER.length();
    while (from < end && Character.isWhitespace(authorization.charAt(from))) from++;
    return from == end ? null : authorization.substring(from, end);
  }

  /**
   * A JWS (three base64url parts; the signature may be empty, as in {@code alg: none}) or a JWE
   * (five parts) in compact form. A linear scan without regex: the value is the caller's.
   */
  static boolean isJwtShaped(String value) {
    if (value == null || value.isEmpty() || value.charAt(0) == '.') return false;
    int dots = 0;
    for (int i = 0, n = value.length(); i < n; i++) {
      char c = value.charAt(i);
      if (c == '.') {
        if (++dots > 4) return false;
      } else if (c >= 128 || !BASE64URL[c]) {
        return false;
      }
    }
    return dots == 2 || dots == 4;
  }
}
