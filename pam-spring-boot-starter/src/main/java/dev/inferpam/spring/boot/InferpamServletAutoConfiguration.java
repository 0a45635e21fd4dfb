package dev.inferpam.spring.boot;

import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.ApprovalServlet;
import dev.inferpam.servlet.PamFilter;
import dev.inferpam.servlet.QuotaServlet;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.FilterConfig;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
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

  /** The servlet names of the endpoints, which the filter lets through to them. */
  static final String APPROVALS = "inferpamApprovals";

  static final String QUOTA = "inferpamQuota";

  @Bean
  FilterRegistrationBean<Filter> pamFilter(PamEngine engine, InferpamProperties properties) {
    Filter filter = new PamFilter(engine);
    if (properties.getServer().isEndpoints()) filter = new EndpointsPassThrough(filter);
    FilterRegistrationBean<Filter> registration = new FilterRegistrationBean<>(filter);
    registration.setName("inferpam");
    registration.setUrlPatterns(properties.getServer().getUrlPatterns());
    registration.setDispatcherTypes(DispatcherType.REQUEST, DispatcherType.ASYNC);
    registration.setAsyncSupported(true); // requests held for review wait without a thread
    registration.setOrder(Ordered.HIGHEST_PRECEDENCE);
    return registration;
  }

  @Bean
  @ConditionalOnProperty(prefix = "inferpam.server", name = "endpoints", matchIfMissing = true)
  ServletRegistrationBean<ApprovalServlet> pamApprovalServlet(PamEngine engine) {
    ServletRegistrationBean<ApprovalServlet> registration =
        new ServletRegistrationBean<>(ApprovalServlet.forEngine(engine), ApprovalServlet.MAPPING);
    registration.setName(APPROVALS);
    return registration;
  }

  @Bean
  @ConditionalOnProperty(prefix = "inferpam.server", name = "endpoints", matchIfMissing = true)
  ServletRegistrationBean<QuotaServlet> pamQuotaServlet(PamEngine engine) {
    ServletRegistrationBean<QuotaServlet> registration =
        new ServletRegistrationBean<>(QuotaServlet.forEngine(engine), QuotaServlet.MAPPING);
    registration.setName(QUOTA);
    return registration;
  }

  /**
   * {@link PamFilter}, except for requests the container maps to the reviewer and quota
   * endpoints' own servlets (which identify their callers themselves, as the gateway's {@code
   * /pam} context does): told apart by the servlet the container chose, after its own path
   * normalisation, so no spelling of another path reaches the application unfiltered.
   */
  static final class EndpointsPassThrough implements Filter {
    private final Filter filter;

    EndpointsPassThrough(Filter filter) {
      this.filter = filter;
    }

    @Override
    public void init(FilterConfig config) throws ServletException {
      filter.init(config);
    }

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
        throws IOException, ServletException {
      if (request instanceof HttpServletRequest http) {
        String servlet = http.getHttpServletMapping().getServletName();
        if (APPROVALS.equals(servlet) || QUOTA.equals(servlet)) {
          chain.doFilter(request, response);
          return;
        }
      }
      filter.doFilter(request, response, chain);
    }

    @Override
    public void destroy() {
      filter.destroy();
    }
  }
}
