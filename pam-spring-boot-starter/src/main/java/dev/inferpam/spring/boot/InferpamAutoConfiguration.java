package dev.inferpam.spring.boot;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.PolicyException;
import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.web.client.RestClientCustomizer;
import org.springframework.boot.web.client.RestTemplateCustomizer;
import org.springframework.boot.web.codec.CodecCustomizer;
import org.springframework.boot.web.reactive.function.client.WebClientCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.io.Resource;
import org.springframework.core.io.ResourceLoader;
import org.springframework.web.reactive.function.client.ExchangeStrategies;

/**
 * The starter's engine and clients: a {@link PamEngine} from {@code inferpam.policy} (unless the
 * application defines its own), and, with {@code inferpam.client.enabled} (the default), a
 * customizer for each of Boot's client builders, so that every {@code RestClient}, {@code
 * RestTemplate} and {@code WebClient} the application builds from them — Spring AI's among them,
 * streaming included — is governed in-process.
 *
 * <p>With the starter on the class path and no {@code inferpam.policy}, the application does not
 * start (rather than run unprotected); {@code inferpam.enabled=false} turns the starter off.
 */
@AutoConfiguration
@ConditionalOnProperty(prefix = "inferpam", name = "enabled", matchIfMissing = true)
@EnableConfigurationProperties(InferpamProperties.class)
public class InferpamAutoConfiguration {

  /** The engine of {@code inferpam.policy}; Spring closes it at shutdown (flushing the recorder). */
  @Bean
  @ConditionalOnMissingBean
  public PamEngine pamEngine(InferpamProperties properties, ResourceLoader resources) {
    return PamEngine.builder().policy(policy(properties.getPolicy(), resources)).build();
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

  /** RestClient and RestTemplate: the interceptor on every builder Boot hands out. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.web.client.RestClient")
  @ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
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
   * application's codecs (Boot's {@link CodecCustomizer}s), so the bytes decided on are the bytes
   * the client would send.
   */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "org.springframework.web.reactive.function.client.WebClient")
  @ConditionalOnProperty(prefix = "inferpam.client", name = "enabled", matchIfMissing = true)
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
