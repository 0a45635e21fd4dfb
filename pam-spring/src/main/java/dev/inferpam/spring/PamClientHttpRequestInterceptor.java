package dev.inferpam.spring;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.Forward;
import dev.inferpam.core.adapter.GovernedInputStream;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.spring.internal.Exchanges;
import dev.inferpam.spring.internal.SyntheticResponse;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Supplier;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpRequest;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.client.ClientHttpRequestExecution;
import org.springframework.http.client.ClientHttpRequestInterceptor;
import org.springframework.http.client.ClientHttpResponse;
import org.springframework.http.client.support.HttpRequestWrapper;

/**
 * Client-side enforcement for Spring's blocking clients: a {@link ClientHttpRequestInterceptor}
 * for {@code RestClient} and {@code RestTemplate} that asks a {@link PamEngine} about every
 * request, as {@code PamInterceptor} does for OkHttp.
 *
 * <ul>
 *   <li><b>Denied</b>: the caller gets the policy's JSON error (status, headers, body) as the
 *       response, without a call to the server; {@code RestClient}'s status handlers then throw
 *       as for any 4xx or 5xx ({@code HttpClientErrorException} with that body, or, in Spring AI,
 *       its own exception quoting it).
 *   <li><b>Held for review</b>: the calling thread waits for the reviewer (bounded by the
 *       policy's {@code approval.timeout}); an interrupt withdraws the request and throws {@link
 *       InterruptedIOException}. Nothing is sent while it waits.
 *   <li><b>Allowed</b>: the caller's credential ({@code Authorization}, {@code X-Api-Key}) is
 *       replaced with the upstream credential, the body the engine decided on is sent, and the
 *       response body is masked (and this exchange's credentials replaced) as the caller reads it,
 *       held back at most {@code masking.max-hold-back} chars, never whole. The exchange is
 *       recorded when the caller reads the body to its end or closes it.
 * </ul>
 *
 * <p>Install it on the builder: {@code RestClient.builder().requestInterceptor(interceptor)} or
 * {@code restTemplate.getInterceptors().add(interceptor)}. With the Spring Boot starter ({@code
 * pam-spring-boot-starter}) every {@code RestClient.Builder} and {@code RestTemplateBuilder} the
 * application gets from the context has it already. Turn redirect following off in the request
 * factory where it can be: an interceptor sees only the first hop.
 *
 * <p>The caller is whoever the request's credential names. For a client that sends none (a server
 * that takes no key, as Ollama), {@link #withTokenSupplier} gives such requests the application's
 * own ({@code inferpam.client.api-key} with the starter).
 *
 * <p>The interceptor runs in the caller's process: it keeps static keys out of code and gives
 * audit and policy for honest callers, but cannot stop code that bypasses it.
 *
 * <p><b>Threads.</b> No thread of its own; nothing holds a monitor while it waits or reads, so
 * on virtual threads nothing pins. Thread-safe; share one instance.
 */
public final class PamClientHttpRequestInterceptor implements ClientHttpRequestInterceptor {

  /** How often a call held for review looks at its thread's interrupt flag. */
  private static final Duration INTERRUPT_POLL = Duration.ofMillis(50);

  private final PamEngine engine;
  private final Supplier<String> tokenSupplier;

  private PamClientHttpRequestInterceptor(PamEngine engine, Supplier<String> tokenSupplier) {
    this.engine = Objects.requireNonNull(engine, "engine");
    this.tokenSupplier = tokenSupplier;
  }

  /** An interceptor that identifies callers by the credential their requests carry. */
  public static PamClientHttpRequestInterceptor of(PamEngine engine) {
    return new PamClientHttpRequestInterceptor(engine, null);
  }

  /**
   * An interceptor that also gives requests that carry no credential of their own ({@code
   * Authorization}, {@code X-Api-Key}) the application's: {@code Authorization: Bearer <token>}
   * from {@code tokenSupplier} (a service key of the policy's {@code identity.api-keys}, or an
   * OIDC token from a token cache), asked on every such request. For clients whose server takes
   * no key, such as Spring AI's Ollama models. A request with its own credential keeps it. The
   * token identifies the caller only: like any caller credential it is replaced with the upstream
   * credential (or removed) before the request is sent, and it is never logged. A supplier that
   * returns {@code null} or blank, or throws, leaves the request without a credential, which is
   * then refused 401 {@code unauthenticated}.
   *
   * @throws NullPointerException when {@code engine} or {@code tokenSupplier} is null
   */
  public static PamClientHttpRequestInterceptor withTokenSupplier(
      PamEngine engine, Supplier<String> tokenSupplier) {
    return new PamClientHttpRequestInterceptor(
        engine, Objects.requireNonNull(tokenSupplier, "tokenSupplier"));
  }

  @Override
  public ClientHttpResponse intercept(
      HttpRequest request, byte[] body, ClientHttpRequestExecution execution) throws IOException {
    HttpHeaders caller = Exchanges.withCallerToken(request.getHeaders(), tokenSupplier);
    Verdict verdict =
        engine.begin(
            Exchanges.head(request.getMethod(), request.getURI(), caller),
            new ByteArrayInputStream(body),
            body.length);
    if (verdict instanceof Verdict.Held held) verdict = await(held);
    if (verdict instanceof Verdict.Denied denied) {
      try {
        return new SyntheticResponse(denied.error());
      } finally {
        denied.end(true);
      }
    }
    Verdict.Allowed allowed = (Verdict.Allowed) verdict;
    Forward forward = allowed.forward();
    HttpHeaders headers = Exchanges.forwardHeaders(caller, forward);
    HttpRequest upstream =
        new HttpRequestWrapper(request) {
          @Override
          public HttpHeaders getHeaders() {
            return headers;
          }
        };
    ClientHttpResponse response;
    try {
      response = execution.execute(upstream, forward.body());
    } catch (IOException | RuntimeException e) {
      allowed.upstreamFailed();
      allowed.end(false);
      throw e;
    }
    ResponsePlan plan;
    try {
      plan =
          allowed.respond(
              response.getStatusCode().value(), Exchanges.multimap(response.getHeaders()));
    } catch (IOException | RuntimeException e) {
      response.close();
      allowed.upstreamFailed();
      allowed.end(false);
      throw e;
    }
    if (plan instanceof ResponsePlan.Refused refused) {
      response.close(); // encoded where it had to be masked: nothing of it reaches the caller
      try {
        return new SyntheticResponse(refused.error());
      } finally {
        allowed.end(true);
      }
    }
    return new GovernedResponse(response, (ResponsePlan.Relay) plan, allowed);
  }

  /** Waits on the calling thread until the review is over; an interrupt withdraws the request. */
  private static Verdict await(Verdict.Held held) throws IOException {
    long deadline = System.nanoTime() + held.timeout().toNanos();
    try {
      while (System.nanoTime() - deadline < 0) {
        Verdict verdict = held.await(INTERRUPT_POLL);
        if (verdict != null) return verdict;
      }
      return held.cancel(); // the engine's bound passed without an end: the backstop
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      held.cancel();
      InterruptedIOException interrupted =
          new InterruptedIOException("interrupted while waiting for approval");
      interrupted.initCause(e);
      throw interrupted;
    }
  }

  /** The upstream response as the plan lets the caller see it. */
  private static final class GovernedResponse implements ClientHttpResponse {
    private final ClientHttpResponse upstream;
    private final ResponsePlan.Relay relay;
    private final Verdict.Allowed allowed;
    private final HttpHeaders headers;
    private GovernedInputStream body;

    GovernedResponse(
        ClientHttpResponse upstream, ResponsePlan.Relay relay, Verdict.Allowed allowed) {
      this.upstream = upstream;
      this.relay = relay;
      this.allowed = allowed;
      this.headers = Exchanges.shownHeaders(upstream.getHeaders(), relay);
    }

    @Override
    public HttpStatusCode getStatusCode() throws IOException {
      return upstream.getStatusCode();
    }

    @Override
    public String getStatusText() throws IOException {
      return relay.header("", upstream.getStatusText());
    }

    @Override
    public HttpHeaders getHeaders() {
      return headers;
    }

    @Override
    public InputStream getBody() throws IOException {
      if (body == null) {
        InputStream in;
        try {
          in = upstream.getBody();
        } catch (IOException | RuntimeException e) {
          allowed.end(false);
          throw e;
        }
        body = new GovernedInputStream(in, relay, allowed::end);
      }
      return body;
    }

    @Override
    public void close() {
      try {
        if (body != null) body.close();
        else allowed.end(Exchanges.hasNoBody(upstream)); // closed unread: whole only if empty
      } catch (IOException e) {
        // closing the upstream failed: the exchange is ended all the same
      } finally {
        upstream.close();
      }
    }
  }
}
