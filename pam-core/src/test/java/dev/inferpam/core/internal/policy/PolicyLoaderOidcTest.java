package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.internal.identity.OidcRules;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code identity.oidc}: what loads, with its defaults, and every error naming path and value. */
class PolicyLoaderOidcTest {

  private static Policy both(String yaml) {
    Policy fromYaml = PolicyLoader.parse(yaml, "policy");
    assertThat(PolicyLoader.parseJson(asJson(yaml), "policy")).isEqualTo(fromYaml);
    return fromYaml;
  }

  private static String issuer(String body) {
    return "version: 1\nidentity:\n  oidc:\n    - " + body.strip().replace("\n", "\n      ") + "\n";
  }

  @Test
  void loadsEveryKeyOfTheSpecExample() {
    Policy p =
        both(
            """
        version: 1
        identity:
          oidc:
            - issuer: https://idp.example.com/realms/ml
              audience: inference-gateway
              jwks-uri: https://idp.example.com/realms/ml/protocol/openid-connect/certs
              algorithms: [RS256, ES256]
              groups-claim: realm_access.roles
              subject-claim: preferred_username
              require-type: at+jwt
              clock-skew: 10s
            - issuer: https://login.microsoftonline.com/8f1c/v2.0
              audience: api://inference
              groups-claim: roles
          api-keys:
            - name: ci
              sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        """);

    assertThat(p.identity().apiKeys()).hasSize(1);
    assertThat(p.identity().oidc())
        .containsExactly(
            new Policy.OidcIssuer(
                "https://idp.example.com/realms/ml",
                "inference-gateway",
                URI.create("https://idp.example.com/realms/ml/protocol/openid-connect/certs"),
                List.of("RS256", "ES256"),
                "realm_access.roles",
                "preferred_username",
                "at+jwt",
                Duration.ofSeconds(10)),
            new Policy.OidcIssuer(
                "https://login.microsoftonline.com/8f1c/v2.0",
                "api://inference",
                null,
                null,
                "roles",
                null,
                null,
                null));
  }

  @Test
  void appliesTheDocumentedDefaults() {
    Policy.OidcIssuer i =
        both(issuer("{issuer: \"https://idp.example.com\", audience: gw}"))
            .identity()
            .oidc()
            .get(0);

    assertThat(i.jwksUri()).as("discovery").isNull();
    assertThat(i.algorithms()).containsExactly("RS256", "PS256", "ES256");
    assertThat(i.groupsClaim()).isEqualTo("groups");
    assertThat(i.subjectClaim()).isEqualTo("sub");
    assertThat(i.requireType()).isNull();
    assertThat(i.clockSkew()).isEqualTo(Duration.ofSeconds(30));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "http://127.0.0.1:8080/realms/ml",
        "http://localhost/",
        "http://LOCALHOST:1",
        "http://[::1]:9000/idp",
        "https://idp.example.com:8443/a/b/"
      })
  void acceptsHttpsAndLoopbackHttp(String url) {
    Policy p =
        both(issuer("{issuer: \"" + url + "\", audience: gw, jwks-uri: \"" + url + "/keys?v=1\"}"));
    assertThat(p.identity().oidc().get(0).issuer()).isEqualTo(url);
  }

  @Test
  void acceptsAnEmptyListAndEveryAlgorithmOfTheAllowList() {
    assertThat(both("version: 1\nidentity:\n  oidc: []\n").identity().oidc()).isEmpty();
    String all = String.join(", ", OidcRules.ALGORITHMS);
    assertThat(
            both(issuer("{issuer: \"https://i\", audience: a, algorithms: [" + all + ", RS256]}"))
                .identity()
                .oidc()
                .get(0)
                .algorithms())
        .containsExactlyElementsOf(OidcRules.ALGORITHMS);
  }

  @ParameterizedTest
  @ValueSource(strings = {"0s", "500ms", "5m", "300s"})
  void acceptsClockSkewsUpToFiveMinutes(String skew) {
    assertThat(
            both(issuer("{issuer: \"https://i\", audience: a, clock-skew: " + skew + "}"))
                .identity()
                .oidc()
                .get(0)
                .clockSkew())
        .isEqualTo(Durations.parse(skew));
  }

  private static Arguments error(String yaml, String message) {
    return Arguments.of(yaml, message);
  }

  private static final String URL_RULE =
      "must be an absolute https URL (http only for loopback hosts 127.0.0.1, localhost and [::1])";

  static Stream<Arguments> errors() {
    String ok = "issuer: \"https://idp.example.com\", audience: gw";
    return Stream.of(
        error(
            "version: 1\nidentity:\n  oidc: {}",
            "identity.oidc: expected a list of issuers, was a mapping"),
        error(
            "version: 1\nidentity:\n  oidc: [issuer]",
            "identity.oidc[0]: expected a mapping, was \"issuer\""),
        error(issuer("{audience: gw}"), "identity.oidc[0].issuer: required"),
        error(issuer("{issuer: \"https://i\"}"), "identity.oidc[0].audience: required"),
        error(issuer("{" + ok + ", audiences: [gw]}"), "identity.oidc[0].audiences: unknown key"),
        error(
            issuer("{" + ok + ", jwks_uri: \"https://i/k\"}"),
            "identity.oidc[0].jwks_uri: unknown key"),
        error(issuer("{issuer: \"\", audience: gw}"), "identity.oidc[0].issuer: must not be empty"),
        error(
            issuer("{issuer: 5, audience: gw}"),
            "identity.oidc[0].issuer: expected a string, was 5"),
        error(
            issuer("{issuer: \"https://i\", audience: \"\"}"),
            "identity.oidc[0].audience: must not be empty"),
        error(
            issuer("{issuer: \"https://i\", audience: [gw]}"),
            "identity.oidc[0].audience: expected a string, was a list"),

        // URLs
        error(
            issuer("{issuer: \"http://idp.example.com\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"http://idp.example.com\""),
        error(
            issuer("{issuer: \"http://127.0.0.2\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"http://127.0.0.2\""),
        error(
            issuer("{issuer: \"http://localhost.example.com\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"http://localhost.example.com\""),
        error(
            issuer("{issuer: \"idp.example.com\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"idp.example.com\""),
        error(
            issuer("{issuer: \"/realms/ml\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"/realms/ml\""),
        error(
            issuer("{issuer: \"ftp://idp\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"ftp://idp\""),
        error(
            issuer("{issuer: \"file:///etc/keys\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"file:///etc/keys\""),
        error(
            issuer("{issuer: \"https://idp ex\", audience: gw}"),
            "identity.oidc[0].issuer: " + URL_RULE + ", was \"https://idp ex\""),
        error(
            issuer("{issuer: \"https://idp?tenant=a\", audience: gw}"),
            "identity.oidc[0].issuer: must not have a query, was \"https://idp?tenant=a\""),
        error(
            issuer("{issuer: \"https://idp#x\", audience: gw}"),
            "identity.oidc[0].issuer: must not have a fragment, was \"https://idp#x\""),
        // user info may be a password: not echoed
        error(
            issuer("{issuer: \"https://admin:hunter2@idp\", audience: gw}"),
            "identity.oidc[0].issuer: must not contain user info"),
        error(
            issuer("{" + ok + ", jwks-uri: \"http://idp.example.com/certs\"}"),
            "identity.oidc[0].jwks-uri: " + URL_RULE + ", was \"http://idp.example.com/certs\""),
        error(
            issuer("{" + ok + ", jwks-uri: \"https://u:p@idp/certs\"}"),
            "identity.oidc[0].jwks-uri: must not contain user info"),
        error(
            issuer("{" + ok + ", jwks-uri: [\"https://idp/certs\"]}"),
            "identity.oidc[0].jwks-uri: expected a string, was a list"),

        // algorithms
        error(
            issuer("{" + ok + ", algorithms: [RS256, none]}"),
            "identity.oidc[0].algorithms[1]: \"none\" (unsigned tokens) is never accepted for OIDC, was \"none\""),
        error(
            issuer("{" + ok + ", algorithms: [HS256]}"),
            "identity.oidc[0].algorithms[0]: HMAC algorithms (HS256, HS384, "
                + "HS512) are never accepted for OIDC: the key would be a secret shared with the issuer, and a public key "
                + "could be passed off as one, was \"HS256\""),
        error(
            issuer("{" + ok + ", algorithms: [HS512]}"),
            "identity.oidc[0].algorithms[0]: HMAC algorithms (HS256, HS384, "
                + "HS512) are never accepted for OIDC: the key would be a secret shared with the issuer, and a public key "
                + "could be passed off as one, was \"HS512\""),
        error(
            issuer("{" + ok + ", algorithms: [rs256]}"),
            "identity.oidc[0].algorithms[0]: unknown algorithm (known: RS256, "
                + "RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA), was \"rs256\""),
        error(
            issuer("{" + ok + ", algorithms: []}"),
            "identity.oidc[0].algorithms: must not be empty"),
        error(
            issuer("{" + ok + ", algorithms: RS256}"),
            "identity.oidc[0].algorithms: expected a list of strings, was \"RS256\""),

        // claims, type, skew
        error(
            issuer("{" + ok + ", groups-claim: \"\"}"),
            "identity.oidc[0].groups-claim: must not be blank, was \"\""),
        error(
            issuer("{" + ok + ", groups-claim: \"  \"}"),
            "identity.oidc[0].groups-claim: must not be blank, was \"  \""),
        error(
            issuer("{" + ok + ", groups-claim: realm_access..roles}"),
            "identity.oidc[0].groups-claim: expected a claim "
                + "name or dotted path such as realm_access.roles, was \"realm_access..roles\""),
        error(
            issuer("{" + ok + ", groups-claim: .roles}"),
            "identity.oidc[0].groups-claim: expected a claim name or dotted "
                + "path such as realm_access.roles, was \".roles\""),
        error(
            issuer("{" + ok + ", subject-claim: \"oid.\"}"),
            "identity.oidc[0].subject-claim: expected a claim name or "
                + "dotted path such as realm_access.roles, was \"oid.\""),
        error(
            issuer("{" + ok + ", subject-claim: [sub]}"),
            "identity.oidc[0].subject-claim: expected a string, was a list"),
        error(
            issuer("{" + ok + ", require-type: \"at jwt\"}"),
            "identity.oidc[0].require-type: expected a token type such as at+jwt, was \"at jwt\""),
        error(
            issuer("{" + ok + ", require-type: true}"),
            "identity.oidc[0].require-type: expected a string, was true"),
        error(
            issuer("{" + ok + ", clock-skew: 6m}"),
            "identity.oidc[0].clock-skew: must be between 0s and 5m, was \"6m\""),
        error(
            issuer("{" + ok + ", clock-skew: 1d}"),
            "identity.oidc[0].clock-skew: must be between 0s and 5m, was \"1d\""),
        error(
            issuer("{" + ok + ", clock-skew: 30}"),
            "identity.oidc[0].clock-skew: expected a duration such as 30s, was 30"),
        error(
            issuer("{" + ok + ", clock-skew: -1s}"),
            "identity.oidc[0].clock-skew: invalid duration \"-1s\": expected a "
                + "whole number followed by ms, s, m, h or d, e.g. 30s"),

        // duplicates
        error(
            """
            version: 1
            identity:
              oidc:
                - {issuer: "https://a", audience: x}
                - {issuer: "https://b", audience: x}
                - {issuer: "https://a", audience: y}
            """,
            "identity.oidc[2].issuer: duplicate issuer \"https://a\" (also identity.oidc[0])"));
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
    assertThatThrownBy(() -> PolicyLoader.parseJson(asJson(yaml), "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }
}
