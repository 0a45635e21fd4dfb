package dev.inferpam.spring.boot;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.spring.PamClientHttpRequestInterceptor;
import dev.inferpam.spring.PamExchangeFilterFunction;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.support.GenericApplicationContext;
import org.springframework.web.client.RestClient;
import org.springframework.web.reactive.function.client.WebClient;

/**
 * The same Spring AI 1.1 calls, streams and denials as {@link SpringAiOpenAiTest}, in an
 * application that declares its own {@code RestClient.Builder} and {@code WebClient.Builder}
 * beans (plain ones, as applications do to set timeouts): they replace Boot's, and its
 * customizers with them, and Spring AI calls through them; the starter governs them too.
 */
class SpringAiOpenAiOwnBuildersTest extends SpringAiOpenAiTest {

  @Override
  SpringApplicationBuilder kind(SpringApplicationBuilder application) {
    return super.kind(application)
        .initializers(
            context -> {
              GenericApplicationContext c = (GenericApplicationContext) context;
              c.registerBean(
                  "appRestClientBuilder", RestClient.Builder.class, () -> RestClient.builder());
              c.registerBean(
                  "appWebClientBuilder", WebClient.Builder.class, () -> WebClient.builder());
            });
  }

  @Test
  void theApplicationsBuildersAreTheOnesInTheContextEachWithOneInterceptorOrFilter() {
    assertThat(app.getBeanNamesForType(RestClient.Builder.class))
        .containsExactly("appRestClientBuilder");
    assertThat(app.getBeanNamesForType(WebClient.Builder.class))
        .containsExactly("appWebClientBuilder");
    AtomicLong interceptors = new AtomicLong();
    app.getBean(RestClient.Builder.class)
        .requestInterceptors(
            list ->
                interceptors.set(
                    list.stream()
                        .filter(PamClientHttpRequestInterceptor.class::isInstance)
                        .count()));
    assertThat(interceptors.get()).isEqualTo(1);
    AtomicLong filters = new AtomicLong();
    app.getBean(WebClient.Builder.class)
        .filters(
            list ->
                filters.set(
                    list.stream().filter(PamExchangeFilterFunction.class::isInstance).count()));
    assertThat(filters.get()).isEqualTo(1);
  }
}
