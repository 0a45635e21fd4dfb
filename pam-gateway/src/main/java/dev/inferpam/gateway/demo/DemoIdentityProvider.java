package dev.inferpam.gateway.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.JWKGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A tiny OpenID Connect-style issuer for the demo, on 127.0.0.1 and a free port. It serves what
 * a relying party such as the gateway reads:
 *
 * <ul>
 *   <li>{@code GET /.well-known/openid-configuration}: the discovery document, with
 *       {@code issuer} (this server's base URL, {@link #issuer()}) and {@code jwks_uri};
 *   <li>{@code GET /jwks.json}: the JWK set, one public RSA 2048 key with its {@code kid},
 *       {@code use: sig} and {@code alg: RS256}.
 * </ul>
 *
 * <p>It has no login and no token endpoint: the demo "signs in" a user by calling
 * {@link #accessToken(String, String)} in process, which mints an RFC 9068 access token
 * ({@code typ: at+jwt}, RS256) with {@code iss}, {@code sub}, {@code aud}, {@code exp}
 * ({@value #TOKEN_MINUTES} minutes), {@code iat}, {@code jti}, {@code client_id}, {@code scope}
 * and a {@code groups} claim for one of the {@link #USERS}. {@link #forgedToken(String, String)}
 * makes the classic forgery: the same claims and header, the issuer's {@code kid}, but signed
 * with a key pair the issuer never published.
 *
 * <p>The signing key is generated at start and lives only in memory, so tokens of one run are
 * worthless in the next. Uses the JDK's {@code com.sun.net.httpserver} on daemon threads,
 * loopback only. Not for production. <b>Thread-safety:</b> safe for concurrent use.
 */
public final class DemoIdentityProvider implements AutoCloseable {

  /** A demo user: the subject of its tokens and its groups. */
  public record User(String subject, List<String> groups) {
    public User {
      Objects.requireNonNull(subject, "subject");
      groups = List.copyOf(groups);
    }
  }

  /** The users this issuer mints tokens for, by subject. */
  public static final Map<String, User> USERS =
      Map.of(
          "carol", new User("carol", List.of("ml-engineers")), // a data scientist
          "dave", new User("dave", List.of("ci")), // runs the evaluation pipelines
          "erin", new User("erin", List.of("security-oncall"))); // on call for security

  /** How long a minted token is valid. */
  public static final int TOKEN_MINUTES = 10;

  /** The {@code client_id} of minted tokens: the application the user signed in to. */
  public static final String CLIENT_ID = "inferpam-demo-cli";

  /** Where the JWK set is served. */
  static final String JWKS_PATH = "/jwks.json";

  static final String DISCOVERY_PATH = "/.well-known/openid-configuration";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final LoopbackHttp http;
  private final Clock clock;
  private final RSAKey signingKey;
  private final List<String> served = new CopyOnWriteArrayList<>();

  /** Another party's key pair under the issuer's {@code kid}; made on first use. */
  private RSAKey forgerKey;

  private final ReentrantLock forgerLock = new ReentrantLock();

  private DemoIdentityProvider(LoopbackHttp http, Clock clock, RSAKey signingKey) {
    this.http = http;
    this.clock = clock;
    this.signingKey = signingKey;
  }

  /** Starts the issuer on 127.0.0.1 and a free port, with a new RSA 2048 key and the system clock. */
  public static DemoIdentityProvider start() throws IOException {
    return start(Clock.systemUTC());
  }

  /**
   * As {@link #start()}, with {@code clock} for the tokens' {@code iat} and {@code exp}.
   *
   * @throws IOException when the server cannot start or the key cannot be generated
   */
  public static DemoIdentityProvider start(Clock clock) throws IOException {
    Objects.requireNonNull(clock, "clock");
    RSAKey key = generate(null);
    LoopbackHttp http = LoopbackHttp.bind("demo-idp");
    DemoIdentityProvider idp = new DemoIdentityProvider(http, clock, key);
    http.serve(idp::handle);
    return idp;
  }

  /** The issuer, e.g. {@code http://127.0.0.1:54321}: the {@code iss} of its tokens. */
  public String issuer() {
    return http.baseUrl();
  }

  /** Where the JWK set is. */
  public URI jwksUri() {
    return URI.create(issuer() + JWKS_PATH);
  }

  /** The {@code kid} of the signing key (its RFC 7638 thumbprint). */
  public String keyId() {
    return signingKey.getKeyID();
  }

  /** The JWK set as served: the public key only. */
  public JWKSet publicKeys() {
    return new JWKSet(signingKey.toPublicJWK());
  }

  /** The paths served so far, in order (discovery and JWK set fetches). */
  public List<String> served() {
    return List.copyOf(served);
  }

  /**
   * A signed access token for the demo user {@code subject}.
   *
   * @param audience the {@code aud}: the gateway's {@code identity.oidc[].audience}
   * @throws IllegalArgumentException when {@code subject} is not one of {@link #USERS}
   */
  public String accessToken(String subject, String audience) {
    return sign(claims(subject, audience), signingKey);
  }

  /**
   * What a forger would present: an access token with exactly the claims and header
   * {@link #accessToken} would give, including the issuer's {@code kid}, signed with a key pair
   * of the forger's own. A relying party that verifies signatures with the issuer's published
   * key refuses it.
   */
  public String forgedToken(String subject, String audience) {
    return sign(claims(subject, audience), forgerKey());
  }

  @Override
  public void close() {
    http.close();
  }

  private RSAKey forgerKey() {
    forgerLock.lock();
    try {
      if (forgerKey == null) forgerKey = generate(signingKey.getKeyID());
      return forgerKey;
    } catch (IOException e) {
      throw new IllegalStateException(e.getMessage(), e);
    } finally {
      forgerLock.unlock();
    }
  }

  /** An RSA 2048 signing key; its {@code kid} is {@code kid}, or its thumbprint when null. */
  private static RSAKey generate(String kid) throws IOException {
    JWKGenerator<RSAKey> generator =
        new RSAKeyGenerator(2048).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.RS256);
    generator = kid == null ? generator.keyIDFromThumbprint(true) : generator.keyID(kid);
    try {
      return generator.generate();
    } catch (JOSEException e) {
      throw new IOException(
          "cannot generate the demo identity provider's key: " + e.getMessage(), e);
    }
  }

  private JWTClaimsSet claims(String subject, String audience) {
    Objects.requireNonNull(audience, "audience");
    User user = USERS.get(Objects.requireNonNull(subject, "subject"));
    if (user == null) throw new IllegalArgumentException("not a demo user: " + subject);
    // Whole seconds, as JWT times are.
    Instant now = Instant.ofEpochSecond(clock.instant().getEpochSecond());
    return new JWTClaimsSet.Builder()
        .issuer(issuer())
        .subject(user.subject())
        .audience(audience)
        .issueTime(Date.from(now))
        .expirationTime(Date.from(now.plus(Duration.ofMinutes(TOKEN_MINUTES))))
        .jwtID(UUID.randomUUID().toString())
        .claim("client_id", CLIENT_ID)
        .claim("scope", "openid inference")
        .claim("groups", user.groups())
        .build();
  }

  /** RS256 with {@code typ: at+jwt} (RFC 9068) and the key's {@code kid}. */
  private static String sign(JWTClaimsSet claims, RSAKey key) {
    JWSHeader header =
        new JWSHeader.Builder(JWSAlgorithm.RS256)
            .type(new JOSEObjectType("at+jwt"))
            .keyID(key.getKeyID())
            .build();
    SignedJWT jwt = new SignedJWT(header, claims);
    try {
      jwt.sign(new RSASSASigner(key));
    } catch (JOSEException e) {
      throw new IllegalStateException("cannot sign a demo token: " + e.getMessage(), e);
    }
    return jwt.serialize();
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      try (InputStream in = ex.getRequestBody()) {
        in.readAllBytes();
      }
      String path = ex.getRequestURI().getRawPath();
      if (!"GET".equals(ex.getRequestMethod())) {
        ex.getResponseHeaders().set("Allow", "GET");
        send(ex, 405, error("method_not_allowed"));
        return;
      }
      switch (path) {
        case DISCOVERY_PATH -> {
          served.add(path);
          send(ex, 200, discovery());
        }
        case JWKS_PATH -> {
          served.add(path);
          // Public keys only: toPublicJWK() drops the private parts.
          send(ex, 200, publicKeys().toString(true));
        }
        default -> send(ex, 404, error("not_found"));
      }
    }
  }

  private String discovery() {
    ObjectNode doc =
        JSON.createObjectNode().put("issuer", issuer()).put("jwks_uri", jwksUri().toString());
    doc.putArray("id_token_signing_alg_values_supported").add("RS256");
    doc.putArray("response_types_supported").add("code");
    doc.putArray("subject_types_supported").add("public");
    doc.putArray("claims_supported").add("sub").add("groups");
    return doc.toString();
  }

  private static String error(String code) {
    return JSON.createObjectNode().put("error", code).toString();
  }

  private static void send(HttpExchange ex, int status, String json) throws IOException {
    byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    if (status == 200) ex.getResponseHeaders().set("Cache-Control", "public, max-age=300");
    ex.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }
}
