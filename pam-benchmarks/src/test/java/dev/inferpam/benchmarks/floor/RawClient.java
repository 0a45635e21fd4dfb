package dev.inferpam.benchmarks.floor;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One HTTP/1.1 client connection on a plain socket, so that a test knows exactly which connection
 * a request goes on and sees each byte as it arrives (no client-side buffering of a stream). Reads
 * time out after 10 s, so that a relay that holds bytes back fails the test instead of hanging it.
 *
 * <p><b>Thread-safety:</b> none; one test thread uses it.
 */
final class RawClient implements AutoCloseable {

  /** A response's status line and headers. */
  record Head(int status, List<Map.Entry<String, String>> headers) {
    String header(String name) {
      return headers.stream()
          .filter(h -> h.getKey().equalsIgnoreCase(name))
          .map(Map.Entry::getValue)
          .findFirst()
          .orElse(null);
    }

    boolean chunked() {
      String te = header("Transfer-Encoding");
      return te != null && te.toLowerCase(Locale.ROOT).contains("chunked");
    }
  }

  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;
  private final String host;
  // left of the current chunk's data; -1 before the first chunk, 0 between chunks
  private long chunkLeft = -1;
  private boolean lastChunk;

  RawClient(URI uri) throws IOException {
    socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", uri.getPort()), 10_000);
    socket.setSoTimeout(10_000);
    socket.setTcpNoDelay(true);
    // a read returns what has arrived; it never waits for the buffer to fill
    in = new BufferedInputStream(socket.getInputStream());
    out = socket.getOutputStream();
    host = "127.0.0.1:" + uri.getPort();
  }

  /** Sends a request with a {@code Content-Length} body and the given extra header lines. */
  void send(String method, String target, byte[] body, String... headerLines) throws IOException {
    StringBuilder head = new StringBuilder();
    head.append(method).append(' ').append(target).append(" HTTP/1.1\r\n");
    head.append("Host: ").append(host).append("\r\n");
    for (String line : headerLines) head.append(line).append("\r\n");
    head.append("Content-Length: ").append(body.length).append("\r\n\r\n");
    out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
    out.write(body);
    out.flush();
  }

  Head readHead() throws IOException {
    String status = line();
    String[] parts = status.split(" ", 3);
    if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
      throw new IOException("not a status line: " + status);
    }
    List<Map.Entry<String, String>> headers = new ArrayList<>();
    for (String h = line(); !h.isEmpty(); h = line()) {
      int colon = h.indexOf(':');
      headers.add(Map.entry(h.substring(0, colon).trim(), h.substring(colon + 1).trim()));
    }
    chunkLeft = -1;
    lastChunk = false;
    return new Head(Integer.parseInt(parts[1]), List.copyOf(headers));
  }

  /** The whole body of the response whose head was just read. */
  byte[] readBody(Head head) throws IOException {
    String length = head.header("Content-Length");
    if (length != null) return in.readNBytes(Integer.parseInt(length));
    if (!head.chunked()) return in.readAllBytes();
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    for (int b = bodyByte(); b >= 0; b = bodyByte()) body.write(b);
    return body.toByteArray();
  }

  /**
   * The next server-sent event of a chunked response (its text without the blank line that ends
   * it), or {@code null} at the end of the body.
   */
  String readEvent() throws IOException {
    ByteArrayOutputStream event = new ByteArrayOutputStream();
    int previous = -1;
    for (int b = bodyByte(); b >= 0; previous = b, b = bodyByte()) {
      if (b == '\n' && previous == '\n') {
        byte[] text = event.toByteArray();
        return new String(text, 0, text.length - 1, StandardCharsets.UTF_8);
      }
      event.write(b);
    }
    if (event.size() > 0) throw new EOFException("body ended inside an event: " + event);
    return null;
  }

  /** Whether the server has closed the connection (the next read sees its end). */
  boolean closedByServer() throws IOException {
    return in.read() < 0;
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }

  /** The next byte of a chunked body, -1 after its last chunk (and trailers). */
  private int bodyByte() throws IOException {
    if (lastChunk) return -1;
    if (chunkLeft <= 0) {
      if (chunkLeft == 0) crlf();
      String size = line();
      int semicolon = size.indexOf(';');
      chunkLeft = Long.parseLong(semicolon < 0 ? size : size.substring(0, semicolon), 16);
      if (chunkLeft == 0) {
        while (!line().isEmpty()) {
          // trailers: none expected, skipped
        }
        lastChunk = true;
        return -1;
      }
    }
    int b = in.read();
    if (b < 0) throw new EOFException("connection closed inside a chunk");
    chunkLeft--;
    return b;
  }

  private void crlf() throws IOException {
    if (!line().isEmpty()) throw new IOException("no CRLF after a chunk");
  }

  private String line() throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    for (int b = in.read(); ; b = in.read()) {
      if (b < 0) throw new EOFException("connection closed; line so far: " + line);
      if (b == '\n') break;
      line.write(b);
    }
    byte[] bytes = line.toByteArray();
    int end = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
    return new String(bytes, 0, end, StandardCharsets.ISO_8859_1);
  }
}
