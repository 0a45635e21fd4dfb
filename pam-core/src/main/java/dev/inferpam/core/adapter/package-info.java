/**
 * The adapter-facing side of the engine, for code that puts it in a data path (an HTTP client
 * interceptor, a servlet filter, a gateway) or answers next to it (reviewer and quota endpoints):
 * the engine's path check ({@link dev.inferpam.core.adapter.RequestPaths}), the caller headers a
 * proxy may forward ({@link dev.inferpam.core.adapter.ForwardHeaders}), and what a reviewer is
 * shown of a held request ({@link dev.inferpam.core.adapter.ReviewSummaries}). Applications
 * configure and run the engine with {@code dev.inferpam.core} alone.
 */
package dev.inferpam.core.adapter;
