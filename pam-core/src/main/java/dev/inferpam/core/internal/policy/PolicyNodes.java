package dev.inferpam.core.internal.policy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.core.Glob;
import dev.inferpam.core.PolicyException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads typed values out of the policy tree for {@link PolicyLoader} and its sections: every
 * problem is a {@link PolicyException} that starts with the key path, e.g.
 * {@code parameters.max.n: expected a number, was "one"}. Nothing is coerced: a string where a
 * number or list is expected, or an unknown key, is an error. Stateless and thread-safe.
 */
final class PolicyNodes {
  /** Operation names an entitlement may grant, in documentation order. */
  static final List<String> OPERATIONS = List.of("chat", "completion", "embedding", "infer");

  private static final String NOT_SUPPORTED = "not supported by this release of inferpam";
  private static final Pattern SIMPLE_KEY = Pattern.compile("[A-Za-z0-9_-]+");
  private static final Pattern METHOD = Pattern.compile("[A-Za-z][A-Za-z0-9_-]*");
  private static final Pattern SIZE = Pattern.compile("([0-9]{1,19})(B|KiB|MiB|GiB)?");

  private PolicyNodes() {}

  /** A size: an integer number of bytes, or a string like {@code 1000}, {@code 512KiB}, {@code 8MiB}. */
  static long size(JsonNode n, String path) {
    long bytes;
    if (n.isIntegralNumber()) {
      if (!n.canConvertToLong()) throw fail(path, "too large, was " + PolicyText.describe(n));
      bytes = n.longValue();
    } else if (n.isTextual()) {
      Matcher m = SIZE.matcher(n.textValue());
      if (!m.matches()) {
        throw fail(
            path,
            "invalid size "
                + PolicyText.describe(n)
                + ": expected bytes or a whole number of KiB, MiB or GiB, e.g. 8MiB");
      }
      int shift =
          m.group(2) == null
              ? 0
              : switch (m.group(2)) {
                case "KiB" -> 10;
                case "MiB" -> 20;
                case "GiB" -> 30;
                default -> 0;
              };
      try {
        long count = Long.parseLong(m.group(1));
        if (count > (Long.MAX_VALUE >> shift)) throw new NumberFormatException();
        bytes = count << shift;
      } catch (NumberFormatException e) {
        throw fail(path, "too large, was " + PolicyText.describe(n));
      }
    } else {
      throw fail(path, "expected a size such as 8MiB, was " + PolicyText.describe(n));
    }
    if (bytes <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return bytes;
  }

  /** One of an enum's constants, written in lower case. */
  static <E extends Enum<E>> E choice(JsonNode n, String path, Class<E> type) {
    List<String> names = new ArrayList<>();
    for (E e : type.getEnumConstants()) names.add(e.name().toLowerCase(Locale.ROOT));
    String expected = "expected one of " + String.join(", ", names);
    if (!n.isTextual()) throw fail(path, expected + ", was " + PolicyText.describe(n));
    for (E e : type.getEnumConstants()) {
      if (e.name().toLowerCase(Locale.ROOT).equals(n.textValue())) return e;
    }
    throw fail(path, expected + ", was " + PolicyText.quote(n.textValue()));
  }

  static java.time.Duration positiveDuration(JsonNode n, String path) {
    java.time.Duration d = duration(n, path);
    if (d.isZero()) throw fail(path, "must be > 0, was " + PolicyText.quote(n.textValue()));
    return d;
  }

  static java.time.Duration duration(JsonNode n, String path) {
    if (!n.isTextual())
      throw fail(path, "expected a duration such as 30s, was " + PolicyText.describe(n));
    try {
      return Durations.parse(n.textValue());
    } catch (IllegalArgumentException e) {
      throw fail(path, e.getMessage());
    }
  }

  static int positiveInt(JsonNode n, String path) {
    if (!n.isIntegralNumber())
      throw fail(path, "expected a whole number, was " + PolicyText.describe(n));
    if (!n.canConvertToInt()) throw fail(path, "too large, was " + PolicyText.describe(n));
    if (n.intValue() <= 0) throw fail(path, "must be > 0, was " + PolicyText.describe(n));
    return n.intValue();
  }

  /** A non-empty list of known operation names. */
  static Set<String> operations(JsonNode n, String path) {
    List<String> ops = strings(n, path, true);
    for (int j = 0; j < ops.size(); j++) {
      if (!OPERATIONS.contains(ops.get(j))) {
        throw fail(
            index(path, j),
            "unknown operation "
                + PolicyText.quote(ops.get(j))
                + " (known: "
                + String.join(", ", OPERATIONS)
                + ")");
      }
    }
    return new LinkedHashSet<>(ops);
  }

  static Set<String> groups(JsonNode n, String path) {
    return new LinkedHashSet<>(strings(n, path, true));
  }

  static Set<String> methods(JsonNode n, String path) {
    List<String> list = strings(n, path, true);
    Set<String> out = new LinkedHashSet<>();
    for (int i = 0; i < list.size(); i++) {
      String m = list.get(i);
      if (!m.equals("*") && !METHOD.matcher(m).matches()) {
        throw fail(index(path, i), "expected an HTTP method or \"*\", was " + PolicyText.quote(m));
      }
      out.add(m.toUpperCase(Locale.ROOT));
    }
    return out;
  }

  static List<Glob> globs(JsonNode n, String path, boolean requestPaths) {
    List<String> list = strings(n, path, true);
    List<Glob> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      String s = list.get(i);
      if (requestPaths && !s.startsWith("/")) {
        throw fail(index(path, i), "must start with \"/\", was " + PolicyText.quote(s));
      }
      try {
        out.add(Glob.compile(s));
      } catch (IllegalArgumentException e) {
        throw fail(index(path, i), e.getMessage());
      }
    }
    return out;
  }

  static double number(JsonNode n, String path) {
    if (!n.isNumber()) throw fail(path, "expected a number, was " + PolicyText.describe(n));
    double d = n.doubleValue();
    if (!Double.isFinite(d))
      throw fail(path, "expected a finite number, was " + PolicyText.describe(n));
    return d;
  }

  /**
   * A list of non-empty strings. A single string where a list is expected is an error rather than
   * a one-element list, so that {@code groups: admins} is not quietly different from what the
   * writer meant.
   */
  static List<String> strings(JsonNode n, String path, boolean nonEmptyList) {
    if (!n.isArray()) throw fail(path, "expected a list of strings, was " + PolicyText.describe(n));
    if (nonEmptyList && n.isEmpty()) throw fail(path, "must not be empty");
    List<String> out = new ArrayList<>(n.size());
    for (int i = 0; i < n.size(); i++) out.add(nonEmpty(n.get(i), index(path, i)));
    return out;
  }

  static JsonNode list(JsonNode n, String path, String what) {
    if (!n.isArray()) throw fail(path, "expected " + what + ", was " + PolicyText.describe(n));
    return n;
  }

  static String text(JsonNode n, String path) {
    if (!n.isTextual()) throw fail(path, "expected a string, was " + PolicyText.describe(n));
    return n.textValue();
  }

  static String nonEmpty(JsonNode n, String path) {
    String s = text(n, path);
    if (s.isEmpty()) throw fail(path, "must not be empty");
    return s;
  }

  static void mapping(JsonNode n, String path) {
    if (!n.isObject()) throw fail(path, "expected a mapping, was " + PolicyText.describe(n));
  }

  static JsonNode required(JsonNode n, String path, String key) {
    JsonNode v = n.get(key);
    if (v == null) throw fail(child(path, key), "required");
    return v;
  }

  /** Refuses unknown keys, and keys of the spec this release does not implement. */
  static void keys(JsonNode n, String path, Set<String> known, Set<String> unsupported) {
    for (Map.Entry<String, JsonNode> field : n.properties()) {
      String key = field.getKey();
      if (unsupported.contains(key)) throw fail(child(path, key), NOT_SUPPORTED);
      if (!known.contains(key)) throw fail(child(path, key), "unknown key");
    }
  }

  static String envVarName(JsonNode n, String path) {
    String name = nonEmpty(n, path);
    if (name.indexOf('=') >= 0 || name.indexOf('\0') >= 0) {
      throw fail(path, "expected an environment variable name, was " + PolicyText.quote(name));
    }
    return name;
  }

  static Path filePath(JsonNode n, String path) {
    String s = nonEmpty(n, path);
    try {
      return Path.of(s);
    } catch (InvalidPathException e) {
      throw fail(path, "invalid path " + PolicyText.quote(s));
    }
  }

  static String child(String path, String key) {
    if (!SIMPLE_KEY.matcher(key).matches()) return path + "[" + PolicyText.quote(key) + "]";
    return path.isEmpty() ? key : path + "." + key;
  }

  static String index(String path, int i) {
    return path + "[" + i + "]";
  }

  static PolicyException fail(String path, String problem) {
    return new PolicyException(path + ": " + problem);
  }
}
