package dev.inferpam.servlet.internal;

import dev.inferpam.core.ErrorResponse;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/**
 * How inferpam's own endpoints (reviewer, quota) answer: JSON, {@code Cache-Control: no-store},
 * errors in the engine's error shape, never a stack trace. Stateless.
 */
public final class EndpointResponses {
  private static final byte[] INTERNAL_ERROR =
      ErrorResponse.of(500, "internal_error", "the request could not be handled", null).body();

  private EndpointResponses() {}

  /** 200 with a JSON body. */
  public static void ok(HttpServletResponse response, byte[] body) throws IOException {
    response.setStatus(200);
    response.setContentType("application/json");
    response.setHeader("Cache-Control", "no-store");
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
  }

  /** 405 with {@code Allow}. */
  public static void methodNotAllowed(HttpServletResponse response, String allow) throws IOException {
    response.setHeader("Allow", allow);
    error(response, 405, "method_not_allowed", "use " + allow);
  }

  /** An error in the engine's shape, without a request id. */
  public static void error(HttpServletResponse response, int status, String code, String message)
      throws IOException {
    write(response, ErrorResponse.of(status, code, message, null));
  }

  /** An error answer as it is, with its headers (e.g. a {@code WWW-Authenticate} challenge). */
  public static void write(HttpServletResponse response, ErrorResponse error) throws IOException {
    response.setStatus(error.status());
    error.headers().forEach(response::setHeader);
    response.setHeader("Cache-Control", "no-store");
    response.setContentLength(error.body().length);
    response.getOutputStream().write(error.body());
  }

  /** 500 {@code internal_error} for a bug, when the response can still take it; details belong in the log. */
  public static void internalError(HttpServletResponse response) throws IOException {
    if (response.isCommitted()) return;
    response.resetBuffer();
    response.setStatus(500);
    response.setContentType("application/json");
    response.setHeader("Cache-Control", "no-store");
    response.setContentLength(INTERNAL_ERROR.length);
    response.getOutputStream().write(INTERNAL_ERROR);
  }
}
