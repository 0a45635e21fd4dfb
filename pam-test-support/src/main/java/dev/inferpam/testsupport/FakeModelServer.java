package dev.inferpam.testsupport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.MockResponseBody;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import okhttp3.Headers;
import okhttp3.HttpUrl;
import okio.BufferedSink;

/**
 * A model server on 127.0.0.1 and a free port, played by MockWebServer from a
 * {@link ModelScript}: scripted JSON completions, SSE and NDJSON streams split where the test
 * says, echoes, gated and broken streams ({@link ModelAnswer}).
 *
 * <pre>{@code
 * try (FakeModelServer model = FakeModelServer.start()) {
 *   model.enqueue(ModelAnswer.json(Completions.chat("Hello", 12, 3)));
 *   ... call model.url("/v1/chat/completions") through the adapter under test ...
 *   ModelRequest seen = model.takeRequest();
 * }
 * }</pre>
 *
 * <p>For tests that drive a MockWebServer of their own, {@link #dispatcher(ModelScript)} and
 * {@link #echoDispatcher()} play a script or echo on it, and {@link #response(ModelAnswer)} turns
 * an answer into a {@link MockResponse}.
 *
 * <p><b>Thread-safety:</b> safe for concurrent use; answers are written on MockWebServer's
 * threads. {@link #close()} stops the server; it is idempotent.
 */
public final class FakeModelServer implements AutoCloseable {
  private final MockWebServer server;
  private final ModelScript script;

  private FakeModelServer(MockWebServer server, ModelScript script) {
    this.server = server;
    this.script = script;
  }

  /** Starts a server playing a new, empty script (every request answered {@code 200 {}}). */
  public static FakeModelServer start() {
    return start(new ModelScript());
  }

  /**
   * Starts a server on 127.0.0.1 and a free port playing {@code script}.
   *
   * @throws UncheckedIOException when no loopback port can be bound
   */
  public static FakeModelServer start(ModelScript script) {
    Objects.requireNonNull(script, "script");
    MockWebServer server = new MockWebServer();
    server.setDispatcher(dispatcher(script));
    try {
      server.start(InetAddress.getByName("127.0.0.1"), 0);
    } catch (IOException e) {
      throw new UncheckedIOException("the fake model server could not start on 127.0.0.1", e);
    }
    return new FakeModelServer(server, script);
  }

  /** The script this server plays. */
  public ModelScript script() {
    return script;
  }

  /** Answers the next request with {@code answer}. */
  public FakeModelServer enqueue(ModelAnswer answer) {
    script.enqueue(answer);
    return this;
  }

  /** The oldest request not taken yet; see {@link ModelScript#takeRequest()}. */
  public ModelRequest takeRequest() throws InterruptedException {
    return script.takeRequest();
  }

  /** How many requests the server has received. */
  public int requestCount() {
    return script.requestCount();
  }

  /** {@code http://127.0.0.1:<port>} followed by {@code path} (which may hold a query). */
  public HttpUrl url(String path) {
    return server.url(path);
  }

  /** The port the server listens on. */
  public int port() {
    return server.getPort();
  }

  /** The MockWebServer underneath, for what this class does not cover. */
  public MockWebServer mockWebServer() {
    return server;
  }

  @Override
  public void close() {
    server.close();
  }

  @Override
  public String toString() {
    return "FakeModelServer[" + server.url("/") + ", " + script + "]";
  }

  // --- on a MockWebServer of one's own -----------------------------------------------------------

  /** A MockWebServer dispatcher that answers from {@code script} and records into it. */
  public static Dispatcher dispatcher(ModelScript script) {
    Objects.requireNonNull(script, "script");
    return new Dispatcher() {
      @Override
      public MockResponse dispatch(RecordedRequest request) {
        return response(script.apply(modelRequest(request)));
      }
    };
  }

  /** A MockWebServer dispatcher that answers every request with {@link ModelAnswer#echo(ModelRequest)}. */
  public static Dispatcher echoDispatcher() {
    return dispatcher(new ModelScript().otherwise(ModelAnswer::echo));
  }

  /** What MockWebServer recorded, as a {@link ModelRequest}. */
  public static ModelRequest modelRequest(RecordedRequest request) {
    Headers h = request.getHeaders();
    List<Map.Entry<String, String>> headers = new ArrayList<>(h.size());
    for (int i = 0; i < h.size(); i++)
      headers.add(new AbstractMap.SimpleImmutableEntry<>(h.name(i), h.value(i)));
    byte[] body = request.getBody() == null ? new byte[0] : request.getBody().toByteArray();
    return new ModelRequest(request.getMethod(), request.getTarget(), headers, body);
  }

  /**
   * {@code answer} as a MockResponse: with its length, or chunked when streamed; either way its
   * pieces are written and flushed one by one, waiting at its gates, breaking off where scripted
   * (MockWebServer then drops the connection mid-body).
   */
  public static MockResponse response(ModelAnswer answer) {
    MockResponse.Builder b = new MockResponse.Builder().code(answer.status());
    for (Map.Entry<String, String> h : answer.headers())
      b.addHeaderLenient(h.getKey(), h.getValue());
    boolean chunked = answer.streamed();
    long length = answer.contentLength();
    MockResponseBody body =
        new MockResponseBody() {
          @Override
          public long getContentLength() {
            return length;
          }

          @Override
          public void writeTo(BufferedSink sink) throws IOException {
            try {
              answer.writeTo(
                  new ModelAnswer.Sink() {
                    @Override
                    public void write(byte[] bytes) throws IOException {
                      if (bytes.length == 0) return; // an empty chunk would end a chunked body
                      if (chunked) {
                        sink.writeHexadecimalUnsignedLong(bytes.length)
                            .writeUtf8("\r\n")
                            .write(bytes)
                            .writeUtf8("\r\n");
                      } else {
                        sink.write(bytes);
                      }
                    }

                    @Override
                    public void flush() throws IOException {
                      sink.flush();
                    }
                  });
            } catch (ModelAnswer.BrokenOff e) {
              return; // without the last chunk; the socket closes at the response's end
            }
            // MockWebServer writes the (empty) trailers and the final CRLF after the body.
            if (chunked) sink.writeUtf8("0\r\n").flush();
          }
        };
    b.body(body);
    if (answer.breaksOff()) b.onResponseEnd(new SocketEffect.CloseSocket(true, true, true));
    if (chunked) b.removeHeader("Content-Length").setHeader("Transfer-Encoding", "chunked");
    return b.build();
  }
}
