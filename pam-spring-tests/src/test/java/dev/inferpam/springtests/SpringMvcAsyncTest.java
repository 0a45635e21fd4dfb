package dev.inferpam.springtests;

import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.web.servlet.context.ServletWebServerApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.Ordered;

/**
 * A real Spring Boot 3.5 application (Tomcat 10.1, random port on 127.0.0.1) with {@link PamFilter}
 * registered as the README's quickstart does (a {@code FilterRegistrationBean} for the REQUEST and
 * ASYNC dispatcher types) and masking on: every Spring MVC return type, a Reactor {@code Flux}
 * included, delivers the whole masked body and a complete record ({@link
 * SpringMvcReturnTypesContract}).
 */
class SpringMvcAsyncTest extends SpringMvcReturnTypesContract {
  static ServletWebServerApplicationContext application;

  @BeforeAll
  static void startApplication() {
    SpringApplication app = new SpringApplication(ModelApplication.class);
    app.setDefaultProperties(
        Map.of(
            "server.port", "0",
            "server.address", "127.0.0.1",
            "spring.main.banner-mode", "off"));
    application = (ServletWebServerApplicationContext) app.run();
  }

  @AfterAll
  static void stopApplication() {
    if (application != null) application.close();
  }

  @Override
  protected int port() {
    return application.getWebServer().getPort();
  }

  @Override
  protected InMemoryRecorder recorder() {
    return application.getBean(InMemoryRecorder.class);
  }

  /** The application: the README's Spring Boot configuration, with an in-memory recorder. */
  @Configuration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  @Import(ModelController.class)
  static class ModelApplication {
    @Bean
    InMemoryRecorder recorder() {
      return new InMemoryRecorder();
    }

    @Bean // Spring closes it at shutdown, which flushes the recorder
    PamEngine pamEngine(InMemoryRecorder recorder) {
      return engine(recorder);
    }

    @Bean
    FilterRegistrationBean<PamFilter> pamFilter(PamEngine engine) {
      var registration = new FilterRegistrationBean<>(new PamFilter(engine));
      registration.addUrlPatterns("/*");
      registration.setDispatcherTypes(DispatcherType.REQUEST, DispatcherType.ASYNC);
      registration.setAsyncSupported(true);
      registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
      return registration;
    }

    @Bean(destroyMethod = "shutdownNow")
    ExecutorService modelWorkers() {
      return Executors.newCachedThreadPool();
    }
  }
}
