package dev.inferpam.servlet;

import dev.inferpam.core.PamEngine;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.FilterRegistration;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import java.nio.file.Path;
import java.util.EnumSet;

/**
 * Puts inferpam in front of a whole web application, in any servlet container that runs one
 * (Tomcat, Jetty, Undertow), without code: when the application starts, this listener builds a
 * {@link PamEngine} from the policy file named by the context parameter
 * {@value #POLICY_PARAMETER} and registers a {@link PamFilter} on {@code /*} for the
 * {@code REQUEST} and {@code ASYNC} dispatches, async supported (so that bodies are read and
 * reviews awaited without a container thread); when the application stops, it closes the engine,
 * which flushes the recording. Declare it in {@code web.xml}:
 *
 * <pre>{@code
 * <context-param><param-name>inferpam.policy</param-name><param-value>/etc/inferpam/policy.yaml</param-value></context-param>
 * <listener><listener-class>dev.inferpam.servlet.PamContextListener</listener-class></listener>
 * }</pre>
 *
 * <p>The filter must be the first to see requests, and the servlets behind it must support async
 * (see {@link PamFilter}). An engine built in code (an injected recorder, approval service, ...)
 * is registered with {@code new PamFilter(engine)} instead. Without the parameter, or when the
 * policy cannot be loaded ({@link dev.inferpam.core.PolicyException}), {@code contextInitialized}
 * throws and the container does not start the application.
 */
public final class PamContextListener implements ServletContextListener {
  /** The context parameter holding the policy file's path. */
  public static final String POLICY_PARAMETER = "inferpam.policy";

  private PamEngine engine;

  /** For the container, which makes it from {@code web.xml} or {@code @WebListener}. */
  public PamContextListener() {}

  // README listener begin
  @Override
  public void contextInitialized(ServletContextEvent event) {
    var context = event.getServletContext();
    engine = PamEngine.fromPolicy(policyFile(context));
    FilterRegistration.Dynamic filter = context.addFilter("inferpam", new PamFilter(engine));
    filter.setAsyncSupported(true);
    filter.addMappingForUrlPatterns(
        EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC), false, "/*");
  }

  @Override
  public void contextDestroyed(ServletContextEvent event) {
    if (engine != null) engine.close(); // flushes the recorder
  }

  // README listener end

  /** The policy file the context names; a clear error, not a NullPointerException, without one. */
  private static Path policyFile(jakarta.servlet.ServletContext context) {
    String file = context.getInitParameter(POLICY_PARAMETER);
    if (file == null || file.isBlank()) {
      throw new IllegalStateException(
          "inferpam: context parameter "
              + POLICY_PARAMETER
              + " (the policy file's path) is not set; declare it in web.xml");
    }
    return Path.of(file);
  }
}
