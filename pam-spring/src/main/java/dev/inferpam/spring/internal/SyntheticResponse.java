package dev.inferpam.spring.internal;

import dev.inferpam.core.ErrorResponse;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import org.springframework.http.HttpHeaders;
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
