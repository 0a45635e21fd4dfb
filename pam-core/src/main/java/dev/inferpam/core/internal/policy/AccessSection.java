package dev.inferpam.core.internal.policy;

import static dev.inferpam.core.internal.policy.PolicyNodes.child;
import static dev.inferpam.core.internal.policy.PolicyNodes.fail;
import static dev.inferpam.core.internal.policy.PolicyNodes.globs;
import static dev.inferpam.core.internal.policy.PolicyNodes.groups;
import static dev.inferpam.core.internal.policy.PolicyNodes.index;
import static dev.inferpam.core.internal.policy.PolicyNodes.keys;
import static dev.inferpam.core.internal.policy.PolicyNodes.list;
import static dev.inferpam.core.internal.policy.PolicyNodes.mapping;
import static dev.inferpam.core.internal.policy.PolicyNodes.methods;
import static dev.inferpam.core.internal.policy.PolicyNodes.nonEmpty;
import static dev.inferpam.core.internal.policy.PolicyNodes.number;
import static dev.inferpam.core.internal.policy.PolicyNodes.operations;
import static dev.inferpam.core.internal.policy.PolicyNodes.required;
import static dev.inferpam.core.internal.policy.PolicyNodes.strings;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Glob;
import dev.inferpam.core.Policy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The sections that say who may call what: {@code entitlements} (groups, model globs,
 * operations), {@code allow} and {@code block} (methods and path globs, block presets) and
 * {@code parameters} (deny, max, exempt groups, parameter presets). Stateless; failures are
 * {@link dev.inferpam.core.PolicyException}s naming the key path.
 */
final class AccessSection {
  private AccessSection() {}

  static List<Policy.Entitlement> entitlements(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of entitlements");
    List<Policy.Entitlement> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String p = index(path, i);
      JsonNode e = list.get(i);
      mapping(e, p);
      keys(e, p, Set.of("groups", "models", "operations"), Set.of());
      Set<String> groups = groups(required(e, p, "groups"), child(p, "groups"));
      List<Glob> models = globs(required(e, p, "models"), child(p, "models"), false);
      Set<String> ops = operations(required(e, p, "operations"), child(p, "operations"));
      out.add(new Policy.Entitlement(groups, models, ops));
    }
    return out;
  }

  static List<Policy.AllowRule> allow(JsonNode n, String path) {
    JsonNode list = list(n, path, "a list of rules");
    List<Policy.AllowRule> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String p = index(path, i);
      JsonNode r = list.get(i);
      mapping(r, p);
      keys(r, p, Set.of("groups", "methods", "paths"), Set.of());
      Set<String> groups = groups(required(r, p, "groups"), child(p, "groups"));
      Set<String> methods = methods(required(r, p, "methods"), child(p, "methods"));
      List<Glob> paths = globs(required(r, p, "paths"), child(p, "paths"), true);
      out.add(new Policy.AllowRule(groups, methods, paths));
    }
    return out;
  }

  static Policy.Block block(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("presets", "rules"), Set.of());
    List<String> presets = presets(n, path, Presets::rules);
    List<Policy.BlockRule> rules = new ArrayList<>();
    if (n.has("rules")) {
      String rulesPath = child(path, "rules");
      JsonNode list = list(n.get("rules"), rulesPath, "a list of rules");
      Map<String, String> names = new HashMap<>();
      for (int i = 0; i < list.size(); i++) {
        String p = index(rulesPath, i);
        JsonNode r = list.get(i);
        mapping(r, p);
        keys(r, p, Set.of("name", "methods", "paths"), Set.of());
        String namePath = child(p, "name");
        String name = nonEmpty(required(r, p, "name"), namePath);
        // Decisions and recordings name the rule that decided; that must be unambiguous.
        if (name.indexOf(':') >= 0)
          throw fail(
              namePath, "\":\" is reserved for preset rule names, was " + PolicyText.quote(name));
        String seen = names.putIfAbsent(name, p);
        if (seen != null)
          throw fail(namePath, "duplicate name " + PolicyText.quote(name) + " (also " + seen + ")");
        Set<String> methods = methods(required(r, p, "methods"), child(p, "methods"));
        List<Glob> paths = globs(required(r, p, "paths"), child(p, "paths"), true);
        rules.add(new Policy.BlockRule(name, methods, paths));
      }
    }
    return new Policy.Block(presets, rules);
  }

  /**
   * The section's {@code presets} list, each name checked by {@code lookup} (which throws
   * {@link IllegalArgumentException} naming the known presets for an unknown one); empty without
   * the key.
   */
  private static List<String> presets(
      JsonNode n, String path, java.util.function.Function<String, ?> lookup) {
    if (!n.has("presets")) return List.of();
    String presetsPath = child(path, "presets");
    List<String> presets = strings(n.get("presets"), presetsPath, false);
    for (int i = 0; i < presets.size(); i++) {
      try {
        lookup.apply(presets.get(i));
      } catch (IllegalArgumentException e) {
        throw fail(index(presetsPath, i), e.getMessage());
      }
    }
    return List.copyOf(new LinkedHashSet<>(presets)); // naming one twice adds nothing
  }

  static Policy.Parameters parameters(JsonNode n, String path) {
    mapping(n, path);
    keys(n, path, Set.of("deny", "max", "exempt-groups", "presets"), Set.of());
    Set<String> deny = Set.of();
    Map<String, Double> max = Map.of();
    Set<String> exempt = Set.of();
    List<String> presets = presets(n, path, ParameterPresets::preset);
    if (n.has("deny"))
      deny = new LinkedHashSet<>(strings(n.get("deny"), child(path, "deny"), false));
    if (n.has("max")) {
      String maxPath = child(path, "max");
      JsonNode m = n.get("max");
      mapping(m, maxPath);
      Map<String, Double> out = new LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> e : m.properties()) {
        String p = child(maxPath, e.getKey());
        if (e.getKey().isEmpty()) throw fail(p, "parameter name must not be empty");
        double cap = number(e.getValue(), p);
        // values are allowed in 0..max (a negative bound means "no limit" to some servers)
        if (cap < 0)
          throw fail(
              p,
              "must be >= 0 (values are allowed in 0..max), was "
                  + PolicyText.describe(e.getValue()));
        out.put(e.getKey(), cap);
      }
      max = out;
    }
    if (n.has("exempt-groups")) {
      String p = child(path, "exempt-groups");
      exempt = new LinkedHashSet<>(strings(n.get("exempt-groups"), p, false));
    }
    return new Policy.Parameters(deny, max, exempt, presets);
  }
}
