package dev.inferpam.springtests;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.util.EnumSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Jetty;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.core.task.SimpleAsyncTaskExecutor;
import org.springframework.web.context.support.AnnotationConfigWebApplicationContext;
import org.springframework.web.servlet.DispatcherServlet;
import org.springframework.web.servlet.config.annotation.AsyncSupportConfigurer;
import org.springframework.web.servlet.config.annotation.EnableWebMvc;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * Spring MVC (Framework 6.2's {@link DispatcherServlet}, as Boot 3.5 has it) on a plain Jetty 12.1
 * (ee10, random port on 127.0.0.1), behind {@link PamFilter} on {@code /*} for the REQUEST and ASYNC
 * dispatcher types: every Spring MVC return type, a Reactor {@code Flux} included, delivers the
 * whole masked body and a complete record ({@link SpringMvcReturnTypesContract}), as on Boot's
 * Tomcat ({@link SpringMvcAsyncTest}). Boot 3.5's own Jetty support is for Jetty 12.0; the filter
 * is tested on 12.1.
 */
class SpringMvcJettyTest extends SpringMvcReturnTypesContract {
  static final InMemoryRecorder records = new InMemoryRecorder();
  static PamEngine engine;
  static Server server;
  static ServerConnector connector;
  static AnnotationConfigWebApplicationContext spring;

  @BeforeAll
  static void startApplication() throws Exception {
    assertThat(Jetty.VERSION).startsWith("12.1.");
    engine = engine(records);
    server = new Server();
    connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    server.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    spring = new AnnotationConfigWebApplicationContext();
    spring.register(MvcApplication.class);
    ServletHolder dispatcher = new ServletHolder(new DispatcherServlet(spring));
    dispatcher.setAsyncSupported(true);
    dispatcher.setInitOrder(1);
    context.addServlet(dispatcher, "/");
    server.setHandler(context);
    server.start();
  }

  @AfterAll
  static void stopApplication() throws Exception {
    try {
      if (server != null) server.stop();
    } finally {
      if (spring != null) spring.close();
      if (engine != null) engine.close();
    }
  }

  @Override
  protected int port() {
    return connector.getLocalPort();
  }

  @Override
  protected InMemoryRecorder recorder() {
    return records;
  }

  /** A Spring MVC application without Boot: the controller, its workers, MVC's task executor. */
  @Configuration(proxyBeanMethods = false)
  @EnableWebMvc
  @Import(ModelController.class)
  static class MvcApplication implements WebMvcConfigurer {
    @Override
    public void configureAsyncSupport(AsyncSupportConfigurer configurer) {
      configurer.setTaskExecutor(new SimpleAsyncTaskExecutor("mvc-async-"));
    }

    @Bean(destroyMethod = "shutdownNow")
    ExecutorService modelWorkers() {
      return Executors.newCachedThreadPool();
    }
  }
}
