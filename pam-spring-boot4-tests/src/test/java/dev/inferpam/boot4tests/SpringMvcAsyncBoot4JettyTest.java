package dev.inferpam.boot4tests;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.core.InMemoryRecorder;
import org.eclipse.jetty.util.Jetty;
import org.junit.jupiter.api.BeforeAll;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.jetty.JettyWebServer;
import org.springframework.boot.jetty.servlet.JettyServletWebServerFactory;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * {@link SpringMvcAsyncBoot4Test}'s application and checks (every Spring MVC return type, a Reactor
 * {@code Flux} included, with the filter the starter registers), served by Boot 4's own Jetty
 * support (Jetty 12.1, ee11) instead of Tomcat 11.
 */
class SpringMvcAsyncBoot4JettyTest extends SpringMvcAsyncBoot4Test {

  /** Hides the Tomcat start of the superclass: the same application, on Jetty. */
  @BeforeAll
  static void startApplication() throws Exception {
    app =
        new SpringApplicationBuilder(ModelApplication.class, OnJetty.class)
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
    assertThat(((WebServerApplicationContext) app).getWebServer())
        .isInstanceOf(JettyWebServer.class);
    assertThat(Jetty.VERSION).startsWith("12.1.");
  }

  /** Boot's Jetty factory, which replaces the Tomcat one Boot would pick first. */
  @Configuration(proxyBeanMethods = false)
  static class OnJetty {
    @Bean
    JettyServletWebServerFactory jettyServletWebServerFactory() {
      return new JettyServletWebServerFactory();
    }
  }
}
