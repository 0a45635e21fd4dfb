package dev.inferpam.spring.boot;

import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.util.ClassUtils;
import org.springframework.web.client.RestClient;
import org.springframework.web.client.RestTemplate;

/**
 * Governs the client builders an application declares as beans of its own: a {@code @Bean
 * RestClient.Builder} (or {@code WebClient.Builder}, or {@code RestTemplate}) replaces Boot's,
 * and with it the customizers that add inferpam, and Spring AI then calls its models through it.
 * This adds the starter's interceptor (or filter) to every such bean that does not have it yet,
 * once; Boot's own builders, which the customizers already gave it, are left as they are. On Boot
 * 3.5 and 4 alike (the types are Spring Framework's). Off with {@code inferpam.client.enabled=false}.
 *
 * <p>The interceptor and the filter are looked up when a builder bean is made, not when this
 * post-processor is, so that it makes no bean early.
 */
final class PamClientBuildersPostProcessor implements BeanPostProcessor {
  private static final boolean WEB_CLIENT =
      ClassUtils.isPresent(
          "org.springframework.web.reactive.function.client.WebClient",
          PamClientBuildersPostProcessor.class.getClassLoader());

  private final BeanFactory beans;

  PamClientBuildersPostProcessor(BeanFactory beans) {
    this.beans = beans;
  }

  private PamClientHttpRequestInterceptor interceptor() {
    return beans.getBeanProvider(PamClientHttpRequestInterceptor.class).getIfAvailable();
  }

  @Override
  public Object postProcessAfterInitialization(Object bean, String beanName) {
    if (bean instanceof RestClient.Builder builder) {
      PamClientHttpRequestInterceptor i = interceptor();
      if (i != null) {
        builder.requestInterceptors(
            list -> {
              if (list.stream().noneMatch(PamClientHttpRequestInterceptor.class::isInstance))
                list.add(i);
            });
      }
    } else if (bean instanceof RestTemplate template) {
      PamClientHttpRequestInterceptor i = interceptor();
      if (i != null
          && template.getInterceptors().stream()
              .noneMatch(PamClientHttpRequestInterceptor.class::isInstance)) {
        template.getInterceptors().add(i);
      }
    } else if (WEB_CLIENT) {
      Reactive.govern(bean, beans);
    }
    return bean;
  }

  /** Kept apart so that no WebClient type is loaded where spring-webflux is absent. */
  private static final class Reactive {
    static void govern(Object bean, BeanFactory beans) {
      if (!(bean
          instanceof org.springframework.web.reactive.function.client.WebClient.Builder builder))
        return;
      dev.inferpam.spring.PamExchangeFilterFunction f =
          beans
              .getBeanProvider(dev.inferpam.spring.PamExchangeFilterFunction.class)
              .getIfAvailable();
      if (f == null) return;
      builder.filters(
          list -> {
            if (list.stream()
                .noneMatch(dev.inferpam.spring.PamExchangeFilterFunction.class::isInstance))
              list.add(f);
          });
    }
  }
}
