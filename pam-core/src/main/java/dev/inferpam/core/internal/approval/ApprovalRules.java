package dev.inferpam.core.internal.approval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.http.RequestClassifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
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
 *       {@link #promptTexts}) as a reader sees it (see {@link ReaderText}). The pieces are
 *       joined with one space, so that splitting a phrase across messages, content parts or
 *       fields ({@code "please dump"}, {@code "all rows"}) does not hide it. The pattern is
 *       searched twice, both times ignoring case: as written, in the reader form of the text
 *       (invisible code points removed, NFKC, any whitespace one space); and with its literal
 *       characters replaced by their skeletons, in the skeleton of the text (look-alike letters
 *       from other scripts, fullwidth and mathematical forms, upper and lower case all one
 *       form). So {@code "dump all"} finds {@code "please DUMP all"} written with any
 *       whitespace between the words (no-break spaces, newlines, runs), with invisible
 *       characters inside them (zero-width joiners) or between them (a soft hyphen or a
 *       zero-width space: a text with invisible characters is read once without them and once
 *       with each as a space), or with look-alikes (Cyrillic
 *       {@code "ԁսmр аll"}, fullwidth letters); {@code \d} or {@code [a-z]} keep their meaning
 *       in the first search.
 *       Unicode tag characters (invisible, but read by some models as ASCII) are decoded into
 *       a piece of their own. Searching the joined text is enough for a pattern without anchors:
 *       allowed patterns have no lookaround or backreference, and {@code \b} sees the joining
 *       space as it sees the end of a piece; a pattern with {@code ^ $ \A \z \Z \G} is also
 *       searched in each piece on its own. A false match only means one more review.</li>
 * </ul>
 *
 * <p><b>Cost.</b> Patterns are those {@link dev.inferpam.core.internal.masking.CustomPatterns#check}
 * allows (bounded quantifiers, no nested repetition, no backreferences or lookaround), so each
 * search is linear in the prompt with a constant that depends on the pattern; the prompt is
 * bounded by the policy's {@code request.max-body}. The prompt text is extracted and normalised
 * once per call (each step linear), and only when a rule has {@code prompt-matches}.
 *
 * <p><b>Bad input.</b> Never throws for a body: a missing or non-object body has no prompt and
 * no bounds. Null principal or rule set throw {@link NullPointerException}.
 */
public final class ApprovalRules {

  /** Body fields that bound the output, in the order they are checked (dotted paths). */
  public static final List<String> OUTPUT_BOUNDS =
      List.of("max_tokens", "max_completion_tokens", "max_output_tokens", "options.num_predict");

  /** Top-level body fields that hold the prompt, in the order they are taken. */
  public static final List<String> PROMPT_FIELDS =
      List.of("system", "instructions", "messages", "input", "prompt", "suffix", "template");

  /** Top-level body fields that describe tools, the output format or documents to the model, taken after the prompt. */
  public static final List<String> DEFINITION_FIELDS =
      List.of(
          "tools",
          "functions",
          "tool_choice",
          "function_call",
          "response_format",
          "text",
          "documents",
          "chat_template");

  /** Keys inside the prompt whose values are identifiers, enumerations or media, not text the model reads. */
  public static final Set<String> NOT_TEXT =
      Set.of(
          "type",
          "role",
          "id",
          "call_id",
          "tool_call_id",
          "tool_use_id",
          "status",
          "cache_control",
          "signature",
          "encrypted_content",
          "detail",
          "media_type",
          "mime_type",
          "image_url",
          "image",
          "images",
          "input_audio",
          "audio",
          "file_data",
          "file_id",
          "file_url",
          "url");

  /** Keys inside the prompt whose object value is free JSON the model reads, keys included (tool arguments). */
  public static final Set<String> FREE_JSON =
      Set.of("arguments", "input", "parameters", "input_schema", "schema");

  /** Both searches ignore case: the text as a reader sees it has no case worth telling apart. */
  private static final int FLAGS = Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE;

  private final List<Compiled> rules;

  /**
   * A rule with its pattern compiled for the reader form and, literals as skeletons, for the
   * skeleton; {@code anchored} when the pattern has anchors (then pieces are also searched alone).
   */
  private record Compiled(
      Policy.ApprovalRule rule, Pattern reader, Pattern skeleton, boolean anchored) {}

  /** Compiles the section's rules. */
  public ApprovalRules(Policy.Approval approval) {
    Objects.requireNonNull(approval, "approval");
    List<Compiled> out = new ArrayList<>();
    for (Policy.ApprovalRule r : approval.rules()) {
      // Checked by the loader and Policy.ApprovalRule; compiled once here. The skeleton pattern has
      // the same shape (literals replaced, see ReaderText.skeletonPattern), so it is linear too.
      if (r.promptMatches() == null) {
        out.add(new Compiled(r, null, null, false));
      } else {
        ReaderText.SkeletonPattern sp = ReaderText.skeletonPattern(r.promptMatches());
        out.add(
            new Compiled(
                r,
                Pattern.compile(r.promptMatches(), FLAGS),
                Pattern.compile(sp.regex(), FLAGS),
                sp.anchored()));
      }
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
    return match(
        principal, classification.operation(), classification.model(), classification.body());
  }

  private static boolean matches(
      Compiled c,
      Principal principal,
      String operation,
      String model,
      JsonNode body,
      Prompt prompt) {
    Policy.ApprovalRule r = c.rule();
    if (!r.groups().isEmpty() && !inGroups(principal, r.groups())) return false;
    if (!r.operations().isEmpty() && (operation == null || !r.operations().contains(operation)))
      return false;
    if (!r.models().isEmpty() && (model == null || !Glob.matchesAny(r.models(), model)))
      return false;
    if (r.maxTokensOver() != null && !outputBoundOver(body, r.maxTokensOver())) return false;
    return c.reader() == null || prompt.find(c);
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
        // "9000", 9000.5, true, {...}: some servers coerce what we would not; review is the safe
        // side.
        if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())) {
          if (v.doubleValue() > limit || v.doubleValue() < 0) return true;
          continue;
        }
        return true;
      }
      if (!v.canConvertToLong()) return true;
      long n = v.longValue();
      if (n > limit) return true;
      if (n < 0)
        return true; // Ollama -1: no end, -2: fill the context; elsewhere "the default" or an error
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
   * The text of a request body that reaches the model, as pieces in document order:
   * <ul>
   *   <li>first the prompt: {@code system} (Anthropic blocks, Ollama), {@code instructions}
   *       (Responses), {@code messages} (every message: {@code content} as a string or parts,
   *       {@code name}, tool calls with their names and arguments, Anthropic {@code tool_use}
   *       input and {@code tool_result} content, thinking), {@code input} (Responses items:
   *       messages, function calls and their outputs, reasoning summaries; embeddings),
   *       {@code prompt}, {@code suffix} and {@code template} (completions, Ollama). In these,
   *       every string is taken except the values of {@code NOT_TEXT} keys (roles, types, ids,
   *       images, audio, files: token arrays and media are not text) and the {@code data} of a
   *       block whose {@code type} is not {@code text}; the object value of an
   *       {@code arguments}, {@code input}, {@code parameters}, {@code input_schema} or
   *       {@code schema} key is taken whole, its keys included;</li>
   *   <li>then, the same way, the definitions the model is shown: {@code tools} (names,
   *       descriptions, parameter and input schemas with their property names),
   *       {@code functions}, {@code tool_choice}, {@code function_call},
   *       {@code response_format}, {@code text} (Responses output format), {@code documents}
   *       and {@code chat_template}.</li>
   * </ul>
   * Not taken: other top-level fields (model, sampling parameters, metadata) and KServe tensors.
   * Linear in the body; nesting deeper than the classifier allows is not followed.
   */
  public static List<String> promptTexts(JsonNode body) {
    List<String> out = new ArrayList<>();
    if (body == null || !body.isObject()) return out;
    for (String field : PROMPT_FIELDS) {
      JsonNode v = body.get(field);
      if (v != null) collect(v, out, false, 0);
    }
    for (String field : DEFINITION_FIELDS) {
      JsonNode v = body.get(field);
      if (v != null) collect(v, out, false, 0);
    }
    return out;
  }

  /**
   * Gathers the strings of {@code n}: lists item by item, objects field by field (when
   * {@code free}, every key and value; otherwise values only, skipping {@code NOT_TEXT}). The
   * classifier bounds the nesting depth; the bound here keeps a hand-built tree from recursing
   * without end.
   */
  private static void collect(JsonNode n, List<String> out, boolean free, int depth) {
    if (depth > RequestClassifier.MAX_NESTING_DEPTH) return;
    if (n.isTextual()) {
      if (!n.textValue().isEmpty()) out.add(n.textValue());
    } else if (n.isArray()) {
      for (JsonNode item : n) collect(item, out, free, depth + 1);
    } else if (n.isObject()) {
      for (var it = n.properties().iterator(); it.hasNext(); ) {
        var field = it.next();
        String key = field.getKey();
        JsonNode v = field.getValue();
        if (free) {
          if (!key.isEmpty()) out.add(key);
        } else if (NOT_TEXT.contains(key)
            || (key.equals("data") && !n.path("type").asText().equals("text"))) {
          continue;
        }
        collect(v, out, free || (v.isObject() && FREE_JSON.contains(key)), depth + 1);
      }
    }
  }

  /** The prompt of one request, extracted and normalised on first use. */
  private static final class Prompt {
    private final JsonNode body;

    /** Reader form and skeleton; again with invisible code points as spaces when there are any. */
    private List<Joined> views;

    Prompt(JsonNode body) {
      this.body = body;
    }

    boolean find(Compiled c) {
      if (views == null) {
        List<String> pieces = promptTexts(body);
        views = new ArrayList<>(4);
        join(pieces, false, views);
        if (pieces.stream().anyMatch(ReaderText::hasInvisible)) join(pieces, true, views);
      }
      for (int i = 0; i < views.size(); i += 2) {
        if (views.get(i).find(c.reader(), c.anchored())
            || views.get(i + 1).find(c.skeleton(), c.anchored())) {
          return true;
        }
      }
      return false;
    }

    /** Adds the joined reader forms and skeletons of {@code pieces} (and of text hidden in tag characters). */
    private static void join(List<String> pieces, boolean invisibleAsSpace, List<Joined> views) {
      Joined.Builder r = new Joined.Builder();
      Joined.Builder s = new Joined.Builder();
      for (String piece : pieces) {
        add(ReaderText.reader(piece, invisibleAsSpace), r, s);
        String hidden = ReaderText.hiddenTags(piece);
        if (!hidden.isEmpty()) add(ReaderText.reader(hidden), r, s);
      }
      views.add(r.build());
      views.add(s.build());
    }

    private static void add(String form, Joined.Builder r, Joined.Builder s) {
      r.add(form);
      s.add(ReaderText.skeleton(form));
    }
  }

  /** Pieces joined with one space, and where each piece is in the joined text. */
  private record Joined(String text, int[] bounds) {
    /** Found in the joined text; when {@code anchored}, also in each piece alone (anchors at its ends). */
    boolean find(Pattern p, boolean anchored) {
      Matcher m = p.matcher(text);
      if (m.find()) return true;
      if (!anchored) return false;
      for (int i = 0; i < bounds.length; i += 2) {
        // Anchoring, opaque bounds (the defaults): the piece reads as a text of its own.
        if (m.region(bounds[i], bounds[i + 1]).find()) return true;
      }
      return false;
    }

    static final class Builder {
      private final StringBuilder text = new StringBuilder();
      private final List<Integer> bounds = new ArrayList<>();

      void add(String piece) {
        if (piece.isEmpty()) return;
        if (text.length() > 0) text.append(' ');
        bounds.add(text.length());
        text.append(piece);
        bounds.add(text.length());
      }

      Joined build() {
        return new Joined(text.toString(), bounds.stream().mapToInt(Integer::intValue).toArray());
      }
    }
  }
}
