package dev.inferpam.gateway.internal;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.EndpointResponse;
import dev.inferpam.core.adapter.Endpoints;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's own endpoints, in a {@code /pam} context next to the root context that holds the
 * {@link dev.inferpam.servlet.PamFilter}: Jetty routes a request to one context by its
 * normalised path ({@link Endpoints#isEndpointPath} states the rule), so a request can reach these
 * endpoints or the filter, never the forwarding servlet without the filter. None of them forwards
 * anything upstream.
 *
 * <ul>
 *   <li>{@code GET /pam/health}: {@code {"status":"ok"}}, no credential needed.</li>
 *   <li>{@code /pam/approvals...}: the reviewer endpoints when the engine holds requests for
 *       review: the default in-process service of a policy with an {@code approval} section, or
 *       any {@link ApprovalService} given to its builder. They identify callers as the engine
 *       does ({@link PamEngine#authenticate}).</li>
 *   <li>{@code GET /pam/quota}: the caller's own budgets under the policy's {@code limits},
 *       always mounted: callers the engine identifies get {@code {"principal":...,"limits":[]}}
 *       when the policy has no {@code limits} (or none applies to them), 401 when it does not
 *       identify them. Reading it counts against no budget and is not recorded.</li>
 *   <li>{@code GET /pam/metrics}: the meters in Prometheus's text format, for callers the engine
 *       identifies, when the gateway was started with a scrape.</li>
 *   <li>Anything else under {@code /pam}: 404 {@code not_found} in the JSON error shape.</li>
 * </ul>
 * A path under {@code /pam} that could be read two ways ({@code %2F}, {@code ;}, dot segments,
 * ...) is 400 {@code bad_path} on every one of them, as in the filtered context.
 *
 * <p>One servlet serves the whole context and decides nothing: every answer is
 * {@link Endpoints#handle}'s, as in any other front.
 */
public final class PamEndpoints {
  static final String CONTEXT = Endpoints.PATH;

  private PamEndpoints() {}

  public static ServletContextHandler context(PamEngine engine) {
    return context(Endpoints.forEngine(engine));
  }

  /** The {@code /pam} context answering with {@code endpoints} (e.g. with {@code /pam/metrics}). */
  public static ServletContextHandler context(Endpoints endpoints) {
    ServletContextHandler context = new ServletContextHandler(CONTEXT);
    context.addServlet(new ServletHolder("pam", new Serve(endpoints)), "/");
    return context;
  }

  /** Every path of the {@code /pam} context. */
  static final class Serve extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private static final Logger log = LoggerFactory.getLogger(PamEndpoints.class);
    private static final byte[] INTERNAL_ERROR =
        ErrorResponse.of(500, "internal_error", "the request could not be handled", null).body();

    /** Largest body read and discarded before a 413, so the answer reaches the client. */
    private static final int DRAIN_LIMIT = 64 * 1024;

    private final transient Endpoints endpoints;

    Serve(Endpoints endpoints) {
      this.endpoints = endpoints;
    }

    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      EndpointResponse answer;
      try {
        boolean[] read = new boolean[1];
        answer =
            endpoints.handle(
                head(request),
                limit -> {
                  read[0] = true;
                  try (InputStream in = request.getInputStream()) {
                    byte[] body = in.readNBytes(limit);
                    // Read what is left of a modest body, so that the client, still sending,
                    // reads the 413 instead of a connection reset.
                    if (body.length > Endpoints.MAX_BODY_BYTES) drain(in, DRAIN_LIMIT);
                    return body;
                  }
                });
        if (answer.status() == 413 && !read[0]) {
          // Refused on its Content-Length alone; a huge body is cut off (Jetty closes).
          long declared = request.getContentLengthLong();
          try (InputStream in = request.getInputStream()) {
            drain(in, declared > DRAIN_LIMIT ? 0 : DRAIN_LIMIT);
          }
        }
      } catch (RuntimeException e) {
        log.error("inferpam: /pam endpoint failed: {}", e.getClass().getName());
        log.debug("inferpam: /pam endpoint failure", e);
        answer =
            new EndpointResponse(
                500,
                Map.of("Content-Type", "application/json", "Cache-Control", "no-store"),
                INTERNAL_ERROR);
      }
      response.setStatus(answer.status());
      answer.headers().forEach(response::setHeader);
      response.setContentLength(answer.body().length);
      if (answer.body().length > 0) response.getOutputStream().write(answer.body());
    }

    /** The request as received: the raw path, never one the container decoded or normalised. */
    private static RequestHead head(HttpServletRequest request) {
      Map<String, List<String>> headers = new LinkedHashMap<>();
      for (Enumeration<String> names = request.getHeaderNames(); names.hasMoreElements(); ) {
        String name = names.nextElement();
        headers
            .computeIfAbsent(name, k -> new ArrayList<>())
            .addAll(Collections.list(request.getHeaders(name)));
      }
      String rawPath = request.getRequestURI();
      return new RequestHead(
          request.getMethod(),
          rawPath == null ? "" : rawPath,
          request.getQueryString(),
          headers,
          request.getRemoteAddr());
    }

    private static void drain(InputStream in, long limit) throws IOException {
      byte[] buf = new byte[4096];
      long left = limit;
      for (int n; left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) >= 0; )
        left -= n;
    }
  }
}
