package dev.inferpam.gateway.internal;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.servlet.internal.EndpointResponses;
import dev.inferpam.servlet.internal.RequestHeads;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
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
    ServletContextHandler context = new ServletContextHandler(CONTEXT);
    context.addServlet(new ServletHolder("pam", new Serve(Endpoints.forEngine(engine))), "/");
    return context;
  }

  /** Every path of the {@code /pam} context, served as the servlet module serves its endpoints. */
  static final class Serve extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private static final Logger log = LoggerFactory.getLogger(PamEndpoints.class);

    private final transient Endpoints endpoints;

    Serve(Endpoints endpoints) {
      this.endpoints = endpoints;
    }

    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      EndpointResponses.serve(
          log, "/pam", request, response, body -> endpoints.handle(RequestHeads.of(request), body));
    }
  }
}
