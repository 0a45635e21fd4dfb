package dev.inferpam.servlet;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.adapter.Endpoints;
import dev.inferpam.core.adapter.RequestPaths;
import dev.inferpam.servlet.internal.EndpointResponses;
import dev.inferpam.servlet.internal.RequestHeads;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The quota endpoint: {@code GET /pam/quota} shows callers their own budgets under the policy's
 * {@code limits}, as {@link PamEngine#quotaStatus} reports them.
 *
 * <h2>Endpoint</h2>
 * Map the servlet to {@value #MAPPING} (at the root context) on the same server as the
 * {@link PamFilter}:
 * <table>
 *   <caption>Quota endpoint</caption>
 *   <tr><th>request</th><th>answers</th></tr>
 *   <tr><td>{@code GET /pam/quota}</td>
 *       <td>200 {@code {"principal":"alice","limits":[{"rule":"limits[0]","models":[...],"operations":[...],
 *       "requests_per_minute":{"limit":60,"used":3,"remaining":57,"resets":"2026-11-28T12:01:00Z"},
 *       "tokens_per_day":{...}}]}}: {@code principal} is the caller's subject; one item per
 *       {@code limits} entry whose {@code groups} the caller is in (whatever its models and
 *       operations), in policy order, with the entry's {@code models} as written and its
 *       {@code operations} sorted (both empty for "any"), and one member per bound the entry sets
 *       ({@code requests_per_minute}, {@code tokens_per_minute}, {@code tokens_per_day}).
 *       {@code used} is what the current window counted (tokens may pass {@code limit}, see the
 *       policy reference), {@code remaining} never goes below 0, {@code resets} is the ISO-8601
 *       UTC instant the window ends. {@code limits} is empty when the policy has none or none
 *       applies to the caller. Callers see only their own budgets: there is no parameter to ask
 *       for anyone else's.</td></tr>
 * </table>
 *
 * <h2>Who may call</h2>
 * Anyone the engine identifies: callers are identified by the engine ({@link PamEngine#authenticate}:
 * the policy's API keys, then its OIDC issuers, then the resolvers given to the engine's builder),
 * exactly as for inference requests. Reading one's
 * budget counts against no budget.
 *
 * <h2>Errors</h2>
 * Every refusal has the JSON body of the engine's denials,
 * {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":null}}}, and no
 * stack trace:
 * <table>
 *   <caption>Refusals</caption>
 *   <tr><th>status</th><th>{@code code}</th><th>when</th></tr>
 *   <tr><td>401</td><td>{@code unauthenticated}</td><td>no credential, or one no resolver
 *       accepts; with a {@code WWW-Authenticate: Bearer} challenge, as from the filter. Checked
 *       before anything else.</td></tr>
 *   <tr><td>404</td><td>{@code not_found}</td><td>a path below {@value #MAPPING} (when the
 *       servlet is mapped with a wildcard)</td></tr>
 *   <tr><td>405</td><td>{@code method_not_allowed}</td><td>any method but {@code GET};
 *       with {@code Allow: GET}</td></tr>
 *   <tr><td>503</td><td>{@code quota_unavailable}</td><td>the engine's
 *       {@link dev.inferpam.api.QuotaStore} failed (as the engine refuses inference requests
 *       then); the exception's type goes to the log only</td></tr>
 *   <tr><td>500</td><td>{@code internal_error}</td><td>a bug; details go to the log only</td></tr>
 * </table>
 * Every answer carries {@code Cache-Control: no-store}.
 *
 * <h2>Deployment</h2>
 * <ul>
 *   <li>The {@link PamFilter}, mapped to {@code /*}, would see these requests first. Mount the
 *       servlet in a context the filter does not cover (the gateway serves a {@code /pam} context
 *       next to the root context that holds the filter), or let them through with a policy
 *       {@code allow} rule for {@code GET /pam/quota} to {@code "*"}. This servlet identifies
 *       the caller itself either way.</li>
 *   <li>Build it with {@link #forEngine(PamEngine)}, on the engine that enforces the limits, so
 *       that it reads the same counters ({@code PamEngine.Builder.quotaStore}) on the same clock.
 *       With an in-process store and several replicas, each shows its own counters.</li>
 *   <li>Not asynchronous; each call reads one counter per bound from the store.</li>
 * </ul>
 *
 * <p>The servlet only adapts: what it answers is {@link Endpoints#quota} (the same answers as
 * the gateway's and any other front's), given the request's path below {@value #MAPPING}.
 *
 * <p><b>Thread-safety:</b> immutable and thread-safe; one instance serves all requests. The
 * servlet does not close the engine.
 */
public final class QuotaServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private static final Logger log = LoggerFactory.getLogger(QuotaServlet.class);

  /** The servlet mapping the endpoint is written for. */
  public static final String MAPPING = "/pam/quota";

  private final transient Endpoints endpoints;

  private QuotaServlet(Endpoints endpoints) {
    this.endpoints = endpoints;
  }

  /**
   * The quota endpoint of {@code engine}: its budgets ({@link PamEngine#quotaStatus}), callers
   * identified by the engine ({@link PamEngine#authenticate}). Fine for
   * an engine whose policy has no {@code limits}: every caller then gets an empty list.
   *
   * @param engine the engine that enforces the limits; not closed by the servlet
   * @return a servlet to map to {@value #MAPPING}
   * @throws NullPointerException when {@code engine} is null
   */
  public static QuotaServlet forEngine(PamEngine engine) {
    Objects.requireNonNull(engine, "engine");
    return new QuotaServlet(Endpoints.forEngine(engine));
  }

  @Override
  protected void service(HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    EndpointResponses.serve(
        log,
        "quota",
        request,
        response,
        body -> {
          // The path is checked before the container is asked for a decoded one, which it may
          // throw on; a refused path is answered bad_path whatever the sub-path.
          boolean refused = RequestPaths.endpointRefusal(request.getRequestURI()).isPresent();
          return endpoints.quota(RequestHeads.of(request), refused ? null : request.getPathInfo());
        });
  }
}
