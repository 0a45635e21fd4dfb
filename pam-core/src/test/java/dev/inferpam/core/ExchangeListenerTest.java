package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Masker;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The events an {@link ExchangeListener} hears, and their order, for every way an exchange goes:
 * allowed, denied, held then approved, a masked stream, an upstream that does not answer, a
 * recorder that refuses; and that a listener that throws changes nothing.
 */
class ExchangeListenerTest {
  static final String KEY = "svc-key-0123456789";
  static final String CHAT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  final MutableClock clock = new MutableClock(Instant.parse("2026-11-28T22:00:00Z"));
  final CapturingRecorder recorder = new CapturingRecorder();
  final List<String> events = new CopyOnWriteArrayList<>();
  final List<ExchangeInfo> seen = new CopyOnWriteArrayList<>();
  InProcessApprovalService service;

  final ExchangeListener listener =
      new ExchangeListener() {
        @Override
        public void decided(ExchangeInfo exchange, Decision decision) {
          seen.add(exchange);
          events.add(
              "decided "
                  + (decision instanceof Decision.Deny d
                      ? "Deny " + d.code()
                      : decision.getClass().getSimpleName()));
        }

        @Override
        public void forwarded(ExchangeInfo exchange) {
          events.add("forwarded");
        }

        @Override
        public void firstByte(ExchangeInfo exchange, int status) {
          events.add("firstByte " + status);
        }

        @Override
        public void masked(ExchangeInfo exchange, Map<String, Integer> counts) {
          events.add("masked " + counts);
        }

        @Override
        public void recorded(ExchangeInfo exchange) {
          events.add("recorded");
        }

        @Override
        public void failed(ExchangeInfo exchange, Failure failure) {
          events.add("failed " + failure);
        }

        @Override
        public void ended(ExchangeInfo exchange, boolean complete) {
          events.add("ended " + complete);
        }
      };

  @AfterEach
  void close() {
    if (service != null) service.close();
  }

  static String policy(String extra) throws Exception {
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        """
            .formatted(ExchangeRecordingTest.sha256Hex(KEY.getBytes(StandardCharsets.UTF_8)))
        + extra;
  }

  PamEngine engine(String extra, ExchangeListener l) throws Exception {
    Policy p = Policy.parse(policy(extra));
    PamEngine.Builder b =
        PamEngine.builder()
            .policy(p)
            .clock(clock)
            .recorder(recorder)
            .eventListener(l)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"));
    if (p.approval() != null) {
      service =
          InProcessApprovalService.builder()
              .settings(p.approval())
              .clock(clock)
              .manualExpiry()
              .build();
      b.approvalService(service);
    }
    return b.build();
  }

  static Verdict call(PamEngine engine, String key, String body) {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    Map<String, List<String>> headers =
        key == null
            ? Map.of("Content-Type", List.of("application/json"))
            : Map.of(
                "Content-Type",
                List.of("application/json"),
                "Authorization",
                List.of("Bearer " + key));
    return engine.begin(
        new RequestHead("POST", "/v1/chat/completions", null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  /** What an adapter does with an allowed request: forward, relay the answer through the plan, end. */
  static void relay(Verdict.Allowed allowed, String type, String body) throws IOException {
    allowed.forward();
    ResponsePlan.Relay relay = Verdicts.relay(allowed, 200, Map.of("Content-Type", List.of(type)));
    ResponseMasking masking = relay.masking();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    for (int off = 0; off < bytes.length; off += 10) {
      int n = Math.min(10, bytes.length - off);
      byte[] out =
          masking == null
              ? java.util.Arrays.copyOfRange(bytes, off, off + n)
              : masking.push(bytes, off, n);
      relay.delivered(out, 0, out.length);
    }
    if (masking != null) {
      byte[] tail = masking.finish();
      relay.delivered(tail, 0, tail.length);
    }
    allowed.end(true);
  }

  @Test
  void anAllowedExchange() throws Exception {
    Verdict.Allowed allowed = Verdicts.allowed(call(engine("", listener), KEY, CHAT));
    relay(allowed, "application/json", "{\"choices\":[]}");
    assertThat(events)
        .containsExactly("decided Allow", "forwarded", "firstByte 200", "recorded", "ended true");
    assertThat(seen)
        .singleElement()
        .satisfies(
            info -> {
              assertThat(info.id()).isEqualTo(allowed.id());
              assertThat(info.method()).isEqualTo("POST");
              assertThat(info.principal().subject()).isEqualTo("svc");
              assertThat(info.operation()).isEqualTo("chat");
              assertThat(info.model()).isEqualTo("llama-3");
              assertThat(info.started()).isEqualTo(clock.instant());
            });
  }

  @Test
  void aDeniedExchange() throws Exception {
    Verdict.Denied denied = Verdicts.denied(call(engine("", listener), null, CHAT));
    assertThat(events).containsExactly("decided Deny unauthenticated");
    denied.end(true);
    assertThat(events).containsExactly("decided Deny unauthenticated", "recorded", "ended true");
    assertThat(seen.get(0).principal()).isNull();
  }

  @Test
  void aHeldExchangeThenApproved() throws Exception {
    PamEngine engine =
        engine(
            "approval:\n  reviewers: [sec]\n  rules:\n    - {name: all, models: [\"llama-*\"]}\n",
            listener);
    Verdict.Held held = Verdicts.held(call(engine, KEY, CHAT));
    assertThat(events).containsExactly("decided RequireApproval");

    List<Runnable> adapterThread = new CopyOnWriteArrayList<>();
    Executor queued = adapterThread::add;
    AtomicReference<Verdict> result = new AtomicReference<>();
    held.result(queued).thenAccept(result::set);
    service.approve(
        service.pending().get(0).id(),
        new dev.inferpam.api.Principal("sam", java.util.Set.of("sec"), "oidc", null, Map.of()),
        "ok");
    assertThat(events)
        .as("nothing decided on the reviewer's thread")
        .containsExactly("decided RequireApproval");
    assertThat(adapterThread).hasSize(1);
    adapterThread.get(0).run();

    Verdict.Allowed allowed = Verdicts.allowed(result.get());
    relay(allowed, "application/json", "{\"choices\":[]}");
    assertThat(events)
        .containsExactly(
            "decided RequireApproval",
            "decided Allow",
            "forwarded",
            "firstByte 200",
            "recorded",
            "ended true");
    assertThat(seen).hasSize(2).allSatisfy(info -> assertThat(info).isSameAs(seen.get(0)));
  }

  @Test
  void aHeldExchangeTheCallerGaveUpOn() throws Exception {
    PamEngine engine =
        engine(
            "approval:\n  reviewers: [sec]\n  rules:\n    - {name: all, models: [\"llama-*\"]}\n",
            listener);
    Verdict.Held held = Verdicts.held(call(engine, KEY, CHAT));
    assertThat(held.await(Duration.ZERO)).isNull();
    held.cancel();
    assertThat(events)
        .containsExactly(
            "decided RequireApproval", "decided Deny approval_expired", "recorded", "ended false");
  }

  @Test
  void aHeldExchangeApprovedAsTheCallerGaveUpHearsOneFinalDecision() throws Exception {
    PamEngine engine =
        engine(
            "approval:\n  reviewers: [sec]\n  rules:\n    - {name: all, models: [\"llama-*\"]}\n",
            listener);
    Verdict.Held held = Verdicts.held(call(engine, KEY, CHAT));
    // The reviewer approves; before the caller settles, it stops waiting.
    service.approve(
        service.pending().get(0).id(),
        new dev.inferpam.api.Principal("sam", java.util.Set.of("sec"), "oidc", null, Map.of()),
        "ok");
    Verdict.Denied denied = held.cancel();
    assertThat(denied.decision().code()).isEqualTo("approval_expired");
    assertThat(events)
        .as("the approval the caller never used is not announced as a decision")
        .containsExactly(
            "decided RequireApproval", "decided Deny approval_expired", "recorded", "ended false");
  }

  @Test
  void aMaskedStream() throws Exception {
    Verdict.Allowed allowed =
        Verdicts.allowed(call(engine("masking:\n  detectors: [email]\n", listener), KEY, CHAT));
    relay(
        allowed,
        "text/event-stream",
        "data: {\"choices\":[{\"delta\":{\"content\":\"mail jane.doe@example.com\"}}]}\n\ndata: [DONE]\n\n");
    assertThat(events)
        .containsExactly(
            "decided Allow",
            "forwarded",
            "firstByte 200",
            "masked {email=1}",
            "recorded",
            "ended true");
  }

  @Test
  void anUpstreamThatGaveNoAnswer() throws Exception {
    Verdict.Allowed allowed = Verdicts.allowed(call(engine("", listener), KEY, CHAT));
    allowed.forward();
    allowed.upstreamFailed();
    allowed.end(false);
    assertThat(events)
        .containsExactly(
            "decided Allow", "forwarded", "failed UPSTREAM", "recorded", "ended false");
    assertThat(recorder.records.get(0).response().status()).isEqualTo(502);
  }

  @Test
  void aMaskerThatFailsMidStream() throws Exception {
    Masker failing =
        () ->
            new Masker.Session() {
              @Override
              public String push(String text) {
                throw new IllegalStateException("broken");
              }

              @Override
              public String finish() {
                return "";
              }
            };
    Policy p = Policy.parse(policy(""));
    PamEngine engine =
        PamEngine.builder()
            .policy(p)
            .recorder(recorder)
            .masker(failing)
            .eventListener(listener)
            .build();
    Verdict.Allowed allowed = Verdicts.allowed(call(engine, KEY, CHAT));
    ResponseMasking masking =
        Verdicts.relay(allowed, 200, Map.of("Content-Type", List.of("text/plain"))).masking();
    byte[] text = "some text".getBytes(StandardCharsets.UTF_8);
    assertThatThrownBy(() -> masking.push(text, 0, text.length)).isInstanceOf(IOException.class);
    allowed.end(false);
    assertThat(events)
        .containsExactly(
            "decided Allow", "firstByte 200", "failed MASKING", "recorded", "ended false");
  }

  @Test
  void aRecorderThatRefuses() throws Exception {
    recorder.admitFailure = new IOException("full");
    Verdict.Denied denied = Verdicts.denied(call(engine("", listener), KEY, CHAT));
    assertThat(denied.decision().code()).isEqualTo("recording_unavailable");
    denied.end(true);
    assertThat(events)
        .containsExactly("decided Deny recording_unavailable", "failed RECORDING", "ended true");
  }

  @Test
  void aListenerThatThrowsChangesNothing() throws Exception {
    ExchangeListener throwing =
        new ExchangeListener() {
          @Override
          public void decided(ExchangeInfo exchange, Decision decision) {
            throw new IllegalStateException("metrics down");
          }

          @Override
          public void ended(ExchangeInfo exchange, boolean complete) {
            throw new IllegalStateException("metrics down");
          }
        };
    Verdict.Allowed allowed = Verdicts.allowed(call(engine("", throwing), KEY, CHAT));
    relay(allowed, "application/json", "{\"choices\":[]}");
    assertThat(recorder.records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("allow");
              assertThat(r.response().status()).isEqualTo(200);
            });
  }

  @Test
  void theBuilderTakesOneListener() {
    PamEngine.Builder b = PamEngine.builder().eventListener(listener);
    assertThatThrownBy(() -> b.eventListener(listener))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("eventListener already set");
    assertThatThrownBy(() -> PamEngine.builder().eventListener(null))
        .isInstanceOf(NullPointerException.class);
  }
}
