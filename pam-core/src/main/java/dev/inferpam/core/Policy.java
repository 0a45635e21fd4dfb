package dev.inferpam.core;

import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.core.internal.policy.PolicyLoader;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A loaded policy file (see {@code docs/policy.md}). Immutable and thread-safe.
 *
 * <p>Load with {@link #load(Path)} (YAML or JSON by file extension; {@code .json} is JSON,
 * anything else YAML) or {@link #parse(String)}; both throw {@link PolicyException} naming the
 * key path and bad value. Absent sections are empty and add no rule.
 */
public record Policy(
    int version,
    RequestSettings request,
    Identity identity,
    Upstream upstream,
    List<Entitlement> entitlements,
    List<AllowRule> allow,
    Block block,
    Parameters parameters,
    Recording recording,
    Masking masking,
    Approval approval,
    List<Limit> limits,
    State state) {

  /** A policy without a {@code state} section: every counter and review in this process. */
  public Policy(
      int version,
      RequestSettings request,
      Identity identity,
      Upstream upstream,
      List<Entitlement> entitlements,
      List<AllowRule> allow,
      Block block,
      Parameters parameters,
      Recording recording,
      Masking masking,
      Approval approval,
      List<Limit> limits) {
    this(
        version,
        request,
        identity,
        upstream,
        entitlements,
        allow,
        block,
        parameters,
        recording,
        masking,
        approval,
        limits,
        null);
  }

  /** A policy without a {@code limits} section. */
  public Policy(
      int version,
      RequestSettings request,
      Identity identity,
      Upstream upstream,
      List<Entitlement> entitlements,
      List<AllowRule> allow,
      Block block,
      Parameters parameters,
      Recording recording,
      Masking masking,
      Approval approval) {
    this(
        version,
        request,
        identity,
        upstream,
        entitlements,
        allow,
        block,
        parameters,
        recording,
        masking,
        approval,
        (List<Limit>) null);
  }

  /** A policy without an {@code approval} section. */
  public Policy(
      int version,
      RequestSettings request,
      Identity identity,
      Upstream upstream,
      List<Entitlement> entitlements,
      List<AllowRule> allow,
      Block block,
      Parameters parameters,
      Recording recording,
      Masking masking) {
    this(
        version,
        request,
        identity,
        upstream,
        entitlements,
        allow,
        block,
        parameters,
        recording,
        masking,
        (Approval) null);
  }

  /** A policy without a {@code masking} section. */
  public Policy(
      int version,
      RequestSettings request,
      Identity identity,
      Upstream upstream,
      List<Entitlement> entitlements,
      List<AllowRule> allow,
      Block block,
      Parameters parameters,
      Recording recording) {
    this(
        version,
        request,
        identity,
        upstream,
        entitlements,
        allow,
        block,
        parameters,
        recording,
        null);
  }

  /** A policy without a {@code recording} section. */
  public Policy(
      int version,
      RequestSettings request,
      Identity identity,
      Upstream upstream,
      List<Entitlement> entitlements,
      List<AllowRule> allow,
      Block block,
      Parameters parameters) {
    this(version, request, identity, upstream, entitlements, allow, block, parameters, null);
  }

  /**
   * The {@code state} section: where state shared by the replicas of a fleet lives. Without it,
   * quota counters are in this process's memory.
   *
   * @param redis    the Redis that holds the quota counters, or {@code null}
   * @param postgres the PostgreSQL database that holds pending reviews (and, with
   *     {@code recording.store: postgres}, the records), or {@code null}
   */
  public record State(Redis redis, Postgres postgres) {
    /** No {@code state} section. */
    public static final State IN_PROCESS = new State(null, null);

    /** Quota counters in Redis only. */
    public State(Redis redis) {
      this(redis, null);
    }
  }

  /**
   * {@code state.postgres}: the JDBC URL ({@code jdbc:postgresql://host:port/db}, which may carry
   * {@code user} and {@code password} parameters) from an environment variable or a file, the
   * user and password from the URL, an environment variable or a file, how long a call may take,
   * and whether the schema is migrated at start.
   *
   * @param urlFromEnv       the environment variable holding the URL, or {@code null}
   * @param urlFromFile      the file holding the URL, or {@code null}; exactly one of the two
   * @param user             {@code user}: the role to connect as, or {@code null}
   * @param userFromEnv      {@code user-from-env}, or {@code null}; at most one of the two
   * @param passwordFromEnv  {@code password-from-env}, or {@code null}
   * @param passwordFromFile {@code password-from-file}, or {@code null}; at most one of the two
   * @param timeout          {@code timeout}: connecting, and one statement, at most (default 2 s)
   * @param migrate          {@code migrate}: apply the schema migrations at start (default
   *     {@code true}); with {@code false} a schema older than the code stops the start
   * @param pollInterval     {@code poll-interval}: how often a replica looks for decisions it
   *     was not notified of (default 1 s)
   */
  public record Postgres(
      String urlFromEnv,
      java.nio.file.Path urlFromFile,
      String user,
      String userFromEnv,
      String passwordFromEnv,
      java.nio.file.Path passwordFromFile,
      java.time.Duration timeout,
      boolean migrate,
      java.time.Duration pollInterval) {
    public static final java.time.Duration DEFAULT_TIMEOUT = java.time.Duration.ofSeconds(2);
    public static final java.time.Duration DEFAULT_POLL_INTERVAL = java.time.Duration.ofSeconds(1);

    public Postgres {
      if ((urlFromEnv == null) == (urlFromFile == null))
        throw new IllegalArgumentException("exactly one of urlFromEnv and urlFromFile");
      if (user != null && userFromEnv != null)
        throw new IllegalArgumentException("at most one of user and userFromEnv");
      if (passwordFromEnv != null && passwordFromFile != null)
        throw new IllegalArgumentException("at most one of passwordFromEnv and passwordFromFile");
      timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
      pollInterval = pollInterval == null ? DEFAULT_POLL_INTERVAL : pollInterval;
    }
  }

  /**
   * {@code state.redis}: the Redis URL ({@code redis://[user:password@]host:port[/db]},
   * {@code rediss://}, {@code redis-sentinel://}) from an environment variable or a file (it may
   * hold a password, so it is never written in the policy), how long a call may take, and what a
   * request gets while Redis cannot be reached or answers too late.
   *
   * @param urlFromEnv    the environment variable holding the URL, or {@code null}
   * @param urlFromFile   the file holding the URL, or {@code null}; exactly one of the two
   * @param timeout       {@code timeout}, default 500 ms
   * @param allowWhenDown {@code when-unavailable: allow}: admit (uncounted, logged) rather than
   *                      refuse 503 {@code quota_unavailable}, the default ({@code refuse})
   */
  public record Redis(
      String urlFromEnv,
      java.nio.file.Path urlFromFile,
      java.time.Duration timeout,
      boolean allowWhenDown) {
    public static final java.time.Duration DEFAULT_TIMEOUT = java.time.Duration.ofMillis(500);

    public Redis {
      if ((urlFromEnv == null) == (urlFromFile == null))
        throw new IllegalArgumentException("exactly one of urlFromEnv and urlFromFile");
      timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
    }
  }

  /**
   * {@code d} as a policy file writes it ({@code 5m}, {@code 30s}, {@code 250ms}): the largest
   * unit that divides it. For messages that quote a policy's duration.
   *
   * @throws IllegalArgumentException when {@code d} is negative or finer than a millisecond
   */
  public static String formatDuration(java.time.Duration d) {
    return dev.inferpam.core.internal.policy.Durations.format(d);
  }

  /** Default request body limit: 8 MiB. */
  public static final long DEFAULT_MAX_BODY_BYTES = 8L * 1024 * 1024;

  public Policy {
    if (version != 1)
      throw new PolicyException("version: unsupported version " + version + ", expected 1");
    request = request == null ? RequestSettings.DEFAULTS : request;
    identity = identity == null ? new Identity(List.of()) : identity;
    upstream = upstream == null ? new Upstream(null) : upstream;
    entitlements = entitlements == null ? List.of() : List.copyOf(entitlements);
    allow = allow == null ? List.of() : List.copyOf(allow);
    block = block == null ? new Block(List.of(), List.of()) : block;
    parameters = parameters == null ? new Parameters(Set.of(), Map.of(), Set.of()) : parameters;
    limits = limits == null ? List.of() : List.copyOf(limits);
    state = state == null ? State.IN_PROCESS : state;
    if (recording != null
        && recording.store() == RecordingStore.POSTGRES
        && state.postgres() == null) {
      throw new PolicyException(
          "recording.store: postgres needs the database of state.postgres, which the policy does"
              + " not set");
    }
    if (upstream.credential() != null) {
      ForwardHeaders.checkNotCredential(request.forwardHeaders(), upstream.credential().header());
    }
    // recording stays null when the section is absent: the engine then records only to the
    // Recorder given to its builder; masking likewise stays null: no masking section, no masking;
    // approval too: no approval section, no review
  }

  /** Loads a policy file; YAML unless the name ends in {@code .json}. */
  public static Policy load(Path file) {
    return PolicyLoader.load(file);
  }

  /** Parses policy text; YAML is a superset of JSON, so both are accepted. */
  public static Policy parse(String text) {
    return PolicyLoader.parse(text, "policy");
  }

  /**
   * Settings for how requests are read (an inferpam extension to the policy file, key
   * {@code request}).
   *
   * <p>The engine decides path and identity from the request's head before it reads any body
   * byte; the body is then read under {@code maxBodyBytes}, {@code bodyTimeout} and
   * {@code minBodyRate} (408 {@code body_timeout}). {@code headTimeout} and
   * {@code maxConnectionsPerClient} bound what happens before the engine sees a request, so only
   * a server that owns the connections applies them (the inferpam gateway does; a servlet
   * container has its own settings).
   *
   * @param basePath                prefix under which inference paths sit, e.g. {@code /openai};
   *                                "" for none
   * @param maxBodyBytes            largest request body read; larger ones get 413
   *                                {@code body_too_large}
   * @param bodyTimeout             longest time from the request's head to the end of its body;
   *                                later: 408 {@code body_timeout} (default
   *                                {@link #DEFAULT_BODY_TIMEOUT})
   * @param minBodyRate             bytes per second a body must average once
   *                                {@link #MIN_BODY_RATE_GRACE} has passed since the head; slower:
   *                                408 {@code body_timeout} (default {@link #DEFAULT_MIN_BODY_RATE})
   * @param headTimeout             longest time a connection may take to deliver a request's head
   *                                (request line and headers), counted from when it opened or its
   *                                previous exchange ended; then the gateway closes it (default
   *                                {@link #DEFAULT_HEAD_TIMEOUT})
   * @param maxConnectionsPerClient most connections the gateway keeps open from one client
   *                                address; more are closed at once; 0 for no cap (default)
   * @param forwardHeaders          caller request headers the gateway forwards besides its fixed
   *                                allow-list, as written, in the order listed (key
   *                                {@code forward-headers}; default none). Never a caller
   *                                credential, hop-by-hop, framing, cookie, forwarding-claim or
   *                                method-override header, nor the upstream credential's header
   *                                ({@link dev.inferpam.core.adapter.ForwardHeaders}); names are
   *                                tokens, each listed once. Only the gateway reads it: the servlet
   *                                filter and the OkHttp interceptor pass on what the application sends.
   * @param maxInFlight             most exchanges the engine lets through at once, counted from
   *                                the moment one is allowed to go upstream until it ends (its
   *                                response streamed to the end or broken off); one more is refused
   *                                503 {@code overloaded} with {@code Retry-After}, before anything
   *                                is forwarded (key {@code max-in-flight}; default
   *                                {@link #DEFAULT_MAX_IN_FLIGHT}). Requests waiting for a
   *                                reviewer are bounded by {@code approval.max-pending} instead.
   * @param errorShape              how the engine's error bodies are shaped (key {@code
   *                                error-shape}; default {@link ErrorShape#INFERPAM})
   */
  public record RequestSettings(
      String basePath,
      long maxBodyBytes,
      java.time.Duration bodyTimeout,
      long minBodyRate,
      java.time.Duration headTimeout,
      int maxConnectionsPerClient,
      List<String> forwardHeaders,
      int maxInFlight,
      ErrorShape errorShape) {
    /** Default {@code request.max-in-flight}: 10,000 exchanges. */
    public static final int DEFAULT_MAX_IN_FLIGHT = 10_000;

    /** Default {@code request.body-timeout}: 30 s. */
    public static final java.time.Duration DEFAULT_BODY_TIMEOUT = java.time.Duration.ofSeconds(30);

    /** Default {@code request.min-body-rate}: 1 KiB per second. */
    public static final long DEFAULT_MIN_BODY_RATE = 1024;

    /** How long after the head a body may arrive at any rate before {@code min-body-rate} applies. */
    public static final java.time.Duration MIN_BODY_RATE_GRACE = java.time.Duration.ofSeconds(5);

    /** Default {@code request.head-timeout}: 30 s. */
    public static final java.time.Duration DEFAULT_HEAD_TIMEOUT = java.time.Duration.ofSeconds(30);

    public static final RequestSettings DEFAULTS = new RequestSettings("", DEFAULT_MAX_BODY_BYTES);

    public RequestSettings {
      basePath = basePath == null ? "" : basePath;
      if (maxBodyBytes <= 0)
        throw new PolicyException("request.max-body: must be > 0, was " + maxBodyBytes);
      bodyTimeout = bodyTimeout == null ? DEFAULT_BODY_TIMEOUT : bodyTimeout;
      if (bodyTimeout.isNegative() || bodyTimeout.isZero()) {
        throw new PolicyException("request.body-timeout: must be > 0, was " + bodyTimeout);
      }
      if (minBodyRate <= 0)
        throw new PolicyException("request.min-body-rate: must be > 0, was " + minBodyRate);
      headTimeout = headTimeout == null ? DEFAULT_HEAD_TIMEOUT : headTimeout;
      if (headTimeout.isNegative() || headTimeout.isZero()) {
        throw new PolicyException("request.head-timeout: must be > 0, was " + headTimeout);
      }
      if (maxConnectionsPerClient < 0) {
        throw new PolicyException(
            "request.max-connections-per-client: must be >= 0, was " + maxConnectionsPerClient);
      }
      forwardHeaders = ForwardHeaders.check(forwardHeaders);
      if (maxInFlight <= 0) {
        throw new PolicyException("request.max-in-flight: must be > 0, was " + maxInFlight);
      }
      errorShape = errorShape == null ? ErrorShape.INFERPAM : errorShape;
    }

    /** All settings but {@code errorShape}, which is {@link ErrorShape#INFERPAM}. */
    public RequestSettings(
        String basePath,
        long maxBodyBytes,
        java.time.Duration bodyTimeout,
        long minBodyRate,
        java.time.Duration headTimeout,
        int maxConnectionsPerClient,
        List<String> forwardHeaders,
        int maxInFlight) {
      this(
          basePath,
          maxBodyBytes,
          bodyTimeout,
          minBodyRate,
          headTimeout,
          maxConnectionsPerClient,
          forwardHeaders,
          maxInFlight,
          ErrorShape.INFERPAM);
    }

    /** All settings but {@code maxInFlight}, which is {@link #DEFAULT_MAX_IN_FLIGHT}. */
    public RequestSettings(
        String basePath,
        long maxBodyBytes,
        java.time.Duration bodyTimeout,
        long minBodyRate,
        java.time.Duration headTimeout,
        int maxConnectionsPerClient,
        List<String> forwardHeaders) {
      this(
          basePath,
          maxBodyBytes,
          bodyTimeout,
          minBodyRate,
          headTimeout,
          maxConnectionsPerClient,
          forwardHeaders,
          DEFAULT_MAX_IN_FLIGHT);
    }

    /** All settings but {@code forwardHeaders}, which is empty. */
    public RequestSettings(
        String basePath,
        long maxBodyBytes,
        java.time.Duration bodyTimeout,
        long minBodyRate,
        java.time.Duration headTimeout,
        int maxConnectionsPerClient) {
      this(
          basePath,
          maxBodyBytes,
          bodyTimeout,
          minBodyRate,
          headTimeout,
          maxConnectionsPerClient,
          List.of());
    }

    /** Base path and body limit; the other settings at their defaults. */
    public RequestSettings(String basePath, long maxBodyBytes) {
      this(
          basePath,
          maxBodyBytes,
          DEFAULT_BODY_TIMEOUT,
          DEFAULT_MIN_BODY_RATE,
          DEFAULT_HEAD_TIMEOUT,
          0);
    }
  }

  /**
   * {@code request.error-shape}: the JSON of the engine's own error answers.
   *
   * <p>{@link #INFERPAM}, the default, is one shape everywhere: {@code
   * {"error":{"type":"pam_error","code","message","request_id"}}} (with {@code "type":"error"} at
   * the top on Anthropic's Messages API, a compatible addition). {@link #NATIVE} keeps that shape
   * where it is the API's own (OpenAI-compatible and Anthropic paths) and, on APIs whose clients
   * read {@code "error"} as a string — Ollama's ({@code /api/...}) and KServe v2 / Triton's
   * ({@code /v2/...}), at the root or under the base path — answers {@code
   * {"error":"<message>","type":"pam_error","code",...,"request_id":...}}, so that their SDKs
   * show the message instead of raw JSON.
   */
  public enum ErrorShape {
    /** One shape on every path: {@code .error.code} always holds the code. */
    INFERPAM,
    /** Each API family's own shape: on Ollama and KServe v2 paths the code is at {@code .code}. */
    NATIVE
  }

  /** {@code identity}: service keys and OIDC issuers. */
  public record Identity(List<ApiKey> apiKeys, List<OidcIssuer> oidc) {
    public Identity {
      apiKeys = apiKeys == null ? List.of() : List.copyOf(apiKeys);
      oidc = oidc == null ? List.of() : List.copyOf(oidc);
    }

    /** Service keys only. */
    public Identity(List<ApiKey> apiKeys) {
      this(apiKeys, List.of());
    }
  }

  /**
   * {@code identity.oidc[]}: one trusted issuer of OAuth 2.0 / OIDC access tokens (JWTs).
   *
   * @param issuer       exact value of the {@code iss} claim
   * @param audience     required member of the {@code aud} claim
   * @param jwksUri      where the issuer's keys are, or {@code null} to discover them from
   *                     {@code {issuer}/.well-known/openid-configuration}
   * @param algorithms   accepted signature algorithms (default RS256, PS256, ES256; never
   *                     {@code none} or HMAC)
   * @param groupsClaim  dotted path to the groups (default {@code groups})
   * @param subjectClaim claim holding the subject (default {@code sub})
   * @param requireType  required {@code typ} header (e.g. {@code at+jwt}), or {@code null}
   * @param clockSkew    tolerance for {@code exp}, {@code nbf}, {@code iat} (default 30s)
   */
  public record OidcIssuer(
      String issuer,
      String audience,
      java.net.URI jwksUri,
      List<String> algorithms,
      String groupsClaim,
      String subjectClaim,
      String requireType,
      java.time.Duration clockSkew) {
    public static final List<String> DEFAULT_ALGORITHMS = List.of("RS256", "PS256", "ES256");
    public static final java.time.Duration DEFAULT_CLOCK_SKEW = java.time.Duration.ofSeconds(30);

    public OidcIssuer {
      Objects.requireNonNull(issuer, "issuer");
      Objects.requireNonNull(audience, "audience");
      algorithms =
          algorithms == null || algorithms.isEmpty() ? DEFAULT_ALGORITHMS : List.copyOf(algorithms);
      groupsClaim = groupsClaim == null ? "groups" : groupsClaim;
      subjectClaim = subjectClaim == null ? "sub" : subjectClaim;
      clockSkew = clockSkew == null ? DEFAULT_CLOCK_SKEW : clockSkew;
    }
  }

  /**
   * {@code identity.api-keys[]}: a service principal.
   *
   * @param sha256Hex lower-case hex SHA-256 of the key (the key itself is never in the policy)
   * @param expires   when the key stops working, or {@code null}
   */
  public record ApiKey(String name, String sha256Hex, Set<String> groups, Instant expires) {
    public ApiKey {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(sha256Hex, "sha256Hex");
      groups = groups == null ? Set.of() : Set.copyOf(groups);
    }
  }

  /** {@code upstream}; {@code credential} is {@code null} when none is injected. */
  public record Upstream(CredentialSource credential) {}

  /**
   * {@code upstream.credential}: exactly one of {@code fromEnv} / {@code fromFile} /
   * {@code oauth2} is set.
   *
   * @param header default {@code Authorization}
   * @param scheme prefix such as {@code Bearer}; empty for raw header values; {@code null} picks
   *               {@code Bearer} for {@code Authorization} and none for other headers
   */
  public record CredentialSource(
      String header, String scheme, String fromEnv, Path fromFile, OAuth2 oauth2) {
    /** A static secret from the environment or a file. */
    public CredentialSource(String header, String scheme, String fromEnv, Path fromFile) {
      this(header, scheme, fromEnv, fromFile, null);
    }
  }

  /**
   * {@code upstream.credential.oauth2}: short-lived upstream tokens from an OAuth 2.0
   * client-credentials grant. Exactly one of {@code clientSecretFromEnv} /
   * {@code clientSecretFromFile} is set.
   *
   * @param tokenEndpoint where tokens are requested
   * @param clientId      the client id
   * @param scope         requested scope, or {@code null}
   * @param audience      requested audience (the {@code audience} form parameter), or {@code null}
   * @param refreshBefore how long before expiry a token is replaced (default 60s)
   */
  public record OAuth2(
      java.net.URI tokenEndpoint,
      String clientId,
      String clientSecretFromEnv,
      Path clientSecretFromFile,
      String scope,
      String audience,
      java.time.Duration refreshBefore) {
    public static final java.time.Duration DEFAULT_REFRESH_BEFORE =
        java.time.Duration.ofSeconds(60);

    public OAuth2 {
      Objects.requireNonNull(tokenEndpoint, "tokenEndpoint");
      Objects.requireNonNull(clientId, "clientId");
      refreshBefore = refreshBefore == null ? DEFAULT_REFRESH_BEFORE : refreshBefore;
    }
  }

  /** {@code entitlements[]}: groups may use these models for these operations. */
  public record Entitlement(Set<String> groups, List<Glob> models, Set<String> operations) {
    public Entitlement {
      groups = Set.copyOf(groups);
      models = List.copyOf(models);
      operations = Set.copyOf(operations);
    }
  }

  /** {@code allow[]}: non-inference endpoints a group may reach. {@code *} in groups/methods means any. */
  public record AllowRule(Set<String> groups, Set<String> methods, List<Glob> paths) {
    public AllowRule {
      groups = Set.copyOf(groups);
      methods = Set.copyOf(methods);
      paths = List.copyOf(paths);
    }
  }

  /** {@code block}: presets by name, and named rules. */
  public record Block(List<String> presets, List<BlockRule> rules) {
    public Block {
      presets = List.copyOf(presets);
      rules = List.copyOf(rules);
    }
  }

  /** A named block rule; {@code *} in methods means any. */
  public record BlockRule(String name, Set<String> methods, List<Glob> paths) {
    public BlockRule {
      methods = Set.copyOf(methods);
      paths = List.copyOf(paths);
    }
  }

  /**
   * {@code parameters}: request-body fields that enable extraction.
   *
   * @param deny         parameter names refused when used
   * @param max          parameter names to their largest allowed value (values must lie in
   *                     {@code 0..max})
   * @param exemptGroups principals in any of these groups are not checked
   * @param presets      parameter preset names (e.g. {@code extraction}), in policy order
   */
  public record Parameters(
      Set<String> deny, Map<String, Double> max, Set<String> exemptGroups, List<String> presets) {
    public Parameters {
      deny = Set.copyOf(deny);
      max = Map.copyOf(max);
      exemptGroups = Set.copyOf(exemptGroups);
      presets = presets == null ? List.of() : List.copyOf(presets);
    }

    /** A section without presets. */
    public Parameters(Set<String> deny, Map<String, Double> max, Set<String> exemptGroups) {
      this(deny, max, exemptGroups, List.of());
    }
  }

  /**
   * {@code recording}: the default JSONL recorder, or with {@code store: postgres} the
   * PostgreSQL one (see {@code docs/recording.md}).
   *
   * @param directory     where segments are written; {@code null} with {@code store: postgres}
   * @param bodies        what of request and response bodies is stored
   * @param durability    when a record is durable relative to forwarding
   * @param retention     segments older than this are removed; {@code null} keeps everything
   * @param segmentBytes  a new segment is started past this size (extension {@code segment-size},
   *                      default 64 MiB); also on a new UTC day
   * @param queueCapacity records admitted but not yet written, at most (extension
   *                      {@code queue-capacity}, default 10000); beyond it requests are refused 503
   * @param batchInterval {@code batched}: longest wait before a group fsync (extension
   *                      {@code batch-interval}, default 5ms)
   * @param batchSize     {@code batched}: records per group fsync at most (extension
   *                      {@code batch-size}, default 256)
   * @param queueFullWait what happens when the queue is full (extension {@code queue-full-wait}):
   *                      {@code 0s} (default) refuses the request 503 at once; a longer duration
   *                      makes it wait up to that long for room first
   * @param store         {@code store}: where records go — {@link RecordingStore#DIRECTORY} (the
   *                      default: JSONL segments in {@code directory}) or
   *                      {@link RecordingStore#POSTGRES} (the database of {@code state.postgres},
   *                      module {@code pam-postgres}; {@code directory} is then {@code null})
   */
  public record Recording(
      Path directory,
      Bodies bodies,
      Durability durability,
      java.time.Duration retention,
      long segmentBytes,
      int queueCapacity,
      java.time.Duration batchInterval,
      int batchSize,
      java.time.Duration queueFullWait,
      RecordingStore store) {
    public static final long DEFAULT_SEGMENT_BYTES = 64L * 1024 * 1024;
    public static final int DEFAULT_QUEUE_CAPACITY = 10_000;
    public static final java.time.Duration DEFAULT_BATCH_INTERVAL = java.time.Duration.ofMillis(5);
    public static final int DEFAULT_BATCH_SIZE = 256;

    public Recording {
      store = store == null ? RecordingStore.DIRECTORY : store;
      if (store == RecordingStore.POSTGRES && directory != null) {
        throw new PolicyException(
            "recording.directory: not with store: postgres (records go to the database)");
      }
      if (store == RecordingStore.DIRECTORY) Objects.requireNonNull(directory, "directory");
      bodies = bodies == null ? Bodies.MASKED : bodies;
      durability = durability == null ? Durability.STRICT : durability;
      segmentBytes = segmentBytes <= 0 ? DEFAULT_SEGMENT_BYTES : segmentBytes;
      queueCapacity = queueCapacity <= 0 ? DEFAULT_QUEUE_CAPACITY : queueCapacity;
      batchInterval = batchInterval == null ? DEFAULT_BATCH_INTERVAL : batchInterval;
      batchSize = batchSize <= 0 ? DEFAULT_BATCH_SIZE : batchSize;
      queueFullWait = queueFullWait == null ? java.time.Duration.ZERO : queueFullWait;
      if (queueFullWait.isNegative()) {
        throw new PolicyException(
            "recording.queue-full-wait: must not be negative, was " + queueFullWait);
      }
    }

    /** A recording into {@code directory} ({@link RecordingStore#DIRECTORY}). */
    public Recording(
        Path directory,
        Bodies bodies,
        Durability durability,
        java.time.Duration retention,
        long segmentBytes,
        int queueCapacity,
        java.time.Duration batchInterval,
        int batchSize,
        java.time.Duration queueFullWait) {
      this(
          directory,
          bodies,
          durability,
          retention,
          segmentBytes,
          queueCapacity,
          batchInterval,
          batchSize,
          queueFullWait,
          RecordingStore.DIRECTORY);
    }

    /** Without {@code queue-full-wait}: a full queue refuses at once. */
    public Recording(
        Path directory,
        Bodies bodies,
        Durability durability,
        java.time.Duration retention,
        long segmentBytes,
        int queueCapacity,
        java.time.Duration batchInterval,
        int batchSize) {
      this(
          directory,
          bodies,
          durability,
          retention,
          segmentBytes,
          queueCapacity,
          batchInterval,
          batchSize,
          null);
    }

    /** A recording into {@code directory} with every default. */
    public static Recording in(Path directory) {
      return new Recording(directory, null, null, null, 0, 0, null, 0, null);
    }

    /**
     * A recording into the database of {@code state.postgres} ({@link RecordingStore#POSTGRES})
     * with every default.
     */
    public static Recording inPostgres() {
      return new Recording(null, null, null, null, 0, 0, null, 0, null, RecordingStore.POSTGRES);
    }
  }

  /**
   * {@code recording.store}: where the records of a {@link Recording} go.
   *
   * <p>{@code DIRECTORY}: hash-chained JSON Lines files in {@code recording.directory} (the
   * default). {@code POSTGRES}: rows of the table {@code inferpam.records} in the database of
   * {@code state.postgres}, one hash chain per writer (replica); see {@code docs/recording.md}.
   */
  public enum RecordingStore {
    DIRECTORY,
    POSTGRES
  }

  /** {@code recording.bodies}. */
  public enum Bodies {
    MASKED,
    FULL,
    NONE
  }

  /**
   * {@code recording.durability}: {@code STRICT} makes an intent line durable before forwarding;
   * {@code BATCHED} group-commits (fsync every {@code batch-interval} or {@code batch-size});
   * {@code ASYNC} writes from a bounded queue without waiting for fsync.
   */
  public enum Durability {
    STRICT,
    BATCHED,
    ASYNC
  }

  /**
   * {@code masking}: what is masked in responses and how (see {@code docs/policy.md}).
   *
   * @param detectors      built-in detector names, in policy order; empty for none (the loader
   *                       checks the names and puts all built-ins here when the key is absent)
   * @param custom         {@code custom[]}: named regular expressions, checked at load
   * @param words          {@code words[]}: named literal word lists
   * @param strategy       how a found value is replaced (default {@code REDACT})
   * @param hashKeyFromEnv {@code hash-key-from-env}: variable holding the HMAC key, or {@code null}
   * @param hashKeyFromFile {@code hash-key-from-file}: file holding the HMAC key, or {@code null};
   *                       with {@code HASH} exactly one of the two is set
   * @param exemptGroups   principals in any of these groups are not masked
   * @param maxHoldBack    {@code max-hold-back} (extension): most chars a streamed response may
   *                       hold back while a value could still be completing; must cover the
   *                       longest match of every detector in use (checked when the masker is built)
   */
  public record Masking(
      List<String> detectors,
      List<CustomPattern> custom,
      List<WordList> words,
      MaskStrategy strategy,
      String hashKeyFromEnv,
      Path hashKeyFromFile,
      Set<String> exemptGroups,
      int maxHoldBack) {
    /** Default {@code max-hold-back}: enough for every built-in detector (a PEM private key). */
    public static final int DEFAULT_MAX_HOLD_BACK = 16 * 1024 + 256;

    /** A section with the default {@code max-hold-back}. */
    public Masking(
        List<String> detectors,
        List<CustomPattern> custom,
        List<WordList> words,
        MaskStrategy strategy,
        String hashKeyFromEnv,
        Path hashKeyFromFile,
        Set<String> exemptGroups) {
      this(
          detectors,
          custom,
          words,
          strategy,
          hashKeyFromEnv,
          hashKeyFromFile,
          exemptGroups,
          DEFAULT_MAX_HOLD_BACK);
    }

    public Masking {
      if (maxHoldBack <= 0)
        throw new PolicyException("masking: max-hold-back must be positive, was " + maxHoldBack);
      detectors = detectors == null ? List.of() : List.copyOf(detectors);
      custom = custom == null ? List.of() : List.copyOf(custom);
      words = words == null ? List.of() : List.copyOf(words);
      strategy = strategy == null ? MaskStrategy.REDACT : strategy;
      exemptGroups = exemptGroups == null ? Set.of() : Set.copyOf(exemptGroups);
      if (strategy == MaskStrategy.HASH && (hashKeyFromEnv == null) == (hashKeyFromFile == null)) {
        throw new PolicyException(
            "masking: strategy hash needs exactly one of hash-key-from-env / hash-key-from-file");
      }
    }
  }

  /** {@code masking.custom[]}: a named regular expression. */
  public record CustomPattern(String name, String pattern) {
    public CustomPattern {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(pattern, "pattern");
    }
  }

  /** {@code masking.words[]}: named literal words, matched whole, optionally ignoring case. */
  public record WordList(String name, List<String> list, boolean ignoreCase) {
    public WordList {
      Objects.requireNonNull(name, "name");
      list = List.copyOf(list);
    }

    @Override
    public String toString() {
      return "WordList[name="
          + name
          + ", "
          + list.size()
          + " words, ignoreCase="
          + ignoreCase
          + "]";
    }
  }

  /**
   * {@code masking.strategy}: {@code REDACT} writes {@code [EMAIL]}; {@code PARTIAL} keeps the
   * last 4 letters/digits; {@code HASH} writes a keyed pseudonym {@code [EMAIL:3f9a1c]}.
   */
  public enum MaskStrategy {
    REDACT,
    PARTIAL,
    HASH
  }

  /**
   * {@code approval}: just-in-time human review before the model runs (see {@code docs/policy.md}).
   *
   * @param reviewers              groups whose members may decide; never {@code *}, never empty.
   *                               Nobody decides their own request.
   * @param timeout                no decision by then: the request is refused as expired
   *                               (default {@link #DEFAULT_TIMEOUT}, at most {@link #MAX_TIMEOUT})
   * @param grant                  {@code > 0}: an approval also covers the same principal's later
   *                               requests under the same rule for this long (default zero, at
   *                               most {@link #MAX_GRANT})
   * @param rules                  {@code rules[]}, in policy order; the first that matches names
   *                               the review. Names are unique.
   * @param maxPendingPerPrincipal reviews one principal may have waiting at once (extension
   *                               {@code max-pending-per-principal}, default
   *                               {@value #DEFAULT_MAX_PENDING_PER_PRINCIPAL}); beyond it 429
   * @param maxPending             reviews waiting at once in total (extension {@code max-pending},
   *                               default {@value #DEFAULT_MAX_PENDING}); beyond it 429
   */
  public record Approval(
      Set<String> reviewers,
      java.time.Duration timeout,
      java.time.Duration grant,
      List<ApprovalRule> rules,
      int maxPendingPerPrincipal,
      int maxPending) {
    public static final java.time.Duration DEFAULT_TIMEOUT = java.time.Duration.ofMinutes(5);
    public static final java.time.Duration MAX_TIMEOUT = java.time.Duration.ofHours(1);
    public static final java.time.Duration MAX_GRANT = java.time.Duration.ofDays(1);
    public static final int DEFAULT_MAX_PENDING_PER_PRINCIPAL = 5;
    public static final int DEFAULT_MAX_PENDING = 1000;

    /**
     * Applies defaults for {@code null} durations and bounds {@code <= 0}.
     *
     * @throws PolicyException when a value is out of range, a reviewer group is {@code *}, there
     *     are no reviewers or no rules, or two rules share a name
     */
    public Approval {
      reviewers = reviewers == null ? Set.of() : Set.copyOf(reviewers);
      if (reviewers.isEmpty()) throw new PolicyException("approval.reviewers: must not be empty");
      if (reviewers.contains("*")) {
        throw new PolicyException(
            "approval.reviewers: \"*\" would let anyone approve; name the reviewer groups");
      }
      timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
      if (timeout.isNegative() || timeout.isZero() || timeout.compareTo(MAX_TIMEOUT) > 0) {
        throw new PolicyException("approval.timeout: must be > 0 and at most 1h, was " + timeout);
      }
      grant = grant == null ? java.time.Duration.ZERO : grant;
      if (grant.isNegative() || grant.compareTo(MAX_GRANT) > 0) {
        throw new PolicyException("approval.grant: must be between 0s and 1d, was " + grant);
      }
      rules = rules == null ? List.of() : List.copyOf(rules);
      if (rules.isEmpty()) throw new PolicyException("approval.rules: must not be empty");
      Set<String> names = new java.util.HashSet<>();
      for (ApprovalRule r : rules) {
        if (!names.add(r.name()))
          throw new PolicyException("approval.rules: duplicate name \"" + r.name() + "\"");
      }
      maxPendingPerPrincipal =
          maxPendingPerPrincipal <= 0 ? DEFAULT_MAX_PENDING_PER_PRINCIPAL : maxPendingPerPrincipal;
      maxPending = maxPending <= 0 ? DEFAULT_MAX_PENDING : maxPending;
      if (maxPendingPerPrincipal > maxPending) {
        throw new PolicyException(
            "approval.max-pending-per-principal: must not exceed max-pending ("
                + maxPending
                + "), was "
                + maxPendingPerPrincipal);
      }
    }

    /** A section with the default bounds. */
    public Approval(
        Set<String> reviewers,
        java.time.Duration timeout,
        java.time.Duration grant,
        List<ApprovalRule> rules) {
      this(reviewers, timeout, grant, rules, 0, 0);
    }
  }

  /**
   * {@code approval.rules[]}: when a request needs review. Every condition that is set must hold
   * (they are ANDed); at least one must be set.
   *
   * @param name          names the review in decisions, pending lists and records; no {@code :}
   * @param promptMatches a regular expression searched, ignoring case, in the text that reaches
   *                      the model as a reader sees it (pieces joined with a space, invisible
   *                      characters removed, NFKC, any whitespace one space; and, literals and
   *                      text both as Unicode TS #39 skeletons, look-alike letters as one),
   *                      restricted like {@code masking.custom} patterns (bounded, no nested
   *                      repetition) so that matching is linear in the prompt; or {@code null}
   * @param maxTokensOver the rule holds when the requested output bound exceeds this; or
   *                      {@code null}
   * @param models        model globs; empty for any model
   * @param operations    operations ({@code chat}, {@code completion}, {@code embedding},
   *                      {@code infer}); empty for any
   * @param groups        the rule applies only to principals in one of these groups ({@code *}
   *                      for any); empty for any
   */
  public record ApprovalRule(
      String name,
      String promptMatches,
      Long maxTokensOver,
      List<Glob> models,
      Set<String> operations,
      Set<String> groups) {
    /**
     * @throws PolicyException      when no condition is set, the name is empty or holds
     *     {@code :}, {@code promptMatches} is not an allowed pattern, or {@code maxTokensOver} is
     *     negative
     * @throws NullPointerException when {@code name} is null
     */
    public ApprovalRule {
      Objects.requireNonNull(name, "name");
      if (name.isEmpty() || name.indexOf(':') >= 0) {
        throw new PolicyException(
            "approval.rules: name must be non-empty without \":\", was \"" + name + "\"");
      }
      models = models == null ? List.of() : List.copyOf(models);
      operations = operations == null ? Set.of() : Set.copyOf(operations);
      groups = groups == null ? Set.of() : Set.copyOf(groups);
      if (promptMatches != null) {
        try {
          dev.inferpam.core.internal.masking.CustomPatterns.check(promptMatches);
        } catch (IllegalArgumentException e) {
          throw new PolicyException(
              "approval.rules: " + name + ": prompt-matches: " + e.getMessage(), e);
        }
      }
      if (maxTokensOver != null && maxTokensOver < 0) {
        throw new PolicyException(
            "approval.rules: " + name + ": max-tokens-over must be >= 0, was " + maxTokensOver);
      }
      if (promptMatches == null
          && maxTokensOver == null
          && models.isEmpty()
          && operations.isEmpty()
          && groups.isEmpty()) {
        throw new PolicyException(
            "approval.rules: "
                + name
                + ": has no condition (prompt-matches, "
                + "max-tokens-over, models, operations or groups)");
      }
    }
  }

  /**
   * {@code limits[]}: a budget per principal. It applies to a principal in one of {@code groups}
   * ({@code *}: anyone) making an inference request whose model matches {@code models} and whose
   * operation is in {@code operations} (either empty: any). Each matching entry is its own budget,
   * shared by every request it matches; a request must fit all of them, so the tightest wins. At
   * least one bound is set; every bound is {@code > 0}.
   *
   * @param requestsPerMinute requests per UTC minute, or {@code null}
   * @param tokensPerMinute   prompt + completion tokens per UTC minute, or {@code null}
   * @param tokensPerDay      prompt + completion tokens per UTC day, or {@code null}
   */
  public record Limit(
      Set<String> groups,
      List<Glob> models,
      Set<String> operations,
      Long requestsPerMinute,
      Long tokensPerMinute,
      Long tokensPerDay) {
    /**
     * @throws PolicyException when {@code groups} is empty, no bound is set, or a bound is not
     *     positive
     */
    public Limit {
      groups = groups == null ? Set.of() : Set.copyOf(groups);
      if (groups.isEmpty()) throw new PolicyException("limits: groups must not be empty");
      models = models == null ? List.of() : List.copyOf(models);
      operations = operations == null ? Set.of() : Set.copyOf(operations);
      if (requestsPerMinute == null && tokensPerMinute == null && tokensPerDay == null) {
        throw new PolicyException(
            "limits: give at least one of requests-per-minute, tokens-per-minute, tokens-per-day");
      }
      for (Long bound : java.util.Arrays.asList(requestsPerMinute, tokensPerMinute, tokensPerDay)) {
        if (bound != null && bound <= 0)
          throw new PolicyException("limits: bounds must be > 0, was " + bound);
      }
    }
  }
}
