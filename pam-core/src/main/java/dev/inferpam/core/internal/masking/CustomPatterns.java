package dev.inferpam.core.internal.masking;

import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Custom patterns from {@code masking.custom}: checked for backtracking risk, then run with
 * {@link java.util.regex}. Stateless and thread-safe.
 *
 * <p>The check is a small, conservative parser of the pattern. It <b>refuses</b>:
 * <ul>
 *   <li>unbounded quantifiers {@code *}, {@code +}, {@code {n,}}: use {@code {0,64}}, so that
 *       the longest match is known (the stream hold-back) and one match attempt is bounded;</li>
 *   <li>a group repeated more than once ({@code {2}}, {@code {1,5}}) that itself contains a
 *       quantifier or an alternation: {@code (a{1,5}){1,5}}, {@code (a|a){1,9}} are the shapes
 *       of catastrophic backtracking;</li>
 *   <li>backreferences ({@code \1}, {@code \k<n>}), lookaround, atomic groups, {@code \Q..\E},
 *       {@code \X}, octal escapes and the comments flag {@code (?x)}: the parser does not
 *       model them, so it does not allow them;</li>
 *   <li>patterns whose longest match exceeds {@value #MAX_LENGTH} chars.</li>
 * </ul>
 * Everything else that {@link Pattern} accepts is allowed: classes, escapes such as {@code \d}
 * and {@code \p{L}}, {@code ?}, {@code {n}}, {@code {n,m}}, non-capturing and named groups,
 * inline flags such as {@code (?i)}, anchors and {@code \b}. Matching is then linear in the
 * text with a constant that depends on the pattern.
 */
public final class CustomPatterns {
  /** Longest match a custom pattern may have. */
  public static final int MAX_LENGTH = 1024;

  private CustomPatterns() {}

  /**
   * Checks {@code regex}; returns the longest match it can produce, in chars.
   *
   * @throws IllegalArgumentException saying what is refused, e.g. {@code unbounded quantifier
   *     "+" at index 3: use a bounded one such as {0,64}}
   */
  public static int check(String regex) {
    Objects.requireNonNull(regex, "regex");
    try {
      Pattern.compile(regex);
    } catch (PatternSyntaxException e) {
      throw new IllegalArgumentException(
          "invalid regular expression: " + e.getDescription() + " at index " + e.getIndex());
    }
    Parser p = new Parser(regex);
    long max = p.alternation();
    if (p.pos < regex.length())
      throw new IllegalArgumentException("unbalanced \")\" at index " + p.pos);
    if (max == 0) throw new IllegalArgumentException("matches only the empty string");
    if (max > MAX_LENGTH) {
      throw new IllegalArgumentException(
          "can match up to " + max + " chars, at most " + MAX_LENGTH + " allowed");
    }
    return (int) max;
  }

  /**
   * A detector for a checked pattern.
   *
   * @throws IllegalArgumentException as {@link #check}
   */
  public static Detector detector(String name, String regex) {
    int max = check(regex);
    Pattern pattern = Pattern.compile(regex);
    return new Detector() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public int maxMatchLength() {
        return max;
      }

      @Override
      public void find(CharSequence text, int from, Consumer<Match> out) {
        Matcher m = pattern.matcher(text);
        m.useTransparentBounds(true);
        m.useAnchoringBounds(false);
        m.region(from, text.length());
        while (m.find()) {
          if (m.end() > m.start()) out.accept(new Match(m.start(), m.end(), name));
        }
      }

      @Override
      public String toString() {
        return "custom " + name;
      }
    };
  }

  /** Recursive descent over the pattern; each method returns the longest match of what it read. */
  private static final class Parser {
    private static final long CAP = Long.MAX_VALUE / 4;
    final String s;
    int pos;

    /** Set while reading a group: whether it contained a quantifier or an alternation. */
    boolean sawQuantifierOrAlternation;

    Parser(String s) {
      this.s = s;
    }

    long alternation() {
      long max = sequence();
      while (pos < s.length() && s.charAt(pos) == '|') {
        sawQuantifierOrAlternation = true;
        pos++;
        max = Math.max(max, sequence());
      }
      return max;
    }

    long sequence() {
      long total = 0;
      while (pos < s.length() && s.charAt(pos) != '|' && s.charAt(pos) != ')') {
        int atomAt = pos;
        boolean outer = sawQuantifierOrAlternation;
        sawQuantifierOrAlternation = false;
        long atom = atom();
        boolean innerRisk = sawQuantifierOrAlternation;
        int before = pos;
        long times = quantifier(atomAt, innerRisk);
        sawQuantifierOrAlternation = outer || innerRisk || pos != before;
        total = Math.min(CAP, total + times(atom, times));
      }
      return total;
    }

    /** Saturating product: lengths only need to compare against {@link #MAX_LENGTH}. */
    private static long times(long a, long b) {
      if (a == 0 || b == 0) return 0;
      return a > CAP / b ? CAP : a * b;
    }

    /** Repetition count maximum of a quantifier after an atom (1 if none). */
    long quantifier(int atomAt, boolean innerRisk) {
      if (pos >= s.length()) return 1;
      char c = s.charAt(pos);
      long max;
      int at = pos;
      if (c == '*' || c == '+') {
        throw new IllegalArgumentException(
            "unbounded quantifier \""
                + c
                + "\" at index "
                + at
                + ": use a bounded one such as {0,64}");
      } else if (c == '?') {
        pos++;
        max = 1;
      } else if (c == '{') {
        int close = s.indexOf('}', pos);
        String body = s.substring(pos + 1, close);
        pos = close + 1;
        int comma = body.indexOf(',');
        if (comma >= 0 && comma == body.length() - 1) {
          throw new IllegalArgumentException(
              "unbounded quantifier \"{"
                  + body
                  + "}\" at index "
                  + at
                  + ": use a bounded one such as {0,64}");
        }
        try {
          max = Long.parseLong((comma >= 0 ? body.substring(comma + 1) : body).trim());
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              "quantifier \"{" + body + "}\" at index " + at + " is too large");
        }
      } else {
        return 1;
      }
      if (pos < s.length() && (s.charAt(pos) == '?' || s.charAt(pos) == '+'))
        pos++; // lazy / possessive
      if (max > 1 && innerRisk) {
        throw new IllegalArgumentException(
            "nested quantifier: the group at index "
                + atomAt
                + " contains a quantifier or alternation and is itself repeated; this risks catastrophic backtracking");
      }
      return max;
    }

    long atom() {
      char c = s.charAt(pos);
      switch (c) {
        case '(' -> {
          return group();
        }
        case '[' -> {
          return skipClass();
        }
        case '\\' -> {
          return escape(false);
        }
        case '^', '$' -> {
          pos++;
          return 0;
        }
        case '*',
            '+',
            '?',
            '{' -> // only after an atom, and "a{2}{3}" would be read as a literal here
            throw new IllegalArgumentException(
                "stacked quantifier \""
                    + c
                    + "\" at index "
                    + pos
                    + " is not supported in custom patterns");
        default -> {
          if (c == '.') {
            pos++;
            return 2; // any code point, maybe a surrogate pair
          }
          int len = Character.charCount(s.codePointAt(pos));
          pos += len;
          return len;
        }
      }
    }

    long group() {
      int at = pos;
      pos++;
      if (pos < s.length() && s.charAt(pos) == '?') {
        pos++;
        char k = pos < s.length() ? s.charAt(pos) : ')';
        if (k == '='
            || k == '!'
            || (k == '<'
                && pos + 1 < s.length()
                && (s.charAt(pos + 1) == '=' || s.charAt(pos + 1) == '!'))) {
          throw new IllegalArgumentException(
              "lookaround at index " + at + " is not allowed in custom patterns");
        }
        if (k == '>')
          throw new IllegalArgumentException(
              "atomic group at index " + at + " is not allowed in custom patterns");
        if (k == '<') {
          pos = s.indexOf('>', pos) + 1; // named group
        } else if (k != ':') {
          // inline flags: (?i) or (?i:...)
          int flagsStart = pos;
          while (pos < s.length() && s.charAt(pos) != ')' && s.charAt(pos) != ':') pos++;
          String flags = s.substring(flagsStart, pos);
          if (flags.indexOf('x') >= 0) {
            throw new IllegalArgumentException(
                "the comments flag (?x) at index " + at + " is not allowed in custom patterns");
          }
          if (s.charAt(pos) == ')') {
            pos++;
            return 0;
          }
        }
        if (s.charAt(pos) == ':') pos++;
      }
      long inner = alternation();
      pos++; // ')', Pattern.compile checked the balance
      return inner;
    }

    /**
     * Skips a class; returns 1 for a plain BMP class such as {@code [A-Z0-9_]}, 2 when it may
     * match a supplementary code point (negated, escapes, non-BMP members).
     */
    int skipClass() {
      int depth = 0;
      int width = 1;
      pos++; // '['
      if (pos < s.length() && s.charAt(pos) == '^') {
        pos++;
        width = 2;
      }
      if (pos < s.length() && s.charAt(pos) == ']') pos++; // a leading ']' is literal
      while (pos < s.length()) {
        char c = s.charAt(pos);
        if (c == '\\') {
          escape(true);
          width = 2;
          continue;
        }
        if (Character.isSurrogate(c)) width = 2;
        pos++;
        if (c == '[') depth++;
        if (c == ']') {
          if (depth == 0) return width;
          depth--;
        }
      }
      return width;
    }

    /** An escape sequence; returns its longest match. */
    long escape(boolean inClass) {
      int at = pos;
      pos++; // '\'
      char e = s.charAt(pos);
      pos++;
      if (e >= '1' && e <= '9' || e == 'k') {
        throw new IllegalArgumentException(
            "backreference at index " + at + " is not allowed in custom patterns");
      }
      switch (e) {
        case 'Q' ->
            throw new IllegalArgumentException(
                "\\Q...\\E at index "
                    + at
                    + " is not supported in custom patterns; escape each character");
        case 'X' ->
            throw new IllegalArgumentException(
                "\\X at index " + at + " is not supported in custom patterns");
        case '0' ->
            throw new IllegalArgumentException(
                "octal escape at index "
                    + at
                    + " is not supported in custom patterns; use \\x{..}");
        case 'p', 'P', 'N' -> {
          if (pos < s.length() && s.charAt(pos) == '{') pos = s.indexOf('}', pos) + 1;
          else pos++;
          return 2; // a code point may be a surrogate pair
        }
        case 'x' -> {
          if (pos < s.length() && s.charAt(pos) == '{') pos = s.indexOf('}', pos) + 1;
          else pos += 2;
          return 2;
        }
        case 'u' -> {
          pos += 4;
          return 1;
        }
        case 'c' -> {
          pos++;
          return 1;
        }
        case 'b', 'B', 'A', 'z', 'Z', 'G' -> {
          if (e == 'b' && pos < s.length() && s.charAt(pos) == '{') {
            throw new IllegalArgumentException(
                "\\b{g} at index " + at + " is not supported in custom patterns");
          }
          return 0;
        }
        case 'R' -> {
          return 2;
        }
        default -> {
          return inClass
              ? 1
              : (Character.isLetter(e) ? 2 : 1); // \d \w \s ...: a code point at most
        }
      }
    }
  }
}
