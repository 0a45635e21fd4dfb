package dev.inferpam.langchain4j;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.AdapterThreads;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.GovernedInputStream;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.langchain4j.exception.HttpException;
import dev.langchain4j.http.client.HttpClient;
import dev.langchain4j.http.client.HttpRequest;
import dev.langchain4j.http.client.SuccessfulHttpResponse;
import dev.langchain4j.http.client.sse.ServerSentEvent;
import dev.langchain4j.http.client.sse.ServerSentEventContext;
import dev.langchain4j.http.client.sse.ServerSentEventListener;
import dev.langchain4j.http.client.sse.ServerSentEventParser;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LangChain4j client governed by an engine, around another client (see {@link PamLangChain4j}).
 * A plain call is decided, sent, and its answer masked whole before LangChain4j reads it; a
 * stream's body is masked as the SSE parser reads it. A denial is LangChain4j's {@link
 * HttpException} with the policy's status and JSON error, as an upstream's error would be. A
 * request held for review waits on the calling thread for a plain call, and without a thread for a
 * stream.
 */
final class PamHttpClient implements HttpClient {
  private final PamLangChain4j.EngineSource engines;
  private final HttpClient delegate;

  PamHttpClient(PamLangChain4j.EngineSource engines, HttpClient delegate) {
    this.engines = engines;
    this.delegate = delegate;
  }

  @Override
  public SuccessfulHttpResponse execute(HttpRequest request) {
    Verdict verdict = decide(engines.engine(), request);
    if (verdict instanceof Verdict.Held held) verdict = await(held);
    if (verdict instanceof Verdict.Denied denied) throw denied(denied);
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    SuccessfulHttpResponse response;
    try {
      response = delegate.execute(upstream(request, allowed.forward()));
    } catch (HttpException e) {
      throw governedError(e, allowed);
    } catch (RuntimeException e) {
      allowed.upstreamFailed();
      allowed.end(false);
      throw e;
    }
    ResponsePlan plan = respond(allowed, response.statusCode(), response.headers());
    if (plan instanceof ResponsePlan.Refused refused) {
      allowed.end(true);
      throw asException(refused.error());
    }
    ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
    byte[] body = whole(relay, response.bodyBytes(), allowed);
    return SuccessfulHttpResponse.builder()
        .statusCode(response.statusCode())
        .headers(shown(response.headers(), relay))
        .body(body)
        .build();
  }

  @Override
  public void execute(
      HttpRequest request, ServerSentEventParser parser, ServerSentEventListener listener) {
    Verdict verdict;
    try {
      verdict = decide(engines.engine(), request);
    } catch (RuntimeException e) {
      listener.onError(e);
      return;
    }
    if (verdict instanceof Verdict.Held held) {
      // no thread waits: the stream starts when the review is over
      held.result(AdapterThreads.forWaiting())
          .thenAccept(v -> stream(request, v, parser, listener));
      return;
    }
    stream(request, verdict, parser, listener);
  }

  private void stream(
      HttpRequest request,
      Verdict verdict,
      ServerSentEventParser parser,
      ServerSentEventListener listener) {
    if (verdict instanceof Verdict.Denied denied) {
      listener.onError(denied(denied));
      return;
    }
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    GovernedStream governed = new GovernedStream(allowed, parser, listener);
    try {
      delegate.execute(upstream(request, allowed.forward()), governed, governed);
    } catch (RuntimeException e) {
      allowed.upstreamFailed();
      allowed.end(false);
      listener.onError(e);
    }
  }

  /**
   * A stream's listener and parser in one: the response head gives the plan ({@code onOpen},
   * before the body), the body is masked as the caller's parser reads it, an upstream's error is
   * passed on with its body masked.
   */
  private static final class GovernedStream
      implements ServerSentEventParser, ServerSentEventListener {
    private final Verdict.Allowed allowed;
    private final ServerSentEventParser parser;
    private final ServerSentEventListener listener;
    private volatile ResponsePlan plan;

    GovernedStream(
        Verdict.Allowed allowed, ServerSentEventParser parser, ServerSentEventListener listener) {
      this.allowed = allowed;
      this.parser = parser;
      this.listener = listener;
    }

    @Override
    public void onOpen(SuccessfulHttpResponse response) {
      ResponsePlan p = plan(response.statusCode(), response.headers());
      if (p instanceof ResponsePlan.Relay relay) {
        listener.onOpen(
            SuccessfulHttpResponse.builder()
                .statusCode(response.statusCode())
                .headers(shown(response.headers(), relay))
                .build());
      }
    }

    private ResponsePlan plan(int status, Map<String, List<String>> headers) {
      if (plan == null) plan = respond(allowed, status, headers);
      return plan;
    }

    @Override
    public void parse(InputStream body, ServerSentEventListener events) {
      ResponsePlan p = plan(200, Map.of("Content-Type", List.of("text/event-stream")));
      if (p instanceof ResponsePlan.Refused refused) {
        allowed.end(true);
        listener.onError(asException(refused.error()));
        return;
      }
      GovernedInputStream in = new GovernedInputStream(body, (ResponsePlan.Relay) p, allowed::end);
      try {
        parser.parse(in, events);
      } finally {
        try {
          in.close();
        } catch (IOException e) {
          // closing the upstream failed: the exchange is ended all the same
        }
      }
    }

    @Override
    public void onEvent(ServerSentEvent event, ServerSentEventContext context) {
      listener.onEvent(event, context);
    }

    @Override
    public void onEvent(ServerSentEvent event) {
      listener.onEvent(event);
    }

    @Override
    public void onError(Throwable error) {
      if (error instanceof HttpException e && plan == null) {
        listener.onError(governedError(e, allowed));
        return;
      }
      if (plan == null) allowed.upstreamFailed();
      allowed.end(false);
      listener.onError(error);
    }

    @Override
    public void onClose() {
      listener.onClose();
    }
  }

  private static Verdict decide(PamEngine engine, HttpRequest request) {
    URI uri = URI.create(request.url());
    Map<String, List<String>> headers = new LinkedHashMap<>();
    request.headers().forEach((name, values) -> headers.put(name, new ArrayList<>(values)));
    // multipart requests (audio uploads) are decided on their head: their parts are not a body
    byte[] body =
        request.body() == null ? new byte[0] : request.body().getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        RequestHead.of(request.method().name(), uri, headers),
        new ByteArrayInputStream(body),
        body.length);
  }

  private static Verdict await(Verdict.Held held) {
    try {
      return AdapterThreads.awaitReview(held);
    } catch (java.io.InterruptedIOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The request with the engine's edits and exactly the body it decided on. */
  private static HttpRequest upstream(HttpRequest request, Forward forward) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    request
        .headers()
        .forEach(
            (name, values) -> {
              if (!forward.removeHeaders().contains(name.toLowerCase(java.util.Locale.ROOT))) {
                headers.put(name, values);
              }
            });
    forward
        .setHeaders()
        .forEach(
            (name, value) -> {
              headers.keySet().removeIf(n -> n.equalsIgnoreCase(name));
              headers.put(name, List.of(value));
            });
    HttpRequest.Builder b =
        HttpRequest.builder().method(request.method()).url(request.url()).headers(headers);
    if (request.body() != null) b.body(new String(forward.body(), StandardCharsets.UTF_8));
    if (!request.formDataFields().isEmpty()) b.formDataFields(request.formDataFields());
    if (!request.formDataFiles().isEmpty()) b.formDataFiles(request.formDataFiles());
    return b.build();
  }

  private static ResponsePlan respond(
      Verdict.Allowed allowed, int status, Map<String, List<String>> headers) {
    try {
      return allowed.respond(status, headers);
    } catch (RuntimeException e) {
      allowed.end(false);
      throw e;
    }
  }

  /** The whole body through the masking, reported delivered; the exchange ends complete. */
  private static byte[] whole(ResponsePlan.Relay relay, byte[] body, Verdict.Allowed allowed) {
    try {
      ResponseMasking masking = relay.masking();
      byte[] out;
      if (masking == null) {
        out = body;
      } else {
        ByteArrayOutputStream b = new ByteArrayOutputStream(body.length + 64);
        b.write(masking.push(body, 0, body.length));
        b.write(masking.finish());
        out = b.toByteArray();
      }
      relay.delivered(out, 0, out.length);
      allowed.end(true);
      return out;
    } catch (IOException e) {
      allowed.end(false);
      throw new UncheckedIOException("inferpam: the response could not be masked", e);
    }
  }

  /** An upstream's error answer, its body through the masking like any other. */
  private static HttpException governedError(HttpException e, Verdict.Allowed allowed) {
    ResponsePlan plan =
        respond(allowed, e.statusCode(), Map.of("Content-Type", List.of("application/json")));
    if (plan instanceof ResponsePlan.Refused refused) {
      allowed.end(true);
      return asException(refused.error());
    }
    String body = e.getMessage() == null ? "" : e.getMessage();
    byte[] out = whole((ResponsePlan.Relay) plan, body.getBytes(StandardCharsets.UTF_8), allowed);
    return new HttpException(e.statusCode(), new String(out, StandardCharsets.UTF_8));
  }

  private static HttpException denied(Verdict.Denied denied) {
    try {
      return asException(denied.error());
    } finally {
      denied.end(true);
    }
  }

  private static HttpException asException(ErrorResponse error) {
    return new HttpException(error.status(), error.bodyText());
  }

  private static Map<String, List<String>> shown(
      Map<String, List<String>> headers, ResponsePlan.Relay relay) {
    return relay.shownHeaders(headers);
  }
}
