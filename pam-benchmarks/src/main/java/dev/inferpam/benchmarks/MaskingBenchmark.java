package dev.inferpam.benchmarks;

import dev.inferpam.api.Masker;
import dev.inferpam.core.Policy;
import dev.inferpam.core.internal.masking.BlockMasker;
import dev.inferpam.core.internal.masking.BodyMasker;
import dev.inferpam.core.internal.masking.Detectors;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * What masking costs, with all ten built-in detectors and the {@code redact} strategy, on
 * {@value #CORPUS_CHARS} chars of English-like prose (ASCII, so chars = bytes) of which about 1 %
 * is PII (emails, phone numbers, cards, SSNs, IBANs, addresses, keys), generated from a fixed seed.
 *
 * <p>Throughput is reported in <b>bytes per second</b> ({@code ops/s} with one op per byte):
 * divide by 1,000,000 for MB/s. One thread, so the figure is per core.
 * <ul>
 *   <li>{@link #block}: the whole text at once, {@code Masker.mask}. Target &ge; 150 MB/s.</li>
 *   <li>{@link #streamed}: the same text pushed through one streaming session in
 *       {@value #DELTA}-char pieces, as a streamed completion's text deltas arrive, then
 *       finished. Target &ge; 50 MB/s.</li>
 *   <li>{@link #sse}: those pieces as OpenAI chat SSE events through the response body masker,
 *       framing included (no target; shows what parsing and rewriting each event adds).</li>
 *   <li>{@link #chatStream} and {@link #chatStreamNoPii}: the cost <b>per SSE event</b>, in ns,
 *       of a realistic OpenAI {@code chat.completion.chunk} stream of {@value #CHAT_EVENTS}
 *       events (role chunk, token-sized content chunks of about 200 bytes each, the finishing
 *       chunk, {@code [DONE]}), each event pushed on its own as it would arrive. The first holds
 *       a few values split over several events (an email, a phone number, a card number); the
 *       second, the common case, none. Issue #18 asks for at most 5 &micro;s of CPU per streamed
 *       event for the whole gateway with masking on, so this should be a small part of that.</li>
 * </ul>
 * Run: {@code java -jar pam-benchmarks/target/benchmarks.jar MaskingBenchmark}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class MaskingBenchmark {
  static final int CORPUS_CHARS = 64 * 1024;
  static final int DELTA = 20;

  /** {@code all}, or one detector's name to see what it alone costs ({@code -p detectors=email}). */
  @Param({"all"})
  public String detectors;

  private BlockMasker masker;
  private String corpus;
  private String[] deltas;
  private byte[][] sseEvents;
  private byte[][] chatEvents;
  private byte[][] chatEventsNoPii;

  static final int CHAT_EVENTS = 101;

  @Setup
  public void setUp() {
    masker =
        new BlockMasker(
            detectors.equals("all") ? Detectors.all() : List.of(Detectors.builtIn(detectors)),
            Policy.MaskStrategy.REDACT,
            null);
    corpus = corpus(CORPUS_CHARS, new Random(42));
    List<String> pieces = new ArrayList<>();
    for (int i = 0; i < corpus.length(); i += DELTA)
      pieces.add(corpus.substring(i, Math.min(corpus.length(), i + DELTA)));
    deltas = pieces.toArray(String[]::new);
    sseEvents = new byte[deltas.length][];
    for (int i = 0; i < deltas.length; i++) {
      String json =
          "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
              + "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
              + jsonString(deltas[i])
              + "},\"finish_reason\":null}]}";
      sseEvents[i] = ("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8);
    }
    if (masker.mask(corpus).equals(corpus) && detectors.equals("all"))
      throw new IllegalStateException("corpus holds no PII");
    chatEvents = openAiChunks(true);
    chatEventsNoPii = openAiChunks(false);
    if (detectors.equals("all")) {
      String masked = deliver(chatEvents);
      if (!masked.contains("[EMAIL]") || masked.contains("555-2671"))
        throw new IllegalStateException("the chat stream's PII is not masked");
    }
  }

  /** What a client gets for the whole stream. */
  private String deliver(byte[][] events) {
    BodyMasker body = BodyMasker.open(masker, "text/event-stream");
    StringBuilder out = new StringBuilder();
    for (byte[] e : events)
      out.append(new String(body.push(e, 0, e.length), StandardCharsets.UTF_8));
    return out.append(new String(body.finish(), StandardCharsets.UTF_8)).toString();
  }

  /**
   * A {@value #CHAT_EVENTS}-event OpenAI chat stream as an upstream sends it: a role chunk, 98
   * content chunks of one token each, a finishing chunk and {@code [DONE]}; with {@code pii},
   * three values arrive split over several chunks.
   */
  static byte[][] openAiChunks(boolean pii) {
    Random random = new Random(7);
    List<String> tokens = new ArrayList<>();
    String[][] split = {
      {" write", " to", " alice", ".smith", "@example", ".com"},
      {" or", " call", " (415", ") 555", "-2671"},
      {" card", " 4111", " 1111", " 1111", " 1111"}
    };
    int next = 0;
    while (tokens.size() < CHAT_EVENTS - 3) {
      if (pii && next < split.length && tokens.size() == 15 + 30 * next) {
        for (String t : split[next++]) if (tokens.size() < CHAT_EVENTS - 3) tokens.add(t);
        continue;
      }
      String w = WORDS[random.nextInt(WORDS.length)];
      tokens.add(random.nextInt(9) == 0 ? w + "," : " " + w);
    }
    String head =
        "{\"id\":\"chatcmpl-9qX8YzAbCdEfGhIjKlMnOpQrStUv\",\"object\":\"chat.completion.chunk\","
            + "\"created\":1718000000,\"model\":\"gpt-4o-mini-2024-07-18\","
            + "\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,\"delta\":";
    List<String> data = new ArrayList<>();
    data.add(
        head
            + "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
            + "\"logprobs\":null,\"finish_reason\":null}]}");
    for (String t : tokens)
      data.add(
          head + "{\"content\":" + jsonString(t) + "},\"logprobs\":null,\"finish_reason\":null}]}");
    data.add(head + "{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}");
    data.add("[DONE]");
    byte[][] events = new byte[data.size()][];
    for (int i = 0; i < events.length; i++)
      events[i] = ("data: " + data.get(i) + "\n\n").getBytes(StandardCharsets.UTF_8);
    return events;
  }

  @Benchmark
  @OperationsPerInvocation(CORPUS_CHARS)
  public String block() {
    return masker.mask(corpus);
  }

  @Benchmark
  @OperationsPerInvocation(CORPUS_CHARS)
  public void streamed(Blackhole bh) {
    Masker.Session s = masker.open();
    for (String d : deltas) bh.consume(s.push(d));
    bh.consume(s.finish());
  }

  /**
   * The same deltas as OpenAI chat SSE events (about 190 bytes each) through {@link BodyMasker}:
   * each event parsed, its content masked, the event written again. Reported per byte of
   * <b>content</b>, like {@link #streamed}; the difference is the cost of the SSE/JSON framing.
   */
  @Benchmark
  @OperationsPerInvocation(CORPUS_CHARS)
  public void sse(Blackhole bh) {
    BodyMasker body = BodyMasker.open(masker, "text/event-stream");
    for (byte[] e : sseEvents) bh.consume(body.push(e, 0, e.length));
    bh.consume(body.finish());
  }

  /** Per event, in ns: the PII stream of {@link #openAiChunks(boolean)}, each event pushed alone. */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  @OperationsPerInvocation(CHAT_EVENTS)
  public void chatStream(Blackhole bh) {
    BodyMasker body = BodyMasker.open(masker, "text/event-stream");
    for (byte[] e : chatEvents) bh.consume(body.push(e, 0, e.length));
    bh.consume(body.finish());
  }

  /** Per event, in ns: the same stream with no PII at all, the common case. */
  @Benchmark
  @BenchmarkMode(Mode.AverageTime)
  @OutputTimeUnit(TimeUnit.NANOSECONDS)
  @OperationsPerInvocation(CHAT_EVENTS)
  public void chatStreamNoPii(Blackhole bh) {
    BodyMasker body = BodyMasker.open(masker, "text/event-stream");
    for (byte[] e : chatEventsNoPii) bh.consume(body.push(e, 0, e.length));
    bh.consume(body.finish());
  }

  private static String jsonString(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c == '\n') b.append("\\n");
      else b.append(c);
    }
    return b.append('"').toString();
  }

  private static final String[] WORDS =
      ("the a model answer question of to and in is it that for on with as was be by this are from at "
              + "or an which but not have has had were their they you we can will would there been one all "
              + "more about when what so if out up into than then them these some could other its time only "
              + "new like also over such after first most people made many may well before through where "
              + "system response training data inference request latency throughput quality results example")
          .split(" ");

  private static final String[] PII = {
    "alice.smith@example.com", "+44 20 7946 0958", "(415) 555-2671", "4111 1111 1111 1111",
    "123-45-6789", "DE89 3704 0044 0532 0130 00", "192.168.10.20", "2001:db8::8a2e:370:7334",
    "AKIAIOSFODNN7EXAMPLE", "bob@mail.example.org"
  };

  /** Prose of about {@code chars} chars, one PII value per ~100 words (about 1 % of the text). */
  static String corpus(int chars, Random random) {
    StringBuilder b = new StringBuilder(chars + 64);
    int sentence = 0;
    while (b.length() < chars) {
      String w =
          random.nextInt(110) == 0
              ? PII[random.nextInt(PII.length)]
              : WORDS[random.nextInt(WORDS.length)];
      if (sentence == 0 && Character.isLowerCase(w.charAt(0)))
        w = Character.toUpperCase(w.charAt(0)) + w.substring(1);
      b.append(w);
      if (++sentence > 8 + random.nextInt(12)) {
        b.append(random.nextInt(5) == 0 ? ".\n" : ". ");
        sentence = 0;
      } else {
        b.append(random.nextInt(12) == 0 ? ", " : " ");
      }
    }
    b.setLength(chars);
    return b.toString();
  }
}
