package dev.inferpam.langchain4j;

import dev.inferpam.core.PamEngine;
import dev.langchain4j.http.client.HttpClient;
import dev.langchain4j.http.client.HttpClientBuilder;
import dev.langchain4j.http.client.jdk.JdkHttpClient;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;

/**
 * inferpam for LangChain4j, through its HTTP client seam: every request a model makes (chat,
 * streaming chat, embeddings, …) is decided by a {@link PamEngine} on the bytes LangChain4j sends,
 * the caller's key is replaced by the policy's upstream credential, responses (streams event by
 * event) are masked before LangChain4j parses them, and every exchange is recorded.
 *
 * <p>Two ways in:
 *
 * <ul>
 *   <li>Per model, the explicit one: {@code
 *       OpenAiChatModel.builder().httpClientBuilder(PamLangChain4j.httpClientBuilder(engine))}.
 *   <li>For every model built without an explicit client: {@link #install(PamEngine)} once, and
 *       the system property {@code
 *       langchain4j.http.clientBuilderFactory=dev.inferpam.langchain4j.PamHttpClientBuilderFactory}.
 *       This jar registers {@link PamHttpClientBuilderFactory} with LangChain4j's service loader;
 *       LangChain4j refuses to choose between it and its own JDK client ("Conflict: multiple HTTP
 *       clients…") until the property names one, so adding the jar never leaves a model silently
 *       ungoverned. A model built through the factory before {@link #install} fails at its first
 *       request, saying so.
 * </ul>
 *
 * Both wrap LangChain4j's own JDK client ({@code langchain4j-http-client-jdk}, what its model
 * modules bring); {@link #httpClientBuilder(PamEngine, HttpClientBuilder)} wraps another.
 *
 * <p>The adapter runs in the caller's process: it keeps static keys out of code and gives audit
 * and policy for honest callers, but cannot stop code that bypasses it.
 */
public final class PamLangChain4j {
  private static final AtomicReference<PamEngine> INSTALLED = new AtomicReference<>();

  private PamLangChain4j() {}

  /** A client builder governed by {@code engine}, wrapping LangChain4j's JDK client. */
  public static HttpClientBuilder httpClientBuilder(PamEngine engine) {
    return httpClientBuilder(engine, JdkHttpClient.builder());
  }

  /** A client builder governed by {@code engine}, wrapping {@code delegate}'s clients. */
  public static HttpClientBuilder httpClientBuilder(PamEngine engine, HttpClientBuilder delegate) {
    return new Builder(() -> engine, delegate);
  }

  /**
   * The engine that clients from {@link PamHttpClientBuilderFactory} use (replacing any installed
   * before). Install it before the first model request.
   */
  public static void install(PamEngine engine) {
    INSTALLED.set(Objects.requireNonNull(engine, "engine"));
  }

  /** A builder whose clients use the installed engine (see {@link #install}). */
  static HttpClientBuilder installedBuilder() {
    return new Builder(
        () -> {
          PamEngine engine = INSTALLED.get();
          if (engine == null) {
            throw new IllegalStateException(
                "inferpam: no engine installed for LangChain4j: call"
                    + " PamLangChain4j.install(engine) before the first model request");
          }
          return engine;
        },
        JdkHttpClient.builder());
  }

  /** Where a client finds its engine: at its first request, not when the model is built. */
  interface EngineSource {
    PamEngine engine();
  }

  private static final class Builder implements HttpClientBuilder {
    private final EngineSource engine;
    private final HttpClientBuilder delegate;

    Builder(EngineSource engine, HttpClientBuilder delegate) {
      this.engine = engine;
      this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    @Override
    public Duration connectTimeout() {
      return delegate.connectTimeout();
    }

    @Override
    public HttpClientBuilder connectTimeout(Duration timeout) {
      delegate.connectTimeout(timeout);
      return this;
    }

    @Override
    public Duration readTimeout() {
      return delegate.readTimeout();
    }

    @Override
    public HttpClientBuilder readTimeout(Duration timeout) {
      delegate.readTimeout(timeout);
      return this;
    }

    @Override
    public HttpClient build() {
      return new PamHttpClient(engine, delegate.build());
    }
  }
}
