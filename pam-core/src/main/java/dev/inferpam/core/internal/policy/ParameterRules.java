package dev.inferpam.core.internal.policy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Decision.Deny;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.http.DecoderAgreement;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code parameters} section of a policy, compiled: denied names (the policy's own and those
 * of its presets), list values a preset denies, and numeric caps. Immutable and thread-safe.
 *
 * <p><b>Denied names</b> count as used when present with any value but {@code null} or
 * {@code false}, at the top level, in Ollama's {@code options} or in TGI's {@code parameters}
 * (a dotted name such as {@code parameters.top_n_tokens} is looked up at that path only).
 *
 * <p><b>Caps</b> ({@code max}, with the other spellings in {@link Decider#MAX_ALIASES}, each
 * also looked up in {@code options} and {@code parameters}) accept only a JSON number within
 * {@code 0..max}. The bounds are exact so that no decoder reads a
 * larger value than the one checked:
 * <ul>
 *   <li>a string ({@code "100000"}, which pydantic coerces), a boolean or a container is refused
 *       ("must be a number");</li>
 *   <li>a negative value is refused: Ollama reads a negative {@code num_predict} as "no limit",
 *       and servers that take {@code -1} for "the default" would otherwise escape the cap;</li>
 *   <li>whole numbers are compared exactly, however large ({@code 9007199254740993} is not
 *       rounded to a double first, as Python and Go read it exactly);</li>
 *   <li>fractions and exponent forms ({@code 100.5}, {@code 1e3}) are compared as the double
 *       every decoder parses them to; a decoder that wants an integer refuses them or truncates
 *       toward zero (Ollama), never rounds up past the cap when the cap is whole;</li>
 *   <li>{@code -0} reads as zero everywhere and is allowed.</li>
 * </ul>
 */
public final class ParameterRules {
  private static final int MAX_VALUE_CHARS = 32;

  private record Denied(String name, String rule, String suffix) {}

  private record ValueDenial(ParameterPresets.ValueRule rule, String ruleName) {}

  private final List<Denied> deny;
  private final List<ValueDenial> values;
  private final Map<String, Double> max;

  /** Each capped name to the paths where it is looked up, split once rather than per request. */
  private final Map<String, List<CapPath>> caps;

  private record CapPath(String dotted, String[] parts) {}

  private final Set<String> exemptGroups;
  private final List<String> governedPaths;

  public ParameterRules(Policy.Parameters p) {
    List<Denied> d = new ArrayList<>();
    for (String name : p.deny()) d.add(new Denied(name, "parameters.deny", ""));
    List<ValueDenial> v = new ArrayList<>();
    for (String preset : p.presets()) {
      ParameterPresets.Preset pp = ParameterPresets.preset(preset);
      for (String name : pp.deny()) {
        if (!p.deny().contains(name))
          d.add(new Denied(name, "parameters.presets." + preset, " (preset " + preset + ")"));
      }
      for (ParameterPresets.ValueRule r : pp.values())
        v.add(new ValueDenial(r, "parameters.presets." + preset));
    }
    this.deny = List.copyOf(d);
    this.values = List.copyOf(v);
    this.max = p.max();
    Map<String, List<CapPath>> c = new java.util.LinkedHashMap<>();
    for (String m : max.keySet()) {
      c.put(m, aliases(m).stream().map(a -> new CapPath(a, a.split("\\."))).toList());
    }
    this.caps = java.util.Collections.unmodifiableMap(c);
    this.exemptGroups = p.exemptGroups();
    Set<String> paths = new LinkedHashSet<>();
    for (Denied x : deny) {
      paths.add(x.name());
      if (x.name().indexOf('.') < 0) {
        paths.add("options." + x.name());
        paths.add("parameters." + x.name());
      }
    }
    for (ValueDenial x : values) paths.add(x.rule().parameter());
    for (List<CapPath> a : caps.values()) a.forEach(cp -> paths.add(cp.dotted()));
    this.governedPaths = List.copyOf(paths);
  }

  /** Every dotted path these rules read, for {@link DecoderAgreement}. */
  public List<String> governedPaths() {
    return governedPaths;
  }

  /** The refusal for the first rule the body breaks, or {@code null}. */
  public Deny check(Principal principal, JsonNode body) {
    if (body == null || !body.isObject()) return null;
    for (String g : exemptGroups) {
      if (principal.inGroup(g)) return null;
    }
    for (Denied d : deny) {
      // each place on its own: a top-level false must not hide options.logprobs: true
      boolean used = used(lookup(body, d.name()));
      if (!used && d.name().indexOf('.') < 0) {
        used =
            used(body.path("options").get(d.name())) || used(body.path("parameters").get(d.name()));
      }
      if (used) {
        return new Deny(
            403,
            "parameter_denied",
            "parameter \"" + d.name() + "\" is denied by policy" + d.suffix(),
            d.rule());
      }
    }
    for (ValueDenial vd : values) {
      JsonNode list = body.get(vd.rule().parameter());
      if (list == null) continue;
      for (JsonNode item : list.isArray() ? list : List.of(list)) {
        if (item.isTextual() && vd.rule().matches(item.textValue())) {
          return new Deny(
              403,
              "parameter_denied",
              "parameter \""
                  + vd.rule().parameter()
                  + "\" value "
                  + PolicyText.quote(item.textValue())
                  + " is denied by policy (preset "
                  + vd.ruleName().substring("parameters.presets.".length())
                  + ")",
              vd.ruleName());
        }
      }
    }
    for (Map.Entry<String, List<CapPath>> m : caps.entrySet()) {
      double cap = max.get(m.getKey());
      for (CapPath cp : m.getValue()) {
        JsonNode v = body;
        for (String part : cp.parts()) v = v == null || !v.isObject() ? null : v.get(part);
        String alias = cp.dotted();
        if (v == null || v.isNull()) continue;
        String rule = "parameters.max." + m.getKey();
        if (!v.isNumber()) {
          return new Deny(
              403, "parameter_denied", "parameter \"" + alias + "\" must be a number", rule);
        }
        if (negative(v)) {
          return new Deny(
              403,
              "parameter_denied",
              "parameter \""
                  + alias
                  + "\" is "
                  + cut(v.asText())
                  + ", outside the allowed range 0.."
                  + formatNumber(cap),
              rule);
        }
        if (over(v, cap)) {
          return new Deny(
              403,
              "parameter_denied",
              "parameter \""
                  + alias
                  + "\" is "
                  + cut(v.asText())
                  + ", over the maximum "
                  + formatNumber(cap),
              rule);
        }
      }
    }
    return null;
  }

  /**
   * Where a cap on {@code name} looks: each of its spellings ({@link Decider#MAX_ALIASES}) at the
   * top level and, for an undotted spelling, also in Ollama's {@code options} and in
   * {@code parameters} (TGI, KServe), where those servers read their sampling settings.
   */
  private static List<String> aliases(String name) {
    Set<String> out = new LinkedHashSet<>();
    for (String a : Decider.MAX_ALIASES.getOrDefault(name, List.of(name))) {
      out.add(a);
      if (a.indexOf('.') < 0) {
        out.add("options." + a);
        out.add("parameters." + a);
      }
    }
    return List.copyOf(out);
  }

  /** A parameter set to null or false does not enable anything; any other value counts as use. */
  private static boolean used(JsonNode v) {
    return v != null && !v.isNull() && !(v.isBoolean() && !v.booleanValue());
  }

  private static boolean negative(JsonNode number) {
    if (number.isIntegralNumber()) {
      return number.canConvertToLong()
          ? number.longValue() < 0
          : number.bigIntegerValue().signum() < 0;
    }
    return number.doubleValue() < 0; // -0.0 is not
  }

  /** Whether a non-negative number is over {@code max}, exactly for whole numbers of any size. */
  static boolean over(JsonNode number, double max) {
    if (!number.isIntegralNumber()) return number.doubleValue() > max; // infinity is over
    if (Double.isInfinite(max)) return false;
    if (number.canConvertToLong() && Math.abs(max) < 0x1p62)
      return number.longValue() > (long) Math.floor(max);
    return new BigDecimal(number.bigIntegerValue()).compareTo(new BigDecimal(max)) > 0;
  }

  static JsonNode lookup(JsonNode body, String dotted) {
    if (dotted.indexOf('.') < 0) return body.isObject() ? body.get(dotted) : null; // most names
    JsonNode n = body;
    for (String part : dotted.split("\\.")) {
      if (n == null || !n.isObject()) return null;
      n = n.get(part);
    }
    return n;
  }

  private static String cut(String s) {
    return s.length() <= MAX_VALUE_CHARS ? s : s.substring(0, MAX_VALUE_CHARS) + "...";
  }

  private static String formatNumber(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
  }
}
