package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.index;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.list;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.nonEmpty;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.strings;
import static dev.inferpam.core.internal.policy.PolicyNodes.text;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.identity.OidcResolver;
import dev.inferpam.core.internal.identity.OidcRules;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The {@code identity} section: {@code api-keys} (name, sha256, groups, expires) and
 * {@code oidc} issuers. Stateless; failures are {@link dev.inferpam.core.PolicyException}s
 * naming the key path. A key's hash is never echoed in a message.
 */
final class IdentitySection {
  private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-fA-F]{64}");

  private IdentitySection() {}

  static Policy.Identity read(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("api-keys", "oidc"), Set.of());
    List<Policy.ApiKey> keys = new ArrayList<>();
    if (n.has("api-keys")) {
      String listPath = child(path, "api-keys");
      JsonNode list = list(n.get("api-keys"), listPath, "a list of keys");
      Map<String, String> names = new HashMap<>();
      Map<String, String> hashes = new HashMap<>();
      for (int i = 0; i < list.size(); i++) {
        String itemPath = index(listPath, i);
        Policy.ApiKey key = apiKey(list.get(i), itemPath);
        String seen = names.putIfAbsent(key.name(), itemPath);
        if (seen != null) {
          throw fail(
              child(itemPath, "name"),
              "duplicate name " + PolicyText.quote(key.name()) + " (also " + seen + ")");
        }
        // One key must identify one principal.
        String sameKey = hashes.putIfAbsent(key.sha256Hex(), itemPath);
        if (sameKey != null) throw fail(child(itemPath, "sha256"), "same key as " + sameKey);
        keys.add(key);
      }
    }
    List<Policy.OidcIssuer> oidc = List.of();
    if (n.has("oidc")) oidc = oidcIssuers(n.get("oidc"), child(path, "oidc"));
    return new Policy.Identity(keys, oidc);
  }

  /**
   * {@code identity.oidc}: a list of issuers, each with {@code issuer} (absolute https URL, http
   * only for loopback hosts, no query) and {@code audience} required; optional {@code jwks-uri}
   * (same URL rule), {@code algorithms} (asymmetric only; {@code none} and HMAC are refused),
   * {@code groups-claim} / {@code subject-claim} (dotted paths), {@code require-type} and
   * {@code clock-skew} (0s to 5m). Rules shared with {@link OidcResolver} are in {@link OidcRules}.
   */
  private static List<Policy.OidcIssuer> oidcIssuers(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of issuers");
    List<Policy.OidcIssuer> out = new ArrayList<>();
    Map<String, String> seen = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      String itemPath = index(path, i);
      Policy.OidcIssuer issuer = oidcIssuer(list.get(i), itemPath);
      // Tokens are matched to an issuer by "iss"; two entries for one issuer would be ambiguous.
      String other = seen.putIfAbsent(issuer.issuer(), itemPath);
      if (other != null) {
        throw fail(
            child(itemPath, "issuer"),
            "duplicate issuer " + PolicyText.quote(issuer.issuer()) + " (also " + other + ")");
      }
      out.add(issuer);
    }
    return out;
  }

  private static Policy.OidcIssuer oidcIssuer(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "issuer",
            "audience",
            "jwks-uri",
            "algorithms",
            "groups-claim",
            "subject-claim",
            "require-type",
            "clock-skew"),
        Set.of());
    String issuer = oidcUrl(required(n, path, "issuer"), child(path, "issuer"), true);
    String audience = nonEmpty(required(n, path, "audience"), child(path, "audience"));
    java.net.URI jwksUri = null; // absent: discovered from the issuer
    if (n.has("jwks-uri"))
      jwksUri = java.net.URI.create(oidcUrl(n.get("jwks-uri"), child(path, "jwks-uri"), false));
    List<String> algorithms = null; // absent: Policy.OidcIssuer applies the default
    if (n.has("algorithms")) {
      String algPath = child(path, "algorithms");
      List<String> list = strings(n.get("algorithms"), algPath, true);
      for (int i = 0; i < list.size(); i++) {
        String problem = OidcRules.algorithmProblem(list.get(i));
        if (problem != null)
          throw fail(index(algPath, i), problem + ", was " + PolicyText.quote(list.get(i)));
      }
      algorithms = List.copyOf(new LinkedHashSet<>(list));
    }
    String groupsClaim =
        n.has("groups-claim")
            ? claimPath(n.get("groups-claim"), child(path, "groups-claim"))
            : null;
    String subjectClaim =
        n.has("subject-claim")
            ? claimPath(n.get("subject-claim"), child(path, "subject-claim"))
            : null;
    String requireType = null;
    if (n.has("require-type")) {
      String typePath = child(path, "require-type");
      requireType = text(n.get("require-type"), typePath);
      String problem = OidcRules.typeProblem(requireType);
      if (problem != null) throw fail(typePath, problem + ", was " + PolicyText.quote(requireType));
    }
    java.time.Duration clockSkew = null; // absent: Policy.OidcIssuer applies the default
    if (n.has("clock-skew")) {
      String skewPath = child(path, "clock-skew");
      JsonNode skew = n.get("clock-skew");
      if (!skew.isTextual())
        throw fail(skewPath, "expected a duration such as 30s, was " + PolicyText.describe(skew));
      try {
        clockSkew = Durations.parse(skew.textValue());
      } catch (IllegalArgumentException e) {
        throw fail(skewPath, e.getMessage());
      }
      String problem = OidcRules.clockSkewProblem(clockSkew);
      if (problem != null)
        throw fail(skewPath, problem + ", was " + PolicyText.quote(skew.textValue()));
    }
    return new Policy.OidcIssuer(
        issuer, audience, jwksUri, algorithms, groupsClaim, subjectClaim, requireType, clockSkew);
  }

  private static String oidcUrl(JsonNode n, String path, boolean issuer) {
    String url = nonEmpty(n, path);
    String problem = OidcRules.urlProblem(url, issuer);
    if (problem != null) {
      throw fail(
          path, OidcRules.hasUserInfo(url) ? problem : problem + ", was " + PolicyText.quote(url));
    }
    return url;
  }

  private static String claimPath(JsonNode n, String path) {
    String claim = text(n, path);
    String problem = OidcRules.claimPathProblem(claim);
    if (problem != null) throw fail(path, problem + ", was " + PolicyText.quote(claim));
    return claim;
  }

  private static Policy.ApiKey apiKey(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("name", "sha256", "groups", "expires"), Set.of());
    String name = nonEmpty(required(n, path, "name"), child(path, "name"));
    JsonNode hash = required(n, path, "sha256");
    // The value is not echoed: someone may have pasted the key itself instead of its hash.
    if (!hash.isTextual() || !SHA256_HEX.matcher(hash.textValue()).matches()) {
      throw fail(child(path, "sha256"), "expected 64 hex characters");
    }
    Set<String> groups = Set.of();
    if (n.has("groups")) {
      String groupsPath = child(path, "groups");
      List<String> list = strings(n.get("groups"), groupsPath, false);
      for (int i = 0; i < list.size(); i++) {
        // "*" means "any group" in rules; a principal holding it would be ambiguous.
        if (list.get(i).equals("*")) throw fail(index(groupsPath, i), "\"*\" is not a group name");
      }
      groups = new LinkedHashSet<>(list);
    }
    Instant expires = null;
    if (n.has("expires")) expires = instant(n.get("expires"), child(path, "expires"));
    return new Policy.ApiKey(name, hash.textValue().toLowerCase(Locale.ROOT), groups, expires);
  }

  private static Instant instant(JsonNode n, String path) {
    String s = text(n, path);
    try {
      return Instant.parse(s);
    } catch (DateTimeParseException e) {
      try {
        return OffsetDateTime.parse(s).toInstant();
      } catch (DateTimeParseException e2) {
        throw fail(
            path,
            "expected an ISO-8601 instant such as 2027-01-31T00:00:00Z, was "
                + PolicyText.quote(s));
      }
    }
  }
}
