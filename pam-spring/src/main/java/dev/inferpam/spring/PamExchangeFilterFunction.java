package dev.inferpam.spring;

import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.AdapterThreads;
import dev.inferpam.core.adapter.BodyCapture;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.spring.internal.CapturingRequest;
import dev.inferpam.spring.internal.Exchanges;
import dev.inferpam.spring.internal.SyntheticResponse;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.springframework.core.io.buffer.DataBuffer;
import org.springframework.core.io.buffer.DataBufferUtils;
import org.springframework.core.io.buffer.DefaultDataBufferFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.codec.HttpMessageWriter;
import org.springframework.http.server.reactive.ServerHttpRequest;
import org.springframework.web.reactive.function.BodyInserter;
import org.springframework.web.reactive.function.client.ClientRequest;
import org.springframework.web.reactive.function.client.ClientResponse;
import org.springframework.web.reactive.function.client.ExchangeFilterFunction;
import org.springframework.web.reactive.function.client.ExchangeFunction;
import org.springframework.web.reactive.function.client.ExchangeStrategies;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.SignalType;
import reactor.core.scheduler.Schedulers;

/**
 * Client-side enforcement for {@code WebClient}: an {@link ExchangeFilterFunction} that asks a
 * {@link PamEngine} about every request and governs the response as it streams.
 *
 * <ul>
 *   <li>The request body is encoded first (with the filter's {@link ExchangeStrategies}: give it
 *       the application's, as the Spring Boot starter does) and the engine decides on those bytes;
 *       exactly those bytes are sent.
 *   <li><b>Denied</b>: the caller gets the policy's JSON error as the response, without a call to
 *       the server ({@code retrieve()} then raises {@code WebClientResponseException} with it).
 *   <li><b>Held for review</b>: nothing is sent and no thread waits; the exchange goes on when the
 *       review is over. Cancelling the subscription withdraws the request from review.
 *   <li><b>Allowed</b>: the caller's credential is replaced with the upstream credential; the
 *       response body ({@code Flux<DataBuffer>}, server-sent events included) is masked as it
 *       flows, each buffer as it arrives, holding back at most {@code masking.max-hold-back}
 *       chars, never the whole stream; the exchange is recorded when the body completes,
 *       fails or is cancelled.
 * </ul>
 *
 * <p>The caller is whoever the request's credential names. For a client that sends none (a server
 * that takes no key, as Ollama), {@link #withTokenSupplier(PamEngine, ExchangeStrategies,
 * Supplier)} gives such requests the application's own ({@code inferpam.client.api-key} with the
 * starter).
 *
 * <p><b>Threads.</b> Masking runs on the thread that delivers each buffer (an event loop): it
 * never waits. A decision or an end that may wait (an OIDC key fetch, a quota store or recorder
 * that does I/O: see {@link PamEngine#decidesWithoutWaiting()}) runs on the filter's executor:
 * by default {@link AdapterThreads#forWaiting()} (virtual threads on Java 21+).
 *
 * <p>The filter runs in the caller's process: it keeps static keys out of code and gives audit
 * and policy for honest callers, but cannot stop code that bypasses it. Thread-safe; share one
 * instance.
 */
public final class PamExchangeFilterFunction implements ExchangeFilterFunction {

  private final PamEngine engine;
  private final ExchangeStrategies strategies;
  private final Executor executor;
  private final Supplier<String> tokenSupplier;

  private PamExchangeFilterFunction(
      PamEngine engine,
      ExchangeStrategies strategies,
      Executor executor,
      Supplier<String> tokenSupplier) {
    this.engine = Objects.requireNonNull(engine, "engine");
    this.strategies = Objects.requireNonNull(strategies, "strategies");
    this.executor = Objects.requireNonNull(executor, "executor");
    this.tokenSupplier = tokenSupplier;
  }

  /** A filter that encodes request bodies with Spring's default codecs. */
  public static PamExchangeFilterFunction of(PamEngine engine) {
    return of(engine, ExchangeStrategies.withDefaults());
  }

  /**
   * A filter that encodes request bodies with {@code strategies}: those the {@code WebClient} it
   * is added to uses, so that the bytes decided on are the bytes the client would send.
   */
  public static PamExchangeFilterFunction of(PamEngine engine, ExchangeStrategies strategies) {
    return of(engine, strategies, AdapterThreads.forWaiting());
  }

  /** A filter whose decisions and ends that may wait run on {@code executor}. */
  public static PamExchangeFilterFunction of(
      PamEngine engine, ExchangeStrategies strategies, Executor executor) {
    return new PamExchangeFilterFunction(engine, strategies, executor, null);
  }

  /**
   * A filter, as {@link #of(PamEngine, ExchangeStrategies)}, that also gives requests that carry
   * no credential of their own ({@code Authorization}, {@code X-Api-Key}) the application's:
   * {@code Authorization: Bearer <token>} from {@code tokenSupplier} (a service key of the
   * policy's {@code identity.api-keys}, or an OIDC token from a token cache), asked on every such
   * request, on the subscribing thread: it must not block. For clients whose server takes no key,
   * such as Spring AI's Ollama models. A request with its own credential keeps it. The token
   * identifies the caller only: like any caller credential it is replaced with the upstream
   * credential (or removed) before the request is sent, and it is never logged. A supplier that
   * returns {@code null} or blank, or throws, leaves the request without a credential, which is
   * then refused 401 {@code unauthenticated}.
   *
   * @throws NullPointerException when an argument is null
   */
  public static PamExchangeFilterFunction withTokenSupplier(
      PamEngine engine, ExchangeStrategies strategies, Supplier<String> tokenSupplier) {
    return withTokenSupplier(engine, strategies, AdapterThreads.forWaiting(), tokenSupplier);
  }

  /**
   * A filter with the application's token for requests without one, as {@link
   * #withTokenSupplier(PamEngine, ExchangeStrategies, Supplier)}, whose decisions and ends that
   * may wait run on {@code executor}.
   *
   * @throws NullPointerException when an argument is null
   */
  public static PamExchangeFilterFunction withTokenSupplier(
      PamEngine engine,
      ExchangeStrategies strategies,
      Executor executor,
      Supplier<String> tokenSupplier) {
    return new PamExchangeFilterFunction(
        engine, strategies, executor, Objects.requireNonNull(tokenSupplier, "tokenSupplier"));
  }

  @Override
  public Mono<ClientResponse> filter(ClientRequest request, ExchangeFunction next) {
    CapturingRequest capture =
        new CapturingRequest(
            request.method(),
            request.url(),
            Exchanges.withCallerToken(request.headers(), tokenSupplier),
            engine.maxBodyBytes());
    return encode(request, capture)
        .flatMap(body -> decide(request, capture.getHeaders(), body))
        .flatMap(verdict -> proceed(request, capture.getHeaders(), verdict, next));
  }

  /** The request body as the client would send it (its encoder may add headers to capture's). */
  private Mono<BodyCapture> encode(ClientRequest request, CapturingRequest capture) {
    BodyInserter.Context context =
        new BodyInserter.Context() {
          @Override
          public java.util.List<HttpMessageWriter<?>> messageWriters() {
            return strategies.messageWriters();
          }

          @Override
          public Optional<ServerHttpRequest> serverRequest() {
            return Optional.empty();
          }

          @Override
          public Map<String, Object> hints() {
            return Map.of();
          }
        };
    return request.body().insert(capture, context).then(Mono.fromSupplier(capture::body));
  }

  private Mono<Verdict> decide(ClientRequest request, HttpHeaders headers, BodyCapture body) {
    Mono<Verdict> decided =
        Mono.fromCallable(
            () ->
                engine.begin(
                    Exchanges.head(request.method(), request.url(), headers),
                    body.in(),
                    body.size()));
    if (!engine.decidesWithoutWaiting()) {
      decided = decided.subscribeOn(Schedulers.fromExecutor(executor));
    }
    return decided.flatMap(
        v -> {
          if (!(v instanceof Verdict.Held held)) return Mono.just(v);
          // no thread waits: the review's end completes the stage on the executor
          return Mono.fromCompletionStage(() -> held.result(executor)).doOnCancel(held::cancel);
        });
  }

  private Mono<ClientResponse> proceed(
      ClientRequest request, HttpHeaders sent, Verdict verdict, ExchangeFunction next) {
    if (verdict instanceof Verdict.Denied denied) {
      return Mono.fromSupplier(() -> synthetic(request, denied.error()))
          .doFinally(s -> end(() -> denied.end(true)));
    }
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    Forward forward = allowed.forward();
    HttpHeaders headers = Exchanges.forwardHeaders(sent, forward);
    byte[] body = forward.body();
    ClientRequest upstream =
        ClientRequest.from(request)
            .headers(h -> h.clear())
            .headers(h -> Exchanges.copy(headers, h))
            .body(
                (message, context) ->
                    body.length == 0
                        ? message.setComplete()
                        : message.writeWith(
                            Mono.fromSupplier(() -> message.bufferFactory().wrap(body))))
            .build();
    AtomicBoolean answered = new AtomicBoolean();
    return next.exchange(upstream)
        .doOnNext(r -> answered.set(true))
        .doOnError(
            e -> {
              allowed.upstreamFailed();
              end(() -> allowed.end(false));
            })
        .doOnCancel(
            () -> {
              if (!answered.get()) end(() -> allowed.end(false));
            })
        .flatMap(response -> govern(request, response, allowed));
  }

  private Mono<ClientResponse> govern(
      ClientRequest request, ClientResponse response, Verdict.Allowed allowed) {
    ResponsePlan plan;
    try {
      plan =
          allowed.respond(
              response.statusCode().value(),
              Exchanges.multimap(response.headers().asHttpHeaders()));
    } catch (RuntimeException e) {
      end(() -> allowed.end(false));
      return response.releaseBody().then(Mono.error(e));
    }
    if (plan instanceof ResponsePlan.Refused refused) {
      // encoded where it had to be masked: nothing of it reaches the caller
      return response
          .releaseBody()
          .then(Mono.fromSupplier(() -> synthetic(request, refused.error())))
          .doFinally(s -> end(() -> allowed.end(true)));
    }
    ResponsePlan.Relay relay = (ResponsePlan.Relay) plan;
    HttpHeaders shown = Exchanges.shownHeaders(response.headers().asHttpHeaders(), relay);
    Flux<DataBuffer> body = governedBody(response.bodyToFlux(DataBuffer.class), relay, allowed);
    return Mono.just(
        ClientResponse.create(response.statusCode(), strategies)
            .headers(h -> Exchanges.copy(shown, h))
            .cookies(c -> c.putAll(response.cookies()))
            .request(response.request())
            .body(body)
            .build());
  }

  /**
   * The body through the masking, buffer by buffer as it arrives (upstream buffers released once
   * read), the held-back tail at the end, what is emitted reported as delivered, and the exchange
   * ended once when the body completes (complete), fails or is cancelled (incomplete).
   */
  private Flux<DataBuffer> governedBody(
      Flux<DataBuffer> upstream, ResponsePlan.Relay relay, Verdict.Allowed allowed) {
    ResponseMasking masking = relay.masking();
    DefaultDataBufferFactory factory = DefaultDataBufferFactory.sharedInstance;
    Flux<DataBuffer> masked =
        upstream.concatMap(
            buffer -> {
              byte[] in = new byte[buffer.readableByteCount()];
              buffer.read(in);
              DataBufferUtils.release(buffer);
              byte[] out;
              try {
                out = masking == null ? in : masking.push(in, 0, in.length);
              } catch (IOException e) {
                return Mono.error(new UncheckedIOException(e));
              }
              if (out.length == 0) return Mono.empty();
              relay.delivered(out, 0, out.length);
              return Mono.just((DataBuffer) factory.wrap(out));
            });
    if (masking != null) {
      masked =
          masked.concatWith(
              Mono.defer(
                  () -> {
                    byte[] tail;
                    try {
                      tail = masking.finish();
                    } catch (IOException e) {
                      return Mono.error(new UncheckedIOException(e));
                    }
                    if (tail.length == 0) return Mono.empty();
                    relay.delivered(tail, 0, tail.length);
                    return Mono.just((DataBuffer) factory.wrap(tail));
                  }));
    }
    return masked.doFinally(
        signal -> {
          boolean complete = signal == SignalType.ON_COMPLETE;
          end(() -> allowed.end(complete));
        });
  }

  /** Ends an exchange where it may: on this thread when ending never waits, else the executor. */
  private void end(Runnable ending) {
    if (engine.endsWithoutWaiting()) {
      ending.run();
    } else {
      executor.execute(ending);
    }
  }

  /**
   * The engine's answer to {@code request} in place of the server's, naming the request (so that
   * {@code WebClientResponseException} says "403 Forbidden from POST <url>") without its
   * credentials.
   */
  private ClientResponse synthetic(ClientRequest request, ErrorResponse error) {
    HttpHeaders headers = SyntheticResponse.headers(error);
    return ClientResponse.create(
            org.springframework.http.HttpStatusCode.valueOf(error.status()), strategies)
        .request(SyntheticResponse.request(request.method(), request.url(), request.headers()))
        .headers(h -> Exchanges.copy(headers, h))
        .body(Flux.just(DefaultDataBufferFactory.sharedInstance.wrap(error.body())))
        .build();
  }
}
