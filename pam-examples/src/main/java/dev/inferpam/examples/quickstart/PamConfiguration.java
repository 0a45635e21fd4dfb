package dev.inferpam.examples.quickstart;

// README spring begin
import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.nio.file.Path;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;

@Configuration
public class PamConfiguration {
  @Bean // Spring closes it at shutdown, which flushes the recorder
  PamEngine pamEngine() {
    return PamEngine.fromPolicy(Path.of("policy.yaml"));
  }

  @Bean
  FilterRegistrationBean<PamFilter> pamFilter(PamEngine engine) {
    var registration = new FilterRegistrationBean<>(new PamFilter(engine));
    registration.addUrlPatterns("/*");
    registration.setDispatcherTypes(DispatcherType.REQUEST, DispatcherType.ASYNC);
    registration.setAsyncSupported(true); // requests held for review wait without a thread
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
    return registration;
  }
}
// README spring end
