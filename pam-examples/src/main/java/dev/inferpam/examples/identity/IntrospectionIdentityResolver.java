package dev.inferpam.examples.identity;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import okhttp3.Credentials;
import okhttp3.FormBody;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * A worked example of a custom {@link IdentityResolver}: <b>opaque</b> OAuth access tokens,
 * checked with the issuer's token introspection endpoint (RFC 7662), as Keycloak, Okta, Ping or
 * Authlete offer it. The policy's own resolvers handle JWT access tokens (verified locally) and
 * service keys; an IdP that hands out opaque tokens needs a call to the IdP instead, which is
 * what this resolver adds:
 *
 * <pre>{@code
 * IdentityResolver introspection = IntrospectionIdentityResolver.builder()
 *     .endpoint(HttpUrl.get("https://idp.example.com/realms/ml/protocol/openid-connect/token/introspect"))
 *     .client("inferpam", System.getenv("INTROSPECTION_CLIENT_SECRET"))
 *     .build();
 * PamEngine engine = PamEngine.builder().policy(policy).identityResolver(introspection).build();
 * }</pre>
 *
 * <h2>Behaviour</h2>
 * <ul>
 *   <li>Looks only at {@code Authorization: Bearer <token>} whose token is not a JWT (no two
 *       dots): anything else is {@link Optional#empty()}, left to the other resolvers.</li>
 *   <li>POSTs {@code token=<token>} with HTTP Basic client authentication; {@code active:true}
 *       gives a principal: subject from {@code sub} (else {@code username}), groups from a
 *       string array claim (default {@code groups}), {@code via} {@value #VIA}, issuer from
 *       {@code iss}. {@code active:false}, no subject, or an {@code exp} in the past is an
 *       {@link AuthenticationException} (401).</li>
 *   <li>Results are cached by the token's SHA-256 (never the token itself) for
 *       {@link Builder#cacheFor} (default 60 s), never past the token's {@code exp}, at most
 *       10,000 entries; inactive answers too, for 10 s, so a flood of bad tokens does not flood
 *       the IdP.</li>
 *   <li>An unreachable or failing endpoint throws {@link IllegalStateException}: the engine
 *       treats that as a failure to identify and answers 401 (fail closed); the message never
 *       holds the token or the client secret.</li>
 * </ul>
 *
 * <p><b>Thread-safety:</b> thread-safe; the OkHttp client and the cache are shared. Calls block
 * on the endpoint only on a cache miss, bounded by the client's timeouts (5 s by default).
 */
public final class IntrospectionIdentityResolver implements IdentityResolver {
  /** The {@link Principal#via()} of principals it resolves. */
  public static final String VIA = "introspection";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration NEGATIVE_CACHE = Duration.ofSeconds(10);

  private final HttpUrl endpoint;
  private final String authorization;
  private final String groupsClaim;
  private final Duration cacheFor;
  private final Clock clock;
  private final OkHttpClient client;
  private final Cache<String, Cached> cache;

  /** A principal or a refusal, and until when it may be reused. */
  private record Cached(Principal principal, String refusal, Instant until) {}

  private IntrospectionIdentityResolver(Builder b) {
    this.endpoint = b.endpoint;
    this.authorization = Credentials.basic(b.clientId, b.clientSecret, StandardCharsets.UTF_8);
    this.groupsClaim = b.groupsClaim;
    this.cacheFor = b.cacheFor;
    this.clock = b.clock;
    this.client =
        b.client != null
            ? b.client
            : new OkHttpClient.Builder()
                .connectTimeout(5, TimeUnit.SECONDS)
                .readTimeout(5, TimeUnit.SECONDS)
                .callTimeout(10, TimeUnit.SECONDS)
                .followRedirects(false)
                .build();
    this.cache = Caffeine.newBuilder().maximumSize(10_000).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  @Override
  public Optional<Principal> resolve(InferenceRequest request) throws AuthenticationException {
    String header = request.header("authorization");
    if (header == null || header.length() < 8 || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return Optional.empty();
    }
    String token = header.substring(7).strip();
    if (token.isEmpty() || token.chars().filter(c -> c == '.').count() == 2)
      return Optional.empty();
    String key = sha256(token);
    Instant now = clock.instant();
    Cached hit = cache.getIfPresent(key);
    if (hit == null || !now.isBefore(hit.until())) {
      hit = introspect(token, now);
      cache.put(key, hit);
    }
    if (hit.refusal() != null) throw new AuthenticationException(hit.refusal());
    return Optional.of(hit.principal());
  }

  private Cached introspect(String token, Instant now) {
    Request call =
        new Request.Builder()
            .url(endpoint)
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .post(
                new FormBody.Builder()
                    .add("token", token)
                    .add("token_type_hint", "access_token")
                    .build())
            .build();
    JsonNode body;
    try (Response response = client.newCall(call).execute()) {
      if (response.code() != 200) {
        throw new IllegalStateException(
            "token introspection answered " + response.code() + " (" + endpoint.host() + ")");
      }
      body = JSON.readTree(response.body().byteStream());
    } catch (IOException e) {
      throw new IllegalStateException(
          "token introspection failed (" + endpoint.host() + "): " + e.getClass().getSimpleName());
    }
    if (body == null || !body.path("active").asBoolean(false)) {
      return new Cached(null, "token is not active", now.plus(NEGATIVE_CACHE));
    }
    String subject = body.path("sub").asText(body.path("username").asText(""));
    if (subject.isBlank())
      return new Cached(null, "token has no subject", now.plus(NEGATIVE_CACHE));
    Instant until = now.plus(cacheFor);
    if (body.path("exp").canConvertToLong()) {
      Instant exp = Instant.ofEpochSecond(body.path("exp").asLong());
      if (!exp.isAfter(now)) return new Cached(null, "token expired", now.plus(NEGATIVE_CACHE));
      if (exp.isBefore(until)) until = exp;
    }
    Set<String> groups = new LinkedHashSet<>();
    for (JsonNode g : body.path(groupsClaim)) {
      if (g.isTextual()) groups.add(g.textValue());
    }
    String issuer = body.path("iss").isTextual() ? body.path("iss").textValue() : null;
    return new Cached(new Principal(subject, groups, VIA, issuer, Map.of()), null, until);
  }

  private static String sha256(String token) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String toString() {
    return "IntrospectionIdentityResolver[" + endpoint.redact() + "]";
  }

  /** Builds an {@link IntrospectionIdentityResolver}; {@code endpoint} and {@code client} are required. */
  public static final class Builder {
    private HttpUrl endpoint;
    private String clientId;
    private String clientSecret;
    private String groupsClaim = "groups";
    private Duration cacheFor = Duration.ofSeconds(60);
    private Clock clock = Clock.systemUTC();
    private OkHttpClient client;

    private Builder() {}

    /** The introspection endpoint; {@code https}, or {@code http} on a loopback address only. */
    public Builder endpoint(HttpUrl endpoint) {
      Objects.requireNonNull(endpoint, "endpoint");
      boolean loopback =
          endpoint.host().equals("127.0.0.1")
              || endpoint.host().equals("localhost")
              || endpoint.host().equals("::1");
      if (!endpoint.isHttps() && !loopback) {
        throw new IllegalArgumentException(
            "endpoint must be https (http only on loopback), was " + endpoint.redact());
      }
      this.endpoint = endpoint;
      return this;
    }

    /** The client credentials inferpam authenticates to the endpoint with (HTTP Basic). */
    public Builder client(String id, String secret) {
      this.clientId = Objects.requireNonNull(id, "id");
      this.clientSecret = Objects.requireNonNull(secret, "secret");
      return this;
    }

    /** The claim holding the groups (a string array); default {@code groups}. */
    public Builder groupsClaim(String claim) {
      this.groupsClaim = Objects.requireNonNull(claim, "claim");
      return this;
    }

    /** How long an active token's answer is reused (never past its {@code exp}); 0 to 1 h. */
    public Builder cacheFor(Duration duration) {
      Objects.requireNonNull(duration, "duration");
      if (duration.isNegative() || duration.compareTo(Duration.ofHours(1)) > 0) {
        throw new IllegalArgumentException("cacheFor must be between 0 and 1h, was " + duration);
      }
      this.cacheFor = duration;
      return this;
    }

    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /** The HTTP client to call the endpoint with (timeouts, TLS, proxy); default 5 s timeouts. */
    public Builder httpClient(OkHttpClient client) {
      this.client = Objects.requireNonNull(client, "client");
      return this;
    }

    /** @throws IllegalStateException when the endpoint or the client credentials are missing */
    public IntrospectionIdentityResolver build() {
      if (endpoint == null) throw new IllegalStateException("endpoint is required");
      if (clientId == null) throw new IllegalStateException("client credentials are required");
      return new IntrospectionIdentityResolver(this);
    }
  }
}
