package dev.inferpam.testkit;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.Recorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.identity.ApiKeyResolver;
import dev.inferpam.core.internal.identity.OidcResolver;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Nested;

/** The built-in identity resolvers against the contract: API keys, OIDC tokens, and the engine's chain of both. */
class BuiltInIdentityResolverContractTest {
  static final String KEY = "svc-key-4f1c9a7e2b";
  static final String AUDIENCE = "inference-gateway";

  static String sha256(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
  }

  static String apiKeyPolicy() throws Exception {
    return """
        version: 1
        identity:
          api-keys:
            - {name: nightly-eval, sha256: %s, groups: [ci]}
        """
        .formatted(sha256(KEY));
  }

  @Nested
  class ApiKeys extends IdentityResolverContract {
    @Override
    protected IdentityResolver createResolver() throws Exception {
      return new ApiKeyResolver(
          Policy.parse(apiKeyPolicy()).identity().apiKeys(), Clock.systemUTC());
    }

    @Override
    protected Map<String, String> validCredential() {
      return Map.of("Authorization", "Bearer " + KEY);
    }

    @Override
    protected String expectedSubject() {
      return "nightly-eval";
    }

    @Override
    protected Map<String, String> invalidCredential() {
      return Map.of("X-Api-Key", "svc-key-not-known-0000");
    }
  }

  @Nested
  class ApiKeysInXApiKey extends ApiKeys {
    @Override
    protected Map<String, String> validCredential() {
      return Map.of("X-Api-Key", KEY);
    }
  }

  static RSAKey signingKey;

  @BeforeAll
  static void keys() throws Exception {
    signingKey = new RSAKeyGenerator(2048).keyID("kit-1").generate();
  }

  /** An identity provider on 127.0.0.1 that serves one key set. */
  abstract static class WithIdp extends IdentityResolverContract {
    MockWebServer idp;
    String issuer;

    void startIdp() throws Exception {
      if (idp != null) return;
      idp = new MockWebServer();
      String keys = new JWKSet(signingKey.toPublicJWK()).toString();
      idp.setDispatcher(
          new Dispatcher() {
            @Override
            public MockResponse dispatch(RecordedRequest request) {
              return new MockResponse.Builder()
                  .code(200)
                  .setHeader("Content-Type", "application/json")
                  .body(keys)
                  .build();
            }
          });
      idp.start(InetAddress.getLoopbackAddress(), 0);
      issuer = "http://127.0.0.1:" + idp.getPort() + "/realms/ml";
    }

    @AfterEach
    void stopIdp() throws Exception {
      if (idp != null) idp.close();
    }

    Policy.OidcIssuer issuerConfig() throws Exception {
      startIdp();
      return new Policy.OidcIssuer(
          issuer,
          AUDIENCE,
          URI.create("http://127.0.0.1:" + idp.getPort() + "/certs"),
          null,
          null,
          null,
          null,
          null);
    }

    String token(String subject, Instant expires) throws Exception {
      startIdp();
      JWTClaimsSet claims =
          new JWTClaimsSet.Builder()
              .issuer(issuer)
              .audience(AUDIENCE)
              .subject(subject)
              .issueTime(Date.from(Instant.now().minusSeconds(5)))
              .expirationTime(Date.from(expires))
              .claim("groups", List.of("ml"))
              .build();
      SignedJWT jwt =
          new SignedJWT(
              new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(signingKey.getKeyID()).build(),
              claims);
      jwt.sign(new RSASSASigner(signingKey));
      return jwt.serialize();
    }

    @Override
    protected Map<String, String> validCredential() throws Exception {
      return Map.of(
          "Authorization", "Bearer " + token("alice", Instant.now().plus(Duration.ofHours(1))));
    }

    @Override
    protected String expectedSubject() {
      return "alice";
    }

    @Override
    protected Map<String, String> invalidCredential() throws Exception {
      return Map.of(
          "Authorization", "Bearer " + token("alice", Instant.now().minus(Duration.ofHours(1))));
    }
  }

  @Nested
  class OidcTokens extends WithIdp {
    // One token for the whole test: a resolver caches tokens, so each test gets the same one.
    private Map<String, String> valid;

    @Override
    protected IdentityResolver createResolver() throws Exception {
      return new OidcResolver(List.of(issuerConfig()), Clock.systemUTC());
    }

    @Override
    protected Map<String, String> validCredential() throws Exception {
      if (valid == null) valid = super.validCredential();
      return valid;
    }
  }

  @Nested
  class TheEnginesChain extends WithIdp {
    private Map<String, String> valid;

    @Override
    protected IdentityResolver createResolver() throws Exception {
      Policy.OidcIssuer oidc = issuerConfig();
      String yaml =
          apiKeyPolicy()
              + """
            oidc:
              - issuer: %s
                audience: %s
                jwks-uri: %s
          """
                  .formatted(oidc.issuer(), oidc.audience(), oidc.jwksUri());
      PamEngine engine =
          PamEngine.builder().policy(Policy.parse(yaml)).recorder(Recorder.NOOP).build();
      return engine.identityResolver();
    }

    @Override
    protected Map<String, String> validCredential() throws Exception {
      if (valid == null) valid = super.validCredential();
      return valid;
    }
  }
}
