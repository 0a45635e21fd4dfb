package dev.inferpam.core.internal.http;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.internal.approval.ApprovalRules;
import dev.inferpam.core.internal.policy.ParameterRules;
import dev.inferpam.core.internal.policy.PolicyText;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Refuses request bodies that the JSON decoders of inference servers could read differently from
 * the engine, so that the upstream never acts on a value the engine did not check.
 *
 * <p>The engine reads bodies with Jackson: keys exact and case-sensitive, duplicates refused (see
 * {@link RequestClassifier}). The decoders that inference servers use read them so:
 * <ul>
 *   <li>Go {@code encoding/json} (Ollama, Triton front ends): a key matches a struct field exactly
 *       or else under Unicode simple case folding ({@code MODEL}, {@code ſ} for {@code s}, the
 *       Kelvin sign for {@code k}); the last key that matches wins; a lone surrogate escape reads
 *       as U+FFFD;</li>
 *   <li>Python {@code json} / pydantic (vLLM, TorchServe): exact keys, the last duplicate wins,
 *       lone surrogates kept;</li>
 *   <li>Rust {@code serde_json} (TGI): exact keys, a duplicate field is an error, a lone surrogate
 *       is an error;</li>
 *   <li>JavaScript {@code JSON.parse} and Jackson: exact keys, the last duplicate wins, lone
 *       surrogates kept.</li>
 * </ul>
 * So a body is refused (400 {@code bad_request}, the message naming the key by a path such as
 * {@code options.LogProbs} or {@code messages[0].Content}) when:
 * <ol>
 *   <li><b>two keys of one object fold to the same key</b>, at any depth: Go would take the last
 *       of them where every other decoder keeps both. Checking every depth rather than only the
 *       objects a rule reads costs nothing extra (the tree is walked anyway) and keeps this check
 *       right when rules start reading more; the price is that an object with, say, both
 *       {@code ID} and {@code id} properties (a JSON schema in a tool definition) is refused.
 *       Exact duplicates are already refused by the parser;</li>
 *   <li><b>a key folds to a governed name without being its exact spelling</b>, in the objects
 *       where a rule looks for that name: at the top level every name a rule reads
 *       ({@code model}, the output bounds, {@code n}, {@code best_of}, the prompt fields,
 *       {@code options}, {@code parameters}, and the policy's denied, capped and preset names);
 *       in {@code options} and {@code parameters} the denied and preset names and
 *       {@code num_predict}; in the objects the prompt extractor walks below the prompt and
 *       definition fields (message, content part, input item, system block, tool) {@code text},
 *       {@code content}, {@code data} and the keys whose values it skips ({@code role},
 *       {@code type}, ids, media) or takes whole with their keys ({@code arguments},
 *       {@code input}, {@code parameters}, {@code schema}, ...): {@code "Input":{"dump all":1}}
 *       would hide a phrase in a key from the prompt rules. Inside the values it takes whole, and
 *       anywhere else, such keys are left alone, so that a tool's JSON schema may have
 *       {@code Model} or {@code ID} properties. The engine would not see {@code "MODEL":"gpt-4"}
 *       or {@code "LogProbs":true}; a Go server would;</li>
 *   <li><b>a string holds a lone surrogate</b> (an escape such as {@code \ud800} not paired), in
 *       any key or value: Go reads U+FFFD, Python and JavaScript keep it, serde_json refuses it,
 *       so no reading can be checked for all of them. Correctly paired escapes (an emoji written
 *       {@code \ud83d\ude00}, as Python's {@code json.dumps} does) are fine.</li>
 * </ol>
 * Numbers that decoders read differently are the business of the parameter check
 * ({@link ParameterRules}), which bounds every governed number so that no decoder can read a
 * larger value than the one checked.
 *
 * <p>Folding here is {@code toLowerCase(toUpperCase(c))} per code point plus the few pairs that
 * Java's Unicode tables lack (ﬅ/ﬆ, ΐ/ΐ, ΰ/ΰ). It puts together every pair that Go's
 * {@code unicode.SimpleFold} orbits put together, and a few more (dotted and dotless i with
 * {@code i}): refusing a little more than needed is the safe side.
 *
 * <p><b>Cost.</b> A key of printable ASCII without upper-case letters (the usual key) is its own
 * folding and is not copied; only objects with another key build a small map of foldings. Strings
 * are scanned for surrogates only when the raw body holds a {@code \}{@code uD8..}–{@code \}{@code
 * uDF..} escape.
 *
 * <p><b>Thread-safety:</b> immutable after construction; share one per policy.
 */
public final class DecoderAgreement {

  /** Keys that the common prompt shapes use for text (message content, content-part text). */
  static final List<String> PROMPT_KEYS = List.of("text", "content");

  /** Names the engine reads whatever the policy says (dotted paths). */
  static final List<String> FIXED = fixed();

  /** Below a key that leads to no governed names (declared before {@link #DEFAULT}, which uses it). */
  private static final Level NONE = new Level();

  /** The check with only the fixed names governed (no parameters section). */
  public static final DecoderAgreement DEFAULT = new DecoderAgreement(List.of());

  private final Level root;

  /**
   * @param governedPaths dotted paths that rules read besides {@link #FIXED}, e.g.
   *     {@code logprobs}, {@code options.logprobs}, {@code parameters.top_n_tokens}
   */
  public DecoderAgreement(Collection<String> governedPaths) {
    root = new Level();
    for (String p : FIXED) root.add(p);
    for (String p : governedPaths) root.add(p);
    // The prompt extractor (ApprovalRules.promptTexts) walks every object under these fields and
    // takes every value but those of the NOT_TEXT keys (and "data" unless the block is text); the
    // value of a FREE_JSON key it takes whole, keys included. So there those names are governed,
    // NOT_TEXT and FREE_JSON values are not looked into, and any other key leads to the same rules.
    Level prompt = new Level();
    prompt.other = prompt;
    for (String k : PROMPT_KEYS) prompt.name(k);
    prompt.name("data");
    for (String k : ApprovalRules.NOT_TEXT) prompt.children.put(prompt.name(k), NONE);
    for (String k : ApprovalRules.FREE_JSON) prompt.children.put(prompt.name(k), NONE);
    for (String field : ApprovalRules.PROMPT_FIELDS) root.children.put(root.name(field), prompt);
    for (String field : ApprovalRules.DEFINITION_FIELDS)
      root.children.put(root.name(field), prompt);
  }

  private static List<String> fixed() {
    List<String> out = new ArrayList<>(List.of("model", "options", "parameters", "n", "best_of"));
    out.addAll(ApprovalRules.OUTPUT_BOUNDS);
    return List.copyOf(out);
  }

  /**
   * Checks a parsed body.
   *
   * @param body the engine's tree of the body
   * @param raw  the body's bytes, to tell cheaply whether any string may hold a lone surrogate
   * @throws BadRequestException naming the first key or value that decoders could read otherwise
   */
  public void check(JsonNode body, byte[] raw) throws BadRequestException {
    try {
      walk(body, root, mayHoldLoneSurrogate(raw), 0);
    } catch (Refusal r) {
      throw new BadRequestException(r.message());
    }
  }

  private static void walk(JsonNode n, Level level, boolean surrogates, int depth) throws Refusal {
    if (depth > RequestClassifier.MAX_NESTING_DEPTH) return; // the parser bounds nesting already
    if (n.isObject()) {
      checkKeys(n, level, surrogates);
      for (Map.Entry<String, JsonNode> e : n.properties()) {
        JsonNode v = e.getValue();
        if (v.isContainerNode() || (surrogates && v.isTextual())) {
          try {
            walk(v, level == null ? null : level.next(e.getKey()), surrogates, depth + 1);
          } catch (Refusal r) {
            throw r.under(e.getKey());
          }
        }
      }
    } else if (n.isArray()) {
      for (int i = 0; i < n.size(); i++) {
        try {
          walk(n.get(i), level, surrogates, depth + 1); // a list's items sit where the list does
        } catch (Refusal r) {
          throw r.under(i);
        }
      }
    } else if (surrogates && n.isTextual() && hasLoneSurrogate(n.textValue())) {
      throw new Refusal(
          "request body has a lone surrogate escape in %s; servers read it differently", "");
    }
  }

  private static void checkKeys(JsonNode object, Level level, boolean surrogates) throws Refusal {
    boolean allPlain = true;
    for (java.util.Iterator<String> it = object.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      boolean plain = isPlain(key);
      allPlain &= plain;
      if (!plain && surrogates && hasLoneSurrogate(key)) {
        throw new Refusal(
            "request body has a lone surrogate escape in key %s; servers read it differently", key);
      }
      if (level != null && (!plain || level.nonPlainNames)) {
        String governed = level.byFold.get(fold(key));
        if (governed != null && !governed.equals(key)) {
          throw new Refusal(
                  "request body key %s is not the exact spelling of %s; servers that match keys"
                      + " ignoring case would read it as that",
                  key)
              .with(governed);
        }
      }
    }
    if (allPlain || object.size() < 2) return; // plain keys fold to themselves and are distinct
    Map<String, String> seen = new HashMap<>();
    for (java.util.Iterator<String> it = object.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      String other = seen.putIfAbsent(fold(key), key);
      if (other != null) {
        throw new Refusal(
            "request body keys %s and %s are one key to servers that match keys ignoring case",
            other, key);
      }
    }
  }

  /** Printable ASCII without upper-case letters: the key is its own folding. */
  static boolean isPlain(String key) {
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c < 0x20 || c > 0x7e || (c >= 'A' && c <= 'Z')) return false;
    }
    return true;
  }

  /** {@code key} folded so that keys Go's {@code encoding/json} matches to one another fold alike. */
  static String fold(String key) {
    if (isPlain(key)) return key;
    StringBuilder out = new StringBuilder(key.length());
    for (int i = 0; i < key.length(); ) {
      int cp = key.codePointAt(i);
      i += Character.charCount(cp);
      out.appendCodePoint(foldCodePoint(cp));
    }
    return out.toString();
  }

  private static int foldCodePoint(int cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
    return switch (cp) {
      // Simple foldings newer than Java 17's Unicode tables (or absent from them).
      case 0xFB05 -> 0xFB06; // ﬅ ﬆ
      case 0x1FD3 -> 0x0390; // ΐ ΐ
      case 0x1FE3 -> 0x03B0; // ΰ ΰ
      default -> Character.toLowerCase(Character.toUpperCase(cp));
    };
  }

  /** Whether {@code s} has a surrogate that is not half of a high-low pair. */
  static boolean hasLoneSurrogate(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (!Character.isSurrogate(c)) continue;
      if (Character.isHighSurrogate(c)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++;
        continue;
      }
      return true;
    }
    return false;
  }

  /**
   * Whether the raw body holds an escape {@code \}{@code uD800}..{@code \}{@code uDFFF} (any case).
   * Strict UTF-8 cannot encode a surrogate, so an escape is the only way one gets in. An escaped
   * backslash followed by such text also answers true; the exact check on the tree then decides.
   */
  static boolean mayHoldLoneSurrogate(byte[] raw) {
    if (raw == null) return false;
    for (int i = 0; i + 3 < raw.length; i++) {
      if (raw[i] != '\\' || raw[i + 1] != 'u' || (raw[i + 2] | 0x20) != 'd') continue;
      byte h = raw[i + 3];
      if ((h >= '8' && h <= '9') || ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')) return true;
    }
    return false;
  }

  /**
   * The names governed in one object, and the objects below it that have governed names. Built in
   * the constructor, never changed after.
   */
  private static final class Level {
    /** Folded name to its exact spelling. */
    final Map<String, String> byFold = new HashMap<>();

    final Map<String, Level> children = new HashMap<>();

    /** The level below any key not in {@link #children}, or {@code null} for none. */
    Level other;

    /** Whether a governed name here is not plain (then even a plain key may be a variant of it). */
    boolean nonPlainNames;

    String name(String exact) {
      byFold.putIfAbsent(fold(exact), exact);
      if (!isPlain(exact)) nonPlainNames = true;
      return exact;
    }

    /** The level of the value of {@code key}, or {@code null} when nothing below it is governed. */
    Level next(String key) {
      Level l = children.get(key);
      if (l == null) l = other;
      return l == NONE ? null : l;
    }

    Level child(String exact) {
      name(exact);
      return children.computeIfAbsent(exact, k -> new Level());
    }

    void add(String dotted) {
      int dot = dotted.indexOf('.');
      if (dot < 0) {
        name(dotted);
      } else {
        child(dotted.substring(0, dot)).add(dotted.substring(dot + 1));
      }
    }
  }

  /** Why a body is refused, with the paths of the keys concerned, built up while unwinding. */
  private static final class Refusal extends Exception {
    private static final long serialVersionUID = 1L;
    private final String format;
    private final String[] paths;

    /** A name quoted after the paths, or {@code null}. */
    private String name;

    Refusal(String format, String... paths) {
      super(null, null, false, false);
      this.format = format;
      this.paths = paths;
    }

    Refusal with(String name) {
      this.name = name;
      return this;
    }

    Refusal under(String key) {
      for (int i = 0; i < paths.length; i++) {
        paths[i] =
            paths[i].isEmpty()
                ? key
                : paths[i].startsWith("[") ? key + paths[i] : key + "." + paths[i];
      }
      return this;
    }

    Refusal under(int index) {
      for (int i = 0; i < paths.length; i++) {
        paths[i] =
            "["
                + index
                + "]"
                + (paths[i].isEmpty() || paths[i].startsWith("[") ? "" : ".")
                + paths[i];
      }
      return this;
    }

    String message() {
      Object[] quoted = new Object[paths.length + (name == null ? 0 : 1)];
      for (int i = 0; i < paths.length; i++) quoted[i] = quote(paths[i]);
      if (name != null) quoted[paths.length] = quote(name);
      return String.format(format, quoted);
    }

    /** Quoted as policy values are, with lone surrogates (which no encoder writes) escaped too. */
    private static String quote(String s) {
      String q = PolicyText.quote(s);
      if (!hasLoneSurrogate(q)) return q;
      StringBuilder out = new StringBuilder(q.length() + 10);
      for (int i = 0; i < q.length(); i++) {
        char c = q.charAt(i);
        boolean paired =
            Character.isHighSurrogate(c)
                && i + 1 < q.length()
                && Character.isLowSurrogate(q.charAt(i + 1));
        if (paired) {
          out.append(c).append(q.charAt(++i));
        } else if (Character.isSurrogate(c)) {
          out.append(String.format("\\u%04x", (int) c));
        } else {
          out.append(c);
        }
      }
      return out.toString();
    }
  }
}
