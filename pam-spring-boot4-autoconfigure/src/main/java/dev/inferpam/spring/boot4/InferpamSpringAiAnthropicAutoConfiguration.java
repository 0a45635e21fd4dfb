package dev.inferpam.spring.boot4;

import dev.inferpam.core.PamEngine;
import dev.inferpam.okhttp.PamInterceptor;
import org.springframework.ai.anthropic.http.okhttp.AnthropicHttpClientBuilderCustomizer;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingClass;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.core.env.Environment;

/**
 * Spring AI 2's Anthropic models governed, as its OpenAI ones are ({@link
 * InferpamSpringAiOpenAiAutoConfiguration}): they call {@code /v1/messages} through the Anthropic
 * Java SDK on an OkHttp client of Spring AI's own ({@code SpringAiAnthropicHttpClient}), after
 * Spring AI applies each {@link AnthropicHttpClientBuilderCustomizer} bean. This one adds {@link
 * PamInterceptor}, last: the caller's key ({@code spring.ai.anthropic.api-key}, sent as {@code
 * x-api-key}) identifies the principal, the policy's upstream credential replaces it, answers and
 * streams are masked as they are read, and a denial is the policy's error in Anthropic's shape,
 * which the SDK raises with its message. A request without a key gets the application's, {@code
 * inferpam.client.api-key}, when it is set.
 *
 * <p>Guarded by a class only Spring AI 2 has; {@code inferpam.client.enabled=false} turns it off
 * with Spring's clients. Without {@code pam-okhttp} the application does not start, rather than
 * call its models ungoverned.
 */
@AutoConfiguration(afterName = "dev.inferpam.spring.boot.InferpamAutoConfiguration")
@ConditionalOnClass(
    name = "org.springframework.ai.anthropic.http.okhttp.AnthropicHttpClientBuilderCustomizer")
@ConditionalOnBooleanProperty(name = "inferpam.enabled", matchIfMissing = true)
@ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
public class InferpamSpringAiAnthropicAutoConfiguration {

  /** Used by Spring; the configuration has no state. */
  public InferpamSpringAiAnthropicAutoConfiguration() {}

  /** {@link PamInterceptor} on every OkHttp client Spring AI 2 builds for its Anthropic models. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "dev.inferpam.okhttp.PamInterceptor")
  static class Interceptor {
    @Bean
    @Order(Ordered.LOWEST_PRECEDENCE)
    AnthropicHttpClientBuilderCustomizer pamAnthropicHttpClientBuilderCustomizer(
        PamEngine engine, Environment environment) {
      PamInterceptor interceptor =
          InferpamSpringAiOpenAiAutoConfiguration.interceptor(engine, environment);
      return builder -> builder.interceptor(interceptor);
    }
  }

  /** Spring AI 2 without pam-okhttp: no start, rather than models called ungoverned. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnMissingClass("dev.inferpam.okhttp.PamInterceptor")
  static class NoInterceptor {
    NoInterceptor() {
      throw InferpamSpringAiOpenAiAutoConfiguration.withoutPamOkHttp("Anthropic");
    }
  }
}
