package dev.inferpam.gateway;

import static dev.inferpam.gateway.TestPolicies.ALICE_KEY;
import static dev.inferpam.gateway.TestPolicies.CI_KEY;
import static dev.inferpam.gateway.TestPolicies.UPSTREAM_AUTHORIZATION;
import static dev.inferpam.gateway.TestPolicies.chat;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.Recordings;
import dev.inferpam.gateway.replay.Replay;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.List;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The gateway with the policy's own recorder: what {@link Gateway#close()} leaves on disk. */
class GatewayRecordingTest {
  private static final MediaType JSON_TYPE = MediaType.get("application/json");

  @TempDir Path dir;

  @ParameterizedTest
  @ValueSource(strings = {"async", "batched", "strict"})
  void closeFlushesEveryExchangeIntoAVerifiableRecording(String durability) throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.policyRecordingTo(dir, durability)))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .build();
    OkHttpClient client = new OkHttpClient();
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"answer\":1}").build());
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"answer\":2}").build());
      Gateway gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
      try {
        HttpUrl url =
            HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
        assertThat(send(client, url, ALICE_KEY, chat("llama-3.1-8b", ""))).isEqualTo(200);
        assertThat(send(client, url, CI_KEY, chat("gpt-4o-mini", ""))).isEqualTo(403);
        assertThat(send(client, url, ALICE_KEY, chat("llama-3.1-70b", ""))).isEqualTo(200);
        assertThat(send(client, url, null, chat("llama-3.1-8b", ""))).isEqualTo(401);
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        gateway.close();
      }
    }

    // Right after close(): no waiting, every exchange is on disk and the chain holds.
    Recordings recordings = Recordings.open(dir);
    assertThat(Replay.format(recordings.verify())).startsWith("OK ");
    List<String> lines = Replay.open(dir).list(null, null);
    assertThat(lines).hasSize(4);
    assertThat(lines.get(0)).endsWith(" alice POST /v1/chat/completions llama-3.1-8b allow 200");
    assertThat(lines.get(1)).endsWith(" ci-bot POST /v1/chat/completions gpt-4o-mini deny 403");
    assertThat(lines.get(2)).endsWith(" alice POST /v1/chat/completions llama-3.1-70b allow 200");
    assertThat(lines.get(3)).contains(" - POST /v1/chat/completions ").endsWith(" deny 401");
    assertThat(recordings.list(null, null).get(0).record().response().body())
        .isEqualTo("{\"answer\":1}");
  }

  @Test
  void aGzipRequestIsRecordedDecodedWithoutItsEncodingHeadersAndRerunsConsistently()
      throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(TestPolicies.policyRecordingTo(dir, "batched") + "  bodies: full\n"))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .build();
    String body = chat("llama-3.1-8b", "");
    java.io.ByteArrayOutputStream gz = new java.io.ByteArrayOutputStream();
    try (java.util.zip.GZIPOutputStream out = new java.util.zip.GZIPOutputStream(gz)) {
      out.write(body.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    OkHttpClient client = new OkHttpClient();
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"answer\":1}").build());
      Gateway gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
      try {
        HttpUrl url =
            HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
        Request request =
            new Request.Builder()
                .url(url)
                .header("X-Api-Key", ALICE_KEY)
                .header("Content-Encoding", "gzip")
                .post(RequestBody.create(gz.toByteArray(), JSON_TYPE))
                .build();
        try (Response response = client.newCall(request).execute()) {
          assertThat(response.code()).isEqualTo(200);
        }
        upstream.takeRequest();
      } finally {
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        gateway.close();
      }

      // The record line holds the decoded JSON, and no header that says it is anything else.
      String line;
      try (java.util.stream.Stream<Path> files = java.nio.file.Files.list(dir)) {
        Path segment =
            files
                .filter(p -> p.getFileName().toString().endsWith(".jsonl"))
                .findFirst()
                .orElseThrow();
        line = java.nio.file.Files.readAllLines(segment).get(0);
      }
      com.fasterxml.jackson.databind.JsonNode recorded =
          new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).get("request");
      assertThat(recorded.get("headers").has("content-encoding")).isFalse();
      assertThat(recorded.get("headers").has("content-length")).isFalse();
      assertThat(recorded.get("headers").get("content-type").asText())
          .isEqualTo("application/json");
      assertThat(recorded.get("body").asText()).isEqualTo(body);
      assertThat(recorded.get("bytes").asLong()).isEqualTo(body.length());

      // replay rerun sends that JSON as what it is.
      upstream.enqueue(new MockResponse.Builder().code(200).body("{\"answer\":1}").build());
      String id =
          new com.fasterxml.jackson.databind.ObjectMapper().readTree(line).get("id").asText();
      Replay.open(dir).rerun(id, upstream.url("/"), null, null);
      mockwebserver3.RecordedRequest resent = upstream.takeRequest();
      assertThat(resent.getHeaders().get("Content-Encoding")).isNull();
      assertThat(resent.getHeaders().get("Content-Type")).isEqualTo("application/json");
      assertThat(resent.getBody().utf8()).isEqualTo(body);
    }
  }

  @Test
  void aClosedGatewaysRecordingHoldsNoSecret() throws Exception {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(TestPolicies.policyRecordingTo(dir, "batched")))
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM_AUTHORIZATION))
            .build();
    OkHttpClient client = new OkHttpClient();
    try (MockWebServer upstream = new MockWebServer()) {
      upstream.start(InetAddress.getLoopbackAddress(), 0);
      upstream.enqueue(new MockResponse.Builder().code(200).body("{}").build());
      Gateway gateway = Gateway.start(engine, upstream.url("/"), "127.0.0.1", 0);
      try {
        HttpUrl url =
            HttpUrl.get(gateway.uri()).newBuilder().encodedPath("/v1/chat/completions").build();
        assertThat(send(client, url, ALICE_KEY, chat("llama-3.1-8b", ""))).isEqualTo(200);
      } finally {
        // before close(): an idle keep-alive connection would hold up the drain
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        gateway.close();
      }
    }
    String shown =
        Replay.open(dir)
            .show(Recordings.open(dir).list(null, null).get(0).record().id())
            .orElseThrow();
    assertThat(shown)
        .contains("\"authorization\": \"[REDACTED]\"")
        .doesNotContain(ALICE_KEY)
        .doesNotContain(UPSTREAM_AUTHORIZATION.substring("Bearer ".length()));
  }

  private static int send(OkHttpClient client, HttpUrl url, String key, String json)
      throws Exception {
    Request.Builder b = new Request.Builder().url(url).post(RequestBody.create(json, JSON_TYPE));
    if (key != null) b.header("Authorization", "Bearer " + key);
    try (Response response = client.newCall(b.build()).execute()) {
      response.body().string();
      return response.code();
    }
  }
}
