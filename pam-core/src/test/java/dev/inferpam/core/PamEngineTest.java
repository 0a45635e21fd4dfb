package dev.inferpam.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inferpam.api.Decision;
import dev.inferpam.api.Masker;
import dev.inferpam.api.Principal;
import dev.inferpam.core.adapter.Verdict;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PamEngineTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final String KEY = "svc-key-1";

  static String sha256(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
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
        block:
          presets: [ollama-admin, openai-admin]
          rules:
            - name: no-tokenize
              methods: ["*"]
              paths: ["/tokenize"]
        """
            .formatted(sha256(KEY))
        + extra;
  }

  static Verdict call(PamEngine engine, String method, String rawPath, String key, String body) {
    Map<String, List<String>> headers =
        key == null ? Map.of() : Map.of("Authorization", List.of("Bearer " + key));
    byte[] bytes = body == null ? null : body.getBytes(StandardCharsets.UTF_8);
    return engine.begin(
        new RequestHead(method, rawPath, null, headers, "127.0.0.1"),
        bytes == null ? null : new ByteArrayInputStream(bytes),
        bytes == null ? 0 : bytes.length);
  }

  @Test
  void loadsFromPolicyFile(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("policy.yaml");
    Files.writeString(file, policy(""));
    PamEngine engine = PamEngine.fromPolicy(file);
    Verdict ex = call(engine, "POST", "/v1/chat/completions", KEY, "{\"model\":\"llama-3\"}");
    assertThat(ex.decision()).isInstanceOf(Decision.Allow.class);
    assertThat(ex.decision().rule()).isEqualTo("entitlements[0]");
    assertThat(ex.principal().subject()).isEqualTo("svc");
    assertThat(ex.principal().via()).isEqualTo(Principal.VIA_API_KEY);
    assertThat(ex.operation()).isEqualTo("chat");
    assertThat(ex.model()).isEqualTo("llama-3");
    assertThat(Verdicts.error(ex)).isNull();
  }

  @Test
  void errorBodyHasTheSpecifiedShape() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    Verdict ex = call(engine, "POST", "/v1/chat/completions", KEY, "{\"model\":\"gpt-4o\"}");
    ErrorResponse err = Verdicts.error(ex);
    assertThat(err.status()).isEqualTo(403);
    assertThat(err.headers()).containsEntry("Content-Type", "application/json");
    JsonNode root = JSON.readTree(err.body());
    assertThat(root.size()).isEqualTo(1);
    JsonNode e = root.get("error");
    assertThat(e.properties())
        .extracting(Map.Entry::getKey)
        .containsExactly("type", "code", "message", "request_id");
    assertThat(e.get("type").asText()).isEqualTo("pam_error");
    assertThat(e.get("code").asText()).isEqualTo("not_entitled");
    assertThat(e.get("message").asText()).contains("gpt-4o");
    assertThat(e.get("request_id").asText()).isEqualTo(ex.id());
  }

  @Test
  void pathIsCheckedBeforeIdentityAndIdentityBeforeBlock() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    assertThat(code(call(engine, "POST", "/api/%2e%2e/pull", null, "{}"))).isEqualTo("bad_path");
    assertThat(code(call(engine, "POST", "/api/pull", null, "{}"))).isEqualTo("unauthenticated");
    assertThat(code(call(engine, "POST", "/api/pull", KEY, "{}"))).isEqualTo("blocked");
    // a blocked endpoint is refused as blocked even when its body is garbage
    assertThat(code(call(engine, "POST", "/api/pull", KEY, "not json"))).isEqualTo("blocked");
  }

  @Test
  void blockRulesNameTheirRule() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    Verdict ex = call(engine, "POST", "/tokenize", KEY, "{}");
    assertThat(ex.decision().rule()).isEqualTo("block.rules[0] (no-tokenize)");
    Verdict admin = call(engine, "DELETE", "/v1/models/ft-123", KEY, null);
    assertThat(code(admin)).isEqualTo("blocked");
    assertThat(((Decision.Deny) admin.decision()).message()).contains("openai-admin");
  }

  @Test
  void basePathIsHonouredForOperationsAndBlocks() throws Exception {
    PamEngine engine =
        PamEngine.builder().policy(Policy.parse(policy("request: {base-path: /openai}\n"))).build();
    assertThat(
            call(engine, "POST", "/openai/v1/chat/completions", KEY, "{\"model\":\"llama-3\"}")
                instanceof Verdict.Allowed)
        .isTrue();
    assertThat(code(call(engine, "POST", "/openai/api/pull", KEY, "{}"))).isEqualTo("blocked");
    assertThat(code(call(engine, "POST", "/openai/tokenize", KEY, "{}"))).isEqualTo("blocked");
  }

  @Test
  void customResolverRunsAfterApiKeysAndExceptionsFailClosed() throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy("")))
            .identityResolver(
                req -> {
                  if ("boom".equals(req.header("x-user")))
                    throw new IllegalStateException("secret-token-value");
                  return Optional.ofNullable(req.header("x-user"))
                      .map(u -> Principal.of(u, Set.of("ml"), "header"));
                })
            .build();
    Map<String, List<String>> h = Map.of("X-User", List.of("carol"));
    Verdict ok =
        engine.begin(
            new RequestHead("POST", "/v1/chat/completions", null, h, null),
            new ByteArrayInputStream("{\"model\":\"llama-3\"}".getBytes(StandardCharsets.UTF_8)),
            -1);
    assertThat(ok.principal().subject()).isEqualTo("carol");
    Verdict boom =
        engine.begin(
            new RequestHead(
                "POST", "/v1/chat/completions", null, Map.of("X-User", List.of("boom")), null),
            null,
            0);
    assertThat(Verdicts.error(boom).status()).isEqualTo(401);
    assertThat(Verdicts.error(boom).bodyText()).doesNotContain("secret-token-value");
  }

  @Test
  void bodyOverDeclaredLimitIsRefusedWithoutReading() throws Exception {
    PamEngine engine =
        PamEngine.builder().policy(Policy.parse(policy("request: {max-body: 100}\n"))).build();
    java.io.InputStream never =
        new java.io.InputStream() {
          @Override
          public int read() {
            throw new AssertionError("must not read");
          }
        };
    Verdict ex =
        engine.begin(
            new RequestHead("POST", "/v1/chat/completions", null, Map.of(), null), never, 101);
    assertThat(Verdicts.error(ex).status()).isEqualTo(413);
    assertThat(code(ex)).isEqualTo("body_too_large");
  }

  @Test
  void builderRefusesMissingPolicyAndSecondPolicy() throws Exception {
    assertThatThrownBy(() -> PamEngine.builder().build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("policy is required");
    Policy p = Policy.parse(policy(""));
    assertThatThrownBy(() -> PamEngine.builder().policy(p).policy(p))
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(
            () ->
                PamEngine.builder()
                    .recorder(dev.inferpam.api.Recorder.NOOP)
                    .recorder(dev.inferpam.api.Recorder.NOOP))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("recorder already set");
  }

  @Test
  void aMaskingSectionBuildsTheMaskerThatMasksResponses() throws Exception {
    PamEngine engine =
        PamEngine.builder().policy(Policy.parse(policy("masking: {detectors: [email]}\n"))).build();
    assertThat(engine.masker().mask("write to a.b@example.com")).isEqualTo("write to [EMAIL]");
    assertThat(
            Verdicts.allowed(
                    call(engine, "POST", "/v1/chat/completions", KEY, "{\"model\":\"llama-3\"}"))
                .mayChangeLength())
        .isTrue();
  }

  @Test
  void withoutAMaskingSectionNothingIsMasked() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    assertThat(engine.masker()).isSameAs(Masker.IDENTITY);
    assertThat(
            Verdicts.allowed(
                    call(engine, "POST", "/v1/chat/completions", KEY, "{\"model\":\"llama-3\"}"))
                .mayChangeLength())
        .isFalse();
  }

  @Test
  void anApprovalSectionGetsTheDefaultInProcessServiceWhichCloseShutsDown() throws Exception {
    String section =
        """
        approval:
          reviewers: [security-oncall]
          rules:
            - {name: large-generation, max-tokens-over: 8000}
        """;
    Policy p = Policy.parse(policy(section));
    PamEngine engine = PamEngine.builder().policy(p).build();
    assertThat(engine.approvalService()).isInstanceOf(InProcessApprovalService.class);
    Verdict held =
        call(
            engine,
            "POST",
            "/v1/chat/completions",
            KEY,
            "{\"model\":\"llama-3\",\"max_tokens\":9000}");
    assertThat(held).isInstanceOf(Verdict.Held.class);
    assertThat(held.decision())
        .isEqualTo(new dev.inferpam.api.Decision.RequireApproval("large-generation"));
    engine.close();
    // Closing the engine closes its own service: the waiting request is answered, not left hanging.
    Verdict result = Verdicts.held(held).await(java.time.Duration.ofSeconds(5));
    assertThat(result.decision())
        .isInstanceOfSatisfying(
            dev.inferpam.api.Decision.Deny.class,
            d -> assertThat(d.code()).isEqualTo("approval_expired"));
    // Without the section: the engine holds nothing.
    try (PamEngine plain = PamEngine.builder().policy(Policy.parse(policy(""))).build()) {
      assertThat(plain.approvalService()).isSameAs(dev.inferpam.api.ApprovalService.NONE);
    }
  }

  @Test
  void aMaskerGivenToTheBuilderWinsOverTheMaskingSection() throws Exception {
    Policy p = Policy.parse(policy("masking: {detectors: [email]}\n"));
    assertThat(PamEngine.builder().policy(p).masker(Masker.IDENTITY).build().masker())
        .isSameAs(Masker.IDENTITY);
  }

  @Test
  void aMaskingSectionThatCannotBeBuiltRefusesTheEngineNamingTheVariableNotTheKey()
      throws Exception {
    Policy p =
        Policy.parse(
            policy("masking: {strategy: hash, hash-key-from-env: INFERPAM_TEST_UNSET_MASK_KEY}\n"));
    assertThatThrownBy(() -> PamEngine.builder().policy(p).build())
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("INFERPAM_TEST_UNSET_MASK_KEY");
  }

  @Test
  void aMaxHoldBackBelowWhatADetectorNeedsRefusesTheEngine() throws Exception {
    Policy p = Policy.parse(policy("masking: {detectors: [private-key], max-hold-back: 100}\n"));
    assertThatThrownBy(() -> PamEngine.builder().policy(p).build())
        .isInstanceOf(PolicyException.class)
        .hasMessageContaining("max-hold-back")
        .hasMessageContaining("private-key");
  }

  @Test
  void exchangeIdsAreUniqueAndSortable() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    String a = call(engine, "GET", "/x", null, null).id();
    String b = call(engine, "GET", "/x", null, null).id();
    assertThat(a).isNotEqualTo(b).hasSize(26).matches("[0-9A-HJKMNP-TV-Z]{26}");
  }

  @Test
  void authenticateIdentifiesAnEndpointCallerAsTheEngineDoesOrGivesThe401ToSend() throws Exception {
    PamEngine engine = PamEngine.builder().policy(Policy.parse(policy(""))).build();
    Authentication ok =
        engine.authenticate(head(Map.of("Authorization", List.of("Bearer " + KEY))));
    assertThat(ok)
        .isInstanceOfSatisfying(
            Authentication.Authenticated.class,
            a -> assertThat(a.principal().subject()).isEqualTo("svc"));

    for (Map<String, List<String>> headers :
        List.of(
            Map.<String, List<String>>of(),
            Map.of("Authorization", List.of("Bearer wrong-key")),
            Map.of("Authorization", List.of("Bearer " + KEY), "X-Api-Key", List.of(KEY)))) {
      Authentication refused = engine.authenticate(head(headers));
      assertThat(refused)
          .as(headers.keySet().toString())
          .isInstanceOfSatisfying(
              Authentication.Refused.class,
              r -> {
                assertThat(r.error().status()).isEqualTo(401);
                assertThat(r.error().headers().get("WWW-Authenticate"))
                    .startsWith("Bearer error=\"invalid_token\"");
                assertThat(r.error().bodyText())
                    .contains("\"code\":\"unauthenticated\"")
                    .doesNotContain(KEY)
                    .doesNotContain("wrong-key");
              });
    }
    // The same answers as the engine gives an inference request with that head.
    Verdict.Denied ex = (Verdict.Denied) call(engine, "GET", "/pam/quota", "wrong-key", null);
    Authentication.Refused refused =
        (Authentication.Refused)
            engine.authenticate(head(Map.of("Authorization", List.of("Bearer wrong-key"))));
    JsonNode engineError = JSON.readTree(ex.error().body()).get("error");
    JsonNode endpointError = JSON.readTree(refused.error().body()).get("error");
    assertThat(endpointError.get("message")).isEqualTo(engineError.get("message"));
    assertThat(endpointError.get("request_id").isNull()).isTrue();
    assertThat(refused.error().headers().get("WWW-Authenticate"))
        .isEqualTo(ex.error().headers().get("WWW-Authenticate"));
  }

  @Test
  void authenticateRefusesWhenAResolverFailsWithoutQuotingIt() throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy("")))
            .identityResolver(
                r -> {
                  throw new IllegalStateException("token hunter2 broke me");
                })
            .build();
    Authentication a =
        engine.authenticate(head(Map.of("Authorization", List.of("Bearer opaque-token"))));
    assertThat(a)
        .isInstanceOfSatisfying(
            Authentication.Refused.class,
            r -> {
              assertThat(r.error().status()).isEqualTo(401);
              assertThat(r.error().bodyText())
                  .contains("credential could not be verified")
                  .doesNotContain("hunter2");
            });
  }

  static RequestHead head(Map<String, List<String>> headers) {
    return new RequestHead("GET", "/pam/approvals", null, headers, "127.0.0.1");
  }

  static String code(Verdict ex) {
    return ((Decision.Deny) ex.decision()).code();
  }
}
