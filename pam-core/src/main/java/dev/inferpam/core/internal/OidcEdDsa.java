package dev.inferpam.core.internal;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.KeySourceException;
import com.nimbusds.jose.crypto.factories.DefaultJWSVerifierFactory;
import com.nimbusds.jose.jca.JCAContext;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKMatcher;
import com.nimbusds.jose.jwk.JWKSelector;
import com.nimbusds.jose.jwk.OctetKeyPair;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.JWSVerifierFactory;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.Base64URL;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.EdECPublicKey;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * EdDSA ({@code Ed25519}, {@code Ed448}) for {@link OidcResolver} on the JDK's own provider.
 *
 * <p>Nimbus verifies EdDSA only with Google Tink on the class path, an optional dependency we do
 * not ship; without it, {@code OctetKeyPair} keys are never turned into Java keys and every EdDSA
 * token would be refused as signed by an unknown key. Java 15 and later verify EdDSA natively,
 * so this class converts the JWK set's {@code OKP} keys itself and verifies with
 * {@link Signature}. Every other algorithm goes through Nimbus unchanged.
 *
 * <p>Stateless apart from the key source; thread-safe.
 */
final class OidcEdDsa {

  private OidcEdDsa() {}

  /** {@link JWSVerificationKeySelector}, plus OKP keys for EdDSA. */
  static final class KeySelector extends JWSVerificationKeySelector<SecurityContext> {
    KeySelector(Set<JWSAlgorithm> algorithms, JWKSource<SecurityContext> keys) {
      super(algorithms, keys);
    }

    /**
     * Java keys per JWK object. Nimbus converts the JWK to a Java key on every token, a third of a
     * fresh token's cost; the JWK objects live as long as the cached key set, so an identity-keyed
     * weak cache converts each once and forgets it when the set is replaced (key rotation).
     */
    private final com.github.benmanes.caffeine.cache.Cache<JWK, List<Key>> converted =
        com.github.benmanes.caffeine.cache.Caffeine.newBuilder().weakKeys().maximumSize(1_000).build();

    @Override
    public List<Key> selectJWSKeys(JWSHeader header, SecurityContext context) throws KeySourceException {
      // null when the header's algorithm is not among the issuer's
      JWKMatcher matcher = isAllowed(header.getAlgorithm()) ? createJWKMatcher(header) : null;
      if (matcher == null) return List.of();
      boolean edDsa = JWSAlgorithm.EdDSA.equals(header.getAlgorithm());
      List<Key> keys = new ArrayList<>();
      for (JWK jwk : getJWKSource().get(new JWKSelector(matcher), context)) {
        keys.addAll(converted.get(jwk, k -> edDsa ? okpKeys(k) : publicKeys(k)));
      }
      return keys;
    }

    private static List<Key> okpKeys(JWK jwk) {
      PublicKey key = jwk instanceof OctetKeyPair okp ? publicKey(okp) : null;
      return key == null ? List.of() : List.of(key);
    }

    /** As Nimbus does it: the JWK's Java keys, public (or secret) ones only. */
    private static List<Key> publicKeys(JWK jwk) {
      List<Key> out = new ArrayList<>();
      for (Key key : com.nimbusds.jose.jwk.KeyConverter.toJavaKeys(List.of(jwk))) {
        if (key instanceof PublicKey || key instanceof javax.crypto.SecretKey) out.add(key);
      }
      return List.copyOf(out);
    }
  }

  /** Nimbus's verifiers, and the JDK's for EdDSA. */
  static final class VerifierFactory implements JWSVerifierFactory {
    private final DefaultJWSVerifierFactory nimbus = new DefaultJWSVerifierFactory();

    @Override
    public JWSVerifier createJWSVerifier(JWSHeader header, Key key) throws JOSEException {
      if (JWSAlgorithm.EdDSA.equals(header.getAlgorithm()) && key instanceof EdECPublicKey ed) return new Verifier(ed);
      return nimbus.createJWSVerifier(header, key);
    }

    @Override
    public Set<JWSAlgorithm> supportedJWSAlgorithms() {
      Set<JWSAlgorithm> all = new java.util.HashSet<>(nimbus.supportedJWSAlgorithms());
      all.add(JWSAlgorithm.EdDSA);
      return all;
    }

    @Override
    public JCAContext getJCAContext() {
      return nimbus.getJCAContext();
    }
  }

  private static final class Verifier implements JWSVerifier {
    private final EdECPublicKey key;
    private final JCAContext jca = new JCAContext();

    Verifier(EdECPublicKey key) {
      this.key = key;
    }

    @Override
    public boolean verify(JWSHeader header, byte[] signingInput, Base64URL signature) throws JOSEException {
      try {
        Signature verifier = Signature.getInstance(key.getParams().getName());
        verifier.initVerify(key);
        verifier.update(signingInput);
        return verifier.verify(signature.decode());
      } catch (java.security.SignatureException e) {
        return false; // a malformed signature is a wrong one
      } catch (GeneralSecurityException e) {
        throw new JOSEException("EdDSA verification unavailable: " + e.getMessage(), e);
      }
    }

    @Override
    public Set<JWSAlgorithm> supportedJWSAlgorithms() {
      return Set.of(JWSAlgorithm.EdDSA);
    }

    @Override
    public JCAContext getJCAContext() {
      return jca;
    }
  }

  /**
   * The public key of an {@code OKP} JWK on curve Ed25519 or Ed448, or {@code null} for other
   * curves (X25519 is for key agreement) and undecodable keys. RFC 8032, section 5.1.2: the key
   * is {@code y} in little-endian with the parity of {@code x} in the top bit of the last byte.
   */
  static PublicKey publicKey(OctetKeyPair okp) {
    NamedParameterSpec params;
    int length;
    if (Curve.Ed25519.equals(okp.getCurve())) {
      params = NamedParameterSpec.ED25519;
      length = 32;
    } else if (Curve.Ed448.equals(okp.getCurve())) {
      params = NamedParameterSpec.ED448;
      length = 57;
    } else {
      return null;
    }
    byte[] raw = okp.getDecodedX();
    if (raw.length != length) return null;
    boolean xOdd = (raw[length - 1] & 0x80) != 0;
    byte[] bigEndian = new byte[length];
    for (int i = 0; i < length; i++) bigEndian[i] = raw[length - 1 - i];
    bigEndian[0] &= 0x7f;
    try {
      return KeyFactory.getInstance("EdDSA")
          .generatePublic(new EdECPublicKeySpec(params, new EdECPoint(xOdd, new BigInteger(1, bigEndian))));
    } catch (GeneralSecurityException e) {
      return null;
    }
  }
}
