package dev.inferpam.servlet.internal;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.adapter.EndpointResponse;
import dev.inferpam.core.adapter.Endpoints;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import org.slf4j.Logger;

/**
 * How inferpam's own endpoints (reviewer, quota) are served in a servlet container: the request
 * handed to {@link Endpoints}, its body read only when an endpoint asks for it, the
 * {@link EndpointResponse} written as it is; and what they log: at most one line per request,
 * never a stack trace at the default levels, so that no caller can flood the log. Stateless.
 */
public final class EndpointResponses {
  private static final byte[] INTERNAL_ERROR =
      ErrorResponse.of(500, "internal_error", "the request could not be handled", null).body();

  /** Largest body read and discarded before a 413, so the answer reaches the client. */
  private static final int DRAIN_LIMIT = 64 * 1024;

  private EndpointResponses() {}

  /** What an endpoint answers, given a reader of the request's body. */
  @FunctionalInterface
  public interface Endpoint {
    EndpointResponse answer(Endpoints.BodyReader body) throws IOException;
  }

  /**
   * Serves one request: asks {@code endpoint} for the answer, reading the body only when it asks
   * for it, and writes the answer. A body over {@link Endpoints#MAX_BODY_BYTES} is answered 413
   * after what is left of a modest one (up to 64 KiB) was read and discarded, so that the client,
   * still sending, reads the 413 instead of a connection reset; a larger one is cut off (the
   * container closes the connection). An unexpected exception is answered as {@link #failed}
   * does.
   */
  public static void serve(
      Logger log,
      String name,
      HttpServletRequest request,
      HttpServletResponse response,
      Endpoint endpoint)
      throws IOException {
    try {
      boolean[] read = new boolean[1];
      EndpointResponse answer =
          endpoint.answer(
              limit -> {
                read[0] = true;
                try (InputStream in = request.getInputStream()) {
                  byte[] body = in.readNBytes(limit);
                  if (body.length > Endpoints.MAX_BODY_BYTES) drain(in, DRAIN_LIMIT);
                  return body;
                }
              });
      if (answer.status() == 413 && !read[0]) {
        // Refused on its Content-Length alone, unread.
        long declared = request.getContentLengthLong();
        try (InputStream in = request.getInputStream()) {
          drain(in, declared > DRAIN_LIMIT ? 0 : DRAIN_LIMIT);
        }
      }
      write(response, answer);
    } catch (IOException e) {
      throw e;
    } catch (RuntimeException e) {
      failed(log, name, request, response, e);
    }
  }

  private static void drain(InputStream in, long limit) throws IOException {
    byte[] buf = new byte[4096];
    long left = limit;
    for (int n; left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) >= 0; )
      left -= n;
  }

  /** An endpoint's answer as it is: status, headers, {@code Content-Length}, body. */
  public static void write(HttpServletResponse response, EndpointResponse answer)
      throws IOException {
    response.setStatus(answer.status());
    for (Map.Entry<String, String> h : answer.headers().entrySet()) {
      if (h.getKey().equalsIgnoreCase("Content-Type")) response.setContentType(h.getValue());
      else response.setHeader(h.getKey(), h.getValue());
    }
    response.setContentLength(answer.body().length);
    if (answer.body().length > 0) response.getOutputStream().write(answer.body());
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
