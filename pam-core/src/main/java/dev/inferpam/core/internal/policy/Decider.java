package dev.inferpam.core.internal.policy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Decision.Allow;
import dev.inferpam.api.Decision.Deny;
import dev.inferpam.api.Decision.Obligation;
import dev.inferpam.api.Decision.RequireApproval;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.approval.ApprovalRules;
import dev.inferpam.core.internal.http.BadPathException;
import dev.inferpam.core.internal.http.BadRequestException;
import dev.inferpam.core.internal.http.DecoderAgreement;
import dev.inferpam.core.internal.http.GovernedBody;
import dev.inferpam.core.internal.http.PathCanonicalizer;
import dev.inferpam.core.internal.http.RequestClassifier;
import dev.inferpam.core.internal.identity.IdentityChain;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The policy logic of the engine, free of I/O: path check, identity, block, body decoding
 * ({@link GovernedBody}), allow/operation, entitlements, parameters, approval — in that order,
 * first refusal wins. The verdict's request carries the decoded body, which is what is forwarded.
 * A request that passes every check but matches an {@code approval.rules} entry gets
 * {@link RequireApproval} naming that rule; its {@link Verdict#allowRule()} is the rule that
 * allows it once approved. Immutable and thread-safe.
 */
public final class Decider {
  private static final Logger log = LoggerFactory.getLogger(Decider.class);

  /** The obligations of every allow: inject the credential, mask the response, record. */
  public static final Set<Obligation> ALLOW_OBLIGATIONS =
      Set.of(Obligation.INJECT_CREDENTIAL, Obligation.MASK_RESPONSE, Obligation.RECORD);

  /**
   * Parameters that set the same bound as {@code max_tokens} under other API shapes: a
   * {@code max_tokens} cap must not be bypassed by spelling it the OpenAI-new, Responses-API or
   * Ollama way.
   */
  static final Map<String, List<String>> MAX_ALIASES =
      Map.of(
          "max_tokens",
              List.of(
                  "max_tokens",
                  "max_completion_tokens",
                  "max_output_tokens",
                  "options.num_predict"),
          "n", List.of("n", "best_of"));

  private final Policy policy;
  private final List<IdentityResolver> resolvers;
  private final RequestClassifier classifier;
  private final ParameterRules parameterRules;
  private final List<NamedRule> blockRules;

  /** The compiled {@code approval.rules}, or {@code null} without an approval section. */
  private final ApprovalRules approvalRules;

  private record NamedRule(String name, Policy.BlockRule rule) {}

  /**
   * The result of a decision, with what was learnt on the way.
   *
   * @param allowRule for {@link RequireApproval}, the rule that allows the request once approved
   *                  (e.g. {@code entitlements[0]}); otherwise {@code null}
   * @param body      the parsed body of an inference request that was not refused, or {@code null}
   */
  public record Verdict(
      Decision decision,
      Principal principal,
      InferenceRequest request,
      String operation,
      String model,
      String allowRule,
      JsonNode body) {
    public Verdict(
        Decision decision,
        Principal principal,
        InferenceRequest request,
        String operation,
        String model) {
      this(decision, principal, request, operation, model, null, null);
    }
  }

  public Decider(Policy policy, List<IdentityResolver> resolvers) {
    this.policy = policy;
    this.resolvers = List.copyOf(resolvers);
    this.parameterRules = new ParameterRules(policy.parameters());
    this.classifier =
        new RequestClassifier(
            policy.request().basePath(), new DecoderAgreement(parameterRules.governedPaths()));
    List<NamedRule> rules = new ArrayList<>();
    for (String preset : policy.block().presets()) {
      for (Policy.BlockRule r : Presets.rules(preset))
        rules.add(new NamedRule("block.presets." + r.name(), r));
    }
    List<Policy.BlockRule> own = policy.block().rules();
    for (int i = 0; i < own.size(); i++) {
      rules.add(new NamedRule("block.rules[" + i + "] (" + own.get(i).name() + ")", own.get(i)));
    }
    this.blockRules = List.copyOf(rules);
    this.approvalRules = policy.approval() == null ? null : new ApprovalRules(policy.approval());
  }

  /** Canonicalizes the raw path; refusal is a 400 {@code bad_path} deny. */
  public static Object canonicalPathOrDeny(String rawPath) {
    try {
      return PathCanonicalizer.canonicalize(rawPath);
    } catch (BadPathException e) {
      return new Deny(400, "bad_path", "ambiguous request path: " + e.getMessage(), "path");
    }
  }

  /** Decides a request whose path is canonical and whose body was read within the limit. */
  public Verdict decide(InferenceRequest request) {
    Object identified = identifyOrDeny(request);
    if (identified instanceof Verdict denied) return denied;
    return decide(request, (Principal) identified);
  }

  /**
   * Identity alone, from the request's head: the caller's {@link Principal}, or the 401
   * {@link Verdict} when no resolver identifies it. Looks at headers only, so that it can run
   * before any body byte is read (resolvers are given the request with whatever body it holds,
   * empty when called on a head).
   */
  public Object identifyOrDeny(InferenceRequest request) {
    Principal principal;
    try {
      principal = identify(request);
    } catch (AuthenticationException e) {
      return new Verdict(unauthenticated(e.getMessage()), null, request, null, null);
    } catch (RuntimeException e) {
      // Fail closed; the resolver's exception may quote the credential, so log only its type.
      log.warn("inferpam: identity resolver failed: {}", e.getClass().getName());
      return new Verdict(
          unauthenticated("credential could not be verified"), null, request, null, null);
    }
    if (principal == null) {
      // A credential no resolver understands (e.g. an opaque bearer when only OIDC is configured)
      // is not the same complaint as a missing one.
      boolean presented =
          request.header("authorization") != null || request.header("x-api-key") != null;
      return new Verdict(
          unauthenticated(presented ? "unrecognised credential" : "no credential"),
          null,
          request,
          null,
          null);
    }
    return principal;
  }

  /**
   * Decides, after identity, a request whose path is canonical and whose body was read within
   * the limit: block, allow/operation, entitlements, parameters, approval.
   *
   * @param principal the caller, as {@link #identifyOrDeny} identified it from the same request's head
   */
  public Verdict decide(InferenceRequest request, Principal principal) {
    RequestClassifier.Classification c;
    String relative = classifier.relativePath(request.path());
    for (NamedRule b : blockRules) {
      if (matches(
          b.rule().methods(), b.rule().paths(), request.method(), request.path(), relative)) {
        return new Verdict(
            new Deny(403, "blocked", "endpoint blocked by " + b.name(), b.name()),
            principal,
            request,
            null,
            null);
      }
    }
    // Content codings undone and the KServe JSON header split off: the policy reads what is
    // forwarded.
    Object prepared =
        GovernedBody.prepare(
            request,
            classifier.operation(request.method(), request.path()),
            policy.request().maxBodyBytes());
    if (prepared instanceof Deny refusal)
      return new Verdict(refusal, principal, request, null, null);
    GovernedBody.Prepared body = (GovernedBody.Prepared) prepared;
    request = body.request();
    try {
      c = classifier.classify(request.method(), request.path(), body.json());
    } catch (BadRequestException e) {
      return new Verdict(
          new Deny(400, "bad_request", e.getMessage(), "request"), principal, request, null, null);
    }
    if (c.operation() == null) {
      List<Policy.AllowRule> allow = policy.allow();
      for (int i = 0; i < allow.size(); i++) {
        Policy.AllowRule a = allow.get(i);
        if (inGroups(principal, a.groups())
            && matches(a.methods(), a.paths(), request.method(), request.path(), relative)) {
          return allowOrReview("allow[" + i + "]", principal, request, null, null, c.body());
        }
      }
      return new Verdict(
          new Deny(
              403,
              "not_allowed",
              request.method()
                  + " "
                  + request.path()
                  + " is not an inference operation and no allow rule matches",
              "allow"),
          principal,
          request,
          null,
          null);
    }

    String rule = null;
    List<Policy.Entitlement> ents = policy.entitlements();
    for (int i = 0; i < ents.size() && rule == null; i++) {
      Policy.Entitlement e = ents.get(i);
      if (inGroups(principal, e.groups())
          && e.operations().contains(c.operation())
          && Glob.matchesAny(e.models(), c.model())) {
        rule = "entitlements[" + i + "]";
      }
    }
    if (rule == null) {
      return new Verdict(
          new Deny(
              403,
              "not_entitled",
              "no entitlement grants " + c.operation() + " on model \"" + excerpt(c.model()) + "\"",
              "entitlements"),
          principal,
          request,
          c.operation(),
          c.model());
    }

    Deny paramDenial = checkParameters(principal, c.body());
    if (paramDenial != null)
      return new Verdict(paramDenial, principal, request, c.operation(), c.model());
    return allowOrReview(rule, principal, request, c.operation(), c.model(), c.body());
  }

  /** The last step: an approval rule that matches turns the allow into a review. */
  private Verdict allowOrReview(
      String allowRule,
      Principal principal,
      InferenceRequest request,
      String operation,
      String model,
      JsonNode body) {
    String review =
        approvalRules == null ? null : approvalRules.match(principal, operation, model, body);
    if (review != null) {
      return new Verdict(
          new RequireApproval(review), principal, request, operation, model, allowRule, body);
    }
    return new Verdict(
        new Allow(allowRule, ALLOW_OBLIGATIONS), principal, request, operation, model, null, body);
  }

  private Principal identify(InferenceRequest request) throws AuthenticationException {
    return IdentityChain.identify(resolvers, request);
  }

  private Deny checkParameters(Principal principal, JsonNode body) {
    return parameterRules.check(principal, body);
  }

  /** Keeps caller-chosen text in messages short: a model name is the caller's to pick. */
  private static String excerpt(String s) {
    return s.length() <= 128 ? s : s.substring(0, 128) + "...";
  }

  private static boolean inGroups(Principal p, Set<String> groups) {
    if (groups.contains("*")) return true;
    for (String g : groups) {
      if (p.inGroup(g)) return true;
    }
    return false;
  }

  private static boolean matches(
      Set<String> methods, List<Glob> paths, String method, String path, String relative) {
    if (!methods.contains("*") && !methods.contains(method)) return false;
    return Glob.matchesAny(paths, path)
        || (!relative.equals(path) && Glob.matchesAny(paths, relative));
  }

  /** A 401 with the RFC 6750 challenge; the description never quotes the credential. */
  public static Deny unauthenticated(String description) {
    String safe = description.replace('"', '\'').replace('\\', '/');
    return new Deny(
        401,
        "unauthenticated",
        "authentication failed: " + description,
        "identity",
        Map.of(
            "WWW-Authenticate",
            "Bearer error=\"invalid_token\", error_description=\"" + safe + "\""));
  }
}
