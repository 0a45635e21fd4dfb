package dev.inferpam.okhttp;

import static dev.inferpam.testsupport.Policies.sha256;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import dev.inferpam.api.Recorder;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code upstream.credential.oauth2} end to end: a caller with its own API key calls through
 * {@link PamInterceptor}; the upstream gets a token minted by a client-credentials grant, which
 * neither the caller nor the recording ever sees.
 */
class OAuth2UpstreamTest {
  static final MediaType JSON = MediaType.get("application/json");

  /** Writes a whole record, every field, to search it for secrets. */
  static final ObjectMapper MAPPER =
      new ObjectMapper()
          .registerModule(
              new SimpleModule().addSerializer(Instant.class, ToStringSerializer.instance));

  static final Clock CLOCK = Clock.fixed(Instant.parse("2026-11-28T12:00:00Z"), ZoneOffset.UTC);

  static final String ALICE = "alice-key-0001";
  static final String CLIENT_SECRET = "client-secret-f00d";
  static final String MINTED = "minted-upstream-token-7e1f";

  @StartStop final MockWebServer upstream = new MockWebServer();
  @StartStop final MockWebServer idp = new MockWebServer();
  @TempDir Path dir;

  final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  OkHttpClient client;

  @BeforeEach
  void setUp() throws IOException {
    Path secret = Files.writeString(dir.resolve("client-secret"), CLIENT_SECRET + "\n");
    String policy =
        """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
        upstream:
          credential:
            oauth2:
              token-endpoint: %s
              client-id: inference-gateway
              client-secret-from-file: %s
              scope: models.invoke
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
        """
            .formatted(sha256(ALICE), idp.url("/oauth/token"), secret);
    Recorder recorder = records::add;
    PamEngine engine =
        PamEngine.builder().policy(Policy.parse(policy)).clock(CLOCK).recorder(recorder).build();
    client =
        PamInterceptor.of(engine)
            .install(new OkHttpClient.Builder())
            .readTimeout(10, TimeUnit.SECONDS)
            .build();
  }

  Response chat() throws IOException {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    return client
        .newCall(
            new Request.Builder()
                .url(upstream.url("/v1/chat/completions"))
                .header("X-Api-Key", ALICE)
                .post(RequestBody.create(body, JSON))
                .build())
        .execute();
  }

  static MockResponse minted() {
    return new MockResponse.Builder()
        .code(200)
        .setHeader("Content-Type", "application/json")
        .body("{\"access_token\":\"" + MINTED + "\",\"token_type\":\"Bearer\",\"expires_in\":3600}")
        .build();
  }

  @Test
  void upstreamSeesTheMintedTokenWhileTheCallerAndTheRecordingNeverDo() throws Exception {
    idp.enqueue(minted());
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"id\":\"chatcmpl-1\"}").build());
    upstream.enqueue(new MockResponse.Builder().code(200).body("{\"id\":\"chatcmpl-2\"}").build());

    try (Response r = chat()) {
      assertThat(r.code()).isEqualTo(200);
      assertThat(r.headers().toString()).doesNotContain(MINTED).doesNotContain(CLIENT_SECRET);
      assertThat(r.body().string()).isEqualTo("{\"id\":\"chatcmpl-1\"}");
    }
    try (Response r = chat()) {
      assertThat(r.code()).isEqualTo(200);
    }

    for (int i = 0; i < 2; i++) {
      RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
      assertThat(seen.getHeaders().get("Authorization")).isEqualTo("Bearer " + MINTED);
      assertThat(seen.getHeaders().get("X-Api-Key")).isNull();
    }
    // One grant served both requests, authenticated with the client's id and secret.
    assertThat(idp.getRequestCount()).isEqualTo(1);
    RecordedRequest grant = idp.takeRequest(5, TimeUnit.SECONDS);
    assertThat(grant.getBody().utf8())
        .isEqualTo("grant_type=client_credentials&scope=models.invoke");
    assertThat(grant.getHeaders().get("Authorization"))
        .isEqualTo(
            "Basic "
                + Base64.getEncoder()
                    .encodeToString(
                        ("inference-gateway:" + CLIENT_SECRET).getBytes(StandardCharsets.UTF_8)));

    assertThat(records)
        .hasSize(2)
        .allSatisfy(
            rec -> {
              assertThat(rec.decision().outcome()).isEqualTo("allow");
              assertThat(rec.request().headers().get("x-api-key")).containsExactly("[REDACTED]");
              String json = MAPPER.writeValueAsString(rec);
              assertThat(json)
                  .doesNotContain(MINTED)
                  .doesNotContain(CLIENT_SECRET)
                  .doesNotContain(ALICE);
              assertThat(rec.toString()).doesNotContain(MINTED).doesNotContain(CLIENT_SECRET);
            });
  }

  @Test
  void concurrentCallersShareOneTokenGrant() throws Exception {
    idp.enqueue(minted());
    upstream.setDispatcher(
        new Dispatcher() {
          @Override
          public MockResponse dispatch(RecordedRequest request) {
            return new MockResponse.Builder().code(200).body("{}").build();
          }
        });
    ExecutorService pool = Executors.newFixedThreadPool(50);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<Integer>> codes = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        codes.add(
            pool.submit(
                () -> {
                  go.await();
                  try (Response r = chat()) {
                    return r.code();
                  }
                }));
      }
      go.countDown();
      for (Future<Integer> code : codes) assertThat(code.get(20, TimeUnit.SECONDS)).isEqualTo(200);
    } finally {
      pool.shutdownNow();
    }
    assertThat(idp.getRequestCount()).isEqualTo(1);
    assertThat(upstream.getRequestCount()).isEqualTo(50);
    for (int i = 0; i < 50; i++) {
      assertThat(upstream.takeRequest(5, TimeUnit.SECONDS).getHeaders().get("Authorization"))
          .isEqualTo("Bearer " + MINTED);
    }
  }

  @Test
  void tokenEndpointDownIs503AndTheUpstreamSeesNothing() throws Exception {
    idp.close();
    try (Response r = chat()) {
      assertThat(r.code()).isEqualTo(503);
      String body = r.body().string();
      JsonNode error = MAPPER.readTree(body).get("error");
      assertThat(error.get("code").asText()).isEqualTo("upstream_credential_unavailable");
      assertThat(body).doesNotContain(CLIENT_SECRET);
    }
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(records)
        .singleElement()
        .satisfies(
            rec -> {
              assertThat(rec.decision().outcome()).isEqualTo("deny");
              assertThat(rec.decision().code()).isEqualTo("upstream_credential_unavailable");
              assertThat(rec.response().status()).isEqualTo(503);
              assertThat(MAPPER.writeValueAsString(rec)).doesNotContain(CLIENT_SECRET);
            });
  }

  @Test
  void tokenEndpointRefusingTheClientIs503() throws Exception {
    idp.enqueue(
        new MockResponse.Builder()
            .code(401)
            .setHeader("Content-Type", "application/json")
            .body("{\"error\":\"invalid_client\"}")
            .build());
    try (Response r = chat()) {
      assertThat(r.code()).isEqualTo(503);
      assertThat(MAPPER.readTree(r.body().string()).get("error").get("code").asText())
          .isEqualTo("upstream_credential_unavailable");
    }
    assertThat(upstream.getRequestCount()).isZero();
  }
}
