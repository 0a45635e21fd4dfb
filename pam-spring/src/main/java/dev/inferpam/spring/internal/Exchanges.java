package dev.inferpam.spring.internal;

import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ResponsePlan;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.client.ClientHttpResponse;

/** What both Spring adapters do with heads and headers. Not API. */
public final class Exchanges {
  private Exchanges() {}

  /** The request head the engine decides on. */
  public static RequestHead head(HttpMethod method, URI uri, HttpHeaders headers) {
    String path = uri.getRawPath();
    return new RequestHead(
        method.name(),
        path == null || path.isEmpty() ? "/" : path,
        uri.getRawQuery(),
        multimap(headers),
        null);
  }

  /** Headers as a plain map, names as sent. */
  public static Map<String, List<String>> multimap(HttpHeaders headers) {
    Map<String, List<String>> out = new LinkedHashMap<>();
    for (Map.Entry<String, List<String>> e : headers.headerSet()) {
      out.put(e.getKey(), new ArrayList<>(e.getValue()));
    }
    return out;
  }

  /**
   * The caller's headers with the engine's edits: its credential and the headers the engine
   * removes out, the upstream credential in, and a {@code Content-Length} that fits the body sent.
   */
  public static HttpHeaders forwardHeaders(HttpHeaders caller, Forward forward) {
    HttpHeaders out = new HttpHeaders();
    out.putAll(caller);
    for (String name : forward.removeHeaders()) out.remove(name);
    forward.setHeaders().forEach(out::set);
    if (caller.containsKey(HttpHeaders.CONTENT_LENGTH)) {
      out.setContentLength(forward.body().length);
    }
    return out;
  }

  /** The response headers as the plan lets them reach the caller. */
  public static HttpHeaders shownHeaders(HttpHeaders upstream, ResponsePlan.Relay relay) {
    HttpHeaders out = new HttpHeaders();
    for (Map.Entry<String, List<String>> e : upstream.headerSet()) {
      String name = e.getKey();
      if (relay.dropContentLength() && name.equalsIgnoreCase(HttpHeaders.CONTENT_LENGTH)) continue;
      for (String value : e.getValue()) {
        String kept = relay.header(name, value);
        if (kept != null) out.add(name, kept);
      }
    }
    return out;
  }

  /** Whether a response has no body to read: 204, 304, 1xx or a {@code Content-Length} of 0. */
  public static boolean hasNoBody(ClientHttpResponse response) {
    try {
      int status = response.getStatusCode().value();
      return status == 204
          || status == 304
          || status < 200
          || response.getHeaders().getContentLength() == 0;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }
}
