package dev.inferpam.spring.boot4;

import dev.inferpam.core.PamEngine;
import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
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
import org.springframework.web.reactive.function.client.ExchangeStrategies;

/**
 * Spring Boot 4's client builders governed, as the starter's {@code InferpamAutoConfiguration}
 * governs Boot 3.5's: with {@code inferpam.client.enabled} (the default), the {@code
 * RestClient.Builder}, {@code RestTemplateBuilder} and {@code WebClient.Builder} beans of Boot 4
 * (modules {@code spring-boot-restclient} and {@code spring-boot-webclient}, where Boot 4 moved
 * their customizers) add {@link PamClientHttpRequestInterceptor} or {@link
 * PamExchangeFilterFunction} to every client built from them.
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

  /** RestClient and RestTemplate: the interceptor on every builder Boot hands out. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.boot.restclient.RestClientCustomizer")
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class BlockingClients {
    @Bean
    PamClientHttpRequestInterceptor pamClientHttpRequestInterceptor(PamEngine engine) {
      return PamClientHttpRequestInterceptor.of(engine);
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
        PamEngine engine, ObjectProvider<CodecCustomizer> codecs) {
      ExchangeStrategies strategies =
          ExchangeStrategies.builder()
              .codecs(c -> codecs.orderedStream().forEach(customizer -> customizer.customize(c)))
              .build();
      return PamExchangeFilterFunction.of(engine, strategies);
    }

    @Bean
    WebClientCustomizer pamWebClientCustomizer(PamExchangeFilterFunction filter) {
      return builder -> builder.filter(filter);
    }
  }
}
