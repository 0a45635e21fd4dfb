package dev.inferpam.core.internal.identity;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.OctetKeyPair;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.EdECPublicKey;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;

/**
 * EdDSA ({@code Ed25519}, {@code Ed448}) for {@link OidcResolver} on the JDK's own provider.
 *
 * <p>Nimbus verifies EdDSA only with Google Tink on the class path, an optional dependency we do
 * not ship; without it, {@code OctetKeyPair} keys are never turned into Java keys and every EdDSA
 * token would be refused as signed by an unknown key. Java 15 and later verify EdDSA natively,
 * so this class converts the JWK set's {@code OKP} keys itself ({@link OidcKeys} asks it) and
 * verifies with {@link Signature}.
 *
 * <p>Stateless; thread-safe.
 */
final class OidcEdDsa {

  private OidcEdDsa() {}

  /**
   * Whether {@code signature} is {@code key}'s over the first {@code length} bytes of
   * {@code input}; a malformed signature is a wrong one.
   *
   * @throws JOSEException when the JDK cannot verify the key's curve
   */
  static boolean verify(EdECPublicKey key, byte[] input, int length, byte[] signature)
      throws JOSEException {
    try {
      Signature verifier = Signature.getInstance(key.getParams().getName());
      verifier.initVerify(key);
      verifier.update(input, 0, length);
      return verifier.verify(signature);
    } catch (java.security.SignatureException e) {
      return false;
    } catch (GeneralSecurityException e) {
      throw new JOSEException("EdDSA verification unavailable: " + e.getMessage(), e);
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
          .generatePublic(
              new EdECPublicKeySpec(params, new EdECPoint(xOdd, new BigInteger(1, bigEndian))));
    } catch (GeneralSecurityException e) {
      return null;
    }
  }
}
