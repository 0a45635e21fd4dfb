package dev.inferpam.core;

import dev.inferpam.api.Principal;
import java.time.Instant;

/**
 * One exchange as an {@link ExchangeListener} sees it. Immutable; the same instance for every
 * event of an exchange.
 *
 * @param id        the exchange id (the record's id, the {@code request_id} of error bodies)
 * @param started   when the request's head was received
 * @param method    the HTTP method
 * @param principal the identified caller, or {@code null} when refused before identity
 * @param operation the recognised operation, or {@code null}
 * @param model     the model asked for, or {@code null}
 * @param startNanos {@link System#nanoTime()} when the request's head was received: the origin of
 *     durations a listener measures with {@code System.nanoTime()} (time to decide, to the first
 *     byte), whatever clock the engine was given
 */
public record ExchangeInfo(
    String id,
    Instant started,
    String method,
    Principal principal,
    String operation,
    String model,
    long startNanos) {}
