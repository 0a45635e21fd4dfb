package dev.inferpam.spring.boot4;

import dev.inferpam.core.PamEngine;
import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
import dev.inferpam.spring.internal.ClientApiKey;
import java.util.function.Supplier;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.http.codec.CodecCustomizer;
import org.springframework.boot.restclient.RestClientCustomizer;
import org.springframework.boot.restclient.RestTemplateCustomizer;
import org.springframework.boot.webclient.WebClientCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.web.reactive.function.client.ExchangeStrategies;

/**
 * Spring Boot 4's client builders governed, as the starter's {@code InferpamAutoConfiguration}
 * governs Boot 3.5's: with {@code inferpam.client.enabled} (the default), the {@code
 * RestClient.Builder}, {@code RestTemplateBuilder} and {@code WebClient.Builder} beans of Boot 4
 * (modules {@code spring-boot-restclient} and {@code spring-boot-webclient}, where Boot 4 moved
 * their customizers) add {@link PamClientHttpRequestInterceptor} or {@link
 * PamExchangeFilterFunction} to every client built from them. With {@code
 * inferpam.client.api-key}, requests that carry no credential of their own (Spring AI's Ollama
 * models') are made as the application, identified by that key (checked at start-up).
 *
 * <p>Each part is guarded by a class only Boot 4 has, so on Boot 3.5 nothing here loads. The
 * engine is the starter's (from {@code inferpam.policy}) or the application's own {@link
 * PamEngine} bean.
 */
@AutoConfiguration(afterName = "dev.inferpam.spring.boot.InferpamAutoConfiguration")
@ConditionalOnBooleanProperty(name = "inferpam.enabled", matchIfMissing = true)
public class InferpamBoot4ClientsAutoConfiguration {

  /** Used by Spring; the configuration has no state. */
  public InferpamBoot4ClientsAutoConfiguration() {}

  /** The starter's property; its {@code InferpamProperties} are compiled against Boot 3.5. */
  static final String API_KEY = "inferpam.client.api-key";

  /**
   * {@value #API_KEY}, checked against the engine, for requests without a credential of their
   * own; {@code null} when it is not set.
   */
  static Supplier<String> apiKey(PamEngine engine, Environment environment) {
    return ClientApiKey.checked(API_KEY, environment.getProperty(API_KEY), engine);
  }

  /** RestClient and RestTemplate: the interceptor on every builder Boot hands out. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.boot.restclient.RestClientCustomizer")
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class BlockingClients {
    @Bean
    PamClientHttpRequestInterceptor pamClientHttpRequestInterceptor(
        PamEngine engine, Environment environment) {
      Supplier<String> key = apiKey(engine, environment);
      return key == null
          ? PamClientHttpRequestInterceptor.of(engine)
          : PamClientHttpRequestInterceptor.withTokenSupplier(engine, key);
    }

    @Bean
    RestClientCustomizer pamRestClientCustomizer(PamClientHttpRequestInterceptor interceptor) {
      return builder -> builder.requestInterceptor(interceptor);
    }

    @Bean
    RestTemplateCustomizer pamRestTemplateCustomizer(PamClientHttpRequestInterceptor interceptor) {
      return template -> template.getInterceptors().add(interceptor);
    }
  }

  /**
   * WebClient: the filter on every builder Boot hands out, encoding request bodies with the
   * application's codecs (Boot 4's {@link CodecCustomizer}s), so the bytes decided on are the
   * bytes the client would send.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(
      name = {
        "org.springframework.boot.webclient.WebClientCustomizer",
        "org.springframework.boot.http.codec.CodecCustomizer"
      })
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class ReactiveClients {
    @Bean
    PamExchangeFilterFunction pamExchangeFilterFunction(
        PamEngine engine, ObjectProvider<CodecCustomizer> codecs, Environment environment) {
      ExchangeStrategies strategies =
          ExchangeStrategies.builder()
              .codecs(c -> codecs.orderedStream().forEach(customizer -> customizer.customize(c)))
              .build();
      Supplier<String> key = apiKey(engine, environment);
      return key == null
          ? PamExchangeFilterFunction.of(engine, strategies)
          : PamExchangeFilterFunction.withTokenSupplier(engine, strategies, key);
    }

    @Bean
    WebClientCustomizer pamWebClientCustomizer(PamExchangeFilterFunction filter) {
      return builder -> builder.filter(filter);
    }
  }
}
