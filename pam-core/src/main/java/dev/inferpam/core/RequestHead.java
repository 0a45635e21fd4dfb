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

  @Override
  public String toString() {
    return "RequestHead[" + method + " " + rawPath + "]";
  }
}
