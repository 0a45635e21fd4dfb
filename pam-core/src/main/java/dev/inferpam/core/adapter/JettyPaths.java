package dev.inferpam.core.adapter;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * How the gateway's servlet container (Jetty 12, with the gateway's URI compliance) reads a raw
 * request path to route it to a context, so that a front without Jetty routes the same requests
 * to {@link Endpoints}. Written from Jetty's observable behaviour (the gateway's tests compare
 * the two on many paths), not copied. Stateless.
 */
final class JettyPaths {
  private JettyPaths() {}

  /**
   * The path Jetty matches contexts against, or {@code null} when Jetty refuses the path before
   * any routing (400): a {@code %} not followed by two hex digits (or {@code u} and four), an
   * encoded NUL, escapes that are not UTF-8, a {@code ..} above the root, a path not starting
   * with {@code /}. Never throws.
   */
  static String canonical(String raw) {
    if (raw == null || raw.isEmpty() || raw.charAt(0) != '/') return null;
    try {
      boolean encoded = raw.indexOf('%') >= 0 || parameterBeforeSlash(raw);
      boolean dot = raw.contains("/.");
      if (!encoded && !dot) {
        // Nothing to decode or resolve: only a parameter of the last segment is dropped.
        int lastSlash = raw.lastIndexOf('/');
        int param = raw.indexOf(';', lastSlash);
        return param < 0 ? raw : raw.substring(0, param);
      }
      return decodeAndNormalize(raw);
    } catch (RuntimeException e) {
      return null;
    }
  }

  /**
   * The path parameter of the last segment (after its first {@code ;}), which Jetty keeps apart
   * from the path; {@code null} when there is none.
   */
  static String lastParameter(String raw) {
    int lastSlash = raw.lastIndexOf('/');
    int param = raw.indexOf(';', lastSlash + 1);
    return param < 0 ? null : raw.substring(param + 1);
  }

  /** Whether a {@code ;} is followed by a {@code /}: a parameter in a segment other than the last. */
  private static boolean parameterBeforeSlash(String raw) {
    int semicolon = raw.indexOf(';');
    return semicolon >= 0 && raw.indexOf('/', semicolon) >= 0;
  }

  private static String decodeAndNormalize(String raw) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length());
    boolean slash = true;
    boolean normal = true;
    int end = raw.length();
    for (int i = 0; i < end; i++) {
      char c = raw.charAt(i);
      switch (c) {
        case '%' -> {
          if (i + 2 >= end) return null;
          if (raw.charAt(i + 1) == 'u') {
            if (i + 6 > end) return null;
            int code = hex(raw, i + 2, 4);
            if (code <= 0) return null;
            if (safe(code)) {
              if (slash && code == '.') normal = false;
              writeUtf8(out, String.valueOf((char) code));
            } else {
              writeEncoded(out, code);
            }
            i += 5;
          } else {
            int code = hex(raw, i + 1, 2);
            if (code <= 0) return null;
            if (safe(code)) {
              if (slash && code == '.') normal = false;
              out.write(code);
            } else {
              writeEncoded(out, code);
            }
            i += 2;
          }
        }
        case ';' -> {
          // The parameter runs to the next '/', which is kept.
          while (++i < end) {
            if (raw.charAt(i) == '/') {
              out.write('/');
              break;
            }
          }
        }
        case '/' -> out.write('/');
        case '.' -> {
          if (slash) normal = false;
          out.write('.');
        }
        default -> {
          if (c >= 0x80) writeUtf8(out, String.valueOf(c));
          else if (safe(c)) out.write(c);
          else writeEncoded(out, c);
        }
      }
      // What the next character follows is the raw character here, not what was written.
      slash = c == '/';
    }
    String canonical = EndpointJson.strictUtf8(out.toByteArray());
    if (canonical == null) return null;
    return normal ? canonical : resolveDots(canonical);
  }

  /** Resolves {@code .} and {@code ..} segments; {@code null} when a {@code ..} leaves the root. */
  private static String resolveDots(String path) {
    String[] segments = path.substring(1).split("/", -1);
    List<String> kept = new ArrayList<>();
    for (int i = 0; i < segments.length; i++) {
      String s = segments[i];
      boolean last = i == segments.length - 1;
      if (s.equals(".")) {
        if (last) kept.add("");
      } else if (s.equals("..")) {
        if (kept.isEmpty()) return null;
        kept.remove(kept.size() - 1);
        if (last) kept.add("");
      } else {
        kept.add(s);
      }
    }
    return "/" + String.join("/", kept);
  }

  /**
   * Characters Jetty decodes into a canonical path; the others (controls, space,
   * {@code " # % / ; < > ? [ \ ] ^ ` { | }} and DEL) stay percent-encoded.
   */
  private static boolean safe(int code) {
    if (code >= 0x80) return true;
    if (code <= 0x20 || code == 0x7f) return false;
    return "\"#%/;<>?[\\]^`{|}".indexOf(code) < 0;
  }

  private static void writeEncoded(ByteArrayOutputStream out, int code) {
    String hex = Integer.toHexString(code).toUpperCase(java.util.Locale.ROOT);
    out.write('%');
    if (hex.length() < 2) out.write('0');
    for (int k = 0; k < hex.length(); k++) out.write(hex.charAt(k));
  }

  private static void writeUtf8(ByteArrayOutputStream out, String s) {
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    out.write(bytes, 0, bytes.length);
  }

  /** {@code digits} hex digits at {@code from}, or -1 when one is not a hex digit. */
  private static int hex(String s, int from, int digits) {
    int value = 0;
    for (int k = from; k < from + digits; k++) {
      int d = Character.digit(s.charAt(k), 16);
      if (d < 0 || s.charAt(k) > 0x7f) return -1;
      value = value << 4 | d;
    }
    return value;
  }
}
