package dev.inferpam.gateway.internal.netty;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ForwardHeaders;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.gateway.internal.ForwardingServlet;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.timeout.ReadTimeoutException;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One allowed exchange's trip to the upstream and back, on the client connection's event loop:
 * the request as {@link ForwardingServlet} builds it (method, base path and raw path, raw query,
 * {@link Forward#proxyHeaders()}, {@code X-Forwarded-*}, {@code Host}, the engine's body, gzip
 * asked for), on a pooled or new connection of that loop; the response's status and headers
 * filtered as {@link ForwardingServlet} does and reported to the engine
 * ({@link Verdict.Allowed#respond}); its body relayed piece by piece through the plan's masking,
 * each piece reported ({@link ResponsePlan.Relay#delivered}) and written, flushed at the end of
 * every upstream read, so a server-sent event goes out as soon as it arrives.
 *
 * <p>Failures: no connection, or no response on it, is 502 {@code upstream_unavailable}
 * ({@link Verdict.Allowed#upstreamFailed()}); a reused connection the upstream had closed is
 * retried once on a new one. An upstream breaking off mid-body closes the client connection
 * without the body's end (recorded incomplete); a client leaving closes the upstream connection.
 */
final class UpstreamRelay implements UpstreamConnection.Listener {
  private static final Logger log = LoggerFactory.getLogger(UpstreamRelay.class);

  /** Methods that carry a body (a {@code Content-Length: 0} when empty), as in OkHttp. */
  private static final Set<String> REQUIRES_BODY =
      Set.of("POST", "PUT", "PATCH", "PROPPATCH", "REPORT");

  private final ClientConnection.Exchange exchange;
  private final ClientConnection conn;
  private final Verdict.Allowed allowed;
  private final Forward forward;
  private final InetSocketAddress address;
  private FullHttpRequest request;
  private Channel upstream;
  private boolean reused;
  private boolean retried;
  private boolean responded;
  private boolean interim;
  private boolean skipping;
  private boolean upstreamKeepAlive;
  private boolean clientKeepAlive;
  private ResponsePlan.Relay plan;
  private ResponseMasking masking;
  private boolean over;
  private boolean flushedOnce;
  private int unflushed;

  UpstreamRelay(
      ClientConnection.Exchange exchange,
      Verdict.Allowed allowed,
      Forward forward,
      InetSocketAddress address) {
    this.exchange = exchange;
    this.conn = exchange.conn;
    this.allowed = allowed;
    this.forward = forward;
    this.address = address;
  }

  void start() {
    try {
      request = buildRequest();
    } catch (IllegalArgumentException e) {
      // A header or method Netty refuses. Its message may quote a header value: not logged.
      exchange.gatewayError(
          allowed, 400, "bad_request", "request cannot be forwarded: invalid method or header");
      over = true;
      return;
    }
    UpstreamPool pool = conn.front.pool(conn.loop);
    Channel pooled = pool.poll();
    if (pooled != null) {
      attach(pooled, true);
    } else {
      connect();
    }
  }

  private FullHttpRequest buildRequest() {
    Upstream target = conn.front.upstream;
    String uri =
        target.basePath()
            + exchange.rawPath
            + (exchange.rawQuery == null ? "" : "?" + exchange.rawQuery);
    byte[] body = forward.body();
    FullHttpRequest r =
        new DefaultFullHttpRequest(
            HttpVersion.HTTP_1_1,
            HttpMethod.valueOf(exchange.method),
            uri,
            Unpooled.wrappedBuffer(body));
    HttpHeaders headers = r.headers();
    forward.proxyHeaders().forEach((name, values) -> headers.add(name, values));
    // What the gateway saw, never what the caller claims.
    headers.set("X-Forwarded-For", conn.remoteAddress());
    headers.set("X-Forwarded-Proto", "http");
    String host = exchange.request.headers().get(HttpHeaderNames.HOST);
    if (host != null) headers.set("X-Forwarded-Host", host);
    headers.set("Host", target.authority());
    headers.remove(HttpHeaderNames.CONTENT_LENGTH);
    headers.remove(HttpHeaderNames.TRANSFER_ENCODING);
    if (body.length > 0 || REQUIRES_BODY.contains(exchange.method)) {
      headers.setInt("Content-Length", body.length);
    }
    // Asked for here and decoded on the way back, so the engine masks and records plain text.
    headers.set("Accept-Encoding", HttpHeaderValues.GZIP);
    return r;
  }

  private void connect() {
    ChannelFuture connecting = conn.front.pool(conn.loop).connect(address);
    connecting.addListener(
        f -> {
          if (!f.isSuccess()) {
            unavailable(f.cause());
            return;
          }
          if (over) {
            // The client left while connecting: the new connection serves another exchange.
            conn.front.pool(conn.loop).release(connecting.channel());
            return;
          }
          attach(connecting.channel(), false);
        });
  }

  private void attach(Channel ch, boolean wasPooled) {
    upstream = ch;
    reused = wasPooled;
    UpstreamConnection handler = UpstreamConnection.of(ch);
    if (handler == null) {
      failedBeforeResponse(null);
      return;
    }
    handler.attach(this);
    ch.config().setAutoRead(conn.channel.isWritable());
    ch.writeAndFlush(request.retainedDuplicate())
        .addListener(
            f -> {
              if (!f.isSuccess() && upstream == ch && !responded) {
                handler.detach();
                ch.close();
                failedBeforeResponse(f.cause());
              }
            });
  }

  // --- what the upstream sends -----------------------------------------------------------------

  @Override
  public void upstreamRead(Object msg) {
    if (over) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpResponse response) {
      response(response);
    }
    if (msg instanceof HttpContent content) {
      content(content);
    } else if (!(msg instanceof HttpResponse)) {
      ReferenceCountUtil.release(msg);
    }
  }

  private void response(HttpResponse response) {
    if (response.decoderResult().isFailure()) {
      skipping = true;
      Channel ch = upstream;
      detachUpstream(false);
      unavailable(response.decoderResult().cause());
      if (ch != null) ch.close();
      return;
    }
    int status = response.status().code();
    if (status >= 100 && status < 200 && status != 101) {
      interim = true; // 100 Continue, 103 Early Hints: not relayed
      return;
    }
    responded = true;
    release(); // no retry once a response came: a long stream need not hold its request
    upstreamKeepAlive = HttpUtil.isKeepAlive(response);
    HttpHeaders upstreamHeaders = response.headers();
    List<String> connection = upstreamHeaders.getAll(HttpHeaderNames.CONNECTION);
    Set<String> named =
        connection.isEmpty() ? Set.of() : ForwardHeaders.connectionTokens(connection);
    Map<String, List<String>> relayed = new LinkedHashMap<>();
    for (Map.Entry<String, String> h : upstreamHeaders) {
      String lower = h.getKey().toLowerCase(Locale.ROOT);
      if (ForwardingServlet.NOT_RELAYED.contains(lower)
          || named.contains(lower)
          || lower.startsWith("proxy-")) continue;
      relayed.computeIfAbsent(h.getKey(), k -> new ArrayList<>(1)).add(h.getValue());
    }
    ResponsePlan decided = allowed.respond(status, relayed);
    if (decided instanceof ResponsePlan.Refused refused) {
      // Not deliverable as the policy requires: its error instead; the upstream's body is not read.
      skipping = true;
      Channel ch = upstream;
      detachUpstream(false);
      if (ch != null) ch.close();
      ErrorResponse error = refused.error();
      over = true;
      exchange.writeWhole(allowed, error.status(), error.headers(), error.body(), true);
      return;
    }
    plan = (ResponsePlan.Relay) decided;
    masking = plan.masking();

    HttpResponse out =
        new DefaultHttpResponse(exchange.version, HttpResponseStatus.valueOf(status));
    HttpHeaders headers = out.headers();
    relayed.forEach(
        (name, values) -> {
          for (String value : values) {
            String shown = plan.header(name, value);
            if (shown == null) continue;
            try {
              headers.add(name, shown);
            } catch (IllegalArgumentException e) {
              // a value Netty will not write; left out
            }
          }
        });
    long length = HttpUtil.getContentLength(response, -1L);
    boolean bodyless =
        exchange.method.equals("HEAD") || status == 204 || status == 304 || status == 101;
    boolean sameLength = !plan.dropContentLength();
    clientKeepAlive = exchange.mayKeepAlive();
    if (length >= 0 && sameLength) {
      headers.set("Content-Length", length);
    } else if (bodyless) {
      // no body, no framing
    } else if (exchange.version.equals(HttpVersion.HTTP_1_1)) {
      headers.set("Transfer-Encoding", HttpHeaderValues.CHUNKED);
    } else {
      clientKeepAlive = false; // HTTP/1.0: the end of the body is the end of the connection
    }
    exchange.setKeepAlive(out, clientKeepAlive);
    Responses.date(out);
    conn.ctx.write(out, conn.ctx.voidPromise());
  }

  private void content(HttpContent content) {
    try {
      if (skipping) return;
      if (interim) {
        if (content instanceof LastHttpContent) interim = false;
        return;
      }
      if (content.decoderResult().isFailure()) {
        brokeOff(content.decoderResult().cause());
        return;
      }
      ByteBuf buf = content.content();
      int n = buf.readableBytes();
      if (content instanceof LastHttpContent) flushedOnce = true; // ended() flushes it all
      if (n > 0) {
        byte[] bytes = ByteBufUtil.getBytes(buf);
        byte[] deliver;
        try {
          deliver = masking == null ? bytes : masking.push(bytes, 0, n);
        } catch (IOException e) {
          brokeOff(e);
          return;
        }
        send(deliver);
      }
      if (content instanceof LastHttpContent) {
        if (masking != null) {
          byte[] tail;
          try {
            tail = masking.finish();
          } catch (IOException e) {
            brokeOff(e);
            return;
          }
          send(tail);
        }
        ended();
      }
    } finally {
      ReferenceCountUtil.release(content);
    }
  }

  private void send(byte[] bytes) {
    if (bytes.length == 0) return;
    plan.delivered(bytes, 0, bytes.length);
    conn.ctx.write(new DefaultHttpContent(Unpooled.wrappedBuffer(bytes)), conn.ctx.voidPromise());
    unflushed += bytes.length;
    // The first bytes go out at once (a stream's first event is not held behind the rest of the
    // read that brought it), then at the latest every CHUNK_SIZE bytes and at the end of each read.
    if (!flushedOnce || unflushed >= ForwardingServlet.CHUNK_SIZE) flush();
  }

  private void flush() {
    flushedOnce = true;
    unflushed = 0;
    conn.ctx.flush();
  }

  /** The upstream's body ended: the client gets its end, the connection goes back to the pool. */
  private void ended() {
    over = true;
    detachUpstream(upstreamKeepAlive);
    boolean keepAlive = clientKeepAlive;
    conn.ctx
        .writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT)
        .addListener(
            f -> {
              boolean ok = f.isSuccess();
              conn.front.end(
                  () -> allowed.end(ok), conn.loop, () -> exchange.finish(!keepAlive || !ok));
            });
    release();
  }

  @Override
  public void upstreamReadComplete() {
    // The head alone waits for the body's first bytes (as from the Jetty front).
    if (unflushed > 0) flush();
  }

  @Override
  public void upstreamWritable(boolean writable) {
    // the request goes whole; nothing to hold back on the client's side
  }

  void clientWritable(boolean writable) {
    // A client reading slower than the upstream writes: stop reading the upstream meanwhile.
    if (upstream != null) upstream.config().setAutoRead(writable);
  }

  @Override
  public void upstreamGone(Throwable cause) {
    upstream = null;
    if (over) return;
    if (!responded) {
      failedBeforeResponse(cause);
    } else {
      brokeOff(cause);
    }
  }

  private void failedBeforeResponse(Throwable cause) {
    if (over) return;
    upstream = null;
    if (reused && !retried && !(cause instanceof ReadTimeoutException)) {
      // A pooled connection the upstream closed meanwhile: once more on a new one.
      retried = true;
      reused = false;
      connect();
      return;
    }
    unavailable(cause);
  }

  private void unavailable(Throwable cause) {
    if (over) return;
    over = true;
    // The cause may name the upstream host: it goes to the log, not to the caller.
    log.warn(
        "inferpam gateway: upstream unavailable for exchange {}: {}",
        allowed.id(),
        cause == null ? "connection closed" : cause.toString());
    allowed.upstreamFailed();
    release();
    exchange.gatewayError(
        allowed, 502, "upstream_unavailable", "the upstream model server is unavailable");
  }

  /** The upstream broke off mid-body (or the masker failed): the client's response is cut off. */
  private void brokeOff(Throwable cause) {
    if (over) return;
    over = true;
    log.warn(
        "inferpam gateway: upstream broke off exchange {}: {}",
        allowed.id(),
        cause == null ? "connection closed" : cause.toString());
    Channel ch = upstream;
    detachUpstream(false);
    if (ch != null) ch.close();
    release();
    conn.front.end(() -> allowed.end(false));
    // Flushed first, then closed: the client sees what came, without the end of the body.
    conn.ctx.flush();
    conn.channel.close();
    exchange.finish(true);
  }

  /** The client left: the upstream call stops. */
  void clientGone() {
    if (over) return;
    over = true;
    Channel ch = upstream;
    detachUpstream(false);
    if (ch != null) ch.close();
    release();
    conn.front.end(() -> allowed.end(false));
  }

  private void detachUpstream(boolean reusable) {
    Channel ch = upstream;
    upstream = null;
    if (ch == null) return;
    UpstreamConnection handler = UpstreamConnection.of(ch);
    if (handler != null) handler.detach();
    if (reusable && handler != null) {
      conn.front.pool(conn.loop).release(ch);
    }
  }

  private void release() {
    if (request != null) {
      request.release();
      request = null;
    }
  }
}
