package dev.inferpam.servlet.internal;

import dev.inferpam.core.RequestHead;
import jakarta.servlet.http.HttpServletRequest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The head of a servlet request as the engine takes it. Stateless. */
public final class RequestHeads {
  private RequestHeads() {}

  /** The request as received: the raw path, never one the container decoded or normalised. */
  public static RequestHead of(HttpServletRequest request) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    Enumeration<String> names = request.getHeaderNames();
    if (names != null) {
      for (String name : Collections.list(names)) {
        Enumeration<String> values = request.getHeaders(name);
        List<String> list = values == null ? new ArrayList<>() : Collections.list(values);
        headers.computeIfAbsent(name, k -> new ArrayList<>()).addAll(list);
      }
    }
    String rawPath = request.getRequestURI();
    return new RequestHead(
        request.getMethod(),
        rawPath == null ? "" : rawPath,
        request.getQueryString(),
        headers,
        request.getRemoteAddr());
  }
}
