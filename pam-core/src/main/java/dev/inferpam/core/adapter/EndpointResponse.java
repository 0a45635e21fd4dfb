package dev.inferpam.core.adapter;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One answer of inferpam's own endpoints ({@link Endpoints}), ready to write: the status, the
 * headers in the order to send them, and the body. A front writes them as they are and adds only
 * what its HTTP layer owns: {@code Content-Length} (always {@code body.length}, also on an empty
 * body and on {@code HEAD}), {@code Date}, {@code Connection}. On a {@code HEAD} request it sends
 * the headers (with the {@code Content-Length} of the body) and no body.
 *
 * <p>The headers are {@code Content-Type: application/json} and {@code Cache-Control: no-store}
 * on every JSON answer, {@code Allow} on a 405, {@code WWW-Authenticate} on a 401, and
 * {@code Location} (with no other header and an empty body) on the 301 of {@code /pam}. No
 * header repeats. The body must not be modified.
 *
 * @param status  the HTTP status
 * @param headers header names (as written) to values, in the order to send them; unmodifiable
 * @param body    the body bytes; empty when there is none
 */
public record EndpointResponse(int status, Map<String, String> headers, byte[] body) {
  public EndpointResponse {
    Objects.requireNonNull(headers, "headers");
    Objects.requireNonNull(body, "body");
    headers = Collections.unmodifiableMap(new LinkedHashMap<>(headers));
  }

  /** The body as UTF-8 text. */
  public String bodyText() {
    return new String(body, StandardCharsets.UTF_8);
  }

  @Override
  public String toString() {
    return "EndpointResponse[" + status + " " + headers + ", " + body.length + " bytes]";
  }
}
