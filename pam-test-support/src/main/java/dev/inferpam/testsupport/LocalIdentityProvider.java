package dev.inferpam.testsupport;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

/**
 * An OpenID Connect identity provider on 127.0.0.1 and a free port, for tests of token checking:
 * each issuer has its own RSA 2048 key whose public JWK set is served over HTTP, and mints
 * signed tokens with the claims, expiry and {@code kid} a test chooses, or forged ones (the
 * issuer's {@code kid}, signed with a key it never published).
 *
 * <pre>{@code
 * try (LocalIdentityProvider idp = LocalIdentityProvider.start(clock)) {
 *   LocalIdentityProvider.Issuer keycloak = idp.realm("ml", "inference-gateway");
 *   String token = keycloak.token().subject("5b8e").claim("preferred_username", "alice")
 *       .claim("realm_access", Map.of("roles", List.of("ml-engineers"))).sign();
 *   String expired = keycloak.token().expiresIn(Duration.ofMinutes(-5)).sign();
 *   String forged = keycloak.token().forged().sign();
 *   // policy: issuer keycloak.issuer(), jwks-uri keycloak.jwksUri(), audience inference-gateway
 * }
 * }</pre>
 *
 * <p>Served paths: an issuer's JWK set at its {@link Issuer#jwksUri()}, and for a
 * {@link #realm(String, String) realm} the discovery document at
 * {@code /realms/<name>/.well-known/openid-configuration}. Anything else is 404. Served by the
 * JDK's own HTTP server, so it adds no dependency where it is used outside tests.
 *
 * <p>RSA keys are slow to make, so each key id's key is made once per JVM and reused by every
 * provider: a provider's issuers still have distinct keys ({@code key-1}, {@code key-2}, ...), and
 * the forger's key is never published by anyone.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use (Nimbus signers are thread-safe).
 * {@link #close()} stops the server at once.
 */
public final class LocalIdentityProvider implements AutoCloseable {
  /** How long a minted token is valid unless the test says otherwise. */
  public static final Duration DEFAULT_LIFETIME = Duration.ofMinutes(5);

  private final HttpServer server;
  private final Clock clock;
  private final String baseUrl;
  private final Map<String, byte[]> documents = new ConcurrentHashMap<>();
  private final AtomicInteger fetches = new AtomicInteger();
  private final AtomicInteger issuers = new AtomicInteger();

  private LocalIdentityProvider(HttpServer server, Clock clock) {
    this.server = server;
    this.clock = clock;
    this.baseUrl = "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /**
   * Starts the provider on 127.0.0.1 and a free port; tokens take their {@code iat} and default
   * {@code exp} from {@code clock}.
   *
   * @throws UncheckedIOException when no loopback port can be bound
   */
  public static LocalIdentityProvider start(Clock clock) {
    Objects.requireNonNull(clock, "clock");
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 0);
    } catch (IOException e) {
      throw new UncheckedIOException("the identity provider could not start on 127.0.0.1", e);
    }
    LocalIdentityProvider idp = new LocalIdentityProvider(server, clock);
    server.createContext("/", idp::serve);
    server.start();
    return idp;
  }

  /** As {@link #start(Clock)} with the system clock. */
  public static LocalIdentityProvider start() {
    return start(Clock.systemUTC());
  }

  /** {@code http://127.0.0.1:<port>}. */
  public String baseUrl() {
    return baseUrl;
  }

  /**
   * A Keycloak-shaped issuer: {@code <base>/realms/<name>}, keys at
   * {@code /realms/<name>/protocol/openid-connect/certs}, tokens for {@code audience}.
   */
  public Issuer realm(String name, String audience) {
    String path = "/realms/" + name;
    Issuer issuer = issuer(baseUrl + path, path + "/protocol/openid-connect/certs", audience);
    documents.put(
        path + "/.well-known/openid-configuration",
        ("{\"issuer\":"
                + Json.string(issuer.issuer())
                + ",\"jwks_uri\":"
                + Json.string(issuer.jwksUri().toString())
                + "}")
            .getBytes(StandardCharsets.UTF_8));
    return issuer;
  }

  /**
   * An issuer named {@code issuer} (any string, e.g. an Azure AD tenant URL that is not this
   * server) whose keys this server serves at {@code jwksPath}; key ids in the order issuers are
   * made ({@code key-1}, {@code key-2}, ...).
   */
  public Issuer issuer(String issuer, String jwksPath, String audience) {
    if (!jwksPath.startsWith("/"))
      throw new IllegalArgumentException("jwksPath must start with /, was " + jwksPath);
    Issuer created =
        new Issuer(issuer, jwksPath, audience, generate("key-" + issuers.incrementAndGet()));
    created.publish();
    return created;
  }

  /** How many JWK sets this server has served, all issuers together. */
  public int jwksFetches() {
    return fetches.get();
  }

  @Override
  public void close() {
    server.stop(0);
  }

  @Override
  public String toString() {
    return "LocalIdentityProvider[" + baseUrl + "]";
  }

  private void serve(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] body =
          "GET".equals(exchange.getRequestMethod())
              ? documents.get(exchange.getRequestURI().getPath())
              : null;
      if (body == null) {
        exchange.sendResponseHeaders(404, -1);
        return;
      }
      if (!exchange.getRequestURI().getPath().endsWith("openid-configuration"))
        fetches.incrementAndGet();
      exchange.getResponseHeaders().set("Content-Type", "application/json");
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    }
  }

  private static final Map<String, RSAKey> KEYS = new ConcurrentHashMap<>();

  private static RSAKey generate(String kid) {
    return KEYS.computeIfAbsent(kid, LocalIdentityProvider::newKey);
  }

  private static RSAKey newKey(String kid) {
    try {
      return new RSAKeyGenerator(2048)
          .keyID(kid)
          .keyUse(KeyUse.SIGNATURE)
          .algorithm(JWSAlgorithm.RS256)
          .generate();
    } catch (JOSEException e) {
      throw new IllegalStateException("RSA key generation failed", e);
    }
  }

  private static RSAKey forgerKey() {
    return generate("forger");
  }

  /** One issuer: its name, its key and the JWK set served for it. Thread-safe. */
  public final class Issuer {
    private final String issuer;
    private final String jwksPath;
    private final String audience;
    private final RSAKey key;
    private volatile List<JWK> published;

    private Issuer(String issuer, String jwksPath, String audience, RSAKey key) {
      this.issuer = Objects.requireNonNull(issuer, "issuer");
      this.jwksPath = jwksPath;
      this.audience = Objects.requireNonNull(audience, "audience");
      this.key = key;
      this.published = List.of(key.toPublicJWK());
    }

    /** The {@code iss} of its tokens. */
    public String issuer() {
      return issuer;
    }

    /** Where its public keys are served. */
    public URI jwksUri() {
      return URI.create(baseUrl + jwksPath);
    }

    /** The audience its tokens carry unless the test says otherwise. */
    public String audience() {
      return audience;
    }

    /** Its key id ({@code kid}). */
    public String keyId() {
      return key.getKeyID();
    }

    /** Its signing key, private part included. */
    public RSAKey key() {
      return key;
    }

    /**
     * Serves {@code keys} (public parts) as its JWK set instead of its own key alone: a rotation,
     * an extra key, or none at all.
     */
    public Issuer publish(JWK... keys) {
      List<JWK> pub = new ArrayList<>();
      for (JWK k : keys) pub.add(k.toPublicJWK());
      published = List.copyOf(pub);
      publish();
      return this;
    }

    private void publish() {
      documents.put(jwksPath, new JWKSet(published).toString().getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A token of this issuer to fill in: {@code iss}, {@code aud} (its audience), {@code sub}
     * {@code user}, {@code iat} now and {@code exp} {@link #DEFAULT_LIFETIME} from now by the
     * provider's clock; header {@code alg: RS256}, {@code kid}, {@code typ: JWT}.
     */
    public Token token() {
      return new Token(this);
    }

    @Override
    public String toString() {
      return "Issuer[" + issuer + ", jwks " + jwksUri() + ", kid " + keyId() + "]";
    }
  }

  /** A token being made; {@link #sign()} mints it. Not thread-safe; use once. */
  public final class Token {
    private final Issuer issuer;
    private final JWTClaimsSet.Builder claims;
    private Instant issuedAt;
    private Instant expiresAt;
    private String keyId;
    private JOSEObjectType type = JOSEObjectType.JWT;
    private RSAKey signingKey;

    private Token(Issuer issuer) {
      this.issuer = issuer;
      this.issuedAt = clock.instant();
      this.expiresAt = issuedAt.plus(DEFAULT_LIFETIME);
      this.keyId = issuer.keyId();
      this.signingKey = issuer.key;
      this.claims =
          new JWTClaimsSet.Builder()
              .issuer(issuer.issuer)
              .audience(issuer.audience)
              .subject("user");
    }

    public Token subject(String subject) {
      claims.subject(subject);
      return this;
    }

    /** Replaces the audience; several values make {@code aud} an array. */
    public Token audience(String... audiences) {
      claims.audience(List.of(audiences));
      return this;
    }

    /** Replaces the {@code iss} claim (the issuer still signs). */
    public Token issuer(String iss) {
      claims.issuer(iss);
      return this;
    }

    /** Sets claim {@code name}: strings, numbers, booleans, lists and maps of them. */
    public Token claim(String name, Object value) {
      claims.claim(name, value);
      return this;
    }

    public Token issuedAt(Instant at) {
      issuedAt = Objects.requireNonNull(at, "at");
      return this;
    }

    public Token expiresAt(Instant at) {
      expiresAt = at;
      return this;
    }

    /** {@code exp} this long after {@code iat}; negative for a token already expired. */
    public Token expiresIn(Duration lifetime) {
      expiresAt = issuedAt.plus(lifetime);
      return this;
    }

    public Token notBefore(Instant at) {
      claims.notBeforeTime(Date.from(at));
      return this;
    }

    /** The header's {@code typ} (e.g. {@code at+jwt}); {@code null} leaves it out. */
    public Token type(String typ) {
      type = typ == null ? null : new JOSEObjectType(typ);
      return this;
    }

    /** The header's {@code kid}; {@code null} leaves it out. */
    public Token keyId(String kid) {
      keyId = kid;
      return this;
    }

    /** Signs with {@code key} instead of the issuer's key (the header keeps the issuer's {@code kid}). */
    public Token signedBy(RSAKey key) {
      signingKey = Objects.requireNonNull(key, "key");
      return this;
    }

    /** The classic forgery: the issuer's claims and {@code kid}, signed with a key it never published. */
    public Token forged() {
      return signedBy(forgerKey());
    }

    /** Anything else, on the claims builder. */
    public Token claims(UnaryOperator<JWTClaimsSet.Builder> more) {
      more.apply(claims);
      return this;
    }

    /** The signed, compact-serialized token. */
    public String sign() {
      claims.issueTime(Date.from(issuedAt));
      claims.expirationTime(expiresAt == null ? null : Date.from(expiresAt));
      JWSHeader.Builder header = new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(keyId);
      if (type != null) header.type(type);
      SignedJWT jwt = new SignedJWT(header.build(), claims.build());
      try {
        jwt.sign(new RSASSASigner(signingKey));
      } catch (JOSEException e) {
        throw new IllegalStateException("signing failed", e);
      }
      return jwt.serialize();
    }

    @Override
    public String toString() {
      return "Token[" + issuer.issuer + "]";
    }
  }
}
