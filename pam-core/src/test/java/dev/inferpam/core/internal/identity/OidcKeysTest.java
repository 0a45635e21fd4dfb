package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jose.jwk.source.JWKSetCacheRefreshEvaluator;
import com.nimbusds.jose.jwk.source.JWKSetSource;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link OidcKeys}: which keys a token selects, and the verifiers made once per key and JWK set. */
class OidcKeysTest {
  static RSAKey rsa1;
  static RSAKey rsa2;
  static ECKey ec1;

  final Clock clock = Clock.fixed(Instant.parse("2026-06-01T12:00:00Z"), ZoneOffset.UTC);
  final FakeSource source = new FakeSource();

  @BeforeAll
  static void keys() throws Exception {
    rsa1 = new RSAKeyGenerator(2048).keyID("rsa-1").generate();
    rsa2 = new RSAKeyGenerator(2048).keyID("rsa-2").generate();
    ec1 = new ECKeyGenerator(Curve.P_256).keyID("ec-1").generate();
  }

  /** The identity provider and the key cache in one: serves its set until told to fetch again. */
  static final class FakeSource implements JWKSetSource<SecurityContext> {
    JWKSet published = new JWKSet();
    JWKSet served;
    int fetches;

    void publish(JWK... keys) {
      List<JWK> pub = new ArrayList<>();
      for (JWK k : keys) pub.add(k.toPublicJWK());
      published = new JWKSet(pub);
    }

    /** The cached set expired: the next call fetches. */
    void expire() {
      served = null;
    }

    @Override
    public JWKSet getJWKSet(
        JWKSetCacheRefreshEvaluator refresh, long currentTime, SecurityContext context) {
      if (served == null || refresh.requiresRefresh(served)) {
        fetches++;
        served = published;
      }
      return served;
    }

    @Override
    public void close() {}
  }

  OidcKeys keys(JWSAlgorithm... algorithms) {
    return new OidcKeys(Set.of(algorithms), source, clock, java.time.Duration.ofSeconds(30));
  }

  static JWSHeader header(JWSAlgorithm alg, String kid) {
    return new JWSHeader.Builder(alg).keyID(kid).build();
  }

  static OidcToken token(JWSHeader header, JWK key) throws Exception {
    SignedJWT jwt = new SignedJWT(header, new JWTClaimsSet.Builder().subject("alice").build());
    jwt.sign(key instanceof ECKey ec ? new ECDSASigner(ec) : new RSASSASigner((RSAKey) key));
    return OidcToken.parse(jwt.serialize());
  }

  static OidcToken token(JWSAlgorithm alg, JWK key) throws Exception {
    return token(header(alg, key.getKeyID()), key);
  }

  static boolean verifiedBy(List<OidcKeys.KeyVerifier> verifiers, OidcToken token)
      throws JOSEException {
    for (OidcKeys.KeyVerifier v : verifiers) {
      if (v.verify(token)) return true;
    }
    return false;
  }

  @Test
  void makesTheVerifierOfAKeyOnceAndReusesIt() throws Exception {
    source.publish(rsa1, rsa2, ec1);
    OidcKeys keys = keys(JWSAlgorithm.RS256);
    OidcToken token = token(JWSAlgorithm.RS256, rsa1);

    List<OidcKeys.KeyVerifier> first = keys.select(token.header());
    List<OidcKeys.KeyVerifier> second = keys.select(token(JWSAlgorithm.RS256, rsa1).header());

    assertThat(first).hasSize(1);
    assertThat(second).isSameAs(first);
    assertThat(second.get(0)).isSameAs(first.get(0));
    assertThat(keys.convertedKeys()).as("only the key a token needed").isEqualTo(1);
    assertThat(verifiedBy(first, token)).isTrue();
    assertThat(source.fetches).isEqualTo(1);
  }

  @Test
  void dropsTheVerifiersOfARemovedKeyWhenTheSetIsReplaced() throws Exception {
    source.publish(rsa1, rsa2);
    OidcKeys keys = keys(JWSAlgorithm.RS256);
    OidcToken old = token(JWSAlgorithm.RS256, rsa1);
    List<OidcKeys.KeyVerifier> before = keys.select(old.header());
    assertThat(verifiedBy(before, old)).isTrue();
    List<OidcKeys.KeyVerifier> rsa2Before = keys.select(header(JWSAlgorithm.RS256, "rsa-2"));
    assertThat(keys.convertedKeys()).isEqualTo(2);

    // Rotation: rsa-1 is gone from the set, and the cached set expires.
    source.publish(rsa2);
    source.expire();

    assertThat(keys.select(old.header())).as("rsa-1 is no longer a key of the issuer").isEmpty();
    assertThat(keys.convertedKeys()).as("nothing of the old set is kept").isZero();
    assertThat(keys.cachedSelections()).isZero();
    List<OidcKeys.KeyVerifier> rsa2After = keys.select(header(JWSAlgorithm.RS256, "rsa-2"));
    assertThat(rsa2After).hasSize(1);
    assertThat(rsa2After.get(0)).as("made anew for the new set").isNotSameAs(rsa2Before.get(0));
    assertThat(verifiedBy(rsa2After, token(JWSAlgorithm.RS256, rsa2))).isTrue();
  }

  @Test
  void fetchesOnceMoreForAnUnknownKidAndFindsARotatedInKey() throws Exception {
    source.publish(rsa1);
    OidcKeys keys = keys(JWSAlgorithm.RS256);
    assertThat(keys.select(header(JWSAlgorithm.RS256, "rsa-1"))).hasSize(1);

    source.publish(rsa1, rsa2); // not yet fetched: the cached set lacks rsa-2
    assertThat(keys.select(header(JWSAlgorithm.RS256, "rsa-2"))).hasSize(1);
    assertThat(source.fetches).isEqualTo(2);

    assertThat(keys.select(header(JWSAlgorithm.RS256, "nobody"))).isEmpty();
    assertThat(source.fetches)
        .as("no second fetch for an unknown kid in the same interval")
        .isEqualTo(2);
  }

  @Test
  void cachesOnlySelectionsThatFoundAKey() throws Exception {
    source.publish(rsa1);
    OidcKeys keys = keys(JWSAlgorithm.RS256);
    keys.select(header(JWSAlgorithm.RS256, "rsa-1"));
    for (int i = 0; i < OidcKeys.MAX_SELECTIONS + 10; i++) {
      assertThat(keys.select(header(JWSAlgorithm.RS256, "made-up-" + i))).isEmpty();
    }
    assertThat(keys.cachedSelections()).isEqualTo(1);
    assertThat(keys.convertedKeys()).isEqualTo(1);
  }

  @Test
  void selectsNoKeyForAnAlgorithmOfAnotherIssuerAndFetchesNothing() throws Exception {
    source.publish(rsa1, ec1);
    OidcKeys keys = keys(JWSAlgorithm.RS256);
    assertThat(keys.select(header(JWSAlgorithm.ES256, "ec-1"))).isEmpty();
    assertThat(keys.select(header(JWSAlgorithm.HS256, "rsa-1"))).isEmpty();
    assertThat(source.fetches).isZero();
  }

  @Test
  void selectsAsNimbusMatchesKeyTypeUseAlgorithmAndThumbprint() throws Exception {
    RSAKey forEncryption = new RSAKey.Builder(rsa1).keyID("enc").keyUse(KeyUse.ENCRYPTION).build();
    RSAKey forRs512 = new RSAKey.Builder(rsa1).keyID("rs512").algorithm(JWSAlgorithm.RS512).build();
    source.publish(rsa1, forEncryption, forRs512, ec1);
    OidcKeys keys = keys(JWSAlgorithm.RS256, JWSAlgorithm.RS512, JWSAlgorithm.ES256);

    assertThat(keys.select(header(JWSAlgorithm.RS256, "enc"))).as("use enc").isEmpty();
    assertThat(keys.select(header(JWSAlgorithm.RS256, "rs512"))).as("alg RS512 only").isEmpty();
    assertThat(keys.select(header(JWSAlgorithm.RS512, "rs512"))).hasSize(1);
    assertThat(keys.select(header(JWSAlgorithm.RS256, "ec-1"))).as("key type").isEmpty();
    assertThat(keys.select(header(JWSAlgorithm.ES256, "ec-1"))).hasSize(1);
    JWSHeader wrongThumbprint =
        new JWSHeader.Builder(JWSAlgorithm.RS256)
            .keyID("rsa-1")
            .x509CertSHA256Thumbprint(Base64URL.encode("not the key's certificate"))
            .build();
    assertThat(keys.select(wrongThumbprint)).isEmpty();
    // Without a kid, every key of the right type, use and algorithm is a candidate.
    assertThat(keys.select(new JWSHeader.Builder(JWSAlgorithm.RS256).build())).hasSize(1);
    assertThat(keys.select(new JWSHeader.Builder(JWSAlgorithm.RS512).build())).hasSize(2);
  }

  @Test
  void verifiesRsPsAndEsAndRefusesWrongSignatures() throws Exception {
    OidcKeys.KeyVerifier rsa = OidcKeys.verifier(rsa1.toRSAPublicKey());
    OidcKeys.KeyVerifier ec = OidcKeys.verifier(ec1.toECPublicKey());
    for (JWSAlgorithm alg :
        List.of(
            JWSAlgorithm.RS256,
            JWSAlgorithm.RS384,
            JWSAlgorithm.RS512,
            JWSAlgorithm.PS256,
            JWSAlgorithm.PS512)) {
      assertThat(rsa.verify(token(alg, rsa1))).as(alg.getName()).isTrue();
      assertThat(rsa.verify(token(alg, rsa2))).as(alg.getName() + " by another key").isFalse();
    }
    assertThat(ec.verify(token(JWSAlgorithm.ES256, ec1))).isTrue();

    // The RS256 signature of one token over the signing input of another.
    OidcToken a = token(JWSAlgorithm.RS256, rsa1);
    SignedJWT other =
        new SignedJWT(
            header(JWSAlgorithm.RS256, "rsa-1"),
            new JWTClaimsSet.Builder().subject("admin").build());
    other.sign(new RSASSASigner(rsa1));
    String[] parts = other.serialize().split("\\.");
    String aSignature = a.signatureBase64().toString();
    assertThat(rsa.verify(OidcToken.parse(parts[0] + "." + parts[1] + "." + aSignature))).isFalse();
    // A signature of the wrong length is a wrong signature, not an error.
    assertThat(
            rsa.verify(OidcToken.parse(parts[0] + "." + parts[1] + "." + aSignature.substring(8))))
        .isFalse();
  }

  @Test
  void aKeyThatCannotVerifyTheAlgorithmRefuses() throws Exception {
    OidcToken rs256 = token(JWSAlgorithm.RS256, rsa1);
    assertThatThrownBy(() -> OidcKeys.verifier(ec1.toECPublicKey()).verify(rs256))
        .isInstanceOf(JOSEException.class);
    assertThatThrownBy(
            () -> OidcKeys.verifier(rsa1.toRSAPublicKey()).verify(token(JWSAlgorithm.ES256, ec1)))
        .isInstanceOf(JOSEException.class);
    assertThatThrownBy(
            () -> OidcKeys.verifier(new SecretKeySpec(new byte[32], "HmacSHA256")).verify(rs256))
        .isInstanceOf(JOSEException.class);
  }
}
