package dev.inferpam.testsupport;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What a fake model received: method, request target (path and query as sent), headers in the
 * order they arrived and the body bytes. Immutable.
 *
 * @param method  e.g. {@code POST}
 * @param target  the path with its query, e.g. {@code /v1/chat/completions?x=1}
 * @param headers every header line, in order, names as sent
 * @param body    the body; empty when there was none
 */
public record ModelRequest(
    String method, String target, List<Map.Entry<String, String>> headers, byte[] body) {
  public ModelRequest {
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(target, "target");
    headers = List.copyOf(headers);
    body = body == null ? new byte[0] : body.clone();
  }

  /** The first value of header {@code name} (case-insensitive), or {@code null}. */
  public String header(String name) {
    for (Map.Entry<String, String> h : headers) {
      if (h.getKey().equalsIgnoreCase(name)) return h.getValue();
    }
    return null;
  }

  /** Every value of header {@code name} (case-insensitive), in order. */
  public List<String> headers(String name) {
    List<String> out = new ArrayList<>();
    for (Map.Entry<String, String> h : headers) {
      if (h.getKey().equalsIgnoreCase(name)) out.add(h.getValue());
    }
    return out;
  }

  /** Header names in lower case, in order, repeated as often as they came. */
  public List<String> headerNames() {
    List<String> out = new ArrayList<>();
    for (Map.Entry<String, String> h : headers) out.add(h.getKey().toLowerCase(Locale.ROOT));
    return out;
  }

  /** Every header as {@code name: value} lines, for "does not contain" assertions. */
  public String headerText() {
    StringBuilder out = new StringBuilder();
    for (Map.Entry<String, String> h : headers)
      out.append(h.getKey()).append(": ").append(h.getValue()).append('\n');
    return out.toString();
  }

  /** The body as UTF-8 text. */
  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }

  @Override
  public byte[] body() {
    return body.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ModelRequest r
        && method.equals(r.method)
        && target.equals(r.target)
        && headers.equals(r.headers)
        && java.util.Arrays.equals(body, r.body);
  }

  @Override
  public int hashCode() {
    return Objects.hash(method, target, headers, java.util.Arrays.hashCode(body));
  }

  @Override
  public String toString() {
    return method
        + " "
        + target
        + " ("
        + headers.size()
        + " headers, "
        + body.length
        + " body bytes)";
  }
}
