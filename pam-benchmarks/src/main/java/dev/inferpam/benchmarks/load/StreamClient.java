package dev.inferpam.benchmarks.load;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ProtocolException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Opens many streamed chat calls at an even rate and follows each to its {@code data: [DONE]},
 * without a thread per stream: a few selector loops over non-blocking sockets (plain NIO,
 * HTTP/1.1, one connection per stream, {@code Connection: close}), each holding a few hundred
 * bytes per open stream.
 *
 * <p>Stream {@code i} of {@code n} is opened {@code i * ramp / n} after the start. Its clock starts
 * when its socket is opened (connecting is part of every figure); its first event is the first
 * complete {@code data:} line of its body, its end the {@code data: [DONE]} line. A stream
 * succeeds when the status is 200 and exactly the expected number of events came before {@code
 * [DONE]}; anything else is an error of a named kind. At the deadline every stream still open is
 * closed and counted as unfinished.
 *
 * <p><b>Thread-safety:</b> {@link #start} may be called from any thread; a {@link Run}'s counters
 * may be read while it runs.
 */
final class StreamClient {

  private StreamClient() {}

  /**
   * Where streams go and what they carry.
   *
   * @param name what the report calls it
   * @param address a loopback address
   * @param path the request path, e.g. {@code /v1/chat/completions}
   * @param headers extra request headers, e.g. {@code Authorization}
   */
  record Target(String name, InetSocketAddress address, String path, Map<String, String> headers) {
    Target {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(address, "address");
      Objects.requireNonNull(path, "path");
      headers = Map.copyOf(new LinkedHashMap<>(headers));
    }

    /** The whole request, head and body. */
    byte[] request(byte[] body) {
      StringBuilder head = new StringBuilder(256);
      head.append("POST ").append(path).append(" HTTP/1.1\r\n");
      head.append("Host: ")
          .append(address.getHostString())
          .append(':')
          .append(address.getPort())
          .append("\r\n");
      head.append("Content-Type: application/json\r\n");
      head.append("Accept: text/event-stream\r\n");
      head.append("Content-Length: ").append(body.length).append("\r\n");
      head.append("Connection: close\r\n");
      headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
      head.append("\r\n");
      byte[] h = head.toString().getBytes(StandardCharsets.ISO_8859_1);
      byte[] all = Arrays.copyOf(h, h.length + body.length);
      System.arraycopy(body, 0, all, h.length, body.length);
      return all;
    }
  }

  /**
   * Starts opening streams; returns at once.
   *
   * @param target where to
   * @param body the request body, a streamed chat call
   * @param streams how many, at least 1
   * @param rampNanos over how long to open them
   * @param deadlineNanos from the start, when to stop waiting for any stream
   * @param expectedEvents the {@code data:} events a complete stream has before {@code [DONE]}
   * @param threads selector loops, at least 1
   */
  static Run start(
      Target target,
      byte[] body,
      int streams,
      long rampNanos,
      long deadlineNanos,
      int expectedEvents,
      int threads) {
    if (streams < 1) throw new IllegalArgumentException("streams must be >= 1, was " + streams);
    if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, was " + threads);
    Run run =
        new Run(
            target,
            target.request(body),
            streams,
            rampNanos,
            deadlineNanos,
            expectedEvents,
            threads);
    run.begin();
    return run;
  }

  /** One run of streams against one target. */
  static final class Run {
    private final Target target;
    private final byte[] request;
    private final int n;
    private final long rampNanos;
    private final long deadlineNanos;
    private final int expectedEvents;
    private final List<Loop> loops = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final CountDownLatch rampEnded;
    private final AtomicInteger started = new AtomicInteger();
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicInteger peakOpen = new AtomicInteger();
    private final AtomicInteger finished = new AtomicInteger();

    // one slot per stream, each written by the one loop that owns the stream; read after join
    private final long[] firstNanos;
    private final long[] durationNanos;
    private final long[] lagNanos;
    private long startNanos;

    private Run(
        Target target,
        byte[] request,
        int n,
        long rampNanos,
        long deadlineNanos,
        int expectedEvents,
        int threadCount) {
      this.target = target;
      this.request = request;
      this.n = n;
      this.rampNanos = rampNanos;
      this.deadlineNanos = deadlineNanos;
      this.expectedEvents = expectedEvents;
      this.rampEnded = new CountDownLatch(threadCount);
      this.firstNanos = new long[n];
      this.durationNanos = new long[n];
      this.lagNanos = new long[n];
      Arrays.fill(firstNanos, -1);
      Arrays.fill(durationNanos, -1);
      Arrays.fill(lagNanos, -1);
      for (int j = 0; j < threadCount; j++) loops.add(new Loop(j, threadCount));
    }

    private void begin() {
      startNanos = System.nanoTime();
      for (Loop loop : loops) {
        Thread t = new Thread(loop, "stream-load-" + target.name() + "-" + loop.index);
        t.setDaemon(true);
        threads.add(t);
      }
      for (Thread t : threads) t.start();
    }

    /** Streams opened so far. */
    int started() {
      return started.get();
    }

    /** Streams whose request has been sent and that have not ended. */
    int open() {
      return open.get();
    }

    /** Streams that have ended, well or not. */
    int finished() {
      return finished.get();
    }

    /** Waits until every stream has been opened (or the deadline has passed). */
    boolean awaitRampEnd(long timeout, TimeUnit unit) throws InterruptedException {
      return rampEnded.await(timeout, unit);
    }

    /** Waits for the end (every stream ended, or the deadline) and returns what happened. */
    LoadResult await() throws InterruptedException {
      for (Thread t : threads) t.join();
      long wall = System.nanoTime() - startNanos;
      Map<String, Integer> errors = new LinkedHashMap<>();
      Map<String, String> samples = new LinkedHashMap<>();
      Map<String, List<Long>> times = new LinkedHashMap<>();
      int ok = 0;
      for (Loop loop : loops) {
        ok += loop.ok;
        loop.errors.forEach((k, v) -> errors.merge(k, v, Integer::sum));
        loop.samples.forEach(samples::putIfAbsent);
        loop.errorTimes.forEach(
            (k, v) -> times.computeIfAbsent(k, x -> new ArrayList<>()).addAll(v));
        if (loop.crash != null) {
          errors.merge("client failure", 1, Integer::sum);
          samples.putIfAbsent("client failure", describe(loop.crash));
        }
      }
      return new LoadResult(
          target.name(),
          n,
          ok,
          present(firstNanos),
          present(durationNanos),
          present(lagNanos),
          errors,
          samples,
          sorted(times),
          peakOpen.get(),
          wall);
    }

    private static Map<String, long[]> sorted(Map<String, List<Long>> times) {
      Map<String, long[]> out = new LinkedHashMap<>();
      times.forEach((k, v) -> out.put(k, v.stream().mapToLong(Long::longValue).sorted().toArray()));
      return out;
    }

    private static long[] present(long[] values) {
      return Arrays.stream(values).filter(v -> v >= 0).sorted().toArray();
    }

    private long due(int i) {
      return startNanos + (long) ((double) rampNanos * i / n);
    }

    /** The streams {@code index}, {@code index + stride}, ... on one selector. */
    private final class Loop implements Runnable {
      final int index;
      final int stride;
      final ByteBuffer readBuffer = ByteBuffer.allocateDirect(64 * 1024);
      final Map<String, Integer> errors = new LinkedHashMap<>();
      final Map<String, String> samples = new LinkedHashMap<>();
      final Map<String, List<Long>> errorTimes = new LinkedHashMap<>();
      int ok;
      int active;
      int next;
      boolean rampSignalled;
      Throwable crash;
      Selector selector;

      Loop(int index, int stride) {
        this.index = index;
        this.stride = stride;
        this.next = index;
      }

      @Override
      public void run() {
        try (Selector s = Selector.open()) {
          selector = s;
          loop();
        } catch (Throwable t) {
          crash = t;
        } finally {
          signalRampEnd();
        }
      }

      private void signalRampEnd() {
        if (!rampSignalled) {
          rampSignalled = true;
          rampEnded.countDown();
        }
      }

      private void loop() throws IOException {
        long deadline = startNanos + deadlineNanos;
        while (true) {
          long now = System.nanoTime();
          while (next < n && due(next) - now <= 0) {
            open(next, now);
            next += stride;
          }
          if (next >= n) signalRampEnd();
          if (next >= n && active == 0) return;
          if (now - deadline >= 0) {
            abandon();
            return;
          }
          long until = next < n ? Math.min(due(next), deadline) : deadline;
          long wait = until - now;
          if (wait <= 0) {
            selector.selectNow(this::ready);
          } else {
            selector.select(
                this::ready, Math.max(1, TimeUnit.NANOSECONDS.toMillis(wait + 999_999)));
          }
        }
      }

      private void open(int id, long now) {
        Stream s = new Stream(id, now);
        s.out = ByteBuffer.wrap(request);
        lagNanos[id] = Math.max(0, now - due(id));
        started.incrementAndGet();
        active++;
        try {
          s.channel = SocketChannel.open();
          s.channel.configureBlocking(false);
          s.channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
          boolean connected = s.channel.connect(target.address());
          s.channel.register(
              selector, connected ? SelectionKey.OP_WRITE : SelectionKey.OP_CONNECT, s);
          if (connected) s.phase = Phase.SENDING;
        } catch (IOException e) {
          fail(s, "connect: " + describe(e), "");
        }
      }

      private void ready(SelectionKey key) {
        Stream s = (Stream) key.attachment();
        String doing = "connect";
        try {
          if (s.phase == Phase.CONNECTING) {
            if (!s.channel.finishConnect()) return;
            s.phase = Phase.SENDING;
          }
          if (s.phase == Phase.SENDING) {
            doing = "send";
            s.channel.write(s.out);
            if (s.out.hasRemaining()) {
              key.interestOps(SelectionKey.OP_WRITE);
              return;
            }
            s.out = null;
            s.phase = Phase.RECEIVING;
            key.interestOps(SelectionKey.OP_READ);
            s.counted = true;
            peakOpen.accumulateAndGet(open.incrementAndGet(), Math::max);
            return;
          }
          doing = "receive";
          if (key.isReadable()) receive(s);
        } catch (ProtocolException e) {
          fail(s, "bad response", e.getMessage());
        } catch (IOException e) {
          fail(s, doing + ": " + describe(e), "");
        }
      }

      private void receive(Stream s) throws IOException {
        ByteBuffer buf = readBuffer;
        buf.clear();
        int read = s.channel.read(buf);
        if (read == 0) return;
        if (read < 0) {
          s.scanner.endOfInput();
          if (!s.scanner.headComplete()) {
            fail(s, "closed before the response head", "");
          } else {
            end(s, System.nanoTime());
          }
          return;
        }
        buf.flip();
        ResponseScanner scanner = s.scanner;
        boolean hadEvent = scanner.events() > 0;
        scanner.feed(buf);
        long now = System.nanoTime();
        if (!hadEvent && scanner.events() > 0) firstNanos[s.id] = now - s.start;
        if (scanner.done() || scanner.bodyComplete()) end(s, now);
      }

      /** The response is over (its {@code [DONE]}, its end, or the connection's end). */
      private void end(Stream s, long now) {
        ResponseScanner r = s.scanner;
        if (r.status() != 200) {
          fail(s, "status " + r.status(), r.errorSample());
        } else if (!r.done()) {
          fail(s, "ended before [DONE]", r.events() + " events");
        } else if (r.events() != expectedEvents) {
          fail(s, "wrong event count", r.events() + " events, expected " + expectedEvents);
        } else {
          durationNanos[s.id] = now - s.start;
          ok++;
          close(s);
        }
      }

      private void fail(Stream s, String kind, String sample) {
        errors.merge(kind, 1, Integer::sum);
        samples.putIfAbsent(kind, sample);
        errorTimes.computeIfAbsent(kind, k -> new ArrayList<>()).add(System.nanoTime() - s.start);
        close(s);
      }

      private void close(Stream s) {
        if (s.closed) return;
        s.closed = true;
        active--;
        finished.incrementAndGet();
        if (s.counted) open.decrementAndGet();
        s.scanner = null;
        if (s.channel != null) {
          try {
            s.channel.close();
          } catch (IOException ignored) {
            // closing is all that is left to do with it
          }
        }
      }

      /** The deadline: every stream still open ends as unfinished. */
      private void abandon() {
        for (SelectionKey key : List.copyOf(selector.keys())) {
          Stream s = (Stream) key.attachment();
          if (s.closed) continue;
          String where;
          if (s.phase != Phase.RECEIVING) {
            where = "not connected";
          } else if (!s.scanner.headComplete()) {
            where = "no response head";
          } else if (s.scanner.events() == 0) {
            where = "no event yet";
          } else {
            where = "streaming";
          }
          fail(s, "unfinished at deadline: " + where, "");
        }
        int notOpened = 0;
        for (int i = next; i < n; i += stride) notOpened++;
        if (notOpened > 0) errors.merge("not opened by the deadline", notOpened, Integer::sum);
        next = n;
      }
    }
  }

  private enum Phase {
    CONNECTING,
    SENDING,
    RECEIVING
  }

  private static final class Stream {
    final int id;
    final long start;
    Phase phase = Phase.CONNECTING;
    SocketChannel channel;
    ByteBuffer out;
    ResponseScanner scanner = new ResponseScanner();
    boolean counted;
    boolean closed;

    Stream(int id, long start) {
      this.id = id;
      this.start = start;
    }
  }

  static String describe(Throwable t) {
    String m = t.getMessage();
    return t.getClass().getSimpleName() + (m == null || m.isBlank() ? "" : " (" + m + ")");
  }
}
