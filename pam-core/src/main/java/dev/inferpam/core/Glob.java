package dev.inferpam.core;

import dev.inferpam.core.internal.policy.PolicyText;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Objects;

/**
 * A compiled glob for request paths and model names, as the rules of a {@link Policy} hold them
 * ({@link Policy.AllowRule#paths()}, {@link Policy.Entitlement#models()}, ...), with the syntax of
 * {@code docs/policy.md}. Immutable and thread-safe.
 *
 * <h2>Syntax</h2>
 * <ul>
 *   <li>{@code *} matches any run of characters, possibly empty, except {@code /}: it stays
 *       within one path segment or one part of a model name such as {@code meta-llama/*}.
 *   <li>{@code **} matches any run of characters including {@code /}. Where it stands for whole
 *       segments, the slash next to it is optional, so that it may match no segment at all:
 *       <ul>
 *         <li>a trailing {@code /**} matches the path without it: {@code /v1/files/**} matches
 *             {@code /v1/files}, {@code /v1/files/}, {@code /v1/files/abc} and
 *             {@code /v1/files/a/b}, but not {@code /v1/filesystem};
 *         <li>{@code **}{@code /} at the start or after a {@code /} matches zero or more whole
 *             segments: {@code /a/**}{@code /b} matches {@code /a/b} and {@code /a/x/y/b};
 *             {@code **}{@code /b} matches {@code b} and {@code x/y/b}.
 *       </ul>
 *       Elsewhere ({@code a**}, {@code **b}) it is simply "anything". Three or more {@code *} in
 *       a row are invalid.
 *   <li>{@code ?} matches exactly one character (code point) other than {@code /}.
 *   <li>{@code [...]} matches one character of a class: members and ranges ({@code [a-z0-9]}),
 *       negated with a leading {@code !} or {@code ^}; a {@code ]} right after the opening
 *       bracket (or after the negation) is a member, and a {@code -} first or last is a member.
 *       A class never matches {@code /}, and {@code /} may not appear in one.
 *   <li>{@code \} makes the next character literal ({@code \*}, {@code \[}, {@code \\}).
 *   <li><code>&#123;</code> and <code>&#125;</code> are reserved (for alternation, maybe later)
 *       and invalid unless escaped; a lone {@code ]} is invalid.
 *   <li>Everything else is literal and case-sensitive.
 * </ul>
 * The empty pattern is valid and matches only the empty string.
 *
 * <h2>Cost</h2>
 * Matching simulates a non-deterministic automaton over the whole text, one character at a time,
 * with no backtracking: time is O(text length × pattern length) whatever the input, so a request
 * path chosen by an attacker cannot make matching slow. Patterns without wildcards are compared
 * with {@link String#equals}.
 *
 * <h2>Bad input</h2>
 * {@link #compile} throws {@link IllegalArgumentException} with a message such as
 * {@code invalid glob "llama-[": unclosed '['}; {@code null} patterns throw
 * {@link NullPointerException}. {@link #matches} returns {@code false} for {@code null} text.
 *
 * <p>Two globs are equal when their patterns are equal.
 */
public final class Glob {
  private final String pattern;

  /** The pattern itself when it has no wildcards, else {@code null}. */
  private final String literal;

  /**
   * The literal text every match starts with (the pattern's leading literal characters; may be
   * empty): most texts a glob is tried on fail this test, without running the automaton.
   */
  private final String prefix;

  private final Nfa nfa;

  private Glob(String pattern, String literal, String prefix, Nfa nfa) {
    this.pattern = pattern;
    this.literal = literal;
    this.prefix = prefix;
    this.nfa = nfa;
  }

  /**
   * Compiles {@code pattern} (syntax in the class comment).
   *
   * @throws IllegalArgumentException saying why the pattern is invalid
   * @throws NullPointerException     if {@code pattern} is null
   */
  public static Glob compile(String pattern) {
    Objects.requireNonNull(pattern, "pattern");
    List<Element> elements = new Parser(pattern).parse();
    if (elements.stream().allMatch(e -> e.kind == Kind.LITERAL)) {
      StringBuilder sb = new StringBuilder();
      elements.forEach(e -> sb.appendCodePoint(e.codePoint));
      return new Glob(pattern, sb.toString(), null, null);
    }
    StringBuilder prefix = new StringBuilder();
    for (Element e : elements) {
      if (e.kind != Kind.LITERAL) break;
      prefix.appendCodePoint(e.codePoint);
    }
    return new Glob(pattern, null, prefix.toString(), Nfa.build(elements));
  }

  /** Whether the whole of {@code text} matches; {@code false} for {@code null}. */
  public boolean matches(String text) {
    if (text == null) return false;
    if (literal != null) return literal.equals(text);
    return text.startsWith(prefix) && nfa.matches(text);
  }

  /** Whether any of {@code globs} matches {@code text}; {@code false} for {@code null} text. */
  public static boolean matchesAny(List<Glob> globs, String text) {
    if (text == null) return false;
    for (Glob g : globs) {
      if (g.matches(text)) return true;
    }
    return false;
  }

  /** The pattern as written. */
  public String pattern() {
    return pattern;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Glob g && pattern.equals(g.pattern);
  }

  @Override
  public int hashCode() {
    return pattern.hashCode();
  }

  @Override
  public String toString() {
    return pattern;
  }

  // ---------------------------------------------------------------------------------------------
  // Parsing: pattern text -> elements

  private enum Kind {
    /** One given code point. */
    LITERAL,
    /** {@code ?}: one code point other than '/'. */
    ONE,
    /** {@code [...]}: one code point of a class, never '/'. */
    CLASS,
    /** {@code *}: any run without '/'. */
    STAR,
    /** {@code **} not at segment boundaries: any run. */
    ANY,
    /** {@code **} then '/', at the start or after '/': zero or more whole segments. */
    SEGMENTS,
    /** A trailing '/' then {@code **}: nothing, or '/' and anything. */
    SLASH_ANY_OR_NOTHING
  }

  private record Element(Kind kind, int codePoint, CharClass charClass) {
    static Element of(Kind kind) {
      return new Element(kind, 0, null);
    }
  }

  private static final class Parser {
    private final String p;
    private final List<Element> out = new ArrayList<>();
    private int i;

    Parser(String pattern) {
      this.p = pattern;
    }

    List<Element> parse() {
      while (i < p.length()) {
        int cp = p.codePointAt(i);
        switch (cp) {
          case '\\' -> {
            if (i + 1 >= p.length()) throw invalid("ends with an escaping '\\'");
            int escaped = p.codePointAt(i + 1);
            out.add(new Element(Kind.LITERAL, escaped, null));
            i += 1 + Character.charCount(escaped);
          }
          case '*' -> stars();
          case '?' -> {
            out.add(Element.of(Kind.ONE));
            i++;
          }
          case '[' -> out.add(new Element(Kind.CLASS, 0, charClass()));
          case ']' -> throw invalid("']' without '['");
          case '{', '}' -> throw invalid("'{' and '}' are reserved; escape them as '\\{' '\\}'");
          default -> {
            out.add(new Element(Kind.LITERAL, cp, null));
            i += Character.charCount(cp);
          }
        }
      }
      return out;
    }

    private void stars() {
      int start = i;
      while (i < p.length() && p.charAt(i) == '*') i++;
      int run = i - start;
      if (run == 1) {
        out.add(Element.of(Kind.STAR));
        return;
      }
      if (run > 2) throw invalid("more than two '*' in a row");
      // The raw previous character is a real '/' here: an escaped "\/" is a literal '/' too,
      // and '/' can never appear inside a class.
      boolean afterBoundary = start == 0 || p.charAt(start - 1) == '/';
      boolean atEnd = i == p.length();
      if (afterBoundary && !atEnd && p.charAt(i) == '/') {
        out.add(Element.of(Kind.SEGMENTS));
        i++; // the '/' belongs to the optional segments
      } else if (atEnd && !out.isEmpty() && isSlash(out.get(out.size() - 1))) {
        out.remove(out.size() - 1); // the '/' becomes optional with what follows it
        out.add(Element.of(Kind.SLASH_ANY_OR_NOTHING));
      } else {
        out.add(Element.of(Kind.ANY));
      }
    }

    private static boolean isSlash(Element e) {
      return e.kind == Kind.LITERAL && e.codePoint == '/';
    }

    private CharClass charClass() {
      int open = i;
      i++; // '['
      boolean negated = false;
      if (i < p.length() && (p.charAt(i) == '!' || p.charAt(i) == '^')) {
        negated = true;
        i++;
      }
      List<int[]> ranges = new ArrayList<>();
      boolean first = true;
      while (true) {
        if (i >= p.length()) {
          i = open;
          throw invalid("unclosed '['");
        }
        int cp = p.codePointAt(i);
        if (cp == ']' && !first) {
          i++;
          break;
        }
        int lo = member();
        int hi = lo;
        if (i + 1 < p.length() && p.charAt(i) == '-' && p.charAt(i + 1) != ']') {
          i++; // '-'
          hi = member();
          if (hi < lo) {
            throw invalid(
                "range "
                    + new String(Character.toChars(lo))
                    + "-"
                    + new String(Character.toChars(hi))
                    + " is backwards");
          }
        }
        ranges.add(new int[] {lo, hi});
        first = false;
      }
      return new CharClass(negated, ranges.toArray(new int[0][]));
    }

    /** One class member at {@code i}, honouring '\' escapes; advances past it. */
    private int member() {
      int cp = p.codePointAt(i);
      if (cp == '\\') {
        if (i + 1 >= p.length()) throw invalid("ends with an escaping '\\'");
        i++;
        cp = p.codePointAt(i);
      }
      if (cp == '/') throw invalid("'/' cannot be in a character class");
      i += Character.charCount(cp);
      return cp;
    }

    private IllegalArgumentException invalid(String reason) {
      return new IllegalArgumentException("invalid glob " + PolicyText.quote(p) + ": " + reason);
    }
  }

  /** A bracket expression; never matches '/'. */
  private record CharClass(boolean negated, int[][] ranges) {
    boolean test(int cp) {
      if (cp == '/') return false;
      boolean in = false;
      for (int[] r : ranges) {
        if (cp >= r[0] && cp <= r[1]) {
          in = true;
          break;
        }
      }
      return in != negated;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Matching: a Thompson-style NFA run as a set of states, so no input can cause backtracking.

  /** What a transition accepts. */
  private interface Test {
    boolean accepts(int cp);
  }

  private static final Test ANY_CHAR = cp -> true;
  private static final Test NOT_SLASH = cp -> cp != '/';

  private static Test exactly(int expected) {
    return cp -> cp == expected;
  }

  private record Edge(Test test, int to) {}

  /**
   * Built once in {@link #build} and never changed after; it is published through the final
   * field {@link Glob#nfa}, which makes the non-final fields below safe to read from any thread.
   */
  private static final class Nfa {
    private final List<List<Edge>> edges = new ArrayList<>();
    private final List<List<Integer>> epsilons = new ArrayList<>();
    private BitSet[] closures;
    private int accept;

    private int state() {
      edges.add(new ArrayList<>());
      epsilons.add(new ArrayList<>());
      return edges.size() - 1;
    }

    private void edge(int from, Test test, int to) {
      edges.get(from).add(new Edge(test, to));
    }

    private void epsilon(int from, int to) {
      epsilons.get(from).add(to);
    }

    /**
     * Each element adds fresh states reached from the current one and leaves a fresh state as
     * the new current one; loops are only ever put on fresh states, so elements compose like
     * regular-expression concatenation.
     */
    static Nfa build(List<Element> elements) {
      Nfa n = new Nfa();
      int cur = n.state();
      for (Element e : elements) {
        int next = n.state();
        switch (e.kind) {
          case LITERAL -> n.edge(cur, exactly(e.codePoint), next);
          case ONE -> n.edge(cur, NOT_SLASH, next);
          case CLASS -> n.edge(cur, e.charClass::test, next);
          case STAR -> {
            n.epsilon(cur, next);
            n.edge(next, NOT_SLASH, next);
          }
          case ANY -> {
            n.epsilon(cur, next);
            n.edge(next, ANY_CHAR, next);
          }
          case SEGMENTS -> { // (.*/)?
            int inside = n.state();
            n.epsilon(cur, next);
            n.epsilon(cur, inside);
            n.edge(inside, ANY_CHAR, inside);
            n.edge(inside, exactly('/'), next);
          }
          case SLASH_ANY_OR_NOTHING -> { // (/.*)?
            int inside = n.state();
            n.epsilon(cur, next);
            n.edge(cur, exactly('/'), inside);
            n.edge(inside, ANY_CHAR, inside);
            n.epsilon(inside, next);
          }
        }
        cur = next;
      }
      n.accept = cur;
      n.closures = new BitSet[n.edges.size()];
      for (int s = 0; s < n.closures.length; s++) n.closures[s] = n.closure(s);
      return n;
    }

    private BitSet closure(int s) {
      BitSet seen = new BitSet(edges.size());
      List<Integer> todo = new ArrayList<>(List.of(s));
      while (!todo.isEmpty()) {
        int t = todo.remove(todo.size() - 1);
        if (seen.get(t)) continue;
        seen.set(t);
        todo.addAll(epsilons.get(t));
      }
      return seen;
    }

    boolean matches(String text) {
      BitSet current = (BitSet) closures[0].clone();
      BitSet next = new BitSet(closures.length);
      for (int i = 0; i < text.length(); ) {
        int cp = text.codePointAt(i);
        i += Character.charCount(cp);
        next.clear();
        for (int s = current.nextSetBit(0); s >= 0; s = current.nextSetBit(s + 1)) {
          for (Edge e : edges.get(s)) {
            if (e.test.accepts(cp)) next.or(closures[e.to]);
          }
        }
        if (next.isEmpty()) return false;
        BitSet swap = current;
        current = next;
        next = swap;
      }
      return current.get(accept);
    }
  }
}
