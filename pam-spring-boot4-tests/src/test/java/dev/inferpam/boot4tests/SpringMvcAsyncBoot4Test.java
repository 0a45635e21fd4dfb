package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.spring.boot.PamEngineCustomizer;
import dev.inferpam.springtests.SpringMvcReturnTypesContract;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.catalina.util.ServerInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * Every Spring MVC return type on Boot 4 (Spring Framework 7, Tomcat 11), with the filter from
 * {@code inferpam.server.enabled=true}: the whole masked body, the text after the last masked value
 * included, and a complete record, as {@code SpringMvcAsyncTest} checks on Boot 3.5 and Tomcat
 * 10.1, with the same controller and checks ({@link SpringMvcReturnTypesContract}, from
 * pam-spring-tests' test jar). The engine is the starter's, from the policy of {@link Boot4App}.
 */
class SpringMvcAsyncBoot4Test extends SpringMvcReturnTypesContract {
  @TempDir static Path dir;
  static ConfigurableApplicationContext app;
  static InMemoryRecorder recorder;

  @BeforeAll
  static void startApplication() throws Exception {
    app =
        new SpringApplicationBuilder(ModelApplication.class)
            .web(WebApplicationType.SERVLET)
            .properties(
                "server.address=127.0.0.1",
                "server.port=0",
                "spring.main.banner-mode=off",
                "spring.ai.openai.api-key=unused",
                "inferpam.policy=file:" + Boot4App.policy(dir),
                "inferpam.server.enabled=true")
            .run();
    recorder = app.getBean(InMemoryRecorder.class);
    assertThat(ServerInfo.getServerInfo()).startsWith("Apache Tomcat/11.");
  }

  @AfterAll
  static void stopApplication() {
    if (app != null) app.close();
  }

  @Override
  protected int port() {
    return ((WebServerApplicationContext) app).getWebServer().getPort();
  }

  @Override
  protected InMemoryRecorder recorder() {
    return recorder;
  }

  /** Alice's, of {@link Boot4App}'s policy. */
  @Override
  protected String apiKey() {
    return Boot4App.ALICE;
  }

  /**
   * A Boot 4 MVC application with the starter: the engine from {@code inferpam.policy}, its
   * recorder an in-memory one, the filter from {@code inferpam.server.enabled}.
   */
  @SpringBootConfiguration(proxyBeanMethods = false)
  @EnableAutoConfiguration
  @Import(ModelController.class)
  static class ModelApplication {
    @Bean
    InMemoryRecorder recorder() {
      return new InMemoryRecorder();
    }

    @Bean
    PamEngineCustomizer inMemoryRecords(InMemoryRecorder recorder) {
      return builder -> builder.recorder(recorder);
    }

    @Bean(destroyMethod = "shutdownNow")
    ExecutorService modelWorkers() {
      return Executors.newCachedThreadPool();
    }
  }
}
