package dev.inferpam.servlet;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpServer;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * OIDC tokens through {@link PamFilter} in a real Jetty: a Keycloak-shaped and an Azure-shaped
 * issuer whose keys a JDK {@link HttpServer} on 127.0.0.1 serves.
 */
class OidcFilterTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");
  private static final Instant NOW = TestPolicy.CLOCK.instant();
  private static final String AZURE_ISSUER = "https://login.microsoftonline.com/0f1e2d3c-4b5a/v2.0";

  private static RSAKey keycloakKey;
  private static RSAKey azureKey;
  private static RSAKey attackerKey;
  private static HttpServer idp;
  private static final AtomicInteger keyFetches = new AtomicInteger();
  private static String keycloakIssuer;
  private static TestServer server;
  private static OkHttpClient client;

  @BeforeAll
  static void start() throws Exception {
    keycloakKey = new RSAKeyGenerator(2048).keyID("kc-1").generate();
    azureKey = new RSAKeyGenerator(2048).keyID("az-1").generate();
    attackerKey = new RSAKeyGenerator(2048).keyID("kc-1").generate(); // claims the Keycloak kid
    idp = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
    serveKeys("/realms/ml/protocol/openid-connect/certs", keycloakKey);
    serveKeys("/0f1e2d3c-4b5a/discovery/v2.0/keys", azureKey);
    idp.start();
    String idpBase = "http://127.0.0.1:" + idp.getAddress().getPort();
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
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
          - groups: [Inference.Chat]
            models: ["gpt-4o-mini"]
            operations: [chat]
        """.formatted(keycloakIssuer, idpBase, AZURE_ISSUER, idpBase);
    server = new TestServer(false, recorder -> PamEngine.builder()
        .policy(Policy.parse(policy))
        .credentialProvider(() -> new Credential("Authorization", TestPolicy.UPSTREAM_SECRET))
        .recorder(recorder)
        .clock(TestPolicy.CLOCK)
        .build());
    client = new OkHttpClient.Builder().readTimeout(Duration.ofSeconds(10)).retryOnConnectionFailure(false).build();
  }

  private static void serveKeys(String path, RSAKey key) {
    byte[] body = new JWKSet(key.toPublicJWK()).toString().getBytes(StandardCharsets.UTF_8);
    idp.createContext(path, exchange -> {
      keyFetches.incrementAndGet();
      exchange.getResponseHeaders().set("Content-Type", "application/json");
      exchange.sendResponseHeaders(200, body.length);
      exchange.getResponseBody().write(body);
      exchange.close();
    });
  }

  @AfterAll
  static void stop() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    server.close();
    idp.stop(0);
  }

  @BeforeEach
  void reset() {
    server.seen.clear();
    server.records.clear();
    server.invocations.set(0);
  }

  record Answer(int status, String body, String challenge) {}

  private static Answer chat(String token, String model) throws IOException {
    String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    Request request = new Request.Builder().url(server.url("/v1/chat/completions"))
        .header("Authorization", "Bearer " + token)
        .post(RequestBody.create(body.getBytes(StandardCharsets.UTF_8), JSON_TYPE)).build();
    try (Response r = client.newCall(request).execute()) {
      return new Answer(r.code(), r.body().string(), r.header("WWW-Authenticate"));
    }
  }

  private static String keycloakToken(RSAKey signer, List<String> roles) throws Exception {
    JWTClaimsSet claims = new JWTClaimsSet.Builder()
        .issuer(keycloakIssuer).audience(List.of("inference-gateway", "account")).subject("5b8e-user-id")
        .issueTime(Date.from(NOW)).expirationTime(Date.from(NOW.plus(Duration.ofMinutes(5))))
        .claim("preferred_username", "alice").claim("azp", "notebook")
        .claim("realm_access", Map.of("roles", roles))
        .build();
    return sign(signer, "kc-1", claims);
  }

  private static String azureToken(List<String> roles) throws Exception {
    JWTClaimsSet claims = new JWTClaimsSet.Builder()
        .issuer(AZURE_ISSUER).audience("api://inference").subject("pairwise-sub")
        .issueTime(Date.from(NOW)).expirationTime(Date.from(NOW.plus(Duration.ofHours(1))))
        .claim("oid", "7d1c0b2a-oid").claim("roles", roles).claim("ver", "2.0")
        .build();
    return sign(azureKey, "az-1", claims);
  }

  private static String sign(RSAKey key, String kid, JWTClaimsSet claims) throws Exception {
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(kid).build(), claims);
    jwt.sign(new RSASSASigner(key));
    return jwt.serialize();
  }

  private static String errorCode(Answer a) throws IOException {
    JsonNode error = TestServer.JSON.readTree(a.body()).get("error");
    return error.get("code").asText();
  }

  @Test
  void keycloakRealmRolesDriveEntitlements() throws Exception {
    String token = keycloakToken(keycloakKey, List.of("ml-engineers", "offline_access"));

    Answer allowed = chat(token, "llama-3.1-8b");
    assertThat(allowed.status()).as(allowed.body()).isEqualTo(200);
    TestServer.Seen seen = server.nextSeen();
    assertThat(seen.authorization()).as("the caller's token is hidden from the application").isNull();
    Verdict.Allowed exchange = (Verdict.Allowed) seen.exchange();
    assertThat(exchange.forward().setHeaders()).isEqualTo(Map.of("Authorization", TestPolicy.UPSTREAM_SECRET));
    assertThat(exchange.principal().subject()).isEqualTo("alice");
    assertThat(exchange.principal().issuer()).isEqualTo(keycloakIssuer);
    assertThat(exchange.principal().groups()).containsExactlyInAnyOrder("ml-engineers", "offline_access");
    SessionRecord record = server.awaitRecord(exchange.id());
    assertThat(record.toString()).doesNotContain(token);

    Answer denied = chat(token, "gpt-4o-mini");
    assertThat(denied.status()).isEqualTo(403);
    assertThat(errorCode(denied)).isEqualTo("not_entitled");
    assertThat(server.invocations.get()).isEqualTo(1);
  }

  @Test
  void azureAppRolesDriveEntitlements() throws Exception {
    String token = azureToken(List.of("Inference.Chat"));

    Answer allowed = chat(token, "gpt-4o-mini");
    assertThat(allowed.status()).as(allowed.body()).isEqualTo(200);
    Verdict.Allowed exchange = (Verdict.Allowed) server.nextSeen().exchange();
    assertThat(exchange.principal().subject()).isEqualTo("7d1c0b2a-oid");
    assertThat(exchange.forward().setHeaders().get("Authorization")).isEqualTo(TestPolicy.UPSTREAM_SECRET);

    Answer denied = chat(token, "llama-3.1-70b");
    assertThat(denied.status()).isEqualTo(403);
    assertThat(errorCode(denied)).isEqualTo("not_entitled");
    assertThat(server.invocations.get()).isEqualTo(1);
  }

  @Test
  void forgedTokenIs401WithTheReasonAndTheServletNeverRuns() throws Exception {
    String forged = keycloakToken(attackerKey, List.of("ml-engineers", "admin"));

    Answer answer = chat(forged, "llama-3.1-8b");

    assertThat(answer.status()).isEqualTo(401);
    assertThat(answer.challenge()).isEqualTo("Bearer error=\"invalid_token\", error_description=\"signature invalid\"");
    assertThat(errorCode(answer)).isEqualTo("unauthenticated");
    assertThat(answer.body()).doesNotContain(forged);
    assertThat(server.invocations.get()).isZero();
    assertThat(server.seen).isEmpty();
    assertThat(keyFetches.get()).as("keys came from the identity provider").isPositive();
  }

  @Test
  void aValidTokenWithASecondCredentialIs401AndTheServletNeverRuns() throws Exception {
    String token = keycloakToken(keycloakKey, List.of("ml-engineers"));
    String body = "{\"model\":\"llama-3.1-8b\",\"messages\":[]}";
    for (String[] extra : List.of(new String[] {"X-Api-Key", "anything"}, new String[] {"X-Api-Key", ""},
        new String[] {"Authorization", "Bearer " + token}, new String[] {"Proxy-Authorization", "Basic eDp5"})) {
      Request request = new Request.Builder().url(server.url("/v1/chat/completions"))
          .header("Authorization", "Bearer " + token).addHeader(extra[0], extra[1])
          .post(RequestBody.create(body.getBytes(StandardCharsets.UTF_8), JSON_TYPE)).build();
      try (Response r = client.newCall(request).execute()) {
        String answer = r.body().string();
        assertThat(r.code()).as("%s: %s", extra[0], answer).isEqualTo(401);
        assertThat(errorCode(new Answer(r.code(), answer, null))).isEqualTo("unauthenticated");
        assertThat(r.header("WWW-Authenticate")).contains("more than one");
        assertThat(answer).doesNotContain(token);
      }
    }
    assertThat(server.invocations.get()).isZero();
  }
}
