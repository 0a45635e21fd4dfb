package dev.inferpam.core.internal.masking;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * The built-in detectors, by policy name. Stateless and thread-safe.
 *
 * <p>Rules a user may need to know (also in docs/policy.md, "Masking"):
 * <ul>
 *   <li>{@code email}: local part of {@code A-Z a-z 0-9 . _ % + -} (1..64, no leading, trailing
 *       or doubled dot; a longer or malformed local part is not matched at all), {@code @}, a domain of at least two labels whose last label is 2+
 *       letters ({@code a@b} and {@code a@b.c} are not emails). Trailing dots (end of a sentence)
 *       are not part of the value.</li>
 *   <li>{@code phone}: E.164 ({@code +}, 8..15 digits, single spaces/dots/dashes/slashes
 *       between digits, or none) and North American numbers {@code (415) 555-2671},
 *       {@code 415-555-2671}, {@code 415.555.2671}, optionally prefixed {@code 1-}/{@code +1 };
 *       area code and exchange start with 2..9. Other North American spellings
 *       ({@code 415/555-2671}, {@code 415 555 2671}, mixed separators, and the bare
 *       {@code 4155552671} or {@code 14155552671}) only when the numbering plan holds: an area
 *       code of the assigned form (2..9, no {@code N11}, no 9 in the middle) and an exchange
 *       that is not {@code N11}. Not when glued to letters or to a longer digit run
 *       ({@code 1-415-555-2671-9}, {@code 12.4155552671}), so version strings, order numbers,
 *       timestamps ({@code 1700000000} starts with 1) and dates stay. National formats of other
 *       countries are found in their {@code +} form only.</li>
 *   <li>{@code us-ssn}: {@code AAA-GG-SSSS} with dashes required (nine bare digits are too often
 *       something else); area 000, 666 and 900..999, group 00 and serial 0000 are never issued
 *       and not matched.</li>
 *   <li>{@code ipv4}: dotted quad, each part 0..255 without leading zeros; not inside a longer
 *       dotted run ({@code 1.2.3.4.5}), not glued to a letter, digit, {@code _} or dot (so
 *       {@code v1.2.3.4} stays), and not after the word {@code version}/{@code ver} (optionally
 *       followed by {@code :}, {@code =} or spaces). This look-back reaches up to 11 chars before the
 *       value, the one exception to "one char of context" in {@link Detector}.</li>
 *   <li>{@code aws-access-key}: {@code AKIA ASIA AGPA AIDA AROA ANPA ANVA AIPA} + 16 of
 *       {@code A-Z 2-7}, not glued to letters or digits.</li>
 * </ul>
 * The others are documented on their classes ({@link CreditCardDetector}, {@link IbanDetector},
 * {@link Ipv6Detector}, {@link JwtDetector}, {@link PrivateKeyDetector}).
 */
public final class Detectors {
  private Detectors() {}

  private static final Map<String, Supplier<Detector>> BUILT_IN = new LinkedHashMap<>();

  static {
    BUILT_IN.put("email", Email::new);
    BUILT_IN.put("phone", Phone::new);
    BUILT_IN.put("credit-card", CreditCardDetector::new);
    BUILT_IN.put("us-ssn", Ssn::new);
    BUILT_IN.put("iban", IbanDetector::new);
    BUILT_IN.put("ipv4", Ipv4::new);
    BUILT_IN.put("ipv6", Ipv6Detector::new);
    BUILT_IN.put("aws-access-key", AwsAccessKey::new);
    BUILT_IN.put("jwt", JwtDetector::new);
    BUILT_IN.put("private-key", PrivateKeyDetector::new);
  }

  /** Names of the built-in detectors, in documentation order. */
  public static final List<String> NAMES = List.copyOf(BUILT_IN.keySet());

  /**
   * The built-in detector called {@code name}.
   *
   * @throws IllegalArgumentException naming the known detectors when {@code name} is not one
   */
  public static Detector builtIn(String name) {
    Supplier<Detector> s = BUILT_IN.get(name);
    if (s == null) {
      throw new IllegalArgumentException(
          "unknown detector \"" + name + "\" (known: " + String.join(", ", NAMES) + ")");
    }
    return s.get();
  }

  /** All built-in detectors, in documentation order. */
  public static List<Detector> all() {
    return NAMES.stream().map(Detectors::builtIn).toList();
  }

  // ---------------------------------------------------------------------------------------------

  static final class Email extends RegexDetector {
    // Local part and domain are bounded (64 / 253), so one attempt is bounded; validation is below.
    private static final Pattern P = Pattern.compile("[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}");
    private static final String LOCAL =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-";

    Email() {
      super("email", P, 64 + 1 + 253, c -> c == '@' || LOCAL.indexOf(c) >= 0);
    }

    private static final Alphabet LOCAL_CHARS = Alphabet.ascii(c -> LOCAL.indexOf(c) >= 0);

    // Every match holds an '@' and starts where the run of local-part chars before it begins (at
    // most 64 back): the leftmost start any search would find, so the pattern is tried there only.
    @Override
    IndexedText.Positions starts(IndexedText t) {
      IndexedText.Positions ats = t.ats();
      if (ats.count() == 0) return ats;
      int[] starts = new int[ats.count()];
      for (int k = 0; k < ats.count(); k++) {
        int a = ats.get(k);
        int s = a;
        while (s > t.from() && s > a - 64 && LOCAL_CHARS.contains(t.charAt(s - 1))) s--;
        starts[k] = s;
      }
      return new IndexedText.Positions(starts, starts.length);
    }

    @Override
    int[] accept(CharSequence text, int start, int end) {
      // Glued to a local-part char: the regex started mid-run (an over-long or malformed local
      // part such as "john..doe"); a tail of it is not an address. Dots right before the start
      // are looked through: a scan from the start of the run strips them as punctuation
      // (".john@"), so a scan that starts after them (a stream's release point) must accept the
      // same address.
      int glued = start;
      while (glued > 0 && text.charAt(glued - 1) == '.') glued--;
      if (glued > 0 && LOCAL.indexOf(text.charAt(glued - 1)) >= 0) return null;
      int at = start;
      while (text.charAt(at) != '@') at++;
      while (start < at && text.charAt(start) == '.') start++; // ".john@" : the dot is punctuation
      if (start == at || text.charAt(at - 1) == '.') return null;
      for (int i = start + 1; i < at; i++) {
        if (text.charAt(i) == '.' && text.charAt(i - 1) == '.') return null;
      }
      // "mail a@b.com." : the last dot ends the sentence
      while (end > at + 1 && (text.charAt(end - 1) == '.' || text.charAt(end - 1) == '-')) end--;
      String domain = text.subSequence(at + 1, end).toString();
      String[] labels = domain.split("\\.", -1);
      if (labels.length < 2) return null;
      for (String label : labels) {
        if (label.isEmpty() || label.length() > 63 || label.startsWith("-") || label.endsWith("-"))
          return null;
      }
      String tld = labels[labels.length - 1];
      if (tld.length() < 2) return null;
      for (int i = 0; i < tld.length(); i++) {
        if (!Character.isLetter(tld.charAt(i))) return null;
      }
      return new int[] {start, end};
    }
  }

  static final class Phone extends RegexDetector {
    /** A NANP area code as assigned: {@code [2-9]}, not {@code N11}, no {@code 9} in the middle. */
    private static final String NPA = "(?![2-9]11)[2-9][0-8][0-9]";

    /** A NANP exchange code: {@code [2-9]}, not {@code N11}. */
    private static final String NXX = "(?![2-9]11)[2-9][0-9]{2}";

    private static final Pattern P =
        Pattern.compile(
            "(?<![A-Za-z0-9_+])(?<![0-9][./-])"
                + "(?:\\+[1-9](?:[ ./-]?[0-9]){7,14}"
                + "|(?:\\+?1[ ./-]?)?(?:\\([2-9][0-9]{2}\\) ?[2-9][0-9]{2}[-. /][0-9]{4}"
                + "|[2-9][0-9]{2}-[2-9][0-9]{2}-[0-9]{4}"
                + "|[2-9][0-9]{2}\\.[2-9][0-9]{2}\\.[0-9]{4}"
                + "|"
                + NPA
                + "[ ./-]"
                + NXX
                + "[ ./-][0-9]{4}"
                + "|"
                + NPA
                + NXX
                + "[0-9]{4}))"
                + "(?![0-9A-Za-z_]|[./-][0-9])");

    Phone() {
      // '+', 15 digits, a separator between each
      super("phone", P, 1 + 15 + 14, c -> isDigit(c) || " ./-()+".indexOf(c) >= 0);
    }

    @Override
    IndexedText.Positions starts(IndexedText t) {
      return t.phoneStarts();
    }
  }

  static final class Ssn extends RegexDetector {
    private static final Pattern P =
        Pattern.compile(
            "(?<![0-9A-Za-z_])(?<![0-9]-)(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}"
                + "(?![0-9A-Za-z_]|-[0-9])");

    Ssn() {
      super("us-ssn", P, 11, c -> isDigit(c) || c == '-');
    }

    @Override
    IndexedText.Positions starts(IndexedText t) {
      return t.digitRuns();
    }
  }

  static final class Ipv4 extends RegexDetector {
    private static final String OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    private static final Pattern P =
        Pattern.compile(
            "(?<![A-Za-z0-9_.])" + OCTET + "(?:\\." + OCTET + "){3}(?![0-9A-Za-z_]|\\.[0-9])");

    Ipv4() {
      super("ipv4", P, 15, c -> isDigit(c) || c == '.');
    }

    @Override
    IndexedText.Positions starts(IndexedText t) {
      return t.digitRuns();
    }

    @Override
    int[] accept(CharSequence text, int start, int end) {
      // "version 1.2.3.4", "ver: 1.2.3.4": look back over at most a few separators and one word.
      int i = start;
      int seps = 0;
      while (i > 0 && seps < 3 && " :=".indexOf(text.charAt(i - 1)) >= 0) {
        i--;
        seps++;
      }
      int wordEnd = i;
      while (i > 0 && wordEnd - i < 8 && Character.isLetter(text.charAt(i - 1))) i--;
      if (i > 0 && Character.isLetter(text.charAt(i - 1)))
        return new int[] {start, end}; // a longer word
      String word = text.subSequence(i, wordEnd).toString().toLowerCase(Locale.ROOT);
      if (word.equals("version") || word.equals("ver") || word.equals("v")) return null;
      return new int[] {start, end};
    }
  }

  static final class AwsAccessKey extends RegexDetector {
    private static final Pattern P =
        Pattern.compile(
            "(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z2-7]{16}(?![A-Za-z0-9])");

    AwsAccessKey() {
      super("aws-access-key", P, 20, c -> (c >= 'A' && c <= 'Z') || isDigit(c));
    }

    @Override
    IndexedText.Positions starts(IndexedText t) {
      return t.upperPairs();
    }
  }
}
