package dev.inferpam.benchmarks;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.interfaces.RSAPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OAuth 2.0 issuer on the loopback interface, so a benchmark measures token checking and not
 * a network: one RSA 2048 signing key generated at start, its JWKS served by the JDK's own HTTP
 * server (no test-only dependency in the benchmark jar), and access tokens minted on demand.
 *
 * <p>The tokens look like an RFC 9068 access token from a real provider ({@code typ: at+jwt},
 * {@code iss}, {@code aud}, {@code exp}, {@code iat}, {@code nbf}, {@code jti}, groups, scope),
 * so their size and claim count are what the resolver meets in production.
 *
 * <p><b>Thread-safety:</b> serving the JWKS is safe while other threads resolve tokens; minting
 * is safe too (Nimbus signers are thread-safe) but is meant for setup, outside measurement.
 * {@link #close()} stops the server at once.
 */
final class LocalIssuer implements AutoCloseable {

  static final String ISSUER = "https://issuer.bench.example";
  static final String AUDIENCE = "inference";
  static final String KEY_ID = "bench-rsa-2048";
  static final String JWKS_PATH = "/jwks.json";

  private final RSAKey key;
  private final RSASSASigner signer;
  private final HttpServer server;
  private final URI jwksUri;
  private final AtomicInteger jwksFetches = new AtomicInteger();

  private LocalIssuer(RSAKey key, HttpServer server) throws JOSEException {
    this.key = key;
    this.signer = new RSASSASigner(key);
    this.server = server;
    this.jwksUri =
        URI.create(
            "http://"
                + server.getAddress().getAddress().getHostAddress()
                + ":"
                + server.getAddress().getPort()
                + JWKS_PATH);
  }

  /**
   * Generates the key and starts serving its JWKS on {@code 127.0.0.1} at a free port.
   *
   * @throws IOException when no loopback port can be bound
   */
  static LocalIssuer start() throws IOException, JOSEException {
    RSAKey key =
        new RSAKeyGenerator(2048)
            .keyID(KEY_ID)
            .keyUse(KeyUse.SIGNATURE)
            .algorithm(JWSAlgorithm.RS256)
            .generate();
    byte[] jwks = new JWKSet(key.toPublicJWK()).toString().getBytes(StandardCharsets.UTF_8);
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    LocalIssuer issuer = new LocalIssuer(key, server);
    server.createContext(JWKS_PATH, exchange -> issuer.serve(exchange, jwks));
    server.start();
    return issuer;
  }

  private void serve(HttpExchange exchange, byte[] jwks) throws IOException {
    try (exchange) {
      if (!"GET".equals(exchange.getRequestMethod())
          || !JWKS_PATH.equals(exchange.getRequestURI().getPath())) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      jwksFetches.incrementAndGet();
      exchange.getResponseHeaders().set("Content-Type", "application/json");
      exchange.sendResponseHeaders(200, jwks.length);
      try (OutputStream body = exchange.getResponseBody()) {
        body.write(jwks);
      }
    }
  }

  /** This issuer as a policy entry: RS256 only and {@code at+jwt} required, as an operator would pin it. */
  Policy.OidcIssuer policy() {
    return new Policy.OidcIssuer(
        ISSUER, AUDIENCE, jwksUri, List.of("RS256"), "groups", "sub", "at+jwt", null);
  }

  /**
   * Mints an RS256 access token for {@code subject} in groups {@code researchers} and
   * {@code ml-platform}, valid from {@code now} for {@code lifetime}. A distinct {@code jti}
   * makes a distinct token.
   */
  String mint(String subject, String jti, Instant now, Duration lifetime) throws JOSEException {
    JWSHeader header =
        new JWSHeader.Builder(JWSAlgorithm.RS256)
            .keyID(KEY_ID)
            .type(new JOSEObjectType("at+jwt"))
            .build();
    JWTClaimsSet claims =
        new JWTClaimsSet.Builder()
            .issuer(ISSUER)
            .subject(subject)
            .audience(AUDIENCE)
            .issueTime(Date.from(now))
            .notBeforeTime(Date.from(now))
            .expirationTime(Date.from(now.plus(lifetime)))
            .jwtID(jti)
            .claim("client_id", "inference-cli")
            .claim("scope", "openid profile inference")
            .claim("groups", List.of("researchers", "ml-platform"))
            .build();
    SignedJWT jwt = new SignedJWT(header, claims);
    jwt.sign(signer);
    return jwt.serialize();
  }

  RSAPublicKey publicKey() throws JOSEException {
    return key.toRSAPublicKey();
  }

  URI jwksUri() {
    return jwksUri;
  }

  /** How many times the JWKS has been served: a resolver that caches keys asks once. */
  int jwksFetches() {
    return jwksFetches.get();
  }

  @Override
  public void close() {
    server.stop(0);
  }

  @Override
  public String toString() {
    return "LocalIssuer[" + ISSUER + ", jwks " + jwksUri + "]";
  }
}
