package dev.inferpam.okhttp;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.testsupport.Policies;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/**
 * A client whose redirect following stays on (an SDK's, which cannot turn it off): a redirect
 * from the server is followed by OkHttp inside the call, so the hop that answers was never
 * decided on. Its answer never reaches the caller: 502 {@code upstream_redirect}.
 */
class PamInterceptorRedirectTest {
  static final String ALICE = "alice-key-0001";

  @StartStop final MockWebServer server = new MockWebServer();
  final InMemoryRecorder recorder = new InMemoryRecorder();

  @Test
  void anAnswerReachedThroughARedirectIsRefused() throws Exception {
    server.enqueue(new MockResponse.Builder().code(302).setHeader("Location", "/v1/other").build());
    server.enqueue(
        new MockResponse.Builder().code(200).body("{\"secret\":\"from elsewhere\"}").build());
    PamEngine engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    """
                    version: 1
                    identity:
                      api-keys:
                    """
                        + Policies.apiKey("alice", ALICE, "ml")
                        + """
                    entitlements:
                      - groups: [ml]
                        models: ["llama-*"]
                        operations: [chat]
                    recording:
                      directory: ./never-opened-a-recorder-is-given
                      durability: batched
                    """))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer upstream-secret"))
            .build();
    // added by hand, redirects left on: what an SDK's client builder does
    OkHttpClient client =
        new OkHttpClient.Builder().addInterceptor(PamInterceptor.of(engine)).build();
    try (engine;
        Response r =
            client
                .newCall(
                    new Request.Builder()
                        .url(server.url("/v1/chat/completions"))
                        .header("Authorization", "Bearer " + ALICE)
                        .post(
                            RequestBody.create(
                                Policies.chat("llama-3.1-8b", ""),
                                MediaType.get("application/json")))
                        .build())
                .execute()) {
      assertThat(r.code()).isEqualTo(502);
      String body = r.body().string();
      assertThat(body).contains("\"code\":\"upstream_redirect\"").doesNotContain("secret");
    }
    SessionRecord record = recorder.records().get(0);
    assertThat(record.response().status()).isEqualTo(502);
    assertThat(record.response().body()).doesNotContain("from elsewhere");
  }
}
