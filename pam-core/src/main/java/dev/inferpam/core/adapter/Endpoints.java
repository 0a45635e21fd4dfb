package dev.inferpam.core.adapter;

import dev.inferpam.api.ApprovalService;
import dev.inferpam.api.ApprovalService.ReviewResult;
import dev.inferpam.api.Principal;
import dev.inferpam.core.Authentication;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.QuotaStatus;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.internal.policy.Decider;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * inferpam's own HTTP endpoints under {@value #PATH}, framework-neutral: every front (the servlet
 * gateway, a Netty relay, the servlets of {@code pam-servlet}) hands a request here and writes the
 * {@link EndpointResponse} it gets as it is, so that all of them answer exactly the same and
 * decide nothing themselves.
 *
 * <h2>Endpoints</h2>
 * <table>
 *   <caption>Paths under {@value #PATH}</caption>
 *   <tr><th>request</th><th>answers</th></tr>
 *   <tr><td>{@code GET} or {@code HEAD /pam/health}</td><td>200 {@code {"status":"ok"}}, no
 *       credential needed; any other method 405 {@code method_not_allowed} with
 *       {@code Allow: GET, HEAD}</td></tr>
 *   <tr><td>{@code GET /pam/approvals}, {@code POST /pam/approvals/{id}/approve},
 *       {@code POST /pam/approvals/{id}/reject}</td><td>the reviewer endpoints
 *       ({@link #approvals}); only when the engine holds requests for review
 *       ({@link PamEngine#approvalService()} is not {@link ApprovalService#NONE}), else
 *       404</td></tr>
 *   <tr><td>{@code GET /pam/quota}</td><td>the caller's own budgets ({@link #quota})</td></tr>
 *   <tr><td>{@code GET} or {@code HEAD /pam/metrics}</td><td>only when a scrape was given
 *       ({@link #withMetrics}), else 404: 200 with the scrape's text as
 *       {@link #METRICS_CONTENT_TYPE}, for any caller the engine authenticates (401 otherwise);
 *       any other method 405 with {@code Allow: GET, HEAD}</td></tr>
 *   <tr><td>{@code /pam}</td><td>301 with {@code Location: /pam/} (followed by
 *       {@code ;}<i>parameter</i> when the path ends in one, and {@code ?}<i>query</i> when there
 *       is a query), no other header, empty body: what the servlet container answers for the
 *       bare context path</td></tr>
 *   <tr><td>anything else under {@code /pam}</td><td>404 {@code not_found}
 *       ({@code "no such endpoint"}), no credential needed</td></tr>
 * </table>
 * Before any of these but the 301, a path that could be read two ways ({@code %2F}, {@code ;},
 * dot segments, {@code //}, bad percent-encoding, ...; {@link RequestPaths#endpointRefusal}: one
 * trailing {@code /} is let through) is 400 {@code bad_path}. Every JSON answer carries
 * {@code Content-Type: application/json} and {@code Cache-Control: no-store}; errors have the
 * engine's shape {@code {"error":{"type":"pam_error","code":...,"message":...,"request_id":null}}}
 * and never a stack trace. Nothing here is recorded or counted against a budget.
 *
 * <h2>Writing a front</h2>
 * <ol>
 *   <li>Route a request here when {@link #isEndpointPath} holds for its raw path; everything else
 *       goes through the engine ({@link PamEngine#begin}).</li>
 *   <li>Read at most {@link #MAX_BODY_BYTES}{@code + 1} bytes of its body (none when its
 *       {@code Content-Length} is larger than {@link #MAX_BODY_BYTES}), or let this class ask for
 *       the body only when an endpoint needs it ({@link #handle(RequestHead, BodyReader)}: only a
 *       decision from a reviewer reads it, after the caller was authenticated).</li>
 *   <li>Call {@link #handle}, off any event loop: it may block (authentication may fetch an OIDC
 *       key set, an approval service may be remote, a quota store may be too).</li>
 *   <li>Write the answer: status, the headers as given, {@code Content-Length: body.length},
 *       and the body (none for {@code HEAD}). When part of the request body was left unread
 *       (a body over {@link #MAX_BODY_BYTES} answered 413 {@code body_too_large}, or a body no
 *       endpoint read), close the connection after the answer, as a servlet container does.</li>
 * </ol>
 *
 * <p><b>Thread-safety:</b> immutable and thread-safe; one instance serves all requests. It
 * closes neither the engine nor its approval service.
 */
public final class Endpoints {
  private static final Logger log = LoggerFactory.getLogger(Endpoints.class);

  /** The path the endpoints live under. */
  public static final String PATH = "/pam";

  /**
   * Largest decision body read, in bytes ({@code {"reason":"..."}} of an approve or reject): a
   * larger one is answered 413 {@code body_too_large}.
   */
  public static final int MAX_BODY_BYTES = 1024;

  /** Ids as the service makes them, and then some; anything else cannot exist. */
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");

  private static final String APPROVALS = PATH + "/approvals";
  private static final byte[] HEALTHY = "{\"status\":\"ok\"}".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NO_BODY = new byte[0];

  /** The content type of {@code /pam/metrics}: Prometheus's text exposition format 0.0.4. */
  public static final String METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final PamEngine engine;
  private final ApprovalService approvals;
  private final EndpointJson json;

  /** What {@code /pam/metrics} answers, or {@code null} when there is no such endpoint. */
  private final MetricsScrape metrics;

  private Endpoints(PamEngine engine, MetricsScrape metrics) {
    this.engine = engine;
    this.approvals = engine.approvalService();
    this.json = new EndpointJson(engine.masker(), engine.policy().request().basePath());
    this.metrics = metrics;
  }

  /**
   * The text of {@code GET /pam/metrics}: the application's meters in Prometheus's text format
   * (for instance {@code PrometheusMeterRegistry::scrape} of Micrometer). Called once per request,
   * off any event loop; it must be thread-safe.
   */
  @FunctionalInterface
  public interface MetricsScrape {
    /** The meters as Prometheus text; never {@code null}. */
    String scrape();
  }

  /**
   * These endpoints with {@code GET /pam/metrics} answered by {@code scrape}: 200
   * {@link #METRICS_CONTENT_TYPE} for any caller the engine authenticates, so that traffic
   * figures are not given to anonymous clients (a scraper presents a service key or token of its
   * own, as any caller does).
   *
   * @throws NullPointerException when {@code scrape} is null
   */
  public Endpoints withMetrics(MetricsScrape scrape) {
    return new Endpoints(engine, Objects.requireNonNull(scrape, "scrape"));
  }

  /**
   * The endpoints of {@code engine}: callers identified by it ({@link PamEngine#authenticate}),
   * reviews served by its approval service (the reviewer endpoints exist only when it is not
   * {@link ApprovalService#NONE}), budgets from {@link PamEngine#quotaStatus}, excerpts masked
   * with its masker and read under its policy's {@code request.base-path}.
   *
   * @param engine the engine; neither it nor its approval service is closed here
   * @throws NullPointerException when {@code engine} is null
   */
  public static Endpoints forEngine(PamEngine engine) {
    Objects.requireNonNull(engine, "engine");
    return new Endpoints(engine, null);
  }

  /**
   * Whether a request belongs to these endpoints rather than to the engine, by the rule the
   * gateway's servlet container routes by (Jetty's context path matching), so that every front
   * routes the same requests here:
   *
   * <ol>
   *   <li>The raw path is made canonical as Jetty does: in each segment, a path parameter (from
   *       {@code ;} to the next {@code /}) is dropped, and percent-escapes are decoded (UTF-8,
   *       and {@code %uXXXX}) except those of {@code / % ;} and other characters not allowed
   *       raw in a path, which stay encoded ({@code /pam%2Fhealth} is one segment). Dot segments
   *       ({@code .} and {@code ..}, also encoded) are then resolved, but only when a {@code .}
   *       follows a raw {@code /} somewhere in the raw path (so {@code /x/../pam} resolves to
   *       {@code /pam}, {@code /x;p/../pam} does not).</li>
   *   <li>The request is an endpoint request when that canonical path is {@code /pam} or starts
   *       with {@code /pam/}: case-sensitive, so {@code /PAM/health} and {@code /pamx} are not,
   *       while {@code /p%61m/health} and {@code /pam;x/health} are.</li>
   *   <li>A path the container refuses before routing (a {@code %} not followed by two hex
   *       digits, an encoded NUL, escapes that are not UTF-8, a {@code ..} above the root, a path
   *       not starting with {@code /}) is not an endpoint path; the engine refuses it as
   *       {@code bad_path} (the gateway's container answers it 400 {@code bad_request}).</li>
   * </ol>
   *
   * A path routed here that is not canonical for the engine (dot segments, {@code ;}, ...) is
   * answered 400 {@code bad_path} by {@link #handle}, unrecorded; the same path routed to the
   * engine would be refused 400 {@code bad_path} too, and recorded.
   *
   * @param rawPath the request path as received, still percent-encoded, without the query; may
   *                be null (then false)
   */
  public static boolean isEndpointPath(String rawPath) {
    String canonical = JettyPaths.canonical(rawPath);
    return canonical != null && isUnderPath(canonical);
  }

  private static boolean isUnderPath(String canonical) {
    return canonical.startsWith(PATH)
        && (canonical.length() == PATH.length() || canonical.charAt(PATH.length()) == '/');
  }

  /** What a front gives to read a request's body when an endpoint asks for it. */
  @FunctionalInterface
  public interface BodyReader {
    /**
     * Reads the body, at most {@code limit} bytes: all of it when it is shorter, else exactly
     * {@code limit} bytes (the rest left unread). May block.
     *
     * @param limit the most bytes to return ({@link #MAX_BODY_BYTES}{@code + 1})
     * @return the bytes read; empty when there is no body
     * @throws IOException when the body cannot be read (the client went away, a timeout)
     */
    byte[] read(int limit) throws IOException;
  }

  /**
   * {@link #handle(RequestHead, BodyReader)} with a body the front has read already: at most
   * {@link #MAX_BODY_BYTES}{@code + 1} bytes (a longer array is cut to that), or nothing when the
   * request's {@code Content-Length} is over {@link #MAX_BODY_BYTES}.
   *
   * @param head the request, its path raw ({@link RequestHead#rawPath()})
   * @param body the body bytes read, or {@code null} for none
   * @return the answer to write
   * @throws NullPointerException when {@code head} is null
   */
  public EndpointResponse handle(RequestHead head, byte[] body) {
    byte[] bytes = body == null ? NO_BODY : body;
    try {
      return handle(head, limit -> bytes.length <= limit ? bytes : copy(bytes, limit));
    } catch (IOException e) {
      throw new AssertionError("an in-memory body cannot fail", e);
    }
  }

  private static byte[] copy(byte[] bytes, int limit) {
    byte[] out = new byte[limit];
    System.arraycopy(bytes, 0, out, 0, limit);
    return out;
  }

  /**
   * Answers one request to a path under {@value #PATH} (see the class description): the 301 of
   * {@code /pam}, {@code bad_path}, then health, the reviewer endpoints, quota, or 404. Call it
   * for paths {@link #isEndpointPath} accepts; any other path is answered as an unknown endpoint
   * would be (400 {@code bad_path} or 404 {@code not_found}). May block; never call it on an
   * event loop.
   *
   * @param head the request, its path raw ({@link RequestHead#rawPath()}), its query raw
   * @param body reads the body, called at most once and only for a reviewer's decision; the
   *             request's {@code Content-Length} is looked at first, and a body declared over
   *             {@link #MAX_BODY_BYTES} is answered 413 without being read
   * @return the answer to write; a bug inside is answered 500 {@code internal_error} and logged
   *     as one line naming the exception's type
   * @throws IOException          what {@code body} throws
   * @throws NullPointerException when {@code head} or {@code body} is null
   */
  public EndpointResponse handle(RequestHead head, BodyReader body) throws IOException {
    Objects.requireNonNull(head, "head");
    Objects.requireNonNull(body, "body");
    String raw = head.rawPath();
    if (PATH.equals(JettyPaths.canonical(raw))) return redirect(raw, head.query());
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(raw);
    if (refused.isPresent()) return error(refused.get());
    String path = decoded(raw);
    if (path.equals(PATH + "/health")) return health(head);
    if (approvals != ApprovalService.NONE
        && (path.equals(APPROVALS) || path.startsWith(APPROVALS + "/"))) {
      String sub = path.length() == APPROVALS.length() ? null : path.substring(APPROVALS.length());
      return serve(head, "reviewer", caller -> reviewer(head, caller, sub, body));
    }
    if (path.equals(PATH + "/quota"))
      return serve(head, "quota", caller -> budgets(head, caller, null));
    if (metrics != null && path.equals(PATH + "/metrics"))
      return serve(head, "metrics", caller -> scrape(head));
    return error(404, "not_found", "no such endpoint");
  }

  /**
   * The reviewer endpoints alone, for a front that routes by itself (a servlet mapped at
   * {@code /pam/approvals/*}): {@code subPath} is the part of the decoded path after
   * {@code /pam/approvals} ({@code null} or empty for the list, {@code /{id}/approve},
   * {@code /{id}/reject}; anything else is 404 after authentication). The raw path of
   * {@code head} is still checked first (400 {@code bad_path}).
   *
   * <table>
   *   <caption>Reviewer endpoints</caption>
   *   <tr><th>request</th><th>answers</th></tr>
   *   <tr><td>{@code GET /pam/approvals}</td>
   *       <td>200 {@code {"approvals":[{"id","principal","rule","model","operation","excerpt","created","expires"}]}},
   *       oldest first: the reviews the caller may decide ({@link ApprovalService#pending}),
   *       {@code excerpt} masked by the engine's masker and cut to 200 characters.</td></tr>
   *   <tr><td>{@code POST /pam/approvals/{id}/approve} or {@code .../reject}</td>
   *       <td>200 {@code {"id","status","reviewer","reason","decided"}}; the body is optional:
   *       nothing, or {@code {"reason":"..."}} (at most {@link #MAX_BODY_BYTES} bytes, reason at
   *       most {@value ApprovalService#MAX_REASON_CHARS} characters)</td></tr>
   * </table>
   * Refusals, in the order they are checked: 400 {@code bad_path}; 401 {@code unauthenticated}
   * with {@code WWW-Authenticate} (as the engine words it); 404 {@code not_found} for another
   * sub-path ({@code "no such reviewer endpoint"}); 405 {@code method_not_allowed} with
   * {@code Allow: GET} (list) or {@code Allow: POST} (decisions), methods compared
   * case-insensitively; 403 {@code not_a_reviewer}; for a decision 413 {@code body_too_large}
   * (declared or read over {@link #MAX_BODY_BYTES}), 400 {@code bad_request} (not a JSON object
   * with an optional string {@code reason}, or a reason too long), then the service's answer:
   * 403 {@code self_approval}, 404 {@code not_found} ({@code "no pending approval <id>"}), 409
   * {@code already_decided}. 404 {@code not_found} ({@code "no such endpoint"}, after the path
   * check) when the engine holds no reviews.
   *
   * @throws IOException what {@code body} throws
   */
  public EndpointResponse approvals(RequestHead head, String subPath, BodyReader body)
      throws IOException {
    Objects.requireNonNull(head, "head");
    Objects.requireNonNull(body, "body");
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(head.rawPath());
    if (refused.isPresent()) return error(refused.get());
    if (approvals == ApprovalService.NONE) return error(404, "not_found", "no such endpoint");
    return serve(head, "reviewer", caller -> reviewer(head, caller, subPath, body));
  }

  /**
   * The quota endpoint alone, for a front that routes by itself (a servlet mapped at
   * {@code /pam/quota}): {@code subPath} is the part of the decoded path after it ({@code null}
   * or empty for the endpoint; anything else is 404 after authentication). The raw path of
   * {@code head} is still checked first (400 {@code bad_path}).
   *
   * <p>{@code GET}: 200 {@code {"principal":...,"limits":[{"rule","models","operations",
   * "requests_per_minute":{"limit","used","remaining","resets"},...}]}}, the caller's own budgets
   * ({@link PamEngine#quotaStatus}). Refusals, in order: 400 {@code bad_path}, 401
   * {@code unauthenticated}, 404 {@code not_found}, 405 {@code method_not_allowed} with
   * {@code Allow: GET} (methods compared case-insensitively), 503 {@code quota_unavailable} when
   * the quota store fails (its exception's type logged only).
   */
  public EndpointResponse quota(RequestHead head, String subPath) {
    Objects.requireNonNull(head, "head");
    Optional<ErrorResponse> refused = RequestPaths.endpointRefusal(head.rawPath());
    if (refused.isPresent()) return error(refused.get());
    try {
      return serve(head, "quota", caller -> budgets(head, caller, subPath));
    } catch (IOException e) {
      throw new AssertionError("the quota endpoint reads no body", e);
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** What an endpoint does for a caller the engine authenticated. */
  @FunctionalInterface
  private interface Endpoint {
    EndpointResponse handle(Principal caller) throws IOException;
  }

  /**
   * Authenticates the caller (a refusal is answered as the engine words it, challenge included),
   * hands it to {@code endpoint}, and answers a bug 500.
   */
  private EndpointResponse serve(RequestHead head, String name, Endpoint endpoint)
      throws IOException {
    try {
      Authentication who = engine.authenticate(head);
      if (who instanceof Authentication.Refused refused) return error(refused.error());
      return endpoint.handle(((Authentication.Authenticated) who).principal());
    } catch (RuntimeException e) {
      log.error(
          "inferpam: {} endpoint failed on a {} request: {}",
          name,
          safeMethod(head.method()),
          e.getClass().getName());
      log.debug("inferpam: {} endpoint failure", name, e);
      return internalError();
    }
  }

  private EndpointResponse health(RequestHead head) {
    String method = head.method();
    if (!method.equals("GET") && !method.equals("HEAD")) {
      return methodNotAllowed("GET, HEAD", "use GET");
    }
    return ok(HEALTHY);
  }

  private EndpointResponse scrape(RequestHead head) {
    String method = head.method();
    if (!method.equals("GET") && !method.equals("HEAD")) {
      return methodNotAllowed("GET, HEAD", "use GET");
    }
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", METRICS_CONTENT_TYPE);
    headers.put("Cache-Control", "no-store");
    return new EndpointResponse(200, headers, metrics.scrape().getBytes(StandardCharsets.UTF_8));
  }

  private EndpointResponse reviewer(
      RequestHead head, Principal caller, String subPath, BodyReader body) throws IOException {
    String method = head.method().toUpperCase(Locale.ROOT);
    if (subPath == null || subPath.isEmpty()) {
      if (!method.equals("GET")) return methodNotAllowed("GET", "use GET");
      if (!approvals.isReviewer(caller)) return notAReviewer();
      List<ApprovalService.Pending> pending;
      try {
        pending = approvals.pending(caller);
      } catch (RuntimeException e) {
        return approvalsUnavailable(e);
      }
      return ok(json.list(pending));
    }

    String[] parts = subPath.split("/", -1);
    // "/{id}/approve" splits into "", id, action.
    boolean decide =
        parts.length == 3
            && parts[0].isEmpty()
            && ID.matcher(parts[1]).matches()
            && (parts[2].equals("approve") || parts[2].equals("reject"));
    if (!decide) return error(404, "not_found", "no such reviewer endpoint");
    if (!method.equals("POST")) return methodNotAllowed("POST", "use POST");
    if (!approvals.isReviewer(caller)) return notAReviewer();
    if (contentLength(head) > MAX_BODY_BYTES) return bodyTooLarge();
    byte[] bytes = body.read(MAX_BODY_BYTES + 1);
    if (bytes == null) bytes = NO_BODY;
    if (bytes.length > MAX_BODY_BYTES) return bodyTooLarge();
    String reason;
    try {
      reason = EndpointJson.reason(bytes);
    } catch (IllegalArgumentException e) {
      return error(400, "bad_request", e.getMessage());
    }

    String id = parts[1];
    ReviewResult result;
    try {
      result =
          parts[2].equals("approve")
              ? approvals.approve(id, caller, reason)
              : approvals.reject(id, caller, reason);
    } catch (RuntimeException e) {
      return approvalsUnavailable(e);
    }
    if (result == null) throw new IllegalStateException("the approval service gave no result");
    return switch (result.kind()) {
      case DECIDED -> ok(EndpointJson.decision(result.outcome()));
      case NOT_A_REVIEWER -> notAReviewer();
      case SELF_APPROVAL ->
          error(403, "self_approval", "a reviewer cannot decide their own request");
      case NOT_FOUND -> error(404, "not_found", "no pending approval " + id);
      case ALREADY_DECIDED ->
          error(
              409,
              "already_decided",
              "approval "
                  + id
                  + " was already "
                  + (result.outcome() == null || result.outcome().status() == null
                      ? "decided"
                      : EndpointJson.status(result.outcome().status())));
    };
  }

  /**
   * The approval service failed (a shared store that cannot be reached): 503
   * {@code approval_unavailable}, retry in 1 s; only the exception's type is logged (its message
   * may name the store's connection).
   */
  private EndpointResponse approvalsUnavailable(RuntimeException e) {
    log.error(
        "inferpam: approval service failed on the reviewer endpoint: {}", e.getClass().getName());
    return error(
        dev.inferpam.core.internal.http.ErrorBodies.of(
            new dev.inferpam.api.Decision.Deny(
                503,
                "approval_unavailable",
                "the approval service is unavailable; retry later",
                "approval_unavailable",
                Map.of("Retry-After", "1")),
            null));
  }

  private EndpointResponse budgets(RequestHead head, Principal caller, String subPath) {
    if (subPath != null && !subPath.isEmpty()) return error(404, "not_found", "no such endpoint");
    if (!head.method().toUpperCase(Locale.ROOT).equals("GET")) {
      return methodNotAllowed("GET", "use GET");
    }
    List<QuotaStatus> status;
    try {
      status = engine.quotaStatus(caller);
    } catch (RuntimeException e) {
      // As the engine does: the store's message may name its connection, so only the type is
      // logged.
      log.error("inferpam: quota store failed on the quota endpoint: {}", e.getClass().getName());
      return error(503, "quota_unavailable", "quota state is unavailable");
    }
    return ok(EndpointJson.quota(caller, status));
  }

  // ---------------------------------------------------------------------------------------------

  /** The declared {@code Content-Length}, or -1 when there is none (or it is not a number). */
  private static long contentLength(RequestHead head) {
    List<String> values = head.headers().get("content-length");
    if (values == null || values.isEmpty()) return -1;
    try {
      return Long.parseLong(values.get(0).trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /**
   * The path a canonical raw path (but for one trailing {@code /}, kept) decodes to:
   * {@link RequestPaths#endpointRefusal} accepted it, so it decodes exactly once without
   * ambiguity.
   */
  private static String decoded(String raw) {
    boolean trailing = raw.length() > 1 && raw.endsWith("/");
    String path = trailing ? raw.substring(0, raw.length() - 1) : raw;
    String decoded = (String) Decider.canonicalPathOrDeny(path);
    return trailing ? decoded + "/" : decoded;
  }

  /** The container's answer to the bare {@code /pam}: where the context's root is. */
  private static EndpointResponse redirect(String raw, String query) {
    StringBuilder location = new StringBuilder(PATH).append('/');
    String param = JettyPaths.lastParameter(raw);
    if (param != null) location.append(';').append(param);
    if (query != null) location.append('?').append(query);
    return new EndpointResponse(301, Map.of("Location", location.toString()), NO_BODY);
  }

  private static EndpointResponse ok(byte[] body) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", "application/json");
    headers.put("Cache-Control", "no-store");
    return new EndpointResponse(200, headers, body);
  }

  private static EndpointResponse methodNotAllowed(String allow, String message) {
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Allow", allow);
    ErrorResponse error = ErrorResponse.of(405, "method_not_allowed", message, null);
    headers.putAll(errorHeaders(error));
    return new EndpointResponse(405, headers, error.body());
  }

  private static EndpointResponse notAReviewer() {
    return error(
        403, "not_a_reviewer", "only members of the reviewer groups may list or decide approvals");
  }

  private static EndpointResponse bodyTooLarge() {
    return error(413, "body_too_large", "request body is larger than " + MAX_BODY_BYTES + " bytes");
  }

  private static EndpointResponse internalError() {
    return error(500, "internal_error", "the request could not be handled");
  }

  /** An error in the engine's shape, without a request id. */
  private static EndpointResponse error(int status, String code, String message) {
    return error(ErrorResponse.of(status, code, message, null));
  }

  /**
   * An error answer with its headers (e.g. a {@code WWW-Authenticate} challenge): its
   * {@code Content-Type} first, then its other headers by name, then {@code Cache-Control}.
   */
  private static EndpointResponse error(ErrorResponse error) {
    return new EndpointResponse(error.status(), errorHeaders(error), error.body());
  }

  private static Map<String, String> errorHeaders(ErrorResponse error) {
    Map<String, String> headers = new LinkedHashMap<>();
    String type = error.headers().get("Content-Type");
    headers.put("Content-Type", type == null ? "application/json" : type);
    new TreeMap<>(error.headers()).forEach(headers::putIfAbsent);
    headers.put("Cache-Control", "no-store");
    return headers;
  }

  /** The method when it is a plain token, else {@code ?}. */
  private static String safeMethod(String m) {
    return m != null && m.length() <= 20 && m.chars().allMatch(c -> c > 32 && c < 127) ? m : "?";
  }
}
