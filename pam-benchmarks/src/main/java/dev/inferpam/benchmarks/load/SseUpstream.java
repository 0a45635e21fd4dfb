package dev.inferpam.benchmarks.load;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Promise;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * A slow OpenAI-compatible model server on {@code 127.0.0.1} that holds thousands of streams
 * without a thread each: an embedded Jetty 12 (core handler, no servlet layer) whose handler
 * returns at once and whose events are written by a two-thread scheduler, each write
 * non-blocking and the next one scheduled when it has completed.
 *
 * <ul>
 *   <li>{@code POST /v1/chat/completions} with {@code "stream": true}: {@code text/event-stream},
 *       chunked; {@code events} {@code chat.completion.chunk} events (a role chunk, text deltas,
 *       a {@code finish_reason} chunk; about 230 bytes each) and then {@code data: [DONE]}, one
 *       write each, the first at once and each next one {@code interval} after the one before
 *       (on a fixed schedule from the first, so a late write does not delay the rest). As {@code
 *       ../shared/bench/gateway/upstream.mjs} with {@code STREAM_INTERVAL_MS}: with the defaults
 *       (100 events, 50 ms) a stream is 101 writes over 5 s.
 *   <li>Any other {@code POST} to that path: a chat completion of about 2 KB, with {@code
 *       Content-Length}.
 *   <li>Any other method or path: 404. Credentials are not checked: the gateway under test may
 *       or may not inject one, depending on its policy.
 * </ul>
 *
 * <p><b>Thread-safety:</b> serves concurrent requests; the counters are atomic.
 */
final class SseUpstream implements AutoCloseable {

  static final String PATH = "/v1/chat/completions";

  private static final Pattern STREAM_TRUE = Pattern.compile("\"stream\"\\s*:\\s*true");
  private static final String ID = "chatcmpl-bench0000000000000000000000000";
  private static final String WORDS =
      "the quick brown fox jumps over a lazy dog while latency budgets stay small and tails stay"
          + " short";
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

  private final Server server;
  private final ScheduledThreadPoolExecutor scheduler;
  private final URI uri;
  private final List<byte[]> events;
  private final long intervalNanos;
  private final byte[] completion;
  private final AtomicInteger streamsStarted = new AtomicInteger();
  private final AtomicInteger streamsCompleted = new AtomicInteger();
  private final AtomicInteger streamsFailed = new AtomicInteger();
  private final AtomicInteger completions = new AtomicInteger();

  private SseUpstream(
      Server server,
      ScheduledThreadPoolExecutor scheduler,
      int port,
      List<byte[]> events,
      long intervalNanos) {
    this.server = server;
    this.scheduler = scheduler;
    this.uri = URI.create("http://127.0.0.1:" + port);
    this.events = events;
    this.intervalNanos = intervalNanos;
    this.completion = completionBody(2048);
  }

  /**
   * Starts serving on {@code 127.0.0.1}.
   *
   * @param port a port, or 0 for a free one
   * @param eventCount the {@code chat.completion.chunk} events before {@code data: [DONE]}, at
   *     least 2
   * @param intervalMillis the time between two writes; 0 writes them as fast as they go out
   * @throws IllegalArgumentException when {@code eventCount < 2} or {@code intervalMillis < 0}
   */
  static SseUpstream start(int port, int eventCount, long intervalMillis) throws Exception {
    if (eventCount < 2)
      throw new IllegalArgumentException("events must be >= 2, was " + eventCount);
    if (intervalMillis < 0) {
      throw new IllegalArgumentException("interval must be >= 0 ms, was " + intervalMillis);
    }
    QueuedThreadPool threads = new QueuedThreadPool(16, 4);
    threads.setName("load-upstream");
    Server server = new Server(threads);
    HttpConfiguration http = new HttpConfiguration();
    http.setSendServerVersion(false);
    http.setSendDateHeader(false);
    ServerConnector connector = new ServerConnector(server, 1, 2, new HttpConnectionFactory(http));
    connector.setHost("127.0.0.1");
    connector.setPort(port);
    connector.setAcceptQueueSize(4096);
    connector.setIdleTimeout(120_000);
    server.addConnector(connector);

    ScheduledThreadPoolExecutor scheduler =
        new ScheduledThreadPoolExecutor(
            2,
            r -> {
              Thread t = new Thread(r, "load-upstream-events");
              t.setDaemon(true);
              return t;
            });
    scheduler.setRemoveOnCancelPolicy(true);

    SseUpstream[] self = new SseUpstream[1];
    server.setHandler(
        new Handler.Abstract() {
          @Override
          public boolean handle(Request request, Response response, Callback callback) {
            return self[0].handle(request, response, callback);
          }
        });
    server.start();
    self[0] =
        new SseUpstream(
            server,
            scheduler,
            connector.getLocalPort(),
            chunkEvents(eventCount),
            TimeUnit.MILLISECONDS.toNanos(intervalMillis));
    return self[0];
  }

  private boolean handle(Request request, Response response, Callback callback) {
    if (!"POST".equals(request.getMethod()) || !PATH.equals(request.getHttpURI().getPath())) {
      Response.writeError(request, response, callback, 404);
      return true;
    }
    Content.Source.asString(
        request,
        StandardCharsets.UTF_8,
        new Promise<>() {
          @Override
          public void succeeded(String body) {
            if (STREAM_TRUE.matcher(body).find()) {
              stream(response, callback);
            } else {
              complete(response, callback);
            }
          }

          @Override
          public void failed(Throwable x) {
            callback.failed(x);
          }
        });
    return true;
  }

  private void complete(Response response, Callback callback) {
    completions.incrementAndGet();
    response.setStatus(200);
    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
    response.getHeaders().put(HttpHeader.CONTENT_LENGTH, completion.length);
    response.write(true, ByteBuffer.wrap(completion), callback);
  }

  private void stream(Response response, Callback callback) {
    streamsStarted.incrementAndGet();
    response.setStatus(200);
    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
    response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
    new Writer(response, callback, System.nanoTime()).write();
  }

  /** One stream: writes event {@code next}, and when it is out schedules the one after. */
  private final class Writer implements Callback {
    private final Response response;
    private final Callback done;
    private final long start;
    private int next;

    Writer(Response response, Callback done, long start) {
      this.response = response;
      this.done = done;
      this.start = start;
    }

    void write() {
      if (next == events.size()) {
        next++;
        response.write(true, ByteBuffer.wrap(DONE), this);
      } else {
        byte[] event = events.get(next++);
        response.write(false, ByteBuffer.wrap(event), this);
      }
    }

    @Override
    public void succeeded() {
      if (next > events.size()) {
        streamsCompleted.incrementAndGet();
        done.succeeded();
        return;
      }
      long due = start + next * intervalNanos;
      scheduler.schedule(this::write, due - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    @Override
    public void failed(Throwable x) {
      streamsFailed.incrementAndGet();
      done.failed(x);
    }

    /** Only schedules the next write, so Jetty may complete it on its selector thread. */
    @Override
    public InvocationType getInvocationType() {
      return InvocationType.NON_BLOCKING;
    }
  }

  /** Where it listens, e.g. {@code http://127.0.0.1:41234}, no trailing slash. */
  URI uri() {
    return uri;
  }

  /** The writes of a stream: {@code events} chunk events and {@code data: [DONE]}. */
  int writesPerStream() {
    return events.size() + 1;
  }

  /** How long a stream takes at the least: from its first write to its last. */
  long streamNanos() {
    return events.size() * intervalNanos;
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

  @Override
  public void close() {
    try {
      server.stop();
    } catch (Exception e) {
      throw new IllegalStateException("cannot stop the model server", e);
    } finally {
      scheduler.shutdownNow();
    }
  }

  @Override
  public String toString() {
    return "SseUpstream[" + uri + "]";
  }

  /** The events of a stream, as OpenAI sends them (and as upstream.mjs does). */
  static List<byte[]> chunkEvents(int count) {
    String[] words = WORDS.split(" ");
    List<byte[]> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      String delta;
      String finish = "null";
      if (i == 0) {
        delta = "{\"role\":\"assistant\",\"content\":\"\"}";
      } else if (i == count - 1) {
        delta = "{}";
        finish = "\"stop\"";
      } else {
        delta = "{\"content\":\"" + words[i % words.length] + " \"}";
      }
      String data =
          "data: {\"id\":\""
              + ID
              + "\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,"
              + "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_bench00000\","
              + "\"choices\":[{\"index\":0,\"delta\":"
              + delta
              + ",\"logprobs\":null,\"finish_reason\":"
              + finish
              + "}]}\n\n";
      out.add(data.getBytes(StandardCharsets.UTF_8));
    }
    return List.copyOf(out);
  }

  /** A chat completion of about {@code size} bytes. */
  static byte[] completionBody(int size) {
    String head =
        "{\"id\":\""
            + ID
            + "\",\"object\":\"chat.completion\",\"created\":1735689600,"
            + "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_bench00000\","
            + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"";
    String tail =
        ".\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":230,\"completion_tokens\":400,\"total_tokens\":630}}";
    StringBuilder content = new StringBuilder();
    String[] words = WORDS.split(" ");
    for (int i = 0; content.length() < size - head.length() - tail.length(); i++) {
      content.append(words[i % words.length]).append(' ');
    }
    return (head + content.toString().trim() + tail).getBytes(StandardCharsets.UTF_8);
  }
}
