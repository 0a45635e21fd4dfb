package dev.inferpam.core.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Tells whether a request needs a reviewer: the {@code approval.rules} of a policy, compiled.
 * Immutable and thread-safe; build one per policy and share it.
 *
 * <p>{@link #match} returns the name of the first rule (in policy order) whose conditions all
 * hold, or {@code null}. Conditions:
 * <ul>
 *   <li>{@code groups}: the principal is in one of them ({@code *}: anyone);</li>
 *   <li>{@code operations}: the request's operation is one of them;</li>
 *   <li>{@code models}: the requested model matches one of the globs;</li>
 *   <li>{@code max-tokens-over}: one of the output bounds {@code max_tokens},
 *       {@code max_completion_tokens}, {@code max_output_tokens} or {@code options.num_predict}
 *       is over the value. A bound the server would not read as a plain number within range
 *       counts as over (a string, a fraction, a boolean, an object), and so does a negative
 *       bound (Ollama: {@code -1} generates without end, {@code -2} fills the context; other
 *       servers may read it as their default). A request with no bound at all does not match: the server's default
 *       applies, which the policy's {@code parameters.max} can cap;</li>
 *   <li>{@code prompt-matches}: the pattern is found in the prompt text (see
 *       {@link #promptTexts}). It is searched in each text piece on its own, and once more in
 *       all pieces joined without a separator, so that splitting a phrase across messages or
 *       content parts ({@code "dump "}, {@code "all"}) does not hide it. A false match only
 *       means one more review.</li>
 * </ul>
 *
 * <p><b>Cost.</b> Patterns are those {@link dev.inferpam.core.internal.masking.CustomPatterns#check}
 * allows (bounded quantifiers, no nested repetition, no backreferences or lookaround), so each
 * search is linear in the prompt with a constant that depends on the pattern; the prompt is
 * bounded by the policy's {@code request.max-body}. The prompt text is extracted once per call,
 * and only when a rule needs it.
 *
 * <p><b>Bad input.</b> Never throws for a body: a missing or non-object body has no prompt and
 * no bounds. Null principal or rule set throw {@link NullPointerException}.
 */
public final class ApprovalRules {

  /** Body fields that bound the output, in the order they are checked (dotted paths). */
  static final List<String> OUTPUT_BOUNDS =
      List.of("max_tokens", "max_completion_tokens", "max_output_tokens", "options.num_predict");

  /** Top-level body fields whose text reaches the model. */
  private static final List<String> PROMPT_FIELDS =
      List.of("system", "instructions", "messages", "input", "prompt", "suffix");

  private final List<Compiled> rules;

  private record Compiled(Policy.ApprovalRule rule, Pattern prompt) {}

  /** Compiles the section's rules. */
  public ApprovalRules(Policy.Approval approval) {
    Objects.requireNonNull(approval, "approval");
    List<Compiled> out = new ArrayList<>();
    for (Policy.ApprovalRule r : approval.rules()) {
      // Checked by the loader and Policy.ApprovalRule; compiled once here.
      out.add(new Compiled(r, r.promptMatches() == null ? null : Pattern.compile(r.promptMatches())));
    }
    this.rules = List.copyOf(out);
  }

  /**
   * The first rule that matches, or {@code null}.
   *
   * @param principal who asks
   * @param operation the classified operation, or {@code null} when the request is not one (then
   *                  rules with {@code operations} or {@code models} do not match)
   * @param model     the requested model, or {@code null}
   * @param body      the parsed request body, or {@code null}
   */
  public String match(Principal principal, String operation, String model, JsonNode body) {
    Objects.requireNonNull(principal, "principal");
    Prompt prompt = new Prompt(body);
    for (Compiled c : rules) {
      if (matches(c, principal, operation, model, body, prompt)) return c.rule().name();
    }
    return null;
  }

  /** {@link #match} for a classified request. */
  public String match(Principal principal, RequestClassifier.Classification classification) {
    return match(principal, classification.operation(), classification.model(), classification.body());
  }

  private static boolean matches(Compiled c, Principal principal, String operation, String model, JsonNode body,
                                 Prompt prompt) {
    Policy.ApprovalRule r = c.rule();
    if (!r.groups().isEmpty() && !inGroups(principal, r.groups())) return false;
    if (!r.operations().isEmpty() && (operation == null || !r.operations().contains(operation))) return false;
    if (!r.models().isEmpty() && (model == null || !Glob.matchesAny(r.models(), model))) return false;
    if (r.maxTokensOver() != null && !outputBoundOver(body, r.maxTokensOver())) return false;
    return c.prompt() == null || prompt.find(c.prompt());
  }

  private static boolean inGroups(Principal p, Set<String> groups) {
    if (groups.contains("*")) return true;
    for (String g : groups) {
      if (p.inGroup(g)) return true;
    }
    return false;
  }

  /** True when any output bound in {@code body} is over {@code limit}, or cannot be read as a bound. */
  static boolean outputBoundOver(JsonNode body, long limit) {
    if (body == null || !body.isObject()) return false;
    for (String path : OUTPUT_BOUNDS) {
      JsonNode v = lookup(body, path);
      if (v == null || v.isNull()) continue;
      if (!v.isIntegralNumber()) {
        // "9000", 9000.5, true, {...}: some servers coerce what we would not; review is the safe side.
        if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())) {
          if (v.doubleValue() > limit || v.doubleValue() < 0) return true;
          continue;
        }
        return true;
      }
      if (!v.canConvertToLong()) return true;
      long n = v.longValue();
      if (n > limit) return true;
      if (n < 0) return true; // Ollama -1: no end, -2: fill the context; elsewhere "the default" or an error
    }
    return false;
  }

  private static JsonNode lookup(JsonNode body, String dotted) {
    JsonNode n = body;
    for (String part : dotted.split("\\.")) {
      if (n == null || !n.isObject()) return null;
      n = n.get(part);
    }
    return n;
  }

  /**
   * The prompt text of a request body, as pieces in document order, from every shape the
   * classifier recognises:
   * <ul>
   *   <li>{@code messages[]} (OpenAI chat, Anthropic, Ollama chat): each {@code content} that is
   *       a string, or a list of parts whose {@code text} (or nested {@code content}, as in
   *       Anthropic {@code tool_result}) is taken;</li>
   *   <li>{@code system} (Anthropic, Ollama generate), {@code instructions} (Responses): a string
   *       or a list of text blocks;</li>
   *   <li>{@code input} (Responses, embeddings): a string, a list of strings, or a list of items
   *       with {@code content} or {@code text};</li>
   *   <li>{@code prompt} and {@code suffix} (completions, Ollama generate and embeddings): a
   *       string or a list of strings (token arrays are not text and are skipped).</li>
   * </ul>
   * Not taken: tool and function definitions, tool call arguments, images, KServe tensors.
   */
  public static List<String> promptTexts(JsonNode body) {
    List<String> out = new ArrayList<>();
    if (body == null || !body.isObject()) return out;
    for (String field : PROMPT_FIELDS) {
      JsonNode v = body.get(field);
      if (v != null) collect(v, out, 0);
    }
    return out;
  }

  /**
   * Gathers text: strings as they are, lists item by item, objects by their {@code text} and
   * {@code content} fields. The classifier bounds the nesting depth; the extra bound here keeps
   * a hand-built tree from recursing without end.
   */
  private static void collect(JsonNode n, List<String> out, int depth) {
    if (depth > RequestClassifier.MAX_NESTING_DEPTH) return;
    if (n.isTextual()) {
      if (!n.textValue().isEmpty()) out.add(n.textValue());
    } else if (n.isArray()) {
      for (JsonNode item : n) collect(item, out, depth + 1);
    } else if (n.isObject()) {
      JsonNode text = n.get("text");
      if (text != null) collect(text, out, depth + 1);
      JsonNode content = n.get("content");
      if (content != null) collect(content, out, depth + 1);
    }
  }

  /** The prompt of one request, extracted on first use. */
  private static final class Prompt {
    private final JsonNode body;
    private List<String> pieces;
    private String joined;

    Prompt(JsonNode body) {
      this.body = body;
    }

    boolean find(Pattern p) {
      if (pieces == null) {
        pieces = promptTexts(body);
        joined = pieces.size() > 1 ? String.join("", pieces) : null;
      }
      for (String piece : pieces) {
        if (p.matcher(piece).find()) return true;
      }
      return joined != null && p.matcher(joined).find();
    }
  }
}
