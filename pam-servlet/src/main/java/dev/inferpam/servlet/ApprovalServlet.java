package dev.inferpam.servlet;

import static dev.inferpam.servlet.internal.EndpointResponses.error;
import static dev.inferpam.servlet.internal.EndpointResponses.methodNotAllowed;
import static dev.inferpam.servlet.internal.EndpointResponses.ok;
import static dev.inferpam.servlet.internal.EndpointResponses.write;

import dev.inferpam.api.IdentityResolver;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.core.InProcessApprovalService;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.InProcessApprovalService.ReviewResult;
import dev.inferpam.core.Policy;
import dev.inferpam.servlet.internal.ApprovalIdentity;
import dev.inferpam.servlet.internal.EndpointResponses;
import dev.inferpam.servlet.internal.ApprovalJson;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.time.Clock;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The reviewer endpoints of just-in-time approval: reviewers list the requests that wait for a
 * decision, and approve or reject them. Serves the {@link InProcessApprovalService} the engine
 * holds requests in.
 *
 * <h2>Endpoints</h2>
 * Map the servlet to {@value #MAPPING} (at the root context) on the same server as the
 * {@link PamFilter}:
 * <table>
 *   <caption>Reviewer endpoints</caption>
 *   <tr><th>request</th><th>answers</th></tr>
 *   <tr><td>{@code GET /pam/approvals}</td>
 *       <td>200 {@code {"approvals":[{"id","principal","rule","model","operation","excerpt","created","expires"}]}},
 *       oldest first. {@code principal} is the requester's subject; {@code created} and
 *       {@code expires} are ISO-8601 UTC instants; {@code excerpt} is the request's prompt text
 *       (messages, prompt, input, ...) masked by the {@link Masker} given here, then cut to
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
 * {@value InProcessApprovalService#MAX_REASON_CHARS} characters; other fields are ignored).
 *
 * <h2>Who may call</h2>
 * Callers are identified by the same {@link IdentityResolver}s as inference callers (API keys
 * and OIDC tokens of the policy's {@code identity} section; see
 * {@link #forPolicy(Policy, InProcessApprovalService, Masker, Clock, IdentityResolver...)}). Only
 * members of one of the policy's {@code approval.reviewers} groups may list or decide, and no
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
 *       way. Build it with {@link #forEngine(PamEngine)} so that it serves the engine's own
 *       service, resolvers and masker.</li>
 *   <li>Give it the masker the engine masks with (the policy's {@code masking} section), so
 *       that reviewers see no more than callers do.</li>
 *   <li>Not asynchronous; each call holds the service's lock only briefly.</li>
 * </ul>
 *
 * <p><b>Thread-safety:</b> immutable and thread-safe; one instance serves all requests. The
 * servlet does not close the approval service.
 */
public final class ApprovalServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private static final Logger log = LoggerFactory.getLogger(ApprovalServlet.class);

  /** The servlet mapping the endpoints are written for. */
  public static final String MAPPING = "/pam/approvals/*";

  /** Largest decision body read, in bytes. */
  public static final int MAX_BODY_BYTES = 1024;

  /** Largest body read and discarded before a 413, so the answer reaches the client. */
  private static final int DRAIN_LIMIT = 64 * 1024;

  /** Ids as the service makes them, and then some; anything else cannot exist. */
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");


  private final transient ApprovalIdentity identity;
  private final transient InProcessApprovalService approvals;
  private final transient ApprovalJson json;

  /**
   * Reviewer endpoints for requests of any base path, showing excerpts unmasked. Prefer
   * {@link #ApprovalServlet(IdentityResolver, InProcessApprovalService, Masker, String)} when the
   * policy masks anything.
   */
  public ApprovalServlet(IdentityResolver identity, InProcessApprovalService approvals) {
    this(identity, approvals, Masker.IDENTITY, "");
  }

  /**
   * @param identity  identifies callers; the same resolver chain the engine uses
   * @param approvals the service the engine holds requests in; not closed here
   * @param masker    masks prompt excerpts
   * @param basePath  the policy's {@code request.base-path} ({@code ""} for none), to read model
   *                  and operation as the engine did
   * @throws NullPointerException     when an argument is null
   * @throws IllegalArgumentException when the base path is not canonical
   */
  public ApprovalServlet(IdentityResolver identity, InProcessApprovalService approvals, Masker masker,
                         String basePath) {
    this(new ApprovalIdentity(List.of(Objects.requireNonNull(identity, "identity"))), approvals, masker,
        Objects.requireNonNull(basePath, "basePath"));
  }

  private ApprovalServlet(ApprovalIdentity identity, InProcessApprovalService approvals, Masker masker,
                          String basePath) {
    this.identity = identity;
    this.approvals = Objects.requireNonNull(approvals, "approvals");
    this.json = new ApprovalJson(Objects.requireNonNull(masker, "masker"), basePath);
  }

  /**
   * Reviewer endpoints that identify callers as an engine built from {@code policy} does: its API
   * keys, then its OIDC issuers, then {@code extraResolvers} (those given to
   * {@code PamEngine.Builder.identityResolver}), and read requests under its
   * {@code request.base-path}. The resolvers are built anew, so OIDC key sets are fetched and
   * cached separately from the engine's.
   *
   * @param masker the engine's masker; {@code null} for {@link Masker#IDENTITY}
   * @throws IllegalArgumentException when the policy and {@code extraResolvers} identify nobody
   */
  public static ApprovalServlet forPolicy(Policy policy, InProcessApprovalService approvals, Masker masker,
                                          Clock clock, IdentityResolver... extraResolvers) {
    Objects.requireNonNull(policy, "policy");
    List<IdentityResolver> chain = ApprovalIdentity.fromPolicy(policy, clock, List.of(extraResolvers));
    return new ApprovalServlet(new ApprovalIdentity(chain), approvals, masker == null ? Masker.IDENTITY : masker,
        policy.request().basePath());
  }

  /**
   * Reviewer endpoints for the requests {@code engine} holds: its approval service (the default
   * {@link InProcessApprovalService} of a policy with an {@code approval} section), callers
   * identified by the engine's own resolvers and caches ({@link PamEngine#identityResolver()}),
   * excerpts masked with its masker, requests read under its policy's {@code request.base-path}.
   *
   * @throws IllegalArgumentException when the engine's approval service is not an
   *     {@link InProcessApprovalService} (the policy has no {@code approval} section, or the
   *     engine was given another service, which then needs its own reviewer endpoints)
   */
  public static ApprovalServlet forEngine(PamEngine engine) {
    Objects.requireNonNull(engine, "engine");
    if (!(engine.approvalService() instanceof InProcessApprovalService service)) {
      throw new IllegalArgumentException("the engine holds no requests for review in an InProcessApprovalService"
          + " (no approval section in its policy, or another ApprovalService was given)");
    }
    return new ApprovalServlet(engine.identityResolver(), service, engine.masker(),
        engine.policy().request().basePath());
  }

  private static void drain(InputStream in, long limit) throws IOException {
    byte[] buf = new byte[4096];
    long left = limit;
    for (int n; left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) >= 0; ) left -= n;
  }

  @Override
  protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
    try {
      if (EndpointResponses.refusedPath(request, response)) return;
      handle(request, response);
    } catch (IOException e) {
      throw e;
    } catch (RuntimeException e) {
      EndpointResponses.failed(log, "reviewer", request, response, e);
    }
  }

  private void handle(HttpServletRequest request, HttpServletResponse response) throws IOException {
    ApprovalIdentity.Result who = identity.identify(request);
    if (who.refusal() != null) {
      write(response, who.refusal());
      return;
    }
    Principal caller = who.principal();
    String method = request.getMethod().toUpperCase(Locale.ROOT);
    String path = request.getPathInfo();

    if (path == null || path.isEmpty()) {
      if (!method.equals("GET")) {
        methodNotAllowed(response, "GET");
        return;
      }
      if (!isReviewer(caller)) {
        error(response, ReviewResult.Kind.NOT_A_REVIEWER.httpStatus(), ReviewResult.Kind.NOT_A_REVIEWER.code(),
            notAReviewer());
        return;
      }
      ok(response, json.list(approvals.pending()));
      return;
    }

    String[] parts = path.split("/", -1);
    // "/{id}/approve" splits into "", id, action.
    boolean decide = parts.length == 3 && parts[0].isEmpty() && ID.matcher(parts[1]).matches()
        && (parts[2].equals("approve") || parts[2].equals("reject"));
    if (!decide) {
      error(response, 404, "not_found", "no such reviewer endpoint");
      return;
    }
    if (!method.equals("POST")) {
      methodNotAllowed(response, "POST");
      return;
    }
    if (!isReviewer(caller)) {
      error(response, ReviewResult.Kind.NOT_A_REVIEWER.httpStatus(), ReviewResult.Kind.NOT_A_REVIEWER.code(),
          notAReviewer());
      return;
    }
    long declared = request.getContentLengthLong();
    byte[] body;
    try (InputStream in = request.getInputStream()) {
      body = declared > MAX_BODY_BYTES ? new byte[MAX_BODY_BYTES + 1] : in.readNBytes(MAX_BODY_BYTES + 1);
      if (body.length > MAX_BODY_BYTES) {
        // Read what is left of a modest body first, so that the client, still sending, reads the
        // 413 instead of a connection reset; a huge one is cut off (the container closes).
        drain(in, declared > DRAIN_LIMIT ? 0 : DRAIN_LIMIT);
        error(response, 413, "body_too_large", "request body is larger than " + MAX_BODY_BYTES + " bytes");
        return;
      }
    }
    String reason;
    try {
      reason = ApprovalJson.reason(body);
    } catch (IllegalArgumentException e) {
      error(response, 400, "bad_request", e.getMessage());
      return;
    }

    String id = parts[1];
    ReviewResult result = parts[2].equals("approve")
        ? approvals.approve(id, caller, reason)
        : approvals.reject(id, caller, reason);
    ReviewResult.Kind kind = result.kind();
    switch (kind) {
      case DECIDED -> ok(response, json.decision(result.outcome()));
      case NOT_A_REVIEWER -> error(response, kind.httpStatus(), kind.code(), notAReviewer());
      case SELF_APPROVAL -> error(response, kind.httpStatus(), kind.code(),
          "a reviewer cannot decide their own request");
      case UNKNOWN_ID -> error(response, kind.httpStatus(), kind.code(), "no pending approval " + id);
      case ALREADY_DECIDED -> error(response, kind.httpStatus(), kind.code(), "approval " + id + " was already "
          + (result.outcome() == null ? "decided"
              : result.outcome().status().name().toLowerCase(Locale.ROOT)));
    }
  }

  private boolean isReviewer(Principal caller) {
    return approvals.isReviewer(caller);
  }

  private static String notAReviewer() {
    return "only members of the reviewer groups may list or decide approvals";
  }




}
