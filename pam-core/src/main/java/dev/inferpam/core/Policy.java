package dev.inferpam.core;

import dev.inferpam.core.internal.Glob;
import dev.inferpam.core.internal.PolicyLoader;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A loaded policy file (see {@code spec/policy.md}). Immutable and thread-safe.
 *
 * <p>Load with {@link #load(Path)} (YAML or JSON by file extension; {@code .json} is JSON,
 * anything else YAML) or {@link #parse(String)}; both throw {@link PolicyException} naming the
 * key path and bad value. Absent sections are empty and add no rule.
 */
public record Policy(int version, RequestSettings request, Identity identity, Upstream upstream,
                     List<Entitlement> entitlements, List<AllowRule> allow, Block block,
                     Parameters parameters) {

  /** Default request body limit: 8 MiB. */
  public static final long DEFAULT_MAX_BODY_BYTES = 8L * 1024 * 1024;

  public Policy {
    if (version != 1) throw new PolicyException("version: unsupported version " + version + ", expected 1");
    request = request == null ? RequestSettings.DEFAULTS : request;
    identity = identity == null ? new Identity(List.of()) : identity;
    upstream = upstream == null ? new Upstream(null) : upstream;
    entitlements = entitlements == null ? List.of() : List.copyOf(entitlements);
    allow = allow == null ? List.of() : List.copyOf(allow);
    block = block == null ? new Block(List.of(), List.of()) : block;
    parameters = parameters == null ? new Parameters(Set.of(), Map.of(), Set.of()) : parameters;
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
   * @param basePath     prefix under which inference paths sit, e.g. {@code /openai}; "" for none
   * @param maxBodyBytes largest request body read; larger ones get 413 {@code body_too_large}
   */
  public record RequestSettings(String basePath, long maxBodyBytes) {
    public static final RequestSettings DEFAULTS = new RequestSettings("", DEFAULT_MAX_BODY_BYTES);

    public RequestSettings {
      basePath = basePath == null ? "" : basePath;
      if (maxBodyBytes <= 0) throw new PolicyException("request.max-body: must be > 0, was " + maxBodyBytes);
    }
  }

  /** {@code identity}: service keys (OIDC issuers arrive with a later release). */
  public record Identity(List<ApiKey> apiKeys) {
    public Identity {
      apiKeys = apiKeys == null ? List.of() : List.copyOf(apiKeys);
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
   * {@code upstream.credential}: exactly one of {@code fromEnv} / {@code fromFile} is set.
   *
   * @param header default {@code Authorization}
   * @param scheme prefix such as {@code Bearer}; empty for raw header values
   */
  public record CredentialSource(String header, String scheme, String fromEnv, Path fromFile) {}

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

  /** {@code parameters}: request-body fields that enable extraction. */
  public record Parameters(Set<String> deny, Map<String, Double> max, Set<String> exemptGroups) {
    public Parameters {
      deny = Set.copyOf(deny);
      max = Map.copyOf(max);
      exemptGroups = Set.copyOf(exemptGroups);
    }
  }
}
