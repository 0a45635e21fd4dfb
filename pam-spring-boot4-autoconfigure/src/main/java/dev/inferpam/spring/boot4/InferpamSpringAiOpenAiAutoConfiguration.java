package dev.inferpam.spring.boot4;

import dev.inferpam.core.PamEngine;
import dev.inferpam.okhttp.PamInterceptor;
import java.util.function.Supplier;
import org.springframework.ai.openai.http.okhttp.OpenAiHttpClientBuilderCustomizer;
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
 * Spring AI 2's OpenAI models governed: they call the model server through neither {@code
 * RestClient} nor {@code WebClient} but through the OpenAI Java SDK on an OkHttp client of Spring
 * AI's own ({@code SpringAiOpenAiHttpClient}), built for every chat, embedding, image, audio and
 * moderation model, sync and async (streams), after Spring AI applies each {@link
 * OpenAiHttpClientBuilderCustomizer} bean. This one adds {@link PamInterceptor}, last (so it sees
 * the request as the other customizers' interceptors leave it, and runs inside Spring AI's
 * observation): the caller's key ({@code spring.ai.openai.api-key}) identifies the principal, the
 * policy's upstream credential replaces it, answers and streams are masked as they are read, and
 * a denial is the policy's JSON error, which the SDK raises with its message. A request without a
 * key gets the application's, {@code inferpam.client.api-key}, when it is set.
 *
 * <p>That seam gives no way to turn OkHttp's redirect following off: a redirect from the model
 * server is followed, and the policy decided on the first hop only (point {@code
 * spring.ai.openai.base-url} at the final address).
 *
 * <p>Guarded by a class only Spring AI 2 has; {@code inferpam.client.enabled=false} turns it off
 * with Spring's clients. Without {@code pam-okhttp} (which the starter brings; an application
 * would have to exclude it) the application does not start, rather than call its models
 * ungoverned.
 */
@AutoConfiguration(afterName = "dev.inferpam.spring.boot.InferpamAutoConfiguration")
@ConditionalOnClass(
    name = "org.springframework.ai.openai.http.okhttp.OpenAiHttpClientBuilderCustomizer")
@ConditionalOnBooleanProperty(name = "inferpam.enabled", matchIfMissing = true)
@ConditionalOnBooleanProperty(name = "inferpam.client.enabled", matchIfMissing = true)
public class InferpamSpringAiOpenAiAutoConfiguration {

  /** Used by Spring; the configuration has no state. */
  public InferpamSpringAiOpenAiAutoConfiguration() {}

  /** {@link PamInterceptor} on every OkHttp client Spring AI 2 builds for its OpenAI models. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnClass(name = "dev.inferpam.okhttp.PamInterceptor")
  static class Interceptor {
    @Bean
    @Order(Ordered.LOWEST_PRECEDENCE)
    OpenAiHttpClientBuilderCustomizer pamOpenAiHttpClientBuilderCustomizer(
        PamEngine engine, Environment environment) {
      PamInterceptor interceptor = interceptor(engine, environment);
      return builder -> builder.interceptor(interceptor);
    }
  }

  /** Spring AI 2 without pam-okhttp: no start, rather than models called ungoverned. */
  @Configuration(proxyBeanMethods = false)
  @ConditionalOnMissingClass("dev.inferpam.okhttp.PamInterceptor")
  static class NoInterceptor {
    NoInterceptor() {
      throw withoutPamOkHttp("OpenAI");
    }
  }

  /**
   * The interceptor for a Spring AI 2 model's OkHttp client: the caller's own key identifies it;
   * without one, the application's ({@code inferpam.client.api-key}) when set.
   */
  static PamInterceptor interceptor(PamEngine engine, Environment environment) {
    Supplier<String> key = InferpamBoot4ClientsAutoConfiguration.apiKey(engine, environment);
    return key == null ? PamInterceptor.of(engine) : PamInterceptor.withTokenSupplier(engine, key);
  }

  /** Why a Spring AI 2 application whose {@code provider} models call through OkHttp cannot start. */
  static IllegalStateException withoutPamOkHttp(String provider) {
    return new IllegalStateException(
        "inferpam: Spring AI's "
            + provider
            + " models call through OkHttp, and dev.inferpam:pam-okhttp"
            + " (which pam-spring-boot-starter brings) is not on the class path: put it back,"
            + " or set inferpam.client.enabled=false to call them ungoverned");
  }
}
