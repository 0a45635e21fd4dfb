package dev.inferpam.okhttp;

import static dev.inferpam.testsupport.Policies.sha256;
import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.InMemoryRecorder;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.recording.RecordCodec;
import dev.inferpam.testsupport.FakeModelServer;
import dev.inferpam.testsupport.ModelAnswer;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import okhttp3.Headers;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An upstream that echoes the request's headers (the injected credential among them) into its
 * body and headers: the caller reads neither the upstream credential nor its own key, masked or
 * not, and the record holds neither.
 */
class CredentialEchoInterceptorTest {
  static final MediaType JSON = MediaType.get("application/json");
  static final String ALICE = "alice-key-0001-abcdef";
  static final String AUDITOR = "auditor-key-0002-abcdef";
  static final String UPSTREAM = "sk-upstream/0123456789abcdef";

  @StartStop final MockWebServer server = new MockWebServer();
  final InMemoryRecorder recorder = new InMemoryRecorder();

  static String policy(boolean masking) {
    return """
        version: 1
        identity:
          api-keys:
            - {name: alice, sha256: %s, groups: [ml-engineers]}
            - {name: auditor, sha256: %s, groups: [ml-engineers, auditors]}
        entitlements:
          - groups: [ml-engineers]
            models: ["llama-3.1-*"]
            operations: [chat]
        %s
        recording:
          directory: ./never-opened-a-recorder-is-given
          bodies: full
          durability: batched
        """
        .formatted(
            sha256(ALICE),
            sha256(AUDITOR),
            masking ? "masking:\n  detectors: [email]\n  exempt-groups: [auditors]" : "");
  }

  OkHttpClient client(boolean masking) {
    PamEngine engine =
        PamEngine.builder()
            .policy(Policy.parse(policy(masking)))
            .recorder(recorder)
            .credentialProvider(() -> new Credential("Authorization", "Bearer " + UPSTREAM))
            .build();
    return PamInterceptor.of(engine)
        .install(new OkHttpClient.Builder())
        .readTimeout(10, TimeUnit.SECONDS)
        .retryOnConnectionFailure(false)
        .build();
  }

  Request chat(String key) {
    String body =
        "{\"model\":\"llama-3.1-8b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    return new Request.Builder()
        .url(server.url("/v1/chat/completions"))
        .header("X-Api-Key", key)
        .header("X-Client-Note", "my key is " + key)
        .post(RequestBody.create(body, JSON))
        .build();
  }

  /** Answers every request with its headers, in the body (JSON, '/' escaped) and as X-Echo-* headers. */
  @ParameterizedTest
  @ValueSource(strings = {"masked,alice", "no-masking,alice", "masked,auditor"})
  void anEchoingUpstreamHandsBackNeitherCredential(String setup) throws Exception {
    String key = setup.endsWith("auditor") ? AUDITOR : ALICE;
    server.setDispatcher(FakeModelServer.echoDispatcher());
    String body;
    Headers headers;
    try (Response r = client(setup.startsWith("masked")).newCall(chat(key)).execute()) {
      assertThat(r.code()).isEqualTo(200);
      headers = r.headers();
      body = r.body().string();
    }
    RecordedRequest seen = server.takeRequest();
    assertThat(seen.getHeaders().get("Authorization"))
        .isEqualTo("Bearer " + UPSTREAM); // it was injected
    assertThat(body)
        .contains("\"Authorization\":\"Bearer [REDACTED:credential")
        .doesNotContain("0123456789")
        .doesNotContain(key);
    assertThat(headers.toString()).doesNotContain("0123456789").doesNotContain(key);
    assertThat(headers.get("X-Echo-Authorization")).startsWith("[REDACTED:credential");
    assertThat(headers.get("X-Echo-X-Client-Note")).startsWith("my key is [");

    SessionRecord rec = recorder.records().get(0);
    String line = RecordCodec.encode(rec, RecordCodec.GENESIS);
    assertThat(line).doesNotContain("0123456789").doesNotContain(key);
    assertThat(rec.response().masked()).containsEntry("credential", 2);
  }

  @Test
  void aStreamedEchoSplitAcrossChunksIsReplacedWhereverTheCutFalls() throws Exception {
    String secret = "Bearer " + UPSTREAM;
    String event =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"you sent "
            + secret
            + "\"}}]}\n\n";
    int cut = event.indexOf(UPSTREAM) + 5; // inside the value
    CountDownLatch release = new CountDownLatch(1);
    server.enqueue(
        FakeModelServer.response(
            ModelAnswer.sse(event.substring(0, cut), event.substring(cut) + "data: [DONE]\n\n")
                .holdBefore(1, release)));
    StringBuilder received = new StringBuilder();
    try (Response r = client(false).newCall(chat(ALICE)).execute()) {
      BufferedSource source = r.body().source();
      okio.Buffer first = new okio.Buffer();
      source.read(first, 8192); // what came before the cut, without the value's start
      received.append(first.readUtf8());
      assertThat(received.toString()).startsWith("data: ").doesNotContain("sk-up");
      release.countDown();
      received.append(source.readUtf8());
    }
    assertThat(received.toString())
        .doesNotContain("0123456789")
        .contains("you sent [REDACTED:credential");
    assertThat(received).hasSize(event.length() + "data: [DONE]\n\n".length());
  }
}
