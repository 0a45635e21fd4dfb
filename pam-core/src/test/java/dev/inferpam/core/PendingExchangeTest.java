package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.Decision;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Identity is decided from the head before any body byte is read, and bodies are read under
 * {@code request.body-timeout}, {@code request.min-body-rate} and {@code request.max-body}.
 */
class PendingExchangeTest {
  private static final String CHAT =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  private final MutableClock clock = new MutableClock(Instant.parse("2026-03-01T10:00:00Z"));
  private final List<SessionRecord> records = new ArrayList<>();

  private PamEngine engine(String requestSection) throws Exception {
    return PamEngine.builder()
        .policy(Policy.parse(PamEngineTest.policy(requestSection)))
        .recorder(records::add)
        .clock(clock)
        .build();
  }

  private static RequestHead head(String key) {
    return new RequestHead(
        "POST",
        "/v1/chat/completions",
        null,
        key == null ? Map.of() : Map.of("Authorization", List.of("Bearer " + key)),
        "127.0.0.1");
  }

  /** A body stream that counts reads: an unauthenticated request must cause none. */
  private static final class CountingStream extends InputStream {
    final AtomicInteger reads = new AtomicInteger();

    @Override
    public int read() {
      reads.incrementAndGet();
      return 'x';
    }

    @Override
    public int read(byte[] b, int off, int len) {
      reads.incrementAndGet();
      b[off] = 'x';
      return 1;
    }
  }

  @Test
  void anUnauthenticatedRequestIsRefusedWithoutReadingAByteOfItsBody() throws Exception {
    CountingStream body = new CountingStream();
    Verdict.Denied e = Verdicts.denied(engine("").begin(head(null), body, 1_000));
    assertThat(e.decision()).isInstanceOf(Decision.Deny.class);
    assertThat(e.bodyLeftUnread()).isTrue();
    assertThat(e.error().status()).isEqualTo(401);
    assertThat(new String(e.error().body(), StandardCharsets.UTF_8))
        .contains("\"code\":\"unauthenticated\"");
    assertThat(body.reads).hasValue(0);
    e.end(true);
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.request().bytes()).isEqualTo(1_000);
              assertThat(r.request().body()).isNull();
            });
  }

  @Test
  void theHeadDecidesUnauthenticatedAndBadPathAtOnceAndAnIdentifiedCallerGoesOnToItsBody()
      throws Exception {
    PamEngine engine = engine("");
    PendingRequest anonymous = engine.beginHead(head("wrong-key"), 50);
    assertThat(anonymous.decided().error().status()).isEqualTo(401);
    assertThat(anonymous.decided().bodyLeftUnread()).isTrue();
    assertThatThrownBy(() -> anonymous.accept(new byte[1], 0, 1))
        .isInstanceOf(IllegalStateException.class);
    PendingRequest badPath =
        engine.beginHead(new RequestHead("POST", "/v1/%2e%2e/chat", null, Map.of(), null), 5);
    assertThat(badPath.decided().error().status()).isEqualTo(400);

    PendingRequest pending = engine.beginHead(head(PamEngineTest.KEY), CHAT.length());
    assertThat(pending.decided()).isNull();
    byte[] bytes = CHAT.getBytes(StandardCharsets.UTF_8);
    assertThat(pending.accept(bytes, 0, 10)).isTrue();
    assertThat(pending.accept(bytes, 10, bytes.length - 10)).isTrue();
    Verdict.Allowed e = Verdicts.allowed(pending.finish());
    assertThat(e.forward().body()).isEqualTo(bytes);
    assertThat(e.principal().subject()).isEqualTo("svc");
    assertThat(pending.finish()).as("made once").isNull();
    assertThat(pending.timedOut()).isNull();
  }

  @Test
  void aBodyNotEndedWithinTheBodyTimeoutIs408BodyTimeoutAndRecordedWithTheCaller()
      throws Exception {
    PendingRequest pending =
        engine("request:\n  body-timeout: 10s\n").beginHead(head(PamEngineTest.KEY), 100);
    assertThat(pending.timeLeft()).isEqualTo(Duration.ofSeconds(10));
    clock.advance(Duration.ofSeconds(4));
    assertThat(pending.timeLeft()).isEqualTo(Duration.ofSeconds(6));
    Verdict.Denied e = Verdicts.denied(pending.timedOut());
    assertThat(e.error().status()).isEqualTo(408);
    String body = new String(e.error().body(), StandardCharsets.UTF_8);
    assertThat(body).contains("\"code\":\"body_timeout\"", "request body not received within 10s");
    assertThat(e.bodyLeftUnread()).isTrue();
    e.end(false);
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.principal().subject()).isEqualTo("svc");
              assertThat(r.decision().rule()).isEqualTo("request.body-timeout");
            });
  }

  @Test
  void bytesArrivingAfterTheDeadlineAreRefusedToo() throws Exception {
    PendingRequest pending =
        engine("request:\n  body-timeout: 10s\n").beginHead(head(PamEngineTest.KEY), -1);
    clock.advance(Duration.ofMillis(10_001));
    assertThat(pending.accept(new byte[] {'{'}, 0, 1)).isFalse();
    assertThat(pending.finish().decision())
        .isInstanceOfSatisfying(
            Decision.Deny.class, d -> assertThat(d.code()).isEqualTo("body_timeout"));
  }

  @Test
  void afterTheGraceABodyBelowTheMinimumRateIsRefused408() throws Exception {
    // 1 KiB/s after 5 s: at 7 s at least 2048 bytes must be in.
    PendingRequest slow =
        engine("request:\n  min-body-rate: 1KiB\n").beginHead(head(PamEngineTest.KEY), 100_000);
    byte[] chunk = new byte[1_000];
    clock.advance(Duration.ofSeconds(5));
    assertThat(slow.accept(chunk, 0, chunk.length)).as("within the grace").isTrue();
    clock.advance(Duration.ofSeconds(2));
    assertThat(slow.accept(chunk, 0, chunk.length)).as("2000 of 2048 bytes").isFalse();
    Verdict.Denied e = Verdicts.denied(slow.finish());
    assertThat(e.error().status()).isEqualTo(408);
    assertThat(new String(e.error().body(), StandardCharsets.UTF_8))
        .contains("\"code\":\"body_timeout\"", "request body arrived slower than 1024 bytes/s");

    // A small body that arrives whole after the grace is not held to more than its length.
    PendingRequest small =
        engine("request:\n  min-body-rate: 1KiB\n")
            .beginHead(head(PamEngineTest.KEY), CHAT.length());
    clock.advance(Duration.ofSeconds(8));
    byte[] bytes = CHAT.getBytes(StandardCharsets.UTF_8);
    assertThat(small.accept(bytes, 0, bytes.length)).isTrue();
    assertThat(small.finish()).isInstanceOf(Verdict.Allowed.class);
  }

  @Test
  void aBodyOverMaxBodyIsRefusedAtTheFirstByteOverAndNeverReadFurther() throws Exception {
    PamEngine engine = engine("request:\n  max-body: 100\n");
    CountingStream endless = new CountingStream();
    Verdict.Denied e = Verdicts.denied(engine.begin(head(PamEngineTest.KEY), endless, -1));
    assertThat(e.error().status()).isEqualTo(413);
    assertThat(endless.reads).as("one byte per read here: exactly limit + 1 reads").hasValue(101);
    PendingRequest declared = engine.beginHead(head(PamEngineTest.KEY), 101);
    assertThat(declared.decided().error().status()).isEqualTo(413);
  }
}
