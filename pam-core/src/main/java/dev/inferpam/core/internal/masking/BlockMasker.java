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
 * <p>Overlaps are resolved deterministically: all matches of all detectors are sorted by start,
 * then by length (longest first), then by detector order; a match that overlaps one already
 * taken is dropped. So {@code 4111-1111-1111-1111} found by two detectors is masked once, by
 * the one that covers more.
 *
 * <p>{@link #open()} sessions <b>buffer the whole input until {@link Session#finish()}</b>:
 * {@code push} returns {@code ""}. This is correct but loses streaming; the streaming masker
 * (next) replaces it and holds back only {@link #maxHoldBack()} chars.
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

  /**
   * @param hashKey required (at least {@value #MIN_HASH_KEY_BYTES} bytes) for {@code HASH}, ignored otherwise
   * @throws IllegalArgumentException on a missing or short hash key, or two detectors of one name
   */
  public BlockMasker(List<Detector> detectors, MaskStrategy strategy, byte[] hashKey) {
    this.detectors = List.copyOf(detectors);
    this.strategy = Objects.requireNonNull(strategy, "strategy");
    if (strategy == MaskStrategy.HASH) {
      if (hashKey == null || hashKey.length < MIN_HASH_KEY_BYTES) {
        throw new IllegalArgumentException("masking hash key must be at least " + MIN_HASH_KEY_BYTES + " bytes");
      }
      this.hashKey = hashKey.clone();
    } else {
      this.hashKey = null;
    }
    List<String> names = new ArrayList<>();
    int hold = 0;
    for (Detector d : this.detectors) {
      if (names.contains(d.name())) throw new IllegalArgumentException("two detectors named \"" + d.name() + "\"");
      names.add(d.name());
      hold = Math.max(hold, d.maxMatchLength());
    }
    this.maxHoldBack = hold;
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
    for (Policy.CustomPattern c : masking.custom()) detectors.add(CustomPatterns.detector(c.name(), c.pattern()));
    for (Policy.WordList w : masking.words()) detectors.add(new WordListDetector(w.name(), w.list(), w.ignoreCase()));
    byte[] key = null;
    if (masking.strategy() == MaskStrategy.HASH) {
      String text;
      String source;
      if (masking.hashKeyFromEnv() != null) {
        source = "environment variable " + masking.hashKeyFromEnv();
        text = env.apply(masking.hashKeyFromEnv());
        if (text == null) throw new IllegalArgumentException("masking hash key: " + source + " is not set");
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
        throw new IllegalArgumentException("masking hash key in " + source + " must be at least "
            + MIN_HASH_KEY_BYTES + " bytes");
      }
    }
    return new BlockMasker(detectors, masking.strategy(), key);
  }

  /** The longest match any detector can produce: what a streaming masker must hold back. */
  public int maxHoldBack() {
    return maxHoldBack;
  }

  /** The detectors, in resolution order. */
  public List<Detector> detectors() {
    return detectors;
  }

  @Override
  public Session open() {
    return new BufferingSession();
  }

  @Override
  public String mask(String text) {
    return mask(text, new Replacements(strategy, hashKey), new LinkedHashMap<>());
  }

  /** All matches of all detectors, overlaps resolved, in ascending order. */
  public List<Match> matches(CharSequence text) {
    List<Match> all = new ArrayList<>();
    for (Detector d : detectors) d.find(text, all::add);
    Map<String, Integer> order = new LinkedHashMap<>();
    for (int i = 0; i < detectors.size(); i++) order.put(detectors.get(i).name(), i);
    all.sort(Comparator.comparingInt(Match::start)
        .thenComparing(Comparator.comparingInt(Match::length).reversed())
        .thenComparingInt(m -> order.getOrDefault(m.detector(), Integer.MAX_VALUE)));
    List<Match> kept = new ArrayList<>();
    int taken = 0;
    for (Match m : all) {
      if (m.start() >= taken) {
        kept.add(m);
        taken = m.end();
      }
    }
    return kept;
  }

  private String mask(String text, Replacements replacements, Map<String, Integer> counts) {
    List<Match> matches = matches(text);
    if (matches.isEmpty()) return text;
    StringBuilder out = new StringBuilder(text.length());
    int at = 0;
    for (Match m : matches) {
      out.append(text, at, m.start());
      out.append(replacements.replace(m.detector(), text.substring(m.start(), m.end())));
      counts.merge(m.detector(), 1, Integer::sum);
      at = m.end();
    }
    out.append(text, at, text.length());
    return out.toString();
  }

  @Override
  public String toString() {
    return "BlockMasker" + detectors.stream().map(Detector::name).toList() + " " + strategy.name().toLowerCase(java.util.Locale.ROOT);
  }

  /** Buffers everything; masks on finish. One response, one thread at a time. */
  private final class BufferingSession implements Session {
    private final StringBuilder buffer = new StringBuilder();
    private final Map<String, Integer> counts = new LinkedHashMap<>();
    private final Replacements replacements = new Replacements(strategy, hashKey);

    @Override
    public String push(String text) {
      buffer.append(text);
      return "";
    }

    @Override
    public String finish() {
      String whole = buffer.toString();
      buffer.setLength(0);
      return mask(whole, replacements, counts);
    }

    @Override
    public Map<String, Integer> counts() {
      return Collections.unmodifiableMap(new LinkedHashMap<>(counts));
    }
  }
}
