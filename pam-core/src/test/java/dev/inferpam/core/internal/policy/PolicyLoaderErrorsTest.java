package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.HASH;
import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.PolicyException;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every content error names the key path and the bad value, with the same message whether the
 * policy was written in YAML or JSON.
 */
class PolicyLoaderErrorsTest {

  private static Arguments error(String yaml, String message) {
    return Arguments.of(yaml, message);
  }

  private static final String FORWARDING_CLAIM =
      "a forwarding claim; the gateway sets X-Forwarded-For, -Proto and -Host from what it saw";
  private static final String METHOD_OVERRIDE =
      "it would make the upstream act on another method than the one the policy checked";

  /** {@code request.forward-headers: [X-Team, name]}: refused at index 1 for {@code reason}. */
  private static Arguments refused(String name, String reason) {
    return error(
        "version: 1\nrequest: {forward-headers: [X-Team, " + name + "]}",
        "request.forward-headers[1]: \""
            + name
            + "\" is never forwarded from a caller ("
            + reason
            + ")");
  }

  private static String key(String extra) {
    return "version: 1\nidentity:\n  api-keys:\n    - name: k\n      sha256: "
        + HASH
        + "\n"
        + extra;
  }

  static Stream<Arguments> errors() {
    return Stream.of(
        // version and top level
        error("entitlements: []", "version: required"),
        error("version: 2", "version: unsupported version 2, expected 1"),
        error("version: 0", "version: unsupported version 0, expected 1"),
        error("version: 99999999999", "version: unsupported version 99999999999, expected 1"),
        error("version: \"1\"", "version: expected 1, was \"1\""),
        error("version: 1.0", "version: expected 1, was 1.0"),
        error("version: null", "version: expected 1, was null"),
        error("version: 1\nentitlementz: []", "entitlementz: unknown key"),
        error("version: 1\n\"weird key\": 1", "[\"weird key\"]: unknown key"),
        error("modles: []\nversion: 1", "modles: unknown key"),

        // sections of the spec not implemented by this release
        // approval loads and is validated (PolicyLoaderApprovalTest); the engine refuses it
        error("version: 1\napproval:\n  reviewers: [security-oncall]", "approval.rules: required"),
        error(
            "version: 1\nmasking: {detectors: email}",
            "masking.detectors: expected a list of strings, was \"email\""),
        error("version: 1\nlimits: []", "limits: must not be empty"),
        error("version: 1\nrecording: {}", "recording.directory: required"),
        error(
            "version: 1\nidentity:\n  oidc: {}",
            "identity.oidc: expected a list of issuers, was a mapping"),
        error(
            "version: 1\nupstream:\n  credential:\n    oauth2: {token-uri: https://idp}\n",
            "upstream.credential.oauth2.token-uri: unknown key"),

        // request
        error("version: 1\nrequest: []", "request: expected a mapping, was a list"),
        error("version: 1\nrequest: {timeout: 5s}", "request.timeout: unknown key"),
        error(
            "version: 1\nrequest: {base-path: openai}",
            "request.base-path: must be empty or start with \"/\" and not end with \"/\", was \"openai\""),
        error(
            "version: 1\nrequest: {base-path: /openai/}",
            "request.base-path: must be empty or start with \"/\" and not end with \"/\", was \"/openai/\""),
        error(
            "version: 1\nrequest: {base-path: /}",
            "request.base-path: must be empty or start with \"/\" and not end with \"/\", was \"/\""),
        error(
            "version: 1\nrequest: {base-path: /a//b}",
            "request.base-path: must be a plain path such as /openai "
                + "(no empty, dot, encoded or special segments), was \"/a//b\""),
        error(
            "version: 1\nrequest: {base-path: /a/../b}",
            "request.base-path: must be a plain path such as "
                + "/openai (no empty, dot, encoded or special segments), was \"/a/../b\""),
        error(
            "version: 1\nrequest: {base-path: /a%2Fb}",
            "request.base-path: must be a plain path such as "
                + "/openai (no empty, dot, encoded or special segments), was \"/a%2Fb\""),
        error(
            "version: 1\nrequest: {base-path: \"/a;b\"}",
            "request.base-path: must be a plain path such as "
                + "/openai (no empty, dot, encoded or special segments), was \"/a;b\""),
        error("version: 1\nrequest: {base-path: 5}", "request.base-path: expected a string, was 5"),
        error(
            "version: 1\nrequest: {max-body: 8MB}",
            "request.max-body: invalid size \"8MB\": expected bytes or a whole number of KiB, MiB or GiB, e.g. 8MiB"),
        error(
            "version: 1\nrequest: {max-body: 8 MiB}",
            "request.max-body: invalid size \"8 MiB\": expected bytes or a whole number of KiB, MiB or GiB, e.g. 8MiB"),
        error("version: 1\nrequest: {max-body: 0}", "request.max-body: must be > 0, was 0"),
        error("version: 1\nrequest: {max-body: -1}", "request.max-body: must be > 0, was -1"),
        error(
            "version: 1\nrequest: {max-body: 0KiB}", "request.max-body: must be > 0, was \"0KiB\""),
        error(
            "version: 1\nrequest: {max-body: 1.5}",
            "request.max-body: expected a size such as 8MiB, was 1.5"),
        error(
            "version: 1\nrequest: {max-body: 99999999999GiB}",
            "request.max-body: too large, was \"99999999999GiB\""),
        error(
            "version: 1\nrequest: {max-body: 99999999999999999999}",
            "request.max-body: too large, was 99999999999999999999"),
        // request.forward-headers
        error(
            "version: 1\nrequest: {forward-headers: X-Team}",
            "request.forward-headers: expected a list of strings, was \"X-Team\""),
        error(
            "version: 1\nrequest: {forward-headers: [X-Team, 5]}",
            "request.forward-headers[1]: expected a string, was 5"),
        error(
            "version: 1\nrequest: {forward-headers: [\"\"]}",
            "request.forward-headers[0]: must not be empty"),
        error(
            "version: 1\nrequest: {forward-headers: [\"X Team\"]}",
            "request.forward-headers[0]: expected a header name, was \"X Team\""),
        error(
            "version: 1\nrequest: {forward-headers: [\"X-Team:\"]}",
            "request.forward-headers[0]: expected a header name, was \"X-Team:\""),
        error(
            "version: 1\nrequest: {forward-headers: [\"X-T\\u00e9am\"]}",
            "request.forward-headers[0]: expected a header name, was \"X-T\u00e9am\""),
        error(
            "version: 1\nrequest: {forward-headers: [X-Team, OpenAI-Project, x-TEAM]}",
            "request.forward-headers[2]: duplicate header \"x-TEAM\" (also request.forward-headers[0])"),
        refused("Authorization", "a caller credential header"),
        refused("x-api-key", "a caller credential header"),
        refused("Proxy-Authorization", "a caller credential header"),
        refused("Proxy-Connection", "a hop-by-hop header"),
        refused("Connection", "a hop-by-hop header"),
        refused("Keep-Alive", "a hop-by-hop header"),
        refused("TE", "a hop-by-hop header"),
        refused("Trailer", "a hop-by-hop header"),
        refused("Upgrade", "a hop-by-hop header"),
        refused("Expect", "a hop-by-hop header"),
        refused("Host", "the gateway sets it for the body it forwards"),
        refused("Content-Length", "the gateway sets it for the body it forwards"),
        refused("content-encoding", "the gateway sets it for the body it forwards"),
        refused("Transfer-Encoding", "the gateway sets it for the body it forwards"),
        refused(
            "Accept-Encoding",
            "the gateway must receive the answer uncompressed to mask and record it"),
        refused("Cookie", "the caller's cookies"),
        refused("Forwarded", FORWARDING_CLAIM),
        refused("X-Forwarded-For", FORWARDING_CLAIM),
        refused("x-forwarded-host", FORWARDING_CLAIM),
        refused("X-Forwarded-Client-Cert", FORWARDING_CLAIM),
        refused("X-Real-IP", FORWARDING_CLAIM),
        refused("Via", FORWARDING_CLAIM),
        refused("X-HTTP-Method-Override", METHOD_OVERRIDE),
        refused("X-HTTP-Method", METHOD_OVERRIDE),
        refused("X-Method-Override", METHOD_OVERRIDE),
        error(
            "version: 1\nrequest: {forward-headers: [X-Team, x-model-key]}\n"
                + "upstream: {credential: {header: X-Model-Key, from-env: K}}",
            "request.forward-headers[1]: \"x-model-key\" is the upstream credential's header"
                + " (upstream.credential.header); it is never taken from a caller"),
        error(
            "version: 1\nupstream: {credential: {header: api-key, from-env: K}}\n"
                + "request: {forward-headers: [API-Key]}",
            "request.forward-headers[0]: \"API-Key\" is the upstream credential's header"
                + " (upstream.credential.header); it is never taken from a caller"),

        // identity
        error("version: 1\nidentity: [x]", "identity: expected a mapping, was a list"),
        error("version: 1\nidentity: {api-key: []}", "identity.api-key: unknown key"),
        error(
            "version: 1\nidentity: {api-keys: {name: x}}",
            "identity.api-keys: expected a list of keys, was a mapping"),
        error(
            "version: 1\nidentity: {api-keys: [ci]}",
            "identity.api-keys[0]: expected a mapping, was \"ci\""),
        error(
            "version: 1\nidentity: {api-keys: [{sha256: " + HASH + "}]}",
            "identity.api-keys[0].name: required"),
        error(
            "version: 1\nidentity: {api-keys: [{name: \"\", sha256: " + HASH + "}]}",
            "identity.api-keys[0].name: must not be empty"),
        error(
            "version: 1\nidentity: {api-keys: [{name: k}]}",
            "identity.api-keys[0].sha256: required"),
        error(
            "version: 1\nidentity: {api-keys: [{name: k, sha256: abc123}]}",
            "identity.api-keys[0].sha256: expected 64 hex characters"),
        // looks like a raw key: must not be echoed
        error(
            "version: 1\nidentity: {api-keys: [{name: k, sha256: sk-live-0123456789}]}",
            "identity.api-keys[0].sha256: expected 64 hex characters"),
        error(
            "version: 1\nidentity: {api-keys: [{name: k, sha256: " + "g".repeat(64) + "}]}",
            "identity.api-keys[0].sha256: expected 64 hex characters"),
        error(
            "version: 1\nidentity: {api-keys: [{name: k, sha256: " + HASH + "0}]}",
            "identity.api-keys[0].sha256: expected 64 hex characters"),
        error(
            "version: 1\nidentity: {api-keys: [{name: k, sha256: 12345}]}",
            "identity.api-keys[0].sha256: expected 64 hex characters"),
        error(key("      group: [ci]\n"), "identity.api-keys[0].group: unknown key"),
        error(
            key("      groups: ci\n"),
            "identity.api-keys[0].groups: expected a list of strings, was \"ci\""),
        error(
            key("      groups: [ci, 5]\n"),
            "identity.api-keys[0].groups[1]: expected a string, was 5"),
        error(
            key("      groups: [ci, \"\"]\n"), "identity.api-keys[0].groups[1]: must not be empty"),
        error(
            key("      groups: [\"*\"]\n"),
            "identity.api-keys[0].groups[0]: \"*\" is not a group name"),
        error(
            key("      expires: 2027-01-31\n"),
            "identity.api-keys[0].expires: expected an ISO-8601 instant "
                + "such as 2027-01-31T00:00:00Z, was \"2027-01-31\""),
        error(
            key("      expires: soon\n"),
            "identity.api-keys[0].expires: expected an ISO-8601 instant "
                + "such as 2027-01-31T00:00:00Z, was \"soon\""),
        error(
            key("      expires: 1700000000\n"),
            "identity.api-keys[0].expires: expected a string, was 1700000000"),
        error(
            key("    - name: k\n      sha256: " + "a".repeat(64) + "\n"),
            "identity.api-keys[1].name: duplicate name \"k\" (also identity.api-keys[0])"),
        error(
            key("    - name: other\n      sha256: " + HASH.toUpperCase() + "\n"),
            "identity.api-keys[1].sha256: same key as identity.api-keys[0]"),

        // upstream
        error("version: 1\nupstream: {credentials: {}}", "upstream.credentials: unknown key"),
        error(
            "version: 1\nupstream: {credential: null}",
            "upstream.credential: expected a mapping, was null"),
        error(
            "version: 1\nupstream: {credential: {from-env: KEY, from-file: /run/key}}",
            "upstream.credential: exactly one of from-env / from-file / oauth2"),
        error(
            "version: 1\nupstream: {credential: {header: Authorization}}",
            "upstream.credential: exactly one of from-env / from-file / oauth2"),
        error(
            "version: 1\nupstream: {credential: {from-env: \"\"}}",
            "upstream.credential.from-env: must not be empty"),
        error(
            "version: 1\nupstream: {credential: {from-env: A=B}}",
            "upstream.credential.from-env: expected an environment variable name, was \"A=B\""),
        error(
            "version: 1\nupstream: {credential: {from-file: [a]}}",
            "upstream.credential.from-file: expected a string, was a list"),
        error(
            "version: 1\nupstream: {credential: {from-env: K, header: \"X Key\"}}",
            "upstream.credential.header: expected a header name, was \"X Key\""),
        error(
            "version: 1\nupstream: {credential: {from-env: K, header: \"\"}}",
            "upstream.credential.header: expected a header name, was \"\""),
        error(
            "version: 1\nupstream: {credential: {from-env: K, scheme: \"Bearer \"}}",
            "upstream.credential.scheme: expected a scheme such as Bearer, or \"\" for raw values, was \"Bearer \""),
        error(
            "version: 1\nupstream: {credential: {from-env: K, scheme: null}}",
            "upstream.credential.scheme: expected a string, was null"),
        error(
            "version: 1\nupstream: {credential: {from-env: K, fromenv: K}}",
            "upstream.credential.fromenv: unknown key"),

        // entitlements
        error(
            "version: 1\nentitlements: {groups: [a]}",
            "entitlements: expected a list of entitlements, was a mapping"),
        error("version: 1\nentitlements: [x]", "entitlements[0]: expected a mapping, was \"x\""),
        error(
            """
            version: 1
            entitlements:
              - groups: [ml]
                models: [gpt-4o-mini]
                operations: [chat]
              - groups: [ml]
                models: ["llama-["]
                operations: [chat]
            """,
            "entitlements[1].models[0]: invalid glob \"llama-[\": unclosed '['"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    modles: [x]\n    operations: [chat]\n",
            "entitlements[0].modles: unknown key"),
        error(
            "version: 1\nentitlements:\n  - models: [x]\n    operations: [chat]\n",
            "entitlements[0].groups: required"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    operations: [chat]\n",
            "entitlements[0].models: required"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: [x]\n",
            "entitlements[0].operations: required"),
        error(
            "version: 1\nentitlements:\n  - groups: ml\n    models: [x]\n    operations: [chat]\n",
            "entitlements[0].groups: expected a list of strings, was \"ml\""),
        error(
            "version: 1\nentitlements:\n  - groups: []\n    models: [x]\n    operations: [chat]\n",
            "entitlements[0].groups: must not be empty"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: []\n    operations: [chat]\n",
            "entitlements[0].models: must not be empty"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: gpt-4o\n    operations: [chat]\n",
            "entitlements[0].models: expected a list of strings, was \"gpt-4o\""),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: [x]\n    operations: chat\n",
            "entitlements[0].operations: expected a list of strings, was \"chat\""),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: [x]\n    operations: [chat, chatt]\n",
            "entitlements[0].operations[1]: unknown operation \"chatt\" (known: chat, completion, embedding, infer)"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: [x]\n    operations: [Chat]\n",
            "entitlements[0].operations[0]: unknown operation \"Chat\" (known: chat, completion, embedding, infer)"),
        error(
            "version: 1\nentitlements:\n  - groups: [ml]\n    models: [x]\n    operations: [{chat: 1}]\n",
            "entitlements[0].operations[0]: expected a string, was a mapping"),

        // allow
        error("version: 1\nallow: {}", "allow: expected a list of rules, was a mapping"),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [GET]\n    paths: [v1/models]\n",
            "allow[0].paths[0]: must start with \"/\", was \"v1/models\""),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [GET]\n    paths: [\"/ok\", \"/v1/{a}\"]\n",
            "allow[0].paths[1]: invalid glob \"/v1/{a}\": '{' and '}' are reserved; escape them as '\\{' '\\}'"),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [\"GE T\"]\n    paths: [\"/x\"]\n",
            "allow[0].methods[0]: expected an HTTP method or \"*\", was \"GE T\""),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [\"G*\"]\n    paths: [\"/x\"]\n",
            "allow[0].methods[0]: expected an HTTP method or \"*\", was \"G*\""),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: GET\n    paths: [\"/x\"]\n",
            "allow[0].methods: expected a list of strings, was \"GET\""),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    paths: [\"/x\"]\n",
            "allow[0].methods: required"),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [GET]\n",
            "allow[0].paths: required"),
        error(
            "version: 1\nallow:\n  - groups: [\"*\"]\n    methods: [GET]\n    paths: [\"/x\"]\n    path: [\"/y\"]\n",
            "allow[0].path: unknown key"),

        // block
        error("version: 1\nblock: [ollama-admin]", "block: expected a mapping, was a list"),
        error(
            "version: 1\nblock:\n  presets: [foo-admin]\n",
            "block.presets[0]: unknown preset \"foo-admin\" "
                + "(known: ollama-admin, vllm-admin, triton-admin, torchserve-admin, openai-admin)"),
        error(
            "version: 1\nblock:\n  presets: ollama-admin\n",
            "block.presets: expected a list of strings, was \"ollama-admin\""),
        error("version: 1\nblock:\n  preset: [ollama-admin]\n", "block.preset: unknown key"),
        error(
            "version: 1\nblock:\n  rules: {name: x}\n",
            "block.rules: expected a list of rules, was a mapping"),
        error(
            "version: 1\nblock:\n  rules:\n    - methods: [\"*\"]\n      paths: [\"/x\"]\n",
            "block.rules[0].name: required"),
        error(
            "version: 1\nblock:\n  rules:\n    - name: x\n      methods: [\"*\"]\n",
            "block.rules[0].paths: required"),
        error(
            "version: 1\nblock:\n  rules:\n    - name: x\n      paths: [\"/x\"]\n",
            "block.rules[0].methods: required"),
        error(
            "version: 1\nblock:\n  rules:\n    - name: a:b\n      methods: [\"*\"]\n      paths: [\"/x\"]\n",
            "block.rules[0].name: \":\" is reserved for preset rule names, was \"a:b\""),
        error(
            """
            version: 1
            block:
              rules:
                - name: x
                  methods: ["*"]
                  paths: ["/a"]
                - name: x
                  methods: ["*"]
                  paths: ["/b"]
            """,
            "block.rules[1].name: duplicate name \"x\" (also block.rules[0])"),
        error(
            "version: 1\nblock:\n  rules:\n    - name: x\n      methods: [\"*\"]\n      paths: [\"/a/***\"]\n",
            "block.rules[0].paths[0]: invalid glob \"/a/***\": more than two '*' in a row"),

        // parameters
        error(
            "version: 1\nparameters:\n  max:\n    n: one\n",
            "parameters.max.n: expected a number, was \"one\""),
        error(
            "version: 1\nparameters:\n  max:\n    n: \"1\"\n",
            "parameters.max.n: expected a number, was \"1\""),
        error(
            "version: 1\nparameters:\n  max:\n    n: true\n",
            "parameters.max.n: expected a number, was true"),
        error(
            "version: 1\nparameters:\n  max:\n    n: null\n",
            "parameters.max.n: expected a number, was null"),
        error(
            "version: 1\nparameters:\n  max:\n    \"odd name\": [1]\n",
            "parameters.max[\"odd name\"]: expected a number, was a list"),
        error(
            "version: 1\nparameters:\n  max: [n]\n",
            "parameters.max: expected a mapping, was a list"),
        error(
            "version: 1\nparameters:\n  deny: logprobs\n",
            "parameters.deny: expected a list of strings, was \"logprobs\""),
        error(
            "version: 1\nparameters:\n  deny: [logprobs, 3]\n",
            "parameters.deny[1]: expected a string, was 3"),
        error(
            "version: 1\nparameters:\n  exempt-groups: [\"\"]\n",
            "parameters.exempt-groups[0]: must not be empty"),
        error("version: 1\nparameters:\n  min: {n: 1}\n", "parameters.min: unknown key"),
        error(
            "version: 1\nparameters:\n  max:\n    max_tokens: -1\n",
            "parameters.max.max_tokens: must be >= 0 (values are allowed in 0..max), was -1"),
        error(
            "version: 1\nparameters:\n  presets: [extraction, logprobs]\n",
            "parameters.presets[1]: unknown preset \"logprobs\" (known: extraction)"),
        error(
            "version: 1\nparameters:\n  presets: extraction\n",
            "parameters.presets: expected a list of strings, was \"extraction\""),
        error(
            "version: 1\nparameters:\n  presets: [\"\"]\n",
            "parameters.presets[0]: must not be empty"));
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void yamlErrorNamesThePathAndValue(String yaml, String message) {
    assertThatThrownBy(() -> PolicyLoader.parse(yaml, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message)
        .hasNoCause();
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void jsonErrorNamesThePathAndValue(String yaml, String message) {
    String json = asJson(yaml);
    assertThatThrownBy(() -> PolicyLoader.parseJson(json, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }
}
