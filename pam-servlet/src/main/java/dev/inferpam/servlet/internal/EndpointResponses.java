package dev.inferpam.servlet.internal;

import dev.inferpam.api.Principal;
import dev.inferpam.core.Authentication;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.RequestPaths;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Optional;
import org.slf4j.Logger;

/**
 * How inferpam's own endpoints (reviewer, quota) answer: JSON, {@code Cache-Control: no-store},
 * errors in the engine's error shape, never a stack trace; and what they log: at most one line
 * per request, never a stack trace at the default levels, so that no caller can flood the log.
 * Stateless.
 */
public final class EndpointResponses {
  private static final byte[] INTERNAL_ERROR =
      ErrorResponse.of(500, "internal_error", "the request could not be handled", null).body();

  private EndpointResponses() {}

  /** What an endpoint does for a caller the engine authenticated. */
  @FunctionalInterface
  public interface Endpoint {
    void handle(HttpServletRequest request, HttpServletResponse response, Principal caller)
        throws IOException;
  }

  /**
   * Serves one request to the endpoint named {@code name}: refuses an ambiguous path
   * ({@link #refusedPath}), authenticates the caller with {@code engine} (a refusal is answered as
   * the engine words it, challenge included), hands the authenticated caller to {@code endpoint},
   * and answers its unexpected exception as {@link #failed} does.
   */
  public static void serve(
      PamEngine engine,
      Logger log,
      String name,
      HttpServletRequest request,
      HttpServletResponse response,
      Endpoint endpoint)
      throws IOException {
    try {
      if (refusedPath(request, response)) return;
      Authentication who = engine.authenticate(RequestHeads.of(request));
      if (who instanceof Authentication.Refused refused) {
        write(response, refused.error());
        return;
      }
      endpoint.handle(request, response, ((Authentication.Authenticated) who).principal());
    } catch (IOException e) {
      throw e;
    } catch (RuntimeException e) {
      failed(log, name, request, response, e);
    }
  }

  /** 200 with a JSON body. */
  public static void ok(HttpServletResponse response, byte[] body) throws IOException {
    response.setStatus(200);
    response.setContentType("application/json");
    response.setHeader("Cache-Control", "no-store");
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
  }

  /** 405 with {@code Allow}. */
  public static void methodNotAllowed(HttpServletResponse response, String allow)
      throws IOException {
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

  /**
   * Refuses, as the filter does, a request whose path could be read two ways ({@code %2F},
   * {@code ;}, dot segments, {@code //}, bad percent-encoding, ...): 400 {@code bad_path}
   * ({@link RequestPaths#endpointRefusal}: a trailing {@code /} is let through, these endpoints
   * match paths exactly). Call it first, so that nothing asks the container for a decoded path it
   * would throw on.
   *
   * @return true when the request was refused (the answer is written)
   */
  public static boolean refusedPath(HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(request.getRequestURI());
    if (refused.isEmpty()) return false;
    write(response, refused.get());
    return true;
  }

  /**
   * Answers an endpoint's unexpected exception 500 {@code internal_error} and logs it as one
   * line naming the exception's type (its message may quote the caller's input, even a line
   * break); the stack trace only at debug level.
   */
  public static void failed(
      Logger log,
      String endpoint,
      HttpServletRequest request,
      HttpServletResponse response,
      RuntimeException e)
      throws IOException {
    log.error(
        "inferpam: {} endpoint failed on a {} request: {}",
        endpoint,
        safeMethod(request),
        e.getClass().getName());
    log.debug("inferpam: {} endpoint failure", endpoint, e);
    internalError(response);
  }

  /** The method when it is a plain token (the container takes any), else {@code ?}. */
  private static String safeMethod(HttpServletRequest request) {
    String m = request.getMethod();
    return m != null && m.length() <= 20 && m.chars().allMatch(c -> c > 32 && c < 127) ? m : "?";
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
