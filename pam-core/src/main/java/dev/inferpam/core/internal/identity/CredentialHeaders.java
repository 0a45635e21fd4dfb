package dev.inferpam.core.internal.identity;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.InferenceRequest;
import java.util.List;

/**
 * The rule that a request presents at most one credential, checked before any resolver is asked
 * so that it holds whatever resolvers a chain has and in whatever order: a request is refused
 * when it carries more than one of {@code Authorization}, {@code X-Api-Key} and
 * {@code Proxy-Authorization} (whatever their values, equal or empty), one of them twice, or a
 * value that is itself a list of credentials (an {@code X-Api-Key} with a comma, as a proxy joins
 * repeated headers; a {@code Bearer} or {@code Basic} value with a comma, which their token68
 * syntax never has; or any value where a comma is followed by another {@code scheme value}).
 * Nobody can tell which of two credentials a resolver, or a server behind us, would use.
 * Stateless.
 */
final class CredentialHeaders {
  private static final List<String[]> HEADERS =
      List.of(
          new String[] {"authorization", "Authorization"},
          new String[] {"x-api-key", "X-Api-Key"},
          new String[] {"proxy-authorization", "Proxy-Authorization"});

  private CredentialHeaders() {}

  /**
   * @throws AuthenticationException when the request presents more than one credential; the
   *     message names headers, never values
   */
  static void requireAtMostOne(InferenceRequest request) throws AuthenticationException {
    String seen = null;
    for (String[] header : HEADERS) {
      List<String> values = request.headers().get(header[0]);
      if (values == null || values.isEmpty()) continue;
      if (values.size() > 1)
        throw new AuthenticationException("more than one " + header[1] + " header");
      if (isList(header[0], values.get(0)))
        throw new AuthenticationException("more than one credential in " + header[1]);
      if (seen != null)
        throw new AuthenticationException(
            "more than one credential (" + seen + " and " + header[1] + ")");
      seen = header[1];
    }
  }

  /** Whether one header value holds more than one credential. */
  private static boolean isList(String name, String value) {
    int comma = value.indexOf(',');
    if (comma < 0) return false;
    if (name.equals("x-api-key")) return true;
    String v = value.strip();
    int space = v.indexOf(' ');
    String scheme = space < 0 ? v : v.substring(0, space);
    if (scheme.equalsIgnoreCase("bearer") || scheme.equalsIgnoreCase("basic")) return true;
    // An auth-param list (Digest a="b", c="d") has commas too; a second credential is a comma
    // followed by a scheme token and a space.
    for (int i = comma; i >= 0; i = value.indexOf(',', i + 1)) {
      int j = i + 1;
      while (j < value.length() && (value.charAt(j) == ' ' || value.charAt(j) == '\t')) j++;
      int start = j;
      while (j < value.length() && isTokenChar(value.charAt(j))) j++;
      if (j > start && j < value.length() && value.charAt(j) == ' ') return true;
    }
    return false;
  }

  private static boolean isTokenChar(char c) {
    return c < 128 && (Character.isLetterOrDigit(c) || "!#$%&'*+-.^_`|~".indexOf(c) >= 0);
  }
}
