package dev.inferpam.core;

import static dev.inferpam.core.ExchangeQuotaTest.JSON;
import static dev.inferpam.core.ExchangeQuotaTest.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code request.max-in-flight} as callers see it: past the bound an allowed request is answered
 * 503 {@code overloaded} with {@code Retry-After} before anything is forwarded, and recorded; a
 * place comes free when an exchange ends (its response streamed to the end or broken off);
 * refusals and requests waiting for a reviewer take no place.
 */
class ExchangeInFlightTest {
  static final String KEY = "alice-key";
  static final Credential UPSTREAM = new Credential("X-Model-Key", "upstream-secret");
  static final Principal SAM =
      new Principal("sam", Set.of("security-oncall"), Principal.VIA_OIDC, "https://idp", Map.of());

  final MutableClock clock = new MutableClock(Instant.parse("2026-12-06T10:00:00Z"));
  final CapturingRecorder rec = new CapturingRecorder();
  final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : toClose) c.close();
  }

  static String policy(String request) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        approval:
          reviewers: [security-oncall]
          rules:
            - {name: bulk-export, prompt-matches: "(?i)export all"}
        request:
        %s
        """
        .formatted(sha256(KEY), request);
  }

  PamEngine engine(int maxInFlight) {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy("  max-in-flight: " + maxInFlight)))
            .clock(clock)
            .recorder(rec)
            .credentialProvider(() -> UPSTREAM)
            .build();
    toClose.add(engine);
    return engine;
  }

  static Verdict chat(PamEngine engine, String model, String prompt) {
    return ExchangeQuotaTest.post(
        engine,
        ExchangeQuotaTest.CHAT,
        KEY,
        "{\"model\":\""
            + model
            + "\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + prompt
            + "\"}]}");
  }

  SessionRecord recordOf(Verdict v) {
    return rec.records.stream().filter(r -> r.id().equals(v.id())).findFirst().orElseThrow();
  }

  @Test
  void pastTheBoundAnAllowedRequestIs503OverloadedWithRetryAfterAndRecorded() throws Exception {
    PamEngine engine = engine(2);
    Verdict first = chat(engine, "llama-3", "hi");
    Verdict second = chat(engine, "llama-3", "hi");
    assertThat(first).isInstanceOf(Verdict.Allowed.class);
    assertThat(second).isInstanceOf(Verdict.Allowed.class);
    assertThat(engine.exchangesInFlight()).isEqualTo(2);

    Verdict third = chat(engine, "llama-3", "hi");
    Verdict.Denied denied = Verdicts.denied(third);
    ErrorResponse err = denied.error();
    assertThat(err.status()).isEqualTo(503);
    assertThat(err.headers()).containsEntry("Retry-After", "1");
    JsonNode e = JSON.readTree(err.body()).get("error");
    assertThat(e.get("code").asText()).isEqualTo("overloaded");
    assertThat(e.get("message").asText()).isEqualTo("too many requests in flight; retry later");
    assertThat(Verdicts.credential(third)).as("nothing to forward with").isNull();
    denied.end(true);
    SessionRecord r = recordOf(third);
    assertThat(r.decision().outcome()).isEqualTo("deny");
    assertThat(r.decision().rule()).isEqualTo("request.max-in-flight");
    assertThat(r.response().status()).isEqualTo(503);
    assertThat(engine.exchangesInFlight()).as("a refusal takes no place").isEqualTo(2);
  }

  @Test
  void aPlaceComesFreeWhenAnExchangeEndsCompleteOrBrokenOff() {
    PamEngine engine = engine(1);
    Verdict streaming = chat(engine, "llama-3", "hi");
    ExchangeQuotaTest.respond(streaming, "text/event-stream", "data: {\"x\":1}\n\n");
    assertThat(chat(engine, "llama-3", "hi")).isInstanceOf(Verdict.Denied.class);

    Verdicts.end(streaming, false); // the client went away mid-stream
    assertThat(engine.exchangesInFlight()).isZero();
    Verdict next = chat(engine, "llama-3", "hi");
    assertThat(next).isInstanceOf(Verdict.Allowed.class);
    Verdicts.end(next, true);
    Verdicts.end(next, true); // ending twice gives back one place
    assertThat(engine.exchangesInFlight()).isZero();
    assertThat(chat(engine, "llama-3", "hi")).isInstanceOf(Verdict.Allowed.class);
  }

  @Test
  void deniedRequestsTakeNoPlace() {
    PamEngine engine = engine(1);
    for (int i = 0; i < 5; i++) {
      Verdict notEntitled = chat(engine, "gpt-4", "hi");
      assertThat(Verdicts.error(notEntitled).status()).isEqualTo(403);
    }
    assertThat(engine.exchangesInFlight()).isZero();
    assertThat(chat(engine, "llama-3", "hi")).isInstanceOf(Verdict.Allowed.class);
  }

  @Test
  void aRequestWaitingForReviewTakesNoPlaceUntilApprovedAndIsOverloadedIfNoneIsFreeThen()
      throws Exception {
    PamEngine engine = engine(1);
    Verdict.Held held = Verdicts.held(chat(engine, "llama-3", "please export all rows"));
    assertThat(engine.exchangesInFlight()).isZero();
    Verdict busy = chat(engine, "llama-3", "hi");
    assertThat(busy).as("the held request took no place").isInstanceOf(Verdict.Allowed.class);

    String id = engine.approvalService().pending(SAM).get(0).id();
    engine.approvalService().approve(id, SAM, "ok");
    Verdict result = held.result(Runnable::run).toCompletableFuture().get(5, TimeUnit.SECONDS);
    ErrorResponse err = Verdicts.error(result);
    assertThat(err).as("approved, but no place is free").isNotNull();
    assertThat(err.status()).isEqualTo(503);
    assertThat(err.headers()).containsEntry("Retry-After", "1");
    Verdicts.end(result, true);
    Verdicts.end(busy, true);
    assertThat(engine.exchangesInFlight()).isZero();
  }

  @Test
  void theBoundIsAPositiveWholeNumberWithADefault() {
    assertThat(Policy.parse(policy("  max-body: 1MiB")).request().maxInFlight())
        .isEqualTo(Policy.RequestSettings.DEFAULT_MAX_IN_FLIGHT)
        .isEqualTo(10_000);
    assertThatThrownBy(() -> Policy.parse(policy("  max-in-flight: 0")))
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("request.max-in-flight: must be > 0, was 0");
    assertThatThrownBy(() -> Policy.parse(policy("  max-in-flight: lots")))
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("request.max-in-flight: expected a whole number");
  }
}
