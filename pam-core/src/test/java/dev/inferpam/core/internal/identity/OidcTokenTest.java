package dev.inferpam.core.internal.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jose.EncryptionMethod;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWEAlgorithm;
import com.nimbusds.jose.JWEHeader;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.RSAEncrypter;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jwt.EncryptedJWT;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.PlainJWT;
import com.nimbusds.jwt.SignedJWT;
import dev.inferpam.api.AuthenticationException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link OidcToken}: one parse, the same header, claims and signed bytes Nimbus finds, the same refusals. */
class OidcTokenTest {
  static RSAKey rsa;

  @BeforeAll
  static void key() throws Exception {
    rsa = new RSAKeyGenerator(2048).keyID("rsa-1").generate();
  }

  static JWTClaimsSet claims() {
    return new JWTClaimsSet.Builder()
        .issuer("https://idp.example.com")
        .audience(List.of("inference", "account"))
        .subject("alice")
        .expirationTime(Date.from(Instant.parse("2026-06-01T13:00:00Z")))
        .claim("groups", List.of("a", "b"))
        .claim("nested", Map.of("n", 5))
        .claim("name", "Ålice ☃")
        .build();
  }

  static String sign(JWSHeader header, JWTClaimsSet claims) throws Exception {
    SignedJWT jwt = new SignedJWT(header, claims);
    jwt.sign(new RSASSASigner(rsa));
    return jwt.serialize();
  }

  /** Signs {@code header.payload} as given, for headers and payloads Nimbus would not produce. */
  static String signRaw(String headerJson, String payload) throws Exception {
    String input = Base64URL.encode(headerJson.getBytes(StandardCharsets.UTF_8)) + "." + payload;
    java.security.Signature s = java.security.Signature.getInstance("SHA256withRSA");
    s.initSign(rsa.toPrivateKey());
    s.update(input.getBytes(StandardCharsets.US_ASCII));
    return input + "." + Base64URL.encode(s.sign());
  }

  /** {@code part} and a character more than whole bytes: its length is 1 modulo 4. */
  static String dangling(String part) {
    StringBuilder s = new StringBuilder(part).append('A');
    while (s.length() % 4 != 1) s.append('A');
    return s.toString();
  }

  static String refusal(String token) {
    try {
      OidcToken.parse(token);
    } catch (AuthenticationException e) {
      return e.getMessage();
    }
    throw new AssertionError("parsed");
  }

  @Test
  void findsWhatNimbusFinds() throws Exception {
    String serialized =
        sign(
            new JWSHeader.Builder(JWSAlgorithm.RS256)
                .keyID("rsa-1")
                .type(new JOSEObjectType("at+jwt"))
                .build(),
            claims());
    SignedJWT nimbus = SignedJWT.parse(serialized);

    OidcToken token = OidcToken.parse(serialized);

    assertThat(token.header().toJSONObject()).isEqualTo(nimbus.getHeader().toJSONObject());
    assertThat(token.header().toBase64URL()).isEqualTo(nimbus.getHeader().toBase64URL());
    assertThat(token.claims().toJSONObject()).isEqualTo(nimbus.getJWTClaimsSet().toJSONObject());
    assertThat(token.claims().getClaim("name")).isEqualTo("Ålice ☃");
    assertThat(token.signingInput()).isEqualTo(nimbus.getSigningInput());
    assertThat(token.signingInputLength()).isEqualTo(nimbus.getSigningInput().length);
    assertThat(token.signature()).isEqualTo(nimbus.getSignature().decode());
    assertThat(token.signatureBase64()).isEqualTo(nimbus.getSignature());
    assertThat(token.toString())
        .isEqualTo("OidcToken[RS256]")
        .doesNotContain(serialized.substring(0, 20));
  }

  @Test
  void refusesUnsignedEncryptedAndNestedTokens() throws Exception {
    assertThat(refusal(new PlainJWT(claims()).serialize())).isEqualTo("algorithm not allowed");

    EncryptedJWT jwe =
        new EncryptedJWT(
            new JWEHeader(JWEAlgorithm.RSA_OAEP_256, EncryptionMethod.A256GCM), claims());
    jwe.encrypt(new RSAEncrypter(rsa.toRSAPublicKey()));
    assertThat(refusal(jwe.serialize())).isEqualTo("encrypted tokens are not accepted");
    // A JWE header in a three-part token, and five parts that are no JWE.
    String[] parts = jwe.serialize().split("\\.");
    assertThat(refusal(parts[0] + "." + parts[1] + "." + parts[2])).isEqualTo("malformed token");
    assertThat(refusal("a.b.c.d.e")).isEqualTo("malformed token");
    String jws = sign(new JWSHeader.Builder(JWSAlgorithm.RS256).build(), claims());
    assertThat(refusal(jws + ".a.b")).isEqualTo("malformed token");

    JWSObject nested =
        new JWSObject(
            new JWSHeader.Builder(JWSAlgorithm.RS256).contentType("JWT").build(), new Payload(jws));
    nested.sign(new RSASSASigner(rsa));
    assertThat(refusal(nested.serialize())).isEqualTo("nested tokens are not accepted");
  }

  @Test
  void refusesMalformedParts() throws Exception {
    String good = sign(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID("rsa-1").build(), claims());
    String[] p = good.split("\\.");

    assertThat(refusal(p[0] + "." + p[1] + ".")).as("empty signature").isEqualTo("malformed token");
    assertThat(refusal(p[0] + "." + p[1] + "." + dangling(p[2])))
        .as("dangling base64url character")
        .isEqualTo("malformed token");
    assertThat(refusal(dangling(p[0]) + "." + p[1] + "." + p[2])).isEqualTo("malformed token");
    assertThat(refusal(p[0] + "." + dangling(p[1]) + "." + p[2])).isEqualTo("malformed token");
    assertThat(refusal(Base64URL.encode("not json") + "." + p[1] + "." + p[2]))
        .isEqualTo("malformed token");
    assertThat(refusal(Base64URL.encode("{\"kid\":\"rsa-1\"}") + "." + p[1] + "." + p[2]))
        .as("no alg")
        .isEqualTo("malformed token");
    assertThat(refusal(Base64URL.encode("{\"alg\":5}") + "." + p[1] + "." + p[2]))
        .isEqualTo("malformed token");
    assertThat(refusal(p[0] + "." + Base64URL.encode("[1,2]") + "." + p[2]))
        .isEqualTo("malformed token");
    assertThat(refusal(p[0] + "." + Base64URL.encode("{\"exp\":\"soon\"}") + "." + p[2]))
        .as("exp not a number")
        .isEqualTo("malformed token");
    assertThat(refusal(p[0] + "." + Base64URL.encode("{\"sub\":{\"a\":1}}") + "." + p[2]))
        .isEqualTo("malformed token");
    assertThat(refusal("garbage.garbage.garbage")).isEqualTo("malformed token");
  }

  @Test
  void refusesAnUnencodedPayload() throws Exception {
    // RFC 7797: with b64 false the payload is signed as is; it needs crit, which is refused anyway.
    String payload = Base64URL.encode(claims().toString()).toString();
    String token = signRaw("{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"b64\":false}", payload);
    assertThat(refusal(token)).isEqualTo("malformed token");
    String withCrit =
        signRaw("{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"b64\":false,\"crit\":[\"b64\"]}", payload);
    assertThat(refusal(withCrit)).isEqualTo("malformed token");
  }

  @Test
  void keepsTheCriticalHeaderForTheResolverToRefuse() throws Exception {
    String token =
        sign(
            new JWSHeader.Builder(JWSAlgorithm.RS256)
                .criticalParams(java.util.Set.of("policy"))
                .customParam("policy", "x")
                .build(),
            claims());
    assertThat(OidcToken.parse(token).header().getCriticalParams()).containsExactly("policy");
  }

  @Test
  void refusesAHeaderThatIsNotJsonObjectOrHasNoDot() {
    assertThatThrownBy(() -> OidcToken.parse("abc"))
        .isInstanceOf(AuthenticationException.class)
        .hasMessage("malformed token");
    assertThatThrownBy(() -> OidcToken.parse("abc.def"))
        .isInstanceOf(AuthenticationException.class)
        .hasMessage("malformed token");
  }
}
