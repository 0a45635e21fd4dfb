package dev.inferpam.core.internal.masking;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Policy.MaskStrategy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * Masks a whole text at once with a set of {@link Detector}s and a {@link MaskStrategy}.
 *
 * <p>Detectors read the text {@linkplain Fold folded} (compatibility forms such as fullwidth
 * digits as ASCII, other Unicode digits as ASCII digits, Unicode dashes as {@code -}), char for
 * char, so a match is the same span of the original, which is what gets replaced; the
 * replacement is made from the folded value (a pseudonym does not depend on the spelling).
 *
 * <p>Overlaps are resolved deterministically: all matches of all detectors are sorted by start,
 * then by length (longest first), then by detector order; a match that overlaps the one taken
 * before it extends it (masked as one value, under the first one's label). So
 * {@code 4111-1111-1111-1111} found by two detectors is masked once, by the one that covers more,
 * and {@code fe80::1 (415) 555-2671}, where a phone number seems to start at the address's last
 * digit, is masked whole rather than leaving the phone number out.
 *
 * <p>{@link #open()} sessions stream: each {@code push} releases, masked, all text up to the first
 * position whose masking could still change with more text (typically the last partial word),
 * and {@code finish} releases the rest. Whatever the split, the concatenated output equals
 * {@link #mask(String)} of the whole text; see {@link StreamingSession} for how, and for the one
 * documented exception (a hold-back overflow).
 *
 * <p><b>Thread-safety:</b> immutable and safe to share; each session is for one thread at a
 * time. Bad input: none; any text is masked. The hash key is never in {@link #toString()}.
 */
public final class BlockMasker implements Masker {
  /** A hash key shorter than this is refused: a short HMAC key makes pseudonyms guessable. */
  public static final int MIN_HASH_KEY_BYTES = 16;

  private final List<Detector> detectors;
  private final MaskStrategy strategy;
  private final byte[] hashKey;
  private final int maxHoldBack;
  private final Map<String, Integer> order = new LinkedHashMap<>();
  private final Comparator<Match> matchOrder =
      Comparator.comparingInt(Match::start)
          .thenComparing(Comparator.comparingInt(Match::length).reversed())
          .thenComparingInt(m -> order.getOrDefault(m.detector(), Integer.MAX_VALUE));
  private final Undecided undecided;

  /** Every detector finds matches only at indexed candidates: a quiet text needs no scan. */
  private final boolean allIndexed;

  /**
   * A masker holding back as much as its detectors need ({@link #requiredHoldBack}).
   *
   * @param hashKey required (at least {@value #MIN_HASH_KEY_BYTES} bytes) for {@code HASH}, ignored otherwise
   * @throws IllegalArgumentException on a missing or short hash key, or two detectors of one name
   */
  public BlockMasker(List<Detector> detectors, MaskStrategy strategy, byte[] hashKey) {
    this(detectors, strategy, hashKey, requiredHoldBack(detectors));
  }

  /**
   * @param maxHoldBack most chars a streaming session holds back ({@code masking.max-hold-back})
   * @throws IllegalArgumentException also when {@code maxHoldBack} is below what a detector needs,
   *     naming the detector
   */
  public BlockMasker(
      List<Detector> detectors, MaskStrategy strategy, byte[] hashKey, int maxHoldBack) {
    this.detectors = List.copyOf(detectors);
    this.strategy = Objects.requireNonNull(strategy, "strategy");
    if (strategy == MaskStrategy.HASH) {
      if (hashKey == null || hashKey.length < MIN_HASH_KEY_BYTES) {
        throw new IllegalArgumentException(
            "masking hash key must be at least " + MIN_HASH_KEY_BYTES + " bytes");
      }
      this.hashKey = hashKey.clone();
    } else {
      this.hashKey = null;
    }
    for (Detector d : this.detectors) {
      if (order.containsKey(d.name()))
        throw new IllegalArgumentException("two detectors named \"" + d.name() + "\"");
      order.put(d.name(), order.size());
      if (d.holdBack() > maxHoldBack) {
        throw new IllegalArgumentException(
            "max-hold-back "
                + maxHoldBack
                + " is too small: detector "
                + d.name()
                + " needs "
                + d.holdBack()
                + " chars");
      }
    }
    this.maxHoldBack = maxHoldBack;
    this.undecided = new Undecided(this.detectors);
    this.allIndexed = this.detectors.stream().allMatch(Detector::indexed);
  }

  /** The hold-back the detectors need: the largest {@link Detector#holdBack()}, 0 for none. */
  public static int requiredHoldBack(List<Detector> detectors) {
    int hold = 0;
    for (Detector d : detectors) hold = Math.max(hold, d.holdBack());
    return hold;
  }

  /**
   * A masker for a loaded {@code masking} section. A key from {@code hash-key-from-env} is looked
   * up with {@code env} (e.g. {@code System::getenv}); one from {@code hash-key-from-file} is
   * read now, surrounding whitespace stripped. The key is read once: rotating it needs a new
   * masker (and changes every pseudonym).
   *
   * @throws IllegalArgumentException naming the variable or file (never the key) when the key is
   *     missing, unreadable or too short, or when a custom pattern fails its check
   */
  public static BlockMasker from(Policy.Masking masking, Function<String, String> env) {
    Objects.requireNonNull(masking, "masking");
    Objects.requireNonNull(env, "env");
    List<Detector> detectors = new ArrayList<>();
    for (String name : masking.detectors()) detectors.add(Detectors.builtIn(name));
    for (Policy.CustomPattern c : masking.custom())
      detectors.add(CustomPatterns.detector(c.name(), c.pattern()));
    for (Policy.WordList w : masking.words())
      detectors.add(new WordListDetector(w.name(), w.list(), w.ignoreCase()));
    byte[] key = null;
    if (masking.strategy() == MaskStrategy.HASH) {
      String text;
      String source;
      if (masking.hashKeyFromEnv() != null) {
        source = "environment variable " + masking.hashKeyFromEnv();
        text = env.apply(masking.hashKeyFromEnv());
        if (text == null)
          throw new IllegalArgumentException("masking hash key: " + source + " is not set");
      } else {
        source = "file " + masking.hashKeyFromFile();
        try {
          text = Files.readString(masking.hashKeyFromFile(), StandardCharsets.UTF_8);
        } catch (IOException e) {
          throw new IllegalArgumentException("masking hash key: cannot read " + source, e);
        }
      }
      key = text.strip().getBytes(StandardCharsets.UTF_8);
      if (key.length < MIN_HASH_KEY_BYTES) {
        throw new IllegalArgumentException(
            "masking hash key in " + source + " must be at least " + MIN_HASH_KEY_BYTES + " bytes");
      }
    }
    return new BlockMasker(detectors, masking.strategy(), key, masking.maxHoldBack());
  }

  /** Most chars a streaming session holds back (at least what every detector needs). */
  public int maxHoldBack() {
    return maxHoldBack;
  }

  /** The detectors, in resolution order. */
  public List<Detector> detectors() {
    return detectors;
  }

  @Override
  public Session open() {
    return new StreamingSession();
  }

  @Override
  public String mask(String text) {
    return mask(text, new Replacements(strategy, hashKey), new LinkedHashMap<>());
  }

  /**
   * {@link #mask(String)} of a whole text, adding one per masked value to {@code counts} (by
   * detector name): what a session given the text in one push would release and count, without
   * the session's streaming work.
   */
  public String mask(String text, Map<String, Integer> counts) {
    return mask(text, new Replacements(strategy, hashKey), counts);
  }

  /**
   * All matches of all detectors, overlaps resolved, in ascending order; detectors read the text
   * {@linkplain Fold folded} (spans are the same in the original).
   */
  public List<Match> matches(CharSequence text) {
    if (surelyQuiet(text)) return List.of();
    return resolve(raw(Fold.of(text), 0), text.length());
  }

  /**
   * True when no detector can match in {@code text} without looking further: every detector is a
   * built-in one (they start only at the candidates of {@link IndexedText}) and the text holds
   * only lower-case ASCII letters, {@code _ - .} and spaces, where no candidate is. What most
   * JSON keys and structural values are; a quick walk, no allocation.
   */
  private boolean surelyQuiet(CharSequence text) {
    if (!allIndexed) return false;
    for (int i = 0, n = text.length(); i < n; i++) {
      char c = text.charAt(i);
      if ((c < 'a' || c > 'z') && c != '_' && c != '-' && c != '.' && c != ' ') return false;
    }
    return true;
  }

  /**
   * Whether no detector can match in a text of only lower-case ASCII letters, {@code _ - .} and
   * spaces: every detector is a built-in one (see {@link #surelyQuiet(CharSequence)}).
   */
  boolean quietInQuietSet() {
    return allIndexed;
  }

  /**
   * {@link #surelyQuiet(CharSequence)} of the bytes {@code b[from, to)} read as UTF-8, without
   * decoding them: any byte outside the quiet ASCII set answers {@code false}.
   */
  boolean surelyQuiet(byte[] b, int from, int to) {
    if (!allIndexed) return false;
    for (int i = from; i < to; i++) {
      byte c = b[i];
      if ((c < 'a' || c > 'z') && c != '_' && c != '-' && c != '.' && c != ' ') return false;
    }
    return true;
  }

  /** Every detector's matches starting at or after {@code from}, sorted for {@link #resolve}. */
  private List<Match> raw(CharSequence text, int from) {
    List<Match> all = new ArrayList<>();
    IndexedText indexed = IndexedText.of(text, from); // one pass finds every detector's candidates
    if (allIndexed && indexed.quiet()) return all;
    java.util.function.Consumer<Match> sink = all::add;
    for (Detector d : detectors) d.find(indexed, from, sink);
    if (all.size() > 1) {
      all.sort(matchOrder);
    }
    return all;
  }

  /**
   * Overlaps resolved: in sorted order (start, longest, detector order), a match that starts at or
   * after the end of the last kept one is kept; one that overlaps it extends it, so no matched char
   * is ever left unmasked (the joined span is masked as one value, labelled and counted by the
   * first). Only matches starting before {@code limit} are considered.
   */
  private static List<Match> resolve(List<Match> sorted, int limit) {
    if (sorted.isEmpty()) return List.of();
    List<Match> kept = new ArrayList<>();
    Match last = null;
    for (Match m : sorted) {
      if (m.start() >= limit) break;
      if (last == null || m.start() >= last.end()) {
        last = m;
        kept.add(m);
      } else if (m.end() > last.end()) {
        last = new Match(last.start(), m.end(), last.detector());
        kept.set(kept.size() - 1, last);
      }
    }
    return kept;
  }

  private String mask(String text, Replacements replacements, Map<String, Integer> counts) {
    if (surelyQuiet(text)) return text;
    CharSequence folded = Fold.of(text);
    List<Match> matches = resolve(raw(folded, 0), text.length());
    if (matches.isEmpty()) return text;
    StringBuilder out = new StringBuilder(text.length());
    append(out, text, folded, 0, text.length(), matches, replacements, counts);
    return out.toString();
  }

  /**
   * Appends {@code text[from, to)} with {@code kept} (all inside it) replaced; a replacement is
   * made from the {@code folded} value, so a pseudonym does not depend on the spelling.
   */
  private static void append(
      StringBuilder out,
      CharSequence text,
      CharSequence folded,
      int from,
      int to,
      List<Match> kept,
      Replacements replacements,
      Map<String, Integer> counts) {
    int at = from;
    for (Match m : kept) {
      out.append(text, at, m.start());
      out.append(
          replacements.replace(m.detector(), folded.subSequence(m.start(), m.end()).toString()));
      counts.merge(m.detector(), 1, Integer::sum);
      at = m.end();
    }
    out.append(text, at, to);
  }

  @Override
  public String toString() {
    return "BlockMasker"
        + detectors.stream().map(Detector::name).toList()
        + " "
        + strategy.name().toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * Masks one streamed text. The unreleased text is kept with {@link Detector#CONTEXT} chars
   * before it; each {@code push} rescans only that window:
   * <ol>
   *   <li>every detector scans from the release point {@code r} (the chars before it are context);</li>
   *   <li>{@code u} = the first position any detector may still decide differently given more
   *       text ({@link Detector#undecidedFrom}), and the start of any match that touches the end;</li>
   *   <li>the cut {@code c} = {@code u}, moved back to the start of any match that spans it, so no
   *       match of any detector crosses {@code c};</li>
   *   <li>{@code [r, c)} is released, masked with the overlap-resolved matches inside it; {@code c}
   *       becomes the new release point.</li>
   * </ol>
   * Why this equals masking the whole text: every match starting before {@code c} is final (its
   * decision read only known text), greedy overlap resolution before {@code c} only depends on
   * those, and since no match crosses {@code c}, each detector's scan from {@code c} finds exactly
   * what a whole-text scan finds from there (the {@link Detector} contract).
   *
   * <p>Hold-back overflow: when matches of different detectors overlap in a chain longer than
   * {@link #maxHoldBack()}, the cut is forced at {@code u} (extended to the end of a kept match
   * spanning it, so that value is still masked whole). Only such chains, which prose does not
   * produce, can make the stream differ from the block result. One response, one thread at a time.
   */
  private final class StreamingSession implements Session {
    /** The unreleased text (and context), {@linkplain Fold folded}: what detectors read. */
    private final StringBuilder buf = new StringBuilder();

    /** The same chars as they came, once one of them folded; {@code null} while equal to {@code buf}. */
    private StringBuilder original;

    private final Map<String, Integer> counts = new LinkedHashMap<>();
    private final Replacements replacements = new Replacements(strategy, hashKey);

    /** Release point in {@code buf}: everything before it was released (or is context). */
    private int released;

    @Override
    public String push(String text) {
      if (text.isEmpty()) return "";
      CharSequence folded = Fold.of(text);
      if (folded != text && original == null) original = new StringBuilder(buf);
      buf.append(folded);
      if (original != null) original.append(text);
      return advance(false);
    }

    @Override
    public String finish() {
      return advance(true);
    }

    private String advance(boolean end) {
      int n = buf.length();
      if (released >= n) return "";
      // Nothing before the undecided point decided yet means nothing to release.
      int u = end ? n : undecided.from(buf, released);
      if (u <= released) return "";
      // With only alphabet detectors, what is undecided needs no scan. A detector without one
      // (a custom pattern) can put u inside another detector's final match, which a scan cut at u
      // would not see, releasing half of the value unmasked: scan to the end, then back off.
      IndexedText text = IndexedText.of(buf, released, undecided.others.isEmpty() ? u : n);
      List<Match> raw = raw(text, released);
      int cut = n;
      if (!end) {
        for (Match m : raw) {
          if (m.start() >= u) break;
          if (m.end() + Detector.LOOKAHEAD > n) u = m.start();
        }
        cut = backOff(raw, u);
        if (n - cut > maxHoldBack) cut = forced(raw, u);
        if (cut <= released) return "";
      }
      List<Match> kept = resolve(raw, cut);
      StringBuilder given = original != null ? original : buf;
      String out;
      if (kept.isEmpty()) {
        out = given.substring(released, cut);
      } else {
        StringBuilder masked = new StringBuilder(cut - released + 16);
        append(masked, given, buf, released, cut, kept, replacements, counts);
        out = masked.toString();
      }
      released = cut;
      if (released > 2 * Detector.CONTEXT) {
        buf.delete(0, released - Detector.CONTEXT);
        if (original != null) original.delete(0, released - Detector.CONTEXT);
        released = Detector.CONTEXT;
      }
      return out;
    }

    /**
     * The largest position at or before {@code u} that no match crosses: the matches (sorted by
     * start) are merged into runs of overlapping spans; if {@code u} lies strictly inside a run,
     * the run's start.
     */
    private int backOff(List<Match> raw, int u) {
      int runStart = -1;
      int runEnd = -1;
      for (Match m : raw) {
        if (m.start() >= u) break;
        if (m.start() < runEnd) {
          runEnd = Math.max(runEnd, m.end());
        } else {
          runStart = m.start();
          runEnd = m.end();
        }
      }
      return runEnd > u ? runStart : u;
    }

    /** Cut at {@code u}, or after the kept match spanning it. */
    private int forced(List<Match> raw, int u) {
      int cut = u;
      for (Match m : resolve(raw, u)) {
        if (m.end() > cut) cut = m.end();
      }
      return cut;
    }

    @Override
    public Map<String, Integer> counts() {
      return Collections.unmodifiableMap(new LinkedHashMap<>(counts));
    }
  }

  /**
   * The smallest {@link Detector#undecidedFrom} of all detectors, computed in one backward walk for
   * those with an {@link Detector#alphabet()} (a bit per detector per ASCII char), so a push does
   * not walk the tail once per detector. Same result as asking each. Immutable.
   */
  private static final class Undecided {
    private final long[] in = new long[128];
    private final int[] bound;
    private final long withAlphabet;
    private final int maxBound;
    private final List<Detector> others = new ArrayList<>();

    Undecided(List<Detector> detectors) {
      bound = new int[Math.min(64, detectors.size())];
      long mask = 0;
      int max = 0;
      for (int d = 0; d < detectors.size(); d++) {
        Detector det = detectors.get(d);
        Detector.Alphabet a = det.alphabet();
        if (a == null || d >= 64) {
          others.add(det);
          continue;
        }
        mask |= 1L << d;
        bound[d] = det.runBound();
        max = Math.max(max, bound[d]);
        for (char c = 0; c < 128; c++) {
          if (a.contains(c)) in[c] |= 1L << d;
        }
        for (char c = 128; c < 1024; c++) {
          if (a.contains(c))
            throw new IllegalArgumentException("alphabet of " + det.name() + " is not ASCII");
        }
      }
      withAlphabet = mask;
      maxBound = max;
    }

    int from(CharSequence text, int from) {
      int n = text.length();
      int u = n;
      for (Detector d : others) u = Math.min(u, d.undecidedFrom(text, from));
      long alive = withAlphabet;
      int i = n;
      int stop = Math.max(from, n - maxBound);
      while (alive != 0 && i > stop) {
        char c = text.charAt(i - 1);
        long dying = alive & ~(c < 128 ? in[c] : 0L);
        while (dying != 0) {
          int d = Long.numberOfTrailingZeros(dying);
          dying &= dying - 1;
          u = Math.min(u, Math.max(i, Math.max(from, n - bound[d])));
        }
        alive &= c < 128 ? in[c] : 0L;
        i--;
      }
      while (alive != 0) {
        int d = Long.numberOfTrailingZeros(alive);
        alive &= alive - 1;
        u = Math.min(u, Math.max(from, n - bound[d]));
      }
      return u;
    }
  }
}
