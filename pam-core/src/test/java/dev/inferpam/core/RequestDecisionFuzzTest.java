package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of request classification, parameter reading and the engine's decision,
 * through {@link PamEngine#begin} as an adapter calls it.
 *
 * <p><b>Input</b> (regression corpus: {@code RequestDecisionFuzzTestInputs/decide}), four parts
 * separated by the first three {@code \n}: the method, the raw path, the credential and the body
 * (raw bytes). The credential is {@code svc} or {@code research} (that key as a bearer token),
 * {@code x-svc} (svc's key as {@code X-Api-Key}), empty for none, or else the literal
 * {@code Authorization} value; a trailing {@code " len=N"} on it declares {@code N} as the body's
 * length (the body's real length otherwise). Missing parts take {@code POST},
 * {@code /v1/chat/completions}, {@code svc} and an empty body.
 *
 * <p><b>Contract</b>: {@code begin} never throws; a denial is one of the documented 4xx
 * status/code pairs, with the JSON error body naming the exchange and never a key. An allowed
 * request forwards exactly the bytes the client sent (a declared length shorter or longer than
 * the body changes nothing), and is checked against an oracle written here from docs/policy.md, reading the body as an
 * upstream would (a default Jackson parser, the first and the last {@code model} member): the
 * caller holds a key, the path is an inference operation of the right kind or matches the
 * {@code allow} rule, the model is entitled for that caller and operation, and (for the
 * non-exempt caller) no denied parameter is used and no capped one is over its maximum or not a
 * number.
 */
class RequestDecisionFuzzTest {
  private static final String SVC_KEY = "svc-key-0123456789";
  private static final String RESEARCH_KEY = "research-key-0123456789";
  private static final ObjectMapper LENIENT = new ObjectMapper();

  /** A credential part ending in " len=N" declares N as the body's length (else its real length). */
  private static final Pattern DECLARED_LENGTH = Pattern.compile("(?s)(.*) len=(-?\\d{1,12})");

  private static final Set<String> DENIED = Set.of("logit_bias", "logprobs", "tools");
  private static final Map<String, List<String>> CAPPED =
      Map.of(
          "max_tokens",
              List.of(
                  "max_tokens",
                  "max_completion_tokens",
                  "max_output_tokens",
                  "options.num_predict"),
          "n", List.of("n", "best_of"));
  private static final Map<String, Double> MAX = Map.of("max_tokens", 256.0, "n", 1.0);

  /** The documented refusals of a request (docs/policy.md, "Decision order and error codes"). */
  private static final Set<String> REFUSALS =
      Set.of(
          "400 bad_path",
          "400 bad_request",
          "413 body_too_large",
          "401 unauthenticated",
          "403 blocked",
          "403 not_allowed",
          "403 not_entitled",
          "403 parameter_denied");

  private static final Map<String, String> OPERATIONS =
      Map.of(
          "/v1/chat/completions",
          "chat",
          "/v1/responses",
          "chat",
          "/v1/messages",
          "chat",
          "/api/chat",
          "chat",
          "/v1/completions",
          "completion",
          "/api/generate",
          "completion",
          "/v1/embeddings",
          "embedding",
          "/api/embed",
          "embedding",
          "/api/embeddings",
          "embedding");

  private static final PamEngine ENGINE =
      PamEngine.builder()
          .policy(
              Policy.parse(
                  """
      version: 1
      request:
        base-path: /openai
        max-body: 2KiB
      identity:
        api-keys:
          - {name: svc, sha256: %s, groups: [ml]}
          - {name: research, sha256: %s, groups: [research]}
      entitlements:
        - groups: [ml]
          models: ["llama-*", "mistral"]
          operations: [chat, completion, embedding, infer]
        - groups: [research]
          models: ["gpt-4o-mini"]
          operations: [chat]
      allow:
        - groups: ["*"]
          methods: [GET]
          paths: ["/v1/models", "/health"]
      block:
        presets: [ollama-admin, openai-admin]
      parameters:
        deny: [logit_bias, logprobs, tools]
        max: {max_tokens: 256, n: 1}
        exempt-groups: [research]
      """
                      .formatted(sha256(SVC_KEY), sha256(RESEARCH_KEY))))
          .build();

  @FuzzTest(maxDuration = "10s")
  void decide(byte[] input) throws IOException {
    byte[][] parts = split(input);
    String method = parts[0] == null ? "POST" : utf8(parts[0]);
    String path = parts[1] == null ? "/v1/chat/completions" : utf8(parts[1]);
    String credential = parts[2] == null ? "svc" : utf8(parts[2]);
    byte[] body = parts[3] == null ? new byte[0] : parts[3];
    long declared = body.length;
    Matcher length = DECLARED_LENGTH.matcher(credential);
    if (length.matches()) {
      credential = length.group(1);
      declared = Long.parseLong(length.group(2));
    }

    Verdict ex =
        ENGINE.begin(
            new RequestHead(method, path, null, headers(credential), "127.0.0.1"),
            new ByteArrayInputStream(body),
            declared);
    try {
      Decision d = ex.decision();
      if (d instanceof Decision.Deny deny) {
        assertDocumentedRefusal(ex, deny);
      } else {
        assertThat(d).isInstanceOf(Decision.Allow.class);
        // what goes upstream is every byte the client sent, whatever length it declared
        assertThat(Verdicts.allowed(ex).forward().body()).isEqualTo(body);
        assertAllowedByPolicy(ex, method, path);
      }
    } finally {
      Verdicts.end(ex, false);
    }
  }

  private static void assertDocumentedRefusal(Verdict ex, Decision.Deny deny) throws IOException {
    assertThat(deny.status() + " " + deny.code()).isIn(REFUSALS);
    ErrorResponse error = Verdicts.error(ex);
    assertThat(error.status()).isEqualTo(deny.status());
    JsonNode e = LENIENT.readTree(error.body()).get("error");
    assertThat(e.get("type").asText()).isEqualTo("pam_error");
    assertThat(e.get("code").asText()).isEqualTo(deny.code());
    assertThat(e.get("request_id").asText()).isEqualTo(ex.id());
    String text = new String(error.body(), StandardCharsets.UTF_8) + error.headers();
    assertThat(text).doesNotContain(SVC_KEY, RESEARCH_KEY);
  }

  private static void assertAllowedByPolicy(Verdict ex, String method, String rawPath)
      throws IOException {
    String subject = ex.principal().subject();
    assertThat(subject).isIn("svc", "research");
    String path = (String) dev.inferpam.core.internal.policy.Decider.canonicalPathOrDeny(rawPath);
    String relative = path.startsWith("/openai/") ? path.substring("/openai".length()) : path;

    String upper = method.toUpperCase(Locale.ROOT); // the engine's reading (InferenceRequest)
    if (!upper.equals("POST") || !isOperationPath(relative)) {
      assertThat(ex.operation()).isNull();
      assertThat(upper).isEqualTo("GET");
      assertThat(relative).isIn("/v1/models", "/health");
      return;
    }
    String operation = OPERATIONS.getOrDefault(relative, "infer");
    assertThat(ex.operation()).isEqualTo(operation);
    byte[] body = Verdicts.allowed(ex).forward().body();
    JsonNode json = null;
    String model;
    if (operation.equals("infer")) {
      model = relative.split("/")[3];
      if (firstNonBlank(body) == '{') json = LENIENT.readTree(body);
    } else {
      json = LENIENT.readTree(body);
      assertThat(json.path("model").isTextual()).as("model is a string").isTrue();
      model = json.get("model").textValue();
      assertThat(firstModel(body)).as("first \"model\" member").isEqualTo(model);
    }
    assertThat(ex.model()).isEqualTo(model);
    assertThat(entitled(subject, operation, model))
        .as("%s may %s on %s", subject, operation, model)
        .isTrue();
    if (subject.equals("svc") && json != null && json.isObject())
      assertParametersWithinPolicy(json);
  }

  private static boolean isOperationPath(String relative) {
    if (OPERATIONS.containsKey(relative)) return true;
    String[] s = relative.split("/", -1);
    return relative.startsWith("/v2/models/")
        && relative.endsWith("/infer")
        && (s.length == 5 || (s.length == 7 && s[4].equals("versions")));
  }

  private static boolean entitled(String subject, String operation, String model) {
    if (subject.equals("research")) return operation.equals("chat") && model.equals("gpt-4o-mini");
    return model.equals("mistral") || (model.startsWith("llama-") && model.indexOf('/') < 0);
  }

  private static void assertParametersWithinPolicy(JsonNode body) {
    for (String name : DENIED) {
      for (JsonNode v : List.of(body.path(name), body.path("options").path(name))) {
        boolean unused = v.isMissingNode() || v.isNull() || (v.isBoolean() && !v.booleanValue());
        assertThat(unused).as("denied parameter %s used", name).isTrue();
      }
    }
    for (Map.Entry<String, List<String>> capped : CAPPED.entrySet()) {
      for (String alias : capped.getValue()) {
        JsonNode v = body;
        for (String part : alias.split("\\.")) v = v.path(part);
        if (v.isMissingNode() || v.isNull()) continue;
        assertThat(v.isNumber()).as("%s is a number", alias).isTrue();
        assertThat(v.doubleValue()).as(alias).isLessThanOrEqualTo(MAX.get(capped.getKey()));
      }
    }
  }

  /** The value of the first top-level {@code model} member, as a parser keeping the first would read it. */
  private static String firstModel(byte[] body) throws IOException {
    try (JsonParser p = LENIENT.getFactory().createParser(body)) {
      if (p.nextToken() != JsonToken.START_OBJECT) return null;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken value = p.nextToken();
        if (name.equals("model")) return value == JsonToken.VALUE_STRING ? p.getText() : null;
        p.skipChildren();
      }
      return null;
    }
  }

  private static int firstNonBlank(byte[] body) {
    for (byte b : body) {
      if (b != ' ' && b != '\t' && b != '\r' && b != '\n') return b;
    }
    return -1;
  }

  private static Map<String, List<String>> headers(String credential) {
    return switch (credential) {
      case "svc" -> Map.of("Authorization", List.of("Bearer " + SVC_KEY));
      case "research" -> Map.of("Authorization", List.of("Bearer " + RESEARCH_KEY));
      case "x-svc" -> Map.of("X-Api-Key", List.of(SVC_KEY));
      case "" -> Map.of();
      default -> Map.of("Authorization", List.of(credential));
    };
  }

  /** Method, path and credential up to the first three line breaks, then the body; null where absent. */
  private static byte[][] split(byte[] input) {
    byte[][] parts = new byte[4][];
    int start = 0;
    for (int i = 0; i < 3; i++) {
      int nl = indexOf(input, (byte) '\n', start);
      if (nl < 0) {
        if (start < input.length || i == 0)
          parts[i] = Arrays.copyOfRange(input, start, input.length);
        return parts;
      }
      parts[i] = Arrays.copyOfRange(input, start, nl);
      start = nl + 1;
    }
    parts[3] = Arrays.copyOfRange(input, start, input.length);
    return parts;
  }

  private static int indexOf(byte[] b, byte value, int from) {
    for (int i = from; i < b.length; i++) {
      if (b[i] == value) return i;
    }
    return -1;
  }

  private static String utf8(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  private static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
