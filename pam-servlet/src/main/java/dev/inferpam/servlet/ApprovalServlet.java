package dev.inferpam.servlet;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.Masker;
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
 * The reviewer endpoints of just-in-time approval: reviewers list the requests that wait for a
 * decision, and approve or reject them. Serves whichever {@link ApprovalService} the engine holds
 * requests in (the default in-process one, or one given to
 * {@code PamEngine.Builder.approvalService}) through its reviewer side.
 *
 * <h2>Endpoints</h2>
 * Map the servlet to {@value #MAPPING} (at the root context) on the same server as the
 * {@link PamFilter}:
 * <table>
 *   <caption>Reviewer endpoints</caption>
 *   <tr><th>request</th><th>answers</th></tr>
 *   <tr><td>{@code GET /pam/approvals}</td>
 *       <td>200 {@code {"approvals":[{"id","principal","rule","model","operation","excerpt","created","expires"}]}},
 *       oldest first: the reviews the caller may decide ({@link ApprovalService#pending}), so not
 *       the caller's own requests. {@code principal} is the requester's subject; {@code created} and
 *       {@code expires} are ISO-8601 UTC instants; {@code excerpt} is the request's prompt text
 *       (messages, prompt, input, ...) masked by the engine's {@link Masker}, then cut to
 *       200 characters (with {@code …}), or {@code null} when the request has no prompt text.
 *       Headers, credentials, request digests and raw bodies are never shown.</td></tr>
 *   <tr><td>{@code POST /pam/approvals/{id}/approve}</td>
 *       <td>200 {@code {"id","status":"approved","reviewer","reason","decided"}}; the waiting
 *       request goes on to the model.</td></tr>
 *   <tr><td>{@code POST /pam/approvals/{id}/reject}</td>
 *       <td>200 {@code {"id","status":"rejected","reviewer","reason","decided"}}; the waiting
 *       caller gets 403 {@code approval_rejected} with the reason.</td></tr>
 * </table>
 * The decision body is optional: nothing, or {@code {"reason":"..."}} (a JSON object in UTF-8,
 * at most {@value #MAX_BODY_BYTES} bytes, reason at most
 * {@value ApprovalService#MAX_REASON_CHARS} characters; other fields are ignored).
 *
 * <h2>Who may call</h2>
 * Callers are identified as inference callers are ({@link PamEngine#authenticate}: the API keys
 * and OIDC tokens of the policy's {@code identity} section, then the resolvers given to the
 * engine's builder). Only reviewers ({@link ApprovalService#isReviewer}: for the default service,
 * members of one of the policy's {@code approval.reviewers} groups) may list or decide, and no
 * reviewer may decide a request made under their own subject.
 *
 * <h2>Errors</h2>
 * Every refusal has the JSON body of the engine's denials,
 * {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":null}}}, and no
 * stack trace:
 * <table>
 *   <caption>Refusals</caption>
 *   <tr><th>status</th><th>{@code code}</th><th>when</th></tr>
 *   <tr><td>400</td><td>{@code bad_path}</td><td>a path that could be read two ways
 *       ({@code %2F}, {@code ;}, dot segments, bad percent-encoding, ...), as the filter refuses
 *       it; checked first</td></tr>
 *   <tr><td>401</td><td>{@code unauthenticated}</td><td>no credential, or one no resolver
 *       accepts; with a {@code WWW-Authenticate: Bearer} challenge, as from the filter. Checked
 *       before anything but the path, so the endpoints reveal nothing to anonymous callers.</td></tr>
 *   <tr><td>403</td><td>{@code not_a_reviewer}</td><td>the caller is in no reviewer group
 *       (checked before the id is looked up, so ids cannot be probed)</td></tr>
 *   <tr><td>403</td><td>{@code self_approval}</td><td>the reviewer made the request</td></tr>
 *   <tr><td>404</td><td>{@code not_found}</td><td>an unknown id (or one too old to be
 *       remembered), or any other path under {@value #MAPPING}</td></tr>
 *   <tr><td>405</td><td>{@code method_not_allowed}</td><td>another method; {@code Allow} names
 *       the right one ({@code GET} for the list, {@code POST} for decisions)</td></tr>
 *   <tr><td>409</td><td>{@code already_decided}</td><td>the request was decided, expired or
 *       withdrawn (its caller went away) before</td></tr>
 *   <tr><td>400</td><td>{@code bad_request}</td><td>a decision body that is not a JSON object
 *       with an optional string {@code reason}, or a reason too long</td></tr>
 *   <tr><td>413</td><td>{@code body_too_large}</td><td>a decision body over
 *       {@value #MAX_BODY_BYTES} bytes</td></tr>
 *   <tr><td>500</td><td>{@code internal_error}</td><td>a bug; one log line names the exception's
 *       type (the stack trace only at debug level)</td></tr>
 * </table>
 * Every answer carries {@code Cache-Control: no-store}.
 *
 * <h2>Deployment</h2>
 * <ul>
 *   <li>The {@link PamFilter}, mapped to {@code /*}, would see these requests first. Mount the
 *       servlet in a context the filter does not cover (the gateway serves a {@code /pam} context
 *       next to the root context that holds the filter), or let them through with a policy
 *       {@code allow} rule for {@code GET /pam/approvals} and {@code POST /pam/approvals/*} to
 *       the reviewer groups. This servlet identifies and authorises the caller itself either
 *       way.</li>
 *   <li>Excerpts are masked with the engine's masker (the policy's {@code masking} section, or
 *       the one given to its builder), so that reviewers see no more than callers do.</li>
 *   <li>Not asynchronous: each call waits for the approval service's answer (the in-process
 *       service holds its lock only briefly).</li>
 * </ul>
 *
 * <p>The servlet only adapts: what it answers is {@link Endpoints#approvals} (the same answers
 * as the gateway's and any other front's), given the request's path below {@value #MAPPING}.
 *
 * <p><b>Thread-safety:</b> immutable and thread-safe; one instance serves all requests. The
 * servlet does not close the approval service.
 */
public final class ApprovalServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private static final Logger log = LoggerFactory.getLogger(ApprovalServlet.class);

  /** The servlet mapping the endpoints are written for. */
  public static final String MAPPING = "/pam/approvals/*";

  /** Largest decision body read, in bytes ({@link Endpoints#MAX_BODY_BYTES}). */
  public static final int MAX_BODY_BYTES = Endpoints.MAX_BODY_BYTES;

  private final transient Endpoints endpoints;

  private ApprovalServlet(Endpoints endpoints) {
    this.endpoints = endpoints;
  }

  /**
   * Reviewer endpoints for the requests {@code engine} holds: its approval service (the default
   * in-process one of a policy with an {@code approval} section, or the one given to its
   * builder), callers identified by the engine ({@link PamEngine#authenticate}), excerpts masked
   * with its masker, requests read under its policy's {@code request.base-path}.
   *
   * @param engine the engine whose reviews are served; neither it nor its service is closed here
   * @throws NullPointerException     when {@code engine} is null
   * @throws IllegalArgumentException when the engine holds no reviews
   *     ({@link ApprovalService#NONE}: its policy has no {@code approval} section and no service
   *     was given to it)
   */
  public static ApprovalServlet forEngine(PamEngine engine) {
    Objects.requireNonNull(engine, "engine");
    if (engine.approvalService() == ApprovalService.NONE) {
      throw new IllegalArgumentException(
          "the engine holds no requests for review"
              + " (no approval section in its policy, and no ApprovalService was given)");
    }
    return new ApprovalServlet(Endpoints.forEngine(engine));
  }

  @Override
  protected void service(HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    EndpointResponses.serve(
        log,
        "reviewer",
        request,
        response,
        body -> {
          // The path is checked before the container is asked for a decoded one, which it may
          // throw on; a refused path is answered bad_path whatever the sub-path.
          boolean refused = RequestPaths.endpointRefusal(request.getRequestURI()).isPresent();
          return endpoints.approvals(
              RequestHeads.of(request), refused ? null : request.getPathInfo(), body);
        });
  }
}
