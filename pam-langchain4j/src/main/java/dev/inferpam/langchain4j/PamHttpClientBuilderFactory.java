package dev.inferpam.langchain4j;

import dev.langchain4j.http.client.HttpClientBuilder;
import dev.langchain4j.http.client.HttpClientBuilderFactory;

/**
 * LangChain4j's service-loader hook: chosen with the system property {@code
 * langchain4j.http.clientBuilderFactory=dev.inferpam.langchain4j.PamHttpClientBuilderFactory},
 * it gives every model built without an explicit client a client governed by the engine given to
 * {@link PamLangChain4j#install}.
 */
public final class PamHttpClientBuilderFactory implements HttpClientBuilderFactory {

  /** For the service loader. */
  public PamHttpClientBuilderFactory() {}

  @Override
  public HttpClientBuilder create() {
    return PamLangChain4j.installedBuilder();
  }
}
