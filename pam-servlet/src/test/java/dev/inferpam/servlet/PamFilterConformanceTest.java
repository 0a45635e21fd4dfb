package dev.inferpam.servlet;

import dev.inferpam.core.PamEngine;
import dev.inferpam.testkit.AdapterConformance;
import dev.inferpam.testkit.OkHttpCaller;
import dev.inferpam.testsupport.ModelAnswer;
import dev.inferpam.testsupport.ModelRequest;
import dev.inferpam.testsupport.ModelScript;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import okhttp3.HttpUrl;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * The adapter conformance kit through {@link PamFilter} in a real Jetty, mapped as documented
 * ({@code /*}, REQUEST and ASYNC, async supported), in front of the model application: a servlet
 * that plays the kit's script. The filter protects the application itself, so no upstream
 * credential is injected: the application receives no credential at all.
 */
class PamFilterConformanceTest extends AdapterConformance {
  @Override
  protected Adapter start(PamEngine engine, ModelScript model) throws Exception {
    Server jetty = new Server();
    ServerConnector connector = new ServerConnector(jetty);
    connector.setHost("127.0.0.1");
    connector.setPort(0);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    FilterHolder filter = new FilterHolder(new PamFilter(engine));
    filter.setAsyncSupported(true);
    context.addFilter(filter, "/*", EnumSet.of(DispatcherType.REQUEST, DispatcherType.ASYNC));
    ServletHolder application = new ServletHolder(new ScriptedModel(model));
    application.setAsyncSupported(true);
    context.addServlet(application, "/*");
    jetty.setHandler(context);
    jetty.start();
    return OkHttpCaller.of(
        OkHttpCaller.clientBuilder().build(),
        HttpUrl.get("http://127.0.0.1:" + connector.getLocalPort() + "/"),
        jetty::stop);
  }

  @Override
  protected Set<Capability> capabilities() {
    return EnumSet.of(Capability.KEEPS_CONTENT_LENGTH);
  }

  /** The application: answers what the script says, written through its output stream piece by piece. */
  static final class ScriptedModel extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private final transient ModelScript script;

    ScriptedModel(ModelScript script) {
      this.script = script;
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
      List<Map.Entry<String, String>> headers = new ArrayList<>();
      for (String name : Collections.list(req.getHeaderNames())) {
        for (String value : Collections.list(req.getHeaders(name))) {
          headers.add(new AbstractMap.SimpleImmutableEntry<>(name, value));
        }
      }
      String target =
          req.getRequestURI() + (req.getQueryString() == null ? "" : "?" + req.getQueryString());
      ModelAnswer answer =
          script.apply(
              new ModelRequest(
                  req.getMethod(), target, headers, req.getInputStream().readAllBytes()));
      resp.setStatus(answer.status());
      for (Map.Entry<String, String> h : answer.headers()) resp.addHeader(h.getKey(), h.getValue());
      if (!answer.streamed()) resp.setContentLengthLong(answer.contentLength());
      ServletOutputStream out = resp.getOutputStream();
      answer.writeTo(
          new ModelAnswer.Sink() {
            @Override
            public void write(byte[] bytes) throws IOException {
              out.write(bytes);
            }

            @Override
            public void flush() throws IOException {
              out.flush();
            }
          });
    }
  }
}
