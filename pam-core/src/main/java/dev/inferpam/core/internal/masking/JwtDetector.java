package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code jwt}: a JWS in compact form, {@code eyJ<header>.eyJ<payload>.<signature>}, base64url
 * parts, the signature possibly empty (unsecured tokens) but both dots present. At most
 * {@value #MAX_LENGTH} chars in all; longer tokens are not matched (so the stream hold-back
 * stays bounded). Not glued to a base64url char on the left. Immutable and thread-safe.
 *
 * <p>A hand-written scan over base64url runs, each char visited a bounded number of times, so
 * a long run of {@code eyJeyJ...} costs linear time (a backtracking regex would not).
 */
final class JwtDetector implements Detector {
  static final int MAX_LENGTH = 8192;

  @Override
  public String name() {
    return "jwt";
  }

  @Override
  public int maxMatchLength() {
    return MAX_LENGTH;
  }

  @Override
  public int undecidedFrom(CharSequence text, int from) {
    return Detector.trailingRun(text, from, holdBack(), c -> isB64(c) || c == '.');
  }

  @Override
  public void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    int n = text.length();
    int i = from;
    while (i < n) {
      if (!isB64(text.charAt(i))) {
        i++;
        continue;
      }
      int start = i;
      int headerEnd = runEnd(text, start);
      if (start > 0 && isB64(text.charAt(start - 1))) {
        i = headerEnd; // the run began in the context: not a token start
        continue;
      }
      if (!startsEyJ(text, start) || headerEnd >= n || text.charAt(headerEnd) != '.') {
        i = headerEnd;
        continue;
      }
      int payloadEnd = runEnd(text, headerEnd + 1);
      if (!startsEyJ(text, headerEnd + 1) || payloadEnd >= n || text.charAt(payloadEnd) != '.') {
        // The payload run is scanned again as a header candidate: at most twice per char.
        i = headerEnd + 1;
        continue;
      }
      int end = runEnd(text, payloadEnd + 1);
      if (end - start <= MAX_LENGTH) {
        out.accept(new Match(start, end, name()));
      }
      i = end;
    }
  }

  private static int runEnd(CharSequence text, int i) {
    while (i < text.length() && isB64(text.charAt(i))) i++;
    return i;
  }

  private static boolean startsEyJ(CharSequence text, int i) {
    return i + 3 <= text.length() && text.charAt(i) == 'e' && text.charAt(i + 1) == 'y' && text.charAt(i + 2) == 'J';
  }

  private static boolean isB64(char c) {
    return RegexDetector.isAlnum(c) || c == '-' || c == '_';
  }
}
