package dev.inferpam.api;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * One HTTP request as the engine sees it, after path canonicalization.
 *
 * <p>Immutable and thread-safe. Header names are lower-cased; the body is the whole request
 * body, already bounded by the engine's body limit. The body array is not copied on access for
 * speed; treat it as read-only.
 *
 * @param method        upper-case HTTP method
 * @param path          the canonical path: percent-decoded once, never ambiguous
 * @param query         the raw query string without {@code ?}, or {@code null}
 * @param headers       lower-cased header names to their values, in order
 * @param body          the request body, empty when there is none
 * @param remoteAddress the peer address as the adapter saw it, or {@code null}
 */
public record InferenceRequest(
    String method,
    String path,
    String query,
    Map<String, List<String>> headers,
    byte[] body,
    String remoteAddress) {

  public InferenceRequest {
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(path, "path");
    method = method.toUpperCase(Locale.ROOT);
    headers = normalize(headers);
    body = body == null ? new byte[0] : body;
  }

  /** The first value of header {@code name} (case-insensitive), or {@code null}. */
  public String header(String name) {
    List<String> values = headers.get(name.toLowerCase(Locale.ROOT));
    return values == null || values.isEmpty() ? null : values.get(0);
  }

  /** The body decoded as UTF-8. */
  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }

  /**
   * Lower-cases names and copies lists so the result is immutable. A map this method returned
   * is returned as it is (it is already both), so headers passed along are normalized once.
   */
  public static Map<String, List<String>> normalize(Map<String, List<String>> headers) {
    if (headers == null || headers.isEmpty()) return Map.of();
    if (headers instanceof Normalized) return headers;
    TreeMap<String, List<String>> out = new TreeMap<>();
    headers.forEach(
        (name, values) -> {
          if (name == null || values == null) return;
          out.computeIfAbsent(name.toLowerCase(Locale.ROOT), k -> new ArrayList<>()).addAll(values);
        });
    out.replaceAll((k, v) -> List.copyOf(v));
    return new Normalized(out);
  }

  /** The result of {@link #normalize}: a read-only view of a sorted map nobody else holds. */
  private static final class Normalized extends java.util.AbstractMap<String, List<String>> {
    private final Map<String, List<String>> map;

    Normalized(TreeMap<String, List<String>> map) {
      this.map = Collections.unmodifiableMap(map);
    }

    @Override
    public java.util.Set<Map.Entry<String, List<String>>> entrySet() {
      return map.entrySet();
    }

    @Override
    public List<String> get(Object key) {
      return map.get(key);
    }

    @Override
    public boolean containsKey(Object key) {
      return map.containsKey(key);
    }

    @Override
    public int size() {
      return map.size();
    }
  }

  /** Shows method and path only: headers may hold credentials. */
  @Override
  public String toString() {
    return "InferenceRequest[" + method + " " + path + ", " + body.length + " bytes]";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof InferenceRequest r
        && method.equals(r.method)
        && path.equals(r.path)
        && Objects.equals(query, r.query)
        && headers.equals(r.headers)
        && java.util.Arrays.equals(body, r.body)
        && Objects.equals(remoteAddress, r.remoteAddress);
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        method, path, query, headers, java.util.Arrays.hashCode(body), remoteAddress);
  }
}
