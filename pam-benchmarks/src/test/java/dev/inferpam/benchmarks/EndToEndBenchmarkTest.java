package dev.inferpam.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okio.BufferedSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Runs each benchmark once outside JMH and checks the answers, so a broken setup fails
 * {@code ./mvnw verify} rather than the next person's benchmark run. Measures nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EndToEndBenchmarkTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final EndToEndBenchmark benchmark = new EndToEndBenchmark();
  private final EndToEndBenchmark.Rig rig = new EndToEndBenchmark.Rig();

  @BeforeAll
  void setUp() throws Exception {
    rig.setUp();
  }

  @AfterAll
  void tearDown() throws Exception {
    rig.tearDown();
  }

  @Test
  void bodiesHaveTheAdvertisedSizesAndShapes() throws Exception {
    assertThat(EndToEndBenchmark.requestBody(false)).hasSize(1024);
    assertThat(EndToEndBenchmark.requestBody(true)).hasSize(1024);
    assertThat(JSON.readTree(EndToEndBenchmark.requestBody(true)).get("stream").asBoolean())
        .isTrue();
    assertThat(JSON.readTree(EndToEndBenchmark.requestBody(false)).has("stream")).isFalse();
    assertThat(EndToEndBenchmark.completionBody()).hasSize(2048);
    assertThat(JSON.readTree(EndToEndBenchmark.completionBody()).at("/usage/total_tokens").asInt())
        .isEqualTo(633);
    List<byte[]> events = EndToEndBenchmark.streamEvents();
    assertThat(events).hasSize(100);
    for (byte[] event : events) {
      String text = new String(event, StandardCharsets.UTF_8);
      assertThat(text).startsWith("data: {").endsWith("}\n\n");
      JSON.readTree(text.substring("data: ".length()));
    }
  }

  @Test
  void completionIsTheSameJsonEveryWay() throws Exception {
    JsonNode expected = JSON.readTree(EndToEndBenchmark.completionBody());
    byte[] plain = benchmark.completionPlain(rig);
    assertThat(plain).isEqualTo(EndToEndBenchmark.completionBody());
    assertThat(rig.upstream.lastRequestBytes()).isEqualTo(1024);

    // masked on the way (every detector ran, nothing to replace): same document
    assertThat(JSON.readTree(benchmark.completionInterceptor(rig))).isEqualTo(expected);
    assertThat(rig.upstream.lastRequestBytes()).isEqualTo(1024);
    assertThat(JSON.readTree(benchmark.completionGateway(rig))).isEqualTo(expected);
    assertThat(rig.upstream.lastRequestBytes()).isEqualTo(1024);
  }

  @Test
  void interceptedResponsesGoThroughTheMasker() throws Exception {
    try (Response plain = rig.plain.newCall(rig.completionPlain).execute();
        Response masked = rig.intercepted.newCall(rig.completionIntercepted).execute()) {
      assertThat(plain.header("Content-Length")).isEqualTo("2048");
      // a masked body's length is not known in advance
      assertThat(masked.header("Content-Length")).isNull();
      assertThat(masked.body().bytes()).hasSizeGreaterThan(2000);
      plain.body().bytes();
    }
  }

  @Test
  void streamHasAHundredEventsEveryWay() throws Exception {
    assertThat(benchmark.streamPlain(rig)).isEqualTo(100);
    assertThat(benchmark.streamInterceptor(rig)).isEqualTo(100);
    assertThat(benchmark.streamGateway(rig)).isEqualTo(100);
  }

  @Test
  void maskedStreamsStillCarryTheWholeTextAsValidJson() throws Exception {
    String expected = String.join("", EndToEndBenchmark.deltas());
    assertThat(streamedText(rig.plain, rig.streamPlain)).isEqualTo(expected);
    assertThat(streamedText(rig.intercepted, rig.streamIntercepted)).isEqualTo(expected);
    assertThat(streamedText(rig.toGateway, rig.streamGateway)).isEqualTo(expected);
  }

  @Test
  void firstEventIsADataLineAndTheRestIsReadByTheTearDown() throws Exception {
    EndToEndBenchmark.OpenStream open = new EndToEndBenchmark.OpenStream();
    for (int i = 0; i < 3; i++) {
      String first =
          switch (i) {
            case 0 -> benchmark.firstEventPlain(rig, open);
            case 1 -> benchmark.firstEventInterceptor(rig, open);
            default -> benchmark.firstEventGateway(rig, open);
          };
      assertThat(first).startsWith("data: {");
      assertThat(
              JSON.readTree(first.substring("data: ".length()))
                  .at("/choices/0/delta/role")
                  .asText())
          .isEqualTo("assistant");
      assertThat(open.response).isNotNull();
      open.finish();
      assertThat(open.response).isNull();
    }
  }

  @Test
  void everyInterceptedCallIsRecordedCompleteWithItsUsage() throws Exception {
    int before = records(rig.clientRecordings).size();
    benchmark.completionInterceptor(rig);
    benchmark.streamInterceptor(rig);
    List<String> lines = awaitRecords(rig.clientRecordings, before + 2);
    List<String> last = lines.subList(before, before + 2);
    for (String line : last) {
      JsonNode record = JSON.readTree(line);
      assertThat(record.at("/decision/outcome").asText()).isEqualTo("allow");
      assertThat(record.at("/response/status").asInt()).isEqualTo(200);
      assertThat(record.at("/response/complete").asBoolean()).isTrue();
      assertThat(record.at("/principal/subject").asText()).isEqualTo("alice");
      assertThat(record.at("/response/usage/prompt_tokens").asInt()).isEqualTo(231);
      assertThat(line).doesNotContain(EndToEndBenchmark.UPSTREAM_KEY);
    }
  }

  @Test
  void measuredCallsReuseTheirConnections() throws Exception {
    int before = rig.upstream.connectionsOpened();
    for (int i = 0; i < 5; i++) {
      benchmark.completionPlain(rig);
      benchmark.completionInterceptor(rig);
      benchmark.completionGateway(rig);
      benchmark.streamPlain(rig);
      benchmark.streamInterceptor(rig);
      benchmark.streamGateway(rig);
    }
    assertThat(rig.upstream.connectionsOpened()).isEqualTo(before);
  }

  @Test
  void policyVariantsAndThePauseWork() throws Exception {
    for (String policy : List.of("no-masking", "no-recording", "bare")) {
      EndToEndBenchmark.Rig variant = new EndToEndBenchmark.Rig();
      variant.policy = policy;
      variant.pauseMicros = 2000;
      try {
        variant.setUp();
        assertThat(JSON.readTree(benchmark.completionInterceptor(variant)))
            .isEqualTo(JSON.readTree(EndToEndBenchmark.completionBody()));
        assertThat(benchmark.streamGateway(variant)).isEqualTo(100);
        EndToEndBenchmark.OpenStream open = new EndToEndBenchmark.OpenStream();
        long start = System.nanoTime();
        assertThat(benchmark.firstEventInterceptor(variant, open)).startsWith("data: {");
        long first = System.nanoTime() - start;
        open.finish();
        // the rest came only after the pause
        assertThat(System.nanoTime() - start)
            .isGreaterThan(first)
            .isGreaterThanOrEqualTo(2_000_000L);
      } finally {
        variant.tearDown();
      }
    }
  }

  /** The text the deltas of a streamed answer add up to; every event's data must parse. */
  private static String streamedText(OkHttpClient client, Request request) throws IOException {
    StringBuilder text = new StringBuilder();
    try (Response response = client.newCall(request).execute()) {
      assertThat(response.code()).isEqualTo(200);
      BufferedSource source = response.body().source();
      String line;
      while ((line = source.readUtf8Line()) != null) {
        if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
        JsonNode chunk = JSON.readTree(line.substring("data: ".length()));
        JsonNode content = chunk.at("/choices/0/delta/content");
        if (content.isTextual()) text.append(content.asText());
      }
    }
    return text.toString();
  }

  private static List<String> records(Path dir) throws IOException {
    List<String> lines = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f :
          files.filter(p -> p.getFileName().toString().endsWith(".jsonl")).sorted().toList()) {
        for (String line : Files.readAllLines(f)) {
          if (line.contains("\"type\":\"exchange\"")) lines.add(line);
        }
      }
    }
    return lines;
  }

  /** The batched recorder writes within milliseconds; waits up to five seconds for it. */
  private static List<String> awaitRecords(Path dir, int count) throws Exception {
    long deadline = System.nanoTime() + 5_000_000_000L;
    List<String> lines = records(dir);
    while (lines.size() < count && System.nanoTime() < deadline) {
      Thread.sleep(20);
      lines = records(dir);
    }
    assertThat(lines).hasSizeGreaterThanOrEqualTo(count);
    return lines;
  }
}
