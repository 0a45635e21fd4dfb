package dev.inferpam.servlet;

import jakarta.servlet.DispatcherType;
import jakarta.servlet.Filter;
import jakarta.servlet.http.HttpServlet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.stream.Stream;
import org.apache.catalina.Context;
import org.apache.catalina.LifecycleException;
import org.apache.catalina.Wrapper;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;
import org.apache.tomcat.util.descriptor.web.FilterDef;
import org.apache.tomcat.util.descriptor.web.FilterMap;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * A real servlet container on 127.0.0.1 (port 0) with a filter on {@code /*} for the
 * {@code REQUEST} and {@code ASYNC} dispatcher types, as the README registers {@link PamFilter},
 * in front of one servlet on {@code /*}; both async supported. In pam-servlet's test jar, for
 * {@link ResponseEndingsContract}'s subclasses in other modules.
 */
public abstract class ServletContainer implements AutoCloseable {
  /** How a test starts a container: with {@code filter} in front of {@code servlet}. */
  @FunctionalInterface
  public interface Starter {
    ServletContainer start(Filter filter, HttpServlet servlet) throws Exception;
  }

  /** The containers the filter is tested on here. */
  enum Kind implements Starter {
    JETTY_12,
    TOMCAT_10;

    @Override
    public ServletContainer start(Filter filter, HttpServlet servlet) throws Exception {
      return switch (this) {
        case JETTY_12 -> new JettyContainer(filter, servlet);
        case TOMCAT_10 -> tomcat(filter, servlet);
      };
    }
  }

  /**
   * An embedded Tomcat, of the version on the class path: 10.1 here, 11 where Boot 4's BOM manages
   * it (pam-spring-boot4-tests).
   */
  public static ServletContainer tomcat(Filter filter, HttpServlet servlet) throws Exception {
    return new TomcatContainer(filter, servlet);
  }

  protected ServletContainer() {}

  /** The port it listens on, on 127.0.0.1. */
  public abstract int port();

  public String url(String path) {
    return "http://127.0.0.1:" + port() + path;
  }

  /** Stops the container; fails with {@link IllegalStateException} when it does not stop. */
  @Override
  public abstract void close();

  /** Jetty 12.1, ee10. */
  private static final class JettyContainer extends ServletContainer {
    private final Server server = new Server();
    private final ServerConnector connector = new ServerConnector(server);

    JettyContainer(Filter filter, HttpServlet servlet) throws Exception {
      connector.setHost("127.0.0.1");
      connector.setPort(0);
      server.addConnector(connector);
      ServletContextHandler context = new ServletContextHandler("/");
      FilterHolder filterHolder = new FilterHolder(filter);
      filterHolder.setAsyncSupported(true);
      context.addFilter(
          filterHolder, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
      ServletHolder servletHolder = new ServletHolder(servlet);
      servletHolder.setAsyncSupported(true);
      context.addServlet(servletHolder, "/*");
      server.setHandler(context);
      server.start();
    }

    @Override
    public int port() {
      return connector.getLocalPort();
    }

    @Override
    public void close() {
      try {
        server.stop();
      } catch (Exception e) {
        throw new IllegalStateException("jetty did not stop", e);
      }
    }
  }

  /** Embedded Tomcat (10.1, or 11: see {@link #tomcat}). */
  private static final class TomcatContainer extends ServletContainer {
    private final Path baseDir = Files.createTempDirectory("pam-tomcat");
    private final Tomcat tomcat = new Tomcat();
    private final Connector connector = new Connector();

    TomcatContainer(Filter filter, HttpServlet servlet) throws IOException, LifecycleException {
      tomcat.setBaseDir(baseDir.toString());
      connector.setPort(0);
      connector.setProperty("address", "127.0.0.1");
      tomcat.setConnector(connector);
      Context context = tomcat.addContext("", null);
      FilterDef def = new FilterDef();
      def.setFilterName("inferpam");
      def.setFilter(filter);
      def.setAsyncSupported("true");
      context.addFilterDef(def);
      FilterMap map = new FilterMap();
      map.setFilterName("inferpam");
      map.addURLPattern("/*");
      map.setDispatcher(DispatcherType.REQUEST.name());
      map.setDispatcher(DispatcherType.ASYNC.name());
      context.addFilterMap(map);
      Wrapper wrapper = Tomcat.addServlet(context, "application", servlet);
      wrapper.setAsyncSupported(true);
      context.addServletMappingDecoded("/*", "application");
      tomcat.start();
    }

    @Override
    public int port() {
      return connector.getLocalPort();
    }

    @Override
    public void close() {
      try {
        tomcat.stop();
        tomcat.destroy();
      } catch (LifecycleException e) {
        throw new IllegalStateException("tomcat did not stop", e);
      } finally {
        deleteBaseDir();
      }
    }

    private void deleteBaseDir() {
      try (Stream<Path> files = Files.walk(baseDir)) {
        for (Path f : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
