package dev.inferpam.core;

import static dev.inferpam.core.ExchangeRecordingTest.sha256Hex;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.core.internal.recording.RecordCodec;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The exact values of an exchange's credentials (the injected upstream credential, the caller's
 * own key) never reach the caller or the record, whether or not the response is masked.
 */
class ExchangeCredentialEchoTest {
  static final String KEY = "svc-key-0001-abcdef";
  static final String AUDITOR_KEY = "auditor-key-0002-abcdef";
  static final String UPSTREAM = "sk-upstream/0123456789abcdef";

  final CapturingRecorder recorder = new CapturingRecorder();

  static String policy(boolean masking, String bodies) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: svc, sha256: %s, groups: [ml]}
            - {name: auditor, sha256: %s, groups: [ml, auditors]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        %s
        recording:
          directory: /nonexistent/never-opened
          bodies: %s
          durability: batched
        """
        .formatted(
            sha256Hex(KEY.getBytes(StandardCharsets.UTF_8)),
            sha256Hex(AUDITOR_KEY.getBytes(StandardCharsets.UTF_8)),
            masking ? "masking:\n  detectors: [email]\n  exempt-groups: [auditors]" : "",
            bodies);
  }

  PamEngine engine(boolean masking, String bodies, boolean upstreamCredential) {
    PamEngine.Builder b =
        PamEngine.builder().policy(Policy.parse(policy(masking, bodies))).recorder(recorder);
    if (upstreamCredential)
      b.credentialProvider(() -> new Credential("Authorization", "Bearer " + UPSTREAM));
    return b.build();
  }

  static Verdict call(PamEngine engine, String path, String key, String body) {
    Map<String, List<String>> headers = new HashMap<>();
    headers.put("Content-Type", List.of("application/json"));
    headers.put("X-Note", List.of("mine is " + key));
    if (key != null) headers.put("X-Api-Key", List.of(key));
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead("POST", path, null, headers, "127.0.0.1"),
        new ByteArrayInputStream(bytes),
        bytes.length);
  }

  /** What an echoing upstream answers: the request's headers in its body. */
  static String echo(String key) {
    return "{\"headers\":{\"authorization\":\"Bearer "
        + UPSTREAM.replace("/", "\\/")
        + "\",\"x-api-key\":\""
        + key
        + "\"},\"raw\":\""
        + UPSTREAM
        + "\"}";
  }

  static String deliver(ResponsePlan.Relay ex, String body, int step) throws IOException {
    ResponseMasking masking = ex.masking();
    ByteArrayOutputStream client = new ByteArrayOutputStream();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    for (int off = 0; off < bytes.length; off += step) {
      byte[] out = masking.push(bytes, off, Math.min(step, bytes.length - off));
      client.write(out);
      ex.delivered(out, 0, out.length);
    }
    byte[] tail = masking.finish();
    client.write(tail);
    ex.delivered(tail, 0, tail.length);
    return client.toString(StandardCharsets.UTF_8);
  }

  @ParameterizedTest
  @ValueSource(strings = {"masked,svc", "none-configured,svc", "masked,auditor"})
  void anEchoedCredentialReachesNeitherTheCallerNorTheRecord(String setup) throws Exception {
    boolean masking = setup.startsWith("masked");
    String key = setup.endsWith("auditor") ? AUDITOR_KEY : KEY;
    PamEngine engine = engine(masking, "full", true);
    Verdict ex =
        call(
            engine,
            "/v1/chat/completions",
            key,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"my key is "
                + key
                + "\"}]}");
    Verdict.Allowed allowed = Verdicts.allowed(ex);
    assertThat(allowed.forward().removeHeaders())
        .as("the response is rewritten")
        .contains("accept-encoding");
    ResponsePlan.Relay relay =
        Verdicts.relay(allowed, 200, Map.of("Content-Type", List.of("application/json")));

    assertThat(relay.header("X-Echo-Authorization", "Bearer " + UPSTREAM)).doesNotContain(UPSTREAM);
    assertThat(relay.header("X-Echo-Key", key)).isEqualTo(redacted(key.length()));
    assertThat(relay.header("X-" + key, "1")).as("a name holding one: dropped").isNull();
    assertThat(relay.header("Content-Type", "application/json")).isEqualTo("application/json");
    assertThat(allowed.responseHeader("X-Echo-Key", key))
        .as("the same before the response")
        .isEqualTo(redacted(key.length()));

    String delivered = deliver(relay, echo(key), 3); // split inside every value
    Verdicts.end(ex, true);

    assertThat(delivered).doesNotContain(UPSTREAM).doesNotContain("0123456789").doesNotContain(key);
    assertThat(delivered).contains("\"raw\":\"[REDACTED:credential*******]\"");
    SessionRecord r = recorder.records.get(0);
    String line = RecordCodec.encode(r, RecordCodec.GENESIS); // the record line as stored
    assertThat(line).doesNotContain(key).doesNotContain(UPSTREAM).doesNotContain("0123456789");
    assertThat(r.request().body()).contains("my key is " + redacted(key.length()));
    assertThat(r.request().headers().get("x-note"))
        .containsExactly("mine is " + redacted(key.length()));
    assertThat(r.response().masked()).containsEntry("credential", 3);
  }

  /** The documented replacement of a value of {@code n} ASCII chars: the label fitted to n. */
  static String redacted(int n) {
    return n >= 21
        ? "[REDACTED:credential" + "*".repeat(n - 21) + "]"
        : "[" + "*".repeat(n - 2) + "]";
  }

  @Test
  void theRecordedPathHoldsNoCredential() {
    Verdict ex =
        call(
            engine(false, "full", true),
            "/v1/chat/completions/" + KEY,
            KEY,
            "{\"model\":\"llama-3\"}");
    assertThat(ex.toString()).doesNotContain(KEY);
    if (ex instanceof Verdict.Allowed allowed) {
      assertThat(allowed.forward().toString()).doesNotContain(KEY).doesNotContain(UPSTREAM);
    }
    Verdicts.end(ex, true);
    assertThat(recorder.records.get(0).request().path()).doesNotContain(KEY);
  }

  @Test
  void anExchangeWithNoCredentialToLookForPaysNothing() {
    // A caller identified by a key too short to look for, and no upstream credential.
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy(false, "full")))
            .recorder(recorder)
            .identityResolver(
                request ->
                    "short".equals(request.header("x-api-key"))
                        ? java.util.Optional.of(
                            new dev.inferpam.api.Principal(
                                "short-key",
                                java.util.Set.of("ml"),
                                dev.inferpam.api.Principal.VIA_API_KEY,
                                null,
                                Map.of()))
                        : java.util.Optional.empty())
            .build();
    Map<String, List<String>> headers = new HashMap<>();
    headers.put("X-Api-Key", List.of("short"));
    byte[] body = "{\"model\":\"llama-3\"}".getBytes(StandardCharsets.UTF_8);
    Verdict ex =
        engine.begin(
            new RequestHead("POST", "/v1/chat/completions", null, headers, "127.0.0.1"),
            new ByteArrayInputStream(body),
            body.length);
    Verdict.Allowed allowed = Verdicts.allowed(ex);
    assertThat(allowed.forward().removeHeaders())
        .as("not rewritten")
        .doesNotContain("accept-encoding");
    assertThat(allowed.responseHeader("X-Echo", "short")).isEqualTo("short");
    assertThat(
            Verdicts.relay(allowed, 200, Map.of("Content-Type", List.of("application/json")))
                .masking())
        .as("nothing to scan the body for")
        .isNull();
    allowed.end(true);
  }
}
