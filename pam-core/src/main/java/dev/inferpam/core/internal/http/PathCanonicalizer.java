package dev.inferpam.core.internal.http;

/**
 * Turns a raw request path into the one form that policy is matched against, refusing every
 * path that a proxy, servlet container or model server could read as something else.
 *
 * <p>The point is that the path we check and the path the upstream serves are the same path.
 * A block on {@code /api/pull} is worthless if {@code /api/%2e/pull}, {@code //api/pull} or
 * {@code /api/pull;x} reaches the same handler upstream. Rather than guess how each server
 * normalises, anything that normalisation could change is refused:
 *
 * <ul>
 *   <li>the path must start with {@code /};
 *   <li>raw {@code \}, {@code ;}, control characters (below 0x20, and 0x7f) and non-ASCII
 *       characters (a raw non-ASCII character has no agreed byte encoding; clients must
 *       percent-encode it) are refused;
 *   <li>{@code //} anywhere (an empty segment) and the dot segments {@code .} and {@code ..}
 *       are refused;
 *   <li>{@code %2F %5C %2E %3B %00 %25} (any case; {@code %25} because an upstream that decodes
 *       twice would otherwise see a path we never checked), percent-encoded control characters (C0, DEL
 *       and, after UTF-8 decoding, C1), and a
 *       {@code %} not followed by two hex digits are refused;
 *   <li>a trailing {@code /} is refused on every path but the root {@code /}.
 * </ul>
 *
 * <p>What remains is percent-decoded exactly once as UTF-8 (invalid or overlong UTF-8 is
 * refused). Because the encoded forms of {@code / \ ; .} and NUL are refused, decoding can never
 * create a separator or dot segment that was not in the raw path, so the decoded path has the
 * same segments as the raw one, and holds no {@code %}.
 *
 * <p><b>Why a trailing slash is refused</b> rather than kept or stripped: many servers route
 * {@code /api/pull/} to the same handler as {@code /api/pull}, so keeping it would let
 * {@code /api/pull/} walk past a block on {@code /api/pull}; stripping it would mean we match
 * one path while the upstream receives another. Inference APIs never need the trailing slash,
 * so refusing it is both the simplest and the safe choice.
 *
 * <p>Matching stays case-sensitive: {@code /API/PULL} canonicalises to {@code /API/PULL}.
 *
 * <p><b>Thread-safety:</b> stateless; safe to call from any thread. Runs in time linear in the
 * length of the path; a 100 KB path is fine (the adapter bounds the length it accepts).
 */
public final class PathCanonicalizer {

  private PathCanonicalizer() {}

  /**
   * Canonicalises {@code rawPath}, the request path exactly as received (no query string).
   *
   * @return the path percent-decoded once; equal to {@code rawPath} when it holds no {@code %}
   * @throws BadPathException when the path is null, empty, relative or ambiguous; the message
   *     names the problem, never the path
   */
  public static String canonicalize(String rawPath) throws BadPathException {
    if (rawPath == null || rawPath.isEmpty()) throw new BadPathException("empty path");
    if (rawPath.charAt(0) != '/') throw new BadPathException("path does not start with \"/\"");
    int length = rawPath.length();
    if (length == 1) return rawPath;
    if (rawPath.charAt(length - 1) == '/') throw new BadPathException("trailing \"/\" in path");

    boolean encoded = false;
    int segmentStart = 1;
    for (int i = 1; i <= length; i++) {
      char c = i < length ? rawPath.charAt(i) : '/';
      if (c == '/') {
        checkSegment(rawPath, segmentStart, i);
        segmentStart = i + 1;
      } else if (c == '%') {
        checkEscape(rawPath, i);
        encoded = true;
        i += 2;
      } else if (c == '\\') {
        throw new BadPathException("\"\\\" in path");
      } else if (c == ';') {
        throw new BadPathException("\";\" in path");
      } else if (c < 0x20 || c == 0x7f) {
        throw new BadPathException("control character in path");
      } else if (c > 0x7f) {
        throw new BadPathException("non-ASCII character in path (percent-encode it)");
      }
    }
    return encoded ? decode(rawPath) : rawPath;
  }

  /** Refuses empty segments ({@code //}) and dot segments; {@code end} is exclusive. */
  private static void checkSegment(String path, int start, int end) throws BadPathException {
    int size = end - start;
    if (size == 0) throw new BadPathException("empty segment (\"//\") in path");
    if (size <= 2 && path.charAt(start) == '.' && (size == 1 || path.charAt(start + 1) == '.')) {
      throw new BadPathException("dot segment in path");
    }
  }

  /** Checks the escape at {@code i} (which holds {@code %}); refuses the ambiguous ones. */
  private static void checkEscape(String path, int i) throws BadPathException {
    int high = i + 1 < path.length() ? hex(path.charAt(i + 1)) : -1;
    int low = i + 2 < path.length() ? hex(path.charAt(i + 2)) : -1;
    if (high < 0 || low < 0) {
      throw new BadPathException("\"%\" not followed by two hex digits in path");
    }
    int b = high << 4 | low;
    switch (b) {
      case '/':
        throw new BadPathException("encoded \"/\" in path");
      case '\\':
        throw new BadPathException("encoded \"\\\" in path");
      case '.':
        throw new BadPathException("encoded \".\" in path");
      case ';':
        throw new BadPathException("encoded \";\" in path");
      case 0:
        throw new BadPathException("encoded NUL in path");
      // An upstream that decodes twice would turn /api/%2570ull into /api/pull after we
      // checked /api/%70ull; a literal "%" in an inference path has no legitimate use.
      case '%':
        throw new BadPathException("encoded \"%\" in path (double encoding)");
      default:
        // A decoded CR/LF would let the canonical path break log lines and header values.
        if (b < 0x20 || b == 0x7f) throw new BadPathException("encoded control character in path");
    }
  }

  /** Decodes once; the escapes were validated by {@link #checkEscape}. */
  private static String decode(String path) throws BadPathException {
    byte[] bytes = new byte[path.length()];
    int n = 0;
    for (int i = 0; i < path.length(); i++) {
      char c = path.charAt(i);
      if (c == '%') {
        bytes[n++] = (byte) (hex(path.charAt(i + 1)) << 4 | hex(path.charAt(i + 2)));
        i += 2;
      } else {
        bytes[n++] = (byte) c; // ASCII only: checked by the caller
      }
    }
    // Strict, not the default REPLACE: two different invalid sequences must not collapse into
    // the same U+FFFD path (overlong forms and surrogates are refused too).
    String chars = StrictUtf8.decode(bytes, 0, n);
    if (chars == null) throw new BadPathException("invalid UTF-8 in percent-encoded path");
    for (int i = 0; i < chars.length(); i++) {
      char c = chars.charAt(i);
      // C1 controls (NEL among them) are line breaks to some log and header parsers.
      if (c >= 0x80 && c <= 0x9f) throw new BadPathException("encoded control character in path");
    }
    return chars;
  }

  private static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
}
