/**
 * The adapter-facing side of the engine: what an adapter (an HTTP client interceptor, a servlet
 * filter, a gateway) gets from {@link dev.inferpam.core.PamEngine#begin} and applies. The engine
 * answers once per request with a sealed {@link dev.inferpam.core.adapter.Verdict}; adapters
 * translate it to their framework and decide nothing themselves.
 *
 * <p>A blocking adapter, in outline:
 * <pre>{@code
 * Verdict verdict = engine.begin(head, body, contentLength);
 * if (verdict instanceof Verdict.Held held) verdict = held.await(held.timeout());  // null: give up, cancel()
 * if (verdict instanceof Verdict.Denied denied) {
 *   send(denied.error());
 *   denied.end(true);
 * } else if (verdict instanceof Verdict.Allowed allowed) {
 *   Response upstream = call(allowed.forward());                    // header edits, body
 *   ResponsePlan plan = allowed.respond(upstream.status(), upstream.headers());
 *   // Refused: send its error; Relay: headers through header(), body through masking(),
 *   // every delivered chunk to delivered()
 *   allowed.end(complete);
 * }
 * }</pre>
 *
 * <p>inferpam's own endpoints under {@code /pam} (health, reviewer, quota) are
 * {@link dev.inferpam.core.adapter.Endpoints}: a front routes the requests
 * {@link dev.inferpam.core.adapter.Endpoints#isEndpointPath} accepts to it and writes the
 * {@link dev.inferpam.core.adapter.EndpointResponse} it answers. Endpoints that answer next to the
 * engine find the engine's path check here ({@link dev.inferpam.core.adapter.RequestPaths}), and
 * reverse proxies the caller
 * headers they may forward ({@link dev.inferpam.core.adapter.ForwardHeaders}); what a reviewer is
 * shown of a held request is {@link dev.inferpam.core.adapter.ReviewSummaries}. Applications
 * configure and run the engine with {@code dev.inferpam.core} alone.
 */
package dev.inferpam.core.adapter;
