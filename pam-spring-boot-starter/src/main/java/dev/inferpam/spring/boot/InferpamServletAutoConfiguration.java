package dev.inferpam.spring.boot;

import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.ApprovalServlet;
import dev.inferpam.servlet.PamFilter;
import dev.inferpam.servlet.QuotaServlet;
import jakarta.servlet.DispatcherType;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnWebApplication;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.core.Ordered;

/**
 * With {@code inferpam.server.enabled=true} in a servlet application: {@link PamFilter} in front
 * of {@code inferpam.server.url-patterns} (default {@code /*}) for REQUEST and ASYNC dispatches
 * (Spring MVC ends asynchronous answers with an ASYNC dispatch), first in the chain, and, unless
 * {@code inferpam.server.endpoints=false}, the reviewer endpoints at {@value
 * ApprovalServlet#MAPPING} and the quota endpoint at {@value QuotaServlet#MAPPING}.
 */
@AutoConfiguration(after = InferpamAutoConfiguration.class)
@ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.SERVLET)
@ConditionalOnProperty(prefix = "inferpam.server", name = "enabled")
@ConditionalOnBean(PamEngine.class)
public class InferpamServletAutoConfiguration {

  @Bean
  FilterRegistrationBean<PamFilter> pamFilter(PamEngine engine, InferpamProperties properties) {
    FilterRegistrationBean<PamFilter> registration =
        new FilterRegistrationBean<>(new PamFilter(engine));
    registration.setUrlPatterns(properties.getServer().getUrlPatterns());
    registration.setDispatcherTypes(DispatcherType.REQUEST, DispatcherType.ASYNC);
    registration.setAsyncSupported(true); // requests held for review wait without a thread
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
    return registration;
  }

  @Bean
  @ConditionalOnProperty(prefix = "inferpam.server", name = "endpoints", matchIfMissing = true)
  ServletRegistrationBean<ApprovalServlet> pamApprovalServlet(PamEngine engine) {
    return new ServletRegistrationBean<>(
        ApprovalServlet.forEngine(engine), ApprovalServlet.MAPPING);
  }

  @Bean
  @ConditionalOnProperty(prefix = "inferpam.server", name = "endpoints", matchIfMissing = true)
  ServletRegistrationBean<QuotaServlet> pamQuotaServlet(PamEngine engine) {
    return new ServletRegistrationBean<>(QuotaServlet.forEngine(engine), QuotaServlet.MAPPING);
  }
}
