package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Loads and validates policy files ({@code docs/policy.md}, version 1). Stateless and
 * thread-safe.
 *
 * <p>The document is read as a tree and walked by hand, so that every problem is reported with
 * the key path and the offending value, e.g. {@code entitlements[1].models[0]: invalid glob
 * "llama-[": unclosed '['} or {@code parameters.max.n: expected a number, was "one"}. Nothing is
 * coerced: a string where a number or list is expected, an unknown key at any level, a duplicate
 * key or a second document are all errors. Should a future section of the spec not be
 * implemented, it is refused rather than ignored ({@code TOP_UNSUPPORTED}), because a user who
 * wrote it expects controls that would silently not be there.
 *
 * <p>Messages: problems with the content start with the key path (as above); problems with the
 * file as a whole start with the source, e.g. {@code policy /etc/pam.yaml: cannot read: no such
 * file} or {@code policy: malformed YAML at line 3, column 7: ...}. Every failure is a
 * {@link PolicyException}; messages never carry a stack trace or a parser's source excerpt.
 *
 * <p>This class reads the document and checks its top level; each section is read by its own
 * class ({@link RequestSection}, {@link IdentitySection}, {@link UpstreamSection},
 * {@link AccessSection} for entitlements, allow, block and parameters, {@link RecordingSection},
 * {@link MaskingSection}, {@link ApprovalSection}, {@link LimitsSection}), all with the typed
 * readers of {@link PolicyNodes}. {@code from-file} paths are taken as written (relative ones
 * against the working directory).
 */
public final class PolicyLoader {

  private static final Set<String> TOP_KEYS =
      Set.of(
          "version",
          "request",
          "identity",
          "upstream",
          "entitlements",
          "allow",
          "block",
          "parameters",
          "recording",
          "masking",
          "approval",
          "limits",
          "state");
  private static final Set<String> TOP_UNSUPPORTED = Set.of();

  private static final Pattern SOURCE_REF =
      Pattern.compile("\\[Source: [^;\\]]*; line: (\\d+), column: (\\d+)]");
  private static final Pattern DUPLICATE =
      Pattern.compile("Duplicate (?:field|Object property) '(.*)'");

  // Duplicate keys are refused: with two "block:" sections one would silently replace the other.
  // Parser messages must not quote the source (it is the policy file, but the habit matters).
  private static final ObjectMapper YAML =
      new YAMLMapper(
          YAMLFactory.builder()
              .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
              .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
              .build());
  private static final ObjectMapper JSON =
      JsonMapper.builder(
              JsonFactory.builder()
                  .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
                  .build())
          .build();

  private PolicyLoader() {}

  /**
   * Loads {@code file}: JSON if its name ends in {@code .json} (any case), YAML otherwise.
   *
   * @throws PolicyException {@code policy FILE: cannot read: reason} when the file cannot be read
   *     as UTF-8 text, or any error of {@link #parse}
   */
  public static Policy load(Path file) {
    String source = "policy " + file;
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new PolicyException(source + ": cannot read: " + reason(e), e);
    }
    boolean json =
        file.getFileName() != null
            && file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".json");
    return read(text, source, json);
  }

  /**
   * Parses policy text as YAML (which also accepts JSON).
   *
   * @param source names the text in document-level errors, e.g. {@code policy}
   * @throws PolicyException     naming the key path and bad value, or the line and column of a
   *     syntax error
   * @throws NullPointerException if {@code text} is null
   */
  public static Policy parse(String text, String source) {
    return read(text, source, false);
  }

  /** Parses policy text as strict JSON. */
  static Policy parseJson(String text, String source) {
    return read(text, source, true);
  }

  private static Policy read(String text, String source, boolean json) {
    if (text.startsWith("\uFEFF")) text = text.substring(1); // editors on Windows add a BOM
    return walk(readTree(text, source, json), source);
  }

  // ---------------------------------------------------------------------------------------------
  // Syntax

  private static JsonNode readTree(String text, String source, boolean json) {
    String format = json ? "JSON" : "YAML";
    ObjectMapper mapper = json ? JSON : YAML;
    try (JsonParser p = mapper.createParser(text)) {
      JsonNode root = mapper.readTree(p);
      // A second YAML document (after "---") or trailing JSON would otherwise be ignored.
      if (root != null && p.nextToken() != null) {
        throw new PolicyException(
            source
                + ": expected one "
                + format
                + " document, found more at line "
                + p.currentLocation().getLineNr());
      }
      return root;
    } catch (JsonProcessingException e) {
      throw new PolicyException(source + ": malformed " + format + syntaxProblem(e), e);
    } catch (IOException e) { // reading a String does no I/O; kept for the signature
      throw new PolicyException(source + ": cannot read: " + reason(e), e);
    }
  }

  /** " at line L, column C: what", without the parser's multi-line excerpt of the document. */
  private static String syntaxProblem(JsonProcessingException e) {
    int line = -1;
    int column = -1;
    String what = e.getOriginalMessage();
    if (e.getCause() instanceof MarkedYAMLException y) {
      Mark mark = y.getProblemMark() != null ? y.getProblemMark() : y.getContextMark();
      if (mark != null) {
        line = mark.getLine() + 1;
        column = mark.getColumn() + 1;
      }
      what = y.getProblem() != null ? y.getProblem() : y.getContext();
      if (y.getContext() != null && y.getProblem() != null) what += " (" + y.getContext() + ")";
    }
    if (line < 0) {
      JsonLocation loc = e.getLocation();
      if (loc != null) {
        line = loc.getLineNr();
        column = loc.getColumnNr();
      }
    }
    what = what == null ? "syntax error" : what.replaceAll("\\s+", " ").trim();
    // Jackson points at other places as "[Source: REDACTED (...); line: 1, column: 1]".
    what = SOURCE_REF.matcher(what).replaceAll("line $1, column $2");
    Matcher dup = DUPLICATE.matcher(what);
    if (dup.matches()) what = "duplicate key " + PolicyText.quote(dup.group(1));
    if (what.length() > 200) what = what.substring(0, 200) + "...";
    return (line > 0 ? " at line " + line + ", column " + column : "") + ": " + what;
  }

  private static String reason(IOException e) {
    if (e instanceof NoSuchFileException) return "no such file";
    if (e instanceof AccessDeniedException) return "permission denied";
    if (e instanceof CharacterCodingException) return "not UTF-8 text";
    return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
  }

  // ---------------------------------------------------------------------------------------------
  // The document

  private static Policy walk(JsonNode root, String source) {
    // An empty YAML document ("---" alone) reads as an empty string.
    if (root == null
        || root.isMissingNode()
        || root.isNull()
        || (root.isTextual() && root.textValue().isEmpty())) {
      throw new PolicyException(
          source + ": the document is empty; it needs at least \"version: 1\"");
    }
    if (!root.isObject()) {
      throw new PolicyException(
          source + ": expected a mapping at the top level, was " + PolicyText.describe(root));
    }
    keys(root, "", TOP_KEYS, TOP_UNSUPPORTED);
    int version = version(root.get("version"));

    Policy.RequestSettings request = null;
    Policy.Identity identity = null;
    Policy.Upstream upstream = null;
    List<Policy.Entitlement> entitlements = null;
    List<Policy.AllowRule> allow = null;
    Policy.Block block = null;
    Policy.Parameters parameters = null;
    Policy.Recording recording = null;
    Policy.Masking masking = null;
    Policy.Approval approval = null;
    List<Policy.Limit> limits = null;
    Policy.State state = null;
    // Document order, so the first problem reported is the first one in the file.
    for (Map.Entry<String, JsonNode> field : root.properties()) {
      String key = field.getKey();
      JsonNode value = field.getValue();
      switch (key) {
        case "request" -> request = RequestSection.read(value, key);
        case "identity" -> identity = IdentitySection.read(value, key);
        case "upstream" -> upstream = UpstreamSection.read(value, key);
        case "entitlements" -> entitlements = AccessSection.entitlements(value, key);
        case "allow" -> allow = AccessSection.allow(value, key);
        case "block" -> block = AccessSection.block(value, key);
        case "parameters" -> parameters = AccessSection.parameters(value, key);
        case "recording" -> recording = RecordingSection.read(value, key);
        case "masking" -> masking = MaskingSection.read(value, key);
        case "approval" -> approval = ApprovalSection.read(value, key);
        case "limits" -> limits = LimitsSection.read(value, key);
        case "state" -> state = StateSection.read(value, key);
        default -> {} // version, done above
      }
    }
    return new Policy(
        version,
        request,
        identity,
        upstream,
        entitlements,
        allow,
        block,
        parameters,
        recording,
        masking,
        approval,
        limits,
        state);
  }

  private static int version(JsonNode v) {
    if (v == null) throw fail("version", "required");
    if (!v.isIntegralNumber()) throw fail("version", "expected 1, was " + PolicyText.describe(v));
    if (!v.canConvertToInt() || v.intValue() != 1) {
      throw fail("version", "unsupported version " + v.asText() + ", expected 1");
    }
    return 1;
  }
}
