/**
 * Framing of streamed response bodies: server-sent events ({@code text/event-stream}) and
 * newline-delimited JSON, cut incrementally from bytes however they arrive.
 *
 * <p>Two levels for each format. The scanners ({@link dev.inferpam.core.stream.SseScanner},
 * {@link dev.inferpam.core.stream.NdjsonScanner}) hold no line or event: they report each piece of
 * a line as it passes, for readers that must stay bounded whatever the upstream sends. The framers
 * ({@link dev.inferpam.core.stream.SseFramer}, {@link dev.inferpam.core.stream.NdjsonFramer}) are
 * built on them and deliver whole events and lines, up to a size the caller sets; what they deliver
 * keeps every byte that arrived (terminators, comments, other fields), so that a stream can be
 * written again as it came.
 *
 * <p>Used by response masking, usage extraction, the replay tool and the demo; usable by any
 * adapter or tool that reads model streams. Instances are not thread-safe: one stream, fed by one
 * thread at a time.
 */
package dev.inferpam.core.stream;
