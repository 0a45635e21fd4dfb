package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.globs;
import static dev.inferpam.core.internal.policy.PolicyNodes.groups;
import static dev.inferpam.core.internal.policy.PolicyNodes.index;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.list;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.operations;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The {@code limits} section, as {@link #read} describes. Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class LimitsSection {
  private LimitsSection() {}

  /**
   * {@code limits}: a non-empty list of entries with {@code groups} (required), optional
   * {@code models} and {@code operations}, and at least one of {@code requests-per-minute},
   * {@code tokens-per-minute}, {@code tokens-per-day} (whole numbers {@code > 0}).
   */
  static List<Policy.Limit> read(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of limits");
    if (list.isEmpty()) throw fail(path, "must not be empty");
    List<Policy.Limit> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) out.add(limit(list.get(i), index(path, i)));
    return out;
  }

  private static Policy.Limit limit(JsonNode n, String path) {
    mapping(n, path);
    keys(
        n,
        path,
        Set.of(
            "groups",
            "models",
            "operations",
            "requests-per-minute",
            "tokens-per-minute",
            "tokens-per-day"),
        Set.of());
    Set<String> groups = groups(required(n, path, "groups"), child(path, "groups"));
    List<Glob> models = List.of();
    if (n.has("models")) models = globs(n.get("models"), child(path, "models"), false);
    Set<String> operations = Set.of();
    if (n.has("operations"))
      operations = operations(n.get("operations"), child(path, "operations"));
    Long rpm =
        n.has("requests-per-minute")
            ? positiveLong(n.get("requests-per-minute"), child(path, "requests-per-minute"))
            : null;
    Long tpm =
        n.has("tokens-per-minute")
            ? positiveLong(n.get("tokens-per-minute"), child(path, "tokens-per-minute"))
            : null;
    Long tpd =
        n.has("tokens-per-day")
            ? positiveLong(n.get("tokens-per-day"), child(path, "tokens-per-day"))
            : null;
    if (rpm == null && tpm == null && tpd == null) {
      throw fail(
          path, "give at least one of requests-per-minute, tokens-per-minute, tokens-per-day");
    }
    return new Policy.Limit(groups, models, operations, rpm, tpm, tpd);
  }

  private static long positiveLong(JsonNode n, String path) {
    if (!n.isIntegralNumber())
      throw fail(path, "expected a whole number, was " + PolicyText.describe(n));
    if (!n.canConvertToLong()) throw fail(path, "too large, was " + PolicyText.describe(n));
    if (n.longValue() <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return n.longValue();
  }
}
