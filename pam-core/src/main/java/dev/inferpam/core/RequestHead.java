package dev.inferpam.core;

import dev.inferpam.api.InferenceRequest;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * An incoming request as an adapter received it, before any check: the path is raw (still
 * percent-encoded, exactly as on the wire, without the query). Immutable.
 *
 * @param method        HTTP method
 * @param rawPath       the raw request path, e.g. {@code /api/%70ull}
 * @param query         the raw query without {@code ?}, or {@code null}
 * @param headers       header names (any case) to values
 * @param remoteAddress the peer address, or {@code null}
 */
public record RequestHead(
    String method,
    String rawPath,
    String query,
    Map<String, List<String>> headers,
    String remoteAddress) {
  public RequestHead {
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(rawPath, "rawPath");
    headers = InferenceRequest.normalize(headers);
  }

  /**
   * The head of a request a client is about to send to {@code uri} (client-side adapters): its raw
   * path ({@code /} when it has none) and raw query, no remote address.
   */
  public static RequestHead of(String method, java.net.URI uri, Map<String, List<String>> headers) {
    String path = uri.getRawPath();
    return new RequestHead(
        method, path == null || path.isEmpty() ? "/" : path, uri.getRawQuery(), headers, null);
  }

  @Override
  public String toString() {
    return "RequestHead[" + method + " " + rawPath + "]";
  }
}
