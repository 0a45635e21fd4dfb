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
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingClass;
import org.springframework.boot.http.codec.CodecCustomizer;
import org.springframework.boot.restclient.RestClientCustomizer;
import org.springframework.boot.restclient.RestTemplateCustomizer;
import org.springframework.boot.webclient.WebClientCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Scope;
import org.springframework.core.env.Environment;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.ExchangeStrategies;
import org.springframework.web.reactive.function.client.WebClient;

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
 * <p>Where the context has no {@code RestClient.Builder} or {@code WebClient.Builder} bean — the
 * application lacks {@code spring-boot-restclient} or {@code spring-boot-webclient} (Spring AI 2's
 * model modules have them as optional dependencies), or excluded Boot's auto-configuration — this
 * gives one, governed: Spring AI would otherwise call through a {@code RestClient.builder()} or
 * {@code WebClient.builder()} of its own, ungoverned. Without Boot's module it is a plain builder
 * with the adapter (and Spring's default codecs); with it, built as Boot builds its own.
 *
 * <p>Each part is guarded by a class only Boot 4 has, or by the absence of one Boot 3.5 has, so on
 * Boot 3.5 nothing here loads. The engine is the starter's (from {@code inferpam.policy}) or the
 * application's own {@link PamEngine} bean.
 */
@AutoConfiguration(
    afterName = {
      "dev.inferpam.spring.boot.InferpamAutoConfiguration",
      // so that the builders below are added only where Boot's are not
      "org.springframework.boot.restclient.autoconfigure.RestClientAutoConfiguration",
      "org.springframework.boot.webclient.autoconfigure.WebClientAutoConfiguration"
    })
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

  /** Boot 3.5's customizers (in {@code spring-boot} there): their presence means Boot 3.5. */
  static final String BOOT3_REST_CLIENT_CUSTOMIZER =
      "org.springframework.boot.web.client.RestClientCustomizer";

  static final String BOOT3_WEB_CLIENT_CUSTOMIZER =
      "org.springframework.boot.web.reactive.function.client.WebClientCustomizer";

  static PamClientHttpRequestInterceptor interceptor(PamEngine engine, Environment environment) {
    Supplier<String> key = apiKey(engine, environment);
    return key == null
        ? PamClientHttpRequestInterceptor.of(engine)
        : PamClientHttpRequestInterceptor.withTokenSupplier(engine, key);
  }

  static PamExchangeFilterFunction filter(
      PamEngine engine, ExchangeStrategies strategies, Environment environment) {
    Supplier<String> key = apiKey(engine, environment);
    return key == null
        ? PamExchangeFilterFunction.of(engine, strategies)
        : PamExchangeFilterFunction.withTokenSupplier(engine, strategies, key);
  }

  /** RestClient and RestTemplate: the interceptor on every builder Boot hands out. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.boot.restclient.RestClientCustomizer")
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class BlockingClients {
    @Bean
    PamClientHttpRequestInterceptor pamClientHttpRequestInterceptor(
        PamEngine engine, Environment environment) {
      return interceptor(engine, environment);
    }

    @Bean
    RestClientCustomizer pamRestClientCustomizer(PamClientHttpRequestInterceptor interceptor) {
      return builder -> builder.requestInterceptor(interceptor);
    }

    @Bean
    RestTemplateCustomizer pamRestTemplateCustomizer(PamClientHttpRequestInterceptor interceptor) {
      return template -> template.getInterceptors().add(interceptor);
    }

    /**
     * A {@code RestClient.Builder} where Boot gives none (its {@code RestClientAutoConfiguration}
     * excluded): a new builder for each injection point with every {@link RestClientCustomizer}
     * applied, this starter's among them.
     */
    @Bean
    @Scope("prototype")
    @ConditionalOnMissingBean
    RestClient.Builder pamRestClientBuilder(ObjectProvider<RestClientCustomizer> customizers) {
      RestClient.Builder builder = RestClient.builder();
      customizers.orderedStream().forEach(customizer -> customizer.customize(builder));
      return builder;
    }
  }

  /**
   * RestClient without {@code spring-boot-restclient}: Boot 4 then gives no {@code
   * RestClient.Builder}, and Spring AI 2's models (Ollama's among them) would build theirs with
   * {@code RestClient.builder()}, ungoverned. A governed one instead, new for each injection point.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.web.client.RestClient")
  @ConditionalOnMissingClass({
    "org.springframework.boot.restclient.RestClientCustomizer",
    BOOT3_REST_CLIENT_CUSTOMIZER
  })
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class BlockingClientsWithoutBootsModule {
    @Bean
    PamClientHttpRequestInterceptor pamClientHttpRequestInterceptor(
        PamEngine engine, Environment environment) {
      return interceptor(engine, environment);
    }

    @Bean
    @Scope("prototype")
    @ConditionalOnMissingBean
    RestClient.Builder pamRestClientBuilder(PamClientHttpRequestInterceptor interceptor) {
      return RestClient.builder().requestInterceptor(interceptor);
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
      return filter(engine, strategies, environment);
    }

    @Bean
    WebClientCustomizer pamWebClientCustomizer(PamExchangeFilterFunction filter) {
      return builder -> builder.filter(filter);
    }

    /**
     * A {@code WebClient.Builder} where Boot gives none (its {@code WebClientAutoConfiguration}
     * excluded), built as Boot builds its own: the application's codecs, then every {@link
     * WebClientCustomizer} (this starter's among them), a new builder for each injection point.
     */
    @Bean
    @Scope("prototype")
    @ConditionalOnMissingBean
    WebClient.Builder pamWebClientBuilder(
        ObjectProvider<CodecCustomizer> codecs, ObjectProvider<WebClientCustomizer> customizers) {
      WebClient.Builder builder =
          WebClient.builder()
              .codecs(c -> codecs.orderedStream().forEach(customizer -> customizer.customize(c)));
      customizers.orderedStream().forEach(customizer -> customizer.customize(builder));
      return builder;
    }
  }

  /**
   * WebClient without {@code spring-boot-webclient}: Boot 4 then gives no {@code
   * WebClient.Builder}, and Spring AI 2's streams would go through a {@code WebClient.builder()} of
   * its own, ungoverned. A governed one instead, new for each injection point; the builder and the
   * filter both encode with Spring's default codecs, as that builder would.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.web.reactive.function.client.WebClient")
  @ConditionalOnMissingClass({
    "org.springframework.boot.webclient.WebClientCustomizer",
    BOOT3_WEB_CLIENT_CUSTOMIZER
  })
  @ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
  static class ReactiveClientsWithoutBootsModule {
    @Bean
    PamExchangeFilterFunction pamExchangeFilterFunction(PamEngine engine, Environment environment) {
      return filter(engine, ExchangeStrategies.withDefaults(), environment);
    }

    @Bean
    @Scope("prototype")
    @ConditionalOnMissingBean
    WebClient.Builder pamWebClientBuilder(PamExchangeFilterFunction filter) {
      return WebClient.builder().filter(filter);
    }
  }
}
