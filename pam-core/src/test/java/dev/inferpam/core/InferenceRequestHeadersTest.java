package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.InferenceRequest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class InferenceRequestHeadersTest {

  @Test
  void namesAreLowerCasedValuesOfOneNameJoinedAndTheResultIsReadOnly() {
    Map<String, List<String>> raw = new LinkedHashMap<>();
    raw.put("X-Trace", new ArrayList<>(List.of("a")));
    raw.put("Content-Type", List.of("application/json"));
    raw.put("x-trace", List.of("b"));
    Map<String, List<String>> headers = InferenceRequest.normalize(raw);

    assertThat(headers)
        .containsExactly(
            Map.entry("content-type", List.of("application/json")),
            Map.entry("x-trace", List.of("a", "b")));
    assertThat(headers)
        .isEqualTo(
            Map.of("content-type", List.of("application/json"), "x-trace", List.of("a", "b")));
    raw.get("X-Trace").add("c"); // a copy: later changes to the input do not show
    assertThat(headers.get("x-trace")).containsExactly("a", "b");
    assertThatThrownBy(() -> headers.put("x", List.of()))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> headers.get("x-trace").add("d"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> headers.entrySet().clear())
        .isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void headersNormalizedOnceAreNotCopiedAgain() {
    RequestHead head =
        new RequestHead(
            "POST",
            "/v1/chat/completions",
            null,
            Map.of("Authorization", List.of("Bearer x")),
            null);
    assertThat(InferenceRequest.normalize(head.headers())).isSameAs(head.headers());
    InferenceRequest request =
        new InferenceRequest("POST", "/v1/chat/completions", null, head.headers(), null, null);
    assertThat(request.headers()).isSameAs(head.headers());
    assertThat(request.header("AUTHORIZATION")).isEqualTo("Bearer x");
  }
}
