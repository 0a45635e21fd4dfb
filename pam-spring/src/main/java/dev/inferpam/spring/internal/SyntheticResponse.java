package dev.inferpam.spring.internal;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.adapter.Forward;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.net.URI;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.HttpRequest;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.MediaType;
import org.springframework.http.client.ClientHttpResponse;

/** The engine's answer in place of the server's (a denial): JSON error, status and headers. */
public final class SyntheticResponse implements ClientHttpResponse {
  private final ErrorResponse error;
  private final HttpHeaders headers;

  public SyntheticResponse(ErrorResponse error) {
    this.error = error;
    this.headers = headers(error);
  }

  /**
   * The request a synthetic answer is to, as a reactive client's response names it: method, URI
   * and headers without the caller's credentials.
   */
  public static HttpRequest request(HttpMethod method, URI uri, HttpHeaders headers) {
    HttpHeaders shown = new HttpHeaders();
    for (Map.Entry<String, List<String>> e : headers.headerSet()) {
      if (Forward.CALLER_CREDENTIAL_HEADERS.contains(e.getKey().toLowerCase(Locale.ROOT))) {
        continue;
      }
      for (String value : e.getValue()) shown.add(e.getKey(), value);
    }
    return new HttpRequest() {
      @Override
      public HttpMethod getMethod() {
        return method;
      }

      @Override
      public URI getURI() {
        return uri;
      }

      @Override
      public Map<String, Object> getAttributes() {
        return Map.of();
      }

      @Override
      public HttpHeaders getHeaders() {
        return shown;
      }
    };
  }

  /** The error's headers, with its JSON type and length. */
  public static HttpHeaders headers(ErrorResponse error) {
    HttpHeaders h = new HttpHeaders();
    error.headers().forEach(h::set);
    if (!Exchanges.has(h, HttpHeaders.CONTENT_TYPE)) h.setContentType(MediaType.APPLICATION_JSON);
    h.setContentLength(error.body().length);
    return h;
  }

  @Override
  public HttpStatusCode getStatusCode() {
    return HttpStatusCode.valueOf(error.status());
  }

  @Override
  public String getStatusText() {
    return "inferpam";
  }

  @Override
  public HttpHeaders getHeaders() {
    return headers;
  }

  @Override
  public InputStream getBody() {
    return new ByteArrayInputStream(error.body());
  }

  @Override
  public void close() {}
}
