package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyLoaderTest.asJson;
import static dev.inferpam.core.internal.policy.PolicyLoaderTest.both;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.core.internal.credentials.CredentialProviders;
import dev.inferpam.core.internal.credentials.OAuth2CredentialProvider;
import java.net.URI;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code upstream.credential.oauth2}: what loads, and what is refused with which message. */
class PolicyLoaderOAuth2Test {

  private static String credential(String body) {
    return "version: 1\nupstream:\n  credential:\n" + body.indent(4);
  }

  private static String oauth2(String body) {
    return credential("oauth2:\n" + body.indent(2));
  }

  private static final String MINIMAL =
      """
      token-endpoint: https://idp.example.com/oauth2/token
      client-id: inference-gateway
      client-secret-from-env: GATEWAY_CLIENT_SECRET
      """;

  @Test
  void loadsAllKeys() {
    Policy p =
        both(
            credential(
                """
        header: Authorization
        scheme: Bearer
        oauth2:
          token-endpoint: https://idp.example.com/oauth2/token
          client-id: inference-gateway
          client-secret-from-file: /run/secrets/client-secret
          scope: models.invoke
          audience: https://models.example.com
          refresh-before: 2m
        """));
    assertThat(p.upstream().credential())
        .isEqualTo(
            new Policy.CredentialSource(
                "Authorization",
                "Bearer",
                null,
                null,
                new Policy.OAuth2(
                    URI.create("https://idp.example.com/oauth2/token"),
                    "inference-gateway",
                    null,
                    Path.of("/run/secrets/client-secret"),
                    "models.invoke",
                    "https://models.example.com",
                    Duration.ofMinutes(2))));
  }

  @Test
  void appliesDefaults() {
    Policy p = both(oauth2(MINIMAL));
    Policy.CredentialSource source = p.upstream().credential();
    assertThat(source.header()).isEqualTo("Authorization");
    assertThat(source.scheme()).isNull(); // the provider picks Bearer for Authorization
    assertThat(source.fromEnv()).isNull();
    assertThat(source.fromFile()).isNull();
    assertThat(source.oauth2())
        .isEqualTo(
            new Policy.OAuth2(
                URI.create("https://idp.example.com/oauth2/token"),
                "inference-gateway",
                "GATEWAY_CLIENT_SECRET",
                null,
                null,
                null,
                Duration.ofSeconds(60)));
  }

  @Test
  void allowsHttpForLoopbackHostsOnly() {
    for (String host :
        new String[] {"127.0.0.1:8080", "localhost", "LOCALHOST:9000", "[::1]:8443"}) {
      Policy p =
          both(
              oauth2(
                  "token-endpoint: http://"
                      + host
                      + "/token\nclient-id: c\nclient-secret-from-env: S\n"));
      assertThat(p.upstream().credential().oauth2().tokenEndpoint())
          .hasToString("http://" + host + "/token");
    }
  }

  @Test
  void buildsAnOAuth2ProviderWithABearerAuthorizationHeader() {
    Policy p = both(oauth2(MINIMAL));
    assertThat(CredentialProviders.from(p.upstream().credential(), name -> "s", Clock.systemUTC()))
        .isInstanceOf(OAuth2CredentialProvider.class)
        .hasToString(
            "OAuth2CredentialProvider[Authorization from token endpoint idp.example.com, client inference-gateway]");
  }

  static Stream<Arguments> errors() {
    return Stream.of(
        Arguments.of(
            credential(
                "from-env: K\noauth2: {token-endpoint: https://idp/t, client-id: c, client-secret-from-env: S}"),
            "upstream.credential: exactly one of from-env / from-file / oauth2"),
        Arguments.of(
            credential(
                "from-file: /k\noauth2: {token-endpoint: https://idp/t, client-id: c, client-secret-from-env: S}"),
            "upstream.credential: exactly one of from-env / from-file / oauth2"),
        Arguments.of(
            credential("oauth2: https://idp/t"),
            "upstream.credential.oauth2: expected a mapping, was \"https://idp/t\""),
        Arguments.of(
            oauth2("client-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: required"),
        Arguments.of(
            oauth2(
                "token-endpoint: http://idp.example.com/token\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: must be https; http is allowed only for loopback hosts "
                + "(127.0.0.1, localhost, [::1]), was \"http://idp.example.com/token\""),
        Arguments.of(
            oauth2("token-endpoint: /oauth2/token\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: expected an absolute https URL, was \"/oauth2/token\""),
        Arguments.of(
            oauth2(
                "token-endpoint: \"https://idp example/token\"\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: expected an absolute https URL, was \"https://idp example/token\""),
        Arguments.of(
            oauth2(
                "token-endpoint: https://gw:hunter2@idp/token\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: must not contain user info; the client secret belongs in "
                + "client-secret-from-env or client-secret-from-file"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/token#x\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: must not have a fragment, was \"https://idp/token#x\""),
        Arguments.of(
            oauth2("token-endpoint: 443\nclient-id: c\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.token-endpoint: expected a string, was 443"),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.client-id: required"),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-id: \"\"\nclient-secret-from-env: S\n"),
            "upstream.credential.oauth2.client-id: must not be empty"),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-id: c\n"),
            "upstream.credential.oauth2: exactly one of client-secret-from-env / client-secret-from-file"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: S\nclient-secret-from-file: /s\n"),
            "upstream.credential.oauth2: exactly one of client-secret-from-env / client-secret-from-file"),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: A=B\n"),
            "upstream.credential.oauth2.client-secret-from-env: expected an environment variable name, was \"A=B\""),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-file: \"\"\n"),
            "upstream.credential.oauth2.client-secret-from-file: must not be empty"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: S\nscope: [a, b]\n"),
            "upstream.credential.oauth2.scope: expected a string, was a list"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: S\naudience: \"\"\n"),
            "upstream.credential.oauth2.audience: must not be empty"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: S\nrefresh-before: 1 minute\n"),
            "upstream.credential.oauth2.refresh-before: invalid duration \"1 minute\": expected a whole number "
                + "followed by ms, s, m, h or d, e.g. 30s"),
        Arguments.of(
            oauth2(
                "token-endpoint: https://idp/t\nclient-id: c\nclient-secret-from-env: S\nrefresh-before: 60\n"),
            "upstream.credential.oauth2.refresh-before: expected a string, was 60"),
        Arguments.of(
            oauth2("token-endpoint: https://idp/t\nclient-id: c\nclient-secret: hunter2\n"),
            "upstream.credential.oauth2.client-secret: unknown key"));
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void yamlErrorNamesTheKeyAndValue(String yaml, String message) {
    assertThatThrownBy(() -> PolicyLoader.parse(yaml, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("errors")
  void jsonErrorNamesTheKeyAndValue(String yaml, String message) {
    String json = asJson(yaml);
    assertThatThrownBy(() -> PolicyLoader.parseJson(json, "policy"))
        .isInstanceOf(PolicyException.class)
        .hasMessage(message);
  }
}
