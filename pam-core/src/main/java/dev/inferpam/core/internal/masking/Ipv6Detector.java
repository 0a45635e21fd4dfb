package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code ipv6}: full ({@code 2001:0db8:0000:0000:0000:ff00:0042:8329}) and {@code ::}-compressed
 * ({@code 2001:db8::1}, {@code ::1}, {@code fe80::}) forms, with an optional dotted IPv4 tail
 * ({@code ::ffff:192.0.2.1}). Validated by hand, without {@code InetAddress} (which may resolve
 * names). Immutable and thread-safe.
 *
 * <p>A hand-written scan over the runs of hex digits, {@code :} and {@code .} that hold a colon
 * ({@link IndexedText}), each visited once. A
 * run glued to a non-hex letter or {@code _} is ignored ({@code std::vector}), trailing dots
 * and a single trailing colon are dropped (sentence punctuation), runs over 45 chars are not
 * addresses, and so are runs over {@value #MAX_RUN} chars before trimming. A run glued on its left to
 * a run char before the scan start is skipped. Times ({@code 10:30:00}) and MAC addresses have too few groups and no {@code ::}.
 * Zone ids ({@code %eth0}) are not part of the match.
 */
final class Ipv6Detector implements Detector {
  static final int MAX_LENGTH = 45;

  /** Longer runs of hex digits, colons and dots are never addresses (so a decision reads at most this far). */
  static final int MAX_RUN = 64;

  private static final Alphabet ALPHABET = Alphabet.ascii(Ipv6Detector::isRunChar);

  @Override
  public String name() {
    return "ipv6";
  }

  @Override
  public int maxMatchLength() {
    return MAX_LENGTH;
  }

  @Override
  public int holdBack() {
    return MAX_RUN + LOOKAHEAD;
  }

  @Override
  public final boolean indexed() {
    return true;
  }

  @Override
  public Alphabet alphabet() {
    return ALPHABET;
  }

  @Override
  public void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    IndexedText t = IndexedText.of(text, from);
    IndexedText.Positions colons = t.colons(); // every address holds two
    int n = t.length();
    int i = from;
    for (int k = colons.firstAtOrAfter(from); k < colons.count(); k++) {
      int colon = colons.get(k);
      if (colon < i) continue; // in the run just looked at
      int start = colon;
      while (start > i && isRunChar(t.charAt(start - 1))) start--;
      int end = colon;
      int count = 0;
      while (end < n && isRunChar(t.charAt(end))) {
        if (t.charAt(end) == ':') count++;
        end++;
      }
      i = end;
      boolean glued =
          (start > 0 && (isWordNotHex(t.charAt(start - 1)) || isRunChar(t.charAt(start - 1))))
              || (end < n && isWordNotHex(t.charAt(end)));
      if (glued || count < 2 || end - start > MAX_RUN) continue;
      while (end > start && t.charAt(end - 1) == '.') end--;
      if (end - start >= 2 && t.charAt(end - 1) == ':' && t.charAt(end - 2) != ':') end--;
      // a leading '.' is punctuation, not part of an address
      while (start < end && t.charAt(start) == '.') start++;
      if (end - start <= MAX_LENGTH
          && end - start >= 2
          && valid(t.subSequence(start, end).toString())) {
        out.accept(new Match(start, end, name()));
      }
    }
  }

  private static boolean isRunChar(char c) {
    return c == ':' || c == '.' || hex(c) >= 0;
  }

  private static boolean isWordNotHex(char c) {
    return (Character.isLetterOrDigit(c) || c == '_') && hex(c) < 0;
  }

  private static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  /** RFC 4291 section 2.2 text forms. */
  static boolean valid(String s) {
    int dc = s.indexOf("::");
    if (dc >= 0 && s.indexOf("::", dc + 1) >= 0) return false;
    if (s.contains(":::")) return false;
    int groups;
    if (dc >= 0) {
      int left = countGroups(s.substring(0, dc), false, s.length() == dc + 2);
      int right = countGroups(s.substring(dc + 2), true, true);
      if (left < 0 || right < 0) return false;
      groups = left + right;
      if (groups > 7 || groups == 0) return false; // "::" alone is too often not an address
    } else {
      groups = countGroups(s, true, true);
      if (groups != 8) return false;
    }
    return true;
  }

  /** Groups in a ':'-separated part, an IPv4 tail counting 2; -1 if malformed; 0 if empty. */
  private static int countGroups(String part, boolean tailAllowed, boolean last) {
    if (part.isEmpty()) return 0;
    String[] pieces = part.split(":", -1);
    int groups = 0;
    for (int k = 0; k < pieces.length; k++) {
      String p = pieces[k];
      if (p.indexOf('.') >= 0) {
        if (!tailAllowed || !last || k != pieces.length - 1 || !ipv4(p)) return -1;
        groups += 2;
      } else {
        if (p.isEmpty() || p.length() > 4) return -1;
        for (int c = 0; c < p.length(); c++) {
          if (hex(p.charAt(c)) < 0) return -1;
        }
        groups++;
      }
    }
    return groups;
  }

  private static boolean ipv4(String s) {
    String[] parts = s.split("\\.", -1);
    if (parts.length != 4) return false;
    for (String p : parts) {
      if (p.isEmpty() || p.length() > 3 || (p.length() > 1 && p.charAt(0) == '0')) return false;
      for (int c = 0; c < p.length(); c++) {
        if (!RegexDetector.isDigit(p.charAt(c))) return false;
      }
      if (Integer.parseInt(p) > 255) return false;
    }
    return true;
  }
}
