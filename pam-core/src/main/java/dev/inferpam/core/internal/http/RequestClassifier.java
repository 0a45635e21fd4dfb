package dev.inferpam.core.internal.http;

import com.fasterxml.jackson.core.ErrorReportConfiguration;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Tells which inference operation a request is and which model it asks for (the table
 * "Operations and models" in {@code docs/policy.md}).
 *
 * <table>
 *   <caption>Recognised requests (method {@code POST}, under the base path or at the root)</caption>
 *   <tr><th>operation</th><th>paths</th><th>model from</th></tr>
 *   <tr><td>{@code chat}</td><td>{@code /v1/chat/completions}, {@code /v1/responses},
 *       {@code /v1/messages}, {@code /api/chat}</td><td>body {@code model}</td></tr>
 *   <tr><td>{@code completion}</td><td>{@code /v1/completions}, {@code /api/generate}</td>
 *       <td>body {@code model}</td></tr>
 *   <tr><td>{@code embedding}</td><td>{@code /v1/embeddings}, {@code /api/embed},
 *       {@code /api/embeddings}</td><td>body {@code model}</td></tr>
 *   <tr><td>{@code infer}</td><td>{@code /v2/models/{model}/infer},
 *       {@code /v2/models/{model}/versions/{v}/infer}</td><td>path segment</td></tr>
 * </table>
 *
 * <p>Anything else, including a {@code GET} to one of these paths, is not an operation
 * ({@link Classification#operation()} is {@code null}); the engine then needs an {@code allow}
 * rule for it. Paths are matched exactly and case-sensitively against the canonical path from
 * {@link PathCanonicalizer}; the method is matched case-insensitively so that a lower-case
 * {@code post} cannot slip past classification to a lenient server.
 *
 * <p>Bodies are parsed strictly: they must be valid UTF-8 (no overlong forms, no byte order
 * mark, no UTF-16), and trailing content, duplicate keys (at any depth) and nesting deeper than
 * {@value #MAX_NESTING_DEPTH} are refused. For {@code infer} the body is parsed only when its
 * first non-blank byte is <code>&#123;</code>; other bodies (KServe binary tensor data) are
 * passed through unparsed. A KServe binary-extension body (a JSON header followed by raw tensor
 * bytes) starts with <code>&#123;</code> but is not one JSON value, so it is refused as
 * malformed: splitting it needs the {@code Inference-Header-Content-Length} header, which this
 * classifier does not see.
 *
 * <p>Every parsed body must also pass a {@link DecoderAgreement} check (no key that a server's
 * decoder could read as another governed key, no lone surrogate), and a model name must have no
 * control character and no white space at either end.
 *
 * <p><b>Thread-safety:</b> immutable; one instance is shared by all request threads.
 */
public final class RequestClassifier {

  public static final String CHAT = "chat";
  public static final String COMPLETION = "completion";
  public static final String EMBEDDING = "embedding";
  public static final String INFER = "infer";

  /** Every operation name this classifier can produce. */
  public static final Set<String> OPERATIONS = Set.of(CHAT, COMPLETION, EMBEDDING, INFER);

  /** Deepest JSON nesting accepted in a request body. */
  public static final int MAX_NESTING_DEPTH = 200;

  private static final int MAX_EXCERPT = 120;

  private static final Map<String, String> BODY_MODEL_PATHS =
      Map.of(
          "/v1/chat/completions", CHAT,
          "/v1/responses", CHAT,
          "/v1/messages", CHAT,
          "/api/chat", CHAT,
          "/v1/completions", COMPLETION,
          "/api/generate", COMPLETION,
          "/v1/embeddings", EMBEDDING,
          "/api/embed", EMBEDDING,
          "/api/embeddings", EMBEDDING);

  // Duplicate keys are refused because parsers disagree on them: Jackson's tree keeps the last
  // "model", others keep the first. With {"model":"allowed","model":"forbidden"} we could check
  // one model while the upstream runs the other, so such a body never gets past us.
  private static final ObjectMapper JSON =
      JsonMapper.builder(
              JsonFactory.builder()
                  .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  // Parser messages must not carry the body (it may hold prompts or secrets).
                  .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
                  .streamReadConstraints(
                      StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING_DEPTH).build())
                  .errorReportConfiguration(
                      ErrorReportConfiguration.builder()
                          .maxErrorTokenLength(32)
                          .maxRawContentLength(0)
                          .build())
                  .build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          .build();

  private final String basePath;
  private final DecoderAgreement agreement;

  /**
   * A classifier that governs only the names every policy reads ({@link DecoderAgreement#DEFAULT}).
   *
   * @param basePath prefix under which inference paths may sit, e.g. {@code /openai}; {@code ""}
   *     or {@code null} for none. A trailing {@code /} is ignored.
   * @throws IllegalArgumentException when the base path is not a canonical absolute path
   */
  public RequestClassifier(String basePath) {
    this(basePath, DecoderAgreement.DEFAULT);
  }

  /**
   * @param basePath  as for {@link #RequestClassifier(String)}
   * @param agreement the check that every parsed body must pass, with the policy's governed names
   * @throws IllegalArgumentException when the base path is not a canonical absolute path
   */
  public RequestClassifier(String basePath, DecoderAgreement agreement) {
    this.agreement = Objects.requireNonNull(agreement, "agreement");
    String base = basePath == null ? "" : basePath;
    while (base.endsWith("/")) base = base.substring(0, base.length() - 1);
    if (!base.isEmpty()) {
      String canonical;
      try {
        canonical = PathCanonicalizer.canonicalize(base);
      } catch (BadPathException e) {
        throw new IllegalArgumentException(
            "request.base-path: " + e.getMessage() + ", was \"" + basePath + "\"");
      }
      if (!canonical.equals(base)) {
        throw new IllegalArgumentException(
            "request.base-path: must not be percent-encoded, was \"" + basePath + "\"");
      }
    }
    this.basePath = base;
  }

  /** The base path in use; {@code ""} for none. */
  public String basePath() {
    return basePath;
  }

  /**
   * Classifies one request.
   *
   * @param method        HTTP method
   * @param canonicalPath the path as returned by {@link PathCanonicalizer#canonicalize}
   * @param body          the whole request body; {@code null} counts as empty
   * @throws BadRequestException when the request is a body-model operation whose body is
   *     empty, not strict JSON, not an object or has no non-blank string {@code model}; or an
   *     {@code infer} request whose JSON body is malformed; or a body that fails the
   *     {@link DecoderAgreement} check; or a model name with a control character or surrounding
   *     white space
   */
  public Classification classify(String method, String canonicalPath, byte[] body)
      throws BadRequestException {
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(canonicalPath, "canonicalPath");
    String relative = relativePath(canonicalPath);
    if (!method.equalsIgnoreCase("POST")) return new Classification(null, null, relative, null);

    String operation = BODY_MODEL_PATHS.get(relative);
    if (operation != null) {
      JsonNode json = parse(body);
      if (!json.isObject()) throw new BadRequestException("request body is not a JSON object");
      agreement.check(json, body);
      JsonNode model = json.get("model");
      if (model == null || model.isNull())
        throw new BadRequestException("request body has no \"model\"");
      if (!model.isTextual())
        throw new BadRequestException("\"model\" in request body is not a string");
      if (model.textValue().isBlank())
        throw new BadRequestException("\"model\" in request body is blank");
      checkModelName(model.textValue(), "\"model\" in request body");
      return new Classification(operation, model.textValue(), relative, json);
    }

    String model = inferModel(relative);
    if (model != null) {
      checkModelName(model, "the model in the path");
      JsonNode json = startsWithBrace(body) ? parse(body) : null;
      if (json != null) agreement.check(json, body);
      return new Classification(INFER, model, relative, json);
    }
    return new Classification(null, null, relative, null);
  }

  /**
   * Refuses a model name that servers could read as another name or that could forge log lines:
   * one with a control character anywhere (C0 including NUL, DEL, C1), or with white space at
   * either end (Unicode white space and no-break spaces: Go's {@code TrimSpace} and Python's
   * {@code strip} remove them where Java's {@code strip} keeps some).
   */
  static void checkModelName(String model, String what) throws BadRequestException {
    for (int i = 0; i < model.length(); i++) {
      if (Character.getType(model.charAt(i)) == Character.CONTROL) {
        throw new BadRequestException(what + " has a control character");
      }
    }
    if (!model.isEmpty() && isSpace(model.codePointAt(0))
        || isSpace(model.codePointBefore(model.length()))) {
      throw new BadRequestException(what + " starts or ends with white space");
    }
  }

  private static boolean isSpace(int cp) {
    return Character.isWhitespace(cp) || Character.isSpaceChar(cp);
  }

  /** The canonical path with the base path stripped when it sits under it, else the path itself. */
  public String relativePath(String path) {
    if (basePath.isEmpty()) return path;
    if (path.equals(basePath)) return "/";
    if (path.startsWith(basePath) && path.charAt(basePath.length()) == '/') {
      return path.substring(basePath.length());
    }
    return path;
  }

  /**
   * The operation {@code method} and {@code canonicalPath} name, whatever the body: what
   * {@link #classify} gives as the operation when the body is acceptable; {@code null} for none.
   */
  public String operation(String method, String canonicalPath) {
    if (!method.equalsIgnoreCase("POST")) return null;
    String relative = relativePath(canonicalPath);
    String operation = BODY_MODEL_PATHS.get(relative);
    return operation != null ? operation : inferModel(relative) != null ? INFER : null;
  }

  /** The model of a KServe v2 infer path, or {@code null} when the path is not one. */
  private static String inferModel(String path) {
    if (!path.startsWith("/v2/models/") || !path.endsWith("/infer")) return null;
    String[] segments = path.substring(1).split("/", -1);
    if (segments.length == 4) return segments[2];
    if (segments.length == 6 && segments[3].equals("versions")) return segments[2];
    return null;
  }

  private static boolean startsWithBrace(byte[] body) {
    if (body == null) return false;
    for (byte b : body) {
      if (b == ' ' || b == '\t' || b == '\n' || b == '\r') continue;
      return b == '{';
    }
    return false;
  }

  private static JsonNode parse(byte[] body) throws BadRequestException {
    if (body == null || body.length == 0) throw new BadRequestException("request body is empty");
    // Jackson's byte parser decodes overlong UTF-8 (C0 AF becomes "/") where other parsers
    // refuse it or substitute U+FFFD, so a model name could read differently to us and to the
    // upstream. Decoding strictly first also pins the encoding to UTF-8 (RFC 8259) instead of
    // letting Jackson guess UTF-16 or UTF-32.
    // The usual body is plain ASCII without NUL: valid UTF-8 as it is, with nothing for Jackson to
    // guess, so its byte parser reads it directly (no decoded copy, a faster parser).
    if (isPlainAscii(body)) return tree(body, null);
    String text = StrictUtf8.decode(body);
    if (text == null) throw new BadRequestException("malformed JSON body: not valid UTF-8");
    return tree(null, text);
  }

  /** The JSON tree of {@code bytes} (plain ASCII) or else of {@code text}. */
  private static JsonNode tree(byte[] bytes, String text) throws BadRequestException {
    JsonNode node;
    try {
      node = bytes != null ? JSON.readTree(bytes) : JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new BadRequestException("malformed JSON body: " + excerpt(e.getOriginalMessage()));
    } catch (java.io.IOException e) {
      throw new BadRequestException(
          "malformed JSON body: unreadable"); // not thrown for in-memory input
    }
    if (node == null || node.isMissingNode())
      throw new BadRequestException("request body is empty");
    return node;
  }

  /** Whether every byte is ASCII other than NUL (which Jackson takes as a sign of UTF-16 or UTF-32). */
  private static boolean isPlainAscii(byte[] body) {
    for (byte b : body) {
      if (b <= 0) return false; // NUL, or a byte >= 0x80
    }
    return true;
  }

  private static String excerpt(String message) {
    if (message == null) return "unreadable";
    String line = message.lines().findFirst().orElse("").strip();
    return line.length() <= MAX_EXCERPT ? line : line.substring(0, MAX_EXCERPT) + "...";
  }

  /**
   * How a request was classified. Immutable apart from {@code body}, a Jackson tree that
   * callers must treat as read-only. {@link #toString()} leaves the body out (it holds prompts).
   *
   * @param operation    {@code chat}, {@code completion}, {@code embedding}, {@code infer}, or
   *                     {@code null} when the request is not a recognised inference operation
   * @param model        the requested model, or {@code null} when not an operation
   * @param relativePath the canonical path with the base path stripped when it sits under it,
   *                     else the canonical path itself
   * @param body         the parsed body, or {@code null} when it was not parsed
   */
  public record Classification(String operation, String model, String relativePath, JsonNode body) {
    public Classification {
      Objects.requireNonNull(relativePath, "relativePath");
      if (operation != null && !OPERATIONS.contains(operation)) {
        throw new IllegalArgumentException("unknown operation \"" + operation + "\"");
      }
      if ((operation == null) != (model == null)) {
        throw new IllegalArgumentException("operation and model must both be set or both be null");
      }
    }

    /** True when the request is a recognised inference operation. */
    public boolean isInference() {
      return operation != null;
    }

    @Override
    public String toString() {
      return "Classification[operation="
          + operation
          + ", model="
          + model
          + ", relativePath="
          + relativePath
          + "]";
    }
  }
}
