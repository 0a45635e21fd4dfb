package dev.inferpam.core.adapter;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A whole adapter for the JDK's {@link HttpClient}, written against the public adapter API only:
 * it translates a request to a {@link RequestHead}, applies the {@link Verdict} and the
 * {@link ResponsePlan}, and decides nothing. What it shows: a new adapter is about a hundred lines.
 */
final class PamHttpClient {
  /** What the caller gets: the upstream's answer as the plan lets it through, or the engine's error. */
  record Reply(int status, Map<String, List<String>> headers, InputStream body) {}

  private final HttpClient client;
  private final PamEngine engine;

  PamHttpClient(HttpClient client, PamEngine engine) {
    this.client = client;
    this.engine = engine;
  }

  Reply send(HttpRequest request, byte[] body) throws IOException, InterruptedException {
    RequestHead head =
        new RequestHead(
            request.method(),
            request.uri().getRawPath(),
            request.uri().getRawQuery(),
            request.headers().map(),
            null);
    Verdict verdict = engine.begin(head, new ByteArrayInputStream(body), body.length);
    if (verdict instanceof Verdict.Held held) {
      verdict = held.await(held.timeout());
      if (verdict == null)
        throw new HttpTimeoutException("no verdict: " + held.cancel().error().bodyText());
    }
    if (verdict instanceof Verdict.Denied denied) {
      denied.end(true);
      return error(denied.error());
    }
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    Forward forward = allowed.forward();
    HttpRequest.Builder upstream =
        HttpRequest.newBuilder(request.uri())
            .method(request.method(), HttpRequest.BodyPublishers.ofByteArray(forward.body()));
    request
        .headers()
        .map()
        .forEach(
            (name, values) -> {
              if (!forward.removeHeaders().contains(name.toLowerCase(Locale.ROOT)))
                values.forEach(v -> upstream.header(name, v));
            });
    forward.setHeaders().forEach(upstream::setHeader);
    HttpResponse<InputStream> response;
    try {
      response = client.send(upstream.build(), HttpResponse.BodyHandlers.ofInputStream());
    } catch (IOException | InterruptedException e) {
      allowed.upstreamFailed();
      allowed.end(false);
      throw e;
    }
    ResponsePlan plan = allowed.respond(response.statusCode(), response.headers().map());
    if (plan instanceof ResponsePlan.Refused refused) {
      response.body().close();
      allowed.end(true);
      return error(refused.error());
    }
    ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
    Map<String, List<String>> headers = new LinkedHashMap<>();
    response
        .headers()
        .map()
        .forEach(
            (name, values) -> {
              if (relay.dropContentLength() && name.equalsIgnoreCase("content-length")) return;
              for (String value : values) {
                String shown = relay.header(name, value);
                if (shown != null) headers.computeIfAbsent(name, k -> new ArrayList<>()).add(shown);
              }
            });
    return new Reply(
        response.statusCode(), headers, new RelayStream(response.body(), relay, allowed));
  }

  private static Reply error(ErrorResponse error) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    error.headers().forEach((name, value) -> headers.put(name, List.of(value)));
    return new Reply(error.status(), headers, new ByteArrayInputStream(error.body()));
  }

  /** The body as the caller reads it: through the plan's masking, reported as read, ended at EOF or close. */
  private static final class RelayStream extends InputStream {
    private final InputStream upstream;
    private final ResponsePlan.Relay relay;
    private final ResponseMasking masking;
    private final Verdict.Allowed allowed;
    private final AtomicBoolean ended = new AtomicBoolean();
    private final byte[] buffer = new byte[8192];
    private byte[] out = new byte[0];
    private int pos;
    private boolean eof;

    RelayStream(InputStream upstream, ResponsePlan.Relay relay, Verdict.Allowed allowed) {
      this.upstream = upstream;
      this.relay = relay;
      this.masking = relay.masking();
      this.allowed = allowed;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        while (pos == out.length) {
          if (eof) {
            end(true);
            return -1;
          }
          int n = upstream.read(buffer);
          if (n < 0) {
            eof = true;
            out = masking == null ? new byte[0] : masking.finish();
          } else {
            out = masking == null ? Arrays.copyOf(buffer, n) : masking.push(buffer, 0, n).clone();
          }
          pos = 0;
        }
      } catch (IOException e) {
        end(false);
        throw e;
      }
      int n = Math.min(len, out.length - pos);
      System.arraycopy(out, pos, b, off, n);
      relay.delivered(out, pos, n);
      pos += n;
      return n;
    }

    @Override
    public void close() throws IOException {
      try {
        upstream.close();
      } finally {
        end(false);
      }
    }

    private void end(boolean complete) {
      if (ended.compareAndSet(false, true)) allowed.end(complete);
    }
  }
}
