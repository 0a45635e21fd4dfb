package dev.inferpam.core;

import static dev.inferpam.core.ExchangeQuotaTest.JSON;
import static dev.inferpam.core.ExchangeQuotaTest.sha256;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeRecordingTest.CapturingRecorder;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.testsupport.MutableClock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code request.error-shape} as callers see it: by default one shape everywhere; with
 * {@code native}, Ollama's string {@code error} on its paths (denials, blocked endpoints, and the
 * adapter's own errors through {@link Verdict.Allowed#error}), the record holding what was sent.
 */
class ExchangeErrorShapeTest {
  static final String KEY = "alice-key";

  final MutableClock clock = new MutableClock(Instant.parse("2026-12-07T10:00:00Z"));
  final CapturingRecorder rec = new CapturingRecorder();
  final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : toClose) c.close();
  }

  PamEngine engine(String request) {
    String policy =
        """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml]}
        entitlements:
          - groups: [ml]
            models: ["llama-*"]
            operations: [chat]
        block:
          presets: [ollama-admin]
        parameters:
          presets: [extraction]
        %s
        """
            .formatted(sha256(KEY), request);
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy))
            .clock(clock)
            .recorder(rec)
            .credentialProvider(() -> new Credential("Authorization", "Bearer up"))
            .build();
    toClose.add(engine);
    return engine;
  }

  static final String LOGPROBS =
      "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true}";

  JsonNode deniedBody(Verdict v, int status) throws Exception {
    Verdict.Denied denied = Verdicts.denied(v);
    ErrorResponse err = denied.error();
    assertThat(err.status()).isEqualTo(status);
    denied.end(true);
    SessionRecord r =
        rec.records.stream().filter(x -> x.id().equals(v.id())).findFirst().orElseThrow();
    assertThat(r.response().body())
        .as("the record keeps the body as sent")
        .isEqualTo(err.bodyText());
    return JSON.readTree(err.body());
  }

  @Test
  void nativeShapeOnOllamaPathsPutsTheMessageInErrorAndTheCodeBesideIt() throws Exception {
    PamEngine engine = engine("request: {error-shape: native}");
    JsonNode chat = deniedBody(ExchangeQuotaTest.post(engine, "/api/chat", KEY, LOGPROBS), 403);
    assertThat(chat.get("error").asText())
        .isEqualTo("parameter \"logprobs\" is denied by policy (preset extraction)");
    assertThat(chat.get("code").asText()).isEqualTo("parameter_denied");
    assertThat(chat.get("type").asText()).isEqualTo("pam_error");
    assertThat(chat.get("request_id").asText()).isNotBlank();

    JsonNode pull =
        deniedBody(
            ExchangeQuotaTest.post(engine, "/api/pull", KEY, "{\"model\":\"llama-3\"}"), 403);
    assertThat(pull.get("error").isTextual()).isTrue();
    assertThat(pull.get("code").asText()).isEqualTo("blocked");

    // OpenAI-compatible paths keep the common shape, also under native.
    JsonNode openai =
        deniedBody(ExchangeQuotaTest.post(engine, ExchangeQuotaTest.CHAT, KEY, LOGPROBS), 403);
    assertThat(openai.get("error").get("code").asText()).isEqualTo("parameter_denied");
  }

  @Test
  void theAdaptersOwnErrorsFollowTheShapeOfTheExchangesPath() throws Exception {
    PamEngine nativeEngine = engine("request: {error-shape: native}");
    Verdict ollama =
        ExchangeQuotaTest.post(
            nativeEngine,
            "/api/chat",
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    ErrorResponse e =
        ((Verdict.Allowed) ollama).error(502, "upstream_unavailable", "the upstream is down");
    JsonNode b = JSON.readTree(e.body());
    assertThat(e.status()).isEqualTo(502);
    assertThat(b.get("error").asText()).isEqualTo("the upstream is down");
    assertThat(b.get("code").asText()).isEqualTo("upstream_unavailable");
    assertThat(b.get("request_id").asText()).isEqualTo(ollama.id());
    Verdicts.end(ollama, true);

    PamEngine plain = engine("");
    Verdict other =
        ExchangeQuotaTest.post(
            plain,
            "/api/chat",
            KEY,
            "{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    JsonNode d =
        JSON.readTree(((Verdict.Allowed) other).error(502, "upstream_unavailable", "down").body());
    assertThat(d.get("error").get("code").asText()).isEqualTo("upstream_unavailable");
    Verdicts.end(other, true);
  }

  @Test
  void theDefaultKeepsErrorCodeOnOllamaPathsAndAnUnknownShapeIsALoadError() throws Exception {
    JsonNode b = deniedBody(ExchangeQuotaTest.post(engine(""), "/api/chat", KEY, LOGPROBS), 403);
    assertThat(b.get("error").get("code").asText()).isEqualTo("parameter_denied");
    assertThatThrownBy(() -> engine("request: {error-shape: ollama}"))
        .isInstanceOf(PolicyException.class)
        .hasMessage("request.error-shape: must be \"inferpam\" or \"native\", was \"ollama\"");
  }
}
