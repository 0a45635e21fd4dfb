package dev.inferpam.gateway.internal;

import dev.inferpam.core.ErrorResponse;
import java.nio.ByteBuffer;
import java.util.Locale;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

/**
 * Jetty's own errors — a request it refuses before any filter sees it (a malformed request line,
 * headers too large, a URI too long, a target no context serves such as {@code OPTIONS *}),
 * whatever the method — answered in the gateway's JSON error shape instead of
 * Jetty's HTML page, so a client always gets {@code {"error":{"type":"pam_error",...}}}. The
 * message is Jetty's short reason phrase, never a cause or a stack trace. These requests never
 * reach the engine, so they are not recorded (nothing about the caller is known yet).
 */
public final class JsonErrorHandler extends ErrorHandler {

  /** Every method gets the JSON body (Jetty's default writes none for {@code OPTIONS *}, {@code PUT}, ...). */
  @Override
  public boolean errorPageForMethod(String method) {
    return true;
  }

  @Override
  protected void generateResponse(
      Request request,
      Response response,
      int code,
      String message,
      Throwable cause,
      Callback callback) {
    String reason = org.eclipse.jetty.http.HttpStatus.getMessage(code);
    String errorCode =
        code == 413 || code == 431 || code == 414
            ? "request_too_large"
            : code == 404
                ? "not_found"
                : code == 405
                    ? "method_not_allowed"
                    : code >= 500 ? "gateway_error" : "bad_request";
    byte[] body =
        ErrorResponse.of(
                code,
                errorCode,
                reason == null ? "request refused" : reason.toLowerCase(Locale.ROOT),
                null)
            .body();
    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
    response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
    response.write(true, ByteBuffer.wrap(body), callback);
  }
}
