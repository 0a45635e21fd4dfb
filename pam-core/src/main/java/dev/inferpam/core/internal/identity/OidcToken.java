package dev.inferpam.core.internal.identity;

import com.nimbusds.jose.Algorithm;
import com.nimbusds.jose.Header;
import com.nimbusds.jose.JWEAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jose.util.JSONObjectUtils;
import com.nimbusds.jwt.EncryptedJWT;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.JWTParser;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.core.internal.identity.OidcResolver.Failure;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.text.ParseException;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;

/**
 * A compact JWS access token taken apart once for {@link OidcResolver}: its header and claims
 * parsed by Nimbus ({@link JWSHeader#parse(Map, Base64URL)}, {@link JWTClaimsSet#parse(Map)}) from
 * one JSON parse each, and its signing input and signature kept as bytes for the verifier.
 *
 * <p>What Nimbus's {@code JWTParser} and {@code SignedJWT} did before, minus their repeated work
 * (the header was parsed twice, the signature decoded by a slow base64 codec on every verify):
 * <ul>
 *   <li>five parts: a JWE is refused as encrypted, anything else as malformed;
 *   <li>{@code alg: none} is refused as an algorithm never allowed; a JWE algorithm in three
 *       parts, a missing {@code alg}, a header Nimbus refuses, an empty signature and undecodable
 *       base64url are malformed;
 *   <li>{@code cty: JWT} (a nested token) is refused before the payload is read;
 *   <li>{@code b64: false} (RFC 7797 unencoded payload) is refused as malformed: it needs a
 *       {@code crit} header, which is refused anyway, and would change what was signed.
 * </ul>
 * Base64url is decoded strictly by the JDK (a part whose length is 1 modulo 4 is malformed,
 * where Nimbus ignored the dangling character); the alphabet was checked by
 * {@link BearerTokens#isJwtShaped} before.
 *
 * <p>Nothing here is verified: header and claims are the sender's until a key of the issuer
 * verifies {@link #signature()} over {@link #signingInput()}. Immutable; thread-safe.
 */
final class OidcToken {
  private static final Base64.Decoder BASE64URL = Base64.getUrlDecoder();

  private final String token;

  /** The token's ASCII bytes; the signing input is its first {@link #signingInputLength} bytes. */
  private final byte[] bytes;

  private final int signingInputLength;
  private final JWSHeader header;
  private final JWTClaimsSet claims;
  private final byte[] signature;

  private OidcToken(
      String token,
      byte[] bytes,
      int signingInputLength,
      JWSHeader header,
      JWTClaimsSet claims,
      byte[] signature) {
    this.token = token;
    this.bytes = bytes;
    this.signingInputLength = signingInputLength;
    this.header = header;
    this.claims = claims;
    this.signature = signature;
  }

  /**
   * Takes {@code token} apart.
   *
   * @param token a value {@link BearerTokens#isJwtShaped} accepted: three or five parts of
   *     base64url characters
   * @throws AuthenticationException with {@link Failure#MALFORMED}, {@link Failure#ENCRYPTED},
   *     {@link Failure#ALGORITHM} ({@code none}) or {@link Failure#NESTED}
   */
  static OidcToken parse(String token) throws AuthenticationException {
    int firstDot = token.indexOf('.');
    int lastDot = token.lastIndexOf('.');
    int secondDot = token.indexOf('.', firstDot + 1);
    if (firstDot <= 0 || secondDot < 0) throw new AuthenticationException(Failure.MALFORMED);
    if (secondDot != lastDot) throw refusalOfFiveParts(token);

    byte[] bytes = token.getBytes(StandardCharsets.US_ASCII);
    JWSHeader header;
    try {
      Map<String, Object> json = JSONObjectUtils.parse(utf8(decode(bytes, 0, firstDot)));
      Algorithm alg = Header.parseAlgorithm(json);
      if (Algorithm.NONE.equals(alg)) throw new AuthenticationException(Failure.ALGORITHM);
      // A JWE header in three parts: Nimbus would have failed to parse it as a JWE.
      if (alg instanceof JWEAlgorithm) throw new AuthenticationException(Failure.MALFORMED);
      header = JWSHeader.parse(json, new Base64URL(token.substring(0, firstDot)));
    } catch (ParseException | RuntimeException e) {
      throw new AuthenticationException(Failure.MALFORMED);
    }
    if (lastDot == token.length() - 1 || !header.isBase64URLEncodePayload()) {
      throw new AuthenticationException(Failure.MALFORMED);
    }
    // A signed JWT around another JWT (RFC 7519, section 5.2): whose claims would count?
    if (header.getContentType() != null && header.getContentType().equalsIgnoreCase("JWT")) {
      throw new AuthenticationException(Failure.NESTED);
    }
    JWTClaimsSet claims;
    byte[] signature;
    try {
      claims =
          JWTClaimsSet.parse(
              JSONObjectUtils.parse(utf8(decode(bytes, firstDot + 1, lastDot - firstDot - 1))));
      signature = array(decode(bytes, lastDot + 1, bytes.length - lastDot - 1));
    } catch (ParseException | RuntimeException e) {
      throw new AuthenticationException(Failure.MALFORMED);
    }
    return new OidcToken(token, bytes, lastDot, header, claims, signature);
  }

  /** Encrypted when Nimbus parses it as a JWE, else malformed; never signed (that needs three parts). */
  private static AuthenticationException refusalOfFiveParts(String token) {
    try {
      if (JWTParser.parse(token) instanceof EncryptedJWT)
        return new AuthenticationException(Failure.ENCRYPTED);
    } catch (ParseException | RuntimeException e) {
      // malformed
    }
    return new AuthenticationException(Failure.MALFORMED);
  }

  private static ByteBuffer decode(byte[] bytes, int offset, int length) {
    return BASE64URL.decode(ByteBuffer.wrap(bytes, offset, length));
  }

  private static String utf8(ByteBuffer b) {
    return new String(
        b.array(), b.arrayOffset() + b.position(), b.remaining(), StandardCharsets.UTF_8);
  }

  private static byte[] array(ByteBuffer b) {
    byte[] a = b.array();
    if (b.arrayOffset() == 0 && b.position() == 0 && b.remaining() == a.length) return a;
    return Arrays.copyOfRange(a, b.arrayOffset() + b.position(), b.arrayOffset() + b.limit());
  }

  /** The protected header, unverified until a key verified the signature. */
  JWSHeader header() {
    return header;
  }

  /** The claims, unverified until a key verified the signature. */
  JWTClaimsSet claims() {
    return claims;
  }

  /** The token's ASCII bytes, of which the first {@link #signingInputLength()} are signed. */
  byte[] bytes() {
    return bytes;
  }

  /** Length of {@code header.payload}, what the signature covers. */
  int signingInputLength() {
    return signingInputLength;
  }

  /** {@code header.payload} as ASCII bytes: a copy, for verifiers that want an array of their own. */
  byte[] signingInput() {
    return Arrays.copyOf(bytes, signingInputLength);
  }

  /** The decoded signature; callers must not modify it. */
  byte[] signature() {
    return signature;
  }

  /** The signature as Nimbus verifiers take it. */
  Base64URL signatureBase64() {
    return new Base64URL(token.substring(signingInputLength + 1));
  }

  /** Never the token: it is a credential. */
  @Override
  public String toString() {
    return "OidcToken[" + header.getAlgorithm() + "]";
  }
}
