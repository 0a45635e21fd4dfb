package dev.inferpam.core.internal.identity;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.KeySourceException;
import com.nimbusds.jose.jwk.source.JWKSetBasedJWKSource;
import com.nimbusds.jose.jwk.source.JWKSetParseException;
import com.nimbusds.jose.jwk.source.JWKSetSource;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.jwk.source.RateLimitReachedException;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jose.util.JSONObjectUtils;
import com.nimbusds.jose.util.Resource;
import com.nimbusds.jwt.JWTClaimsSet;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Background;
import dev.inferpam.core.internal.Sha256;
import dev.inferpam.core.internal.policy.PolicyLoader;
import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URI;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.text.ParseException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Identifies callers by OAuth 2.0 / OpenID Connect access tokens (JWTs) from the issuers of
 * {@code identity.oidc}, checked as RFC 8725 and RFC 9068 ask.
 *
 * <p><b>Which requests it takes.</b> Only {@code Authorization: Bearer <token>} whose value is
 * shaped like a JWS or JWE (three or five dot-separated base64url parts). Anything else — no
 * header, another scheme, an opaque value such as a service key — gives {@link Optional#empty()}
 * so that another resolver may try. A JWT-shaped value that fails any check gives an
 * {@link AuthenticationException} whose message says what failed ({@code token expired},
 * {@code wrong audience}, {@code unknown signing key}, ...; see {@code Failure}) and never quotes
 * the token or its claims.
 *
 * <p><b>What a token must be.</b>
 * <ul>
 *   <li>at most {@value #MAX_TOKEN_CHARS} characters, refused before parsing;
 *   <li>signed (JWS): encrypted (JWE), unsigned ({@code alg: none}) and nested tokens are refused;
 *   <li>its unverified {@code iss} picks the issuer, by exact match; the signature must then verify
 *       with a key of that issuer's JWK set, so a token naming issuer A but signed with issuer B's
 *       key fails;
 *   <li>{@code alg} in the issuer's {@code algorithms} (asymmetric only, see
 *       {@link OidcRules#ALGORITHMS}), checked before any key is looked up;
 *   <li>keys come only from the issuer's JWK set ({@code jwks-uri}, or the {@code jwks_uri} of
 *       {@code {issuer}/.well-known/openid-configuration}); the {@code jku}, {@code x5u},
 *       {@code jwk} and {@code x5c} headers of a token are never used to find or fetch a key;
 *   <li>{@code typ} equal to {@code require-type} when set ({@code at+jwt} also accepts
 *       {@code application/at+jwt}, case-insensitively); no {@code crit} header;
 *   <li>{@code iss} exact, {@code aud} containing the audience, {@code exp} present and not passed;
 *       {@code nbf} and {@code iat} not in the future, all with the issuer's clock skew, against
 *       the injected {@link Clock}.
 * </ul>
 *
 * <p><b>What it makes.</b> {@code Principal(subject, groups, via = "oidc", issuer, attributes)}:
 * the subject from {@code subject-claim}, groups from {@code groups-claim} (a string or an array
 * of strings; absent means no groups). Both claims are named by a dotted path into nested objects
 * ({@code realm_access.roles}); a top-level claim whose name itself contains dots (such as
 * Auth0's {@code https://example.com/roles}) is found first. Every other claim except
 * {@code iss}, {@code sub}, {@code aud}, {@code exp}, {@code nbf}, {@code iat} and {@code jti}
 * becomes an attribute, as plain Java values (String, Boolean, Long, Double, unmodifiable List
 * and Map; nulls and structures nested deeper than {@value #MAX_ATTRIBUTE_DEPTH} left out).
 *
 * <p><b>Keys.</b> One Nimbus {@link JWKSourceBuilder} source per issuer, with the defaults of
 * {@code Settings.DEFAULTS}: fetched with connect and read timeouts of 2s, a 5s deadline for a
 * whole fetch, at most 512 KiB, no redirects, at most four fetches per issuer at once (see
 * {@link OidcRetriever}); cached for 5 minutes and refreshed in the background during the last 30
 * seconds; a token with an unknown {@code kid} causes at most one extra fetch per 30 seconds (rate
 * limit); when the endpoint is down, the last keys keep being served for up to an hour. Cache
 * expiry and the rate limit run on the injected clock. Discovery runs lazily on the first token
 * for that issuer (never at construction: the identity provider may be down when the application
 * starts); its {@code issuer} must equal the configured one, and a failed discovery is tried again
 * at most every 30 seconds. Each key of the set is converted, and gets its verifier, once while
 * the set is cached (see {@link OidcKeys}); RS*, and EdDSA (see {@link OidcEdDsa}), are verified
 * by the JDK, PS* and ES* by Nimbus.
 *
 * <p><b>Parsing.</b> A token is parsed once (see {@link OidcToken}); its claims are checked only
 * after its signature verified.
 *
 * <p><b>Token cache.</b> Up to {@code tokenCacheSize} validated tokens (default
 * {@value #DEFAULT_TOKEN_CACHE_SIZE}), keyed by the SHA-256 of the token, so a token is verified
 * once and then costs a hash. An entry is dropped at the token's {@code exp}, and after at most
 * the key cache time (5 minutes), so that a key removed from the JWK set stops working for cached
 * tokens too; {@code exp} and {@code nbf} are checked again on every hit. Refusals are not
 * cached.
 *
 * <p><b>Thread-safety:</b> immutable after construction apart from its caches; safe for
 * concurrent use. In steady state no request waits for the network. When the identity provider
 * stalls, a request waits at most one fetch deadline per fetch it needs — a discovery, a refresh of
 * expired keys, one re-fetch for an unknown {@code kid}: 15s in the worst case with the defaults —
 * and then gets {@code issuer keys unavailable} (or {@code unknown signing key} while older keys
 * are still served).
 *
 * <p><b>Threads and closing.</b> Fetches and background refreshes run on the executor given
 * ({@link Background#executor()}), else on small pools of the resolver's own whose threads (daemons
 * named {@code inferpam-oidc-fetch <issuer>} and {@code inferpam-oidc-keys-<issuer>}, or made by the
 * given thread factory) end when idle. {@link #close()} shuts those pools down and stops the key
 * sources; a given executor is left running. A closed resolver refuses every call with
 * {@link IllegalStateException} {@code "OIDC resolver closed"} (an engine answers it 401, failing
 * closed).
 *
 * <p><b>Bad input:</b> the constructor refuses what {@link PolicyLoader} would refuse, with
 * {@link IllegalArgumentException} naming {@code identity.oidc[i]}.
 */
public final class OidcResolver implements IdentityResolver, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(OidcResolver.class);

  /** Default number of validated tokens kept. */
  public static final int DEFAULT_TOKEN_CACHE_SIZE = 10_000;

  /** Longest bearer value parsed; real access tokens are one to a few KiB. */
  public static final int MAX_TOKEN_CHARS = 16 * 1024;

  /** Attributes nested deeper than this are left out. */
  static final int MAX_ATTRIBUTE_DEPTH = 8;

  /** Registered claims that the principal carries elsewhere or that mean nothing afterwards. */
  private static final Set<String> NOT_ATTRIBUTES =
      Set.of("iss", "sub", "aud", "exp", "nbf", "iat", "jti");

  /**
   * What a refusal says ({@code error_description} of the 401). Fixed texts: they never carry
   * token content.
   */
  static final class Failure {
    static final String EXPIRED = "token expired";
    static final String NOT_YET_VALID = "token not yet valid";
    static final String WRONG_ISSUER = "wrong issuer";
    static final String WRONG_AUDIENCE = "wrong audience";
    static final String UNKNOWN_KEY = "unknown signing key";
    static final String BAD_SIGNATURE = "signature invalid";
    static final String ALGORITHM = "algorithm not allowed";
    static final String WRONG_TYPE = "wrong token type";
    static final String ENCRYPTED = "encrypted tokens are not accepted";
    static final String NESTED = "nested tokens are not accepted";
    static final String CRITICAL = "unsupported critical header";
    static final String MALFORMED = "malformed token";
    static final String TOO_LARGE = "token too large";
    static final String MISSING_EXP = "missing exp";
    static final String MISSING_SUBJECT = "missing subject";
    static final String BAD_GROUPS = "malformed groups claim";
    static final String KEYS_UNAVAILABLE = "issuer keys unavailable";
    static final String TWO_HEADERS = "more than one Authorization header";

    private Failure() {}
  }

  /**
   * How keys and discovery documents are fetched and cached. Package-private: tests shorten the
   * times; users get {@link #DEFAULTS}.
   *
   * @param connectTimeout   per connection attempt (default 2s)
   * @param readTimeout      per read (default 2s)
   * @param fetchDeadline    longest a whole fetch may take (default 5s)
   * @param maxDocumentBytes largest JWK set or discovery document (default 512 KiB)
   * @param keyCacheTtl      how long fetched keys are used before fetching again (default 5m);
   *                         also the longest a validated token is cached
   * @param refreshAhead     how long before expiry the keys are refreshed in the background
   *                         (default 30s)
   * @param refetchInterval  window of the rate limit: at most one fetch for unknown {@code kid}s
   *                         per window (and at most two fetches in all, with a refresh), and
   *                         one discovery attempt (default 30s)
   * @param outageTolerance  how long the last keys are served while the endpoint fails
   *                         (default 1h)
   */
  record Settings(
      Duration connectTimeout,
      Duration readTimeout,
      Duration fetchDeadline,
      int maxDocumentBytes,
      Duration keyCacheTtl,
      Duration refreshAhead,
      Duration refetchInterval,
      Duration outageTolerance) {
    static final Settings DEFAULTS =
        new Settings(
            Duration.ofSeconds(2),
            Duration.ofSeconds(2),
            Duration.ofSeconds(5),
            512 * 1024,
            Duration.ofMinutes(5),
            Duration.ofSeconds(30),
            Duration.ofSeconds(30),
            Duration.ofHours(1));

    Settings {
      Objects.requireNonNull(connectTimeout, "connectTimeout");
      Objects.requireNonNull(readTimeout, "readTimeout");
      Objects.requireNonNull(fetchDeadline, "fetchDeadline");
      Objects.requireNonNull(keyCacheTtl, "keyCacheTtl");
      Objects.requireNonNull(refreshAhead, "refreshAhead");
      Objects.requireNonNull(refetchInterval, "refetchInterval");
      Objects.requireNonNull(outageTolerance, "outageTolerance");
      if (maxDocumentBytes <= 0)
        throw new IllegalArgumentException("maxDocumentBytes must be > 0, was " + maxDocumentBytes);
      // Nimbus's own constraints, said in our terms.
      if (refetchInterval.compareTo(keyCacheTtl) >= 0) {
        throw new IllegalArgumentException("refetchInterval must be shorter than keyCacheTtl");
      }
      if (refreshAhead.plus(waitForRefresh(fetchDeadline)).compareTo(keyCacheTtl) > 0) {
        throw new IllegalArgumentException(
            "refreshAhead + fetchDeadline must not exceed keyCacheTtl");
      }
    }

    /** How long a request waits for another thread's fetch: a little over one fetch. */
    static Duration waitForRefresh(Duration fetchDeadline) {
      return fetchDeadline.plusSeconds(1);
    }
  }

  private final Map<String, Issuer> issuers;
  private final Clock clock;
  private final Settings settings;
  private final Cache<ByteBuffer, Verified> tokens;
  private final LongAdder verifications = new LongAdder();
  private final Background background;
  private final Consumer<String> keyFetchFailed;
  private volatile boolean closed;

  /**
   * A resolver with a cache of {@value #DEFAULT_TOKEN_CACHE_SIZE} validated tokens.
   *
   * @param issuers the trusted issuers; none fetches anything here
   * @param clock   decides expiry of tokens and of cached keys
   * @throws IllegalArgumentException when an issuer is invalid or given twice
   */
  public OidcResolver(List<Policy.OidcIssuer> issuers, Clock clock) {
    this(issuers, clock, DEFAULT_TOKEN_CACHE_SIZE);
  }

  /**
   * @param tokenCacheSize how many validated tokens to keep; 0 verifies every token every time
   * @throws IllegalArgumentException when an issuer is invalid or given twice, or the size is
   *     negative
   */
  public OidcResolver(List<Policy.OidcIssuer> issuers, Clock clock, int tokenCacheSize) {
    this(issuers, clock, tokenCacheSize, Settings.DEFAULTS, Background.DEFAULT);
  }

  /**
   * As {@link #OidcResolver(List, Clock, int)}, with fetches and refreshes on
   * {@code background}'s executor, or on own pools made with its thread factory (see the class
   * comment).
   *
   * @throws IllegalArgumentException as {@link #OidcResolver(List, Clock, int)}
   */
  public OidcResolver(
      List<Policy.OidcIssuer> issuers, Clock clock, int tokenCacheSize, Background background) {
    this(issuers, clock, tokenCacheSize, Settings.DEFAULTS, background);
  }

  OidcResolver(
      List<Policy.OidcIssuer> issuers, Clock clock, int tokenCacheSize, Settings settings) {
    this(issuers, clock, tokenCacheSize, settings, Background.DEFAULT);
  }

  OidcResolver(
      List<Policy.OidcIssuer> issuers,
      Clock clock,
      int tokenCacheSize,
      Settings settings,
      Background background) {
    this(issuers, clock, tokenCacheSize, settings, background, issuer -> {});
  }

  /**
   * As {@link #OidcResolver(List, Clock, int, Background)}, telling {@code keyFetchFailed} the
   * issuer (as the policy names it) of every discovery document or key set that could not be
   * fetched or read, on a request's path or in a background refresh. It must not block or throw.
   */
  public OidcResolver(
      List<Policy.OidcIssuer> issuers,
      Clock clock,
      int tokenCacheSize,
      Background background,
      Consumer<String> keyFetchFailed) {
    this(issuers, clock, tokenCacheSize, Settings.DEFAULTS, background, keyFetchFailed);
  }

  OidcResolver(
      List<Policy.OidcIssuer> issuers,
      Clock clock,
      int tokenCacheSize,
      Settings settings,
      Background background,
      Consumer<String> keyFetchFailed) {
    this.keyFetchFailed = Objects.requireNonNull(keyFetchFailed, "keyFetchFailed");
    Objects.requireNonNull(issuers, "issuers");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.settings = Objects.requireNonNull(settings, "settings");
    this.background = Objects.requireNonNull(background, "background");
    if (tokenCacheSize < 0)
      throw new IllegalArgumentException("tokenCacheSize must be >= 0, was " + tokenCacheSize);
    Map<String, Issuer> byName = new HashMap<>();
    for (int i = 0; i < issuers.size(); i++) {
      Policy.OidcIssuer config = Objects.requireNonNull(issuers.get(i), "issuers[" + i + "]");
      String where = "identity.oidc[" + i + "]";
      validate(config, where);
      // Tokens pick their issuer by "iss"; two entries for one issuer would be ambiguous.
      if (byName.containsKey(config.issuer())) {
        throw new IllegalArgumentException(
            where + ".issuer: duplicate issuer \"" + config.issuer() + "\"");
      }
      byName.put(config.issuer(), new Issuer(config, where));
    }
    this.issuers = Map.copyOf(byName);
    this.tokens =
        tokenCacheSize == 0
            ? null
            : Caffeine.newBuilder()
                .maximumSize(tokenCacheSize)
                .ticker(
                    () ->
                        clock.millis()
                            * 1_000_000L) // expiry on the injected clock, like everything else
                .executor(Runnable::run) // maintenance is small; no pool threads for it
                .expireAfter(new UntilCacheDeadline())
                .build();
  }

  private static void validate(Policy.OidcIssuer c, String where) {
    String problem = OidcRules.urlProblem(c.issuer(), true);
    if (problem != null) throw new IllegalArgumentException(where + ".issuer: " + problem);
    if (c.audience().isBlank())
      throw new IllegalArgumentException(where + ".audience: must not be blank");
    if (c.jwksUri() != null) {
      problem = OidcRules.urlProblem(c.jwksUri().toString(), false);
      if (problem != null) throw new IllegalArgumentException(where + ".jwks-uri: " + problem);
    }
    for (int i = 0; i < c.algorithms().size(); i++) {
      problem = OidcRules.algorithmProblem(c.algorithms().get(i));
      if (problem != null) {
        throw new IllegalArgumentException(
            where
                + ".algorithms["
                + i
                + "]: "
                + problem
                + ", was \""
                + c.algorithms().get(i)
                + "\"");
      }
    }
    problem = OidcRules.claimPathProblem(c.groupsClaim());
    if (problem != null) throw new IllegalArgumentException(where + ".groups-claim: " + problem);
    problem = OidcRules.claimPathProblem(c.subjectClaim());
    if (problem != null) throw new IllegalArgumentException(where + ".subject-claim: " + problem);
    if (c.requireType() != null && (problem = OidcRules.typeProblem(c.requireType())) != null) {
      throw new IllegalArgumentException(where + ".require-type: " + problem);
    }
    problem = OidcRules.clockSkewProblem(c.clockSkew());
    if (problem != null) throw new IllegalArgumentException(where + ".clock-skew: " + problem);
  }

  /**
   * @throws IllegalStateException {@code "OIDC resolver closed"} after {@link #close()}
   */
  @Override
  public Optional<Principal> resolve(InferenceRequest request) throws AuthenticationException {
    if (closed) throw new IllegalStateException("OIDC resolver closed");
    List<String> values = request.headers().get("authorization");
    if (values == null || values.isEmpty()) return Optional.empty();
    String token = BearerTokens.token(values.get(0));
    if (values.size() > 1) {
      // Which one would a server behind us read? Refuse rather than guess, if any is ours.
      for (String v : values) {
        if (BearerTokens.isJwtShaped(BearerTokens.token(v)))
          throw new AuthenticationException(Failure.TWO_HEADERS);
      }
      return Optional.empty();
    }
    Instant now = clock.instant();
    ByteBuffer key = null;
    if (tokens != null && token != null && token.length() <= MAX_TOKEN_CHARS) {
      // A cached token was JWT-shaped when it was verified: the cache is asked first, so the
      // usual request (a token seen before) skips the shape check.
      key = ByteBuffer.wrap(sha256(token));
      Verified hit = tokens.getIfPresent(key);
      if (hit != null && now.isBefore(hit.cacheUntil())) {
        String problem = hit.timeProblem(now);
        if (problem == null) return Optional.of(hit.principal());
        tokens.invalidate(key);
        throw new AuthenticationException(problem);
      }
    }
    if (!BearerTokens.isJwtShaped(token)) return Optional.empty();
    if (token.length() > MAX_TOKEN_CHARS) throw new AuthenticationException(Failure.TOO_LARGE);
    Verified verified = verify(token, now);
    if (tokens != null) tokens.put(key, verified);
    return Optional.of(verified.principal());
  }

  /**
   * Stops every issuer's key source and fetches, shuts down the pools the resolver made (a given
   * executor is left running), forgets the validated tokens, and refuses every later call.
   * Idempotent.
   */
  @Override
  public void close() {
    if (closed) return;
    closed = true;
    issuers.values().forEach(Issuer::close);
    if (tokens != null) tokens.invalidateAll();
  }

  /** How many tokens went through signature verification; for tests of the cache. */
  long verifications() {
    return verifications.sum();
  }

  /** Cached tokens after pending expiry ran; for tests. */
  long cachedTokens() {
    if (tokens == null) return 0;
    tokens.cleanUp();
    return tokens.estimatedSize();
  }

  @Override
  public String toString() {
    return "OidcResolver" + issuers.keySet().stream().sorted().toList();
  }

  // ---------------------------------------------------------------------------------------------
  // Verification

  private Verified verify(String token, Instant now) throws AuthenticationException {
    // Parsed once: header and claims are read from here on, and verified below.
    OidcToken parsed = OidcToken.parse(token);
    JWSHeader header = parsed.header();
    JWTClaimsSet claims = parsed.claims();
    // Cheap checks first, so that a token we would refuse anyway never makes us fetch keys.
    Issuer issuer = claims.getIssuer() == null ? null : issuers.get(claims.getIssuer());
    if (issuer == null) throw new AuthenticationException(Failure.WRONG_ISSUER);
    if (!issuer.algorithms.contains(header.getAlgorithm()))
      throw new AuthenticationException(Failure.ALGORITHM);
    if (header.getCriticalParams() != null && !header.getCriticalParams().isEmpty()) {
      throw new AuthenticationException(Failure.CRITICAL);
    }
    if (!issuer.typeAccepted(header.getType()))
      throw new AuthenticationException(Failure.WRONG_TYPE);

    OidcKeys keys = issuer.keys();
    verifications.increment();
    List<OidcKeys.KeyVerifier> candidates;
    try {
      candidates = keys.select(header);
    } catch (KeySourceException e) {
      // Fetch failures are rate-limited, refusals for the rate limit are not: keep the log quiet.
      if (e instanceof RateLimitReachedException) {
        log.debug(
            "inferpam: keys of OIDC issuer {} unavailable (fetch rate-limited)",
            issuer.config.issuer());
      } else {
        // A fetch that failed was told by the retriever; a key set it could not read is told here.
        if (e instanceof JWKSetParseException) issuer.fetchFailed();
        log.warn(
            "inferpam: keys of OIDC issuer {} unavailable: {}",
            issuer.config.issuer(),
            e.getMessage());
      }
      throw new AuthenticationException(Failure.KEYS_UNAVAILABLE);
    }
    if (candidates.isEmpty()) throw new AuthenticationException(Failure.UNKNOWN_KEY);
    if (!signedByAnyOf(candidates, parsed))
      throw new AuthenticationException(Failure.BAD_SIGNATURE);
    // Claims only after the signature verified, so that they are the issuer's.
    String problem = issuer.claimsProblem(claims, now);
    if (problem != null) throw new AuthenticationException(problem);
    return issuer.verified(claims, now);
  }

  /** Whether a candidate key verifies the signature; the first key that cannot verify the algorithm refuses. */
  private static boolean signedByAnyOf(List<OidcKeys.KeyVerifier> candidates, OidcToken token)
      throws AuthenticationException {
    try {
      for (OidcKeys.KeyVerifier candidate : candidates) {
        if (candidate.verify(token)) return true;
      }
      return false;
    } catch (JOSEException e) {
      // A key in the set that cannot verify this algorithm (e.g. an RSA key too short).
      throw new AuthenticationException(Failure.BAD_SIGNATURE);
    }
  }

  /** A validated token, as cached. */
  private record Verified(
      Principal principal, Instant exp, Instant nbf, Duration skew, Instant cacheUntil) {
    /** Time claims against {@code now}, as {@link Issuer#claimsProblem} checks them. */
    String timeProblem(Instant now) {
      if (!exp.plus(skew).isAfter(now)) return Failure.EXPIRED;
      if (nbf != null && nbf.minus(skew).isAfter(now)) return Failure.NOT_YET_VALID;
      return null;
    }
  }

  /** Entries live until their {@link Verified#cacheUntil}, whatever happens to them. */
  private static final class UntilCacheDeadline implements Expiry<ByteBuffer, Verified> {
    @Override
    public long expireAfterCreate(ByteBuffer key, Verified value, long currentTime) {
      return Math.max(0, value.cacheUntil().toEpochMilli() * 1_000_000L - currentTime);
    }

    @Override
    public long expireAfterUpdate(
        ByteBuffer key, Verified value, long currentTime, long currentDuration) {
      return expireAfterCreate(key, value, currentTime);
    }

    @Override
    public long expireAfterRead(
        ByteBuffer key, Verified value, long currentTime, long currentDuration) {
      return currentDuration;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // One issuer

  private final class Issuer {
    final Policy.OidcIssuer config;
    final String where;
    final Set<JWSAlgorithm> algorithms;
    final int skewSeconds;
    final Duration skew;
    final long skewMillis;

    /** The required type without "application/", lower-cased; null when any type is accepted. */
    final String requiredType;

    /** Its own, so that a slow identity provider cannot use up the fetches of another. */
    final OidcRetriever retriever;

    final ReentrantLock discovery = new ReentrantLock();

    /** Null until discovery succeeded; set once. */
    volatile OidcKeys keys;

    /** Clock millis before which discovery is not tried again; guarded by {@link #discovery}. */
    long nextDiscovery = Long.MIN_VALUE;

    Issuer(Policy.OidcIssuer config, String where) {
      this.config = config;
      this.where = where;
      Set<JWSAlgorithm> algs = new LinkedHashSet<>();
      for (String a : config.algorithms()) algs.add(JWSAlgorithm.parse(a));
      this.algorithms = Set.copyOf(algs);
      // Nimbus counts skew in whole seconds; round up so that "500ms" is not silently 0.
      this.skewSeconds = Math.toIntExact((config.clockSkew().toMillis() + 999) / 1000);
      this.skew = Duration.ofSeconds(skewSeconds);
      this.skewMillis = skewSeconds * 1000L;
      this.requiredType = config.requireType() == null ? null : bareType(config.requireType());
      this.retriever =
          new OidcRetriever(
              settings.connectTimeout(),
              settings.readTimeout(),
              settings.maxDocumentBytes(),
              settings.fetchDeadline(),
              where,
              background,
              this::fetchFailed);
      // Nothing is fetched here: the JWK source fetches on first use.
      if (config.jwksUri() != null) this.keys = keys(config.jwksUri());
    }

    /** RFC 7515, section 4.1.9: "application/" may be left out, and media types ignore case. */
    private static String bareType(String type) {
      String t = type.toLowerCase(Locale.ROOT);
      return t.startsWith("application/") ? t.substring("application/".length()) : t;
    }

    boolean typeAccepted(JOSEObjectType type) {
      if (requiredType == null) return true;
      return type != null && bareType(type.getType()).equals(requiredType);
    }

    /** Tells the engine that this issuer's keys or discovery document could not be had. */
    void fetchFailed() {
      try {
        keyFetchFailed.accept(config.issuer());
      } catch (RuntimeException e) {
        log.warn("inferpam: key fetch listener failed: {}", e.getClass().getName());
      }
    }

    OidcKeys keys() throws AuthenticationException {
      OidcKeys k = keys;
      return k != null ? k : discover();
    }

    /** Fetches the discovery document once; other threads wait at most one fetch for it. */
    private OidcKeys discover() throws AuthenticationException {
      try {
        if (!discovery.tryLock(
            Settings.waitForRefresh(settings.fetchDeadline()).toMillis(), TimeUnit.MILLISECONDS)) {
          throw new AuthenticationException(Failure.KEYS_UNAVAILABLE);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AuthenticationException(Failure.KEYS_UNAVAILABLE);
      }
      try {
        if (keys != null) return keys;
        long now = clock.millis();
        if (now < nextDiscovery) throw new AuthenticationException(Failure.KEYS_UNAVAILABLE);
        // Set before fetching, so that a failing identity provider is asked once per interval.
        nextDiscovery = now + settings.refetchInterval().toMillis();
        URI jwksUri = discoverJwksUri();
        OidcKeys found = keys(jwksUri);
        keys = found;
        if (closed) found.close(); // close() ran meanwhile and did not see these
        return found;
      } finally {
        discovery.unlock();
      }
    }

    private URI discoverJwksUri() throws AuthenticationException {
      String base =
          config.issuer().endsWith("/")
              ? config.issuer().substring(0, config.issuer().length() - 1)
              : config.issuer();
      String problem;
      boolean fetched = false;
      try {
        Resource doc =
            retriever.retrieveResource(new URL(base + "/.well-known/openid-configuration"));
        fetched = true;
        Map<String, Object> json = JSONObjectUtils.parse(doc.getContent());
        Object issuer = json.get("issuer");
        Object jwks = json.get("jwks_uri");
        if (!config.issuer().equals(issuer)) {
          // OpenID Connect Discovery 1.0, section 4.3: otherwise anyone serving this document
          // could point us at their keys.
          problem = "its issuer is not " + config.issuer();
        } else if (!(jwks instanceof String uri)) {
          problem = "it has no jwks_uri";
        } else if ((problem = OidcRules.urlProblem(uri, false)) != null) {
          problem = "its jwks_uri " + problem;
        } else {
          return URI.create(uri);
        }
      } catch (IOException | ParseException | RuntimeException e) {
        problem =
            e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
      }
      // A failed fetch was told by the retriever; a document that cannot be used is told here.
      if (fetched) fetchFailed();
      log.warn(
          "inferpam: OIDC discovery for issuer {} ({}) failed, next try in {}s: {}",
          config.issuer(),
          where,
          settings.refetchInterval().toSeconds(),
          problem);
      throw new AuthenticationException(Failure.KEYS_UNAVAILABLE);
    }

    private OidcKeys keys(URI jwksUri) {
      URL url;
      try {
        url = jwksUri.toURL();
      } catch (MalformedURLException | IllegalArgumentException e) {
        throw new IllegalArgumentException(where + ".jwks-uri: " + OidcRules.URL_RULE);
      }
      // Keys only from the issuer's JWK set, only for its algorithms; never through a token's
      // jku, x5u, jwk or x5c header.
      return new OidcKeys(algorithms, keySource(url), clock, settings.refetchInterval());
    }

    /** Nimbus's chain: URL source, outage tolerance, rate limit, cache with refresh-ahead. */
    private JWKSetSource<SecurityContext> keySource(URL url) {
      JWKSource<SecurityContext> built =
          JWKSourceBuilder.<SecurityContext>create(url, retriever)
              .retrying(false) // a retry would double the time a request waits on a dead endpoint
              .cache(
                  settings.keyCacheTtl().toMillis(),
                  Settings.waitForRefresh(settings.fetchDeadline()).toMillis())
              .refreshAheadCache(
                  settings.refreshAhead().toMillis(), null, refreshExecutor(), true, null, false)
              .rateLimited(settings.refetchInterval().toMillis())
              .outageTolerant(settings.outageTolerance().toMillis())
              .build();
      if (!(built instanceof JWKSetBasedJWKSource<SecurityContext> source)) {
        throw new IllegalStateException("unexpected JWK source " + built.getClass().getName());
      }
      return source.getJWKSetSource();
    }

    /**
     * The given executor; else one thread at most, created when a refresh is due and gone when
     * idle. Nimbus shuts it down when the key source is closed (a given executor only through a
     * view that leaves it running).
     */
    private ExecutorService refreshExecutor() {
      if (background.executor() != null) return Background.borrowed(background.executor());
      return new ThreadPoolExecutor(
          0,
          1,
          30,
          TimeUnit.SECONDS,
          new LinkedBlockingQueue<>(),
          background.threads("inferpam-oidc-keys-" + where));
    }

    /** Stops fetching and closes the key source, with its refresh executor. */
    void close() {
      retriever.close();
      OidcKeys k = keys;
      if (k != null) k.close();
    }

    /**
     * Why the claims of a token whose signature verified are not acceptable, or {@code null}:
     * {@code exp} present, {@code iss} exactly the issuer, {@code aud} containing the audience,
     * then the time window with the clock skew. {@code exp} and {@code nbf} are compared in
     * milliseconds exactly as Nimbus's {@code DefaultJWTClaimsVerifier} did ({@code exp + skew}
     * strictly after now, {@code nbf - skew} strictly before now); {@code iat} may not be later
     * than now plus the skew.
     */
    String claimsProblem(JWTClaimsSet claims, Instant now) {
      Date exp = claims.getExpirationTime();
      if (exp == null) return Failure.MISSING_EXP;
      if (!config.issuer().equals(claims.getIssuer())) return Failure.WRONG_ISSUER;
      List<String> aud = claims.getAudience();
      if (aud == null || !aud.contains(config.audience())) return Failure.WRONG_AUDIENCE;
      long nowMillis = now.toEpochMilli();
      if (exp.getTime() + skewMillis <= nowMillis) return Failure.EXPIRED;
      Date nbf = claims.getNotBeforeTime();
      if (nbf != null && nbf.getTime() - skewMillis >= nowMillis) return Failure.NOT_YET_VALID;
      Date iat = claims.getIssueTime();
      if (iat != null && iat.toInstant().isAfter(now.plus(skew))) return Failure.NOT_YET_VALID;
      return null;
    }

    Verified verified(JWTClaimsSet claims, Instant now) throws AuthenticationException {
      Map<String, Object> all = claims.getClaims();
      if (!(claim(all, config.subjectClaim()) instanceof String subject) || subject.isBlank()) {
        throw new AuthenticationException(Failure.MISSING_SUBJECT);
      }
      // Immutable already, so that the principal need not copy them.
      Set<String> groups = groups(claim(all, config.groupsClaim()));
      Principal principal =
          new Principal(subject, groups, Principal.VIA_OIDC, config.issuer(), attributes(all));
      Instant exp = claims.getExpirationTime().toInstant();
      Instant nbf =
          claims.getNotBeforeTime() == null ? null : claims.getNotBeforeTime().toInstant();
      Instant keysLimit = now.plus(settings.keyCacheTtl());
      return new Verified(principal, exp, nbf, skew, exp.isBefore(keysLimit) ? exp : keysLimit);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Claims and shapes

  /** A claim by exact name, else by dotted path into nested objects; null when absent. */
  static Object claim(Map<String, Object> claims, String path) {
    if (claims.containsKey(path)) return claims.get(path);
    Object node = claims;
    for (String part : path.split("\\.")) {
      if (!(node instanceof Map<?, ?> map)) return null;
      node = map.get(part);
    }
    return node;
  }

  /** Groups from a string or an array of strings; anything else is refused, not guessed at. Immutable. */
  private static Set<String> groups(Object claim) throws AuthenticationException {
    if (claim == null) return Set.of();
    if (claim instanceof String s) return s.isBlank() ? Set.of() : Set.of(s);
    if (!(claim instanceof List<?> list)) throw new AuthenticationException(Failure.BAD_GROUPS);
    List<String> out = new ArrayList<>(list.size());
    for (Object g : list) {
      if (!(g instanceof String s)) throw new AuthenticationException(Failure.BAD_GROUPS);
      if (!s.isBlank()) out.add(s);
    }
    return Set.copyOf(out);
  }

  /** Every claim except {@link #NOT_ATTRIBUTES}, as plain values; null values left out. Immutable. */
  private static Map<String, Object> attributes(Map<String, Object> claims) {
    List<Map.Entry<String, Object>> out = new ArrayList<>(claims.size());
    for (Map.Entry<String, Object> e : claims.entrySet()) {
      if (NOT_ATTRIBUTES.contains(e.getKey())) continue;
      Object value = plain(e.getValue(), 0);
      if (value != null) out.add(Map.entry(e.getKey(), value));
    }
    @SuppressWarnings({"unchecked", "rawtypes"})
    Map.Entry<String, Object>[] entries = out.toArray(new Map.Entry[0]);
    return Map.ofEntries(entries);
  }

  /** A claim value as plain, unmodifiable Java values; null for nulls and too-deep structures. */
  private static Object plain(Object value, int depth) {
    if (value == null || depth > MAX_ATTRIBUTE_DEPTH) return null;
    if (value instanceof String
        || value instanceof Boolean
        || value instanceof Long
        || value instanceof Double) {
      return value;
    }
    if (value instanceof Integer || value instanceof Short || value instanceof Byte)
      return ((Number) value).longValue();
    if (value instanceof Float f) return f.doubleValue();
    if (value instanceof java.math.BigInteger b)
      return b.bitLength() < 64 ? (Object) b.longValue() : b.doubleValue();
    if (value instanceof Number n) return n.doubleValue();
    if (value instanceof Date d) return d.toInstant().getEpochSecond();
    if (value instanceof Map<?, ?> map) {
      Map<String, Object> out = new LinkedHashMap<>();
      for (Map.Entry<?, ?> e : map.entrySet()) {
        Object v = plain(e.getValue(), depth + 1);
        if (v != null) out.put(String.valueOf(e.getKey()), v);
      }
      return Collections.unmodifiableMap(out);
    }
    if (value instanceof List<?> list) {
      List<Object> out = new ArrayList<>(list.size());
      for (Object o : list) {
        Object v = plain(o, depth + 1);
        if (v != null) out.add(v);
      }
      return Collections.unmodifiableList(out);
    }
    return value.toString();
  }

  private static byte[] sha256(String token) {
    return Sha256.of(token.getBytes(StandardCharsets.UTF_8));
  }
}
