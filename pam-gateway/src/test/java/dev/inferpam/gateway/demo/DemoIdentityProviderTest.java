package dev.inferpam.gateway.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo's identity provider, against the engine's OIDC resolver and the demo policy. */
class DemoIdentityProviderTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String AUDIENCE = "inferpam-demo-gateway";

  static DemoIdentityProvider idp;

  @TempDir Path recording;

  @BeforeAll
  static void start() throws Exception {
    idp = DemoIdentityProvider.start();
  }

  @AfterAll
  static void stop() {
    if (idp != null) idp.close();
  }

  @Test
  void servesDiscoveryAndThePublicKeyOnly() throws Exception {
    JsonNode discovery = get(idp.issuer() + "/.well-known/openid-configuration");
    assertThat(discovery.path("issuer").asText())
        .isEqualTo(idp.issuer())
        .matches("http://127\\.0\\.0\\.1:\\d+");
    assertThat(discovery.path("jwks_uri").asText()).isEqualTo(idp.jwksUri().toString());

    JsonNode jwks = get(idp.jwksUri().toString());
    assertThat(jwks.path("keys")).hasSize(1);
    JsonNode key = jwks.path("keys").get(0);
    assertThat(key.path("kty").asText()).isEqualTo("RSA");
    assertThat(key.path("kid").asText()).isEqualTo(idp.keyId()).isNotBlank();
    assertThat(key.path("use").asText()).isEqualTo("sig");
    assertThat(key.path("alg").asText()).isEqualTo("RS256");
    // 2048-bit modulus: 256 bytes, 342 base64url characters
    assertThat(key.path("n").asText()).hasSize(342);
    for (String privatePart : List.of("d", "p", "q", "dp", "dq", "qi"))
      assertThat(key.has(privatePart)).isFalse();
  }

  @Test
  void mintsAccessTokensWithTheClaimsThePolicyAsksFor() throws Exception {
    SignedJWT jwt = SignedJWT.parse(idp.accessToken("dave", AUDIENCE));

    assertThat(jwt.getHeader().getType().getType()).isEqualTo("at+jwt");
    assertThat(jwt.getHeader().getAlgorithm().getName()).isEqualTo("RS256");
    assertThat(jwt.getHeader().getKeyID()).isEqualTo(idp.keyId());
    assertThat(jwt.getJWTClaimsSet().getIssuer()).isEqualTo(idp.issuer());
    assertThat(jwt.getJWTClaimsSet().getSubject()).isEqualTo("dave");
    assertThat(jwt.getJWTClaimsSet().getAudience()).containsExactly(AUDIENCE);
    assertThat(jwt.getJWTClaimsSet().getStringListClaim("groups")).containsExactly("ci");
    Duration lifetime =
        Duration.between(
            jwt.getJWTClaimsSet().getIssueTime().toInstant(),
            jwt.getJWTClaimsSet().getExpirationTime().toInstant());
    assertThat(lifetime).isEqualTo(Duration.ofMinutes(DemoIdentityProvider.TOKEN_MINUTES));
    assertThatThrownBy(() -> idp.accessToken("mallory", AUDIENCE))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void theEngineAcceptsItsTokensAndRefusesTheForgedOne() throws Exception {
    Policy policy = Policy.parse(Demo.policyText(recording, idp.issuer()));
    assertThat(policy.identity().oidc())
        .singleElement()
        .satisfies(issuer -> assertThat(issuer.audience()).isEqualTo(AUDIENCE));
    try (PamEngine engine = PamEngine.builder().policy(policy).build()) {
      Optional<Principal> carol =
          engine.identityResolver().resolve(bearer(idp.accessToken("carol", AUDIENCE)));
      assertThat(carol)
          .hasValueSatisfying(
              p -> {
                assertThat(p.subject()).isEqualTo("carol");
                assertThat(p.groups()).containsExactly("ml-engineers");
                assertThat(p.via()).isEqualTo(Principal.VIA_OIDC);
                assertThat(p.issuer()).isEqualTo(idp.issuer());
              });

      String forged = idp.forgedToken("carol", AUDIENCE);
      assertThat(SignedJWT.parse(forged).getHeader().getKeyID()).isEqualTo(idp.keyId());
      assertThat(SignedJWT.parse(forged).getJWTClaimsSet().getSubject()).isEqualTo("carol");
      assertThatThrownBy(() -> engine.identityResolver().resolve(bearer(forged)))
          .isInstanceOf(AuthenticationException.class)
          .hasMessage("signature invalid");
      assertThatThrownBy(
              () ->
                  engine
                      .identityResolver()
                      .resolve(bearer(idp.accessToken("carol", "someone-else"))))
          .isInstanceOf(AuthenticationException.class)
          .hasMessage("wrong audience");
    }
    assertThat(idp.served())
        .contains(DemoIdentityProvider.DISCOVERY_PATH, DemoIdentityProvider.JWKS_PATH);
  }

  @Test
  void demoPolicyResourceKeepsItsPlaceholderAndTheDemoFillsItIn() {
    assertThat(Demo.policyText()).contains("issuer: \"" + Demo.ISSUER_PLACEHOLDER + "\"");
    String filled = Demo.policyText(recording, "http://127.0.0.1:4242");
    assertThat(filled)
        .doesNotContain(Demo.ISSUER_PLACEHOLDER)
        .contains("issuer: \"http://127.0.0.1:4242\"")
        .contains("recording:");
  }

  @Test
  void coloursOnlyOnATerminalThatWantsThem() {
    assertThat(Demo.colourSupported(true, null, "xterm-256color", "Linux", null)).isTrue();
    assertThat(Demo.colourSupported(false, null, "xterm-256color", "Linux", null)).isFalse();
    assertThat(Demo.colourSupported(true, "1", "xterm-256color", "Linux", null)).isFalse();
    assertThat(Demo.colourSupported(true, null, "dumb", "Linux", null)).isFalse();
    assertThat(Demo.colourSupported(true, null, null, "Windows 11", null)).isFalse();
    assertThat(Demo.colourSupported(true, null, null, "Windows 11", "a-session")).isTrue();
    assertThat(Demo.abbreviate("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJSUzI1NiJ9", 12))
        .isEqualTo("eyJ0eXAiOiJh\u2026");
  }

  private static InferenceRequest bearer(String token) {
    return new InferenceRequest(
        "POST",
        "/v1/chat/completions",
        null,
        Map.of("Authorization", List.of("Bearer " + token)),
        null,
        null);
  }

  private static JsonNode get(String url) throws Exception {
    HttpResponse<String> response =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("Content-Type")).hasValue("application/json");
    return JSON.readTree(response.body());
  }
}
