package dev.inferpam.core.stream;

/**
 * The field of a line of a server-sent event stream: the text before the line's first colon
 * (the whole line when it has none), compared exactly (case-sensitive, no trimming), as the
 * WHATWG event-stream format defines it.
 */
public enum SseField {
  /** {@code data}: one line of the event's data. */
  DATA,
  /** {@code event}: the event type. */
  EVENT,
  /** {@code id}: the last event id. */
  ID,
  /** {@code retry}: the reconnection time. */
  RETRY,
  /** A comment: a line starting with a colon. */
  COMMENT,
  /** Any other field name, which a reader ignores. */
  OTHER
}
