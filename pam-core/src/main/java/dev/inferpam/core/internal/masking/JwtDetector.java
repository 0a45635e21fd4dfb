package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code jwt}: a JWS in compact form, {@code eyJ<header>.eyJ<payload>.<signature>}, base64url
 * parts, the signature possibly empty (unsecured tokens) but both dots present. At most
 * {@value #MAX_LENGTH} chars in all; longer tokens are not matched (so the stream hold-back
 * stays bounded). Not glued to a base64url char on the left. Immutable and thread-safe.
 *
 * <p>A hand-written scan from each {@code eyJ} that starts a base64url run ({@link IndexedText}),
 * each char visited a bounded number of times, so a long run of {@code eyJeyJ...} costs linear
 * time (a backtracking regex would not).
 */
final class JwtDetector implements Detector {
  static final int MAX_LENGTH = 8192;
  private static final Alphabet ALPHABET = Alphabet.ascii(c -> isB64(c) || c == '.');

  @Override
  public String name() {
    return "jwt";
  }

  @Override
  public int maxMatchLength() {
    return MAX_LENGTH;
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
    IndexedText.Positions starts = t.eyJ(); // "eyJ" not glued to a base64url char on its left
    int n = t.length();
    int i = from;
    for (int k = starts.firstAtOrAfter(from); k < starts.count(); k++) {
      int start = starts.get(k);
      if (start < i) continue; // inside the token just found
      int headerEnd = runEnd(t, start);
      if (headerEnd >= n || t.charAt(headerEnd) != '.') continue;
      // A failed payload is tried again as a header: it is the next "eyJ" after a '.'.
      int payloadEnd = runEnd(t, headerEnd + 1);
      if (!startsEyJ(t, headerEnd + 1) || payloadEnd >= n || t.charAt(payloadEnd) != '.') continue;
      int end = runEnd(t, payloadEnd + 1);
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
    return i + 3 <= text.length()
        && text.charAt(i) == 'e'
        && text.charAt(i + 1) == 'y'
        && text.charAt(i + 2) == 'J';
  }

  private static boolean isB64(char c) {
    return IndexedText.isB64(c);
  }
}
