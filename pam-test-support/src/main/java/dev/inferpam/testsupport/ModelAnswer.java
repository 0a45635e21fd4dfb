package dev.inferpam.testsupport;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * How a fake model answers one request: status, headers and a body written in pieces, each
 * flushed on its own, so a test chooses where a stream is split (an e-mail address across two
 * SSE events, a JSON body across two writes). Independent of the server that plays it:
 * {@link FakeModelServer} plays it over MockWebServer, a servlet test plays it through its
 * {@code ServletOutputStream} with {@link #writeTo(Sink)}.
 *
 * <pre>{@code
 * CountDownLatch release = new CountDownLatch(1);
 * model.enqueue(ModelAnswer.sse(Completions.sseDelta("Hel"), Completions.sseDelta("lo"), Completions.SSE_DONE)
 *     .holdBefore(1, release));   // the first event goes out, the rest once release opens
 * }</pre>
 *
 * <p>A <em>streamed</em> answer is sent without {@code Content-Length} (chunked); any other with
 * its length. {@link #holdBefore(int, CountDownLatch)} makes the writer wait (at most
 * {@link #GATE_TIMEOUT}) before a piece, and {@link #breakAfter(int)} makes it fail after some
 * pieces, as a model whose connection drops. {@link #awaitWritten(Duration)} tells whether the
 * writer got to the end.
 *
 * <p>Immutable apart from the gates and the written latch, which are shared by the copies the
 * {@code with...} methods return; play each answer once. <b>Thread-safety:</b> safe to hand
 * from the test thread to the server's thread.
 */
public final class ModelAnswer {
  /** How long a writer waits for a gate before it gives up with an {@link IOException}. */
  public static final Duration GATE_TIMEOUT = Duration.ofSeconds(10);

  /** What {@link #writeTo(Sink)} throws where the answer is scripted to break off. */
  public static final class BrokenOff extends IOException {
    private static final long serialVersionUID = 1L;

    BrokenOff(int pieces) {
      super("the model broke off after " + pieces + " pieces (scripted)");
    }
  }

  /** Where a body is written: a socket, a servlet output stream. */
  public interface Sink {
    void write(byte[] bytes) throws IOException;

    void flush() throws IOException;
  }

  private final int status;
  private final List<Map.Entry<String, String>> headers;
  private final List<byte[]> pieces;
  private final boolean streamed;
  private final Map<Integer, CountDownLatch> gates;
  private final int breakAfter;
  private final CountDownLatch written;

  private ModelAnswer(
      int status,
      List<Map.Entry<String, String>> headers,
      List<byte[]> pieces,
      boolean streamed,
      Map<Integer, CountDownLatch> gates,
      int breakAfter,
      CountDownLatch written) {
    if (status < 100 || status > 999)
      throw new IllegalArgumentException("status must be 100..999, was " + status);
    this.status = status;
    this.headers = List.copyOf(headers);
    this.pieces = List.copyOf(pieces);
    this.streamed = streamed;
    this.gates = Map.copyOf(gates);
    this.breakAfter = breakAfter;
    this.written = written;
  }

  // --- shapes ------------------------------------------------------------------------------------

  /** 200 with {@code Content-Type: application/json} and {@code body}, with its length. */
  public static ModelAnswer json(String body) {
    return of(200, "application/json", body.getBytes(StandardCharsets.UTF_8));
  }

  /** {@code status} with {@code body} of {@code contentType} ({@code null}: no type), with its length. */
  public static ModelAnswer of(int status, String contentType, byte[] body) {
    List<Map.Entry<String, String>> headers = new ArrayList<>();
    if (contentType != null) headers.add(header("Content-Type", contentType));
    return new ModelAnswer(
        status, headers, List.of(body.clone()), false, Map.of(), -1, new CountDownLatch(1));
  }

  /** As {@link #of(int, String, byte[])} with UTF-8 text. */
  public static ModelAnswer of(int status, String contentType, String body) {
    return of(status, contentType, body.getBytes(StandardCharsets.UTF_8));
  }

  /** A 200 {@code text/event-stream} streamed in {@code pieces}, each flushed on its own. */
  public static ModelAnswer sse(String... pieces) {
    return streamed("text/event-stream", pieces);
  }

  /** A 200 {@code application/x-ndjson} stream (Ollama's) in {@code pieces}, each flushed on its own. */
  public static ModelAnswer ndjson(String... pieces) {
    return streamed("application/x-ndjson", pieces);
  }

  /** A 200 stream of {@code contentType} in {@code pieces}, sent chunked, each flushed on its own. */
  public static ModelAnswer streamed(String contentType, String... pieces) {
    List<byte[]> bytes = new ArrayList<>();
    for (String p : pieces) bytes.add(p.getBytes(StandardCharsets.UTF_8));
    return new ModelAnswer(
        200,
        List.of(header("Content-Type", contentType)),
        bytes,
        true,
        Map.of(),
        -1,
        new CountDownLatch(1));
  }

  /**
   * An answer that echoes the request's headers: a JSON body {@code {"headers":{"Name":"value",...}}}
   * (values with {@code /} escaped as {@code \/}, as a JSON encoder may) and each header back as
   * {@code X-Echo-<Name>}. A model or application that hands back what it was given, credentials
   * among it.
   */
  public static ModelAnswer echo(ModelRequest request) {
    StringBuilder body = new StringBuilder("{\"headers\":{");
    List<Map.Entry<String, String>> headers = new ArrayList<>();
    headers.add(header("Content-Type", "application/json"));
    boolean first = true;
    for (Map.Entry<String, String> h : request.headers()) {
      if (!first) body.append(',');
      first = false;
      body.append(Json.string(h.getKey()))
          .append(':')
          .append(Json.string(h.getValue()).replace("/", "\\/"));
      headers.add(header("X-Echo-" + h.getKey(), h.getValue()));
    }
    byte[] bytes = body.append("}}").toString().getBytes(StandardCharsets.UTF_8);
    return new ModelAnswer(
        200, headers, List.of(bytes), false, Map.of(), -1, new CountDownLatch(1));
  }

  // --- variations --------------------------------------------------------------------------------

  /** This answer with another status. */
  public ModelAnswer withStatus(int status) {
    return new ModelAnswer(status, headers, pieces, streamed, gates, breakAfter, written);
  }

  /** This answer with one more header line ({@code Content-Type} set here replaces the shape's). */
  public ModelAnswer withHeader(String name, String value) {
    List<Map.Entry<String, String>> more = new ArrayList<>();
    for (Map.Entry<String, String> h : headers) {
      if (!(name.equalsIgnoreCase("Content-Type") && h.getKey().equalsIgnoreCase("Content-Type")))
        more.add(h);
    }
    more.add(header(name, value));
    return new ModelAnswer(status, more, pieces, streamed, gates, breakAfter, written);
  }

  /**
   * This answer with its body cut again at {@code offsets} (byte offsets into the whole body,
   * ascending), each piece flushed on its own: the places where a stream is split.
   */
  public ModelAnswer splitAt(int... offsets) {
    byte[] whole = bytes();
    List<byte[]> cut = new ArrayList<>();
    int from = 0;
    for (int at : offsets) {
      if (at <= from || at >= whole.length) {
        throw new IllegalArgumentException(
            "offsets must ascend within (0, "
                + whole.length
                + "), got "
                + Arrays.toString(offsets));
      }
      cut.add(Arrays.copyOfRange(whole, from, at));
      from = at;
    }
    cut.add(Arrays.copyOfRange(whole, from, whole.length));
    return new ModelAnswer(status, headers, cut, streamed, gates, breakAfter, written);
  }

  /** This answer with its body cut into pieces of {@code size} bytes (the last may be shorter). */
  public ModelAnswer splitEvery(int size) {
    if (size < 1) throw new IllegalArgumentException("size must be >= 1, was " + size);
    byte[] whole = bytes();
    List<Integer> offsets = new ArrayList<>();
    for (int at = size; at < whole.length; at += size) offsets.add(at);
    return splitAt(offsets.stream().mapToInt(Integer::intValue).toArray());
  }

  /** This answer sent chunked, without {@code Content-Length}, whatever its shape. */
  public ModelAnswer asStream() {
    return new ModelAnswer(status, headers, pieces, true, gates, breakAfter, written);
  }

  /** This answer with the writer waiting for {@code gate} before piece {@code piece} (0-based). */
  public ModelAnswer holdBefore(int piece, CountDownLatch gate) {
    if (piece < 0 || piece >= pieces.size()) {
      throw new IllegalArgumentException(
          "piece must be 0.." + (pieces.size() - 1) + ", was " + piece);
    }
    Map<Integer, CountDownLatch> more = new HashMap<>(gates);
    more.put(piece, Objects.requireNonNull(gate, "gate"));
    return new ModelAnswer(status, headers, pieces, streamed, more, breakAfter, written);
  }

  /**
   * This answer breaking off after {@code count} pieces: the writer throws {@link BrokenOff},
   * and the server drops the connection without ending the body.
   */
  public ModelAnswer breakAfter(int count) {
    if (count < 0 || count >= pieces.size()) {
      throw new IllegalArgumentException(
          "count must be 0.." + (pieces.size() - 1) + ", was " + count);
    }
    return new ModelAnswer(status, headers, pieces, streamed, gates, count, written);
  }

  // --- reading and playing -----------------------------------------------------------------------

  public int status() {
    return status;
  }

  /** The header lines, in order. */
  public List<Map.Entry<String, String>> headers() {
    return headers;
  }

  /** The first value of header {@code name} (case-insensitive), or {@code null}. */
  public String header(String name) {
    for (Map.Entry<String, String> h : headers) {
      if (h.getKey().equalsIgnoreCase(name)) return h.getValue();
    }
    return null;
  }

  /** Whether the answer is scripted to break off. */
  public boolean breaksOff() {
    return breakAfter >= 0;
  }

  /** Whether the answer goes out without a length (chunked). */
  public boolean streamed() {
    return streamed;
  }

  /** The whole body (what a caller reads when nothing breaks it off). */
  public byte[] bytes() {
    int size = 0;
    for (byte[] p : pieces) size += p.length;
    byte[] out = new byte[size];
    int at = 0;
    for (byte[] p : pieces) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }

  /** The whole body as UTF-8 text. */
  public String text() {
    return new String(bytes(), StandardCharsets.UTF_8);
  }

  /** The body length when sent with one ({@link #streamed()} false), else -1. */
  public long contentLength() {
    return streamed ? -1 : bytes().length;
  }

  /**
   * Writes the pieces to {@code sink}, flushing after each, waiting at the gates, breaking off
   * where {@link #breakAfter(int)} said; then counts the written latch down.
   *
   * @throws BrokenOff where the answer is scripted to break off
   * @throws IOException when the sink fails or a gate stays shut for {@link #GATE_TIMEOUT}
   */
  public void writeTo(Sink sink) throws IOException {
    try {
      for (int i = 0; i < pieces.size(); i++) {
        if (i == breakAfter) throw new BrokenOff(i);
        CountDownLatch gate = gates.get(i);
        if (gate != null && !gate.await(GATE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
          throw new IOException("the gate before piece " + i + " stayed shut for " + GATE_TIMEOUT);
        }
        sink.write(pieces.get(i));
        sink.flush();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted at a gate");
    } finally {
      written.countDown();
    }
  }

  /** Whether the writer finished (or broke off) within {@code timeout}. */
  public boolean awaitWritten(Duration timeout) throws InterruptedException {
    return written.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Whether the writer has finished (or broken off) yet. */
  public boolean isWritten() {
    return written.getCount() == 0;
  }

  private static Map.Entry<String, String> header(String name, String value) {
    return new AbstractMap.SimpleImmutableEntry<>(
        Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
  }

  @Override
  public String toString() {
    return "ModelAnswer["
        + status
        + ", "
        + header("Content-Type")
        + ", "
        + pieces.size()
        + " pieces"
        + (streamed ? ", streamed" : "")
        + (breakAfter >= 0 ? ", breaks after " + breakAfter : "")
        + "]";
  }
}
