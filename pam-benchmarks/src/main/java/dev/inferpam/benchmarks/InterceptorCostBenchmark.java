package dev.inferpam.benchmarks;

import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.okhttp.PamInterceptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import okhttp3.HttpUrl;
import okhttp3.Interceptor;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Protocol;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okio.Buffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The processor time {@link PamInterceptor} adds to a call, without the network: the calls of
 * {@link EndToEndBenchmark} (the same 1 KB chat request, 2 KB completion, 100-event stream, the
 * same policy) made through an OkHttp client whose last application interceptor answers at once
 * with the prebuilt response instead of going to the network. {@code *Plain} is that client
 * alone (OkHttp's own call overhead), {@code *Interceptor} the same with {@code PamInterceptor}
 * in front; the difference is what inferpam costs the calling thread per call. The recorder's
 * writer thread (batched durability) runs beside it, as it would.
 *
 * <p>Where {@link EndToEndBenchmark} tells what a caller sees, this one tells where the time
 * goes: {@code -p policy=bare|no-masking|no-recording|full}.
 *
 * <p>Run: {@code java -jar pam-benchmarks/target/benchmarks.jar InterceptorCostBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Threads(1)
@Fork(1)
@Warmup(iterations = 10, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
public class InterceptorCostBenchmark {

  private static final MediaType JSON = MediaType.get("application/json");
  private static final MediaType SSE = MediaType.get("text/event-stream; charset=utf-8");

  @State(Scope.Benchmark)
  public static class Rig {
    @Param({"full"})
    public String policy = "full";

    LocalIssuer issuer;
    Path dir;
    PamEngine engine;
    OkHttpClient plain;
    OkHttpClient intercepted;
    Request completionPlain;
    Request completionIntercepted;
    Request streamPlain;
    Request streamIntercepted;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
      issuer = LocalIssuer.start();
      String token =
          issuer.mint(EndToEndBenchmark.SUBJECT, "cost", Instant.now(), Duration.ofHours(8));
      dir = Files.createTempDirectory("inferpam-cost-");
      Path credential =
          Files.writeString(dir.resolve("upstream-key"), EndToEndBenchmark.UPSTREAM_KEY + "\n");
      Path recordings = Files.createDirectory(dir.resolve("recordings"));
      engine =
          PamEngine.builder()
              .policy(
                  Policy.parse(
                      EndToEndBenchmark.policyYaml(policy, issuer, credential, recordings)))
              .build();

      Interceptor model = model(EndToEndBenchmark.completionBody(), streamBody());
      plain = new OkHttpClient.Builder().addInterceptor(model).build();
      intercepted =
          PamInterceptor.of(engine)
              .install(new OkHttpClient.Builder())
              .addInterceptor(model)
              .build();

      HttpUrl url = HttpUrl.get("http://127.0.0.1:9/v1/chat/completions"); // never connected
      completionPlain =
          EndToEndBenchmark.request(
              url,
              "Bearer " + EndToEndBenchmark.UPSTREAM_KEY,
              EndToEndBenchmark.requestBody(false));
      completionIntercepted =
          EndToEndBenchmark.request(url, "Bearer " + token, EndToEndBenchmark.requestBody(false));
      streamPlain =
          EndToEndBenchmark.request(
              url, "Bearer " + EndToEndBenchmark.UPSTREAM_KEY, EndToEndBenchmark.requestBody(true));
      streamIntercepted =
          EndToEndBenchmark.request(url, "Bearer " + token, EndToEndBenchmark.requestBody(true));

      for (OkHttpClient client : List.of(plain, intercepted)) {
        Request completion = client == plain ? completionPlain : completionIntercepted;
        Request stream = client == plain ? streamPlain : streamIntercepted;
        int length = EndToEndBenchmark.complete(client, completion).length;
        if (length != EndToEndBenchmark.RESPONSE_BYTES)
          throw new IllegalStateException("completion of " + length);
        EndToEndBenchmark.wholeStream(client, stream);
      }
    }

    private static byte[] streamBody() {
      Buffer all = new Buffer();
      for (byte[] event : EndToEndBenchmark.streamEvents()) all.write(event);
      all.writeUtf8("data: [DONE]\n\n");
      return all.readByteArray();
    }

    /** The model: answers every call at once, checking the upstream credential as the server would. */
    private static Interceptor model(byte[] completion, byte[] stream) {
      String expected = "Bearer " + EndToEndBenchmark.UPSTREAM_KEY;
      return chain -> {
        Request request = chain.request();
        if (!expected.equals(request.header("Authorization"))) {
          throw new IllegalStateException("the model saw no upstream credential");
        }
        Buffer body = new Buffer();
        request.body().writeTo(body);
        boolean streamed = body.indexOf(okio.ByteString.encodeUtf8("\"stream\":true")) >= 0;
        return new Response.Builder()
            .request(request)
            .protocol(Protocol.HTTP_1_1)
            .code(200)
            .message("OK")
            .header("Content-Type", streamed ? SSE.toString() : JSON.toString())
            .body(ResponseBody.create(streamed ? stream : completion, streamed ? SSE : JSON))
            .build();
      };
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
      try {
        if (engine != null) engine.close();
      } finally {
        if (issuer != null) issuer.close();
        if (dir != null) EndToEndBenchmark.deleteTree(dir);
      }
    }
  }

  @Benchmark
  public byte[] completionPlain(Rig rig) throws IOException {
    return EndToEndBenchmark.complete(rig.plain, rig.completionPlain);
  }

  @Benchmark
  public byte[] completionInterceptor(Rig rig) throws IOException {
    return EndToEndBenchmark.complete(rig.intercepted, rig.completionIntercepted);
  }

  @Benchmark
  public int streamPlain(Rig rig) throws IOException {
    return EndToEndBenchmark.wholeStream(rig.plain, rig.streamPlain);
  }

  @Benchmark
  public int streamInterceptor(Rig rig) throws IOException {
    return EndToEndBenchmark.wholeStream(rig.intercepted, rig.streamIntercepted);
  }
}
