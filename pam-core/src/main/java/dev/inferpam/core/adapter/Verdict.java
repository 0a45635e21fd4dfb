package dev.inferpam.core.adapter;

import dev.inferpam.api.Decision;
import dev.inferpam.api.Principal;
import dev.inferpam.core.ErrorResponse;
import dev.inferpam.core.PamEngine;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;

/**
 * What the engine answers an adapter, once per request ({@link PamEngine#begin},
 * {@link PendingRequest}): {@link Denied} (the error to send, nothing forwarded), {@link Held}
 * (wait for a reviewer; the engine bounds the wait) or {@link Allowed} (everything to apply on the
 * way to the upstream and back). Adapters translate it to their framework; they decide nothing.
 *
 * <p>Whatever the verdict, the exchange ends exactly once: {@link Denied#end} or
 * {@link Allowed#end} (in a {@code finally}), or {@link Held#cancel()}. That is when the record is
 * handed to the recorder. {@code end} is idempotent.
 *
 * <p>The informational accessors ({@link #id()}, {@link #decision()}, ...) are for logging and
 * tests; an adapter needs none of them to apply a verdict.
 *
 * <p><b>Thread-safety:</b> a verdict belongs to one request; its methods may be called from
 * different threads one after another (as async servlets and OkHttp do), not concurrently, except
 * {@link Held#cancel()}, which may race with the review's end.
 */
public sealed interface Verdict permits Verdict.Denied, Verdict.Held, Verdict.Allowed {

  /** The exchange id: the {@code request_id} of error bodies and the record's id. */
  String id();

  /** The engine's decision behind this verdict. */
  Decision decision();

  /** The identified caller, or {@code null} when the request was refused before identity. */
  Principal principal();

  /** The recognised operation ({@code chat}, ...), or {@code null}. */
  String operation();

  /** The model asked for, or {@code null}. */
  String model();

  /**
   * Refused: send {@link #error()} (status, headers, JSON body) and nothing else; nothing may
   * reach the application or the upstream. Then {@link #end}.
   */
  non-sealed interface Denied extends Verdict {
    @Override
    Decision.Deny decision();

    /** The answer to send, ready to write. */
    ErrorResponse error();

    /**
     * Whether the request's body was left unread (refused from its head, or while it arrived): an
     * adapter whose request has a body answers with {@code Connection: close}, rather than read or
     * wait for bytes nobody will use.
     */
    boolean bodyLeftUnread();

    /**
     * Ends the exchange and hands its record (with {@link #error()} as the response) to the
     * recorder. Idempotent.
     *
     * @param complete false when the error could not be delivered (the client went away)
     */
    void end(boolean complete);
  }

  /**
   * Waiting for a reviewer (the request matched an {@code approval} rule): forward nothing yet.
   * Wait for the final verdict without a thread where the framework allows ({@link #result}: an
   * async servlet suspends), else block ({@link #await}); either way no longer than
   * {@link #timeout()}. Then carry on with that verdict as with any other. A caller that gives up
   * calls {@link #cancel()}.
   *
   * <p>Making an approval final does I/O (the upstream credential is fetched, and with strict
   * durability the intent record written): it runs where the adapter says, never on the thread
   * that ended the review (a reviewer's request, an expiry thread).
   */
  non-sealed interface Held extends Verdict {
    @Override
    Decision.RequireApproval decision();

    /**
     * The final verdict, {@link Allowed} or {@link Denied} (403 {@code approval_rejected} or
     * {@code approval_expired}, 429 {@code approval_limit}, 503 {@code approval_unavailable}, or
     * 503 when an approved request cannot get its credential or durable intent), made final on
     * {@code executor} once the review is over, and completed there. Never completes
     * exceptionally; the review is over within the engine's bound ({@code approval.timeout} plus a
     * grace of at most {@link PamEngine#APPROVAL_GRACE}). An executor that refuses the task has it
     * run on the thread that ended the review. Every call gives the same verdict; the first to get
     * there makes it.
     */
    CompletionStage<Verdict> result(Executor executor);

    /**
     * Blocks until the review is over, at most {@code timeout}, then makes the verdict final on
     * the calling thread and returns it ({@link #result} gives the same).
     *
     * @return the final verdict, or {@code null} when the review is not over within {@code timeout}
     *     ({@link Duration#ZERO}: only looks)
     * @throws InterruptedException when the thread is interrupted while waiting; the request stays
     *     under review (call {@link #cancel()} to withdraw it)
     */
    Verdict await(Duration timeout) throws InterruptedException;

    /**
     * How long the adapter may wait for the final verdict before giving up on its own (a
     * container's async timeout): a backstop, well past the engine's own bound, for a wait that
     * somehow does not end. Twice {@code approval.timeout} plus 30 s.
     */
    Duration timeout();

    /**
     * The caller stopped waiting (disconnected, cancelled, interrupted, the adapter's timeout
     * passed): withdraws the request from review and ends the exchange, recorded incomplete, as
     * 403 {@code approval_expired}. Nothing was forwarded, so an approval that arrived meanwhile
     * is withdrawn too. Do not use a final verdict obtained before. Idempotent.
     *
     * @return the denial it ended with, to write if the response can still take it (already ended)
     */
    Denied cancel();
  }

  /**
   * Allowed: forward {@link #forward()}, then report the response with {@link #respond} and
   * deliver it as the {@link ResponsePlan} says; {@link #end} once the body is delivered (or broke
   * off).
   */
  non-sealed interface Allowed extends Verdict {
    @Override
    Decision.Allow decision();

    /**
     * What to send upstream: the header edits (the caller's credential out, the upstream
     * credential in, no {@code Accept-Encoding} when the response will be rewritten), the body,
     * and the allow-listed headers for a proxy. Asking tells the engine the request is being
     * forwarded. The same instance on every call.
     */
    Forward forward();

    /**
     * Whether the response body may change length on its way to the caller (it will be masked).
     * An adapter that learns the response headers one by one, before {@link #respond}, holds back a
     * {@code Content-Length} until the plan says whether to drop it
     * ({@link ResponsePlan.Relay#dropContentLength()}).
     */
    boolean mayChangeLength();

    /**
     * A response header as it may reach the caller: {@code value} with this exchange's credentials
     * replaced ({@code value} itself when it holds none), or {@code null} when the header must be
     * dropped because its name holds one. Usable before {@link #respond}, for frameworks where the
     * application sets headers one by one; the same as {@link ResponsePlan.Relay#header}.
     */
    String responseHeader(String name, String value);

    /**
     * Reports the response's status and headers (the upstream's, or the application's) and returns
     * how to deliver it. The first call decides; later calls return the same plan.
     *
     * @param headers the response headers, names in any case, or {@code null} for none
     */
    ResponsePlan respond(int status, Map<String, List<String>> headers);

    /**
     * The forwarded request got no answer from the upstream (unreachable, refused, no response
     * within the timeouts): the request is not charged tokens against the policy's {@code limits},
     * and, unless the adapter then answers through {@link #respond} (a gateway writing its own
     * error), the record's response is a 502. Call before {@link #end}.
     */
    void upstreamFailed();

    /**
     * The adapter's own error answer for this exchange (it could not forward it, or drops what
     * came back: {@code upstream_unavailable}, {@code upstream_redirect}), in the JSON the engine
     * gives its denials on this request's path and under the policy's {@code request.error-shape}.
     * Pass it to {@link #respond} like any answer.
     */
    default ErrorResponse error(int status, String code, String message) {
      return ErrorResponse.of(status, code, message, id());
    }

    /**
     * Ends the exchange and hands its record to the recorder. Idempotent.
     *
     * @param complete false when the upstream or the client broke off
     */
    void end(boolean complete);
  }
}
