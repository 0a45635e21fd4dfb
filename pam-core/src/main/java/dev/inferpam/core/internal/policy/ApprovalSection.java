package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.duration;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.globs;
import static dev.inferpam.core.internal.policy.PolicyNodes.groups;
import static dev.inferpam.core.internal.policy.PolicyNodes.index;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.list;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.nonEmpty;
import static dev.inferpam.core.internal.policy.PolicyNodes.operations;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveDuration;
import static dev.inferpam.core.internal.policy.PolicyNodes.positiveInt;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.strings;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.approval.ApprovalRules;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code approval} section, as {@link #read} describes. Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class ApprovalSection {
  private ApprovalSection() {}

  /**
   * {@code approval}: {@code reviewers} (required, non-empty list of groups, not {@code *}),
   * {@code timeout} (a duration, > 0 and at most 1h, default 5m), {@code grant} (0s to 1d, default
   * 0s), {@code rules} (required, non-empty list) and the inferpam extensions
   * {@code max-pending-per-principal} (default 5) and {@code max-pending} (default 1000), whole
   * numbers > 0 with the first not above the second.
   *
   * <p>Each rule has a {@code name} (required, unique, no {@code :}) and at least one condition:
   * {@code prompt-matches} (a regular expression checked like {@code masking.custom} patterns by
   * {@link dev.inferpam.core.internal.masking.CustomPatterns#check}: bounded quantifiers, no
   * nested repetition, so matching is linear in the prompt; it is searched as {@link ApprovalRules}
   * says, in the prompt as a reader sees it), {@code max-tokens-over} (a whole
   * number >= 0), {@code models} (globs), {@code operations} (known operation names) and
   * {@code groups} (who triggers review; {@code *} for anyone).
   */
  static Policy.Approval read(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "reviewers", "timeout", "grant", "rules", "max-pending-per-principal", "max-pending"),
        Set.of());
    String reviewersPath = child(path, "reviewers");
    List<String> reviewerList = strings(required(n, path, "reviewers"), reviewersPath, true);
    for (int i = 0; i < reviewerList.size(); i++) {
      if (reviewerList.get(i).equals("*")) {
        throw fail(
            index(reviewersPath, i), "\"*\" would let anyone approve; name the reviewer groups");
      }
    }
    Set<String> reviewers = new LinkedHashSet<>(reviewerList);
    java.time.Duration timeout = Policy.Approval.DEFAULT_TIMEOUT;
    if (n.has("timeout")) {
      String p = child(path, "timeout");
      timeout = positiveDuration(n.get("timeout"), p);
      if (timeout.compareTo(Policy.Approval.MAX_TIMEOUT) > 0) {
        throw fail(p, "must be at most 1h, was " + PolicyText.quote(n.get("timeout").textValue()));
      }
    }
    java.time.Duration grant = java.time.Duration.ZERO;
    if (n.has("grant")) {
      String p = child(path, "grant");
      grant = duration(n.get("grant"), p);
      if (grant.compareTo(Policy.Approval.MAX_GRANT) > 0) {
        throw fail(p, "must be at most 1d, was " + PolicyText.quote(n.get("grant").textValue()));
      }
    }
    String rulesPath = child(path, "rules");
    JsonNode list = list(required(n, path, "rules"), rulesPath, "a list of rules");
    if (list.isEmpty()) throw fail(rulesPath, "must not be empty");
    List<Policy.ApprovalRule> rules = new ArrayList<>();
    Map<String, String> names = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      rules.add(approvalRule(list.get(i), index(rulesPath, i), names));
    }
    int perPrincipal = Policy.Approval.DEFAULT_MAX_PENDING_PER_PRINCIPAL;
    if (n.has("max-pending-per-principal")) {
      perPrincipal =
          positiveInt(n.get("max-pending-per-principal"), child(path, "max-pending-per-principal"));
    }
    int total = Policy.Approval.DEFAULT_MAX_PENDING;
    if (n.has("max-pending")) total = positiveInt(n.get("max-pending"), child(path, "max-pending"));
    if (perPrincipal > total) {
      throw fail(
          child(path, "max-pending-per-principal"),
          "must not exceed max-pending (" + total + "), was " + perPrincipal);
    }
    return new Policy.Approval(reviewers, timeout, grant, rules, perPrincipal, total);
  }

  private static Policy.ApprovalRule approvalRule(
      JsonNode n, String path, Map<String, String> names) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of("name", "prompt-matches", "max-tokens-over", "models", "operations", "groups"),
        Set.of());
    String namePath = child(path, "name");
    String name = nonEmpty(required(n, path, "name"), namePath);
    // Decisions and records name the rule; "approval.rules[0] (x)" style names must stay
    // unambiguous.
    if (name.indexOf(':') >= 0)
      throw fail(namePath, "\":\" is not allowed in a rule name, was " + PolicyText.quote(name));
    String seen = names.putIfAbsent(name, path);
    if (seen != null)
      throw fail(namePath, "duplicate name " + PolicyText.quote(name) + " (also " + seen + ")");
    String prompt = null;
    if (n.has("prompt-matches")) {
      String p = child(path, "prompt-matches");
      prompt = nonEmpty(n.get("prompt-matches"), p);
      try {
        dev.inferpam.core.internal.masking.CustomPatterns.check(prompt);
      } catch (IllegalArgumentException e) {
        throw fail(p, e.getMessage() + ", was " + PolicyText.quote(prompt));
      }
    }
    Long maxTokens = null;
    if (n.has("max-tokens-over")) {
      String p = child(path, "max-tokens-over");
      JsonNode v = n.get("max-tokens-over");
      if (!v.isIntegralNumber())
        throw fail(p, "expected a whole number, was " + PolicyText.describe(v));
      if (!v.canConvertToLong()) throw fail(p, "too large, was " + PolicyText.describe(v));
      if (v.longValue() < 0) throw fail(p, "must be >= 0, was " + PolicyText.describe(v));
      maxTokens = v.longValue();
    }
    List<Glob> models = List.of();
    if (n.has("models")) models = globs(n.get("models"), child(path, "models"), false);
    Set<String> operations = Set.of();
    if (n.has("operations"))
      operations = operations(n.get("operations"), child(path, "operations"));
    Set<String> groups = Set.of();
    if (n.has("groups")) groups = groups(n.get("groups"), child(path, "groups"));
    if (prompt == null
        && maxTokens == null
        && models.isEmpty()
        && operations.isEmpty()
        && groups.isEmpty()) {
      throw fail(
          path,
          "rule "
              + PolicyText.quote(name)
              + " has no condition: give at least one of prompt-matches, "
              + "max-tokens-over, models, operations, groups");
    }
    return new Policy.ApprovalRule(name, prompt, maxTokens, models, operations, groups);
  }
}
