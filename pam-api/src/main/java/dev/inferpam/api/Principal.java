package dev.inferpam.api;

import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Who is calling, as resolved by an {@link IdentityResolver}.
 *
 * <p>Immutable and thread-safe. Never carries the credential it was resolved from.
 *
 * @param subject    stable identifier of the caller (OIDC {@code sub}, or an API key's name)
 * @param groups     groups the caller belongs to; entitlements are granted to groups
 * @param via        how the caller was identified, e.g. {@link #VIA_API_KEY} or {@link #VIA_OIDC}
 * @param issuer     the token issuer for OIDC principals, {@code null} otherwise
 * @param attributes further claims kept for policy and recording (never secrets)
 */
public record Principal(
    String subject, Set<String> groups, String via, String issuer, Map<String, Object> attributes) {

  public static final String VIA_API_KEY = "api-key";
  public static final String VIA_OIDC = "oidc";

  public Principal {
    Objects.requireNonNull(subject, "subject");
    Objects.requireNonNull(via, "via");
    if (subject.isBlank()) throw new IllegalArgumentException("subject must not be blank");
    groups = groups == null ? Set.of() : Set.copyOf(groups);
    attributes = attributes == null ? Map.of() : Map.copyOf(attributes);
  }

  /** A principal with no issuer and no attributes. */
  public static Principal of(String subject, Set<String> groups, String via) {
    return new Principal(subject, groups, via, null, Map.of());
  }

  /** True when this principal is in {@code group}. */
  public boolean inGroup(String group) {
    return groups.contains(group);
  }
}
