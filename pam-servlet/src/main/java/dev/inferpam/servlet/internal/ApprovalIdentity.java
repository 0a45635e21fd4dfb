package dev.inferpam.servlet.internal;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Decider;
import dev.inferpam.core.internal.ErrorBodies;
import dev.inferpam.core.internal.IdentityChain;
import jakarta.servlet.http.HttpServletRequest;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Identifies the caller of an inferpam endpoint (reviewer, quota) the way the engine identifies inference callers:
 * a chain of {@link IdentityResolver}s where the first principal wins, the first
 * {@link AuthenticationException} is the complaint when nobody identifies the caller, and any
 * other exception fails closed. A refusal is the engine's own 401 ({@link Decider#unauthenticated},
 * with its {@code WWW-Authenticate: Bearer} challenge and JSON body). Immutable and thread-safe.
 */
public final class ApprovalIdentity {
  private static final Logger log = LoggerFactory.getLogger(ApprovalIdentity.class);

  private final List<IdentityResolver> resolvers;

  /** The outcome of identifying one request: a principal, or the 401 to answer. */
  public record Result(Principal principal, ErrorResponse refusal) {}

  public ApprovalIdentity(List<IdentityResolver> resolvers) {
    Objects.requireNonNull(resolvers, "resolvers");
    if (resolvers.isEmpty()) throw new IllegalArgumentException("at least one identity resolver is required");
    this.resolvers = List.copyOf(resolvers);
  }

  /**
   * The resolvers an engine builds from {@code policy}: its API keys, then its OIDC issuers, then
   * {@code extra} in order.
   *
   * @throws IllegalArgumentException when the result would be empty
   */
  public static List<IdentityResolver> fromPolicy(Policy policy, Clock clock, List<IdentityResolver> extra) {
    Objects.requireNonNull(policy, "policy");
    Objects.requireNonNull(clock, "clock");
    List<IdentityResolver> out = IdentityChain.fromPolicy(policy, clock, extra);
    if (out.isEmpty()) throw new IllegalArgumentException("the policy identifies nobody and no resolver was given");
    return out;
  }

  /** Identifies the caller from the request line and headers (the body is not read). */
  public Result identify(HttpServletRequest http) {
    InferenceRequest request = headOnly(http);
    try {
      Principal p = IdentityChain.identify(resolvers, request);
      if (p != null) return new Result(p, null);
    } catch (AuthenticationException e) {
      return refuse(e.getMessage());
    } catch (RuntimeException e) {
      // Fail closed; the exception may quote the credential, so log only its type.
      log.warn("inferpam: identity resolver failed on an inferpam endpoint: {}", e.getClass().getName());
      return refuse("credential could not be verified");
    }
    boolean presented = request.header("authorization") != null || request.header("x-api-key") != null;
    return refuse(presented ? "unrecognised credential" : "no credential");
  }

  private static Result refuse(String description) {
    return new Result(null, ErrorBodies.of(Decider.unauthenticated(String.valueOf(description)), null));
  }

  private static InferenceRequest headOnly(HttpServletRequest http) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    Enumeration<String> names = http.getHeaderNames();
    if (names != null) {
      for (String name : Collections.list(names)) {
        Enumeration<String> values = http.getHeaders(name);
        if (values != null) headers.computeIfAbsent(name, k -> new ArrayList<>()).addAll(Collections.list(values));
      }
    }
    String path = http.getRequestURI();
    return new InferenceRequest(http.getMethod(), path == null ? "" : path, http.getQueryString(), headers,
        new byte[0], http.getRemoteAddr());
  }
}
