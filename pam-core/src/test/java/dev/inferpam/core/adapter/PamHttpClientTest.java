package dev.inferpam.core.adapter;

import static org.assertj.core.api.Assertions.assertThat;

import dev.inferpam.api.Credential;
import dev.inferpam.api.Decision;
import dev.inferpam.api.SessionRecord;
import dev.inferpam.core.ExchangeInfo;
import dev.inferpam.core.ExchangeListener;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The same observable behaviour as the OkHttp interceptor and the servlet filter, through
 * {@link PamHttpClient}, an adapter for the JDK's {@code HttpClient} written in a test against
 * the public adapter API: a denial is the engine's 403 and never reaches the upstream; an allowed
 * request carries the upstream credential, not the caller's; a stream is masked as it is read;
 * and every exchange is recorded.
 */
class PamHttpClientTest {
  static final String KEY = "svc-key-0123456789";
  static final String UPSTREAM = "Bearer upstream-secret-0123";

  final MockWebServer upstream = new MockWebServer();
  final List<SessionRecord> records = new CopyOnWriteArrayList<>();
  final List<String> events = new CopyOnWriteArrayList<>();
  final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  PamEngine engine;
  PamHttpClient client;

  static String sha256(String s) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
  }

  @BeforeEach
  void start() throws Exception {
    upstream.start(java.net.InetAddress.getByName("127.0.0.1"), 0);
    engine =
        PamEngine.builder()
            .policy(
                Policy.parse(
                    """
            version: 1
            identity:
              api-keys:
                - {name: svc, sha256: %s, groups: [ml]}
            entitlements:
              - groups: [ml]
                models: ["llama-*"]
                operations: [chat]
            masking:
              detectors: [email]
            """
                        .formatted(sha256(KEY))))
            .recorder(records::add)
            .credentialProvider(() -> new Credential("Authorization", UPSTREAM))
            .eventListener(
                new ExchangeListener() {
                  @Override
                  public void decided(ExchangeInfo exchange, Decision decision) {
                    events.add("decided " + decision.getClass().getSimpleName());
                  }

                  @Override
                  public void forwarded(ExchangeInfo exchange) {
                    events.add("forwarded");
                  }

                  @Override
                  public void firstByte(ExchangeInfo exchange, int status) {
                    events.add("firstByte " + status);
                  }

                  @Override
                  public void masked(ExchangeInfo exchange, Map<String, Integer> counts) {
                    events.add("masked " + counts);
                  }

                  @Override
                  public void recorded(ExchangeInfo exchange) {
                    events.add("recorded");
                  }

                  @Override
                  public void ended(ExchangeInfo exchange, boolean complete) {
                    events.add("ended " + complete);
                  }
                })
            .build();
    client = new PamHttpClient(http, engine);
  }

  @AfterEach
  void stop() throws Exception {
    engine.close();
    upstream.close();
  }

  PamHttpClient.Reply chat(String model) throws Exception {
    byte[] body =
        ("{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
            .getBytes(StandardCharsets.UTF_8);
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(upstream.url("/v1/chat/completions").toString()))
            .header("Authorization", "Bearer " + KEY)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofByteArray(body))
            .build();
    return client.send(request, body);
  }

  static String read(InputStream in) throws Exception {
    try (in) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  @Test
  void aModelTheCallerIsNotEntitledToIsDenied403AndNeverReachesTheUpstream() throws Exception {
    PamHttpClient.Reply reply = chat("gpt-4o");
    assertThat(reply.status()).isEqualTo(403);
    assertThat(read(reply.body())).contains("\"code\":\"not_entitled\"");
    assertThat(upstream.getRequestCount()).isZero();
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("deny");
              assertThat(r.response().status()).isEqualTo(403);
            });
    assertThat(events).containsExactly("decided Deny", "recorded", "ended true");
  }

  @Test
  void anAllowedRequestCarriesTheUpstreamCredentialAndIsRecordedAsDelivered() throws Exception {
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "application/json")
            .body("{\"choices\":[{\"message\":{\"content\":\"hello\"}}]}")
            .build());
    PamHttpClient.Reply reply = chat("llama-3");
    assertThat(reply.status()).isEqualTo(200);
    assertThat(read(reply.body()))
        .isEqualTo("{\"choices\":[{\"message\":{\"content\":\"hello\"}}]}");

    RecordedRequest seen = upstream.takeRequest(5, TimeUnit.SECONDS);
    assertThat(seen.getHeaders().get("Authorization")).isEqualTo(UPSTREAM);
    assertThat(seen.getHeaders().toString()).doesNotContain(KEY);
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("allow");
              assertThat(r.principal().subject()).isEqualTo("svc");
              assertThat(r.response().status()).isEqualTo(200);
              assertThat(r.response().complete()).isTrue();
            });
    assertThat(events)
        .containsExactly(
            "decided Allow", "forwarded", "firstByte 200", "masked {}", "recorded", "ended true");
  }

  @Test
  void aStreamIsMaskedAsItIsReadWithoutItsContentLength() throws Exception {
    String stream =
        "data: {\"choices\":[{\"delta\":{\"content\":\"write to jane.doe@example.com\"}}]}\n\n"
            + "data: [DONE]\n\n";
    upstream.enqueue(
        new MockResponse.Builder()
            .code(200)
            .setHeader("Content-Type", "text/event-stream")
            .body(stream)
            .build());
    PamHttpClient.Reply reply = chat("llama-3");
    assertThat(reply.headers()).doesNotContainKey("content-length");
    String body = read(reply.body());
    assertThat(body).doesNotContain("jane.doe").contains("[EMAIL]").endsWith("data: [DONE]\n\n");
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.response().masked()).containsEntry("email", 1);
              assertThat(r.response().bytes())
                  .isEqualTo(body.getBytes(StandardCharsets.UTF_8).length);
            });
    assertThat(events)
        .containsExactly(
            "decided Allow",
            "forwarded",
            "firstByte 200",
            "masked {email=1}",
            "recorded",
            "ended true");
  }

  @Test
  void anUpstreamThatIsNotThereIsRecorded502AndNotCharged() throws Exception {
    upstream.close();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> chat("llama-3"))
        .isInstanceOf(java.io.IOException.class);
    assertThat(records)
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.decision().outcome()).isEqualTo("allow");
              assertThat(r.response().status()).isEqualTo(502);
              assertThat(r.response().complete()).isFalse();
            });
    assertThat(events).containsExactly("decided Allow", "forwarded", "recorded", "ended false");
  }
}
