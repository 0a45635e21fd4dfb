package dev.inferpam.core.internal;

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
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
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
 * <p>Also accepted: {@code request} (an inferpam extension) with {@code base-path} ({@code ""} or
 * {@code /a/b}), {@code max-body} (bytes, or a whole number of {@code KiB}, {@code MiB},
 * {@code GiB}; default {@value Policy#DEFAULT_MAX_BODY_BYTES} bytes), {@code body-timeout} and
 * {@code head-timeout} (durations, 1ms to 1h; default 30s each), {@code min-body-rate} (bytes per
 * second, written as a size; default 1KiB) and {@code max-connections-per-client} (a positive
 * whole number; absent: no cap) and {@code forward-headers} (header names the gateway forwards
 * from callers besides its own allow-list; see {@link ForwardHeaders}). {@code from-file} paths are
 * taken as written (relative ones against the working directory).
 */
public final class PolicyLoader {

  /** Operation names an entitlement may grant, in documentation order. */
  static final List<String> OPERATIONS = List.of("chat", "completion", "embedding", "infer");

  private static final String NOT_SUPPORTED = "not supported by this release of inferpam";

  private static final Set<String> TOP_KEYS = Set.of(
      "version", "request", "identity", "upstream", "entitlements", "allow", "block", "parameters", "recording",
      "masking", "approval", "limits");
  private static final Set<String> TOP_UNSUPPORTED = Set.of();

  private static final Pattern SIMPLE_KEY = Pattern.compile("[A-Za-z0-9_-]+");
  private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-fA-F]{64}");
  private static final Pattern METHOD = Pattern.compile("[A-Za-z][A-Za-z0-9_-]*");
  /** RFC 9110 token: header names and auth schemes. */
  private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
  private static final Pattern SIZE = Pattern.compile("([0-9]{1,19})(B|KiB|MiB|GiB)?");
  private static final Pattern SOURCE_REF = Pattern.compile("\\[Source: [^;\\]]*; line: (\\d+), column: (\\d+)]");
  private static final Pattern DUPLICATE = Pattern.compile("Duplicate (?:field|Object property) '(.*)'");
  /** Characters a base path may hold: RFC 3986 unreserved and a few sub-delims, no '%' or ';'. */
  private static final Pattern BASE_PATH_SEGMENT = Pattern.compile("[A-Za-z0-9._~!$&'()*+,=:@-]+");

  // Duplicate keys are refused: with two "block:" sections one would silently replace the other.
  // Parser messages must not quote the source (it is the policy file, but the habit matters).
  private static final ObjectMapper YAML = new YAMLMapper(YAMLFactory.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
      .build());
  private static final ObjectMapper JSON = JsonMapper.builder(JsonFactory.builder()
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
    boolean json = file.getFileName() != null
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
        throw new PolicyException(source + ": expected one " + format + " document, found more at line "
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
    if (root == null || root.isMissingNode() || root.isNull() || (root.isTextual() && root.textValue().isEmpty())) {
      throw new PolicyException(source + ": the document is empty; it needs at least \"version: 1\"");
    }
    if (!root.isObject()) {
      throw new PolicyException(source + ": expected a mapping at the top level, was " + PolicyText.describe(root));
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
    // Document order, so the first problem reported is the first one in the file.
    for (Map.Entry<String, JsonNode> field : root.properties()) {
      String key = field.getKey();
      JsonNode value = field.getValue();
      switch (key) {
        case "request" -> request = request(value, key);
        case "identity" -> identity = identity(value, key);
        case "upstream" -> upstream = upstream(value, key);
        case "entitlements" -> entitlements = entitlements(value, key);
        case "allow" -> allow = allow(value, key);
        case "block" -> block = block(value, key);
        case "parameters" -> parameters = parameters(value, key);
        case "recording" -> recording = recording(value, key);
        case "masking" -> masking = masking(value, key);
        case "approval" -> approval = approval(value, key);
        case "limits" -> limits = limits(value, key);
        default -> { } // version, done above
      }
    }
    return new Policy(version, request, identity, upstream, entitlements, allow, block, parameters, recording,
        masking, approval, limits);
  }

  private static int version(JsonNode v) {
    if (v == null) throw fail("version", "required");
    if (!v.isIntegralNumber()) throw fail("version", "expected 1, was " + PolicyText.describe(v));
    if (!v.canConvertToInt() || v.intValue() != 1) {
      throw fail("version", "unsupported version " + v.asText() + ", expected 1");
    }
    return 1;
  }

  private static Policy.RequestSettings request(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("base-path", "max-body", "body-timeout", "min-body-rate", "head-timeout",
        "max-connections-per-client", "forward-headers"), Set.of());
    String basePath = "";
    long maxBody = Policy.DEFAULT_MAX_BODY_BYTES;
    java.time.Duration bodyTimeout = Policy.RequestSettings.DEFAULT_BODY_TIMEOUT;
    long minBodyRate = Policy.RequestSettings.DEFAULT_MIN_BODY_RATE;
    java.time.Duration headTimeout = Policy.RequestSettings.DEFAULT_HEAD_TIMEOUT;
    int maxConnections = 0;
    if (n.has("base-path")) basePath = basePath(n.get("base-path"), child(path, "base-path"));
    if (n.has("max-body")) maxBody = size(n.get("max-body"), child(path, "max-body"));
    if (n.has("body-timeout")) bodyTimeout = boundedTimeout(n.get("body-timeout"), child(path, "body-timeout"));
    if (n.has("min-body-rate")) minBodyRate = size(n.get("min-body-rate"), child(path, "min-body-rate"));
    if (n.has("head-timeout")) headTimeout = boundedTimeout(n.get("head-timeout"), child(path, "head-timeout"));
    if (n.has("max-connections-per-client")) {
      maxConnections = positiveInt(n.get("max-connections-per-client"), child(path, "max-connections-per-client"));
    }
    // Checked (names, duplicates, headers never taken from a caller) by RequestSettings itself.
    List<String> forwardHeaders = n.has("forward-headers")
        ? strings(n.get("forward-headers"), child(path, "forward-headers"), false) : List.of();
    return new Policy.RequestSettings(basePath, maxBody, bodyTimeout, minBodyRate, headTimeout, maxConnections,
        forwardHeaders);
  }

  /** A timeout for reading a request: 1ms to 1h (a longer one would not bound anything). */
  private static java.time.Duration boundedTimeout(JsonNode n, String path) {
    java.time.Duration d = positiveDuration(n, path);
    if (d.compareTo(java.time.Duration.ofHours(1)) > 0) {
      throw fail(path, "must be at most 1h, was " + PolicyText.quote(n.textValue()));
    }
    return d;
  }

  private static String basePath(JsonNode n, String path) {
    String s = text(n, path);
    if (s.isEmpty()) return s;
    if (!s.startsWith("/") || s.endsWith("/")) {
      throw fail(path, "must be empty or start with \"/\" and not end with \"/\", was " + PolicyText.quote(s));
    }
    for (String segment : s.substring(1).split("/", -1)) {
      // The engine compares canonical paths with it, so it must itself be canonical.
      if (segment.equals(".") || segment.equals("..") || !BASE_PATH_SEGMENT.matcher(segment).matches()) {
        throw fail(path, "must be a plain path such as /openai (no empty, dot, encoded or special segments), was "
            + PolicyText.quote(s));
      }
    }
    return s;
  }

  /** A size: an integer number of bytes, or a string like {@code 1000}, {@code 512KiB}, {@code 8MiB}. */
  static long size(JsonNode n, String path) {
    long bytes;
    if (n.isIntegralNumber()) {
      if (!n.canConvertToLong()) throw fail(path, "too large, was " + PolicyText.describe(n));
      bytes = n.longValue();
    } else if (n.isTextual()) {
      Matcher m = SIZE.matcher(n.textValue());
      if (!m.matches()) {
        throw fail(path, "invalid size " + PolicyText.describe(n)
            + ": expected bytes or a whole number of KiB, MiB or GiB, e.g. 8MiB");
      }
      int shift = m.group(2) == null ? 0 : switch (m.group(2)) {
        case "KiB" -> 10;
        case "MiB" -> 20;
        case "GiB" -> 30;
        default -> 0;
      };
      try {
        long count = Long.parseLong(m.group(1));
        if (count > (Long.MAX_VALUE >> shift)) throw new NumberFormatException();
        bytes = count << shift;
      } catch (NumberFormatException e) {
        throw fail(path, "too large, was " + PolicyText.describe(n));
      }
    } else {
      throw fail(path, "expected a size such as 8MiB, was " + PolicyText.describe(n));
    }
    if (bytes <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return bytes;
  }

  // identity ------------------------------------------------------------------------------------

  private static Policy.Identity identity(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("api-keys", "oidc"), Set.of());
    List<Policy.ApiKey> keys = new ArrayList<>();
    if (n.has("api-keys")) {
      String listPath = child(path, "api-keys");
      JsonNode list = list(n.get("api-keys"), listPath, "a list of keys");
      Map<String, String> names = new HashMap<>();
      Map<String, String> hashes = new HashMap<>();
      for (int i = 0; i < list.size(); i++) {
        String itemPath = index(listPath, i);
        Policy.ApiKey key = apiKey(list.get(i), itemPath);
        String seen = names.putIfAbsent(key.name(), itemPath);
        if (seen != null) {
          throw fail(child(itemPath, "name"), "duplicate name " + PolicyText.quote(key.name()) + " (also " + seen + ")");
        }
        // One key must identify one principal.
        String sameKey = hashes.putIfAbsent(key.sha256Hex(), itemPath);
        if (sameKey != null) throw fail(child(itemPath, "sha256"), "same key as " + sameKey);
        keys.add(key);
      }
    }
    List<Policy.OidcIssuer> oidc = List.of();
    if (n.has("oidc")) oidc = oidcIssuers(n.get("oidc"), child(path, "oidc"));
    return new Policy.Identity(keys, oidc);
  }

  /**
   * {@code identity.oidc}: a list of issuers, each with {@code issuer} (absolute https URL, http
   * only for loopback hosts, no query) and {@code audience} required; optional {@code jwks-uri}
   * (same URL rule), {@code algorithms} (asymmetric only; {@code none} and HMAC are refused),
   * {@code groups-claim} / {@code subject-claim} (dotted paths), {@code require-type} and
   * {@code clock-skew} (0s to 5m). Rules shared with {@link OidcResolver} are in {@link OidcRules}.
   */
  private static List<Policy.OidcIssuer> oidcIssuers(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of issuers");
    List<Policy.OidcIssuer> out = new ArrayList<>();
    Map<String, String> seen = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      String itemPath = index(path, i);
      Policy.OidcIssuer issuer = oidcIssuer(list.get(i), itemPath);
      // Tokens are matched to an issuer by "iss"; two entries for one issuer would be ambiguous.
      String other = seen.putIfAbsent(issuer.issuer(), itemPath);
      if (other != null) {
        throw fail(child(itemPath, "issuer"), "duplicate issuer " + PolicyText.quote(issuer.issuer()) + " (also " + other + ")");
      }
      out.add(issuer);
    }
    return out;
  }

  private static Policy.OidcIssuer oidcIssuer(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("issuer", "audience", "jwks-uri", "algorithms", "groups-claim", "subject-claim",
        "require-type", "clock-skew"), Set.of());
    String issuer = oidcUrl(required(n, path, "issuer"), child(path, "issuer"), true);
    String audience = nonEmpty(required(n, path, "audience"), child(path, "audience"));
    java.net.URI jwksUri = null; // absent: discovered from the issuer
    if (n.has("jwks-uri")) jwksUri = java.net.URI.create(oidcUrl(n.get("jwks-uri"), child(path, "jwks-uri"), false));
    List<String> algorithms = null; // absent: Policy.OidcIssuer applies the default
    if (n.has("algorithms")) {
      String algPath = child(path, "algorithms");
      List<String> list = strings(n.get("algorithms"), algPath, true);
      for (int i = 0; i < list.size(); i++) {
        String problem = OidcRules.algorithmProblem(list.get(i));
        if (problem != null) throw fail(index(algPath, i), problem + ", was " + PolicyText.quote(list.get(i)));
      }
      algorithms = List.copyOf(new LinkedHashSet<>(list));
    }
    String groupsClaim = n.has("groups-claim") ? claimPath(n.get("groups-claim"), child(path, "groups-claim")) : null;
    String subjectClaim = n.has("subject-claim") ? claimPath(n.get("subject-claim"), child(path, "subject-claim")) : null;
    String requireType = null;
    if (n.has("require-type")) {
      String typePath = child(path, "require-type");
      requireType = text(n.get("require-type"), typePath);
      String problem = OidcRules.typeProblem(requireType);
      if (problem != null) throw fail(typePath, problem + ", was " + PolicyText.quote(requireType));
    }
    java.time.Duration clockSkew = null; // absent: Policy.OidcIssuer applies the default
    if (n.has("clock-skew")) {
      String skewPath = child(path, "clock-skew");
      JsonNode skew = n.get("clock-skew");
      if (!skew.isTextual()) throw fail(skewPath, "expected a duration such as 30s, was " + PolicyText.describe(skew));
      try {
        clockSkew = Durations.parse(skew.textValue());
      } catch (IllegalArgumentException e) {
        throw fail(skewPath, e.getMessage());
      }
      String problem = OidcRules.clockSkewProblem(clockSkew);
      if (problem != null) throw fail(skewPath, problem + ", was " + PolicyText.quote(skew.textValue()));
    }
    return new Policy.OidcIssuer(issuer, audience, jwksUri, algorithms, groupsClaim, subjectClaim, requireType,
        clockSkew);
  }

  private static String oidcUrl(JsonNode n, String path, boolean issuer) {
    String url = nonEmpty(n, path);
    String problem = OidcRules.urlProblem(url, issuer);
    if (problem != null) {
      throw fail(path, OidcRules.hasUserInfo(url) ? problem : problem + ", was " + PolicyText.quote(url));
    }
    return url;
  }

  private static String claimPath(JsonNode n, String path) {
    String claim = text(n, path);
    String problem = OidcRules.claimPathProblem(claim);
    if (problem != null) throw fail(path, problem + ", was " + PolicyText.quote(claim));
    return claim;
  }

  private static Policy.ApiKey apiKey(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("name", "sha256", "groups", "expires"), Set.of());
    String name = nonEmpty(required(n, path, "name"), child(path, "name"));
    JsonNode hash = required(n, path, "sha256");
    // The value is not echoed: someone may have pasted the key itself instead of its hash.
    if (!hash.isTextual() || !SHA256_HEX.matcher(hash.textValue()).matches()) {
      throw fail(child(path, "sha256"), "expected 64 hex characters");
    }
    Set<String> groups = Set.of();
    if (n.has("groups")) {
      String groupsPath = child(path, "groups");
      List<String> list = strings(n.get("groups"), groupsPath, false);
      for (int i = 0; i < list.size(); i++) {
        // "*" means "any group" in rules; a principal holding it would be ambiguous.
        if (list.get(i).equals("*")) throw fail(index(groupsPath, i), "\"*\" is not a group name");
      }
      groups = new LinkedHashSet<>(list);
    }
    Instant expires = null;
    if (n.has("expires")) expires = instant(n.get("expires"), child(path, "expires"));
    return new Policy.ApiKey(name, hash.textValue().toLowerCase(Locale.ROOT), groups, expires);
  }

  private static Instant instant(JsonNode n, String path) {
    String s = text(n, path);
    try {
      return Instant.parse(s);
    } catch (DateTimeParseException e) {
      try {
        return OffsetDateTime.parse(s).toInstant();
      } catch (DateTimeParseException e2) {
        throw fail(path, "expected an ISO-8601 instant such as 2027-01-31T00:00:00Z, was " + PolicyText.quote(s));
      }
    }
  }

  // upstream ------------------------------------------------------------------------------------

  private static Policy.Upstream upstream(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("credential"), Set.of());
    Policy.CredentialSource credential = null;
    if (n.has("credential")) credential = credential(n.get("credential"), child(path, "credential"));
    return new Policy.Upstream(credential);
  }

  private static Policy.CredentialSource credential(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("header", "scheme", "from-env", "from-file", "oauth2"), Set.of());
    String header = "Authorization";
    if (n.has("header")) {
      String headerPath = child(path, "header");
      header = text(n.get("header"), headerPath);
      if (!TOKEN.matcher(header).matches()) {
        throw fail(headerPath, "expected a header name, was " + PolicyText.quote(header));
      }
    }
    String scheme = null; // absent: CredentialProviders picks Bearer for Authorization, none otherwise
    if (n.has("scheme")) {
      String schemePath = child(path, "scheme");
      scheme = text(n.get("scheme"), schemePath); // "" sends the raw value
      if (!scheme.isEmpty() && !TOKEN.matcher(scheme).matches()) {
        throw fail(schemePath, "expected a scheme such as Bearer, or \"\" for raw values, was " + PolicyText.quote(scheme));
      }
    }
    int sources = (n.has("from-env") ? 1 : 0) + (n.has("from-file") ? 1 : 0) + (n.has("oauth2") ? 1 : 0);
    if (sources != 1) throw fail(path, "exactly one of from-env / from-file / oauth2");
    String fromEnv = null;
    Path fromFile = null;
    Policy.OAuth2 oauth2 = null;
    if (n.has("from-env")) {
      fromEnv = envVarName(n.get("from-env"), child(path, "from-env"));
    } else if (n.has("from-file")) {
      fromFile = filePath(n.get("from-file"), child(path, "from-file"));
    } else {
      oauth2 = oauth2(n.get("oauth2"), child(path, "oauth2"));
    }
    return new Policy.CredentialSource(header, scheme, fromEnv, fromFile, oauth2);
  }

  /**
   * {@code upstream.credential.oauth2}: {@code token-endpoint} (absolute https URL; http only for
   * loopback hosts) and {@code client-id} required, exactly one of {@code client-secret-from-env}
   * / {@code client-secret-from-file}, optional {@code scope}, {@code audience} and
   * {@code refresh-before} (a duration, default {@link Policy.OAuth2#DEFAULT_REFRESH_BEFORE}).
   */
  private static Policy.OAuth2 oauth2(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("token-endpoint", "client-id", "client-secret-from-env", "client-secret-from-file",
        "scope", "audience", "refresh-before"), Set.of());
    String endpointPath = child(path, "token-endpoint");
    String endpointText = nonEmpty(required(n, path, "token-endpoint"), endpointPath);
    java.net.URI endpoint;
    try {
      endpoint = new java.net.URI(endpointText);
    } catch (java.net.URISyntaxException e) {
      throw fail(endpointPath, "expected an absolute https URL, was " + PolicyText.quote(endpointText));
    }
    String problem = OAuth2CredentialProvider.tokenEndpointProblem(endpoint);
    if (problem != null) throw fail(endpointPath, problem);
    String clientId = nonEmpty(required(n, path, "client-id"), child(path, "client-id"));
    if (n.has("client-secret-from-env") == n.has("client-secret-from-file")) {
      throw fail(path, "exactly one of client-secret-from-env / client-secret-from-file");
    }
    String secretEnv = null;
    Path secretFile = null;
    if (n.has("client-secret-from-env")) {
      secretEnv = envVarName(n.get("client-secret-from-env"), child(path, "client-secret-from-env"));
    } else {
      secretFile = filePath(n.get("client-secret-from-file"), child(path, "client-secret-from-file"));
    }
    String scope = n.has("scope") ? nonEmpty(n.get("scope"), child(path, "scope")) : null;
    String audience = n.has("audience") ? nonEmpty(n.get("audience"), child(path, "audience")) : null;
    java.time.Duration refreshBefore = null; // absent: Policy.OAuth2 applies the default
    if (n.has("refresh-before")) {
      String refreshPath = child(path, "refresh-before");
      try {
        refreshBefore = Durations.parse(text(n.get("refresh-before"), refreshPath));
      } catch (IllegalArgumentException e) {
        throw fail(refreshPath, e.getMessage());
      }
    }
    return new Policy.OAuth2(endpoint, clientId, secretEnv, secretFile, scope, audience, refreshBefore);
  }

  private static String envVarName(JsonNode n, String path) {
    String name = nonEmpty(n, path);
    if (name.indexOf('=') >= 0 || name.indexOf('\0') >= 0) {
      throw fail(path, "expected an environment variable name, was " + PolicyText.quote(name));
    }
    return name;
  }

  private static Path filePath(JsonNode n, String path) {
    String s = nonEmpty(n, path);
    try {
      return Path.of(s);
    } catch (InvalidPathException e) {
      throw fail(path, "invalid path " + PolicyText.quote(s));
    }
  }

  // entitlements / allow / block ----------------------------------------------------------------

  private static List<Policy.Entitlement> entitlements(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of entitlements");
    List<Policy.Entitlement> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String p = index(path, i);
      JsonNode e = list.get(i);
      mapping(e, p);
      keys(e, p, Set.of("groups", "models", "operations"), Set.of());
      Set<String> groups = groups(required(e, p, "groups"), child(p, "groups"));
      List<Glob> models = globs(required(e, p, "models"), child(p, "models"), false);
      Set<String> ops = operations(required(e, p, "operations"), child(p, "operations"));
      out.add(new Policy.Entitlement(groups, models, ops));
    }
    return out;
  }

  private static List<Policy.AllowRule> allow(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of rules");
    List<Policy.AllowRule> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String p = index(path, i);
      JsonNode r = list.get(i);
      mapping(r, p);
      keys(r, p, Set.of("groups", "methods", "paths"), Set.of());
      Set<String> groups = groups(required(r, p, "groups"), child(p, "groups"));
      Set<String> methods = methods(required(r, p, "methods"), child(p, "methods"));
      List<Glob> paths = globs(required(r, p, "paths"), child(p, "paths"), true);
      out.add(new Policy.AllowRule(groups, methods, paths));
    }
    return out;
  }

  private static Policy.Block block(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("presets", "rules"), Set.of());
    List<String> presets = presets(n, path, Presets::rules);
    List<Policy.BlockRule> rules = new ArrayList<>();
    if (n.has("rules")) {
      String rulesPath = child(path, "rules");
      JsonNode list = list(n.get("rules"), rulesPath, "a list of rules");
      Map<String, String> names = new HashMap<>();
      for (int i = 0; i < list.size(); i++) {
        String p = index(rulesPath, i);
        JsonNode r = list.get(i);
        mapping(r, p);
        keys(r, p, Set.of("name", "methods", "paths"), Set.of());
        String namePath = child(p, "name");
        String name = nonEmpty(required(r, p, "name"), namePath);
        // Decisions and recordings name the rule that decided; that must be unambiguous.
        if (name.indexOf(':') >= 0) throw fail(namePath, "\":\" is reserved for preset rule names, was " + PolicyText.quote(name));
        String seen = names.putIfAbsent(name, p);
        if (seen != null) throw fail(namePath, "duplicate name " + PolicyText.quote(name) + " (also " + seen + ")");
        Set<String> methods = methods(required(r, p, "methods"), child(p, "methods"));
        List<Glob> paths = globs(required(r, p, "paths"), child(p, "paths"), true);
        rules.add(new Policy.BlockRule(name, methods, paths));
      }
    }
    return new Policy.Block(presets, rules);
  }

  /**
   * The section's {@code presets} list, each name checked by {@code lookup} (which throws
   * {@link IllegalArgumentException} naming the known presets for an unknown one); empty without
   * the key.
   */
  private static List<String> presets(JsonNode n, String path, java.util.function.Function<String, ?> lookup) {
    if (!n.has("presets")) return List.of();
    String presetsPath = child(path, "presets");
    List<String> presets = strings(n.get("presets"), presetsPath, false);
    for (int i = 0; i < presets.size(); i++) {
      try {
        lookup.apply(presets.get(i));
      } catch (IllegalArgumentException e) {
        throw fail(index(presetsPath, i), e.getMessage());
      }
    }
    return List.copyOf(new LinkedHashSet<>(presets)); // naming one twice adds nothing
  }

  // parameters ----------------------------------------------------------------------------------

  private static Policy.Parameters parameters(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("deny", "max", "exempt-groups", "presets"), Set.of());
    Set<String> deny = Set.of();
    Map<String, Double> max = Map.of();
    Set<String> exempt = Set.of();
    List<String> presets = presets(n, path, ParameterPresets::preset);
    if (n.has("deny")) deny = new LinkedHashSet<>(strings(n.get("deny"), child(path, "deny"), false));
    if (n.has("max")) {
      String maxPath = child(path, "max");
      JsonNode m = n.get("max");
      mapping(m, maxPath);
      Map<String, Double> out = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : m.properties()) {
        String p = child(maxPath, e.getKey());
        if (e.getKey().isEmpty()) throw fail(p, "parameter name must not be empty");
        double cap = number(e.getValue(), p);
        // values are allowed in 0..max (a negative bound means "no limit" to some servers)
        if (cap < 0) throw fail(p, "must be >= 0 (values are allowed in 0..max), was " + PolicyText.describe(e.getValue()));
        out.put(e.getKey(), cap);
      }
      max = out;
    }
    if (n.has("exempt-groups")) {
      String p = child(path, "exempt-groups");
      exempt = new LinkedHashSet<>(strings(n.get("exempt-groups"), p, false));
    }
    return new Policy.Parameters(deny, max, exempt, presets);
  }

  // recording -----------------------------------------------------------------------------------

  /**
   * {@code recording}: {@code directory} (required; relative paths are taken against the working
   * directory, as written), {@code bodies} ({@code masked | full | none}), {@code durability}
   * ({@code strict | batched | async}), {@code retention} (a duration > 0), and the inferpam
   * extensions {@code segment-size} (a size as for {@code request.max-body}),
   * {@code queue-capacity} and {@code batch-size} (whole numbers > 0), {@code batch-interval}
   * (a duration > 0) and {@code queue-full-wait} (0s..30s). Absent keys take the defaults of
   * {@link Policy.Recording}.
   */
  private static Policy.Recording recording(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("directory", "bodies", "durability", "retention", "segment-size", "queue-capacity",
        "batch-interval", "batch-size", "queue-full-wait"), Set.of());
    java.nio.file.Path directory = filePath(required(n, path, "directory"), child(path, "directory"));
    Policy.Bodies bodies = null;
    if (n.has("bodies")) bodies = choice(n.get("bodies"), child(path, "bodies"), Policy.Bodies.class);
    Policy.Durability durability = null;
    if (n.has("durability")) {
      durability = choice(n.get("durability"), child(path, "durability"), Policy.Durability.class);
    }
    java.time.Duration retention = null;
    if (n.has("retention")) retention = positiveDuration(n.get("retention"), child(path, "retention"));
    long segmentBytes = 0; // 0: Policy.Recording applies the default
    if (n.has("segment-size")) segmentBytes = size(n.get("segment-size"), child(path, "segment-size"));
    int queueCapacity = 0;
    if (n.has("queue-capacity")) queueCapacity = positiveInt(n.get("queue-capacity"), child(path, "queue-capacity"));
    java.time.Duration batchInterval = null;
    if (n.has("batch-interval")) {
      batchInterval = positiveDuration(n.get("batch-interval"), child(path, "batch-interval"));
    }
    int batchSize = 0;
    if (n.has("batch-size")) batchSize = positiveInt(n.get("batch-size"), child(path, "batch-size"));
    java.time.Duration queueFullWait = null;
    if (n.has("queue-full-wait")) {
      String p = child(path, "queue-full-wait");
      queueFullWait = duration(n.get("queue-full-wait"), p);
      if (queueFullWait.compareTo(java.time.Duration.ofSeconds(30)) > 0) {
        throw fail(p, "must be at most 30s, was " + PolicyText.quote(n.get("queue-full-wait").asText()));
      }
    }
    return new Policy.Recording(directory, bodies, durability, retention, segmentBytes, queueCapacity,
        batchInterval, batchSize, queueFullWait);
  }

  // masking -------------------------------------------------------------------------------------

  /** Names of custom patterns and word lists: they become labels such as {@code [EMPLOYEE_ID]}. */
  private static final Pattern MASK_NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}");

  /**
   * {@code masking}: {@code detectors} (built-in names; absent means all of them, {@code []}
   * none), {@code custom} (list of {@code {name, pattern}}, each pattern checked by
   * {@link dev.inferpam.core.internal.masking.CustomPatterns#check}), {@code words} (list of
   * {@code {name, list, ignore-case}}), {@code strategy} ({@code redact | partial | hash}),
   * {@code hash-key-from-env} / {@code hash-key-from-file} (exactly one with {@code hash}, neither
   * otherwise) and {@code exempt-groups}. Names of custom patterns and word lists are lower-case
   * {@code a-z 0-9 -}, unique, and not a built-in name.
   */
  private static Policy.Masking masking(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("detectors", "custom", "words", "strategy", "hash-key-from-env", "hash-key-from-file",
        "exempt-groups", "max-hold-back"), Set.of());
    List<String> known = dev.inferpam.core.internal.masking.Detectors.NAMES;
    List<String> detectors = known;
    if (n.has("detectors")) {
      String p = child(path, "detectors");
      List<String> names = strings(n.get("detectors"), p, false);
      for (int i = 0; i < names.size(); i++) {
        if (!known.contains(names.get(i))) {
          throw fail(index(p, i), "unknown detector " + PolicyText.quote(names.get(i))
              + " (known: " + String.join(", ", known) + ")");
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
          if (!b.isBoolean()) throw fail(child(p, "ignore-case"), "expected true or false, was " + PolicyText.describe(b));
          ignoreCase = b.booleanValue();
        }
        words.add(new Policy.WordList(name, entries, ignoreCase));
      }
    }
    Policy.MaskStrategy strategy = Policy.MaskStrategy.REDACT;
    if (n.has("strategy")) strategy = choice(n.get("strategy"), child(path, "strategy"), Policy.MaskStrategy.class);
    String keyEnv = null;
    java.nio.file.Path keyFile = null;
    if (n.has("hash-key-from-env")) keyEnv = envVarName(n.get("hash-key-from-env"), child(path, "hash-key-from-env"));
    if (n.has("hash-key-from-file")) keyFile = filePath(n.get("hash-key-from-file"), child(path, "hash-key-from-file"));
    if (strategy == Policy.MaskStrategy.HASH) {
      if ((keyEnv == null) == (keyFile == null)) {
        throw fail(path, "strategy hash needs exactly one of hash-key-from-env / hash-key-from-file");
      }
    } else if (keyEnv != null || keyFile != null) {
      String key = keyEnv != null ? "hash-key-from-env" : "hash-key-from-file";
      throw fail(child(path, key), "only used with strategy hash, strategy is "
          + strategy.name().toLowerCase(Locale.ROOT));
    }
    Set<String> exempt = Set.of();
    if (n.has("exempt-groups")) exempt = new LinkedHashSet<>(strings(n.get("exempt-groups"), child(path, "exempt-groups"), false));
    int maxHoldBack = Policy.Masking.DEFAULT_MAX_HOLD_BACK;
    if (n.has("max-hold-back")) {
      String p = child(path, "max-hold-back");
      long v = size(n.get("max-hold-back"), p);
      if (v < 1 || v > 1024 * 1024) throw fail(p, "expected a size between 1 and 1MiB, was " + v);
      maxHoldBack = (int) v;
    }
    return new Policy.Masking(detectors, custom, words, strategy, keyEnv, keyFile, exempt, maxHoldBack);
  }

  private static String maskName(JsonNode n, String path, Map<String, String> seen, List<String> builtIn) {
    String name = nonEmpty(n, path);
    if (!MASK_NAME.matcher(name).matches()) {
      throw fail(path, "expected lower-case letters, digits and \"-\" (e.g. employee-id), was " + PolicyText.quote(name));
    }
    if (builtIn.contains(name)) throw fail(path, "the name of a built-in detector, was " + PolicyText.quote(name));
    String other = seen.putIfAbsent(name, path);
    if (other != null) throw fail(path, "duplicate name " + PolicyText.quote(name) + " (also " + other + ")");
    return name;
  }

  // approval ------------------------------------------------------------------------------------

  /**
   * {@code approval}: {@code reviewers} (required, non-empty list of groups, not {@code *}),
   * {@code timeout} (a duration, > 0 and at most 1h, default 5m), {@code grant} (0s to 1d, default
   * 0s), {@code rules} (required, non-empty list) and the inferpam extensions
   * {@code max-pending-per-principal} (default 5) and {@code max-pending} (default 1000), whole
   * numbers > 0 with the first not above the second.
   *
   * <p>Each rule has a {@code name} (required, unique, no {@code :}) and at least one condition:
   * {@code prompt-matches} (a regular expression checked like {@code masking.custom} patterns by
   * {@link dev.inferpam.core.internal.masking.CustomPatterns#check}: bounded quantifiers, no
   * nested repetition, so matching is linear in the prompt; it is searched as {@link ApprovalRules}
   * says, in the prompt as a reader sees it), {@code max-tokens-over} (a whole
   * number >= 0), {@code models} (globs), {@code operations} (known operation names) and
   * {@code groups} (who triggers review; {@code *} for anyone).
   */
  private static Policy.Approval approval(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("reviewers", "timeout", "grant", "rules", "max-pending-per-principal", "max-pending"),
        Set.of());
    String reviewersPath = child(path, "reviewers");
    List<String> reviewerList = strings(required(n, path, "reviewers"), reviewersPath, true);
    for (int i = 0; i < reviewerList.size(); i++) {
      if (reviewerList.get(i).equals("*")) {
        throw fail(index(reviewersPath, i), "\"*\" would let anyone approve; name the reviewer groups");
      }
    }
    Set<String> reviewers = new LinkedHashSet<>(reviewerList);
    java.time.Duration timeout = Policy.Approval.DEFAULT_TIMEOUT;
    if (n.has("timeout")) {
      String p = child(path, "timeout");
      timeout = positiveDuration(n.get("timeout"), p);
      if (timeout.compareTo(Policy.Approval.MAX_TIMEOUT) > 0) {
        throw fail(p, "must be at most 1h, was " + PolicyText.quote(n.get("timeout").textValue()));
      }
    }
    java.time.Duration grant = java.time.Duration.ZERO;
    if (n.has("grant")) {
      String p = child(path, "grant");
      grant = duration(n.get("grant"), p);
      if (grant.compareTo(Policy.Approval.MAX_GRANT) > 0) {
        throw fail(p, "must be at most 1d, was " + PolicyText.quote(n.get("grant").textValue()));
      }
    }
    String rulesPath = child(path, "rules");
    JsonNode list = list(required(n, path, "rules"), rulesPath, "a list of rules");
    if (list.isEmpty()) throw fail(rulesPath, "must not be empty");
    List<Policy.ApprovalRule> rules = new ArrayList<>();
    Map<String, String> names = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      rules.add(approvalRule(list.get(i), index(rulesPath, i), names));
    }
    int perPrincipal = Policy.Approval.DEFAULT_MAX_PENDING_PER_PRINCIPAL;
    if (n.has("max-pending-per-principal")) {
      perPrincipal = positiveInt(n.get("max-pending-per-principal"), child(path, "max-pending-per-principal"));
    }
    int total = Policy.Approval.DEFAULT_MAX_PENDING;
    if (n.has("max-pending")) total = positiveInt(n.get("max-pending"), child(path, "max-pending"));
    if (perPrincipal > total) {
      throw fail(child(path, "max-pending-per-principal"), "must not exceed max-pending (" + total + "), was "
          + perPrincipal);
    }
    return new Policy.Approval(reviewers, timeout, grant, rules, perPrincipal, total);
  }

  private static Policy.ApprovalRule approvalRule(JsonNode n, String path, Map<String, String> names) {
    mapping(n, path);
    keys(n, path, Set.of("name", "prompt-matches", "max-tokens-over", "models", "operations", "groups"), Set.of());
    String namePath = child(path, "name");
    String name = nonEmpty(required(n, path, "name"), namePath);
    // Decisions and records name the rule; "approval.rules[0] (x)" style names must stay unambiguous.
    if (name.indexOf(':') >= 0) throw fail(namePath, "\":\" is not allowed in a rule name, was " + PolicyText.quote(name));
    String seen = names.putIfAbsent(name, path);
    if (seen != null) throw fail(namePath, "duplicate name " + PolicyText.quote(name) + " (also " + seen + ")");
    String prompt = null;
    if (n.has("prompt-matches")) {
      String p = child(path, "prompt-matches");
      prompt = nonEmpty(n.get("prompt-matches"), p);
      try {
        dev.inferpam.core.internal.masking.CustomPatterns.check(prompt);
      } catch (IllegalArgumentException e) {
        throw fail(p, e.getMessage() + ", was " + PolicyText.quote(prompt));
      }
    }
    Long maxTokens = null;
    if (n.has("max-tokens-over")) {
      String p = child(path, "max-tokens-over");
      JsonNode v = n.get("max-tokens-over");
      if (!v.isIntegralNumber()) throw fail(p, "expected a whole number, was " + PolicyText.describe(v));
      if (!v.canConvertToLong()) throw fail(p, "too large, was " + PolicyText.describe(v));
      if (v.longValue() < 0) throw fail(p, "must be >= 0, was " + PolicyText.describe(v));
      maxTokens = v.longValue();
    }
    List<Glob> models = List.of();
    if (n.has("models")) models = globs(n.get("models"), child(path, "models"), false);
    Set<String> operations = Set.of();
    if (n.has("operations")) operations = operations(n.get("operations"), child(path, "operations"));
    Set<String> groups = Set.of();
    if (n.has("groups")) groups = groups(n.get("groups"), child(path, "groups"));
    if (prompt == null && maxTokens == null && models.isEmpty() && operations.isEmpty() && groups.isEmpty()) {
      throw fail(path, "rule " + PolicyText.quote(name) + " has no condition: give at least one of prompt-matches, "
          + "max-tokens-over, models, operations, groups");
    }
    return new Policy.ApprovalRule(name, prompt, maxTokens, models, operations, groups);
  }

  // limits --------------------------------------------------------------------------------------

  /**
   * {@code limits}: a non-empty list of entries with {@code groups} (required), optional
   * {@code models} and {@code operations}, and at least one of {@code requests-per-minute},
   * {@code tokens-per-minute}, {@code tokens-per-day} (whole numbers {@code > 0}).
   */
  private static List<Policy.Limit> limits(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of limits");
    if (list.isEmpty()) throw fail(path, "must not be empty");
    List<Policy.Limit> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) out.add(limit(list.get(i), index(path, i)));
    return out;
  }

  private static Policy.Limit limit(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("groups", "models", "operations", "requests-per-minute", "tokens-per-minute",
        "tokens-per-day"), Set.of());
    Set<String> groups = groups(required(n, path, "groups"), child(path, "groups"));
    List<Glob> models = List.of();
    if (n.has("models")) models = globs(n.get("models"), child(path, "models"), false);
    Set<String> operations = Set.of();
    if (n.has("operations")) operations = operations(n.get("operations"), child(path, "operations"));
    Long rpm = n.has("requests-per-minute") ? positiveLong(n.get("requests-per-minute"), child(path, "requests-per-minute")) : null;
    Long tpm = n.has("tokens-per-minute") ? positiveLong(n.get("tokens-per-minute"), child(path, "tokens-per-minute")) : null;
    Long tpd = n.has("tokens-per-day") ? positiveLong(n.get("tokens-per-day"), child(path, "tokens-per-day")) : null;
    if (rpm == null && tpm == null && tpd == null) {
      throw fail(path, "give at least one of requests-per-minute, tokens-per-minute, tokens-per-day");
    }
    return new Policy.Limit(groups, models, operations, rpm, tpm, tpd);
  }

  private static long positiveLong(JsonNode n, String path) {
    if (!n.isIntegralNumber()) throw fail(path, "expected a whole number, was " + PolicyText.describe(n));
    if (!n.canConvertToLong()) throw fail(path, "too large, was " + PolicyText.describe(n));
    if (n.longValue() <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return n.longValue();
  }

  /** One of an enum's constants, written in lower case. */
  private static <E extends Enum<E>> E choice(JsonNode n, String path, Class<E> type) {
    List<String> names = new ArrayList<>();
    for (E e : type.getEnumConstants()) names.add(e.name().toLowerCase(Locale.ROOT));
    String expected = "expected one of " + String.join(", ", names);
    if (!n.isTextual()) throw fail(path, expected + ", was " + PolicyText.describe(n));
    for (E e : type.getEnumConstants()) {
      if (e.name().toLowerCase(Locale.ROOT).equals(n.textValue())) return e;
    }
    throw fail(path, expected + ", was " + PolicyText.quote(n.textValue()));
  }

  private static java.time.Duration positiveDuration(JsonNode n, String path) {
    java.time.Duration d = duration(n, path);
    if (d.isZero()) throw fail(path, "must be > 0, was " + PolicyText.quote(n.textValue()));
    return d;
  }

  private static java.time.Duration duration(JsonNode n, String path) {
    if (!n.isTextual()) throw fail(path, "expected a duration such as 30s, was " + PolicyText.describe(n));
    try {
      return Durations.parse(n.textValue());
    } catch (IllegalArgumentException e) {
      throw fail(path, e.getMessage());
    }
  }

  private static int positiveInt(JsonNode n, String path) {
    if (!n.isIntegralNumber()) throw fail(path, "expected a whole number, was " + PolicyText.describe(n));
    if (!n.canConvertToInt()) throw fail(path, "too large, was " + PolicyText.describe(n));
    if (n.intValue() <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return n.intValue();
  }

  // ---------------------------------------------------------------------------------------------
  // Typed values

  /** A non-empty list of known operation names. */
  private static Set<String> operations(JsonNode n, String path) {
    List<String> ops = strings(n, path, true);
    for (int j = 0; j < ops.size(); j++) {
      if (!OPERATIONS.contains(ops.get(j))) {
        throw fail(index(path, j), "unknown operation " + PolicyText.quote(ops.get(j))
            + " (known: " + String.join(", ", OPERATIONS) + ")");
      }
    }
    return new LinkedHashSet<>(ops);
  }

  private static Set<String> groups(JsonNode n, String path) {
    return new LinkedHashSet<>(strings(n, path, true));
  }

  private static Set<String> methods(JsonNode n, String path) {
    List<String> list = strings(n, path, true);
    Set<String> out = new LinkedHashSet<>();
    for (int i = 0; i < list.size(); i++) {
      String m = list.get(i);
      if (!m.equals("*") && !METHOD.matcher(m).matches()) {
        throw fail(index(path, i), "expected an HTTP method or \"*\", was " + PolicyText.quote(m));
      }
      out.add(m.toUpperCase(Locale.ROOT));
    }
    return out;
  }

  private static List<Glob> globs(JsonNode n, String path, boolean requestPaths) {
    List<String> list = strings(n, path, true);
    List<Glob> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String s = list.get(i);
      if (requestPaths && !s.startsWith("/")) {
        throw fail(index(path, i), "must start with \"/\", was " + PolicyText.quote(s));
      }
      try {
        out.add(Glob.compile(s));
      } catch (IllegalArgumentException e) {
        throw fail(index(path, i), e.getMessage());
      }
    }
    return out;
  }

  private static double number(JsonNode n, String path) {
    if (!n.isNumber()) throw fail(path, "expected a number, was " + PolicyText.describe(n));
    double d = n.doubleValue();
    if (!Double.isFinite(d)) throw fail(path, "expected a finite number, was " + PolicyText.describe(n));
    return d;
  }

  /**
   * A list of non-empty strings. A single string where a list is expected is an error rather than
   * a one-element list, so that {@code groups: admins} is not quietly different from what the
   * writer meant.
   */
  private static List<String> strings(JsonNode n, String path, boolean nonEmptyList) {
    if (!n.isArray()) throw fail(path, "expected a list of strings, was " + PolicyText.describe(n));
    if (nonEmptyList && n.isEmpty()) throw fail(path, "must not be empty");
    List<String> out = new ArrayList<>(n.size());
    for (int i = 0; i < n.size(); i++) out.add(nonEmpty(n.get(i), index(path, i)));
    return out;
  }

  private static JsonNode list(JsonNode n, String path, String what) {
    if (!n.isArray()) throw fail(path, "expected " + what + ", was " + PolicyText.describe(n));
    return n;
  }

  private static String text(JsonNode n, String path) {
    if (!n.isTextual()) throw fail(path, "expected a string, was " + PolicyText.describe(n));
    return n.textValue();
  }

  private static String nonEmpty(JsonNode n, String path) {
    String s = text(n, path);
    if (s.isEmpty()) throw fail(path, "must not be empty");
    return s;
  }

  private static void mapping(JsonNode n, String path) {
    if (!n.isObject()) throw fail(path, "expected a mapping, was " + PolicyText.describe(n));
  }

  private static JsonNode required(JsonNode n, String path, String key) {
    JsonNode v = n.get(key);
    if (v == null) throw fail(child(path, key), "required");
    return v;
  }

  /** Refuses unknown keys, and keys of the spec this release does not implement. */
  private static void keys(JsonNode n, String path, Set<String> known, Set<String> unsupported) {
    for (Map.Entry<String, JsonNode> field : n.properties()) {
      String key = field.getKey();
      if (unsupported.contains(key)) throw fail(child(path, key), NOT_SUPPORTED);
      if (!known.contains(key)) throw fail(child(path, key), "unknown key");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Paths and errors

  static String child(String path, String key) {
    if (!SIMPLE_KEY.matcher(key).matches()) return path + "[" + PolicyText.quote(key) + "]";
    return path.isEmpty() ? key : path + "." + key;
  }

  private static String index(String path, int i) {
    return path + "[" + i + "]";
  }

  private static PolicyException fail(String path, String problem) {
    return new PolicyException(path + ": " + problem);
  }
}
