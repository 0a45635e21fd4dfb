package dev.inferpam.benchmarks;

import dev.inferpam.benchmarks.load.UpstreamBodies;
import dev.inferpam.core.PamEngine;
import dev.inferpam.core.Policy;
import dev.inferpam.core.RequestHead;
import dev.inferpam.core.adapter.PendingRequest;
import dev.inferpam.core.adapter.ResponseMasking;
import dev.inferpam.core.adapter.ResponsePlan;
import dev.inferpam.core.adapter.Verdict;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * The engine's own work for one exchange as a front drives it, without a network: what the
 * gateway's fronts call between reading the upstream and writing the client. Each invocation is
 * one whole exchange through the adapter API ({@link PamEngine#beginHead}, the request body,
 * {@link Verdict.Allowed#respond}, every piece of the body through {@link ResponseMasking#push}
 * and {@link ResponsePlan.Relay#delivered}, the end), with the policy of the gateway benchmark
 * ({@code ../shared/bench/gateway}, {@code policy=full}: an API key, the admin presets, the
 * parameter rules, masking with every built-in detector, limits, batched recording with masked
 * bodies) and the bench upstream's bodies ({@code upstream.mjs}: a 2 KB completion; a stream of
 * 100 chunk events and {@code [DONE]}, one piece per event, 101 pieces).
 *
 * <ul>
 *   <li>{@code completion}: a non-streaming exchange; compare with the CPU per completion the
 *       gateway benchmark reports.
 *   <li>{@code stream}: a streamed exchange; divided by 101, the engine's CPU per event (the
 *       target is 5 µs per event for the whole gateway).
 * </ul>
 *
 * <p>{@code -p policy=identity} keeps only the API key and the entitlements, to see what the other
 * sections cost. Run: {@code java -jar pam-benchmarks/target/benchmarks.jar RelayBenchmark}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Threads(1)
@Fork(1)
@Warmup(iterations = 10, time = 2, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 2, timeUnit = TimeUnit.SECONDS)
public class RelayBenchmark {

  static final String KEY = "sk-bench";

  /** SHA-256 of {@link #KEY}. */
  static final String KEY_SHA256 =
      "c00397de4384b5bbaf14c02fe1ec7020d28d1eeab6a722c576c84b6678c41c29";

  /** The engine, the request and the bodies. */
  @State(Scope.Benchmark)
  public static class Rig {
    @Param({"full"})
    public String policy;

    PamEngine engine;
    Path dir;
    RequestHead head;
    byte[] request;
    byte[] streamRequest;
    byte[] completion;
    List<byte[]> events;

    @Setup
    public void start() throws IOException {
      dir = Files.createTempDirectory("inferpam-relay-bench");
      Path key = dir.resolve("upstream-key");
      Files.writeString(key, "sk-upstream-0123456789abcdef");
      engine =
          PamEngine.builder()
              .policy(Policy.parse(policyYaml(policy, key, dir.resolve("rec"))))
              .build();
      head =
          new RequestHead(
              "POST",
              "/v1/chat/completions",
              null,
              Map.of(
                  "Authorization",
                  List.of("Bearer " + KEY),
                  "Content-Type",
                  List.of("application/json"),
                  "Host",
                  List.of("127.0.0.1:9000")),
              "127.0.0.1");
      String messages =
          "\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
              + "{\"role\":\"user\",\"content\":\"Say something about latency.\"}]";
      request =
          ("{\"model\":\"gpt-4o-mini\"," + messages + ",\"max_tokens\":400}")
              .getBytes(StandardCharsets.UTF_8);
      streamRequest =
          ("{\"model\":\"gpt-4o-mini\"," + messages + ",\"max_tokens\":400,\"stream\":true}")
              .getBytes(StandardCharsets.UTF_8);
      completion = UpstreamBodies.completionBody(2048);
      events = events(100);
      // Each kind once, checked, before anything is measured.
      if (!new String(
              exchange(this, request, List.of(completion), "application/json"),
              StandardCharsets.UTF_8)
          .contains("tails stay")) throw new IllegalStateException("completion not relayed");
      if (!new String(
              exchange(this, streamRequest, events, "text/event-stream"), StandardCharsets.UTF_8)
          .endsWith("data: [DONE]\n\n")) throw new IllegalStateException("stream not relayed");
    }

    @TearDown
    public void stop() throws IOException {
      if (engine != null) engine.close();
      EndToEndBenchmark.deleteTree(dir);
    }
  }

  static String policyYaml(String variant, Path credential, Path recordings) {
    String base =
        "version: 1\n"
            + "identity:\n"
            + "  api-keys:\n"
            + "    - {name: bench, sha256: "
            + KEY_SHA256
            + ", groups: [ml]}\n"
            + "upstream:\n"
            + "  credential: {header: Authorization, scheme: Bearer, from-file: "
            + credential
            + "}\n"
            + "entitlements:\n"
            + "  - groups: [ml]\n"
            + "    models: [\"*\"]\n"
            + "    operations: [chat, completion, embedding]\n";
    return switch (variant) {
      case "identity" -> base;
      case "full" ->
          base
              + "block:\n"
              + "  presets: [ollama-admin, vllm-admin, triton-admin, torchserve-admin,"
              + " openai-admin]\n"
              + "parameters:\n"
              + "  deny: [logit_bias, logprobs, top_logprobs, echo, prompt_logprobs]\n"
              + "  max: {max_tokens: 4096, n: 1}\n"
              + "masking:\n"
              + "  detectors: [email, phone, credit-card, us-ssn, iban, ipv4, ipv6,"
              + " aws-access-key, jwt, private-key]\n"
              + "  strategy: redact\n"
              + "limits:\n"
              + "  - groups: [\"*\"]\n"
              + "    requests-per-minute: 100000000\n"
              + "    tokens-per-day: 100000000000\n"
              + "recording:\n"
              + "  directory: "
              + recordings
              + "\n"
              + "  bodies: masked\n"
              + "  durability: batched\n"
              + "  retention: 1d\n";
      default -> throw new IllegalArgumentException("policy must be full or identity: " + variant);
    };
  }

  /** The bench upstream's stream: {@code n} chunk events, then {@code [DONE]}. */
  static List<byte[]> events(int n) {
    List<byte[]> out = new ArrayList<>(UpstreamBodies.chunkEvents(n));
    out.add("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
    return out;
  }

  /** One exchange as a front drives it; returns what the caller would receive. */
  static byte[] exchange(Rig rig, byte[] body, List<byte[]> pieces, String contentType)
      throws IOException {
    PendingRequest pending = rig.engine.beginHead(rig.head, body.length);
    if (pending.decided() != null) throw new IllegalStateException("denied: " + pending.decided());
    pending.accept(body, 0, body.length);
    Verdict v = pending.finish();
    if (!(v instanceof Verdict.Allowed allowed))
      throw new IllegalStateException("not allowed: " + v);
    allowed.forward().proxyHeaders();
    allowed.forward().body();
    ResponsePlan plan = allowed.respond(200, Map.of("Content-Type", List.of(contentType)));
    if (!(plan instanceof ResponsePlan.Relay relay)) throw new IllegalStateException("refused");
    relay.header("Content-Type", contentType);
    ResponseMasking masking = relay.masking();
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(32 * 1024);
    for (byte[] piece : pieces) {
      byte[] d = masking == null ? piece : masking.push(piece, 0, piece.length);
      if (d.length > 0) {
        relay.delivered(d, 0, d.length);
        out.write(d);
      }
    }
    if (masking != null) {
      byte[] tail = masking.finish();
      if (tail.length > 0) {
        relay.delivered(tail, 0, tail.length);
        out.write(tail);
      }
    }
    allowed.end(true);
    return out.toByteArray();
  }

  @Benchmark
  public byte[] completion(Rig rig) throws IOException {
    return exchange(rig, rig.request, List.of(rig.completion), "application/json");
  }

  @Benchmark
  public byte[] stream(Rig rig) throws IOException {
    return exchange(rig, rig.streamRequest, rig.events, "text/event-stream; charset=utf-8");
  }
}
