package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ApiKeyResolverTest {

  private static final Instant NOW = Instant.parse("2026-06-01T12:00:00Z");
  private static final String CI_KEY = "pam_ci_0123456789abcdef";
  private static final String AGENT_KEY = "pam_agent_fedcba9876543210";
  private static final String OLD_KEY = "pam_old_aaaaaaaaaaaaaaaa";
  private static final String JWT =
      "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz_-0";

  private final Clock clock = Clock.fixed(NOW, ZoneOffset.UTC);
  private final ApiKeyResolver resolver =
      new ApiKeyResolver(
          List.of(
              new Policy.ApiKey(
                  "nightly-eval", sha256(CI_KEY), Set.of("ci"), NOW.plusSeconds(3600)),
              new Policy.ApiKey(
                  "agent", sha256(AGENT_KEY).toUpperCase(), Set.of("agents", "ml"), null),
              new Policy.ApiKey("retired", sha256(OLD_KEY), Set.of("ci"), NOW)),
          clock);

  static String sha256(String key) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static InferenceRequest request(Map<String, List<String>> headers) {
    return new InferenceRequest("POST", "/v1/chat/completions", null, headers, null, null);
  }

  private static InferenceRequest withHeader(String name, String value) {
    return request(Map.of(name, List.of(value)));
  }

  @Test
  void resolvesABearerKeyToItsServicePrincipal() throws AuthenticationException {
    Optional<Principal> principal =
        resolver.resolve(withHeader("Authorization", "Bearer " + CI_KEY));

    assertThat(principal)
        .contains(
            new Principal("nightly-eval", Set.of("ci"), Principal.VIA_API_KEY, null, Map.of()));
  }

  @Test
  void resolvesAnXApiKey() throws AuthenticationException {
    assertThat(resolver.resolve(withHeader("X-Api-Key", AGENT_KEY)))
        .map(Principal::subject)
        .contains("agent");
  }

  @Test
  void acceptsUpperCaseHashesAndAnyCaseOfTheSchemeAndHeaderName() throws AuthenticationException {
    assertThat(resolver.resolve(withHeader("authorization", "bearer " + AGENT_KEY)))
        .map(Principal::groups)
        .contains(Set.of("agents", "ml"));
    assertThat(resolver.resolve(withHeader("AUTHORIZATION", "BEARER   " + AGENT_KEY + " ")))
        .map(Principal::subject)
        .contains("agent");
    assertThat(resolver.resolve(withHeader("x-api-key", " " + AGENT_KEY + " ")))
        .map(Principal::subject)
        .contains("agent");
  }

  @Test
  void refusesAnExpiredKey() {
    assertThatThrownBy(() -> resolver.resolve(withHeader("Authorization", "Bearer " + OLD_KEY)))
        .isInstanceOf(AuthenticationException.class)
        .hasMessage("api key expired");
  }

  @Test
  void keyExpiresWhenTheClockReachesItsExpiry() throws AuthenticationException {
    List<Policy.ApiKey> keys =
        List.of(new Policy.ApiKey("ci", sha256(CI_KEY), Set.of("ci"), NOW.plusSeconds(60)));
    InferenceRequest request = withHeader("X-Api-Key", CI_KEY);

    assertThat(
            new ApiKeyResolver(keys, Clock.fixed(NOW.plusSeconds(59), ZoneOffset.UTC))
                .resolve(request))
        .isPresent();
    assertThatThrownBy(
            () ->
                new ApiKeyResolver(keys, Clock.fixed(NOW.plusSeconds(60), ZoneOffset.UTC))
                    .resolve(request))
        .hasMessage("api key expired");
  }

  @ParameterizedTest
  @ValueSource(strings = {"pam_ci_wrong", "sk-1234", "a.b", "a.b.c.d", ".b.c", "a.b.c=", "x"})
  void refusesAnUnknownBearerValueThatIsNotAJwt(String value) {
    assertThatThrownBy(() -> resolver.resolve(withHeader("Authorization", "Bearer " + value)))
        .isInstanceOf(AuthenticationException.class)
        .hasMessage("unknown api key");
  }

  @Test
  void refusesAnUnknownXApiKeyEvenWhenItLooksLikeAJwt() {
    assertThatThrownBy(() -> resolver.resolve(withHeader("X-Api-Key", JWT)))
        .hasMessage("unknown api key");
  }

  @Test
  void leavesJwtBearerTokensToTheNextResolver() throws AuthenticationException {
    assertThat(resolver.resolve(withHeader("Authorization", "Bearer " + JWT))).isEmpty();
  }

  @Test
  void aConfiguredKeyShapedLikeAJwtStillResolves() throws AuthenticationException {
    String jwtShapedKey = "aaa.bbb.ccc";
    ApiKeyResolver r =
        new ApiKeyResolver(
            List.of(new Policy.ApiKey("odd", sha256(jwtShapedKey), Set.of(), null)), clock);
    assertThat(r.resolve(withHeader("Authorization", "Bearer " + jwtShapedKey)))
        .map(Principal::subject)
        .contains("odd");
  }

  @Test
  void returnsEmptyWithoutACredentialItUnderstands() throws AuthenticationException {
    assertThat(resolver.resolve(request(Map.of()))).isEmpty();
    assertThat(resolver.resolve(withHeader("Authorization", "Basic dXNlcjpwYXNz"))).isEmpty();
    assertThat(resolver.resolve(withHeader("Authorization", "Bearer"))).isEmpty();
    assertThat(resolver.resolve(withHeader("Authorization", "Bearer   "))).isEmpty();
    assertThat(resolver.resolve(withHeader("Authorization", "Bearerx" + CI_KEY))).isEmpty();
    assertThat(resolver.resolve(withHeader("X-Api-Key", " "))).isEmpty();
  }

  @Test
  void usesXApiKeyWhenAuthorizationHasAnotherScheme() throws AuthenticationException {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    headers.put("Authorization", List.of("Basic dXNlcjpwYXNz"));
    headers.put("X-Api-Key", List.of(CI_KEY));
    assertThat(resolver.resolve(request(headers))).map(Principal::subject).contains("nightly-eval");
  }

  @Test
  void acceptsTheSameKeyInBothHeaders() throws AuthenticationException {
    Map<String, List<String>> headers =
        Map.of("Authorization", List.of("Bearer " + CI_KEY), "X-Api-Key", List.of(CI_KEY));
    assertThat(resolver.resolve(request(headers))).map(Principal::subject).contains("nightly-eval");
  }

  @Test
  void refusesTwoDifferentCredentials() {
    Map<String, List<String>> headers =
        Map.of("Authorization", List.of("Bearer " + CI_KEY), "X-Api-Key", List.of(AGENT_KEY));
    assertThatThrownBy(() -> resolver.resolve(request(headers)))
        .hasMessage("conflicting credentials in Authorization and X-Api-Key");
  }

  @Test
  void refusesARepeatedCredentialHeader() {
    assertThatThrownBy(
            () ->
                resolver.resolve(
                    request(
                        Map.of(
                            "Authorization", List.of("Bearer " + CI_KEY, "Bearer " + AGENT_KEY)))))
        .hasMessage("more than one Authorization header");
    assertThatThrownBy(
            () -> resolver.resolve(request(Map.of("X-Api-Key", List.of(CI_KEY, CI_KEY)))))
        .hasMessage("more than one X-Api-Key header");
  }

  @Test
  void keyRotationAllowsTwoKeysWithOneName() throws AuthenticationException {
    ApiKeyResolver r =
        new ApiKeyResolver(
            List.of(
                new Policy.ApiKey("ci", sha256(CI_KEY), Set.of("ci"), null),
                new Policy.ApiKey("ci", sha256(AGENT_KEY), Set.of("ci"), null)),
            clock);
    assertThat(r.resolve(withHeader("X-Api-Key", CI_KEY))).map(Principal::subject).contains("ci");
    assertThat(r.resolve(withHeader("X-Api-Key", AGENT_KEY)))
        .map(Principal::subject)
        .contains("ci");
  }

  @Test
  void withNoKeysConfiguredEveryPresentedKeyIsUnknown() throws AuthenticationException {
    ApiKeyResolver empty = new ApiKeyResolver(List.of(), clock);
    assertThatThrownBy(() -> empty.resolve(withHeader("X-Api-Key", CI_KEY)))
        .hasMessage("unknown api key");
    assertThat(empty.resolve(withHeader("Authorization", "Bearer " + JWT))).isEmpty();
  }

  @Test
  void neverPutsTheKeyInAMessageOrToString() {
    for (String value : new String[] {CI_KEY + "x", OLD_KEY}) {
      assertThatThrownBy(() -> resolver.resolve(withHeader("X-Api-Key", value)))
          .satisfies(e -> assertThat(e.getMessage()).doesNotContain(value, sha256(value)));
    }
    assertThat(resolver.toString())
        .isEqualTo("ApiKeyResolver[3 keys]")
        .doesNotContain(sha256(CI_KEY));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "abc",
        "zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0800"
      })
  void refusesMalformedHashesNamingTheKey(String hash) {
    assertThatThrownBy(
            () ->
                new ApiKeyResolver(
                    List.of(new Policy.ApiKey("broken", hash, Set.of(), null)), clock))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("identity.api-keys[0] (broken): sha256 must be 64 hex digits");
  }

  @Test
  void refusesTwoKeysWithTheSameHash() {
    assertThatThrownBy(
            () ->
                new ApiKeyResolver(
                    List.of(
                        new Policy.ApiKey("a", sha256(CI_KEY), Set.of(), null),
                        new Policy.ApiKey(
                            "b", sha256(CI_KEY).toUpperCase(), Set.of("admin"), null)),
                    clock))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("identity.api-keys[1] (b): same sha256 as key \"a\"");
  }

  @Test
  void recognisesJwtShapesSoThatOidcGetsToExplainTheRefusal() {
    assertThat(BearerTokens.isJwtShaped(JWT)).isTrue();
    assertThat(BearerTokens.isJwtShaped("a.b.c")).isTrue();
    assertThat(BearerTokens.isJwtShaped("a.b.")).as("unsigned, alg none").isTrue();
    assertThat(BearerTokens.isJwtShaped("a.b.c.d.e")).as("JWE").isTrue();
    assertThat(BearerTokens.isJwtShaped(".b.c")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a.b.c.d")).isFalse();
    assertThat(BearerTokens.isJwtShaped("a+b.c.d")).isFalse();
    assertThat(BearerTokens.isJwtShaped("")).isFalse();
  }
}
