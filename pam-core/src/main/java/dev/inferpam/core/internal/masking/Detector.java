package dev.inferpam.core.internal.masking;

import java.util.function.Consumer;

/**
 * Finds one kind of sensitive value in text.
 *
 * <p>Contract, relied on by the block masker now and by the streaming masker next:
 * <ul>
 *   <li>{@link #find} runs in time linear in the text length (with a constant that depends on the
 *       detector, never on the input), so a hostile response cannot stall masking;</li>
 *   <li>no match is longer than {@link #maxMatchLength()}: a stream that holds back that many
 *       characters (plus one character of context, see below) can decide every match;</li>
 *   <li>a match may depend on one character before and after it (word boundaries such as "not
 *       preceded by a digit"), never on more distant text, except where a detector documents
 *       otherwise.</li>
 * </ul>
 * Matches are reported in ascending start order; a detector may report overlapping matches,
 * the masker resolves them.
 *
 * <p><b>Thread-safety:</b> implementations are immutable and safe for concurrent use.
 */
public interface Detector {

  /** The name used in policies, counts and replacement labels, e.g. {@code credit-card}. */
  String name();

  /** Longest match this detector can report, in chars. */
  int maxMatchLength();

  /**
   * Reports every match in {@code text} to {@code out}, in ascending start order.
   *
   * @throws NullPointerException if an argument is null
   */
  void find(CharSequence text, Consumer<Match> out);
}
