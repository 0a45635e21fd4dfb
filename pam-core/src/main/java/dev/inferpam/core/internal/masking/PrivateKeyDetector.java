package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code private-key}: a PEM block from {@code -----BEGIN <label>PRIVATE KEY-----} (RSA, EC,
 * DSA, OPENSSH, ENCRYPTED, plain PKCS#8 ...) to the matching {@code -----END <same label>-----}.
 * Immutable and thread-safe.
 *
 * <p>Bounded: a block is at most {@value #MAX_LENGTH} chars (an 8192-bit RSA key is about
 * 6.5 KiB). <b>Unterminated blocks</b> (no matching END within that bound, or the text ends
 * first) are masked from BEGIN for {@value #MAX_LENGTH} chars or to the end of the text,
 * whichever is shorter: a truncated key is still a secret, and the decision never needs more than
 * {@value #MAX_LENGTH} chars after BEGIN, so a stream can make it with a bounded hold-back.
 * Markers nested inside a block are part of the block. Each END search is bounded and the scan
 * continues after the block, so time is linear.
 */
final class PrivateKeyDetector implements Detector {
  static final int MAX_LENGTH = 16 * 1024;
  private static final String BEGIN = IndexedText.PEM_BEGIN;
  private static final String DASHES = "-----";
  private static final String SUFFIX = "PRIVATE KEY";
  private static final int MAX_LABEL = 64;
  private static final Alphabet ALPHABET = Alphabet.ascii(c -> c == '-' || isLabelChar(c));

  @Override
  public String name() {
    return "private-key";
  }

  @Override
  public int maxMatchLength() {
    return MAX_LENGTH;
  }

  /** Longest BEGIN line: the marker, a label, the closing dashes. */
  private static final int BEGIN_LINE = BEGIN.length() + MAX_LABEL + 1 + DASHES.length();

  /**
   * Only a trailing, possibly incomplete BEGIN line is undecided here; a block whose END has not
   * arrived yet is reported as a match reaching the end of the text, which the stream holds.
   */
  @Override
  public final boolean indexed() {
    return true;
  }

  @Override
  public Alphabet alphabet() {
    return ALPHABET;
  }

  @Override
  public int runBound() {
    return BEGIN_LINE + LOOKAHEAD;
  }

  @Override
  public void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    IndexedText t = IndexedText.of(text, from);
    text = t;
    int n = t.length();
    int i = from;
    while ((i = t.indexOf(BEGIN, i)) >= 0) {
      int labelStart = i + BEGIN.length();
      int labelEnd = labelStart;
      while (labelEnd < n
          && labelEnd - labelStart <= MAX_LABEL
          && isLabelChar(text.charAt(labelEnd))) labelEnd++;
      String label = text.subSequence(labelStart, labelEnd).toString();
      if (!label.endsWith(SUFFIX) || !regionEquals(text, labelEnd, DASHES)) {
        i = labelStart;
        continue;
      }
      int limit = Math.min(n, i + MAX_LENGTH);
      String endMarker = "-----END " + label + DASHES;
      int endAt = indexOf(text, endMarker, labelEnd, limit);
      int end = endAt >= 0 ? endAt + endMarker.length() : limit;
      out.accept(new Match(i, end, name()));
      i = end;
    }
  }

  private static boolean isLabelChar(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ';
  }

  /** First index of {@code s} in {@code text} starting in {@code [from, ...)} and ending by {@code limit}. */
  private static int indexOf(CharSequence text, String s, int from, int limit) {
    char first = s.charAt(0);
    for (int k = from; k + s.length() <= limit; k++) {
      if (text.charAt(k) == first && regionEquals(text, k, s)) return k;
    }
    return -1;
  }

  private static boolean regionEquals(CharSequence text, int at, String s) {
    if (at + s.length() > text.length()) return false;
    for (int k = 0; k < s.length(); k++) {
      if (text.charAt(at + k) != s.charAt(k)) return false;
    }
    return true;
  }
}
