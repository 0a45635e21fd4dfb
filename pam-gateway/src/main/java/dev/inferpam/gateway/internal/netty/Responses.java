package dev.inferpam.gateway.internal.netty;

import dev.inferpam.core.ErrorResponse;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.DateFormatter;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import java.util.Date;
import java.util.Locale;
import java.util.Map;

/** The responses the Netty front writes itself. Stateless. */
final class Responses {
  private Responses() {}

  /**
   * The answer to a request refused before the engine sees it, as Jetty's error handler of the
   * gateway writes it ({@code JsonErrorHandler}): the JSON error shape, the status's reason phrase
   * in lower case as the message, no request id, and the connection closed.
   */
  static FullHttpResponse protocolError(int status) {
    String reason = HttpResponseStatus.valueOf(status).reasonPhrase();
    String code =
        status == 413 || status == 431 || status == 414
            ? "request_too_large"
            : status == 404
                ? "not_found"
                : status == 405
                    ? "method_not_allowed"
                    : status >= 500 ? "gateway_error" : "bad_request";
    byte[] body = ErrorResponse.of(status, code, reason.toLowerCase(Locale.ROOT), null).body();
    FullHttpResponse response = full(HttpVersion.HTTP_1_1, status, Map.of(), body);
    response.headers().set("Cache-Control", "no-store");
    response.headers().set("Connection", HttpHeaderValues.CLOSE);
    return response;
  }

  /** The status for a request head Netty's decoder refused. */
  static int statusOf(Throwable decoderFailure) {
    if (decoderFailure instanceof TooLongHttpLineException) return 414;
    if (decoderFailure instanceof TooLongHttpHeaderException) return 431;
    if (decoderFailure instanceof TooLongFrameException) return 431;
    return 400;
  }

  /** A complete response: status, headers (a JSON content type when none is given), body. */
  static FullHttpResponse full(
      HttpVersion version, int status, Map<String, String> headers, byte[] body) {
    FullHttpResponse response =
        new DefaultFullHttpResponse(
            version, HttpResponseStatus.valueOf(status), Unpooled.wrappedBuffer(body));
    headers.forEach((name, value) -> response.headers().set(name, value));
    if (!response.headers().contains(HttpHeaderNames.CONTENT_TYPE)) {
      response.headers().set("Content-Type", HttpHeaderValues.APPLICATION_JSON);
    }
    response.headers().setInt("Content-Length", body.length);
    date(response);
    return response;
  }

  private static volatile String date = "";
  private static volatile long dateSecond;

  /** Sets {@code Date}, as Jetty does on every response; formatted once a second. */
  static void date(HttpResponse response) {
    long second = System.currentTimeMillis() / 1000;
    String value = date;
    if (second != dateSecond || value.isEmpty()) {
      value = DateFormatter.format(new Date(second * 1000));
      date = value;
      dateSecond = second;
    }
    response.headers().set("Date", value);
  }
}
