package dev.inferpam.spring.boot;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.micrometer.PamMetrics;
import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
import dev.inferpam.spring.internal.ClientApiKey;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnWebApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.web.client.RestClientCustomizer;
import org.springframework.boot.web.client.RestTemplateCustomizer;
import org.springframework.boot.web.codec.CodecCustomizer;
import org.springframework.boot.web.reactive.function.client.WebClientCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Scope;
import org.springframework.core.io.Resource;
import org.springframework.core.io.ResourceLoader;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.ExchangeStrategies;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * The starter's engine and clients: a {@link PamEngine} from {@code inferpam.policy} (unless the
 * application defines its own), and, with {@code inferpam.client.enabled} (the default), a
 * customizer for each of Boot's client builders, so that every {@code RestClient}, {@code
 * RestTemplate} and {@code WebClient} the application builds from them — Spring AI 1.1's among
 * them, streaming included — is governed in-process. With {@code inferpam.client.api-key}, calls
 * that carry no credential of their own (Spring AI's Ollama models') are made as the application,
 * identified by that key; it is checked against the engine at start-up (a blank key, or one the
 * policy does not know, stops the application). The client side of Boot 4 and Spring AI 2 is in
 * {@code pam-spring-boot4-autoconfigure}, which this starter brings.
 *
 * <p>Where Boot gives no {@code RestClient.Builder} or {@code WebClient.Builder} bean — Boot 3.5
 * makes no {@code RestClient.Builder} in a WebFlux application unless virtual threads are on — the
 * starter gives one, governed, so that Spring AI (which then falls back to an ungoverned {@code
 * RestClient.builder()} of its own) and the application's own code take a governed builder from
 * the context.
 *
 * <p>With the starter on the class path and no {@code inferpam.policy}, the application does not
 * start (rather than run unprotected); {@code inferpam.enabled=false} turns the starter off.
 */
@AutoConfiguration(
    // so that the builders below are added only where Boot's are not
    afterName = {
      "org.springframework.boot.autoconfigure.web.client.RestClientAutoConfiguration",
      "org.springframework.boot.autoconfigure.web.reactive.function.client.WebClientAutoConfiguration"
    })
@ConditionalOnProperty(prefix = "inferpam", name = "enabled", matchIfMissing = true)
@EnableConfigurationProperties(InferpamProperties.class)
public class InferpamAutoConfiguration {

  /**
   * The engine of {@code inferpam.policy}, changed by the application's {@link PamEngineCustomizer}
   * beans (metrics among them); Spring closes it at shutdown (flushing the recorder).
   */
  @Bean
  @ConditionalOnMissingBean
  public PamEngine pamEngine(
      InferpamProperties properties,
      ResourceLoader resources,
      ObjectProvider<PamEngineCustomizer> customizers) {
    PamEngine.Builder builder =
        PamEngine.builder().policy(policy(properties.getPolicy(), resources));
    customizers.orderedStream().forEach(c -> c.customize(builder));
    return builder.build();
  }

  /**
   * Metrics and observations, when Micrometer is on the class path ({@code inferpam.metrics.enabled}
   * turns them off): {@link PamMetrics} on the engine, reporting to the application's
   * {@link MeterRegistry} and {@link ObservationRegistry} (Actuator's), when it has either.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "io.micrometer.core.instrument.MeterRegistry")
  @ConditionalOnProperty(prefix = "inferpam.metrics", name = "enabled", matchIfMissing = true)
  static class Metrics {
    @Bean
    PamEngineCustomizer pamMetricsCustomizer(
        ObjectProvider<MeterRegistry> meters, ObjectProvider<ObservationRegistry> observations) {
      return builder -> {
        MeterRegistry registry = meters.getIfUnique();
        ObservationRegistry observing = observations.getIfUnique();
        if (registry == null && observing == null) return;
        PamMetrics.Builder metrics = PamMetrics.builder();
        if (registry != null) metrics.meterRegistry(registry);
        if (observing != null) metrics.observationRegistry(observing);
        if (registry != null || !observing.isNoop()) builder.eventListener(metrics.build());
      };
    }

    /** The engine's gauges (in flight, recorder backlog) in the application's registry. */
    @Bean
    org.springframework.beans.factory.SmartInitializingSingleton pamEngineGauges(
        ObjectProvider<PamEngine> engine, ObjectProvider<MeterRegistry> meters) {
      return () -> {
        PamEngine e = engine.getIfUnique();
        MeterRegistry registry = meters.getIfUnique();
        if (e != null && registry != null) PamMetrics.bindEngine(e, registry);
      };
    }
  }

  /**
   * {@code inferpam.server.enabled} in a WebFlux application: {@code PamFilter} is a servlet
   * filter, which a reactive server never calls, so the application does not start rather than
   * serve its requests unfiltered while the property says they are filtered.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.REACTIVE)
  @ConditionalOnProperty(prefix = "inferpam.server", name = "enabled")
  static class ReactiveServer {
    ReactiveServer() {
      throw new IllegalStateException(
          "inferpam: inferpam.server.enabled is set, but this is a reactive (WebFlux) application"
              + " and PamFilter is a servlet filter, which it would never call: put the inferpam"
              + " gateway in front of it, or remove inferpam.server.enabled (Spring's clients stay"
              + " governed)");
    }
  }

  static Policy policy(String location, ResourceLoader resources) {
    if (location == null || location.isBlank()) {
      throw new IllegalStateException(
          "inferpam: set inferpam.policy to the policy file (file:/path/policy.yaml or"
              + " classpath:policy.yaml), or inferpam.enabled=false to run without inferpam");
    }
    Resource resource = resources.getResource(location);
    if (!resource.exists()) {
      throw new IllegalStateException("inferpam: inferpam.policy: no file at " + location);
    }
    try {
      if (resource.isFile()) return Policy.load(resource.getFile().toPath());
      return Policy.parse(resource.getContentAsString(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalStateException(
          "inferpam: inferpam.policy: cannot read " + location + ": " + e.getMessage(), e);
    } catch (PolicyException e) {
      throw new IllegalStateException(
          "inferpam: inferpam.policy " + location + ": " + e.getMessage(), e);
    }
  }

  /**
   * RestClient and RestTemplate: the interceptor on every builder Boot 3.5 hands out. Boot 4 moved
   * the customizers (this class would not load there): {@code pam-spring-boot4-autoconfigure} does
   * the same with Boot 4's.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(
      name = {
        "org.springframework.web.client.RestClient",
        "org.springframework.boot.web.client.RestClientCustomizer"
      })
  @ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
  static class BlockingClients {
    @Bean
    PamClientHttpRequestInterceptor pamClientHttpRequestInterceptor(
        PamEngine engine, InferpamProperties properties) {
      Supplier<String> key =
          ClientApiKey.checked(
              "inferpam.client.api-key", properties.getClient().getApiKey(), engine);
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

    /**
     * A {@code RestClient.Builder} where Boot gives none: in a WebFlux application without virtual
     * threads (Boot's {@code RestClientAutoConfiguration} is for servlet and plain applications),
     * or with that auto-configuration excluded. Built as Boot builds its own: a new builder for
     * each injection point, with every {@link RestClientCustomizer} applied (this starter's among
     * them). Without it, Spring AI 1.1's models would make their plain calls through a {@code
     * RestClient.builder()} of their own, ungoverned.
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
   * The application's own client builder beans governed too ({@link
   * PamClientBuildersPostProcessor}): they replace Boot's, and its customizers with them.
   */
  @Bean
  @ConditionalOnClass(name = "org.springframework.web.client.RestClient")
  @ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
  static PamClientBuildersPostProcessor pamClientBuildersPostProcessor(
      org.springframework.beans.factory.BeanFactory beans) {
    return new PamClientBuildersPostProcessor(beans);
  }

  /**
   * WebClient: the filter on every builder Boot 3.5 hands out, encoding request bodies with the
   * application's codecs (Boot's {@link CodecCustomizer}s), so the bytes decided on are the bytes
   * the client would send. On Boot 4, {@code pam-spring-boot4-autoconfigure}'s.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(
      name = {
        "org.springframework.web.reactive.function.client.WebClient",
        "org.springframework.boot.web.reactive.function.client.WebClientCustomizer"
      })
  @ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
  static class ReactiveClients {
    @Bean
    PamExchangeFilterFunction pamExchangeFilterFunction(
        PamEngine engine, ObjectProvider<CodecCustomizer> codecs, InferpamProperties properties) {
      ExchangeStrategies strategies =
          ExchangeStrategies.builder()
              .codecs(c -> codecs.orderedStream().forEach(customizer -> customizer.customize(c)))
              .build();
      Supplier<String> key =
          ClientApiKey.checked(
              "inferpam.client.api-key", properties.getClient().getApiKey(), engine);
      return key == null
          ? PamExchangeFilterFunction.of(engine, strategies)
          : PamExchangeFilterFunction.withTokenSupplier(engine, strategies, key);
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
}
