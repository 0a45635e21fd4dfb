package dev.inferpam.gateway.internal;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.RequestPaths;
import dev.inferpam.servlet.ApprovalServlet;
import dev.inferpam.servlet.QuotaServlet;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;

/**
 * The gateway's own endpoints, in a {@code /pam} context next to the root context that holds the
 * {@link dev.inferpam.servlet.PamFilter}: Jetty routes a request to one context by its
 * normalised path, so a request can reach these endpoints or the filter, never the forwarding
 * servlet without the filter. None of them forwards anything upstream.
 *
 * <ul>
 *   <li>{@code GET /pam/health}: {@code {"status":"ok"}}, no credential needed.</li>
 *   <li>{@code /pam/approvals...}: the reviewer endpoints ({@link ApprovalServlet}) when the
 *       engine holds requests for review: the default in-process service of a policy with an
 *       {@code approval} section, or any {@link ApprovalService} given to its builder. They
 *       identify callers as the engine does ({@link PamEngine#authenticate}).</li>
 *   <li>{@code GET /pam/quota}: the caller's own budgets under the policy's {@code limits}
 *       ({@link QuotaServlet}), always mounted: callers the engine identifies get
 *       {@code {"principal":...,"limits":[]}} when the policy has no {@code limits} (or none
 *       applies to them), 401 when it does not identify them. Reading it counts against no
 *       budget and is not recorded.</li>
 *   <li>Anything else under {@code /pam}: 404 {@code not_found} in the JSON error shape.</li>
 * </ul>
 * A path under {@code /pam} that could be read two ways ({@code %2F}, {@code ;}, dot segments,
 * ...) is 400 {@code bad_path} on every one of them, as in the filtered context.
 */
public final class PamEndpoints {
  static final String CONTEXT = "/pam";

  private PamEndpoints() {}

  public static ServletContextHandler context(PamEngine engine) {
    ServletContextHandler context = new ServletContextHandler(CONTEXT);
    context.addServlet(new ServletHolder("health", new Health()), "/health");
    if (engine.approvalService() != ApprovalService.NONE) {
      context.addServlet(
          new ServletHolder("approvals", ApprovalServlet.forEngine(engine)), "/approvals/*");
    }
    context.addServlet(new ServletHolder("quota", QuotaServlet.forEngine(engine)), "/quota");
    context.addServlet(new ServletHolder("not-found", new NotFound()), "/");
    return context;
  }

  private static void json(HttpServletResponse response, int status, byte[] body)
      throws IOException {
    response.setStatus(status);
    response.setContentType("application/json");
    response.setHeader("Cache-Control", "no-store");
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
  }

  /**
   * Refuses, as the filter does, a path that could be read two ways: 400 {@code bad_path}
   * ({@link RequestPaths#endpointRefusal}).
   *
   * @return true when the request was refused (the answer is written)
   */
  private static boolean refusedPath(HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(request.getRequestURI());
    if (refused.isEmpty()) return false;
    json(response, refused.get().status(), refused.get().body());
    return true;
  }

  /** {@code GET /pam/health}. */
  static final class Health extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private static final byte[] OK = "{\"status\":\"ok\"}".getBytes(StandardCharsets.UTF_8);

    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      if (refusedPath(request, response)) return;
      if (!request.getMethod().equals("GET") && !request.getMethod().equals("HEAD")) {
        response.setHeader("Allow", "GET, HEAD");
        json(response, 405, ErrorResponse.of(405, "method_not_allowed", "use GET", null).body());
        return;
      }
      json(response, 200, OK);
    }
  }

  /** Any other path under {@code /pam}. */
  static final class NotFound extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      if (refusedPath(request, response)) return;
      json(response, 404, ErrorResponse.of(404, "not_found", "no such endpoint", null).body());
    }
  }
}
