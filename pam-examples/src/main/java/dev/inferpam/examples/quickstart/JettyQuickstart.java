package dev.inferpam.examples.quickstart;

// README jetty begin
import dev.inferpam.core.PamEngine;
import dev.inferpam.servlet.PamFilter;
import jakarta.servlet.DispatcherType;
import java.nio.file.Path;
import java.util.EnumSet;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;

// README jetty end

/**
 * The README's servlet quickstart for an embedded Jetty 12 (ee10), compiled and run by the test
 * suite ({@code QuickstartTest}).
 */
public final class JettyQuickstart {
  private JettyQuickstart() {}

  /** The quickstart's engine, built from {@code policy.yaml} in the working directory. */
  public static PamEngine engine() {
    // README jetty begin
    PamEngine engine = PamEngine.fromPolicy(Path.of("policy.yaml"));
    // README jetty end
    return engine;
  }

  /** A root context with {@link PamFilter} in front of whatever servlets are added to it. */
  public static ServletContextHandler context(PamEngine engine) {
    // README jetty begin
    ServletContextHandler context = new ServletContextHandler("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true); // requests held for review wait without a thread
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    // then add your servlets (async supported) and make the context the server's handler
    // README jetty end
    return context;
  }
}
