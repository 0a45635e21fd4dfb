package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A client that stops reading a stream right after its terminal event ({@code data: [DONE]}),
 * as the SDKs do, got the whole answer: the record says {@code complete: true}. Stopping anywhere
 * else is incomplete.
 */
class StreamTerminalEventTest {
  private static final String CHAT =
      "{\"model\":\"llama-3\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  private final List<SessionRecord> records = new ArrayList<>();

  /** One exchange whose client got {@code pieces} and then went away (end(false)). */
  private SessionRecord stoppedAfter(String... pieces) throws Exception {
    try (PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(PamEngineTest.policy("")))
            .recorder(records::add)
            .build()) {
      byte[] body = CHAT.getBytes(StandardCharsets.UTF_8);
      Verdict v =
          engine.begin(
              new RequestHead(
                  "POST",
                  "/v1/chat/completions",
                  null,
                  Map.of("Authorization", List.of("Bearer " + PamEngineTest.KEY)),
                  "127.0.0.1"),
              new ByteArrayInputStream(body),
              body.length);
      Verdict.Allowed allowed = (Verdict.Allowed) v;
      ResponsePlan.Relay relay =
          (ResponsePlan.Relay)
              allowed.respond(200, Map.of("Content-Type", List.of("text/event-stream")));
      for (String piece : pieces) {
        byte[] b = piece.getBytes(StandardCharsets.UTF_8);
        relay.delivered(b, 0, b.length);
      }
      allowed.end(false);
    }
    assertThat(records).hasSize(1);
    return records.get(0);
  }

  private static String delta(String text) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + text + "\"}}]}\n\n";
  }

  @Test
  void stoppingAfterTheTerminalEventIsComplete() throws Exception {
    assertThat(
            stoppedAfter(delta("Hello"), delta(" world"), "data: [DONE]\n\n").response().complete())
        .isTrue();
  }

  @Test
  void theTerminalEventSplitAcrossDeliveriesAndWithCrLfCounts() throws Exception {
    assertThat(
            stoppedAfter(delta("Hello"), "da", "ta: [DO", "NE]\r\n", "\r\n").response().complete())
        .isTrue();
  }

  @Test
  void stoppingBeforeItOrInsideItIsIncomplete() throws Exception {
    assertThat(stoppedAfter(delta("Hello")).response().complete()).isFalse();
    records.clear();
    assertThat(stoppedAfter(delta("Hello"), "data: [DONE]\n").response().complete())
        .as("the event is not ended")
        .isFalse();
    records.clear();
    assertThat(stoppedAfter(delta("[DONE]")).response().complete())
        .as("[DONE] inside a delta is text")
        .isFalse();
  }
}
