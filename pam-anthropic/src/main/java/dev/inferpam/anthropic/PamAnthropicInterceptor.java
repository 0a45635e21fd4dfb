package dev.inferpam.anthropic;

import com.anthropic.core.RequestOptions;
import com.anthropic.core.http.Headers;
import com.anthropic.core.http.HttpClient;
import com.anthropic.core.http.HttpRequest;
import com.anthropic.core.http.HttpRequestBody;
import com.anthropic.core.http.HttpResponse;
import com.anthropic.core.http.Interceptor;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.AdapterThreads;
import dev.inferpam.core.adapter.BodyCapture;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.GovernedInputStream;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;

/**
 * Client-side enforcement for the Anthropic Java SDK, through its own interceptor seam:
 *
 * <pre>{@code
 * AnthropicClient client = AnthropicOkHttpClient.builder()
 *     .apiKey(callerKey)                              // the caller's own inferpam key
 *     .addInterceptor(PamAnthropicInterceptor.of(engine))
 *     .build();
 * }</pre>
 *
 * Every request the SDK makes ({@code messages().create}, {@code createStreaming}, the rest; sync
 * and async) is decided by the {@link PamEngine} on the bytes the SDK sends. The caller's key
 * ({@code x-api-key}, {@code Authorization}) identifies the principal and is replaced by the
 * policy's upstream credential; the response body is masked as the SDK reads it (streams event by
 * event, values split across events included) and the exchange recorded when the SDK has read it
 * or closed it. A denial is answered in place of the server with the policy's error, which the
 * SDK raises as its own exception for the status ({@code PermissionDeniedException} for 403 …),
 * the policy's message as its text. A request held for review waits: on the calling thread for a
 * synchronous call (an interrupt withdraws it), without a thread for an asynchronous one.
 *
 * <p>The interceptor runs in the caller's process: it keeps static keys out of code and gives
 * audit and policy for honest callers, but cannot stop code that bypasses it. Thread-safe; share
 * one instance.
 */
public final class PamAnthropicInterceptor implements Interceptor {

  private final PamEngine engine;
  private final Executor executor;

  private PamAnthropicInterceptor(PamEngine engine, Executor executor) {
    this.engine = Objects.requireNonNull(engine, "engine");
    this.executor = Objects.requireNonNull(executor, "executor");
  }

  /**
   * An interceptor whose asynchronous calls decide on {@link AdapterThreads#forWaiting()} when a
   * decision may wait ({@link PamEngine#decidesWithoutWaiting()}).
   */
  public static PamAnthropicInterceptor of(PamEngine engine) {
    return new PamAnthropicInterceptor(engine, AdapterThreads.forWaiting());
  }

  /** An interceptor whose asynchronous calls decide on {@code executor}. */
  public static PamAnthropicInterceptor of(PamEngine engine, Executor executor) {
    return new PamAnthropicInterceptor(engine, executor);
  }

  @Override
  public HttpClient intercept(HttpClient next) {
    return new Governed(next);
  }

  private final class Governed implements HttpClient {
    private final HttpClient next;

    Governed(HttpClient next) {
      this.next = next;
    }

    @Override
    public HttpResponse execute(HttpRequest request, RequestOptions options) {
      Verdict verdict = decide(request, bytes(request));
      if (verdict instanceof Verdict.Held held) verdict = await(held);
      if (verdict instanceof Verdict.Denied denied) return denied(denied);
      Verdict.Allowed allowed = (Verdict.Allowed) verdict;
      HttpResponse response;
      try {
        response = next.execute(upstream(request, allowed.forward()), options);
      } catch (RuntimeException e) {
        allowed.upstreamFailed();
        allowed.end(false);
        throw e;
      }
      return govern(response, allowed);
    }

    @Override
    public CompletableFuture<HttpResponse> executeAsync(
        HttpRequest request, RequestOptions options) {
      CompletableFuture<Verdict> decided;
      if (engine.decidesWithoutWaiting()) {
        decided = CompletableFuture.completedFuture(decide(request, bytes(request)));
      } else {
        decided = CompletableFuture.supplyAsync(() -> decide(request, bytes(request)), executor);
      }
      return decided
          .thenCompose(
              v ->
                  v instanceof Verdict.Held held
                      ? held.result(executor).toCompletableFuture()
                      : CompletableFuture.completedFuture(v))
          .thenCompose(
              v -> {
                if (v instanceof Verdict.Denied denied) {
                  return CompletableFuture.completedFuture(denied(denied));
                }
                Verdict.Allowed allowed = (Verdict.Allowed) v;
                CompletableFuture<HttpResponse> sent;
                try {
                  sent = next.executeAsync(upstream(request, allowed.forward()), options);
                } catch (RuntimeException e) {
                  sent = CompletableFuture.failedFuture(e);
                }
                return sent.handle(
                    (response, failure) -> {
                      if (failure != null) {
                        allowed.upstreamFailed();
                        allowed.end(false);
                        throw failure instanceof CompletionException c
                            ? c
                            : new CompletionException(failure);
                      }
                      return govern(response, allowed);
                    });
              });
    }

    @Override
    public void close() {
      next.close();
    }
  }

  /** The body the SDK would send, kept up to the engine's limit (a larger one is refused 413). */
  private BodyCapture bytes(HttpRequest request) {
    BodyCapture out = new BodyCapture(engine.maxBodyBytes());
    if (request.body().isPresent()) request.body().get().writeTo(out);
    return out;
  }

  private Verdict decide(HttpRequest request, BodyCapture body) {
    URI uri = URI.create(request.url());
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (String name : request.headers().names()) {
      headers.put(name, new ArrayList<>(request.headers().values(name)));
    }
    if (request.body().isPresent() && request.body().get().contentType() != null) {
      headers.putIfAbsent("Content-Type", List.of(request.body().get().contentType()));
    }
    return engine.begin(
        RequestHead.of(request.method().name(), uri, headers), body.in(), body.size());
  }

  /** Blocks until the review is over; an interrupt withdraws the request. */
  private static Verdict await(Verdict.Held held) {
    try {
      return AdapterThreads.awaitReview(held);
    } catch (java.io.InterruptedIOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The request with the engine's edits and exactly the body it decided on. */
  private static HttpRequest upstream(HttpRequest request, Forward forward) {
    HttpRequest.Builder b = request.toBuilder();
    for (String name : forward.removeHeaders()) b.removeHeaders(name);
    forward.setHeaders().forEach(b::replaceHeaders);
    if (request.body().isPresent()) {
      String type = request.body().get().contentType();
      b.body(new Bytes(forward.body(), type));
    }
    return b.build();
  }

  private static HttpResponse denied(Verdict.Denied denied) {
    try {
      return new Synthetic(denied.error());
    } finally {
      denied.end(true);
    }
  }

  private static HttpResponse govern(HttpResponse response, Verdict.Allowed allowed) {
    Map<String, List<String>> upstreamHeaders = new LinkedHashMap<>();
    for (String name : response.headers().names()) {
      upstreamHeaders.put(name, response.headers().values(name));
    }
    ResponsePlan plan;
    try {
      plan = allowed.respond(response.statusCode(), upstreamHeaders);
    } catch (RuntimeException e) {
      response.close();
      allowed.end(false);
      throw e;
    }
    if (plan instanceof ResponsePlan.Refused refused) {
      response.close();
      try {
        return new Synthetic(refused.error());
      } finally {
        allowed.end(true);
      }
    }
    ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
    Headers.Builder shown = Headers.builder();
    relay.shownHeaders(upstreamHeaders).forEach(shown::put);
    Headers headers = shown.build();
    return new HttpResponse() {
      private GovernedInputStream body;

      @Override
      public int statusCode() {
        return response.statusCode();
      }

      @Override
      public Headers headers() {
        return headers;
      }

      @Override
      public InputStream body() {
        if (body == null) body = new GovernedInputStream(response.body(), relay, allowed::end);
        return body;
      }

      @Override
      public void close() {
        try {
          if (body != null) body.close();
          else allowed.end(false);
        } catch (IOException e) {
          // the upstream failed to close: the exchange is ended all the same
        } finally {
          response.close();
        }
      }
    };
  }

  /** A request body of bytes. */
  private static final class Bytes implements HttpRequestBody {
    private final byte[] bytes;
    private final String contentType;

    Bytes(byte[] bytes, String contentType) {
      this.bytes = bytes;
      this.contentType = contentType;
    }

    @Override
    public void writeTo(OutputStream out) {
      try {
        out.write(bytes);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public String contentType() {
      return contentType;
    }

    @Override
    public long contentLength() {
      return bytes.length;
    }

    @Override
    public boolean repeatable() {
      return true;
    }

    @Override
    public void close() {}
  }

  /** The engine's answer in place of the server's. */
  private static final class Synthetic implements HttpResponse {
    private final ErrorResponse error;
    private final Headers headers;

    Synthetic(ErrorResponse error) {
      this.error = error;
      Headers.Builder h = Headers.builder();
      error.headers().forEach(h::put);
      this.headers = h.build();
    }

    @Override
    public int statusCode() {
      return error.status();
    }

    @Override
    public Headers headers() {
      return headers;
    }

    @Override
    public InputStream body() {
      return new ByteArrayInputStream(error.body());
    }

    @Override
    public void close() {}
  }
}
