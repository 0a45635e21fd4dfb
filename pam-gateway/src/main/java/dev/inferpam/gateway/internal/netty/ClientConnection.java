package dev.inferpam.gateway.internal.netty;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.EndpointResponse;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.Verdict;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection of the Netty front: reads its requests one at a time, has the engine
 * decide each ({@link NettyFront#decisions}: off the event loop unless nothing a decision does
 * can wait), and answers it: the engine's refusal, the {@code /pam}
 * endpoints' answer, or the upstream's response through an {@link UpstreamRelay}. Everything here
 * runs on the connection's event loop; work handed to another thread comes back to it with
 * {@link EventLoop#execute}.
 */
final class ClientConnection extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(ClientConnection.class);

  /** Messages of pipelined requests queued while one is in progress, before reading stops. */
  private static final int MAX_QUEUED = 16;

  /** Bytes of a body buffered while the engine decides its head, before reading stops. */
  private static final int MAX_EARLY_BODY = 64 * 1024;

  /** After the last response on a connection being closed, how long its client may take to close. */
  private static final long LINGER_MS = 2_000;

  private static final byte[] INTERNAL_ERROR_BODY =
      ErrorResponse.of(500, "internal_error", "the request could not be checked", null).body();

  final NettyFront front;
  final Channel channel;
  final EventLoop loop;
  ChannelHandlerContext ctx;
  private final ArrayDeque<Object> inbox = new ArrayDeque<>();
  private Exchange exchange;
  private long headsSeen;
  private ScheduledFuture<?> headDeadline;
  private boolean admitted;
  private boolean inputShut;
  private boolean closing;

  ClientConnection(NettyFront front, Channel channel) {
    this.front = front;
    this.channel = channel;
    this.loop = channel.eventLoop();
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    admitted = true;
    if (!front.admit(channel)) {
      closing = true;
      channel.close();
      return;
    }
    awaitHead();
  }

  // --- reading -------------------------------------------------------------------------------

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (closing) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (exchange != null
        && msg instanceof HttpContent content
        && !(msg instanceof HttpRequest)
        && exchange.takesContent()) {
      exchange.content(content);
      return;
    }
    if (exchange != null || !inbox.isEmpty()) {
      inbox.add(msg);
      updateAutoRead();
      return;
    }
    handle(msg);
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    if (exchange != null) exchange.readComplete();
  }

  private void handle(Object msg) {
    if (msg instanceof HttpRequest request) {
      begin(request);
    } else {
      // The rest of a body nobody reads (the connection closes after its answer).
      ReferenceCountUtil.release(msg);
    }
  }

  /** Takes queued messages while no exchange needs to wait; then reads again. */
  private void pump() {
    while (!closing && !inbox.isEmpty()) {
      Object next = inbox.peek();
      if (exchange == null) {
        inbox.poll();
        handle(next);
      } else if (next instanceof HttpContent
          && !(next instanceof HttpRequest)
          && exchange.takesContent()) {
        inbox.poll();
        exchange.content((HttpContent) next);
      } else {
        break;
      }
    }
    if (exchange != null) exchange.readComplete();
    if (!closing && exchange == null && inputShut) lingerClose();
    updateAutoRead();
  }

  /** Reads while an exchange wants its body, or to notice a client leaving; not past the queue bound. */
  void updateAutoRead() {
    if (!channel.isActive()) return;
    boolean read =
        !closing && inbox.size() < MAX_QUEUED && (exchange == null || exchange.readsWanted());
    if (channel.config().isAutoRead() != read) channel.config().setAutoRead(read);
  }

  private void begin(HttpRequest request) {
    headsSeen++;
    cancelHeadDeadline();
    if (request.decoderResult().isFailure()) {
      ReferenceCountUtil.release(request);
      refuse(Responses.statusOf(request.decoderResult().cause()));
      return;
    }
    if (front.draining) {
      ReferenceCountUtil.release(request);
      refuse(503);
      return;
    }
    String uri = request.uri();
    String target = originForm(uri);
    List<String> hosts = request.headers().getAll(HttpHeaderNames.HOST);
    if (target == null
        || hosts.size() > 1
        || (hosts.isEmpty() && request.protocolVersion().equals(HttpVersion.HTTP_1_1))) {
      ReferenceCountUtil.release(request);
      refuse(uri.equals("*") ? 404 : 400);
      return;
    }
    int q = target.indexOf('?');
    String rawPath = q < 0 ? target : target.substring(0, q);
    String rawQuery = q < 0 ? null : target.substring(q + 1);
    exchange = new Exchange(this, request, rawPath, rawQuery);
    front.exchangeStarted();
    updateAutoRead();
  }

  /**
   * The path and query of a request target: origin form as it is, absolute form without its
   * scheme and authority; {@code null} for any other form, or one with a fragment.
   */
  static String originForm(String uri) {
    if (uri.indexOf('#') >= 0) return null;
    if (uri.startsWith("/")) return uri;
    String lower = uri.length() > 8 ? uri.substring(0, 8).toLowerCase(Locale.ROOT) : "";
    int start = lower.startsWith("http://") ? 7 : lower.startsWith("https://") ? 8 : -1;
    if (start < 0) return null;
    int slash = uri.indexOf('/', start);
    int query = uri.indexOf('?', start);
    if (uri.indexOf('@', start) >= 0 && (slash < 0 || uri.indexOf('@', start) < slash)) {
      return null; // user info
    }
    if (slash < 0 && query < 0) return "/";
    if (slash < 0 || (query >= 0 && query < slash)) return "/" + uri.substring(query);
    return uri.substring(slash);
  }

  /** Answers a request the engine never sees (Jetty's own refusals) and closes the connection. */
  private void refuse(int status) {
    closing = true;
    ctx.writeAndFlush(Responses.protocolError(status)).addListener(f -> lingerClose());
  }

  // --- connection life -----------------------------------------------------------------------

  /** Closes the connection unless a request head completes within the head timeout. */
  private void awaitHead() {
    long seen = headsSeen;
    cancelHeadDeadline();
    headDeadline =
        loop.schedule(
            () -> {
              headDeadline = null;
              if (exchange == null && headsSeen == seen && channel.isActive()) {
                log.debug(
                    "inferpam gateway: no request head within {} ms, closing the connection",
                    front.headTimeoutMs);
                closing = true;
                channel.close();
              }
            },
            front.headTimeoutMs,
            TimeUnit.MILLISECONDS);
  }

  private void cancelHeadDeadline() {
    if (headDeadline != null) {
      headDeadline.cancel(false);
      headDeadline = null;
    }
  }

  /** The exchange in progress ended; {@code close} when the connection must not carry another. */
  void exchangeDone(Exchange done, boolean close) {
    if (exchange != done) return;
    exchange = null;
    front.exchangeEnded();
    if (close || closing || !channel.isActive()) {
      lingerClose();
      return;
    }
    awaitHead();
    pump();
  }

  /**
   * Closes after the last answer: the output is shut first, so that request bytes still arriving
   * do not reset the connection before the client read the answer; then the connection closes
   * when the client closes its side, or after {@link #LINGER_MS}.
   */
  void lingerClose() {
    closing = true;
    cancelHeadDeadline();
    if (!channel.isActive()) return;
    if (inputShut || !(channel instanceof DuplexChannel duplex)) {
      channel.close();
      return;
    }
    duplex.shutdownOutput();
    if (!channel.config().isAutoRead()) channel.config().setAutoRead(true);
    loop.schedule(() -> channel.close(), LINGER_MS, TimeUnit.MILLISECONDS);
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent) {
      inputShut = true;
      if (closing || (exchange == null && inbox.isEmpty())) {
        channel.close();
      } else if (exchange != null && exchange.inputShut()) {
        channel.close();
      }
    } else if (evt instanceof IdleStateEvent) {
      if (exchange == null || exchange.idleMayClose()) {
        closing = true;
        channel.close();
      }
    }
    ReferenceCountUtil.release(evt);
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (exchange != null) exchange.clientWritable(channel.isWritable());
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    closing = true;
    cancelHeadDeadline();
    for (Object msg; (msg = inbox.poll()) != null; ) ReferenceCountUtil.release(msg);
    Exchange gone = exchange;
    exchange = null;
    if (gone != null) {
      gone.clientGone();
      front.exchangeEnded();
    }
    if (admitted) front.closed(channel);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.debug("inferpam gateway: client connection failed: {}", cause.toString());
    closing = true;
    ctx.close();
  }

  // --- writing helpers -----------------------------------------------------------------------

  /** Writes {@code response} and flushes; the future says whether it reached the socket. */
  ChannelFuture writeAndFlush(Object response) {
    return ctx.writeAndFlush(response);
  }

  /** The {@code X-Forwarded-For} value: the peer's address. */
  String remoteAddress() {
    SocketAddress remote = channel.remoteAddress();
    if (remote instanceof InetSocketAddress inet && inet.getAddress() != null) {
      return inet.getAddress().getHostAddress();
    }
    return "";
  }

  /** The engine failed (a bug): 500 internal_error, no request id, connection closed. */
  void internalError(Exchange failed, RuntimeException e) {
    log.error("inferpam: request could not be checked, refusing it: {}", e.getClass().getName());
    log.debug("inferpam: request check failure", e);
    if (exchange != failed || !channel.isActive()) return;
    FullHttpResponse response = Responses.full(failed.version, 500, Map.of(), INTERNAL_ERROR_BODY);
    response.headers().set("Connection", HttpHeaderValues.CLOSE);
    writeAndFlush(response).addListener(f -> exchangeDone(failed, true));
  }

  // --- one exchange --------------------------------------------------------------------------

  /** The state of one request on its way through. */
  enum State {
    /** The head arrived; the body that came with it is being gathered. */
    HEAD,
    /** The engine decides the head (off the loop). */
    HEAD_DECIDING,
    /** The body is being read and fed to the engine. */
    BODY,
    /** The engine decides the body (off the loop). */
    DECIDING,
    /** Waiting for a reviewer. */
    HELD,
    /** Forwarded; the upstream's response is relayed. */
    RELAY,
    /** The answer is being written. */
    ANSWER,
    /** Over. */
    DONE
  }

  /** One request: its head, body, verdict and answer. Event loop only, except the hops. */
  static final class Exchange {
    final ClientConnection conn;
    final HttpRequest request;
    final HttpVersion version;
    final String method;
    final String rawPath;
    final String rawQuery;
    final boolean keepAlive;
    final boolean endpoint;
    final long contentLength;
    final boolean hasBody;
    final RequestHead head;
    State state = State.HEAD;
    private boolean lastSeen;
    private List<byte[]> early = new ArrayList<>();
    private int earlyBytes;
    private PendingRequest pending;
    private ScheduledFuture<?> timer;
    private boolean continueSent;
    private Verdict.Held held;
    private UpstreamRelay relay;
    private boolean clientGone;

    Exchange(ClientConnection conn, HttpRequest request, String rawPath, String rawQuery) {
      this.conn = conn;
      this.request = request;
      this.version = request.protocolVersion();
      this.method = request.method().name();
      this.rawPath = rawPath;
      this.rawQuery = rawQuery;
      this.keepAlive = HttpUtil.isKeepAlive(request);
      this.endpoint = Endpoints.isEndpointPath(rawPath);
      this.contentLength = HttpUtil.getContentLength(request, -1L);
      this.hasBody =
          contentLength > 0 || (contentLength < 0 && HttpUtil.isTransferEncodingChunked(request));
      this.head = head(request.headers(), method, rawPath, rawQuery, conn.remoteAddress());
      ReferenceCountUtil.release(request);
    }

    private static RequestHead head(
        HttpHeaders headers, String method, String rawPath, String rawQuery, String remote) {
      Map<String, List<String>> map = new LinkedHashMap<>();
      Map<String, String> names = new HashMap<>();
      for (Map.Entry<String, String> h : headers) {
        String name = names.computeIfAbsent(h.getKey().toLowerCase(Locale.ROOT), k -> h.getKey());
        map.computeIfAbsent(name, k -> new ArrayList<>()).add(h.getValue());
      }
      return new RequestHead(method, rawPath, rawQuery, map, remote);
    }

    /** Whether body content read now belongs to this request. */
    boolean takesContent() {
      return !lastSeen;
    }

    boolean readsWanted() {
      return switch (state) {
        case HEAD -> earlyBytes < MAX_EARLY_BODY;
        case BODY -> true;
        case HEAD_DECIDING, DECIDING -> false;
        // to notice a client leaving; pipelined requests queue up to the bound
        case HELD, RELAY, ANSWER -> lastSeen;
        case DONE -> false;
      };
    }

    boolean idleMayClose() {
      return state != State.HELD;
    }

    void content(HttpContent content) {
      try {
        if (content.decoderResult().isFailure()) {
          lastSeen = true; // nothing more of it will be read
          bodyFailed();
          return;
        }
        boolean last = content instanceof LastHttpContent;
        int n = content.content().readableBytes();
        switch (state) {
          case HEAD, HEAD_DECIDING -> {
            if (n > 0) {
              early.add(ByteBufUtil.getBytes(content.content()));
              earlyBytes += n;
            }
            if (last) lastSeen = true;
            if (state == State.HEAD && (last || earlyBytes >= MAX_EARLY_BODY)) submitHead();
          }
          case BODY -> {
            if (endpoint) {
              if (n > 0) {
                early.add(ByteBufUtil.getBytes(content.content()));
                earlyBytes += n;
              }
              if (last) lastSeen = true;
              if (last || earlyBytes > Endpoints.MAX_BODY_BYTES) {
                answerEndpoint(early.toArray(new byte[0][]));
              }
              return;
            }
            if (n > 0) {
              byte[] b = ByteBufUtil.getBytes(content.content());
              if (!pending.accept(b, 0, b.length)) {
                if (last) lastSeen = true;
                decide(pending::finish);
                return;
              }
            }
            if (last) {
              lastSeen = true;
              decide(pending::finish);
            }
          }
          default -> {
            // The rest of a body refused, or left unread: dropped (the connection closes).
            if (last) lastSeen = true;
          }
        }
      } finally {
        ReferenceCountUtil.release(content);
      }
    }

    private void bodyFailed() {
      switch (state) {
        case HEAD, HEAD_DECIDING -> {
          bodyBroken = true;
          if (state == State.HEAD) submitHead();
        }
        case BODY -> {
          if (endpoint) {
            state = State.ANSWER;
            writeEndpoint(Responses.protocolError(400), true);
          } else {
            decide(pending::failed);
          }
        }
        default -> {
          // decided already; the connection closes after the answer (the body was not all read)
        }
      }
    }

    /** The body could not be read (a broken chunk, the client's side closed early). */
    private boolean bodyBroken;

    /** The end of a socket read: the body that came with the head goes to the engine with it. */
    void readComplete() {
      if (state == State.HEAD) submitHead();
    }

    /** Hop out: the engine decides the head, and the body so far with it. */
    private void submitHead() {
      state = State.HEAD_DECIDING;
      conn.updateAutoRead();
      byte[][] chunks = early.toArray(new byte[0][]);
      early = new ArrayList<>();
      earlyBytes = 0;
      boolean last = lastSeen;
      boolean broken = bodyBroken;
      NettyFront front = conn.front;
      if (endpoint) {
        if (broken) {
          state = State.ANSWER;
          writeEndpoint(Responses.protocolError(400), true);
          return;
        }
        if (!last && contentLength <= Endpoints.MAX_BODY_BYTES) {
          // An endpoint's body is small: read it whole before answering.
          state = State.BODY;
          for (byte[] c : chunks) early.add(c);
          earlyBytes = length(chunks);
          conn.updateAutoRead();
          return;
        }
        answerEndpoint(chunks);
        return;
      }
      front.decisions.execute(
          () -> {
            try {
              PendingRequest p = front.engine.beginHead(head, contentLength);
              Verdict v = p.decided();
              if (v == null) {
                if (broken) {
                  v = p.failed();
                } else if (!hasBody) {
                  v = p.read(null);
                } else {
                  boolean go = true;
                  for (byte[] c : chunks) {
                    if (!p.accept(c, 0, c.length)) {
                      go = false;
                      break;
                    }
                  }
                  if (!go || last) v = p.finish();
                }
              }
              Verdict settled = settle(v);
              conn.loop.execute(() -> headDecided(p, settled));
            } catch (RuntimeException e) {
              conn.loop.execute(() -> conn.internalError(this, e));
            }
          });
    }

    private static int length(byte[][] chunks) {
      int n = 0;
      for (byte[] c : chunks) n += c.length;
      return n;
    }

    /**
     * Off the loop, after a verdict: a review decided at once is taken, an allowed request's
     * forward made (it may fetch the upstream credential) and the upstream address resolved.
     */
    private Verdict settle(Verdict v) {
      if (v instanceof Verdict.Held h) {
        try {
          Verdict now = h.await(java.time.Duration.ZERO);
          if (now != null) v = now;
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      if (v instanceof Verdict.Allowed a) {
        a.forward();
        resolved = conn.front.upstream.resolve();
      }
      return v;
    }

    volatile java.net.InetSocketAddress resolved;

    /** Back on the loop with the head's verdict, or none yet (the body is to be read). */
    private void headDecided(PendingRequest p, Verdict v) {
      pending = p;
      if (clientGone) {
        abandon(v, p);
        return;
      }
      if (v != null) {
        verdict(v);
        return;
      }
      state = State.BODY;
      if (bodyBroken) {
        decide(p::failed);
        return;
      }
      if (HttpUtil.is100ContinueExpected(request) && !continueSent) {
        continueSent = true;
        conn.writeAndFlush(
            new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE));
      }
      List<byte[]> arrived = early;
      early = new ArrayList<>();
      earlyBytes = 0;
      for (byte[] c : arrived) {
        if (!p.accept(c, 0, c.length)) {
          decide(p::finish);
          return;
        }
      }
      if (lastSeen) {
        decide(p::finish);
        return;
      }
      timer =
          conn.loop.schedule(
              () -> {
                if (state == State.BODY) decide(p::timedOut);
              },
              p.timeLeft().toMillis(),
              TimeUnit.MILLISECONDS);
      conn.updateAutoRead();
    }

    /** Hop out: the engine decides the body (the end, a refusal, a timeout or a failure). */
    private void decide(Supplier<Verdict> step) {
      state = State.DECIDING;
      cancelTimer();
      conn.updateAutoRead();
      conn.front.decisions.execute(
          () -> {
            try {
              Verdict v = step.get();
              if (v == null) return; // made by another call already
              Verdict settled = settle(v);
              conn.loop.execute(
                  () -> {
                    if (clientGone) {
                      abandon(settled, null);
                    } else {
                      verdict(settled);
                    }
                  });
            } catch (RuntimeException e) {
              conn.loop.execute(() -> conn.internalError(this, e));
            }
          });
    }

    private void cancelTimer() {
      if (timer != null) {
        timer.cancel(false);
        timer = null;
      }
    }

    /** Goes on with a verdict, on the loop. */
    void verdict(Verdict v) {
      if (v instanceof Verdict.Denied denied) {
        deny(denied);
      } else if (v instanceof Verdict.Held h) {
        hold(h);
      } else {
        forward((Verdict.Allowed) v);
      }
    }

    private void deny(Verdict.Denied denied) {
      state = State.ANSWER;
      ErrorResponse error = denied.error();
      boolean close = (denied.bodyLeftUnread() && hasBody) || !keepAlive || !lastSeen;
      FullHttpResponse response =
          Responses.full(version, error.status(), error.headers(), error.body());
      setKeepAlive(response, !close);
      conn.writeAndFlush(response)
          .addListener(
              f -> {
                boolean ok = f.isSuccess();
                conn.front.end(() -> denied.end(ok), conn.loop, () -> finish(close || !ok));
              });
    }

    private void hold(Verdict.Held h) {
      state = State.HELD;
      held = h;
      conn.updateAutoRead();
      timer =
          conn.loop.schedule(
              () -> {
                if (state == State.HELD && held == h) {
                  held = null;
                  Verdict.Denied withdrawn = h.cancel();
                  if (withdrawn != null) deny(withdrawn);
                }
              },
              h.timeout().toMillis(),
              TimeUnit.MILLISECONDS);
      h.result(conn.front.blocking)
          .thenAccept(
              v -> {
                Verdict settled;
                try {
                  settled = settle(v);
                } catch (RuntimeException e) {
                  conn.loop.execute(() -> conn.internalError(this, e));
                  return;
                }
                conn.loop.execute(
                    () -> {
                      if (state != State.HELD || held != h) return; // withdrawn meanwhile
                      held = null;
                      cancelTimer();
                      verdict(settled);
                    });
              });
    }

    private void forward(Verdict.Allowed allowed) {
      Forward forward = allowed.forward();
      if (forward.body().length > 0 && (method.equals("GET") || method.equals("HEAD"))) {
        gatewayError(
            allowed, 400, "bad_request", method + " request with a body cannot be forwarded");
        return;
      }
      state = State.RELAY;
      relay = new UpstreamRelay(this, allowed, forward, resolved);
      conn.updateAutoRead();
      relay.start();
    }

    /**
     * The gateway's own error for an allowed exchange (it could not be forwarded): reported to
     * the engine as the response, then written.
     */
    void gatewayError(Verdict.Allowed allowed, int status, String code, String message) {
      state = State.ANSWER;
      byte[] body = allowed.error(status, code, message).body();
      Map<String, List<String>> headers = Map.of("Content-Type", List.of("application/json"));
      dev.inferpam.core.adapter.ResponsePlan plan = allowed.respond(status, headers);
      if (plan instanceof dev.inferpam.core.adapter.ResponsePlan.Refused refused) {
        writeWhole(
            allowed,
            refused.error().status(),
            refused.error().headers(),
            refused.error().body(),
            true);
        return;
      }
      dev.inferpam.core.adapter.ResponsePlan.Relay r =
          (dev.inferpam.core.adapter.ResponsePlan.Relay) plan;
      byte[] out = body;
      try {
        dev.inferpam.core.adapter.ResponseMasking masking = r.masking();
        if (masking != null) {
          byte[] a = masking.push(body, 0, body.length);
          byte[] b = masking.finish();
          out = new byte[a.length + b.length];
          System.arraycopy(a, 0, out, 0, a.length);
          System.arraycopy(b, 0, out, a.length, b.length);
        }
      } catch (java.io.IOException e) {
        out = new byte[0];
      }
      if (out.length > 0) r.delivered(out, 0, out.length);
      writeWhole(allowed, status, Map.of("Content-Type", "application/json"), out, true);
    }

    /** Writes a whole response of an allowed exchange, then ends it. */
    void writeWhole(
        Verdict.Allowed allowed,
        int status,
        Map<String, String> headers,
        byte[] body,
        boolean complete) {
      state = State.ANSWER;
      boolean close = !keepAlive;
      FullHttpResponse response = Responses.full(version, status, headers, body);
      setKeepAlive(response, !close);
      conn.writeAndFlush(response)
          .addListener(
              f -> {
                boolean ok = f.isSuccess();
                conn.front.end(
                    () -> allowed.end(complete && ok), conn.loop, () -> finish(close || !ok));
              });
    }

    /** Sets {@code Connection} for this request's protocol version. */
    void setKeepAlive(io.netty.handler.codec.http.HttpResponse response, boolean alive) {
      if (alive) {
        if (version.equals(HttpVersion.HTTP_1_0)) {
          response.headers().set("Connection", HttpHeaderValues.KEEP_ALIVE);
        }
      } else {
        response.headers().set("Connection", HttpHeaderValues.CLOSE);
      }
    }

    /** Whether the connection may carry another request after this one's answer. */
    boolean mayKeepAlive() {
      // A client that shut its side still gets the answers to requests it sent before (pump()
      // closes once none is left).
      return keepAlive && lastSeen;
    }

    /** The answer is out (or failed): the connection goes on with the next request, or closes. */
    void finish(boolean close) {
      if (state == State.DONE) return;
      state = State.DONE;
      cancelTimer();
      conn.exchangeDone(this, close || !mayKeepAlive());
    }

    // --- endpoints -----------------------------------------------------------------------------

    /**
     * Answers a request to the {@code /pam} endpoints off the loop with at most
     * {@link Endpoints#MAX_BODY_BYTES}{@code + 1} bytes of its body (none when it declared more);
     * the connection closes after the answer when part of the body was left unread.
     */
    private void answerEndpoint(byte[][] chunks) {
      state = State.ANSWER;
      boolean declaredTooLarge = contentLength > Endpoints.MAX_BODY_BYTES;
      int total = declaredTooLarge ? 0 : Math.min(length(chunks), Endpoints.MAX_BODY_BYTES + 1);
      byte[] body = new byte[total];
      int at = 0;
      for (byte[] c : chunks) {
        if (at >= total) break;
        int n = Math.min(c.length, total - at);
        System.arraycopy(c, 0, body, at, n);
        at += n;
      }
      boolean unread = !lastSeen || declaredTooLarge || length(chunks) > total;
      conn.updateAutoRead();
      conn.front.blocking.execute(
          () -> {
            EndpointResponse answer;
            try {
              answer = conn.front.endpoints.handle(head, hasBody ? body : null);
            } catch (RuntimeException e) {
              conn.loop.execute(() -> conn.internalError(this, e));
              return;
            }
            conn.loop.execute(
                () -> {
                  if (clientGone) return;
                  byte[] out = method.equals("HEAD") ? new byte[0] : answer.body();
                  FullHttpResponse response =
                      new DefaultFullHttpResponse(
                          version,
                          HttpResponseStatus.valueOf(answer.status()),
                          io.netty.buffer.Unpooled.wrappedBuffer(out));
                  answer.headers().forEach((name, value) -> response.headers().set(name, value));
                  response.headers().setInt("Content-Length", answer.body().length);
                  Responses.date(response);
                  writeEndpoint(response, unread);
                });
          });
    }

    private void writeEndpoint(FullHttpResponse response, boolean close) {
      boolean closeNow = close || !keepAlive;
      setKeepAlive(response, !closeNow);
      conn.writeAndFlush(response).addListener(f -> finish(closeNow || !f.isSuccess()));
    }

    // --- the client side going away ------------------------------------------------------------

    /**
     * The client shut its side of the connection.
     *
     * @return true when that ends the exchange (it waited for a reviewer: the client is taken to
     *     have left, as a proxy takes it): close the connection
     */
    boolean inputShut() {
      if (state == State.HELD) {
        clientGone();
        return true;
      }
      // Reading the body: the decoder reports the premature end as a failed content.
      // Otherwise the answer is still written, and the connection closes after it.
      return false;
    }

    void clientWritable(boolean writable) {
      if (relay != null) relay.clientWritable(writable);
    }

    /** The client closed its connection (or it failed) while this exchange ran. */
    void clientGone() {
      if (clientGone) return;
      clientGone = true;
      cancelTimer();
      switch (state) {
        case HEAD -> {
          // Nothing decided, nothing to end: the engine never saw it.
        }
        case HEAD_DECIDING, DECIDING -> {
          // The hop's result is abandoned when it comes back.
        }
        case BODY -> {
          if (pending != null) {
            PendingRequest p = pending;
            conn.front.blocking.execute(() -> abandonNow(p.failed()));
          }
        }
        case HELD -> {
          Verdict.Held h = held;
          held = null;
          if (h != null) conn.front.blocking.execute(h::cancel);
        }
        case RELAY -> {
          if (relay != null) relay.clientGone();
        }
        default -> {
          // ANSWER: the write's listener ends the exchange as incomplete.
        }
      }
      state = State.DONE;
    }

    /** Ends, incomplete, an exchange nobody can answer any more. */
    private void abandon(Verdict v, PendingRequest p) {
      state = State.DONE;
      NettyFront front = conn.front;
      if (v == null && p != null) {
        front.blocking.execute(() -> abandonNow(p.failed()));
      } else if (v != null) {
        front.blocking.execute(() -> abandonNow(v));
      }
    }

    private static void abandonNow(Verdict v) {
      if (v instanceof Verdict.Held h) {
        h.cancel();
      } else if (v instanceof Verdict.Denied d) {
        d.end(false);
      } else if (v instanceof Verdict.Allowed a) {
        a.end(false);
      }
    }
  }
}
