package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.choice;
import static dev.inferpam.core.internal.policy.PolicyNodes.envVarName;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.filePath;
import static dev.inferpam.core.internal.policy.PolicyNodes.index;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.list;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.nonEmpty;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.size;
import static dev.inferpam.core.internal.policy.PolicyNodes.strings;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The {@code masking} section, as {@link #read} describes. Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class MaskingSection {
  /** Names of custom patterns and word lists: they become labels such as {@code [EMPLOYEE_ID]}. */
  private static final Pattern MASK_NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}");

  private MaskingSection() {}

  /**
   * {@code masking}: {@code detectors} (built-in names; absent means all of them, {@code []}
   * none), {@code custom} (list of {@code {name, pattern}}, each pattern checked by
   * {@link dev.inferpam.core.internal.masking.CustomPatterns#check}), {@code words} (list of
   * {@code {name, list, ignore-case}}), {@code strategy} ({@code redact | partial | hash}),
   * {@code hash-key-from-env} / {@code hash-key-from-file} (exactly one with {@code hash}, neither
   * otherwise) and {@code exempt-groups}. Names of custom patterns and word lists are lower-case
   * {@code a-z 0-9 -}, unique, and not a built-in name.
   */
  static Policy.Masking read(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "detectors",
            "custom",
            "words",
            "strategy",
            "hash-key-from-env",
            "hash-key-from-file",
            "exempt-groups",
            "max-hold-back"),
        Set.of());
    List<String> known = dev.inferpam.core.internal.masking.Detectors.NAMES;
    List<String> detectors = known;
    if (n.has("detectors")) {
      String p = child(path, "detectors");
      List<String> names = strings(n.get("detectors"), p, false);
      for (int i = 0; i < names.size(); i++) {
        if (!known.contains(names.get(i))) {
          throw fail(
              index(p, i),
              "unknown detector "
                  + PolicyText.quote(names.get(i))
                  + " (known: "
                  + String.join(", ", known)
                  + ")");
        }
      }
      detectors = List.copyOf(new LinkedHashSet<>(names));
    }
    Map<String, String> names = new HashMap<>();
    List<Policy.CustomPattern> custom = new ArrayList<>();
    if (n.has("custom")) {
      String listPath = child(path, "custom");
      JsonNode list = list(n.get("custom"), listPath, "a list of patterns");
      for (int i = 0; i < list.size(); i++) {
        String p = index(listPath, i);
        JsonNode c = list.get(i);
        mapping(c, p);
        keys(c, p, Set.of("name", "pattern"), Set.of());
        String name = maskName(required(c, p, "name"), child(p, "name"), names, known);
        String patternPath = child(p, "pattern");
        String pattern = nonEmpty(required(c, p, "pattern"), patternPath);
        try {
          dev.inferpam.core.internal.masking.CustomPatterns.check(pattern);
        } catch (IllegalArgumentException e) {
          throw fail(patternPath, e.getMessage() + ", was " + PolicyText.quote(pattern));
        }
        custom.add(new Policy.CustomPattern(name, pattern));
      }
    }
    List<Policy.WordList> words = new ArrayList<>();
    if (n.has("words")) {
      String listPath = child(path, "words");
      JsonNode list = list(n.get("words"), listPath, "a list of word lists");
      for (int i = 0; i < list.size(); i++) {
        String p = index(listPath, i);
        JsonNode w = list.get(i);
        mapping(w, p);
        keys(w, p, Set.of("name", "list", "ignore-case"), Set.of());
        String name = maskName(required(w, p, "name"), child(p, "name"), names, known);
        List<String> entries = strings(required(w, p, "list"), child(p, "list"), true);
        boolean ignoreCase = false;
        if (w.has("ignore-case")) {
          JsonNode b = w.get("ignore-case");
          if (!b.isBoolean())
            throw fail(
                child(p, "ignore-case"), "expected true or false, was " + PolicyText.describe(b));
          ignoreCase = b.booleanValue();
        }
        words.add(new Policy.WordList(name, entries, ignoreCase));
      }
    }
    Policy.MaskStrategy strategy = Policy.MaskStrategy.REDACT;
    if (n.has("strategy"))
      strategy = choice(n.get("strategy"), child(path, "strategy"), Policy.MaskStrategy.class);
    String keyEnv = null;
    java.nio.file.Path keyFile = null;
    if (n.has("hash-key-from-env"))
      keyEnv = envVarName(n.get("hash-key-from-env"), child(path, "hash-key-from-env"));
    if (n.has("hash-key-from-file"))
      keyFile = filePath(n.get("hash-key-from-file"), child(path, "hash-key-from-file"));
    if (strategy == Policy.MaskStrategy.HASH) {
      if ((keyEnv == null) == (keyFile == null)) {
        throw fail(
            path, "strategy hash needs exactly one of hash-key-from-env / hash-key-from-file");
      }
    } else if (keyEnv != null || keyFile != null) {
      String key = keyEnv != null ? "hash-key-from-env" : "hash-key-from-file";
      throw fail(
          child(path, key),
          "only used with strategy hash, strategy is " + strategy.name().toLowerCase(Locale.ROOT));
    }
    Set<String> exempt = Set.of();
    if (n.has("exempt-groups"))
      exempt =
          new LinkedHashSet<>(strings(n.get("exempt-groups"), child(path, "exempt-groups"), false));
    int maxHoldBack = Policy.Masking.DEFAULT_MAX_HOLD_BACK;
    if (n.has("max-hold-back")) {
      String p = child(path, "max-hold-back");
      long v = size(n.get("max-hold-back"), p);
      if (v < 1 || v > 1024 * 1024) throw fail(p, "expected a size between 1 and 1MiB, was " + v);
      maxHoldBack = (int) v;
    }
    return new Policy.Masking(
        detectors, custom, words, strategy, keyEnv, keyFile, exempt, maxHoldBack);
  }

  private static String maskName(
      JsonNode n, String path, Map<String, String> seen, List<String> builtIn) {
    String name = nonEmpty(n, path);
    if (!MASK_NAME.matcher(name).matches()) {
      throw fail(
          path,
          "expected lower-case letters, digits and \"-\" (e.g. employee-id), was "
              + PolicyText.quote(name));
    }
    if (builtIn.contains(name))
      throw fail(path, "the name of a built-in detector, was " + PolicyText.quote(name));
    String other = seen.putIfAbsent(name, path);
    if (other != null)
      throw fail(path, "duplicate name " + PolicyText.quote(name) + " (also " + other + ")");
    return name;
  }
}
