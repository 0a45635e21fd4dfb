package dev.inferpam.examples.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.inferpam.api.AuthenticationException;
import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.InferenceRequest;
import dev.inferpam.api.Principal;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.Verdict;
import dev.inferpam.gateway.TestPolicies;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.Test;

/** The worked {@code IdentityResolver} example of docs/spi.md, against an introspection endpoint on MockWebServer. */
class IntrospectionIdentityResolverTest {
  private static final String TOKEN = "opaque-token-4f1c9a";
  private static final String SECRET = "introspection-client-secret";
  private static final Instant NOW = Instant.parse("2026-11-29T12:00:00Z");

  @StartStop final MockWebServer idp = new MockWebServer();
  private Instant now = NOW;
  private final Clock clock =
      new Clock() {
        @Override
        public ZoneOffset getZone() {
          return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
          return this;
        }

        @Override
        public Instant instant() {
          return now;
        }
      };

  private IntrospectionIdentityResolver resolver() {
    return IntrospectionIdentityResolver.builder()
        .endpoint(idp.url("/introspect"))
        .client("inferpam", SECRET)
        .clock(clock)
        .build();
  }

  private static InferenceRequest bearer(String token) {
    return new InferenceRequest(
        "POST",
        "/v1/chat/completions",
        null,
        Map.of("Authorization", List.of("Bearer " + token)),
        new byte[0],
        "127.0.0.1");
  }

  private static MockResponse json(String body) {
    return new MockResponse.Builder()
        .code(200)
        .setHeader("Content-Type", "application/json")
        .body(body)
        .build();
  }

  private static String active(long exp) {
    return "{\"active\":true,\"sub\":\"carol\",\"iss\":\"https://idp.example.com\",\"exp\":"
        + exp
        + ",\"groups\":[\"ml-engineers\",42]}";
  }

  @Test
  void anActiveOpaqueTokenResolvesToItsSubjectAndGroupsAndIsIntrospectedOnceWhileCached()
      throws Exception {
    idp.enqueue(json(active(NOW.plusSeconds(3600).getEpochSecond())));
    IntrospectionIdentityResolver r = resolver();

    Optional<Principal> p = r.resolve(bearer(TOKEN));
    assertThat(p)
        .contains(
            new Principal(
                "carol",
                java.util.Set.of("ml-engineers"),
                "introspection",
                "https://idp.example.com",
                Map.of()));
    RecordedRequest call = idp.takeRequest(5, TimeUnit.SECONDS);
    assertThat(call.getBody().utf8()).isEqualTo("token=" + TOKEN + "&token_type_hint=access_token");
    assertThat(call.getHeaders().get("Authorization")).startsWith("Basic ");

    now = NOW.plusSeconds(59);
    assertThat(r.resolve(bearer(TOKEN))).isEqualTo(p);
    assertThat(idp.getRequestCount()).isEqualTo(1);
    now = NOW.plusSeconds(61); // cache entry over: asked again
    idp.enqueue(json(active(NOW.plusSeconds(3600).getEpochSecond())));
    assertThat(r.resolve(bearer(TOKEN))).isEqualTo(p);
    assertThat(idp.getRequestCount()).isEqualTo(2);
  }

  @Test
  void inactiveOrExpiredTokensAreRefusedAndJwtsAndOtherSchemesAreLeftToOtherResolvers()
      throws Exception {
    idp.enqueue(json("{\"active\":false}"));
    IntrospectionIdentityResolver r = resolver();
    assertThatThrownBy(() -> r.resolve(bearer(TOKEN)))
        .isInstanceOf(AuthenticationException.class)
        .hasMessageContaining("not active");

    idp.enqueue(json(active(NOW.minusSeconds(1).getEpochSecond())));
    assertThatThrownBy(() -> r.resolve(bearer("another-opaque-token")))
        .isInstanceOf(AuthenticationException.class)
        .hasMessageContaining("expired");

    assertThat(r.resolve(bearer("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"))).isEmpty();
    assertThat(
            r.resolve(
                new InferenceRequest(
                    "POST",
                    "/v1/chat/completions",
                    null,
                    Map.of("Authorization", List.of("Basic dXNlcjpwdw==")),
                    new byte[0],
                    "127.0.0.1")))
        .isEmpty();
    assertThat(idp.getRequestCount()).isEqualTo(2);
  }

  @Test
  void aFailingEndpointFailsClosedWithoutLeakingTheTokenOrTheSecret() {
    idp.enqueue(new MockResponse.Builder().code(500).body("boom").build());
    IntrospectionIdentityResolver r = resolver();
    assertThatThrownBy(() -> r.resolve(bearer(TOKEN)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("500")
        .satisfies(e -> assertThat(e.getMessage()).doesNotContain(TOKEN, SECRET));
    assertThat(r.toString()).doesNotContain(SECRET);
  }

  @Test
  void plugsIntoTheEngineAfterThePolicysOwnResolvers() throws Exception {
    idp.enqueue(json(active(NOW.plusSeconds(3600).getEpochSecond())));
    try (PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.POLICY))
            .credentialProvider(
                () -> new Credential("Authorization", TestPolicies.UPSTREAM_AUTHORIZATION))
            .identityResolver(resolver())
            .clock(clock)
            .build()) {
      byte[] body = TestPolicies.chat("llama-3.1-8b", "").getBytes(StandardCharsets.UTF_8);
      Verdict carol =
          engine.begin(
              new RequestHead(
                  "POST",
                  "/v1/chat/completions",
                  null,
                  Map.of("Authorization", List.of("Bearer " + TOKEN)),
                  "127.0.0.1"),
              new ByteArrayInputStream(body),
              body.length);
      assertThat(carol.decision()).isInstanceOf(Decision.Allow.class);
      assertThat(carol.principal().subject()).isEqualTo("carol");
      assertThat(carol.principal().via()).isEqualTo("introspection");
      ((Verdict.Allowed) carol).end(true);

      // The endpoint down: the caller is refused 401, not let through.
      idp.enqueue(new MockResponse.Builder().code(503).build());
      Verdict other =
          engine.begin(
              new RequestHead(
                  "POST",
                  "/v1/chat/completions",
                  null,
                  Map.of("Authorization", List.of("Bearer some-other-opaque-token")),
                  "127.0.0.1"),
              new ByteArrayInputStream(body),
              body.length);
      assertThat(other.decision())
          .isInstanceOfSatisfying(Decision.Deny.class, d -> assertThat(d.status()).isEqualTo(401));
      ((Verdict.Denied) other).end(true);
    }
  }

  @Test
  void theBuilderRefusesPlainHttpOffLoopbackAndMissingSettings() {
    assertThatThrownBy(
            () ->
                IntrospectionIdentityResolver.builder()
                    .endpoint(okhttp3.HttpUrl.get("http://idp.example.com/introspect")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("https");
    assertThatThrownBy(() -> IntrospectionIdentityResolver.builder().client("a", "b").build())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("endpoint");
    assertThatThrownBy(() -> IntrospectionIdentityResolver.builder().cacheFor(Duration.ofHours(2)))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
