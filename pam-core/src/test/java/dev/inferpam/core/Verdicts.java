package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/** Small steps of an adapter over {@link Verdict}s, shared by the engine's tests. */
final class Verdicts {
  private Verdicts() {}

  static Verdict.Denied denied(Verdict v) {
    assertThat(v).isInstanceOf(Verdict.Denied.class);
    return (Verdict.Denied) v;
  }

  static Verdict.Allowed allowed(Verdict v) {
    assertThat(v).isInstanceOf(Verdict.Allowed.class);
    return (Verdict.Allowed) v;
  }

  static Verdict.Held held(Verdict v) {
    assertThat(v).isInstanceOf(Verdict.Held.class);
    return (Verdict.Held) v;
  }

  /** The error a denial sends, or {@code null} for any other verdict. */
  static ErrorResponse error(Verdict v) {
    return v instanceof Verdict.Denied d ? d.error() : null;
  }

  /** The upstream credential an allowed request carries (from its header edits), else {@code null}. */
  static Credential credential(Verdict v) {
    if (!(v instanceof Verdict.Allowed a)) return null;
    Map<String, String> set = a.forward().setHeaders();
    assertThat(set.size()).as("at most one header set").isLessThanOrEqualTo(1);
    return set.entrySet().stream()
        .findFirst()
        .map(e -> new Credential(e.getKey(), e.getValue()))
        .orElse(null);
  }

  /** Ends whatever the verdict: a held request is withdrawn. */
  static void end(Verdict v, boolean complete) {
    if (v instanceof Verdict.Denied d) d.end(complete);
    else if (v instanceof Verdict.Allowed a) a.end(complete);
    else ((Verdict.Held) v).cancel();
  }

  /** The final verdict of a held request whose review is over (nothing here waits), made final here. */
  static Verdict result(Verdict.Held held) {
    Verdict v = await(held, Duration.ZERO);
    assertThat(v).as("review over").isNotNull();
    return v;
  }

  /** Whether the review is over; when it is, the verdict is made final (on this thread). */
  static boolean reviewOver(Verdict v) {
    return !(v instanceof Verdict.Held h) || await(h, Duration.ZERO) != null;
  }

  static Verdict await(Verdict.Held held, Duration timeout) {
    try {
      return held.await(timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** The plan to relay the response; fails when it is refused. */
  static ResponsePlan.Relay relay(
      Verdict.Allowed a, int status, Map<String, List<String>> headers) {
    ResponsePlan plan = a.respond(status, headers);
    assertThat(plan).isInstanceOf(ResponsePlan.Relay.class);
    return (ResponsePlan.Relay) plan;
  }

  /** The refusal of the response; fails when it is relayed. */
  static ErrorResponse refusal(Verdict.Allowed a, int status, Map<String, List<String>> headers) {
    ResponsePlan plan = a.respond(status, headers);
    assertThat(plan).isInstanceOf(ResponsePlan.Refused.class);
    return ((ResponsePlan.Refused) plan).error();
  }

  static Map<String, List<String>> contentType(String type) {
    return Map.of("Content-Type", List.of(type));
  }
}
