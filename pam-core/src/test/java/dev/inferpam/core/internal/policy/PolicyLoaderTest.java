package dev.inferpam.core.internal.policy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.internal.credentials.CredentialProviders;
import dev.inferpam.core.internal.http.RequestClassifier;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sections that load, from YAML and JSON, and problems with the document as a whole. */
class PolicyLoaderTest {

  static final String HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  static final String HASH2 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

  /** The whole of the supported spec, in YAML as a user would write it. */
  static final String FULL_YAML =
      """
      # the example from docs/policy.md, less the sections this release refuses
      version: 1

      request:
        base-path: /openai
        max-body: 512KiB

      identity:
        api-keys:
          - name: nightly-eval
            sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
            groups: [ci]
            expires: 2027-01-31T00:00:00Z
          - name: agent
            sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
            groups: [agents, ci]

      upstream:
        credential:
          header: Authorization
          scheme: Bearer
          from-env: OPENAI_API_KEY

      entitlements:
        - groups: [ml-engineers]
          models: ["llama-3.1-*", "gpt-4o-mini"]
          operations: [chat, completion, embedding]
        - groups: [ci]
          models: ["llama-3.1-8b"]
          operations: [chat]

      allow:
        - groups: ["*"]
          methods: [get, HEAD]
          paths: ["/v1/models", "/health"]

      block:
        presets: [ollama-admin, vllm-admin, triton-admin, torchserve-admin, openai-admin]
        rules:
          - name: no-file-downloads
            methods: ["*"]
            paths: ["/v1/files/**"]

      parameters:
        deny: [logit_bias, logprobs, top_logprobs, echo, prompt_logprobs]
        max:
          max_tokens: 4096
          n: 1
          temperature: 1.5
        exempt-groups: [ml-research]
      """;

  /** The same policy written by hand in JSON. */
  static final String FULL_JSON =
      """
      {
        "version": 1,
        "request": {"base-path": "/openai", "max-body": "512KiB"},
        "identity": {"api-keys": [
          {"name": "nightly-eval", "sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
           "groups": ["ci"], "expires": "2027-01-31T00:00:00Z"},
          {"name": "agent", "sha256": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
           "groups": ["agents", "ci"]}
        ]},
        "upstream": {"credential": {"header": "Authorization", "scheme": "Bearer", "from-env": "OPENAI_API_KEY"}},
        "entitlements": [
          {"groups": ["ml-engineers"], "models": ["llama-3.1-*", "gpt-4o-mini"],
           "operations": ["chat", "completion", "embedding"]},
          {"groups": ["ci"], "models": ["llama-3.1-8b"], "operations": ["chat"]}
        ],
        "allow": [{"groups": ["*"], "methods": ["get", "HEAD"], "paths": ["/v1/models", "/health"]}],
        "block": {
          "presets": ["ollama-admin", "vllm-admin", "triton-admin", "torchserve-admin", "openai-admin"],
          "rules": [{"name": "no-file-downloads", "methods": ["*"], "paths": ["/v1/files/**"]}]
        },
        "parameters": {
          "deny": ["logit_bias", "logprobs", "top_logprobs", "echo", "prompt_logprobs"],
          "max": {"max_tokens": 4096, "n": 1, "temperature": 1.5},
          "exempt-groups": ["ml-research"]
        }
      }
      """;

  static List<Glob> globs(String... patterns) {
    return java.util.Arrays.stream(patterns).map(Glob::compile).toList();
  }

  static final Policy FULL =
      new Policy(
          1,
          new Policy.RequestSettings("/openai", 512 * 1024),
          new Policy.Identity(
              List.of(
                  new Policy.ApiKey(
                      "nightly-eval", HASH, Set.of("ci"), Instant.parse("2027-01-31T00:00:00Z")),
                  new Policy.ApiKey("agent", HASH2, Set.of("agents", "ci"), null))),
          new Policy.Upstream(
              new Policy.CredentialSource("Authorization", "Bearer", "OPENAI_API_KEY", null)),
          List.of(
              new Policy.Entitlement(
                  Set.of("ml-engineers"),
                  globs("llama-3.1-*", "gpt-4o-mini"),
                  Set.of("chat", "completion", "embedding")),
              new Policy.Entitlement(Set.of("ci"), globs("llama-3.1-8b"), Set.of("chat"))),
          List.of(
              new Policy.AllowRule(
                  Set.of("*"), Set.of("GET", "HEAD"), globs("/v1/models", "/health"))),
          new Policy.Block(
              List.of(
                  "ollama-admin", "vllm-admin", "triton-admin", "torchserve-admin", "openai-admin"),
              List.of(
                  new Policy.BlockRule("no-file-downloads", Set.of("*"), globs("/v1/files/**")))),
          new Policy.Parameters(
              Set.of("logit_bias", "logprobs", "top_logprobs", "echo", "prompt_logprobs"),
              Map.of("max_tokens", 4096.0, "n", 1.0, "temperature", 1.5),
              Set.of("ml-research")));

  private static final ObjectMapper TO_JSON = new ObjectMapper();

  /** {@code yaml} re-written as JSON, to run the same case through the JSON reader. */
  static String asJson(String yaml) {
    try {
      return TO_JSON.writeValueAsString(new YAMLMapper().readTree(yaml));
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** Parses {@code yaml} as YAML and, converted, as JSON; both must give the same policy. */
  static Policy both(String yaml) {
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    Policy fromJson = PolicyLoader.parseJson(asJson(yaml), "policy");
    assertThat(fromJson).isEqualTo(fromYaml);
    return fromYaml;
  }

  // --- whole documents ---------------------------------------------------------------------------

  @Test
  void loadsTheFullExampleFromYaml() {
    assertThat(PolicyLoader.parse(FULL_YAML, "policy")).isEqualTo(FULL);
  }

  @Test
  void loadsTheFullExampleFromJson() {
    assertThat(PolicyLoader.parseJson(FULL_JSON, "policy")).isEqualTo(FULL);
  }

  @Test
  void yamlReaderAlsoAcceptsJson() {
    assertThat(Policy.parse(FULL_JSON)).isEqualTo(FULL);
  }

  @Test
  void loadsFilesChoosingTheFormatByExtension(@TempDir Path dir) throws IOException {
    Path yaml = Files.writeString(dir.resolve("pam.yaml"), FULL_YAML);
    Path yml = Files.writeString(dir.resolve("pam.yml"), FULL_YAML);
    Path json = Files.writeString(dir.resolve("pam.json"), FULL_JSON);
    Path upper = Files.writeString(dir.resolve("PAM.JSON"), FULL_JSON);
    assertThat(Policy.load(yaml)).isEqualTo(FULL);
    assertThat(PolicyLoader.load(yml)).isEqualTo(FULL);
    assertThat(PolicyLoader.load(json)).isEqualTo(FULL);
    assertThat(PolicyLoader.load(upper)).isEqualTo(FULL);
  }

  @Test
  void aJsonFileIsReadAsStrictJson(@TempDir Path dir) throws IOException {
    Path json = Files.writeString(dir.resolve("pam.json"), "version: 1\n");
    assertThatThrownBy(() -> PolicyLoader.load(json))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith(
            "policy "
                + json
                + ": malformed JSON at line 1, column 8: Unrecognized token 'version'");
  }

  @Test
  void toleratesAByteOrderMark(@TempDir Path dir) throws IOException {
    Path json = Files.writeString(dir.resolve("pam.json"), "\uFEFF" + FULL_JSON);
    assertThat(PolicyLoader.load(json)).isEqualTo(FULL);
    assertThat(PolicyLoader.parse("\uFEFFversion: 1\n", "policy").version()).isEqualTo(1);
  }

  @Test
  void versionAloneGivesTheSafeDefaults() {
    Policy p = both("version: 1\n");
    assertThat(p.request()).isEqualTo(Policy.RequestSettings.DEFAULTS);
    assertThat(p.request().maxBodyBytes()).isEqualTo(8L * 1024 * 1024);
    assertThat(p.identity().apiKeys()).isEmpty();
    assertThat(p.upstream().credential()).isNull();
    assertThat(p.entitlements()).isEmpty();
    assertThat(p.allow()).isEmpty();
    assertThat(p.block().presets()).isEmpty();
    assertThat(p.block().rules()).isEmpty();
    assertThat(p.parameters().deny()).isEmpty();
    assertThat(p.parameters().max()).isEmpty();
    assertThat(p.parameters().exemptGroups()).isEmpty();
  }

  @Test
  void emptySectionsAddNoRule() {
    Policy p =
        both(
            """
        version: 1
        request: {}
        identity: {api-keys: []}
        upstream: {}
        entitlements: []
        allow: []
        block: {presets: [], rules: []}
        parameters: {deny: [], max: {}, exempt-groups: []}
        """);
    assertThat(p).isEqualTo(both("version: 1"));
  }

  // --- request -----------------------------------------------------------------------------------

  @Test
  void requestBasePathAndMaxBody() {
    Policy p =
        both(
            """
        version: 1
        request:
          base-path: /openai/v2-proxy
          max-body: 8MiB
        """);
    assertThat(p.request())
        .isEqualTo(new Policy.RequestSettings("/openai/v2-proxy", 8L * 1024 * 1024));
    assertThat(both("version: 1\nrequest: {base-path: \"\"}").request().basePath()).isEmpty();
  }

  @Test
  void maxBodyAcceptsBytesAndBinaryUnits() {
    assertThat(maxBody("1000")).isEqualTo(1000);
    assertThat(maxBody("\"1000\"")).isEqualTo(1000);
    assertThat(maxBody("1000B")).isEqualTo(1000);
    assertThat(maxBody("512KiB")).isEqualTo(512 * 1024);
    assertThat(maxBody("8MiB")).isEqualTo(8L * 1024 * 1024);
    assertThat(maxBody("2GiB")).isEqualTo(2L * 1024 * 1024 * 1024);
  }

  @Test
  void requestTimeoutsRateAndConnectionCap() {
    Policy p =
        both(
            """
        version: 1
        request:
          body-timeout: 10s
          min-body-rate: 4KiB
          head-timeout: 500ms
          max-connections-per-client: 64
        """);
    assertThat(p.request())
        .isEqualTo(
            new Policy.RequestSettings(
                "",
                8L * 1024 * 1024,
                java.time.Duration.ofSeconds(10),
                4096,
                java.time.Duration.ofMillis(500),
                64));
    Policy.RequestSettings defaults = both("version: 1\nrequest: {}").request();
    assertThat(defaults.bodyTimeout()).isEqualTo(java.time.Duration.ofSeconds(30));
    assertThat(defaults.minBodyRate()).isEqualTo(1024);
    assertThat(defaults.headTimeout()).isEqualTo(java.time.Duration.ofSeconds(30));
    assertThat(defaults.maxConnectionsPerClient()).as("no cap").isZero();
  }

  @Test
  void forwardHeadersAreKeptAsWrittenInOrder() {
    Policy p =
        both(
            """
        version: 1
        request:
          forward-headers: [OpenAI-Organization, x-team, "X-Trace_Id.v2"]
        upstream:
          credential: {header: X-Model-Key, from-env: MODEL_KEY}
        """);
    assertThat(p.request().forwardHeaders())
        .containsExactly("OpenAI-Organization", "x-team", "X-Trace_Id.v2");
    assertThat(both("version: 1\nrequest: {forward-headers: []}").request().forwardHeaders())
        .isEmpty();
    assertThat(both("version: 1\nrequest: {}").request().forwardHeaders())
        .as("default: none")
        .isEmpty();
  }

  @Test
  void forwardHeadersAreCheckedWhenBuiltInCodeToo() {
    assertThatThrownBy(
            () ->
                new Policy.RequestSettings(
                    "", 1024, null, 1024, null, 0, java.util.List.of("Cookie")))
        .isInstanceOf(PolicyException.class)
        .hasMessage(
            "request.forward-headers[0]: \"Cookie\" is never forwarded from a caller (the caller's cookies)");
    Policy.RequestSettings request =
        new Policy.RequestSettings("", 1024, null, 1024, null, 0, java.util.List.of("X-Model-Key"));
    Policy.Upstream upstream =
        new Policy.Upstream(new Policy.CredentialSource("x-model-key", "", "K", null));
    assertThatThrownBy(() -> new Policy(1, request, null, upstream, null, null, null, null))
        .isInstanceOf(PolicyException.class)
        .hasMessage(
            "request.forward-headers[0]: \"X-Model-Key\" is the upstream credential's header"
                + " (upstream.credential.header); it is never taken from a caller");
  }

  @Test
  void requestTimeoutsRateAndCapAreValidated() {
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  body-timeout: 0s\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("request.body-timeout: must be > 0, was \"0s\"");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  head-timeout: 2h\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("request.head-timeout: must be at most 1h, was \"2h\"");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  body-timeout: 30\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("request.body-timeout: expected a duration");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  min-body-rate: 0\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("request.min-body-rate: must be > 0");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  max-connections-per-client: 0\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("request.max-connections-per-client: must be > 0");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  max-connections-per-client: \"8\"\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("request.max-connections-per-client: expected a whole number");
    assertThatThrownBy(() -> both("version: 1\nrequest:\n  header-timeout: 5s\n"))
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("header-timeout");
  }

  private static long maxBody(String value) {
    return both("version: 1\nrequest:\n  max-body: " + value + "\n").request().maxBodyBytes();
  }

  // --- identity ----------------------------------------------------------------------------------

  @Test
  void apiKeysAreNormalisedToLowerCaseHex() {
    Policy p =
        both(
            """
        version: 1
        identity:
          api-keys:
            - name: nightly-eval
              sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
        """);
    Policy.ApiKey key = p.identity().apiKeys().get(0);
    assertThat(key.sha256Hex()).isEqualTo(HASH);
    assertThat(key.groups()).isEmpty();
    assertThat(key.expires()).isNull();
  }

  @Test
  void apiKeyExpiryAcceptsAnOffset() {
    Policy p =
        both(
            """
        version: 1
        identity:
          api-keys:
            - name: k
              sha256: %s
              expires: 2027-01-31T02:00:00+02:00
        """
                .formatted(HASH));
    assertThat(p.identity().apiKeys().get(0).expires())
        .isEqualTo(Instant.parse("2027-01-31T00:00:00Z"));
  }

  // --- upstream ----------------------------------------------------------------------------------

  @Test
  void credentialDefaultsToBearerAuthorization() throws Exception {
    Policy p = both("version: 1\nupstream:\n  credential:\n    from-env: MODEL_KEY\n");
    // scheme left absent so that the provider can pick it by header
    assertThat(p.upstream().credential())
        .isEqualTo(new Policy.CredentialSource("Authorization", null, "MODEL_KEY", null));
    assertThat(CredentialProviders.from(p.upstream().credential(), name -> "k-1").current().value())
        .isEqualTo("Bearer k-1");
  }

  @Test
  void customHeaderWithoutSchemeCarriesTheRawSecret() throws Exception {
    Policy p =
        both(
            "version: 1\nupstream:\n  credential:\n    header: api-key\n    from-env: MODEL_KEY\n");
    assertThat(CredentialProviders.from(p.upstream().credential(), name -> "k-1").current().value())
        .isEqualTo("k-1");
  }

  @Test
  void credentialFromFileWithCustomHeaderAndRawValue() {
    Policy p =
        both(
            """
        version: 1
        upstream:
          credential:
            header: x-api-key
            scheme: ""
            from-file: /run/secrets/model-key
        """);
    assertThat(p.upstream().credential())
        .isEqualTo(
            new Policy.CredentialSource("x-api-key", "", null, Path.of("/run/secrets/model-key")));
  }

  // --- entitlements / allow / block --------------------------------------------------------------

  @Test
  void entitlementModelsAreGlobs() {
    Policy p =
        both(
            """
        version: 1
        entitlements:
          - groups: [ml]
            models: ["llama-3.1-*", "meta-llama/**"]
            operations: [chat, completion, embedding, infer]
        """);
    Policy.Entitlement e = p.entitlements().get(0);
    assertThat(e.operations())
        .containsExactlyInAnyOrder("chat", "completion", "embedding", "infer");
    assertThat(Glob.matchesAny(e.models(), "llama-3.1-8b")).isTrue();
    assertThat(Glob.matchesAny(e.models(), "meta-llama/Llama-3.1-8B/x")).isTrue();
    assertThat(Glob.matchesAny(e.models(), "llama-3.2-1b")).isFalse();
  }

  @Test
  void operationNamesAreThoseTheClassifierProduces() {
    assertThat(Set.copyOf(PolicyNodes.OPERATIONS)).isEqualTo(RequestClassifier.OPERATIONS);
  }

  @Test
  void allowMethodsAreUpperCasedAndStarMeansAny() {
    Policy p =
        both(
            """
        version: 1
        allow:
          - groups: [ops]
            methods: ["*", get, Post]
            paths: ["/metrics", "/v1/models/**"]
        """);
    Policy.AllowRule r = p.allow().get(0);
    assertThat(r.methods()).containsExactlyInAnyOrder("*", "GET", "POST");
    assertThat(r.groups()).containsExactly("ops");
    assertThat(r.paths()).isEqualTo(globs("/metrics", "/v1/models/**"));
  }

  @Test
  void blockPresetsAreKeptByNameWithoutRepeats() {
    Policy p =
        both(
            """
        version: 1
        block:
          presets: [vllm-admin, ollama-admin, vllm-admin]
        """);
    assertThat(p.block().presets()).containsExactly("vllm-admin", "ollama-admin");
    assertThat(p.block().rules()).isEmpty();
  }

  @Test
  void blockRules() {
    Policy p =
        both(
            """
        version: 1
        block:
          rules:
            - name: no-file-downloads
              methods: ["*"]
              paths: ["/v1/files/**"]
            - name: no-deletes
              methods: [delete]
              paths: ["/v1/**"]
        """);
    assertThat(p.block().rules())
        .containsExactly(
            new Policy.BlockRule("no-file-downloads", Set.of("*"), globs("/v1/files/**")),
            new Policy.BlockRule("no-deletes", Set.of("DELETE"), globs("/v1/**")));
  }

  // --- parameters --------------------------------------------------------------------------------

  @Test
  void parameterMaximaAreNumbers() {
    Policy p =
        both(
            """
        version: 1
        parameters:
          max:
            max_tokens: 4096
            temperature: 0.7
            presence_penalty: 0
            "odd name": 2
        """);
    assertThat(p.parameters().max())
        .isEqualTo(
            Map.of(
                "max_tokens",
                4096.0,
                "temperature",
                0.7,
                "presence_penalty",
                0.0,
                "odd name",
                2.0));
    assertThat(p.parameters().presets()).isEmpty();
  }

  @Test
  void parameterPresetsAreNamedOnceInOrder() {
    Policy p =
        both(
            """
        version: 1
        parameters:
          presets: [extraction, extraction]
          deny: [logprobs]
        """);
    assertThat(p.parameters().presets()).containsExactly("extraction");
    assertThat(p.parameters().deny()).containsExactly("logprobs");
  }

  @Test
  void parameterDenyAndExemptGroups() {
    Policy p =
        both(
            """
        version: 1
        parameters:
          deny: [logprobs, echo]
          exempt-groups: [ml-research, red-team]
        """);
    assertThat(p.parameters().deny()).containsExactlyInAnyOrder("logprobs", "echo");
    assertThat(p.parameters().exemptGroups()).containsExactlyInAnyOrder("ml-research", "red-team");
  }

  @Test
  void parameterMaximaMustBeFinite() {
    // written out separately: JSON cannot carry the Infinity a converted YAML value would hold
    assertThatThrownBy(
            () -> PolicyLoader.parse("version: 1\nparameters:\n  max:\n    n: 1e400\n", "policy"))
        .hasMessage("parameters.max.n: expected a finite number, was Infinity");
    assertThatThrownBy(
            () ->
                PolicyLoader.parseJson(
                    "{\"version\": 1, \"parameters\": {\"max\": {\"n\": 1e400}}}", "p"))
        .hasMessage("parameters.max.n: expected a finite number, was Infinity");
  }

  // --- the document as a whole -------------------------------------------------------------------

  @Test
  void unreadableFileNamesTheFile(@TempDir Path dir) {
    Path missing = dir.resolve("missing.yaml");
    assertThatThrownBy(() -> Policy.load(missing))
        .isInstanceOf(PolicyException.class)
        .hasMessage("policy " + missing + ": cannot read: no such file");
    assertThatThrownBy(() -> PolicyLoader.load(dir))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("policy " + dir + ": cannot read: ");
  }

  @Test
  void fileThatIsNotUtf8CannotBeRead(@TempDir Path dir) throws IOException {
    Path bad =
        Files.write(dir.resolve("pam.yaml"), new byte[] {'v', ':', ' ', (byte) 0xff, (byte) 0xfe});
    assertThatThrownBy(() -> PolicyLoader.load(bad))
        .hasMessage("policy " + bad + ": cannot read: not UTF-8 text");
  }

  @Test
  void malformedYamlGivesLineAndColumnWithoutStackTraceOrExcerpt() {
    assertThatThrownBy(() -> PolicyLoader.parse("version: 1\nentitlements: [\n", "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessageStartingWith("policy: malformed YAML at line 3, column 1: ")
        .hasMessageContaining("<stream end>")
        .satisfies(e -> assertCleanMessage(e.getMessage()));
    assertThatThrownBy(() -> PolicyLoader.parse("version: 1\n  bad: indent\n", "policy"))
        .hasMessage(
            "policy: malformed YAML at line 2, column 6: mapping values are not allowed here");
    assertThatThrownBy(() -> PolicyLoader.parse("\tversion: 1", "policy"))
        .hasMessageStartingWith(
            "policy: malformed YAML at line 1, column 1: found character '\\t(TAB)'")
        .satisfies(e -> assertCleanMessage(e.getMessage()));
  }

  @Test
  void malformedJsonGivesLineAndColumnWithoutStackTraceOrExcerpt(@TempDir Path dir)
      throws IOException {
    Path trailingComma = Files.writeString(dir.resolve("a.json"), "{\"version\": 1,}");
    assertThatThrownBy(() -> PolicyLoader.load(trailingComma))
        .isInstanceOf(PolicyException.class)
        .hasMessage(
            "policy "
                + trailingComma
                + ": malformed JSON at line 1, column 15: Unexpected character "
                + "('}' (code 125)): was expecting double-quote to start field name");
    Path unclosed = Files.writeString(dir.resolve("b.json"), "{\"version\": 1\n\n");
    assertThatThrownBy(() -> PolicyLoader.load(unclosed))
        .hasMessage(
            "policy "
                + unclosed
                + ": malformed JSON at line 3, column 1: Unexpected end-of-input: "
                + "expected close marker for Object (start marker at line 1, column 1)")
        .satisfies(e -> assertCleanMessage(e.getMessage()));
  }

  private static void assertCleanMessage(String message) {
    assertThat(message).doesNotContain("\n", "\tat ", "Exception", "Source:", "^");
  }

  @Test
  void duplicateKeysAreRefusedRatherThanOneSilentlyWinning() {
    assertThatThrownBy(
            () ->
                PolicyLoader.parse(
                    """
        version: 1
        block:
          presets: [vllm-admin]
        block:
          presets: []
        """,
                    "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("policy: malformed YAML at line 4, column 6: duplicate key \"block\"");
    assertThatThrownBy(() -> PolicyLoader.parseJson("{\"version\": 1, \"version\": 2}", "policy"))
        .hasMessage("policy: malformed JSON at line 1, column 25: duplicate key \"version\"");
    assertThatThrownBy(
            () ->
                PolicyLoader.parse(
                    "version: 1\nparameters:\n  max:\n    n: 1\n    n: 100\n", "policy"))
        .hasMessage("policy: malformed YAML at line 5, column 6: duplicate key \"n\"");
  }

  @Test
  void aSecondDocumentIsRefusedRatherThanIgnored() {
    assertThatThrownBy(
            () -> PolicyLoader.parse("version: 1\n---\nversion: 1\napproval: {}\n", "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("policy: expected one YAML document, found more at line 3");
    assertThatThrownBy(() -> PolicyLoader.parseJson("{\"version\": 1} {}", "policy"))
        .hasMessage("policy: expected one JSON document, found more at line 1");
  }

  @Test
  void emptyDocumentIsRefused() {
    for (String text : List.of("", "# nothing\n", "---\n", "null")) {
      assertThatThrownBy(() -> PolicyLoader.parse(text, "policy"))
          .isInstanceOf(PolicyException.class)
          .hasMessage("policy: the document is empty; it needs at least \"version: 1\"");
    }
  }

  @Test
  void topLevelMustBeAMapping() {
    assertThatThrownBy(() -> PolicyLoader.parse("- version: 1\n", "policy"))
        .hasMessage("policy: expected a mapping at the top level, was a list");
    assertThatThrownBy(() -> PolicyLoader.parse("hello", "my-policy"))
        .hasMessage("my-policy: expected a mapping at the top level, was \"hello\"");
  }

  @Test
  void loadFailuresInsideAFileKeepTheKeyPathMessage(@TempDir Path dir) throws IOException {
    Path file =
        Files.writeString(
            dir.resolve("pam.yaml"),
            "version: 1\nparameters:\n  max:\n    n: one\n",
            StandardCharsets.UTF_8);
    assertThatThrownBy(() -> Policy.load(file))
        .isInstanceOf(PolicyException.class)
        .hasMessage("parameters.max.n: expected a number, was \"one\"");
  }
}
