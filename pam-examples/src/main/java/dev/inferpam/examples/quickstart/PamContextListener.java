package dev.inferpam.examples.quickstart;

import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.FilterRegistration;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import java.nio.file.Path;
import java.util.EnumSet;

/**
 * The README's quickstart for any servlet container that runs a web application (Tomcat, Jetty,
 * Undertow): a listener, declared in {@code web.xml} or with {@code @WebListener}, that builds
 * the engine from the policy file named by the context parameter {@value #POLICY_PARAMETER} and
 * puts {@link PamFilter} in front of everything; the engine is closed (recording flushed) when
 * the application stops. Compiled and run by the test suite ({@code QuickstartTest}).
 */
public final class PamContextListener implements ServletContextListener {
  /** The context parameter holding the policy file's path. */
  public static final String POLICY_PARAMETER = "inferpam.policy";

  private PamEngine engine;

  // README listener begin
  @Override
  public void contextInitialized(ServletContextEvent event) {
    var context = event.getServletContext();
    engine = PamEngine.fromPolicy(Path.of(context.getInitParameter(POLICY_PARAMETER)));
    FilterRegistration.Dynamic filter = context.addFilter("inferpam", new PamFilter(engine));
    filter.setAsyncSupported(true);
    filter.addMappingForUrlPatterns(EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC), false, "/*");
  }

  @Override
  public void contextDestroyed(ServletContextEvent event) {
    if (engine != null) engine.close();                  // flushes the recorder
  }
  // README listener end
}
