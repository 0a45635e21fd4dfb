package dev.inferpam.testsupport;

import static org.assertj.core.api.Assertions.assertThat;

import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jwt.SignedJWT;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class LocalIdentityProviderTest {
  final MutableClock clock = MutableClock.at("2026-06-01T12:00:00Z");
  final LocalIdentityProvider idp = LocalIdentityProvider.start(clock);
  final OkHttpClient client = new OkHttpClient();

  @AfterEach
  void stop() {
    client.dispatcher().executorService().shutdown();
    client.connectionPool().evictAll();
    idp.close();
  }

  String get(String url) throws Exception {
    try (Response r = client.newCall(new Request.Builder().url(url).build()).execute()) {
      return r.code() + " " + r.body().string();
    }
  }

  @Test
  void servesEachIssuersPublicKeysAndMintsTokensTheyVerify() throws Exception {
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "inference-gateway");
    LocalIdentityProvider.Issuer azure =
        idp.issuer("https://login.microsoftonline.com/t1/v2.0", "/t1/keys", "api://inference");
    assertThat(realm.issuer()).isEqualTo(idp.baseUrl() + "/realms/ml");
    assertThat(realm.jwksUri())
        .hasToString(idp.baseUrl() + "/realms/ml/protocol/openid-connect/certs");
    assertThat(realm.keyId()).isNotEqualTo(azure.keyId());

    String served = get(realm.jwksUri().toString());
    assertThat(served).startsWith("200 ");
    JWKSet set = JWKSet.parse(served.substring(4));
    RSAKey published = (RSAKey) set.getKeyByKeyId(realm.keyId());
    assertThat(published.isPrivate()).isFalse();
    assertThat(idp.jwksFetches()).isEqualTo(1);
    assertThat(get(idp.baseUrl() + "/realms/ml/.well-known/openid-configuration"))
        .contains("\"jwks_uri\":\"" + realm.jwksUri() + "\"");
    assertThat(get(idp.baseUrl() + "/nothing")).startsWith("404");

    SignedJWT token =
        SignedJWT.parse(
            realm
                .token()
                .subject("5b8e")
                .claim("preferred_username", "alice")
                .claim("realm_access", Map.of("roles", List.of("ml-engineers")))
                .sign());
    assertThat(token.verify(new RSASSAVerifier(published))).isTrue();
    assertThat(token.getHeader().getKeyID()).isEqualTo(realm.keyId());
    assertThat(token.getJWTClaimsSet().getIssuer()).isEqualTo(realm.issuer());
    assertThat(token.getJWTClaimsSet().getAudience()).containsExactly("inference-gateway");
    assertThat(token.getJWTClaimsSet().getIssueTime().toInstant()).isEqualTo(clock.instant());
    assertThat(token.getJWTClaimsSet().getExpirationTime().toInstant())
        .isEqualTo(clock.instant().plus(LocalIdentityProvider.DEFAULT_LIFETIME));
    assertThat(token.getJWTClaimsSet().getJSONObjectClaim("realm_access")).containsKey("roles");
  }

  @Test
  void forgedAndExpiredTokensAreWhatTheySay() throws Exception {
    LocalIdentityProvider.Issuer realm = idp.realm("ml", "aud");
    RSAKey published = realm.key().toPublicJWK();

    SignedJWT forged = SignedJWT.parse(realm.token().forged().sign());
    assertThat(forged.getHeader().getKeyID()).isEqualTo(realm.keyId());
    assertThat(forged.verify(new RSASSAVerifier(published))).isFalse();

    SignedJWT expired =
        SignedJWT.parse(realm.token().expiresIn(Duration.ofMinutes(-5)).type("at+jwt").sign());
    assertThat(expired.getJWTClaimsSet().getExpirationTime().toInstant()).isBefore(clock.instant());
    assertThat(expired.getHeader().getType().getType()).isEqualTo("at+jwt");

    realm.publish();
    assertThat(get(realm.jwksUri().toString())).isEqualTo("200 {\"keys\":[]}");
  }
}
