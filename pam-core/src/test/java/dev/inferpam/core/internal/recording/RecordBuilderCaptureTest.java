package dev.inferpam.core.internal.recording;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Decision;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The response a record keeps, and the token usage read from it, for a long stream delivered in
 * pieces of every size (across the capture's chunks): the stored text is the body byte for byte,
 * and the usage of its last event is found whether it was asked for midway or only at the end.
 */
class RecordBuilderCaptureTest {

  private static final String USAGE_EVENT =
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":230,\"completion_tokens\":400,"
          + "\"total_tokens\":630}}\n\n";

  private static String stream(int events, String last) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < events; i++) {
      s.append("data: {\"id\":\"c-")
          .append(i)
          .append("\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word ")
          .append(i)
          .append(" é \"},\"finish_reason\":null}]}\n\n");
    }
    return s.append(last).append("data: [DONE]\n\n").toString();
  }

  private static RecordBuilder builder() {
    RequestHead head =
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of("Content-Type", List.of("application/json")),
            "127.0.0.1");
    RecordBuilder b =
        new RecordBuilder(head, null, 0, Set.of(), Policy.Bodies.FULL, Masker.IDENTITY);
    b.responseStarted(200, "text/event-stream; charset=utf-8");
    return b;
  }

  /** Delivers {@code body} in pieces of 1, 2, ... 700 bytes, over and over. */
  private static void deliver(RecordBuilder b, byte[] body, int from, int to) {
    int size = 1;
    for (int at = from; at < to; ) {
      int n = Math.min(size, to - at);
      b.responseBytes(body, at, n);
      at += n;
      size = size % 700 + 37;
    }
  }

  private static SessionRecord.Response built(RecordBuilder b) {
    return b.build(
            "id-1",
            Instant.EPOCH,
            5,
            new Principal("alice", Set.of(), Principal.VIA_API_KEY, null, null),
            "chat",
            "m",
            new Decision.Allow("entitlements[0]", Set.of()),
            true)
        .response();
  }

  @Test
  void aLongStreamIsKeptWholeAndItsUsageFoundAtTheEnd() {
    String text = stream(150, USAGE_EVENT);
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    RecordBuilder b = builder();
    deliver(b, body, 0, body.length);
    assertThat(b.finalUsage())
        .containsEntry("prompt_tokens", 230L)
        .containsEntry("completion_tokens", 400L)
        .containsEntry("total_tokens", 630L);
    SessionRecord.Response r = built(b);
    assertThat(r.body()).isEqualTo(text);
    assertThat(r.bytes()).isEqualTo(body.length);
    assertThat(r.usage()).containsEntry("total_tokens", 630L);
  }

  @Test
  void usageAskedForMidwayAndAgainAtTheEndIsFoundWhereverTheFirstReadStopped() {
    String text = stream(150, USAGE_EVENT);
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    int usageAt = text.indexOf("\"usage\"");
    // the first read stops before the usage event, inside its key, and inside its value
    for (int stop : new int[] {usageAt - 40, usageAt + 3, usageAt + 20, body.length - 1}) {
      RecordBuilder b = builder();
      deliver(b, body, 0, stop);
      Map<String, Long> midway = b.usage();
      if (stop < text.indexOf("}}", usageAt)) {
        assertThat(midway).as("before the usage event's end, stopped at %d", stop).isEmpty();
      } else {
        assertThat(midway).as("stopped at %d", stop).containsEntry("total_tokens", 630L);
      }
      deliver(b, body, stop, body.length);
      assertThat(b.finalUsage()).as("stopped at %d", stop).containsEntry("total_tokens", 630L);
      assertThat(built(b).body()).isEqualTo(text);
    }
  }

  @Test
  void aStreamWithoutUsageHasNone() {
    String text = stream(150, "");
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    RecordBuilder b = builder();
    deliver(b, body, 0, body.length);
    assertThat(b.finalUsage()).isEmpty();
    assertThat(built(b).body()).isEqualTo(text);
  }
}
