package dev.inferpam.benchmarks.load;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.PriorityQueue;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

/**
 * A slow OpenAI-compatible model server on {@code 127.0.0.1} that holds thousands of streams at
 * the cost of a socket each: a few selector threads (connections spread over them), plain NIO and
 * HTTP/1.1 (keep-alive, request bodies with {@code Content-Length} or chunked), and on each thread
 * a queue of its streams ordered by when their next event is due. Every event is framed as its chunk beforehand and goes out in one write, so
 * the server spends little more than the system calls: on a small machine, the CPU is left to what
 * is measured.
 *
 * <ul>
 *   <li>{@code POST /v1/chat/completions} with {@code "stream": true}: {@code text/event-stream},
 *       chunked; {@code events} {@code chat.completion.chunk} events (a role chunk, text deltas, a
 *       {@code finish_reason} chunk; about 230 bytes each) and then {@code data: [DONE]}, one
 *       write each, the first at once and each next one {@code interval} after the one before, on
 *       a fixed schedule from the first (a late write does not delay the others). As {@code
 *       ../shared/bench/gateway/upstream.mjs} with {@code STREAM_INTERVAL_MS}: with the defaults
 *       (100 events, 50 ms) a stream is 101 writes over 5 s. A reader that stops reading holds its
 *       stream back, not the others.
 *   <li>Any other {@code POST} to that path: a chat completion of about 2 KB, with {@code
 *       Content-Length}.
 *   <li>Any other method or path: 404. Credentials are not checked: the gateway under test may or
 *       may not inject one, depending on its policy.
 * </ul>
 *
 * <p><b>Thread-safety:</b> the counters and {@link #close} may be used from any thread.
 */
final class SseUpstream implements AutoCloseable {

  static final String PATH = "/v1/chat/completions";

  private static final Pattern STREAM_TRUE = Pattern.compile("\"stream\"\\s*:\\s*true");
  private static final int MAX_REQUEST = 1 << 20;

  private final ServerSocketChannel server;
  private final Loop[] loops;
  private final URI uri;
  private final int eventCount;
  private final long intervalNanos;

  // each write, framed: [0] the head and the first event, [i] event i, [n] [DONE] and the end
  private final ByteBuffer[] writes;
  private final ByteBuffer[] writesClosing; // the same, the head saying Connection: close
  private final ByteBuffer completion;
  private final ByteBuffer completionClosing;
  private final ByteBuffer notFound;

  private volatile boolean closed;
  private int nextLoop;

  private final AtomicInteger streamsStarted = new AtomicInteger();
  private final AtomicInteger streamsCompleted = new AtomicInteger();
  private final AtomicInteger streamsFailed = new AtomicInteger();
  private final AtomicInteger completions = new AtomicInteger();
  private final AtomicInteger connections = new AtomicInteger();

  private SseUpstream(int port, int eventCount, long intervalNanos, int threads)
      throws IOException {
    this.eventCount = eventCount;
    this.intervalNanos = intervalNanos;
    List<byte[]> events = UpstreamBodies.chunkEvents(eventCount);
    writes = framedStream(events, false);
    writesClosing = framedStream(events, true);
    byte[] body = UpstreamBodies.completionBody(2048);
    completion = direct(concat(completionHead(body.length, false), body));
    completionClosing = direct(concat(completionHead(body.length, true), body));
    byte[] missing = "{\"error\":{\"message\":\"not found\"}}".getBytes(StandardCharsets.US_ASCII);
    notFound =
        direct(
            concat(
                ("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
                        + missing.length
                        + "\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII),
                missing));

    loops = new Loop[threads];
    for (int i = 0; i < threads; i++) loops[i] = new Loop(i);
    server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress("127.0.0.1", port), 8192);
    server.configureBlocking(false);
    server.register(loops[0].selector, SelectionKey.OP_ACCEPT);
    uri = URI.create("http://127.0.0.1:" + server.socket().getLocalPort());
  }

  /**
   * Starts serving on {@code 127.0.0.1}.
   *
   * @param port a port, or 0 for a free one
   * @param eventCount the {@code chat.completion.chunk} events before {@code data: [DONE]}, at
   *     least 2
   * @param intervalMillis the time between two writes; 0 writes them as fast as they go out
   * @param threads selector loops, at least 1; connections are spread over them
   * @throws IllegalArgumentException when {@code eventCount < 2}, {@code intervalMillis < 0} or
   *     {@code threads < 1}
   * @throws IOException when the port cannot be bound
   */
  static SseUpstream start(int port, int eventCount, long intervalMillis, int threads)
      throws IOException {
    if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, was " + threads);
    if (eventCount < 2)
      throw new IllegalArgumentException("events must be >= 2, was " + eventCount);
    if (intervalMillis < 0) {
      throw new IllegalArgumentException("interval must be >= 0 ms, was " + intervalMillis);
    }
    SseUpstream upstream =
        new SseUpstream(port, eventCount, TimeUnit.MILLISECONDS.toNanos(intervalMillis), threads);
    for (Loop loop : upstream.loops) loop.thread.start();
    return upstream;
  }

  /** One connection: reading a request, or streaming its answer. */
  private static final class Conn {
    final SocketChannel channel;
    final SelectionKey key;
    byte[] in = new byte[512];
    int inLength;
    boolean closeAfter;
    // the answer being written: a stream (writes != null) or one buffer (pending)
    ByteBuffer[] writes;
    int next;
    long start;
    long due;
    ByteBuffer pending;
    boolean dead;

    Conn(SocketChannel channel, SelectionKey key) {
      this.channel = channel;
      this.key = key;
    }
  }

  /** One selector thread and the connections it was handed. */
  private final class Loop {
    final Selector selector;
    final Thread thread;
    final Queue<SocketChannel> incoming = new ConcurrentLinkedQueue<>();
    final PriorityQueue<Conn> due = new PriorityQueue<>((a, b) -> Long.compare(a.due, b.due));
    final ByteBuffer readBuffer = ByteBuffer.allocate(16 * 1024);

    Loop(int index) throws IOException {
      selector = Selector.open();
      thread = new Thread(this::run, "load-upstream-" + index);
      thread.setDaemon(true);
    }

    private void run() {
      try {
        while (!closed) {
          SocketChannel handed;
          while ((handed = incoming.poll()) != null) adopt(handed);
          long now = System.nanoTime();
          Conn c;
          while ((c = due.peek()) != null && c.due - now <= 0) {
            due.poll();
            if (!c.dead) writeNext(c);
          }
          c = due.peek();
          if (c == null) {
            selector.select(this::ready);
          } else {
            long wait = c.due - System.nanoTime();
            if (wait <= 0) {
              selector.selectNow(this::ready);
            } else {
              selector.select(
                  this::ready, Math.max(1, TimeUnit.NANOSECONDS.toMillis(wait + 999_999)));
            }
          }
        }
      } catch (IOException | RuntimeException e) {
        if (!closed) {
          System.err.println(thread.getName() + ": stopped: " + StreamClient.describe(e));
        }
      } finally {
        for (SelectionKey k : selector.keys()) closeQuietly(k);
      }
    }

    private void ready(SelectionKey key) {
      if (!key.isValid()) return;
      if (key.isAcceptable()) {
        accept();
        return;
      }
      Conn c = (Conn) key.attachment();
      try {
        if (key.isValid() && key.isWritable()) flush(c);
        if (key.isValid() && key.isReadable()) read(c);
      } catch (IOException | RuntimeException e) {
        // a broken connection or a malformed request: this connection ends, the others go on
        drop(c);
      }
    }

    /** On loop 0: takes every waiting connection and hands each to the next loop in turn. */
    private void accept() {
      while (true) {
        SocketChannel ch;
        try {
          ch = server.accept();
        } catch (IOException e) {
          return;
        }
        if (ch == null) return;
        connections.incrementAndGet();
        Loop to = loops[nextLoop];
        nextLoop = (nextLoop + 1) % loops.length;
        if (to == this) {
          adopt(ch);
        } else {
          to.incoming.add(ch);
          to.selector.wakeup();
        }
      }
    }

    private void adopt(SocketChannel ch) {
      try {
        ch.configureBlocking(false);
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
        SelectionKey key = ch.register(selector, SelectionKey.OP_READ);
        key.attach(new Conn(ch, key));
      } catch (IOException e) {
        try {
          ch.close();
        } catch (IOException ignored) {
          // nothing more to do with it
        }
      }
    }

    private void read(Conn c) throws IOException {
      ByteBuffer buf = readBuffer;
      buf.clear();
      int n = c.channel.read(buf);
      if (n < 0) {
        drop(c);
        return;
      }
      if (c.inLength + n > MAX_REQUEST) {
        drop(c);
        return;
      }
      if (c.inLength + n > c.in.length) {
        c.in = Arrays.copyOf(c.in, Math.max(c.in.length * 2, c.inLength + n));
      }
      System.arraycopy(buf.array(), 0, c.in, c.inLength, n);
      c.inLength += n;
      // a next request that comes while this one is answered waits for the answer's end
      if (c.writes == null && c.pending == null) parse(c);
    }

    /** Answers the request in {@code c.in} once it is whole. */
    private void parse(Conn c) throws IOException {
      int headEnd = indexOf(c.in, c.inLength, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
      if (headEnd < 0) return;
      String head = new String(c.in, 0, headEnd, StandardCharsets.ISO_8859_1);
      String[] lines = head.split("\r\n");
      String[] requestLine = lines[0].split(" ");
      long length = 0;
      boolean chunked = false;
      boolean close = requestLine.length > 2 && requestLine[2].equals("HTTP/1.0");
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        if (colon <= 0) continue;
        String name = lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
        String value = lines[i].substring(colon + 1).trim().toLowerCase(Locale.ROOT);
        switch (name) {
          case "content-length" -> length = Long.parseLong(value);
          case "transfer-encoding" -> chunked = value.contains("chunked");
          case "connection" -> close = value.contains("close");
          default -> {}
        }
      }
      int bodyStart = headEnd + 4;
      byte[] body;
      int end;
      if (chunked) {
        ByteArrayOutputStream decoded = new ByteArrayOutputStream();
        end = dechunk(c.in, bodyStart, c.inLength, decoded);
        if (end < 0) return;
        body = decoded.toByteArray();
      } else {
        if (c.inLength - bodyStart < length) return;
        end = bodyStart + (int) length;
        body = Arrays.copyOfRange(c.in, bodyStart, end);
      }
      // what came after this request is the start of the next one
      System.arraycopy(c.in, end, c.in, 0, c.inLength - end);
      c.inLength -= end;
      c.closeAfter = close;

      boolean post = requestLine.length > 1 && requestLine[0].equals("POST");
      String path = requestLine.length > 1 ? requestLine[1].split("\\?", 2)[0] : "";
      if (!post || !path.equals(PATH)) {
        c.closeAfter = true;
        send(c, notFound.duplicate());
      } else if (STREAM_TRUE.matcher(new String(body, StandardCharsets.UTF_8)).find()) {
        streamsStarted.incrementAndGet();
        c.writes = close ? writesClosing : writes;
        c.next = 0;
        c.start = System.nanoTime();
        writeNext(c);
      } else {
        completions.incrementAndGet();
        send(c, (close ? completionClosing : completion).duplicate());
      }
    }

    /** Writes the next event of the stream on {@code c}, and queues the one after. */
    private void writeNext(Conn c) {
      ByteBuffer b = c.writes[c.next++].duplicate();
      try {
        c.channel.write(b);
      } catch (IOException e) {
        drop(c);
        return;
      }
      if (b.hasRemaining()) {
        // the reader is behind: hold this stream until the socket takes the rest
        c.pending = b;
        c.key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
        return;
      }
      afterWrite(c);
    }

    private void afterWrite(Conn c) {
      if (c.writes == null) {
        answered(c);
        return;
      }
      if (c.next < c.writes.length) {
        c.due = c.start + c.next * intervalNanos;
        due.add(c);
        return;
      }
      streamsCompleted.incrementAndGet();
      c.writes = null;
      answered(c);
    }

    private void send(Conn c, ByteBuffer b) throws IOException {
      c.channel.write(b);
      if (b.hasRemaining()) {
        c.pending = b;
        c.key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
      } else {
        answered(c);
      }
    }

    private void flush(Conn c) throws IOException {
      ByteBuffer b = c.pending;
      if (b == null) return;
      c.channel.write(b);
      if (b.hasRemaining()) return;
      c.pending = null;
      c.key.interestOps(SelectionKey.OP_READ);
      afterWrite(c);
    }

    /** One answer is out: close, or read the next request (which may be in already). */
    private void answered(Conn c) {
      if (c.closeAfter) {
        close(c);
        return;
      }
      try {
        if (c.inLength > 0) parse(c);
      } catch (IOException | RuntimeException e) {
        drop(c);
      }
    }

    private void drop(Conn c) {
      if (c.writes != null) streamsFailed.incrementAndGet();
      c.writes = null;
      close(c);
    }

    private void close(Conn c) {
      c.dead = true;
      closeQuietly(c.key);
    }
  }

  private static void closeQuietly(SelectionKey key) {
    key.cancel();
    try {
      key.channel().close();
    } catch (IOException ignored) {
      // nothing more to do with it
    }
  }

  /** The end of a chunked body starting at {@code from}, decoded into {@code out}; -1 if not whole. */
  static int dechunk(byte[] b, int from, int to, ByteArrayOutputStream out) {
    int i = from;
    while (true) {
      int lineEnd = indexOf(b, i, to, (byte) '\n');
      if (lineEnd < 0) return -1;
      String sizeLine = new String(b, i, lineEnd - i, StandardCharsets.US_ASCII).trim();
      int semi = sizeLine.indexOf(';');
      int size = Integer.parseInt(semi < 0 ? sizeLine : sizeLine.substring(0, semi).trim(), 16);
      i = lineEnd + 1;
      if (size == 0) {
        // trailers, up to an empty line
        while (true) {
          int e = indexOf(b, i, to, (byte) '\n');
          if (e < 0) return -1;
          boolean empty = e == i || (e == i + 1 && b[i] == '\r');
          i = e + 1;
          if (empty) return i;
        }
      }
      if (to - i < size + 2) return -1;
      out.write(b, i, size);
      i += size;
      int e = indexOf(b, i, to, (byte) '\n');
      if (e < 0) return -1;
      i = e + 1;
    }
  }

  private static int indexOf(byte[] b, int from, int to, byte x) {
    for (int i = from; i < to; i++) if (b[i] == x) return i;
    return -1;
  }

  private static int indexOf(byte[] b, int length, byte[] needle) {
    outer:
    for (int i = 0; i <= length - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) if (b[i + j] != needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  /** Where it listens, e.g. {@code http://127.0.0.1:41234}, no trailing slash. */
  URI uri() {
    return uri;
  }

  /** How long a stream takes at the least: from its first write to its last. */
  long streamNanos() {
    return eventCount * intervalNanos;
  }

  /** Streamed calls begun. */
  int streamsStarted() {
    return streamsStarted.get();
  }

  /** Streamed calls whose {@code data: [DONE]} went out. */
  int streamsCompleted() {
    return streamsCompleted.get();
  }

  /** Streamed calls cut off before their end (the caller went away). */
  int streamsFailed() {
    return streamsFailed.get();
  }

  /** Non-streamed calls answered. */
  int completions() {
    return completions.get();
  }

  /** Connections accepted so far. */
  int connectionsAccepted() {
    return connections.get();
  }

  /** Stops serving and closes every connection. */
  @Override
  public void close() {
    closed = true;
    for (Loop loop : loops) loop.selector.wakeup();
    try {
      for (Loop loop : loops) loop.thread.join(TimeUnit.SECONDS.toMillis(10));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try {
      server.close();
      for (Loop loop : loops) loop.selector.close();
    } catch (IOException ignored) {
      // closing is all that is left to do
    }
  }

  @Override
  public String toString() {
    return "SseUpstream[" + uri + "]";
  }

  // ---------------------------------------------------------------------------------------
  // what it sends

  private static ByteBuffer[] framedStream(List<byte[]> events, boolean close) {
    byte[] head =
        ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                + "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                + (close ? "Connection: close\r\n" : "")
                + "\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    ByteBuffer[] out = new ByteBuffer[events.size() + 1];
    for (int i = 0; i < events.size(); i++) {
      byte[] chunk = chunk(events.get(i));
      out[i] = direct(i == 0 ? concat(head, chunk) : chunk);
    }
    out[events.size()] =
        direct(
            concat(
                chunk("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII)),
                "0\r\n\r\n".getBytes(StandardCharsets.US_ASCII)));
    return out;
  }

  private static byte[] completionHead(int length, boolean close) {
    return ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + length
            + "\r\n"
            + (close ? "Connection: close\r\n" : "")
            + "\r\n")
        .getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] chunk(byte[] data) {
    return concat(
        (Integer.toHexString(data.length) + "\r\n").getBytes(StandardCharsets.US_ASCII),
        data,
        "\r\n".getBytes(StandardCharsets.US_ASCII));
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.writeBytes(p);
    return out.toByteArray();
  }

  private static ByteBuffer direct(byte[] bytes) {
    ByteBuffer b = ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
    return b.asReadOnlyBuffer();
  }
}
