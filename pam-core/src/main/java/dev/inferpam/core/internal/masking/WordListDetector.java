package dev.inferpam.core.internal.masking;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * {@code masking.words}: literal words or phrases, matched whole (not glued to a letter, digit
 * or {@code _} on either side), optionally ignoring case. Immutable and thread-safe.
 *
 * <p>Complexity: a plain scan, {@code O(text length x number of words x word length)} in the
 * worst case, which is linear in the text for the small lists this is meant for (code names,
 * customer names). Aho-Corasick would remove the list-size factor; not needed yet. At each
 * position the longest listed word wins.
 */
final class WordListDetector implements Detector {
  private final String name;
  private final List<String> words;
  private final boolean ignoreCase;
  private final int maxLength;

  /**
   * @throws IllegalArgumentException if {@code words} is empty or holds an empty word
   */
  WordListDetector(String name, List<String> words, boolean ignoreCase) {
    this.name = Objects.requireNonNull(name, "name");
    if (words.isEmpty()) throw new IllegalArgumentException("word list must not be empty");
    List<String> sorted = new ArrayList<>(words);
    for (String w : sorted) {
      if (w.isEmpty()) throw new IllegalArgumentException("words must not be empty");
    }
    sorted.sort(Comparator.comparingInt(String::length).reversed());
    this.words = List.copyOf(sorted);
    this.ignoreCase = ignoreCase;
    this.maxLength = this.words.get(0).length();
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public int maxMatchLength() {
    return maxLength;
  }

  @Override
  public void find(CharSequence text, int from, Consumer<Match> out) {
    Objects.requireNonNull(out, "out");
    String s = text.toString();
    int n = s.length();
    int i = from;
    while (i < n) {
      if (i > 0 && isWord(s.charAt(i - 1))) {
        i++;
        continue;
      }
      int hit = -1;
      for (String w : words) {
        int end = i + w.length();
        if (end <= n
            && s.regionMatches(ignoreCase, i, w, 0, w.length())
            && (end == n || !isWord(s.charAt(end)))) {
          hit = end;
          break; // longest first
        }
      }
      if (hit > 0) {
        out.accept(new Match(i, hit, name));
        i = hit;
      } else {
        i++;
      }
    }
  }

  private static boolean isWord(char c) {
    return Character.isLetterOrDigit(c) || c == '_';
  }

  @Override
  public String toString() {
    return "words " + name + " (" + words.size() + ")"; // never the words: they may be secret
  }
}
