package dev.inferpam.core.internal.masking;

import java.util.function.Consumer;

/**
 * Finds one kind of sensitive value in text.
 *
 * <p>Contract, relied on by the block masker and by the streaming session
 * ({@link BlockMasker#open()}), which must give the same result however the text is split:
 * <ul>
 *   <li>{@link #find} runs in time linear in the text length (with a constant that depends on the
 *       detector, never on the input), so a hostile response cannot stall masking;</li>
 *   <li>no match is longer than {@link #maxMatchLength()};</li>
 *   <li>a match may depend on at most {@link #CONTEXT} chars before it (word boundaries such as
 *       "not preceded by a digit", the {@code version} look-back of {@code ipv4});</li>
 *   <li>scanning can start at any position {@code from} that no match of this detector spans,
 *       with the chars before {@code from} as context only, and finds exactly the matches a scan
 *       of the whole text finds from there on. Detectors that scan "runs" (digit groups, base64,
 *       hex) therefore refuse a run that is glued to the context on its left;</li>
 *   <li>{@link #undecidedFrom} tells how far the text must be known for the decisions so far
 *       to be final.</li>
 * </ul>
 * Matches are reported in ascending start order; a detector may report overlapping matches,
 * the masker resolves them.
 *
 * <p><b>Thread-safety:</b> implementations are immutable and safe for concurrent use.
 */
public interface Detector {
  /** Chars of context a match may look back on, before its start. */
  int CONTEXT = 16;

  /** Chars a decision may look past the end of a match (lookahead such as "not followed by .digit"). */
  int LOOKAHEAD = 4;

  /** The name used in policies, counts and replacement labels, e.g. {@code credit-card}. */
  String name();

  /** Longest match this detector can report, in chars. */
  int maxMatchLength();

  /**
   * Most chars a stream may have to hold back for this detector: no decision reads further than
   * this past its start. At least {@link #maxMatchLength()}.
   */
  default int holdBack() {
    return maxMatchLength() + LOOKAHEAD;
  }

  /**
   * Reports every match starting at or after {@code from} to {@code out}, in ascending start
   * order; chars before {@code from} are context only.
   *
   * @throws NullPointerException if an argument is null
   */
  void find(CharSequence text, int from, Consumer<Match> out);

  /** Reports every match in {@code text}. */
  default void find(CharSequence text, Consumer<Match> out) {
    find(text, 0, out);
  }

  /**
   * The first position at or after {@code from} whose decision (is a match starting here, and how
   * long) could still change if more text were appended to {@code text}. Matches starting before
   * it are final. The default assumes any decision may read {@link #holdBack()} chars.
   */
  default int undecidedFrom(CharSequence text, int from) {
    Alphabet a = alphabet();
    return a == null
        ? Math.max(from, text.length() - holdBack())
        : trailingRun(text, from, runBound(), a);
  }

  /**
   * The chars a match, or the decision about one, can run through (read up to and including the
   * first char outside it, never further), or {@code null} when unknown. With an alphabet, only
   * the trailing run of alphabet chars is undecided ({@link #trailingRun}): what lets a stream
   * hold back just the last partial word instead of {@link #holdBack()} chars.
   */
  default Alphabet alphabet() {
    return null;
  }

  /**
   * True when every match starts at a candidate of {@link IndexedText} (or at a PEM
   * {@code -----BEGIN } marker): the masker then skips this detector for a stretch of text that
   * has none. Built-in detectors only.
   */
  default boolean indexed() {
    return false;
  }

  /** With an {@link #alphabet()}: most chars of its trailing run that can be undecided. */
  default int runBound() {
    return holdBack();
  }

  /** Chars of a detector's alphabet: those a match, or the decision about one, can run through. */
  @FunctionalInterface
  interface Alphabet {
    boolean contains(char c);

    /** The same ASCII alphabet as a table (non-ASCII chars are never in it): fast to test. */
    static Alphabet ascii(Alphabet a) {
      boolean[] in = new boolean[128];
      for (char c = 0; c < 128; c++) in[c] = a.contains(c);
      return c -> c < 128 && in[c];
    }
  }

  /**
   * {@link #undecidedFrom} for a detector whose decisions stop at the first char outside
   * {@code alphabet} (read, but not part of any match): only the trailing run of alphabet chars,
   * at most {@code holdBack} of them, is undecided.
   */
  static int trailingRun(CharSequence text, int from, int holdBack, Alphabet alphabet) {
    int limit = Math.max(from, text.length() - holdBack);
    int i = text.length();
    while (i > limit && alphabet.contains(text.charAt(i - 1))) i--;
    return i;
  }
}
