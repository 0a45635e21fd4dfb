package dev.inferpam.testsupport;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A {@link Clock} that stands still until a test moves it: {@link #set(Instant)} or
 * {@link #advance(Duration)}. Expiry, quotas and approvals are tested with it instead of sleeping.
 *
 * <p>{@link #withZone(ZoneId)} returns a view in another zone that reads the same instant, so
 * moving this clock moves the view too. {@code equals} is identity.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; a reader sees the latest instant set.
 */
public final class MutableClock extends Clock {
  private final AtomicReference<Instant> now;
  private final ZoneId zone;

  /** A clock at {@code start}, in UTC. */
  public MutableClock(Instant start) {
    this(start, ZoneOffset.UTC);
  }

  /** A clock at {@code start}, in {@code zone}. */
  public MutableClock(Instant start, ZoneId zone) {
    this(new AtomicReference<>(Objects.requireNonNull(start, "start")), zone);
  }

  private MutableClock(AtomicReference<Instant> now, ZoneId zone) {
    this.now = now;
    this.zone = Objects.requireNonNull(zone, "zone");
  }

  /** A clock at the ISO-8601 instant {@code start} (e.g. {@code 2026-06-01T12:00:00Z}), in UTC. */
  public static MutableClock at(String start) {
    return new MutableClock(Instant.parse(start));
  }

  /** Sets the time to {@code instant}. */
  public void set(Instant instant) {
    now.set(Objects.requireNonNull(instant, "instant"));
  }

  /** Moves the time by {@code d}: forward, or back for a negative duration. */
  public void advance(Duration d) {
    Objects.requireNonNull(d, "d");
    now.updateAndGet(t -> t.plus(d));
  }

  @Override
  public Instant instant() {
    return now.get();
  }

  @Override
  public long millis() {
    return now.get().toEpochMilli();
  }

  @Override
  public ZoneId getZone() {
    return zone;
  }

  /** A view of this clock in {@code zone}: moving either moves both. */
  @Override
  public MutableClock withZone(ZoneId zone) {
    return zone.equals(this.zone) ? this : new MutableClock(now, zone);
  }

  @Override
  public String toString() {
    return "MutableClock[" + now.get() + ", " + zone + "]";
  }
}
