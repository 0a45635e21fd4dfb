package dev.inferpam.okhttp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * OIDC tokens through {@link PamInterceptor}: a Keycloak-shaped and an Azure-shaped issuer, keys
 * served by a MockWebServer identity provider, the model server another MockWebServer.
 */
class OidcInterceptorTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final Instant NOW = Instant.parse("2026-11-28T12:00:00Z");
  static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);
  static final String AZURE_ISSUER = "https://login.microsoftonline.com/0f1e2d3c-4b5a/v2.0";
  static final String UPSTREAM_SECRET = "Bearer upstream-secret";

  static RSAKey keycloakKey;
  static RSAKey azureKey;
  static RSAKey attackerKey;

  MockWebServer upstream;
  MockWebServer idp;
  String keycloakIssuer;
  final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  PamEngine engine;
  OkHttpClient client;

  @BeforeAll
  static void keys() throws Exception {
    keycloakKey = new RSAKeyGenerator(2048).keyID("kc-1").generate();
    azureKey = new RSAKeyGenerator(2048).keyID("az-1").generate();
    attackerKey = new RSAKeyGenerator(2048).keyID("kc-1").generate(); // claims the Keycloak kid
  }

  @BeforeEach
  void setUp() throws Exception {
    upstream = new MockWebServer();
    upstream.start(InetAddress.getByName("127.0.0.1"), 0);
    idp = new MockWebServer();
    idp.setDispatcher(new Dispatcher() {
      @Override
      public MockResponse dispatch(RecordedRequest request) {
        String path = request.getUrl().encodedPath();
        RSAKey key = path.equals("/realms/ml/protocol/openid-connect/certs") ? keycloakKey
            : path.equals("/0f1e2d3c-4b5a/discovery/v2.0/keys") ? azureKey : null;
        return key == null ? new MockResponse.Builder().code(404).build()
            : new MockResponse.Builder().code(200).body(new JWKSet(key.toPublicJWK()).toString()).build();
      }
    });
    idp.start(InetAddress.getByName("127.0.0.1"), 0);
    String idpBase = "http://127.0.0.1:" + idp.getPort();
    keycloakIssuer = idpBase + "/realms/ml";
    String policy = """
        version: 1
        identity:
          oidc:
            - issuer: %s
              audience: inference-gateway
              jwks-uri: %s/realms/ml/protocol/openid-connect/certs
              groups-claim: realm_access.roles
              subject-claim: preferred_username
            - issuer: %s
              audience: api://inference
              jwks-uri: %s/0f1e2d3c-4b5a/discovery/v2.0/keys
              groups-claim: roles
              subject-claim: oid
              require-type: JWT
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
          - groups: [Inference.Chat]
            models: ["gpt-4o-mini"]
            operations: [chat]
        """.formatted(keycloakIssuer, idpBase, AZURE_ISSUER, idpBase);
    engine = PamEngine.builder().policy(Policy.parse(policy)).clock(CLOCK)
        .credentialProvider(() -> new Credential("Authorization", UPSTREAM_SECRET)).recorder(records::add).build();
    client = PamInterceptor.of(engine).install(new OkHttpClient.Builder()).readTimeout(10, TimeUnit.SECONDS).build();
  }

  @AfterEach
  void tearDown() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    upstream.close();
    idp.close();
  }

  String keycloakToken(RSAKey signer, List<String> roles, UnaryOperator<JWTClaimsSet.Builder> more) throws Exception {
    JWTClaimsSet.Builder claims = new JWTClaimsSet.Builder()
        .issuer(keycloakIssuer).audience(List.of("inference-gateway", "account")).subject("5b8e-user-id")
        .issueTime(Date.from(NOW)).expirationTime(Date.from(NOW.plus(Duration.ofMinutes(5))))
        .claim("typ", "Bearer").claim("azp", "notebook").claim("preferred_username", "alice")
        .claim("realm_access", Map.of("roles", roles))
        .claim("resource_access", Map.of("account", Map.of("roles", List.of("view-profile"))));
    return sign(signer, "kc-1", more.apply(claims).build());
  }

  String azureToken(List<String> roles) throws Exception {
    JWTClaimsSet claims = new JWTClaimsSet.Builder()
        .issuer(AZURE_ISSUER).audience("api://inference").subject("pairwise-sub")
        .issueTime(Date.from(NOW)).notBeforeTime(Date.from(NOW)).expirationTime(Date.from(NOW.plus(Duration.ofHours(1))))
        .claim("oid", "7d1c0b2a-oid").claim("tid", "0f1e2d3c-4b5a").claim("roles", roles).claim("ver", "2.0")
        .build();
    return sign(azureKey, "az-1", claims);
  }

  static String sign(RSAKey key, String kid, JWTClaimsSet claims) throws Exception {
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(kid)
        .type(com.nimbusds.jose.JOSEObjectType.JWT).build(), claims);
    jwt.sign(new RSASSASigner(key));
    return jwt.serialize();
  }

  Response chat(String token, String model) throws Exception {
    String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    return client.newCall(new Request.Builder().url(upstream.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + token).post(RequestBody.create(body, JSON)).build()).execute();
  }

  static JsonNode error(Response r) throws Exception {
    return MAPPER.readTree(r.body().string()).get("error");
  }

  @Test
  void keycloakRealmRolesDriveEntitlements() throws Exception {
    String token = keycloakToken(keycloakKey, List.of("ml-engineers", "offline_access"), c -> c);
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"id\":\"chat-1\"}").build());

    try (Response r = chat(token, "llama-3.1-8b")) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.body().string()).isEqualTo("{\"id\":\"chat-1\"}");
    }
    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().values("Authorization")).containsExactly(UPSTREAM_SECRET);
    assertThat(seen.getHeaders().toString()).doesNotContain(token);

    try (Response r = chat(token, "gpt-4o-mini")) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("code").asText()).isEqualTo("not_entitled");
    }
    assertThat(upstream.getRequestCount()).isEqualTo(1);

    assertThat(records).hasSize(2).allSatisfy(rec -> {
      assertThat(rec.principal().subject()).isEqualTo("alice");
      assertThat(rec.principal().via()).isEqualTo("oidc");
      assertThat(rec.principal().issuer()).isEqualTo(keycloakIssuer);
      assertThat(rec.toString()).doesNotContain(token);
    });
  }

  @Test
  void azureAppRolesDriveEntitlements() throws Exception {
    String token = azureToken(List.of("Inference.Chat"));
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"id\":\"chat-2\"}").build());

    try (Response r = chat(token, "gpt-4o-mini")) {
      assertThat(r.code()).isEqualTo(200);
    }
    assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders().values("Authorization"))
        .containsExactly(UPSTREAM_SECRET);

    try (Response r = chat(token, "llama-3.1-8b")) {
      assertThat(r.code()).isEqualTo(403);
      assertThat(error(r).get("code").asText()).isEqualTo("not_entitled");
    }
    assertThat(upstream.getRequestCount()).isEqualTo(1);
    assertThat(records.get(0).principal().subject()).isEqualTo("7d1c0b2a-oid");
    assertThat(records.get(0).principal().groups()).containsExactly("Inference.Chat");
  }

  @Test
  void forgedTokenIs401WithTheReasonAndNeverReachesTheModel() throws Exception {
    String forged = keycloakToken(attackerKey, List.of("ml-engineers", "admin"), c -> c);

    try (Response r = chat(forged, "llama-3.1-8b")) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate"))
          .isEqualTo("Bearer error=\"invalid_token\", error_description=\"signature invalid\"");
      String body = r.body().string();
      assertThat(MAPPER.readTree(body).get("error").get("code").asText()).isEqualTo("unauthenticated");
      assertThat(body).doesNotContain(forged);
    }
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(records).singleElement().satisfies(rec -> {
      assertThat(rec.decision().code()).isEqualTo("unauthenticated");
      assertThat(rec.toString()).doesNotContain(forged);
    });
  }

  @Test
  void expiredAndWrongAudienceTokensSaySo() throws Exception {
    String expired = keycloakToken(keycloakKey, List.of("ml-engineers"),
        c -> c.expirationTime(Date.from(NOW.minus(Duration.ofMinutes(5)))));
    String otherApi = keycloakToken(keycloakKey, List.of("ml-engineers"), c -> c.audience("another-api"));

    try (Response r = chat(expired, "llama-3.1-8b")) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate")).contains("error_description=\"token expired\"").doesNotContain(expired);
    }
    try (Response r = chat(otherApi, "llama-3.1-8b")) {
      assertThat(r.code()).isEqualTo(401);
      assertThat(r.header("WWW-Authenticate")).contains("error_description=\"wrong audience\"");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }
}
