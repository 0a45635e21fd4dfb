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
import java.util.function.Supplier;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.client.ClientHttpResponse;

/**
 * What both Spring adapters do with heads and headers. Not API.
 *
 * <p>Only {@link HttpHeaders} methods whose signatures Spring Framework 6.2 and 7.0 share are
 * called here (7.0's {@code HttpHeaders} is no longer a {@code Map}: a call compiled against 6.2's
 * {@code containsKey(Object)}, {@code remove(Object)} or {@code putAll(Map)} with headers fails on
 * 7.0), so that this module, compiled against 6.2, runs on both.
 */
public final class Exchanges {
  private Exchanges() {}

  /** Adds every value of {@code from} to {@code to}. */
  public static void copy(HttpHeaders from, HttpHeaders to) {
    for (Map.Entry<String, List<String>> e : from.headerSet()) {
      for (String value : e.getValue()) to.add(e.getKey(), value);
    }
  }

  /** Whether {@code headers} has {@code name}, on Spring 6.2 and 7.0 alike. */
  public static boolean has(HttpHeaders headers, String name) {
    return headers.getFirst(name) != null;
  }

  /**
   * {@code headers}, or a copy with {@code Authorization: Bearer <token>} from {@code
   * tokenSupplier} when they carry no caller credential ({@link
   * Forward#CALLER_CREDENTIAL_HEADERS}): a request that brings its own keeps it. A supplier that is
   * {@code null}, returns {@code null} or blank, or throws leaves the headers as they are (the
   * engine then refuses the request 401); what it threw is dropped, as it might quote the token.
   */
  public static HttpHeaders withCallerToken(HttpHeaders headers, Supplier<String> tokenSupplier) {
    if (tokenSupplier == null) return headers;
    for (String name : Forward.CALLER_CREDENTIAL_HEADERS) {
      if (has(headers, name)) return headers;
    }
    String token;
    try {
      token = tokenSupplier.get();
    } catch (RuntimeException e) {
      return headers;
    }
    if (token == null || token.isBlank()) return headers;
    HttpHeaders out = new HttpHeaders();
    copy(headers, out);
    out.set(HttpHeaders.AUTHORIZATION, "Bearer " + token);
    return out;
  }

  /** The request head the engine decides on. */
  public static RequestHead head(HttpMethod method, URI uri, HttpHeaders headers) {
    return RequestHead.of(method.name(), uri, multimap(headers));
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
    for (Map.Entry<String, List<String>> e : caller.headerSet()) {
      if (removed(forward, e.getKey())) continue;
      for (String value : e.getValue()) out.add(e.getKey(), value);
    }
    forward.setHeaders().forEach(out::set);
    if (has(caller, HttpHeaders.CONTENT_LENGTH)) {
      out.setContentLength(forward.body().length);
    }
    return out;
  }

  private static boolean removed(Forward forward, String name) {
    for (String r : forward.removeHeaders()) {
      if (r.equalsIgnoreCase(name)) return true;
    }
    return false;
  }

  /** The response headers as the plan lets them reach the caller. */
  public static HttpHeaders shownHeaders(HttpHeaders upstream, ResponsePlan.Relay relay) {
    HttpHeaders out = new HttpHeaders();
    relay
        .shownHeaders(multimap(upstream))
        .forEach((name, values) -> values.forEach(v -> out.add(name, v)));
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
