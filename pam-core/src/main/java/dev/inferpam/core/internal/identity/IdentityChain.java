package dev.inferpam.core.internal.identity;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.Background;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The identity resolvers of a policy and how they are asked, in one place for the engine and
 * anything else that must identify callers the same way (the reviewer endpoints). Stateless.
 */
public final class IdentityChain {
  private IdentityChain() {}

  /**
   * The policy's API keys, then its OIDC issuers, then {@code extra} in order. The OIDC resolver
   * fetches keys on daemon threads of its own; whoever builds it closes it
   * ({@link OidcResolver#close()}).
   */
  public static List<IdentityResolver> fromPolicy(
      Policy policy, Clock clock, List<IdentityResolver> extra) {
    return fromPolicy(policy, clock, extra, Background.DEFAULT);
  }

  /**
   * As {@link #fromPolicy(Policy, Clock, List)}, with the OIDC resolver's fetches and refreshes on
   * {@code background} (see {@link OidcResolver}).
   */
  public static List<IdentityResolver> fromPolicy(
      Policy policy, Clock clock, List<IdentityResolver> extra, Background background) {
    return fromPolicy(policy, clock, extra, background, issuer -> {});
  }

  /**
   * As {@link #fromPolicy(Policy, Clock, List, Background)}, telling {@code keyFetchFailed} of
   * every OIDC key set or discovery document that could not be had (see {@link OidcResolver}).
   */
  public static List<IdentityResolver> fromPolicy(
      Policy policy,
      Clock clock,
      List<IdentityResolver> extra,
      Background background,
      java.util.function.Consumer<String> keyFetchFailed) {
    Objects.requireNonNull(policy, "policy");
    Objects.requireNonNull(clock, "clock");
    Objects.requireNonNull(background, "background");
    List<IdentityResolver> out = new ArrayList<>();
    if (!policy.identity().apiKeys().isEmpty())
      out.add(new ApiKeyResolver(policy.identity().apiKeys(), clock));
    if (!policy.identity().oidc().isEmpty()) {
      out.add(
          new OidcResolver(
              policy.identity().oidc(),
              clock,
              OidcResolver.DEFAULT_TOKEN_CACHE_SIZE,
              background,
              keyFetchFailed));
    }
    out.addAll(extra);
    return out;
  }

  /**
   * The first principal a resolver finds, or {@code null} when none recognises a credential.
   * A request that presents more than one credential is refused before any resolver is asked
   * ({@link CredentialHeaders}).
   *
   * @throws AuthenticationException when the request presents more than one credential; else
   *     the first resolver's complaint when none identified the caller and at least one refused
   *     the credential; other exceptions propagate (callers fail closed)
   */
  public static Principal identify(List<IdentityResolver> resolvers, InferenceRequest request)
      throws AuthenticationException {
    CredentialHeaders.requireAtMostOne(request);
    AuthenticationException first = null;
    for (IdentityResolver r : resolvers) {
      try {
        Optional<Principal> p = r.resolve(request);
        if (p != null && p.isPresent()) return p.get();
      } catch (AuthenticationException e) {
        if (first == null) first = e;
      }
    }
    if (first != null) throw first;
    return null;
  }
}
