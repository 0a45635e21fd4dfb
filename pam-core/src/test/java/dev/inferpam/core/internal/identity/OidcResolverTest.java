package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.nimbusds.jose.EncryptionMethod;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWEAlgorithm;
import com.nimbusds.jose.JWEHeader;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSAEncrypter;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.OctetKeyPair;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jose.util.Base64;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.EncryptedJWT;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.PlainJWT;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Background;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link OidcResolver} against an identity provider played by MockWebServer on 127.0.0.1, with
 * keys generated and tokens minted here, on a clock the test moves.
 */
class OidcResolverTest {
  static final Instant T0 = Instant.parse("2026-06-01T12:00:00Z");
  static final String AUD = "inference-gateway";
  static final String KEYS = "/realms/ml/protocol/openid-connect/certs";
  static final String OTHER_KEYS = "/realms/other/certs";

  /** Short network times so that outage tests are quick; caching times as in production. */
  static final OidcResolver.Settings FAST =
      new OidcResolver.Settings(
          Duration.ofMillis(500),
          Duration.ofMillis(300),
          Duration.ofSeconds(1),
          512 * 1024,
          Duration.ofMinutes(5),
          Duration.ofSeconds(30),
          Duration.ofSeconds(30),
          Duration.ofHours(1));

  static RSAKey rsa1;
  static RSAKey rsa2;
  static RSAKey otherIssuerKey;
  static RSAKey attackerKey;
  static ECKey ec1;

  final MutableClock clock = new MutableClock(T0);
  final FakeIdp idp = new FakeIdp();
  final FakeIdp attackerSite = new FakeIdp();
  MockWebServer idpServer;
  MockWebServer attackerServer;
  String issuer;
  String otherIssuer;

  @BeforeAll
  static void keys() throws Exception {
    rsa1 = new RSAKeyGenerator(2048).keyID("rsa-1").generate();
    rsa2 = new RSAKeyGenerator(2048).keyID("rsa-2").generate();
    otherIssuerKey = new RSAKeyGenerator(2048).keyID("other-1").generate();
    attackerKey = new RSAKeyGenerator(2048).keyID("attacker-1").generate();
    ec1 = new ECKeyGenerator(Curve.P_256).keyID("ec-1").generate();
  }

  @BeforeEach
  void start() throws Exception {
    idpServer = start(idp);
    attackerServer = start(attackerSite);
    issuer = "http://127.0.0.1:" + idpServer.getPort() + "/realms/ml";
    otherIssuer = "http://127.0.0.1:" + idpServer.getPort() + "/realms/other";
    idp.serve(KEYS, jwks(rsa1, ec1));
    idp.serve(OTHER_KEYS, jwks(otherIssuerKey));
    attackerSite.serve("/jwks", jwks(attackerKey));
  }

  @AfterEach
  void stop() {
    idpServer.close();
    attackerServer.close();
  }

  private static MockWebServer start(Dispatcher dispatcher) throws Exception {
    MockWebServer server = new MockWebServer();
    server.setDispatcher(dispatcher);
    server.start(InetAddress.getByName("127.0.0.1"), 0);
    return server;
  }

  // --- the identity provider, keys and tokens ----------------------------------------------------

  /** Serves documents by path and counts requests; can fail, stall or trickle. */
  static final class FakeIdp extends Dispatcher {
    enum Mode {
      UP,
      ERROR,
      STALL,
      TRICKLE
    }

    final Map<String, String> documents = new ConcurrentHashMap<>();
    final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();
    final AtomicInteger all = new AtomicInteger();
    volatile Mode mode = Mode.UP;

    void serve(String path, String body) {
      documents.put(path, body);
    }

    int hits(String path) {
      AtomicInteger n = hits.get(path);
      return n == null ? 0 : n.get();
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
      all.incrementAndGet();
      String path = request.getUrl().encodedPath();
      hits.computeIfAbsent(path, k -> new AtomicInteger()).incrementAndGet();
      return switch (mode) {
        case ERROR -> new MockResponse.Builder().code(503).build();
        case STALL ->
            new MockResponse.Builder().onResponseStart(SocketEffect.Stall.INSTANCE).build();
        case TRICKLE ->
            new MockResponse.Builder()
                .code(200)
                .body("{\"keys\":[]}" + " ".repeat(4096))
                .throttleBody(1, 100, TimeUnit.MILLISECONDS)
                .build();
        case UP -> {
          String body = documents.get(path);
          yield body == null
              ? new MockResponse.Builder().code(404).build()
              : new MockResponse.Builder()
                  .code(200)
                  .setHeader("Content-Type", "application/json")
                  .body(body)
                  .build();
        }
      };
    }
  }

  static String jwks(JWK... keys) {
    List<JWK> pub = new ArrayList<>();
    for (JWK k : keys) pub.add(k.toPublicJWK());
    return new JWKSet(pub).toString();
  }

  String jwksUrl(String path) {
    return "http://127.0.0.1:" + idpServer.getPort() + path;
  }

  /** Claims of a good token from {@link #issuer}, valid for an hour from now. */
  JWTClaimsSet.Builder claims() {
    Instant now = clock.instant();
    return new JWTClaimsSet.Builder()
        .issuer(issuer)
        .audience(List.of(AUD, "account"))
        .subject("alice")
        .jwtID("jti-1")
        .issueTime(Date.from(now))
        .expirationTime(Date.from(now.plus(Duration.ofHours(1))))
        .claim("groups", List.of("ml-engineers", "readers"))
        .claim("email", "alice@example.com");
  }

  static JWSSigner signer(JWK key) throws Exception {
    if (key instanceof RSAKey r) return new RSASSASigner(r);
    if (key instanceof ECKey e) return new ECDSASigner(e);
    throw new IllegalArgumentException(key.getClass().getName());
  }

  static String sign(JWSHeader header, JWTClaimsSet claims, JWK key) throws Exception {
    SignedJWT jwt = new SignedJWT(header, claims);
    jwt.sign(signer(key));
    return jwt.serialize();
  }

  static JWSHeader.Builder header(JWSAlgorithm alg, JWK key) {
    return new JWSHeader.Builder(alg).keyID(key.getKeyID());
  }

  String token(JWK key, UnaryOperator<JWTClaimsSet.Builder> claims) throws Exception {
    JWSAlgorithm alg = key instanceof ECKey ? JWSAlgorithm.ES256 : JWSAlgorithm.RS256;
    return sign(header(alg, key).build(), claims.apply(claims()).build(), key);
  }

  String token(JWK key) throws Exception {
    return token(key, c -> c);
  }

  Policy.OidcIssuer config() {
    return new Policy.OidcIssuer(
        issuer, AUD, URI.create(jwksUrl(KEYS)), null, null, null, null, null);
  }

  static Policy.OidcIssuer with(
      Policy.OidcIssuer c, List<String> algorithms, String groups, String subject, String type) {
    return new Policy.OidcIssuer(
        c.issuer(),
        c.audience(),
        c.jwksUri(),
        algorithms == null ? c.algorithms() : algorithms,
        groups == null ? c.groupsClaim() : groups,
        subject == null ? c.subjectClaim() : subject,
        type == null ? c.requireType() : type,
        c.clockSkew());
  }

  OidcResolver resolver(Policy.OidcIssuer... issuers) {
    return new OidcResolver(List.of(issuers), clock, 100, FAST);
  }

  OidcResolver resolver() {
    return resolver(config());
  }

  static InferenceRequest withAuthorization(String... values) {
    return new InferenceRequest(
        "POST",
        "/v1/chat/completions",
        null,
        Map.of("Authorization", Arrays.asList(values)),
        null,
        "127.0.0.1");
  }

  static Principal accepted(OidcResolver r, String token) throws AuthenticationException {
    return r.resolve(withAuthorization("Bearer " + token))
        .orElseThrow(() -> new AssertionError("not claimed"));
  }

  /** The description of the refusal, which must never carry the token. */
  static String refusal(OidcResolver r, String token) {
    try {
      r.resolve(withAuthorization("Bearer " + token));
    } catch (AuthenticationException e) {
      assertThat(e.getMessage())
          .doesNotContain(token)
          .doesNotContain(token.substring(0, Math.min(20, token.length())));
      return e.getMessage();
    }
    return fail("token was accepted");
  }

  // --- acceptance
  // ---------------------------------------------------------------------------------

  @Test
  void acceptsAValidTokenAndMakesAPrincipal() throws Exception {
    String token =
        token(
            rsa1,
            c ->
                c.claim("name", "Alice")
                    .claim("realm_access", Map.of("roles", List.of("x")))
                    .claim("nested", Map.of("n", 5, "list", List.of(1, "two", true)))
                    .claim("nothing", null));

    Principal p = accepted(resolver(), token);

    assertThat(p.subject()).isEqualTo("alice");
    assertThat(p.groups()).containsExactlyInAnyOrder("ml-engineers", "readers");
    assertThat(p.via()).isEqualTo(Principal.VIA_OIDC);
    assertThat(p.issuer()).isEqualTo(issuer);
    assertThat(p.attributes())
        .containsOnlyKeys("groups", "email", "name", "realm_access", "nested")
        .containsEntry("email", "alice@example.com")
        .containsEntry("realm_access", Map.of("roles", List.of("x")))
        .containsEntry("nested", Map.of("n", 5L, "list", List.of(1L, "two", true)));
    assertThat(p.toString()).doesNotContain(token);
  }

  @Test
  void acceptsEs256Ps256AndEdDsaWhenTheIssuerAllowsThem() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("Ed25519");
    KeyPair ed = g.generateKeyPair();
    byte[] spki = ed.getPublic().getEncoded();
    OctetKeyPair edJwk =
        new OctetKeyPair.Builder(
                Curve.Ed25519,
                Base64URL.encode(Arrays.copyOfRange(spki, spki.length - 32, spki.length)))
            .keyID("ed-1")
            .build();
    idp.serve(KEYS, jwks(rsa1, ec1, edJwk));
    OidcResolver r = resolver(with(config(), List.of("ES256", "PS256", "EdDSA"), null, null, null));

    assertThat(accepted(r, token(ec1)).subject()).isEqualTo("alice");
    assertThat(
            accepted(r, sign(header(JWSAlgorithm.PS256, rsa1).build(), claims().build(), rsa1))
                .subject())
        .isEqualTo("alice");
    String signingInput =
        Base64URL.encode("{\"alg\":\"EdDSA\",\"kid\":\"ed-1\"}")
            + "."
            + Base64URL.encode(claims().subject("ed-user").build().toString());
    Signature s = Signature.getInstance("Ed25519");
    s.initSign(ed.getPrivate());
    s.update(signingInput.getBytes(StandardCharsets.US_ASCII));
    String edToken = signingInput + "." + Base64URL.encode(s.sign());
    assertThat(accepted(r, edToken).subject()).isEqualTo("ed-user");
    // A flipped bit in the EdDSA signature is refused.
    byte[] sig = new Base64URL(edToken.substring(edToken.lastIndexOf('.') + 1)).decode();
    sig[0] ^= 1;
    assertThat(refusal(r, signingInput + "." + Base64URL.encode(sig)))
        .isEqualTo("signature invalid");
    // RS256 is not among this issuer's algorithms.
    assertThat(refusal(r, token(rsa1))).isEqualTo("algorithm not allowed");
  }

  @Test
  void leavesRequestsWithoutAJwtBearerToOtherResolvers() throws Exception {
    OidcResolver r = resolver();
    InferenceRequest none =
        new InferenceRequest("POST", "/v1/chat/completions", null, Map.of(), null, null);

    assertThat(r.resolve(none)).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer ci-key-0001"))).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer "))).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer"))).isEmpty();
    assertThat(r.resolve(withAuthorization("Basic " + token(rsa1)))).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer not a jwt"))).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer a.b.c.d"))).isEmpty();
    assertThat(r.resolve(withAuthorization("Bearer .b.c"))).isEmpty();
    assertThat(idp.all.get()).isZero();
  }

  @Test
  void constructionFetchesNothing() {
    resolver();
    assertThat(idp.all.get()).isZero();
  }

  // --- refusals ----------------------------------------------------------------------------------

  @Test
  void refusesUnsignedTokens() {
    String token = new PlainJWT(claims().build()).serialize();
    assertThat(token).endsWith(".");
    assertThat(refusal(resolver(), token)).isEqualTo("algorithm not allowed");
    assertThat(idp.all.get()).isZero();
  }

  @Test
  void refusesHs256SignedWithThePublicKeyAsSecret() throws Exception {
    // Key confusion: a verifier that let the token pick HMAC would use the RSA public key as
    // secret.
    byte[] publicKeyBytes = rsa1.toRSAPublicKey().getEncoded();
    SignedJWT jwt = new SignedJWT(header(JWSAlgorithm.HS256, rsa1).build(), claims().build());
    jwt.sign(new MACSigner(publicKeyBytes));
    String token = jwt.serialize();

    assertThat(refusal(resolver(), token)).isEqualTo("algorithm not allowed");
    // Also when the same bytes are published as a symmetric key in the JWK set.
    idp.serve(
        KEYS,
        "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"rsa-1\",\"k\":\""
            + Base64URL.encode(publicKeyBytes)
            + "\"}]}");
    assertThat(refusal(resolver(), token)).isEqualTo("algorithm not allowed");
    assertThat(idp.all.get()).as("refused before any key was fetched").isZero();
  }

  @Test
  void refusesAnAlgorithmTheIssuerIsNotPinnedTo() throws Exception {
    OidcResolver r = resolver(with(config(), List.of("RS256"), null, null, null));
    assertThat(refusal(r, token(ec1))).isEqualTo("algorithm not allowed");
    assertThat(refusal(r, sign(header(JWSAlgorithm.RS512, rsa1).build(), claims().build(), rsa1)))
        .isEqualTo("algorithm not allowed");
  }

  @Test
  void refusesASignatureByAKeyNotInTheJwks() throws Exception {
    // The attacker claims the legitimate kid.
    String token = sign(header(JWSAlgorithm.RS256, rsa1).build(), claims().build(), attackerKey);
    assertThat(refusal(resolver(), token)).isEqualTo("signature invalid");
  }

  @Test
  void refusesATamperedToken() throws Exception {
    String token = token(rsa1);
    String[] parts = token.split("\\.");
    String payload = Base64URL.encode(claims().subject("admin").build().toString()).toString();
    assertThat(refusal(resolver(), parts[0] + "." + payload + "." + parts[2]))
        .isEqualTo("signature invalid");
  }

  @Test
  void refusesAnUnknownKidAfterAtMostOneRefetch() throws Exception {
    OidcResolver r = resolver();
    accepted(r, token(rsa1));
    assertThat(idp.hits(KEYS)).isEqualTo(1);

    String unknown =
        sign(
            new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("nobody").build(),
            claims().build(),
            attackerKey);
    assertThat(refusal(r, unknown)).isEqualTo("unknown signing key");
    assertThat(idp.hits(KEYS)).as("one refetch for the unknown kid").isEqualTo(2);

    String another =
        sign(
            new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("nobody-else").build(),
            claims().build(),
            attackerKey);
    assertThat(refusal(r, another)).isEqualTo("unknown signing key");
    assertThat(refusal(r, unknown)).isEqualTo("unknown signing key");
    assertThat(idp.hits(KEYS)).as("rate-limited: no further fetch").isEqualTo(2);
    // Known keys keep working meanwhile.
    accepted(r, token(rsa1));
  }

  @Test
  void unknownKidsMakeAtMostOneKeyFetchPer30SecondsInEveryWindow() throws Exception {
    OidcResolver r = resolver();
    accepted(r, token(rsa1));
    assertThat(idp.hits(KEYS)).isEqualTo(1);
    int kid = 0;
    for (int window = 1; window <= 4; window++) {
      // Tokens with made-up kids, one a second through the 30 s window.
      for (int second = 0; second < 30; second++) {
        String unknown =
            sign(
                new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("made-up-" + kid++).build(),
                claims().build(),
                attackerKey);
        assertThat(refusal(r, unknown)).isEqualTo("unknown signing key");
        clock.advance(Duration.ofSeconds(1));
      }
      assertThat(idp.hits(KEYS)).as("fetches after window %d", window).isEqualTo(1 + window);
    }
    accepted(r, token(rsa1));
  }

  @ParameterizedTest
  @ValueSource(strings = {"jku", "x5u", "jwk", "x5c"})
  void neverFindsKeysThroughTokenHeaders(String headerName) throws Exception {
    URI attackerJwks = URI.create("http://127.0.0.1:" + attackerServer.getPort() + "/jwks");
    URI attackerCert = URI.create("http://127.0.0.1:" + attackerServer.getPort() + "/cert");
    JWSHeader.Builder h = header(JWSAlgorithm.RS256, attackerKey);
    switch (headerName) {
      case "jku" -> h.jwkURL(attackerJwks);
      case "x5u" -> h.x509CertURL(attackerCert);
      case "jwk" -> h.jwk(attackerKey.toPublicJWK());
      default ->
          h.x509CertChain(List.of(Base64.encode(selfSignedCertificate(attackerKey.toKeyPair()))));
    }
    String token = sign(h.build(), claims().build(), attackerKey);
    OidcResolver r = resolver();

    assertThat(refusal(r, token)).isEqualTo("unknown signing key");
    assertThat(attackerSite.all.get()).as("requests to the attacker").isZero();
    // Nor with the legitimate kid: the signature must verify with the issuer's key.
    JWSHeader.Builder sameKid = new JWSHeader.Builder(h.build()).keyID(rsa1.getKeyID());
    assertThat(refusal(r, sign(sameKid.build(), claims().build(), attackerKey)))
        .isEqualTo("signature invalid");
    assertThat(attackerSite.all.get()).isZero();
  }

  @Test
  void refusesAnEmbeddedJwkWithoutKid() throws Exception {
    JWSHeader h = new JWSHeader.Builder(JWSAlgorithm.RS256).jwk(attackerKey.toPublicJWK()).build();
    assertThat(refusal(resolver(), sign(h, claims().build(), attackerKey)))
        .isEqualTo("signature invalid");
  }

  @Test
  void refusesExpiredTokensBeyondTheSkew() throws Exception {
    OidcResolver r = resolver();
    Instant now = clock.instant();
    assertThat(refusal(r, token(rsa1, c -> c.expirationTime(Date.from(now.minusSeconds(31))))))
        .isEqualTo("token expired");
    // Within the 30s skew it still counts.
    accepted(r, token(rsa1, c -> c.expirationTime(Date.from(now.minusSeconds(20)))));
  }

  @Test
  void refusesTokensNotYetValidBeyondTheSkew() throws Exception {
    OidcResolver r = resolver();
    Instant now = clock.instant();
    assertThat(refusal(r, token(rsa1, c -> c.notBeforeTime(Date.from(now.plusSeconds(120))))))
        .isEqualTo("token not yet valid");
    accepted(r, token(rsa1, c -> c.notBeforeTime(Date.from(now.plusSeconds(20)))));
    assertThat(refusal(r, token(rsa1, c -> c.issueTime(Date.from(now.plusSeconds(120))))))
        .isEqualTo("token not yet valid");
    accepted(r, token(rsa1, c -> c.issueTime(Date.from(now.plusSeconds(20)))));
  }

  @Test
  void refusesWrongOrMissingIssuer() throws Exception {
    OidcResolver r = resolver();
    assertThat(refusal(r, token(rsa1, c -> c.issuer("https://evil.example.com"))))
        .isEqualTo("wrong issuer");
    assertThat(refusal(r, token(rsa1, c -> c.issuer(issuer + "/")))).isEqualTo("wrong issuer");
    assertThat(refusal(r, token(rsa1, c -> c.issuer(null)))).isEqualTo("wrong issuer");
    assertThat(idp.all.get()).as("no keys fetched for an issuer we do not trust").isZero();
  }

  @Test
  void refusesMissingOrWrongAudience() throws Exception {
    OidcResolver r = resolver();
    assertThat(refusal(r, token(rsa1, c -> c.audience((String) null)))).isEqualTo("wrong audience");
    assertThat(refusal(r, token(rsa1, c -> c.audience("other-api")))).isEqualTo("wrong audience");
    assertThat(refusal(r, token(rsa1, c -> c.audience(List.of("a", "b")))))
        .isEqualTo("wrong audience");
    accepted(r, token(rsa1, c -> c.audience(AUD)));
  }

  @Test
  void refusesMissingExpAndMissingSubject() throws Exception {
    OidcResolver r = resolver();
    assertThat(refusal(r, token(rsa1, c -> c.expirationTime(null)))).isEqualTo("missing exp");
    assertThat(refusal(r, token(rsa1, c -> c.subject(null)))).isEqualTo("missing subject");
    assertThat(refusal(r, token(rsa1, c -> c.subject(" ")))).isEqualTo("missing subject");
  }

  @Test
  void requireTypeAcceptsAtJwtInBothSpellingsOnly() throws Exception {
    OidcResolver r = resolver(with(config(), null, null, null, "at+jwt"));
    JWTClaimsSet c = claims().build();

    accepted(
        r,
        sign(header(JWSAlgorithm.RS256, rsa1).type(new JOSEObjectType("at+jwt")).build(), c, rsa1));
    accepted(
        r,
        sign(
            header(JWSAlgorithm.RS256, rsa1).type(new JOSEObjectType("application/at+jwt")).build(),
            c,
            rsa1));
    accepted(
        r,
        sign(header(JWSAlgorithm.RS256, rsa1).type(new JOSEObjectType("AT+JWT")).build(), c, rsa1));
    assertThat(
            refusal(
                r,
                sign(header(JWSAlgorithm.RS256, rsa1).type(JOSEObjectType.JWT).build(), c, rsa1)))
        .isEqualTo("wrong token type");
    assertThat(refusal(r, sign(header(JWSAlgorithm.RS256, rsa1).build(), c, rsa1)))
        .isEqualTo("wrong token type");
    assertThat(
            refusal(
                r,
                sign(
                    header(JWSAlgorithm.RS256, rsa1).type(new JOSEObjectType("id+jwt")).build(),
                    c,
                    rsa1)))
        .isEqualTo("wrong token type");
    // Without require-type any typ is taken.
    accepted(
        resolver(),
        sign(header(JWSAlgorithm.RS256, rsa1).type(new JOSEObjectType("at+jwt")).build(), c, rsa1));
  }

  @Test
  void refusesEncryptedAndNestedTokens() throws Exception {
    EncryptedJWT jwe =
        new EncryptedJWT(
            new JWEHeader(JWEAlgorithm.RSA_OAEP_256, EncryptionMethod.A256GCM), claims().build());
    jwe.encrypt(new RSAEncrypter(rsa1.toRSAPublicKey()));
    OidcResolver r = resolver();
    assertThat(refusal(r, jwe.serialize())).isEqualTo("encrypted tokens are not accepted");

    String inner = token(rsa1);
    JWSObject outer =
        new JWSObject(
            header(JWSAlgorithm.RS256, rsa1).contentType("JWT").build(), new Payload(inner));
    outer.sign(new RSASSASigner(rsa1));
    assertThat(refusal(r, outer.serialize())).isEqualTo("nested tokens are not accepted");
  }

  @Test
  void refusesCriticalHeaders() throws Exception {
    JWSHeader h =
        header(JWSAlgorithm.RS256, rsa1)
            .criticalParams(Set.of("policy"))
            .customParam("policy", "x")
            .build();
    assertThat(refusal(resolver(), sign(h, claims().build(), rsa1)))
        .isEqualTo("unsupported critical header");
  }

  @Test
  void refusesGarbageAndOversizedTokens() throws Exception {
    OidcResolver r = resolver();
    assertThat(refusal(r, "garbage.garbage.garbage")).isEqualTo("malformed token");
    assertThat(refusal(r, Base64URL.encode("{\"alg\":\"RS256\"}") + ".bm90IGpzb24.c2ln"))
        .isEqualTo("malformed token");
    assertThat(refusal(r, "a.b.c.d.e")).isEqualTo("malformed token");

    String huge = token(rsa1, c -> c.claim("padding", "x".repeat(100_000)));
    assertThat(huge.length()).isGreaterThan(100_000);
    assertThat(refusal(r, huge)).isEqualTo("token too large");
    assertThat(idp.all.get()).isZero();
  }

  @Test
  void refusesMoreThanOneAuthorizationHeaderWhenOneIsAToken() throws Exception {
    OidcResolver r = resolver();
    String token = token(rsa1);
    assertThatThrownBy(() -> r.resolve(withAuthorization("Bearer " + token, "Bearer " + token)))
        .isInstanceOf(AuthenticationException.class)
        .hasMessage("more than one Authorization header");
    assertThat(r.resolve(withAuthorization("Basic abc", "Bearer key"))).isEmpty();
  }

  @Test
  void refusesATokenForOneIssuerSignedWithAnothersKey() throws Exception {
    Policy.OidcIssuer other =
        new Policy.OidcIssuer(
            otherIssuer, AUD, URI.create(jwksUrl(OTHER_KEYS)), null, null, null, null, null);
    OidcResolver r = resolver(config(), other);

    // Each issuer's own tokens are fine.
    assertThat(accepted(r, token(rsa1)).issuer()).isEqualTo(issuer);
    assertThat(accepted(r, token(otherIssuerKey, c -> c.issuer(otherIssuer))).issuer())
        .isEqualTo(otherIssuer);
    // "iss" names the first issuer, the key is the other's.
    assertThat(refusal(r, token(otherIssuerKey))).isEqualTo("unknown signing key");
    assertThat(
            refusal(
                r,
                sign(header(JWSAlgorithm.RS256, rsa1).build(), claims().build(), otherIssuerKey)))
        .isEqualTo("signature invalid");
  }

  // --- keys over time
  // -----------------------------------------------------------------------------

  @Test
  void acceptsARotatedInKeyAtOnceAndDropsARemovedKeyAfterTheCacheTime() throws Exception {
    OidcResolver r = resolver();
    String cachedOld = token(rsa1, c -> c.subject("cached"));
    accepted(r, cachedOld);

    idp.serve(KEYS, jwks(rsa1, rsa2));
    assertThat(accepted(r, token(rsa2)).subject()).as("new kid, no restart").isEqualTo("alice");

    idp.serve(KEYS, jwks(rsa2));
    accepted(r, token(rsa1)); // keys are cached for 5 minutes
    clock.advance(Duration.ofMinutes(5).plusSeconds(1));
    assertThat(refusal(r, token(rsa1))).isEqualTo("unknown signing key");
    assertThat(refusal(r, cachedOld))
        .as("a cached token of the removed key too")
        .isEqualTo("unknown signing key");
    accepted(r, token(rsa2));
  }

  @Test
  void refreshesKeysAheadOfExpiryInTheBackground() throws Exception {
    OidcResolver r = resolver();
    accepted(r, token(rsa1));
    idp.serve(KEYS, jwks(rsa1, rsa2));

    clock.advance(Duration.ofMinutes(4).plusSeconds(45)); // within 30s of the keys' expiry
    accepted(r, token(rsa1, c -> c.subject("bob"))); // answered from the cache, starts a refresh
    await().atMost(Duration.ofSeconds(10)).until(() -> idp.hits(KEYS) == 2);

    // Past the first keys' expiry: had the refresh not happened, this would fetch (and wait).
    clock.advance(Duration.ofSeconds(30));
    accepted(r, token(rsa2));
    assertThat(idp.hits(KEYS)).as("the new key came with the refresh").isEqualTo(2);
  }

  @Test
  void servesCachedKeysWhileTheJwksEndpointIsDownAndNeverHangs() throws Exception {
    OidcResolver r = resolver();
    accepted(r, token(rsa1));
    idp.mode = FakeIdp.Mode.STALL;
    clock.advance(Duration.ofMinutes(10)); // the key cache expired: the next token makes us fetch

    assertTimeoutPreemptively(
        Duration.ofSeconds(5),
        () -> {
          assertThat(accepted(r, token(rsa1, c -> c.subject("bob"))).subject()).isEqualTo("bob");
          String unknown =
              sign(
                  new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("rsa-new").build(),
                  claims().build(),
                  rsa2);
          assertThat(refusal(r, unknown)).isEqualTo("unknown signing key");
        });
    assertThat(idp.hits(KEYS)).isGreaterThan(1);

    idp.mode = FakeIdp.Mode.ERROR;
    clock.advance(Duration.ofMinutes(10));
    accepted(r, token(rsa1, c -> c.subject("carol")));
  }

  @Test
  void saysKeysAreUnavailableWhenNoneWereEverFetched() throws Exception {
    OidcResolver r = resolver();
    idp.mode = FakeIdp.Mode.STALL;
    String token = token(rsa1);
    assertTimeoutPreemptively(
        Duration.ofSeconds(5),
        () -> assertThat(refusal(r, token)).isEqualTo("issuer keys unavailable"));

    idp.mode = FakeIdp.Mode.ERROR;
    assertThat(refusal(r, token)).isEqualTo("issuer keys unavailable");
    assertThat(refusal(r, token))
        .as("rate-limited, still unavailable")
        .isEqualTo("issuer keys unavailable");

    idp.mode = FakeIdp.Mode.UP;
    clock.advance(Duration.ofSeconds(31));
    accepted(r, token);
  }

  @Test
  void tellsEachKeyFetchThatFailedAndNothingElse() throws Exception {
    java.util.List<String> told = new java.util.concurrent.CopyOnWriteArrayList<>();
    OidcResolver r =
        new OidcResolver(
            List.of(config()),
            clock,
            100,
            FAST,
            dev.inferpam.core.internal.Background.DEFAULT,
            told::add);
    idp.mode = FakeIdp.Mode.ERROR;
    String token = token(rsa1);
    for (int i = 0; i < 5; i++) assertThat(refusal(r, token)).isEqualTo("issuer keys unavailable");
    int failedFetches = idp.hits(KEYS);
    assertThat(failedFetches).as("rate-limited: not one fetch per refusal").isBetween(1, 2);
    assertThat(told).hasSize(failedFetches).containsOnly(issuer);

    // a key set that is fetched but cannot be read is a failure too
    idp.mode = FakeIdp.Mode.UP;
    idp.serve(KEYS, "{not json");
    clock.advance(Duration.ofSeconds(31));
    assertThat(refusal(r, token)).isEqualTo("issuer keys unavailable");
    assertThat(told).hasSize(idp.hits(KEYS)).hasSizeGreaterThan(failedFetches);

    idp.serve(KEYS, jwks(rsa1, ec1));
    clock.advance(Duration.ofSeconds(31));
    int before = told.size();
    accepted(r, token);
    assertThat(told).as("a fetch that worked tells nothing").hasSize(before);
  }

  @Test
  void tellsADiscoveryDocumentThatCannotBeUsed() throws Exception {
    java.util.List<String> told = new java.util.concurrent.CopyOnWriteArrayList<>();
    serveDiscovery("https://evil.example.com", jwksUrl(KEYS));
    OidcResolver r =
        new OidcResolver(
            List.of(discovered()),
            clock,
            100,
            FAST,
            dev.inferpam.core.internal.Background.DEFAULT,
            told::add);
    assertThat(refusal(r, token(rsa1))).isEqualTo("issuer keys unavailable");
    assertThat(told).containsExactly(issuer);
  }

  @Test
  void cutsOffAJwksThatTricklesPastTheDeadline() throws Exception {
    OidcResolver r = resolver();
    idp.mode = FakeIdp.Mode.TRICKLE; // one byte every 100ms: each read is in time, the whole is not
    String token = token(rsa1);
    // Without the 1s deadline the ~4 KiB body would take minutes.
    assertTimeoutPreemptively(
        Duration.ofSeconds(5),
        () -> assertThat(refusal(r, token)).isEqualTo("issuer keys unavailable"));
  }

  @Test
  void refusesAJwksLargerThanTheLimit() throws Exception {
    OidcResolver r =
        new OidcResolver(
            List.of(config()),
            clock,
            100,
            new OidcResolver.Settings(
                Duration.ofMillis(500),
                Duration.ofMillis(500),
                Duration.ofSeconds(2),
                1024,
                Duration.ofMinutes(5),
                Duration.ofSeconds(30),
                Duration.ofSeconds(30),
                Duration.ofHours(1)));
    assertThat(jwks(rsa1, ec1).length()).isGreaterThan(300);
    idp.serve(KEYS, jwks(rsa1, ec1).replace("]}", "]," + "\"pad\":\"" + "x".repeat(2048) + "\"}"));
    assertThat(refusal(r, token(rsa1))).isEqualTo("issuer keys unavailable");
  }

  // --- discovery
  // ----------------------------------------------------------------------------------

  Policy.OidcIssuer discovered() {
    return new Policy.OidcIssuer(issuer, AUD, null, null, null, null, null, null);
  }

  void serveDiscovery(String issuerInDocument, String jwksUri) {
    idp.serve(
        "/realms/ml/.well-known/openid-configuration",
        "{\"issuer\":\""
            + issuerInDocument
            + "\",\"jwks_uri\":\""
            + jwksUri
            + "\",\"token_endpoint\":\"x\"}");
  }

  @Test
  void discoversTheKeysLazily() throws Exception {
    serveDiscovery(issuer, jwksUrl(KEYS));
    OidcResolver r = resolver(discovered());
    assertThat(idp.all.get()).as("nothing fetched at construction").isZero();

    accepted(r, token(rsa1));
    accepted(r, token(ec1));
    assertThat(idp.hits("/realms/ml/.well-known/openid-configuration")).isEqualTo(1);
    assertThat(idp.hits(KEYS)).isEqualTo(1);
  }

  @Test
  void refusesADiscoveryDocumentForAnotherIssuer() throws Exception {
    serveDiscovery(
        "https://evil.example.com", "http://127.0.0.1:" + attackerServer.getPort() + "/jwks");
    OidcResolver r = resolver(discovered());
    assertThat(refusal(r, token(attackerKey))).isEqualTo("issuer keys unavailable");
    assertThat(refusal(r, token(rsa1))).isEqualTo("issuer keys unavailable");
    assertThat(attackerSite.all.get()).isZero();
  }

  @Test
  void refusesADiscoveredJwksUriThatIsNotHttps() throws Exception {
    serveDiscovery(issuer, "http://idp.example.com/certs");
    assertThat(refusal(resolver(discovered()), token(rsa1))).isEqualTo("issuer keys unavailable");
  }

  @Test
  void retriesAFailedDiscoveryOncePerInterval() throws Exception {
    OidcResolver r = resolver(discovered());
    String wellKnown = "/realms/ml/.well-known/openid-configuration";
    idp.mode = FakeIdp.Mode.ERROR;
    assertThat(refusal(r, token(rsa1))).isEqualTo("issuer keys unavailable");
    idp.mode = FakeIdp.Mode.UP;
    serveDiscovery(issuer, jwksUrl(KEYS));
    assertThat(refusal(r, token(rsa1))).isEqualTo("issuer keys unavailable");
    assertThat(idp.hits(wellKnown)).as("not asked again within the interval").isEqualTo(1);

    clock.advance(Duration.ofSeconds(30));
    accepted(r, token(rsa1));
    assertThat(idp.hits(wellKnown)).isEqualTo(2);
  }

  // --- threads and closing -----------------------------------------------------------------------

  @Test
  void closeEndsTheThreadsItMadeAndRefusesLaterTokens() throws Exception {
    List<Thread> made = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.concurrent.ThreadFactory threads =
        task -> {
          Thread t = new Thread(task, "test-oidc-" + made.size());
          t.setDaemon(true);
          made.add(t);
          return t;
        };
    OidcResolver r =
        new OidcResolver(List.of(config()), clock, 100, FAST, new Background(null, null, threads));
    accepted(r, token(rsa1)); // a fetch
    idp.serve(KEYS, jwks(rsa1, rsa2));
    clock.advance(Duration.ofMinutes(4).plusSeconds(45));
    accepted(r, token(rsa1, c -> c.subject("bob"))); // a refresh ahead, in the background
    await().atMost(Duration.ofSeconds(10)).until(() -> idp.hits(KEYS) == 2);
    assertThat(made).hasSizeGreaterThanOrEqualTo(2).anyMatch(Thread::isAlive);

    r.close();

    await().atMost(Duration.ofSeconds(10)).until(() -> made.stream().noneMatch(Thread::isAlive));
    String cached = token(rsa1);
    assertThatThrownBy(() -> r.resolve(withAuthorization("Bearer " + cached)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("OIDC resolver closed");
    r.close(); // idempotent
  }

  @Test
  void fetchesOnTheGivenExecutorAndLeavesItRunningWhenClosed() throws Exception {
    java.util.concurrent.ExecutorService pool =
        java.util.concurrent.Executors.newCachedThreadPool();
    try {
      AtomicInteger tasks = new AtomicInteger();
      java.util.concurrent.Executor counting =
          task -> {
            tasks.incrementAndGet();
            pool.execute(task);
          };
      OidcResolver r =
          new OidcResolver(
              List.of(config()), clock, 100, FAST, new Background(counting, null, null));

      accepted(r, token(rsa1));
      assertThat(tasks.get()).isEqualTo(1);
      assertThat(idp.hits(KEYS)).isEqualTo(1);
      r.close();

      assertThat(pool.isShutdown()).isFalse();
      assertThatThrownBy(() -> r.resolve(withAuthorization("Bearer " + token(rsa1))))
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("OIDC resolver closed");
    } finally {
      pool.shutdownNow();
    }
  }

  // --- token cache
  // --------------------------------------------------------------------------------

  @Test
  void verifiesACachedTokenOnlyOnce() throws Exception {
    OidcResolver r = resolver();
    String token = token(rsa1);
    Principal first = accepted(r, token);
    Principal second = accepted(r, token);

    assertThat(second).isSameAs(first);
    assertThat(r.verifications()).isEqualTo(1);

    OidcResolver uncached = new OidcResolver(List.of(config()), clock, 0, FAST);
    accepted(uncached, token);
    accepted(uncached, token);
    assertThat(uncached.verifications()).isEqualTo(2);
  }

  @Test
  void neverUsesACachedTokenPastItsExpiry() throws Exception {
    OidcResolver r = resolver();
    Instant exp = clock.instant().plusSeconds(120);
    String token = token(rsa1, c -> c.expirationTime(Date.from(exp)));
    accepted(r, token);

    clock.advance(Duration.ofSeconds(119));
    accepted(r, token);
    assertThat(r.verifications()).isEqualTo(1);

    clock.advance(
        Duration.ofSeconds(1)); // at exp: the entry is gone, the skew still admits the token
    assertThat(r.cachedTokens()).isZero();
    accepted(r, token);
    assertThat(r.verifications()).isEqualTo(2);

    clock.advance(Duration.ofSeconds(31));
    assertThat(refusal(r, token)).isEqualTo("token expired");
  }

  @Test
  void boundsTheTokenCache() throws Exception {
    OidcResolver r = new OidcResolver(List.of(config()), clock, 2, FAST);
    for (int i = 0; i < 5; i++) {
      String id = "token-" + i;
      accepted(r, token(rsa1, c -> c.jwtID(id)));
    }
    assertThat(r.verifications()).isEqualTo(5);
    assertThat(r.cachedTokens()).isLessThanOrEqualTo(2);
  }

  // --- verification order and boundaries
  // -----------------------------------------------------------

  @Test
  void acceptsRs384AndRs512AndRefusesThemWithAnotherKeysSignature() throws Exception {
    OidcResolver r = resolver(with(config(), List.of("RS384", "RS512"), null, null, null));
    for (JWSAlgorithm alg : List.of(JWSAlgorithm.RS384, JWSAlgorithm.RS512)) {
      assertThat(accepted(r, sign(header(alg, rsa1).build(), claims().build(), rsa1)).subject())
          .isEqualTo("alice");
      assertThat(refusal(r, sign(header(alg, rsa1).build(), claims().build(), attackerKey)))
          .isEqualTo("signature invalid");
    }
  }

  @Test
  void checksTheSignatureBeforeAnyClaim() throws Exception {
    OidcResolver r = resolver();
    Instant now = clock.instant();
    // Claims that would be refused, under a signature that is not the issuer's: the signature
    // counts.
    for (UnaryOperator<JWTClaimsSet.Builder> bad :
        List.<UnaryOperator<JWTClaimsSet.Builder>>of(
            c -> c.expirationTime(Date.from(now.minusSeconds(3600))),
            c -> c.expirationTime(null),
            c -> c.audience("other-api"),
            c -> c.notBeforeTime(Date.from(now.plusSeconds(3600))),
            c -> c.subject(null))) {
      assertThat(
              refusal(
                  r,
                  sign(
                      header(JWSAlgorithm.RS256, rsa1).build(),
                      bad.apply(claims()).build(),
                      attackerKey)))
          .isEqualTo("signature invalid");
    }
  }

  @Test
  void timeClaimsAtTheirBoundariesAsNimbusChecksThem() throws Exception {
    OidcResolver r = new OidcResolver(List.of(config()), clock, 0, FAST);
    Instant now = clock.instant(); // a whole second: the boundaries fall on it
    Duration skew = Duration.ofSeconds(30);
    assertThat(refusal(r, token(rsa1, c -> c.expirationTime(Date.from(now.minus(skew))))))
        .as("exp + skew not after now")
        .isEqualTo("token expired");
    accepted(r, token(rsa1, c -> c.expirationTime(Date.from(now.minus(skew).plusSeconds(1)))));
    assertThat(refusal(r, token(rsa1, c -> c.notBeforeTime(Date.from(now.plus(skew))))))
        .as("nbf - skew not before now")
        .isEqualTo("token not yet valid");
    accepted(r, token(rsa1, c -> c.notBeforeTime(Date.from(now.plus(skew).minusSeconds(1)))));
    accepted(r, token(rsa1, c -> c.issueTime(Date.from(now.plus(skew)))));
    assertThat(refusal(r, token(rsa1, c -> c.issueTime(Date.from(now.plus(skew).plusSeconds(1))))))
        .isEqualTo("token not yet valid");
  }

  @Test
  void refusesMalformedSignaturesAndUnencodedPayloads() throws Exception {
    OidcResolver r = resolver();
    String token = token(rsa1);
    String[] p = token.split("\\.");
    assertThat(refusal(r, p[0] + "." + p[1] + "." + OidcTokenTest.dangling(p[2])))
        .as("dangling base64url character")
        .isEqualTo("malformed token");
    assertThat(refusal(r, p[0] + "." + p[1] + ".")).isEqualTo("malformed token");

    String headerJson = "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"b64\":false}";
    String input = Base64URL.encode(headerJson) + "." + p[1];
    Signature s = Signature.getInstance("SHA256withRSA");
    s.initSign(rsa1.toPrivateKey());
    s.update(input.getBytes(StandardCharsets.US_ASCII));
    assertThat(refusal(r, input + "." + Base64URL.encode(s.sign()))).isEqualTo("malformed token");
    assertThat(idp.all.get()).as("refused before any key was fetched").isZero();
    assertThat(refusal(r, p[0] + "." + p[1] + "." + p[2].substring(4)))
        .as("short signature")
        .isEqualTo("signature invalid");
  }

  @Test
  void refusesAKidThatNamesAKeyOfAnotherType() throws Exception {
    // "ec-1" is an EC key of the issuer; an RS256 token naming it finds no RSA key.
    String token =
        sign(
            new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(ec1.getKeyID()).build(),
            claims().build(),
            rsa1);
    assertThat(refusal(resolver(), token)).isEqualTo("unknown signing key");
  }

  @Test
  void makesAnImmutablePrincipal() throws Exception {
    Principal p = accepted(resolver(), token(rsa1));
    assertThatThrownBy(() -> p.groups().add("admins"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> p.attributes().put("x", "y"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThat(p.attributes()).containsOnlyKeys("groups", "email");
    assertThat(p.attributes().get("groups")).isEqualTo(List.of("ml-engineers", "readers"));
  }

  // --- groups and subject
  // -------------------------------------------------------------------------

  @Test
  void readsKeycloakAzureAndNamespacedGroupClaims() throws Exception {
    Map<String, Object> realm = Map.of("roles", List.of("ml-engineers", "offline_access"));
    Map<String, Object> resource = Map.of("inference", Map.of("roles", List.of("chat-user")));

    Principal keycloak =
        accepted(
            resolver(with(config(), null, "realm_access.roles", "preferred_username", null)),
            token(
                rsa1, c -> c.claim("realm_access", realm).claim("preferred_username", "alice.k")));
    assertThat(keycloak.groups()).containsExactlyInAnyOrder("ml-engineers", "offline_access");
    assertThat(keycloak.subject()).isEqualTo("alice.k");

    assertThat(
            accepted(
                    resolver(with(config(), null, "resource_access.inference.roles", null, null)),
                    token(rsa1, c -> c.claim("resource_access", resource)))
                .groups())
        .containsExactly("chat-user");

    Principal azure =
        accepted(
            resolver(with(config(), null, "roles", "oid", null)),
            token(rsa1, c -> c.claim("roles", List.of("Inference.Chat")).claim("oid", "0f6c-11")));
    assertThat(azure.groups()).containsExactly("Inference.Chat");
    assertThat(azure.subject()).isEqualTo("0f6c-11");

    assertThat(
            accepted(
                    resolver(with(config(), null, "roles", null, null)),
                    token(rsa1, c -> c.claim("roles", "single")))
                .groups())
        .containsExactly("single");
    assertThat(
            accepted(
                    resolver(with(config(), null, "https://example.com/roles", null, null)),
                    token(rsa1, c -> c.claim("https://example.com/roles", List.of("ns"))))
                .groups())
        .containsExactly("ns");
    assertThat(
            accepted(resolver(with(config(), null, "realm_access.roles", null, null)), token(rsa1))
                .groups())
        .as("absent claim: no groups")
        .isEmpty();
  }

  @Test
  void refusesGroupClaimsOfTheWrongShape() throws Exception {
    OidcResolver r = resolver();
    assertThat(refusal(r, token(rsa1, c -> c.claim("groups", 5))))
        .isEqualTo("malformed groups claim");
    assertThat(refusal(r, token(rsa1, c -> c.claim("groups", List.of("a", 5)))))
        .isEqualTo("malformed groups claim");
    assertThat(refusal(r, token(rsa1, c -> c.claim("groups", Map.of("a", "b")))))
        .isEqualTo("malformed groups claim");
  }

  // --- configuration
  // ------------------------------------------------------------------------------

  @Nested
  class Configuration {
    Policy.OidcIssuer c(String issuerUrl, String jwks, List<String> algs) {
      return new Policy.OidcIssuer(
          issuerUrl, AUD, jwks == null ? null : URI.create(jwks), algs, null, null, null, null);
    }

    @Test
    void refusesWhatThePolicyLoaderRefuses() {
      assertThatThrownBy(() -> resolver(c("https://i", null, List.of("RS256", "HS256"))))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("identity.oidc[0].algorithms[1]: HMAC");
      assertThatThrownBy(() -> resolver(c("https://i", null, List.of("none"))))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("identity.oidc[0].algorithms[0]: \"none\"");
      assertThatThrownBy(() -> resolver(c("http://idp.example.com", null, null)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("identity.oidc[0].issuer: must be an absolute https");
      assertThatThrownBy(() -> resolver(c("https://i", "http://idp.example.com/certs", null)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("identity.oidc[0].jwks-uri: must be an absolute https");
      assertThatThrownBy(
              () ->
                  resolver(
                      c("https://i", null, null),
                      c("https://j", null, null),
                      c("https://i", null, null)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("identity.oidc[2].issuer: duplicate issuer \"https://i\"");
      assertThatThrownBy(() -> new OidcResolver(List.of(), clock, -1))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("tokenCacheSize must be >= 0, was -1");
      assertThatThrownBy(
              () ->
                  resolver(
                      new Policy.OidcIssuer(
                          "https://i", AUD, null, null, null, null, null, Duration.ofMinutes(6))))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("identity.oidc[0].clock-skew: must be between 0s and 5m");
    }

    @Test
    void publicConstructorsUseTheDefaults() throws Exception {
      OidcResolver r = new OidcResolver(List.of(config()), clock);
      accepted(r, token(rsa1));
      accepted(r, token(rsa1));
      assertThat(r.verifications()).isEqualTo(1);
      assertThat(r.toString()).isEqualTo("OidcResolver[" + issuer + "]");
    }
  }

  // --- a certificate for the x5c header, in plain DER
  // ---------------------------------------------

  /** A minimal self-signed X.509 v3 certificate for {@code pair} (RSA, SHA256withRSA). */
  static byte[] selfSignedCertificate(KeyPair pair) throws Exception {
    byte[] sha256WithRsa =
        der(
            0x30,
            der(
                0x06,
                new byte[] {0x2A, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xF7, 0x0D, 1, 1, 11}),
            new byte[] {0x05, 0x00});
    byte[] name =
        der(
            0x30,
            der(
                0x31,
                der(
                    0x30,
                    der(0x06, new byte[] {0x55, 0x04, 0x03}),
                    der(0x0C, "attacker".getBytes(StandardCharsets.US_ASCII)))));
    byte[] validity =
        der(
            0x30,
            der(0x17, "250101000000Z".getBytes(StandardCharsets.US_ASCII)),
            der(0x17, "350101000000Z".getBytes(StandardCharsets.US_ASCII)));
    byte[] tbs =
        der(
            0x30,
            der(0xA0, der(0x02, new byte[] {2})),
            der(0x02, new byte[] {1}),
            sha256WithRsa,
            name,
            validity,
            name,
            pair.getPublic().getEncoded());
    Signature s = Signature.getInstance("SHA256withRSA");
    s.initSign(pair.getPrivate());
    s.update(tbs);
    byte[] sig = s.sign();
    byte[] bits = new byte[sig.length + 1];
    System.arraycopy(sig, 0, bits, 1, sig.length);
    byte[] cert = der(0x30, tbs, sha256WithRsa, der(0x03, bits));
    CertificateFactory.getInstance("X.509")
        .generateCertificate(new java.io.ByteArrayInputStream(cert)); // well-formed
    return cert;
  }

  private static byte[] der(int tag, byte[]... parts) {
    ByteArrayOutputStream content = new ByteArrayOutputStream();
    for (byte[] p : parts) content.writeBytes(p);
    int n = content.size();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(tag);
    if (n < 128) {
      out.write(n);
    } else if (n < 256) {
      out.write(0x81);
      out.write(n);
    } else {
      out.write(0x82);
      out.write(n >> 8);
      out.write(n & 0xff);
    }
    out.writeBytes(content.toByteArray());
    return out.toByteArray();
  }
}
